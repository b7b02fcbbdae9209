//! The operating-system half of the sandbox: what the child does between `fork` and `exec`
//! (session, network namespace, resource limits, identity, seccomp filter), the control pipe, and
//! killing the child's process group.
//!
//! Everything that needs memory is prepared in the parent ([`ChildPlan::new`]); the closure run in
//! the child ([`ChildPlan::apply`]) only makes system calls on values it owns, so it stays
//! async-signal-safe.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Who the child runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    /// The parent's own user.
    Unchanged,
    /// Switch to `uid`/`gid` (the parent is root). With `read_all`, the child keeps
    /// `CAP_DAC_READ_SEARCH` (read any file, write none of root's) so that an interpreter installed
    /// where the unprivileged user cannot reach it (e.g. under `/root`) still runs.
    Switch { uid: u32, gid: u32, read_all: bool },
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
        }
    }

    /// Runs in the child after `fork`, before `exec`.
    ///
    /// # Safety argument
    ///
    /// Only async-signal-safe system calls (`setsid`, `unshare`, `write`, `setrlimit`, `prctl`,
    /// `setgroups`, `setgid`, `setuid`, `capset`, `fcntl`, `close_range`) are made, on values owned
    /// by `self` that were fully built before `fork`; nothing allocates, locks or unwinds
    /// (`io::Error::last_os_error` only stores an integer). Returning an error makes the standard
    /// library report it to the parent and exit the child without running `exec`.
    pub(crate) fn apply(&self) -> io::Result<()> {
        // SAFETY: see the safety argument above; every pointer passed is to a live value owned by
        // `self` or on this stack frame, and every return value is checked.
        unsafe {
            // Own session and process group, so the parent can kill everything the child starts.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }

            // No network: a fresh network namespace holds only a downed loopback device.
            let mut isolated = false;
            if self.isolate_network {
                // Without privilege, a new user namespace makes a network namespace possible
                // (where unprivileged user namespaces are enabled).
                isolated = libc::unshare(libc::CLONE_NEWNET) == 0
                    || (libc::geteuid() != 0
                        && libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) == 0);
            }
            let note: &[u8] = if isolated { b"netns=1\n" } else { b"netns=0\n" };
            if libc::write(self.ctl_fd, note.as_ptr().cast(), note.len()) < 0 {
                return Err(io::Error::last_os_error());
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

            if let Identity::Switch { uid, gid, read_all } = self.identity {
                if read_all && libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if read_all {
                    keep_only_read_search()?;
                }
            }

            if !self.filter.is_empty() {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
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

const CAP_DAC_READ_SEARCH: u32 = 2;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

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

/// After `setuid` with `PR_SET_KEEPCAPS`: keeps `CAP_DAC_READ_SEARCH` alone, as an ambient
/// capability so it survives `exec`. Async-signal-safe (two system calls on stack values).
fn keep_only_read_search() -> io::Result<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let bit = 1u32 << CAP_DAC_READ_SEARCH;
    let data = [
        CapData {
            effective: bit,
            permitted: bit,
            inheritable: bit,
        },
        CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    // SAFETY: capset reads a version-3 header and two data structs, which we pass.
    unsafe {
        if libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE,
            CAP_DAC_READ_SEARCH as libc::c_ulong,
            0,
            0,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
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
/// `CLONE_THREAD`; `clone3` answers ENOSYS so the C library falls back to `clone`), sockets, and
/// the system calls a sandboxed program never needs (ptrace, namespaces, mounts, modules, bpf,
/// io_uring, keyrings…). Threads stay allowed (they count against `RLIMIT_NPROC`). Empty on
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
        (libc::SYS_acct, eperm),
        (libc::SYS_swapon, eperm),
        (libc::SYS_swapoff, eperm),
        (libc::SYS_reboot, eperm),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        denied.push((libc::SYS_fork, eperm));
        denied.push((libc::SYS_vfork, eperm));
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
