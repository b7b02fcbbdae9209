//! Capabilities in the child: the securebits it locks (no capability from `exec` as uid 0, none
//! kept across `setuid`, none made ambient) and the drop of every capability set. Both are
//! used between `fork` and `exec`: raw system calls on stack values, async-signal-safe.

use std::io;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
/// SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED`: uid 0 gains no capability
/// from `exec`, capabilities are not kept across `setuid`, none can be made ambient, and none of
/// this can be undone.
pub(super) const SECUREBITS_LOCKED: libc::c_ulong = 0x01 | 0x02 | 0x20 | 0x40 | 0x80;

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
pub(super) fn drop_all_capabilities() -> io::Result<()> {
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
