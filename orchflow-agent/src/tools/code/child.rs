//! The operating-system half of the sandbox: what the child does between `fork` and `exec`
//! (session, network and mount namespaces, resource limits, identity, capabilities,
//! `no_new_privs`, Landlock, seccomp filter), the Landlock ruleset, the control pipe, and
//! killing the child's process group.
//!
//! Everything that needs memory is prepared in the parent ([`ChildPlan::new`], [`landlock_ruleset`]:
//! the path descriptors are opened and the ruleset is built there, with raw Landlock system calls
//! through `libc`, see `landlock.rs`; not with the `landlock` crate, which would bring a second
//! major of `syn` into the graph); the closure run in the child ([`ChildPlan::apply`]) only makes
//! raw system calls on values it owns (the ruleset is handed over as a descriptor and enforced
//! with `landlock_restrict_self`), so it stays async-signal-safe.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::landlock::{self, Ruleset, RulesetAttr};

/// Who the child runs as. Either way it ends with no capability in any set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    /// The parent's own user (when the parent is root: uid 0 without any capability, confined by
    /// Landlock; see the module docs of `code`).
    Unchanged,
    /// Switch to `uid`/`gid` (the parent is root).
    Switch { uid: u32, gid: u32 },
}

/// One resource limit: soft and hard values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    resource: libc::__rlimit_resource_t,
    soft: libc::rlim_t,
    hard: libc::rlim_t,
}

/// Everything the child needs between `fork` and `exec`, prepared in the parent.
pub(crate) struct ChildPlan {
    /// The control pipe's write end; its close-on-exec flag is cleared in the child.
    pub(crate) ctl_fd: RawFd,
    /// Try to enter a new network namespace.
    pub(crate) isolate_network: bool,
    pub(crate) limits: Vec<Limit>,
    pub(crate) identity: Identity,
    /// The seccomp program (empty: no filter).
    pub(crate) filter: Vec<libc::sock_filter>,
    /// A private, read-only mount namespace; `Some` asks for one.
    pub(crate) mounts: Option<MountPlan>,
    /// The Landlock ruleset to enforce (`None`: no Landlock).
    pub(crate) landlock: Option<OwnedFd>,
    /// The highest capability number to drop from the bounding set.
    pub(crate) cap_last: u32,
}

/// The mount namespace the child makes: everything read-only (recursively, with `nosuid`),
/// except the scratch directory, bind-mounted on itself writable (`nosuid`, `nodev`, `noexec`);
/// and, for another user, the interpreter's files made reachable under directories it cannot
/// search (see [`Exposure`]).
pub(crate) struct MountPlan {
    /// The scratch directory (`None` for the probe, which writes nothing).
    scratch: Option<CString>,
    exposed: Vec<ExposedMounts>,
}

/// Paths of the interpreter (`roots`) that lie under a directory (`hidden`) the sandbox user
/// cannot search, such as pyenv's under `/root` (mode 700). In the child's mount namespace a
/// small tmpfs covers `hidden`, holds only the directories leading to each root, and each root
/// is bind-mounted there from the real one: the interpreter is reachable at its own path, and
/// the rest of `hidden` is not there at all. Computed once, by [`hidden_roots`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exposure {
    pub(crate) hidden: PathBuf,
    pub(crate) roots: Vec<PathBuf>,
}

/// The most roots one [`Exposure`] may have (the child keeps their clones in a stack array).
const MAX_EXPOSED_ROOTS: usize = 16;

/// One [`Exposure`], ready for the child: every string made in the parent.
struct ExposedMounts {
    tmpfs: CString,
    /// Directories to create on the tmpfs, parents first.
    dirs: Vec<CString>,
    /// Empty files to create as mount points for roots that are files.
    files: Vec<CString>,
    /// The roots: each is cloned (`open_tree`) before the tmpfs hides it, then attached at the
    /// same path on the tmpfs (`move_mount`). A descriptor opened in the parent would not do: a
    /// bind mount's source must be in the caller's mount namespace, and the child has a new one.
    roots: Vec<CString>,
}

fn c_path(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

impl MountPlan {
    /// A plan for `scratch` and the `exposures`.
    pub(crate) fn new(scratch: Option<&Path>, exposures: &[Exposure]) -> io::Result<MountPlan> {
        let scratch = scratch.map(c_path).transpose()?;
        let mut exposed = Vec::with_capacity(exposures.len());
        for exposure in exposures {
            let mut dirs: Vec<PathBuf> = Vec::new();
            let mut files = Vec::new();
            let mut roots = Vec::new();
            if exposure.roots.len() > MAX_EXPOSED_ROOTS {
                return Err(io::Error::other(format!(
                    "more than {MAX_EXPOSED_ROOTS} interpreter paths under {}",
                    exposure.hidden.display()
                )));
            }
            for root in &exposure.roots {
                let Ok(below) = root.strip_prefix(&exposure.hidden) else {
                    continue;
                };
                let mut at = exposure.hidden.clone();
                let parts: Vec<_> = below.components().collect();
                for (i, part) in parts.iter().enumerate() {
                    at.push(part);
                    let last = i + 1 == parts.len();
                    if !last || root.is_dir() {
                        if !dirs.contains(&at) {
                            dirs.push(at.clone());
                        }
                    } else {
                        files.push(c_path(&at)?);
                    }
                }
                roots.push(c_path(root)?);
            }
            exposed.push(ExposedMounts {
                tmpfs: c_path(&exposure.hidden)?,
                dirs: dirs.iter().map(|d| c_path(d)).collect::<io::Result<_>>()?,
                files,
                roots,
            });
        }
        Ok(MountPlan { scratch, exposed })
    }
}

/// The [`Exposure`]s the user `uid`/`gid` needs to reach `roots`: for each root, the topmost
/// ancestor directory that user cannot search (by its mode bits; the child has no
/// supplementary groups), roots inside another root left out. Empty when everything is
/// reachable.
pub(crate) fn hidden_roots(roots: &[PathBuf], uid: u32, gid: u32) -> Vec<Exposure> {
    use std::os::unix::fs::MetadataExt;
    let searchable = |dir: &Path| {
        std::fs::metadata(dir).is_ok_and(|m| {
            let mode = m.mode();
            if m.uid() == uid {
                mode & 0o100 != 0
            } else if m.gid() == gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            }
        })
    };
    let mut out: Vec<Exposure> = Vec::new();
    for root in roots {
        if roots
            .iter()
            .any(|other| other != root && root.starts_with(other))
        {
            continue;
        }
        let Some(hidden) = root
            .ancestors()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .find(|dir| !searchable(dir))
        else {
            continue;
        };
        if hidden == Path::new("/") {
            continue;
        }
        match out.iter_mut().find(|e| e.hidden == hidden) {
            Some(e) => e.roots.push(root.clone()),
            None => out.push(Exposure {
                hidden: hidden.to_path_buf(),
                roots: vec![root.clone()],
            }),
        }
    }
    out
}

/// The resource limits the child gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawLimits {
    pub(crate) cpu_seconds: u64,
    pub(crate) address_space: u64,
    pub(crate) file_size: u64,
    pub(crate) open_files: u64,
    pub(crate) processes: u64,
}

impl ChildPlan {
    /// Prepares a plan. Limits are clamped to the parent's hard limits (a non-root parent could
    /// not raise them), so setting them in the child cannot fail for that reason.
    pub(crate) fn new(
        ctl_fd: RawFd,
        isolate_network: bool,
        limits: RawLimits,
        identity: Identity,
        seccomp: bool,
    ) -> Self {
        let cap_last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(63)
            .min(63);
        let mut out = Vec::with_capacity(6);
        let mut push = |resource: libc::__rlimit_resource_t, soft: u64, hard: u64| {
            let current = current_hard_limit(resource);
            let hard = hard.min(current);
            let soft = soft.min(hard);
            out.push(Limit {
                resource,
                soft: soft as libc::rlim_t,
                hard: hard as libc::rlim_t,
            });
        };
        push(libc::RLIMIT_CORE, 0, 0);
        // The soft CPU limit sends SIGXCPU; the hard one, a second later, SIGKILL.
        push(
            libc::RLIMIT_CPU,
            limits.cpu_seconds,
            limits.cpu_seconds.saturating_add(1),
        );
        push(libc::RLIMIT_AS, limits.address_space, limits.address_space);
        push(libc::RLIMIT_FSIZE, limits.file_size, limits.file_size);
        push(libc::RLIMIT_NOFILE, limits.open_files, limits.open_files);
        push(libc::RLIMIT_NPROC, limits.processes, limits.processes);
        ChildPlan {
            ctl_fd,
            isolate_network,
            limits: out,
            identity,
            filter: if seccomp {
                seccomp_filter()
            } else {
                Vec::new()
            },
            mounts: None,
            landlock: None,
            cap_last,
        }
    }

    /// Runs in the child after `fork`, before `exec`, in this order: own session; network
    /// namespace (best effort, reported on the control pipe as `netns=`); mount namespace (when
    /// planned; reported as `mountns=`); resource limits; the capability bounding set emptied and
    /// the securebits locked (as root); the identity switch; every capability set cleared;
    /// `no_new_privs`; Landlock; seccomp; descriptors.
    ///
    /// # Safety argument
    ///
    /// Only async-signal-safe system calls (`setsid`, `unshare`, `mount`, `mount_setattr`, `chdir`,
    /// `open_tree`, `move_mount`, `mkdir`, `chmod`, `open`, `close`,
    /// `write`, `setrlimit`, `prctl`, `setgroups`, `setresgid`, `setresuid`, `capset`,
    /// `landlock_restrict_self`, `fcntl`, `close_range`) are made, on values owned by `self` that
    /// were fully built before `fork`; nothing allocates, locks or unwinds
    /// (`io::Error::last_os_error` only stores an integer). Returning an error makes the standard
    /// library report it to the parent and exit the child without running `exec`.
    pub(crate) fn apply(&self) -> io::Result<()> {
        // SAFETY: see the safety argument above; every pointer passed is to a live value owned by
        // `self` or on this stack frame, and every return value is checked.
        unsafe {
            let root = libc::geteuid() == 0;
            // Own session and process group, so the parent can kill everything the child starts.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }

            // No network: a fresh network namespace holds only a downed loopback device.
            let mut isolated = false;
            let mut in_user_ns = false;
            if self.isolate_network {
                // Without privilege, a new user namespace makes a network namespace possible
                // (where unprivileged user namespaces are enabled).
                isolated = libc::unshare(libc::CLONE_NEWNET) == 0;
                if !isolated && !root {
                    isolated = libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) == 0;
                    in_user_ns = isolated;
                }
            }
            let note: &[u8] = if isolated { b"netns=1\n" } else { b"netns=0\n" };
            write_all(self.ctl_fd, note)?;

            if let Some(mounts) = &self.mounts {
                // Planned only where the probe saw it work: a failure now is an error.
                enter_read_only_mount_namespace(mounts, root || in_user_ns)?;
                write_all(self.ctl_fd, b"mountns=1\n")?;
            } else {
                write_all(self.ctl_fd, b"mountns=0\n")?;
            }

            for limit in &self.limits {
                let value = libc::rlimit {
                    rlim_cur: limit.soft,
                    rlim_max: limit.hard,
                };
                if libc::setrlimit(limit.resource, &value) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }

            // While the process can (CAP_SETPCAP, i.e. the parent is root): empty the bounding
            // set, so that no later exec can give any capability back, and lock the securebits
            // so that uid 0 gets no capability from exec and none is kept across setuid.
            if root {
                for cap in 0..=self.cap_last {
                    if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
                        && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
                if libc::prctl(libc::PR_SET_SECUREBITS, SECUREBITS_LOCKED, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }

            if let Identity::Switch { uid, gid } = self.identity
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(gid, gid, gid) != 0
                    || libc::setresuid(uid, uid, uid) != 0)
            {
                return Err(io::Error::last_os_error());
            }

            // No capability in any set, whoever we are now.
            drop_all_capabilities()?;
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }

            if let Some(ruleset) = &self.landlock
                && libc::syscall(
                    libc::SYS_landlock_restrict_self,
                    ruleset.as_raw_fd() as libc::c_long,
                    0 as libc::c_long,
                ) != 0
            {
                return Err(io::Error::last_os_error());
            }

            if !self.filter.is_empty() {
                let prog = libc::sock_fprog {
                    len: u16::try_from(self.filter.len()).unwrap_or(u16::MAX),
                    filter: self.filter.as_ptr().cast_mut(),
                };
                if libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                    &prog as *const libc::sock_fprog,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }

            // Nothing else the parent had open leaks into the program (best effort: the call
            // needs Linux 5.11), and the control pipe survives `exec`.
            let fd = self.ctl_fd as libc::c_uint;
            if fd > 3 {
                libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    fd - 1,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
            }
            libc::syscall(
                libc::SYS_close_range,
                fd + 1,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if libc::fcntl(self.ctl_fd, libc::F_SETFD, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Writes all of `bytes` to `fd` (a pipe: short writes of a few bytes do not happen, but are
/// handled). Async-signal-safe.
fn write_all(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: write reads `bytes.len()` bytes from a live slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        bytes = &bytes[usize::try_from(n).unwrap_or(bytes.len()).min(bytes.len())..];
    }
    Ok(())
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// `mount_setattr(AT_FDCWD, path, flags, {set, clear})`. Async-signal-safe.
fn mount_setattr(path: &CStr, flags: libc::c_uint, set: u64, clear: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the kernel reads a NUL-terminated path and a `mount_attr` of the size we pass.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD as libc::c_long,
            path.as_ptr(),
            flags as libc::c_long,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>() as libc::c_long,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Enters a new mount namespace in which every mount is private and read-only (and `nosuid`),
/// except the scratch directory, a writable bind mount of itself (`nosuid`, `nodev`, `noexec`).
/// With `privileged` false (no root, no user namespace yet), a user namespace is created for it.
/// Async-signal-safe: every string was built before `fork`.
fn enter_read_only_mount_namespace(plan: &MountPlan, privileged: bool) -> io::Result<()> {
    // SAFETY: unshare and mount take flags and NUL-terminated strings (or null pointers).
    unsafe {
        let flags = if privileged {
            libc::CLONE_NEWNS
        } else {
            libc::CLONE_NEWUSER | libc::CLONE_NEWNS
        };
        if libc::unshare(flags) != 0 {
            return Err(io::Error::last_os_error());
        }
        // Nothing done here propagates back to the host's mounts.
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if let Some(scratch) = &plan.scratch
            && libc::mount(
                scratch.as_ptr(),
                scratch.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        for exposed in &plan.exposed {
            const OPEN_TREE_CLONE: libc::c_uint = 1;
            const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
            let mut trees: [RawFd; MAX_EXPOSED_ROOTS] = [-1; MAX_EXPOSED_ROOTS];
            for (tree, root) in trees.iter_mut().zip(&exposed.roots) {
                let fd = libc::syscall(
                    libc::SYS_open_tree,
                    libc::AT_FDCWD as libc::c_long,
                    root.as_ptr(),
                    (OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE)
                        as libc::c_long,
                );
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                *tree = RawFd::try_from(fd).unwrap_or(-1);
            }
            if libc::mount(
                c"tmpfs".as_ptr(),
                exposed.tmpfs.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"mode=0755,size=64k".as_ptr().cast(),
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            for dir in &exposed.dirs {
                // chmod: the umask must not narrow the mode.
                if libc::mkdir(dir.as_ptr(), 0o755) != 0 || libc::chmod(dir.as_ptr(), 0o755) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for file in &exposed.files {
                let fd = libc::open(
                    file.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                    0o644 as libc::c_uint,
                );
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::close(fd);
            }
            for (&tree, root) in trees.iter().zip(&exposed.roots) {
                let moved = libc::syscall(
                    libc::SYS_move_mount,
                    tree as libc::c_long,
                    c"".as_ptr(),
                    libc::AT_FDCWD as libc::c_long,
                    root.as_ptr(),
                    MOVE_MOUNT_F_EMPTY_PATH as libc::c_long,
                );
                libc::close(tree);
                if moved != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
    }
    mount_setattr(c"/", AT_RECURSIVE, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0)?;
    if let Some(scratch) = &plan.scratch {
        mount_setattr(
            scratch,
            0,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            MOUNT_ATTR_RDONLY,
        )?;
        // The standard library changed into the scratch directory before this closure ran: the
        // working directory is still the one under the bind mount (read-only now). Enter the
        // writable mount.
        // SAFETY: chdir reads a NUL-terminated path.
        if unsafe { libc::chdir(scratch.as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The current hard limit of `resource` (unlimited if it cannot be read).
#[allow(clippy::useless_conversion)] // `rlim_t` is `u64` on 64-bit Linux, not everywhere
fn current_hard_limit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut value = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(resource, &mut value) } == 0 {
        u64::from(value.rlim_max)
    } else {
        u64::MAX
    }
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
/// SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED`: uid 0 gains no capability
/// from `exec`, capabilities are not kept across `setuid`, none can be made ambient, and none of
/// this can be undone.
const SECUREBITS_LOCKED: libc::c_ulong = 0x01 | 0x02 | 0x20 | 0x40 | 0x80;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Clears the effective, permitted, inheritable and ambient capability sets (dropping needs no
/// privilege). Async-signal-safe (system calls on stack values).
fn drop_all_capabilities() -> io::Result<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let none = CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    };
    let data = [none, none];
    // SAFETY: capset reads a version-3 header and two data structs, which we pass; prctl takes
    // integers.
    unsafe {
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) != 0
            && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
        {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The Landlock ABI the running kernel offers (`None`: no Landlock, disabled or not built in).
pub(crate) fn landlock_abi() -> Option<u32> {
    landlock::abi()
}

/// The ABI whose rights the ruleset handles: 6 brings signal and abstract-socket scoping. On an
/// older kernel what it does not know is dropped (best effort: the rights are masked by the
/// kernel's ABI, see `landlock.rs`), and [`landlock_abi`] reports what is left; without any
/// Landlock there is no ruleset at all.
const LANDLOCK_TARGET: u32 = 6;

/// Which step of building a Landlock ruleset the kernel refused.
#[derive(Debug)]
pub(crate) enum LandlockStep {
    /// `landlock_create_ruleset`.
    CreateRuleset,
    /// `landlock_add_rule` for this path.
    AddRule(PathBuf),
}

impl std::fmt::Display for LandlockStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LandlockStep::CreateRuleset => f.write_str("landlock_create_ruleset"),
            LandlockStep::AddRule(path) => write!(f, "landlock_add_rule for {}", path.display()),
        }
    }
}

/// Why a Landlock ruleset could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LandlockError {
    /// The kernel refused a step; `source` carries its errno (`raw_os_error`).
    #[error("the kernel refused {step}: {source}")]
    Refused {
        step: LandlockStep,
        #[source]
        source: io::Error,
    },
    /// The kernel has no Landlock: the ruleset would enforce nothing.
    #[error("the kernel does not enforce Landlock")]
    NotEnforced,
}

/// Builds, in the parent, the Landlock ruleset of one run and returns its descriptor: every
/// file-system right, TCP bind and connect, signals and abstract UNIX sockets outside the sandbox
/// are handled (so denied unless granted); `read_only` paths (the interpreter, its libraries) get
/// read and execute, `/dev/null` read and write, and `scratch` (if any) everything but execute
/// and making device nodes, FIFOs or sockets. Rules on files carry only the rights that apply to
/// files. Paths that do not exist (or cannot be opened) are skipped. Everything is limited to
/// what both [`LANDLOCK_TARGET`] and the running kernel know.
pub(crate) fn landlock_ruleset(
    read_only: &[PathBuf],
    scratch: Option<&Path>,
) -> Result<OwnedFd, LandlockError> {
    use landlock::{
        FS_EXECUTE, FS_MAKE_BLOCK, FS_MAKE_CHAR, FS_MAKE_FIFO, FS_MAKE_SOCK, FS_READ, FS_READ_FILE,
        FS_WRITE_FILE,
    };
    let abi = landlock::abi()
        .ok_or(LandlockError::NotEnforced)?
        .min(LANDLOCK_TARGET);
    let scratch_rights = landlock::fs_rights(LANDLOCK_TARGET)
        & !(FS_EXECUTE | FS_MAKE_CHAR | FS_MAKE_BLOCK | FS_MAKE_FIFO | FS_MAKE_SOCK);
    let mut grants: Vec<(&Path, u64)> = read_only.iter().map(|p| (p.as_path(), FS_READ)).collect();
    grants.push((Path::new("/dev/null"), FS_READ_FILE | FS_WRITE_FILE));
    for dev in ["/dev/zero", "/dev/random", "/dev/urandom"] {
        grants.push((Path::new(dev), FS_READ_FILE));
    }
    if let Some(scratch) = scratch {
        grants.push((scratch, scratch_rights));
    }
    let ruleset =
        Ruleset::create(&RulesetAttr::all(abi), abi).map_err(|source| LandlockError::Refused {
            step: LandlockStep::CreateRuleset,
            source,
        })?;
    for (path, wanted) in grants {
        let Ok(fd) = landlock::open_path(path) else {
            continue;
        };
        // What the descriptor is, not what the path names now (it could have been replaced).
        let file = std::fs::File::from(fd);
        let is_dir = file.metadata().is_ok_and(|m| m.is_dir());
        let rights = landlock::rule_rights(wanted, abi, is_dir);
        if rights == 0 {
            continue;
        }
        ruleset
            .allow_beneath(file.as_fd(), rights)
            .map_err(|source| LandlockError::Refused {
                step: LandlockStep::AddRule(path.to_path_buf()),
                source,
            })?;
    }
    Ok(OwnedFd::from(ruleset))
}

/// Whether this build has a seccomp filter for the target architecture.
pub(crate) const SECCOMP_SUPPORTED: bool =
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// A seccomp program that forbids creating processes (fork, vfork, clone without
/// `CLONE_THREAD`; `clone3` answers ENOSYS so the C library falls back to `clone`), sockets
/// (`socket`, `socketpair`), device nodes and FIFOs (`mknod`, `mknodat`: no audit event covers
/// them in Python), and the system calls a sandboxed program never needs (ptrace, namespaces,
/// mounts old and new, modules, bpf, io_uring, keyrings…). Threads stay allowed (they count against `RLIMIT_NPROC`). Empty on
/// architectures without a table here.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn seccomp_filter() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const OFFSET_NR: u32 = 0;
    const OFFSET_ARCH: u32 = 4;
    const OFFSET_ARG0: u32 = 16; // low half of args[0] (little-endian)
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    let mut denied: Vec<(libc::c_long, u32)> = vec![
        (libc::SYS_clone3, enosys),
        (libc::SYS_ptrace, eperm),
        (libc::SYS_process_vm_readv, eperm),
        (libc::SYS_process_vm_writev, eperm),
        (libc::SYS_unshare, eperm),
        (libc::SYS_setns, eperm),
        (libc::SYS_mount, eperm),
        (libc::SYS_umount2, eperm),
        (libc::SYS_pivot_root, eperm),
        (libc::SYS_chroot, eperm),
        (libc::SYS_kexec_load, eperm),
        (libc::SYS_init_module, eperm),
        (libc::SYS_finit_module, eperm),
        (libc::SYS_delete_module, eperm),
        (libc::SYS_bpf, eperm),
        (libc::SYS_perf_event_open, eperm),
        (libc::SYS_userfaultfd, eperm),
        (libc::SYS_keyctl, eperm),
        (libc::SYS_add_key, eperm),
        (libc::SYS_request_key, eperm),
        (libc::SYS_io_uring_setup, eperm),
        (libc::SYS_open_by_handle_at, eperm),
        (libc::SYS_name_to_handle_at, eperm),
        (libc::SYS_socket, eperm),
        (libc::SYS_socketpair, eperm),
        (libc::SYS_mknodat, eperm),
        (libc::SYS_open_tree, eperm),
        (libc::SYS_move_mount, eperm),
        (libc::SYS_fsopen, eperm),
        (libc::SYS_fsconfig, eperm),
        (libc::SYS_fsmount, eperm),
        (libc::SYS_fspick, eperm),
        (libc::SYS_mount_setattr, eperm),
        (libc::SYS_acct, eperm),
        (libc::SYS_swapon, eperm),
        (libc::SYS_swapoff, eperm),
        (libc::SYS_reboot, eperm),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        denied.push((libc::SYS_fork, eperm));
        denied.push((libc::SYS_vfork, eperm));
        denied.push((libc::SYS_mknod, eperm));
    }

    let mut prog = vec![
        stmt(LD_W_ABS, OFFSET_ARCH),
        // Another ABI (e.g. i386 through int 0x80) would have other numbers: kill.
        jump(JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(RET_K, SECCOMP_RET_KILL_PROCESS),
        stmt(LD_W_ABS, OFFSET_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        // The x32 ABI (numbers with bit 30 set).
        prog.push(jump(JGE_K, 0x4000_0000, 0, 1));
        prog.push(stmt(RET_K, eperm));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = JGE_K;
    for (nr, action) in denied {
        prog.push(jump(JEQ_K, nr as u32, 0, 1));
        prog.push(stmt(RET_K, action));
    }
    // clone: threads only.
    prog.push(jump(JEQ_K, libc::SYS_clone as u32, 0, 4));
    prog.push(stmt(LD_W_ABS, OFFSET_ARG0));
    prog.push(jump(JSET_K, libc::CLONE_THREAD as u32, 0, 1));
    prog.push(stmt(RET_K, libc::SECCOMP_RET_ALLOW));
    prog.push(stmt(RET_K, eperm));
    prog.push(stmt(RET_K, libc::SECCOMP_RET_ALLOW));
    prog
}

/// No seccomp table for this architecture.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) fn seccomp_filter() -> Vec<libc::sock_filter> {
    Vec::new()
}

/// The control pipe: `(read end, write end)`, both close-on-exec, both numbered 10 or above (so
/// that the child's standard streams, set up on 0–2, can never land on them); the read end is
/// non-blocking.
pub(crate) fn control_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let read = raise(read)?;
    let write = raise(write)?;
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(read.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(read.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((read, write))
}

/// Duplicates `fd` to a number >= 10 (close-on-exec), closing the original.
fn raise(fd: OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we then own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Reads what is buffered in the (non-blocking) control pipe, up to `cap` bytes.
pub(crate) fn drain(fd: &OwnedFd, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < cap {
        // SAFETY: read into a stack buffer of the length we pass.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            let n = usize::try_from(n).unwrap_or(0);
            out.extend_from_slice(&buf[..n]);
        } else if n == 0 {
            break;
        } else {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
    }
    out.truncate(cap);
    out
}

/// Sends SIGKILL to the process group `pgid` (the child made itself its leader). Harmless when
/// the group is already gone.
pub(crate) fn kill_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid)
        && pgid > 1
    {
        // SAFETY: kill with a negative pid signals a process group; no memory is involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// The effective user id of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole ruleset on this kernel: directories, files (which the kernel would refuse with
    /// directory rights), a missing path (skipped), a scratch directory; then enforced on a
    /// thread of its own.
    #[test]
    fn landlock_ruleset_grants_what_it_says() {
        let lib = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let file = lib.path().join("module.py");
        std::fs::write(&file, "x = 1").unwrap();
        std::fs::write(outside.path().join("secret"), "no").unwrap();
        let read_only = vec![
            lib.path().to_path_buf(),
            file.clone(),
            lib.path().join("missing"),
        ];
        let ruleset = match landlock_ruleset(&read_only, Some(scratch.path())) {
            Ok(fd) => fd,
            Err(LandlockError::NotEnforced) => {
                assert_eq!(landlock_abi(), None);
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let (secret, written, denied) = (
            outside.path().join("secret"),
            scratch.path().join("out.txt"),
            lib.path().join("new.txt"),
        );
        let outcome = std::thread::spawn(move || {
            // SAFETY: prctl and landlock_restrict_self take integers; they change only this
            // thread, which ends below.
            unsafe {
                assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
                assert_eq!(
                    libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0),
                    0
                );
            }
            (
                std::fs::read_to_string(&file).map_err(|e| e.raw_os_error()),
                std::fs::read_to_string(&secret).map_err(|e| e.raw_os_error()),
                std::fs::write(&written, "ok").map_err(|e| e.raw_os_error()),
                std::fs::write(&denied, "no").map_err(|e| e.raw_os_error()),
                std::fs::read("/dev/null").map_err(|e| e.raw_os_error()),
            )
        })
        .join()
        .unwrap();
        assert_eq!(outcome.0, Ok("x = 1".to_owned()));
        assert_eq!(outcome.1, Err(Some(libc::EACCES)));
        assert_eq!(outcome.2, Ok(()));
        assert_eq!(outcome.3, Err(Some(libc::EACCES)));
        assert_eq!(outcome.4, Ok(Vec::new()));
    }

    #[test]
    fn landlock_errors_name_the_step_and_errno() {
        let err = LandlockError::Refused {
            step: LandlockStep::AddRule(PathBuf::from("/usr/lib")),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        let text = err.to_string();
        assert!(text.contains("landlock_add_rule for /usr/lib"), "{text}");
        assert!(text.contains("os error 22"), "{text}");
        let LandlockError::Refused { source, .. } = err else {
            unreachable!()
        };
        assert_eq!(source.raw_os_error(), Some(libc::EINVAL));
        assert!(
            LandlockError::NotEnforced
                .to_string()
                .contains("does not enforce")
        );
    }
}
