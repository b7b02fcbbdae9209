//! The child's seccomp filter: a classic BPF program, built in the parent, that kills the
//! process on the system calls the sandboxed code has no business making (on x86_64 and
//! aarch64; an empty filter elsewhere).

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
