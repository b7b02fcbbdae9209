//! The operating-system half of the sandbox: what the child does between `fork` and `exec`
//! (session, network and mount namespaces, resource limits, identity, capabilities,
//! `no_new_privs`, Landlock, seccomp filter), the Landlock ruleset, the control pipe, and
//! killing the child's process group. The mount namespace (`mounts.rs`), the capability drop
//! (`caps.rs`) and the seccomp program (`seccomp.rs`) are written beside it, each on its own.
//!
//! Everything that needs memory is prepared in the parent ([`ChildPlan::new`], [`landlock_ruleset`]:
//! the path descriptors are opened and the ruleset is built there, with raw Landlock system calls
//! through `libc`, see `landlock.rs`; not with the `landlock` crate, which would bring a second
//! major of `syn` into the graph); the closure run in the child ([`ChildPlan::apply`]) only makes
//! raw system calls on values it owns (the ruleset is handed over as a descriptor and enforced
//! with `landlock_restrict_self`), so it stays async-signal-safe.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::caps::{SECUREBITS_LOCKED, drop_all_capabilities};
use super::landlock::{self, Ruleset, RulesetAttr};
use super::mounts::enter_read_only_mount_namespace;
pub(crate) use super::mounts::{Exposure, MountPlan, hidden_roots};
pub(crate) use super::seccomp::{SECCOMP_SUPPORTED, seccomp_filter};

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
