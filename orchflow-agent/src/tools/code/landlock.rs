//! Landlock over raw system calls: the kernel's UAPI (`linux/landlock.h`), the rights each ABI
//! version knows, and a ruleset built with `landlock_create_ruleset` and `landlock_add_rule`.
//!
//! Hand-written instead of using the `landlock` crate, which pulls `enumflags2` and through its
//! derive macro a second major of `syn` into the graph (the project keeps one). What the sandbox
//! needs is small: one ruleset, path-beneath rules, and masking what it asks for by the ABI of
//! the running kernel (best effort). The ruleset is only built here, in the parent; the child
//! enforces it with its own raw `landlock_restrict_self` (see `child.rs`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

// Access rights for files and directories (`LANDLOCK_ACCESS_FS_*`).
/// Execute a file (ABI 1).
pub(crate) const FS_EXECUTE: u64 = 1 << 0;
/// Open a file for writing (ABI 1).
pub(crate) const FS_WRITE_FILE: u64 = 1 << 1;
/// Open a file for reading (ABI 1).
pub(crate) const FS_READ_FILE: u64 = 1 << 2;
/// Open or list a directory (ABI 1).
pub(crate) const FS_READ_DIR: u64 = 1 << 3;
/// Remove (or rename away) an empty directory (ABI 1).
pub(crate) const FS_REMOVE_DIR: u64 = 1 << 4;
/// Unlink (or rename away) a file (ABI 1).
pub(crate) const FS_REMOVE_FILE: u64 = 1 << 5;
/// Create a character device (ABI 1).
pub(crate) const FS_MAKE_CHAR: u64 = 1 << 6;
/// Create a directory (ABI 1).
pub(crate) const FS_MAKE_DIR: u64 = 1 << 7;
/// Create a regular file (ABI 1).
pub(crate) const FS_MAKE_REG: u64 = 1 << 8;
/// Create a UNIX domain socket (ABI 1).
pub(crate) const FS_MAKE_SOCK: u64 = 1 << 9;
/// Create a named pipe (ABI 1).
pub(crate) const FS_MAKE_FIFO: u64 = 1 << 10;
/// Create a block device (ABI 1).
pub(crate) const FS_MAKE_BLOCK: u64 = 1 << 11;
/// Create a symbolic link (ABI 1).
pub(crate) const FS_MAKE_SYM: u64 = 1 << 12;
/// Link or rename a file to or from another directory (ABI 2).
pub(crate) const FS_REFER: u64 = 1 << 13;
/// Truncate a file (ABI 3).
pub(crate) const FS_TRUNCATE: u64 = 1 << 14;
/// `ioctl` on a device file (ABI 5).
pub(crate) const FS_IOCTL_DEV: u64 = 1 << 15;

// Network rights (`LANDLOCK_ACCESS_NET_*`, ABI 4).
/// Bind a TCP socket to a port.
pub(crate) const NET_BIND_TCP: u64 = 1 << 0;
/// Connect a TCP socket to a port.
pub(crate) const NET_CONNECT_TCP: u64 = 1 << 1;

// Scopes (`LANDLOCK_SCOPE_*`, ABI 6).
/// No connection to abstract UNIX sockets created outside the domain.
pub(crate) const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
/// No signal to processes outside the domain.
pub(crate) const SCOPE_SIGNAL: u64 = 1 << 1;

/// The rights a rule on something other than a directory may carry (any other right there makes
/// the kernel answer `EINVAL`).
pub(crate) const FS_FILE: u64 =
    FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;

/// The read rights: execute, read files, list directories (the same for every ABI).
pub(crate) const FS_READ: u64 = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR;

/// `LANDLOCK_CREATE_RULESET_VERSION`: `landlock_create_ruleset` returns the ABI version.
const CREATE_RULESET_VERSION: u32 = 1 << 0;
/// `LANDLOCK_RULE_PATH_BENEATH`.
const RULE_PATH_BENEATH: libc::c_int = 1;

/// `struct landlock_ruleset_attr`. The size passed to the kernel says which fields are used.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RulesetAttr {
    /// Handled file-system rights (ABI 1).
    pub(crate) handled_access_fs: u64,
    /// Handled network rights (ABI 4).
    pub(crate) handled_access_net: u64,
    /// Scopes (ABI 6).
    pub(crate) scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed: 12 bytes).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The file-system rights ABI `abi` knows (none for 0: no Landlock).
pub(crate) const fn fs_rights(abi: u32) -> u64 {
    match abi {
        0 => 0,
        1 => {
            FS_EXECUTE
                | FS_WRITE_FILE
                | FS_READ_FILE
                | FS_READ_DIR
                | FS_REMOVE_DIR
                | FS_REMOVE_FILE
                | FS_MAKE_CHAR
                | FS_MAKE_DIR
                | FS_MAKE_REG
                | FS_MAKE_SOCK
                | FS_MAKE_FIFO
                | FS_MAKE_BLOCK
                | FS_MAKE_SYM
        }
        2 => fs_rights(1) | FS_REFER,
        3 | 4 => fs_rights(2) | FS_TRUNCATE,
        _ => fs_rights(4) | FS_IOCTL_DEV,
    }
}

/// The network rights ABI `abi` knows.
pub(crate) const fn net_rights(abi: u32) -> u64 {
    if abi >= 4 {
        NET_BIND_TCP | NET_CONNECT_TCP
    } else {
        0
    }
}

/// The scopes ABI `abi` knows.
pub(crate) const fn scopes(abi: u32) -> u64 {
    if abi >= 6 {
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    } else {
        0
    }
}

/// The size of [`RulesetAttr`] to pass for ABI `abi`: only the fields that ABI knows, so an
/// older kernel does not refuse the call with `E2BIG`.
pub(crate) const fn attr_size(abi: u32) -> usize {
    match abi {
        0..=3 => 8,
        4 | 5 => 16,
        _ => 24,
    }
}

impl RulesetAttr {
    /// Everything ABI `abi` knows: all its file-system and network rights and scopes.
    pub(crate) const fn all(abi: u32) -> RulesetAttr {
        RulesetAttr {
            handled_access_fs: fs_rights(abi),
            handled_access_net: net_rights(abi),
            scoped: scopes(abi),
        }
    }
}

/// The rights a path-beneath rule may carry on a kernel of ABI `abi`: `wanted` without what that
/// ABI does not know (best effort), and without the directory-only rights when the rule is on
/// something other than a directory. Zero means no rule at all (the kernel refuses an empty one).
pub(crate) const fn rule_rights(wanted: u64, abi: u32, is_dir: bool) -> u64 {
    let known = wanted & fs_rights(abi);
    if is_dir { known } else { known & FS_FILE }
}

/// The Landlock ABI version of the running kernel (`None`: no Landlock, not built in or
/// disabled).
pub(crate) fn abi() -> Option<u32> {
    // SAFETY: with a null attribute pointer and size 0, this flag only asks for the version; no
    // memory is read or written.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0 as libc::size_t,
            CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(abi).ok().filter(|&v| v > 0)
}

/// A ruleset being built: its descriptor.
#[derive(Debug)]
pub(crate) struct Ruleset {
    fd: OwnedFd,
}

impl Ruleset {
    /// `landlock_create_ruleset` with `attr`, of which the first [`attr_size`]`(abi)` bytes are
    /// passed. The fields past that size must be zero (they are not sent).
    pub(crate) fn create(attr: &RulesetAttr, abi: u32) -> io::Result<Ruleset> {
        let size = attr_size(abi).min(size_of::<RulesetAttr>());
        // SAFETY: `attr` points to a live `RulesetAttr` of at least `size` bytes, which the
        // kernel only reads; flags are 0.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                attr as *const RulesetAttr,
                size,
                0 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::c_int::try_from(fd)
            .map_err(|_| io::Error::other("landlock_create_ruleset returned no descriptor"))?;
        // SAFETY: the kernel just created this descriptor (close-on-exec) and nobody else owns it.
        Ok(Ruleset {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// `landlock_add_rule`: allows `rights` beneath `parent` (a directory, or just that file).
    pub(crate) fn allow_beneath(&self, parent: BorrowedFd<'_>, rights: u64) -> io::Result<()> {
        let attr = PathBeneathAttr {
            allowed_access: rights,
            parent_fd: parent.as_raw_fd(),
        };
        // SAFETY: `attr` is a live, packed `landlock_path_beneath_attr` the kernel only reads;
        // both descriptors are open for the duration of the call; flags are 0.
        let done = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.fd.as_raw_fd(),
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0 as libc::c_uint,
            )
        };
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl From<Ruleset> for OwnedFd {
    fn from(ruleset: Ruleset) -> OwnedFd {
        ruleset.fd
    }
}

/// Opens `path` with `O_PATH` (no read or write access, enough for a rule), close-on-exec.
pub(crate) fn open_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    loop {
        // SAFETY: `path` is NUL-terminated and outlives the call; these flags need no mode.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: the descriptor was just opened and nobody else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// The values of the kernel's `linux/landlock.h`.
    #[test]
    fn constants_are_the_kernel_uapi() {
        let fs = [
            FS_EXECUTE,
            FS_WRITE_FILE,
            FS_READ_FILE,
            FS_READ_DIR,
            FS_REMOVE_DIR,
            FS_REMOVE_FILE,
            FS_MAKE_CHAR,
            FS_MAKE_DIR,
            FS_MAKE_REG,
            FS_MAKE_SOCK,
            FS_MAKE_FIFO,
            FS_MAKE_BLOCK,
            FS_MAKE_SYM,
            FS_REFER,
            FS_TRUNCATE,
            FS_IOCTL_DEV,
        ];
        for (bit, right) in fs.into_iter().enumerate() {
            assert_eq!(right, 1 << bit);
        }
        assert_eq!((NET_BIND_TCP, NET_CONNECT_TCP), (1, 2));
        assert_eq!((SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL), (1, 2));
        assert_eq!(CREATE_RULESET_VERSION, 1);
        assert_eq!(RULE_PATH_BENEATH, 1);
        assert_eq!(size_of::<RulesetAttr>(), 24);
        assert_eq!(size_of::<PathBeneathAttr>(), 12);
        assert_eq!(std::mem::align_of::<PathBeneathAttr>(), 1);
    }

    #[test]
    fn rights_per_abi() {
        assert_eq!(RulesetAttr::all(0), RulesetAttr::default());
        let expected = [
            // (abi, fs, net, scoped, size)
            (1, 0x1fff, 0, 0, 8),
            (2, 0x3fff, 0, 0, 8),
            (3, 0x7fff, 0, 0, 8),
            (4, 0x7fff, 3, 0, 16),
            (5, 0xffff, 3, 0, 16),
            (6, 0xffff, 3, 3, 24),
            (7, 0xffff, 3, 3, 24),
            (u32::MAX, 0xffff, 3, 3, 24),
        ];
        for (abi, fs, net, scoped, size) in expected {
            let attr = RulesetAttr::all(abi);
            assert_eq!(attr.handled_access_fs, fs, "ABI {abi}");
            assert_eq!(attr.handled_access_net, net, "ABI {abi}");
            assert_eq!(attr.scoped, scoped, "ABI {abi}");
            assert_eq!(attr_size(abi), size, "ABI {abi}");
        }
        assert_eq!(fs_rights(2) & !fs_rights(1), FS_REFER);
        assert_eq!(fs_rights(3) & !fs_rights(2), FS_TRUNCATE);
        assert_eq!(fs_rights(5) & !fs_rights(4), FS_IOCTL_DEV);
    }

    #[test]
    fn rules_on_files_carry_only_file_rights() {
        let all = fs_rights(6);
        // Directories keep everything the ABI knows.
        assert_eq!(rule_rights(FS_READ, 6, true), FS_READ);
        assert_eq!(rule_rights(all, 6, true), all);
        assert_eq!(rule_rights(all, 1, true), fs_rights(1));
        // Files: no READ_DIR, REFER, MAKE_*, REMOVE_*.
        assert_eq!(rule_rights(FS_READ, 6, false), FS_EXECUTE | FS_READ_FILE);
        assert_eq!(rule_rights(all, 6, false), FS_FILE);
        assert_eq!(
            rule_rights(all, 2, false),
            FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE
        );
        assert_eq!(
            rule_rights(all, 3, false),
            rule_rights(all, 2, false) | FS_TRUNCATE
        );
        // Nothing the ABI knows: no rule.
        assert_eq!(rule_rights(FS_IOCTL_DEV, 4, true), 0);
        assert_eq!(rule_rights(FS_READ_DIR, 6, false), 0);
    }

    /// The kernel accepts what [`rule_rights`] keeps for a file, and refuses a directory-only
    /// right there with `EINVAL`.
    #[test]
    fn the_kernel_agrees_on_file_rights() {
        let Some(abi) = abi() else {
            return;
        };
        let abi = abi.min(6);
        let Ok(ruleset) = Ruleset::create(&RulesetAttr::all(abi), abi) else {
            panic!("the kernel reports ABI {abi} but refuses a ruleset");
        };
        let file = tempfile::NamedTempFile::new().unwrap();
        let fd = open_path(file.path()).unwrap();
        ruleset
            .allow_beneath(fd.as_fd(), rule_rights(fs_rights(abi), abi, false))
            .unwrap();
        let err = ruleset
            .allow_beneath(fd.as_fd(), FS_READ_FILE | FS_READ_DIR)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        let dir = tempfile::tempdir().unwrap();
        let fd = open_path(dir.path()).unwrap();
        ruleset
            .allow_beneath(fd.as_fd(), rule_rights(fs_rights(abi), abi, true))
            .unwrap();
        // A right the ruleset does not handle: refused too.
        let partial = Ruleset::create(
            &RulesetAttr {
                handled_access_fs: FS_READ_FILE,
                ..RulesetAttr::default()
            },
            abi,
        )
        .unwrap();
        let err = partial
            .allow_beneath(fd.as_fd(), FS_READ_FILE | FS_READ_DIR)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }

    /// A ruleset built here confines the thread that enforces it (Landlock applies per thread
    /// without `LANDLOCK_RESTRICT_SELF_TSYNC`; the test's thread ends with it).
    #[test]
    fn a_ruleset_enforces() {
        let Some(abi) = abi() else {
            return;
        };
        let abi = abi.min(6);
        let allowed = tempfile::tempdir().unwrap();
        let denied = tempfile::tempdir().unwrap();
        std::fs::write(allowed.path().join("a"), "yes").unwrap();
        std::fs::write(denied.path().join("b"), "no").unwrap();
        let ruleset = Ruleset::create(&RulesetAttr::all(abi), abi).unwrap();
        let fd = open_path(allowed.path()).unwrap();
        ruleset
            .allow_beneath(fd.as_fd(), rule_rights(FS_READ, abi, true))
            .unwrap();
        let ruleset = OwnedFd::from(ruleset);
        let (a, b, write) = (
            allowed.path().join("a"),
            denied.path().join("b"),
            allowed.path().join("c"),
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
                std::fs::read_to_string(&a).map_err(|e| e.kind()),
                std::fs::read_to_string(&b).map_err(|e| e.raw_os_error()),
                std::fs::write(&write, "x").map_err(|e| e.raw_os_error()),
            )
        })
        .join()
        .unwrap();
        assert_eq!(outcome.0, Ok("yes".to_owned()));
        assert_eq!(outcome.1, Err(Some(libc::EACCES)));
        assert_eq!(outcome.2, Err(Some(libc::EACCES)));
        // This thread is not confined.
        assert_eq!(
            std::fs::read_to_string(denied.path().join("b")).unwrap(),
            "no"
        );
    }
}
