//! The child's mount namespace: everything read-only (recursively, `nosuid`), the scratch
//! directory writable, and, for another user, the interpreter's files exposed under
//! directories it cannot search. Planned in the parent ([`MountPlan::new`]: every path a
//! `CString` there), entered in the child between `fork` and `exec` with raw, async-signal-safe
//! system calls ([`enter_read_only_mount_namespace`]).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

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
pub(super) fn enter_read_only_mount_namespace(
    plan: &MountPlan,
    privileged: bool,
) -> io::Result<()> {
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
