//! The system calls hometun needs that its crates do not offer, each behind one safe function.
//! The rest of the workspace forbids `unsafe`; the few blocks here are each one system call
//! whose arguments are plain integers.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `TUNSETOFFLOAD` from `<linux/if_tun.h>`: `_IOW('T', 208, unsigned int)`.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;

/// The kernel may hand the device packets whose TCP or UDP checksum is left to the reader
/// (`VIRTIO_NET_HDR_F_NEEDS_CSUM`), and accepts such packets from it.
pub const TUN_F_CSUM: u32 = 0x01;
/// The kernel may hand the device IPv4 TCP packets larger than its MTU, to be cut by the
/// reader at the segment size the virtio-net header gives, and accepts such packets from it.
pub const TUN_F_TSO4: u32 = 0x02;

/// Tells the tun `device` (opened with `IFF_VNET_HDR`) which offloads its reader
/// handles. Fails with the kernel's error (`EINVAL` for a device without a virtio-net header).
pub fn tun_set_offload(device: &impl AsRawFd, offloads: u32) -> io::Result<()> {
    let fd = device.as_raw_fd();
    // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned int of flags) and reads or
    // writes no memory of ours; `device` is borrowed, so its descriptor stays open for the call. On a
    // descriptor that is not a tun device the kernel answers with an error, nothing else.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(fd, TUNSETOFFLOAD as _, libc::c_ulong::from(offloads)) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets how many packets the kernel queues for network interface `ifname` (`txqueuelen`; for a
/// tun device, the packets waiting for its reader). Fails with the kernel's error (`ENODEV` for
/// no such interface, `EPERM` without CAP_NET_ADMIN) or `InvalidInput` for a name the kernel
/// cannot take.
pub fn set_tx_queue_len(ifname: &str, len: u32) -> io::Result<()> {
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("no interface can be named {ifname:?}")));
    }
    let len = libc::c_int::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "queue length out of range"))?;
    // SAFETY: socket() takes plain integers and returns a new descriptor or -1; it touches no
    // memory of ours.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket() and nothing else owns it; the OwnedFd closes it.
    #[allow(unsafe_code)]
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `ifreq` is plain data (a name and a union of integers and addresses); all zeroes
    // is a valid value of it.
    #[allow(unsafe_code)]
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (to, from) in request.ifr_name.iter_mut().zip(name) {
        *to = *from as libc::c_char;
    }
    // The kernel reads the length from the union's first int (`ifr_qlen`, also `ifr_metric`).
    request.ifr_ifru.ifru_metric = len;
    // SAFETY: SIOCSIFTXQLEN reads the `ifreq` we pass (a NUL-terminated name, checked above, and
    // an int); it lives on our stack across the call, and `socket` stays open for it.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFTXQLEN as _, &request) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Heap memory glibc's allocator keeps once freed, instead of handing it back to the kernel.
const KEEP_FREED_BYTES: libc::c_int = 64 << 20;
/// Blocks from this size up get a mapping of their own (glibc starts at 128 KiB).
const OWN_MAPPING_FROM_BYTES: libc::c_int = 1 << 20;

/// Tells glibc's allocator to keep freed memory for reuse (up to 64 MiB free at the top of
/// each heap) and to serve blocks under 1 MiB from its heaps. By default it returns a heap's
/// top to the kernel once 128 KiB of it is free and maps every block from 128 KiB up on its
/// own; a tunnel that frees and takes back 64–128 KiB packet buffers thousands of times a
/// second then pays a page fault and a zeroed page for every 4 KiB it moves (about 90,000
/// faults a second at 2 Gbit/s). Call it before any thread starts. Returns whether the
/// allocator took the settings (always `false` off glibc, where there is nothing to set).
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt() takes two integers and changes only the allocator's own settings.
        #[allow(unsafe_code)]
        let set = |option, value| unsafe { libc::mallopt(option, value) } == 1;
        set(libc::M_TRIM_THRESHOLD, KEEP_FREED_BYTES) & set(libc::M_MMAP_THRESHOLD, OWN_MAPPING_FROM_BYTES)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_that_is_not_a_tun_device_is_an_error_not_a_crash() {
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(tun_set_offload(&file, TUN_F_CSUM | TUN_F_TSO4).is_err());
    }

    #[test]
    fn names_the_kernel_cannot_take_are_refused_before_any_call() {
        for name in ["", "a-name-longer-than-15", "nul\0inside"] {
            let error = set_tx_queue_len(name, 1000).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
        assert!(set_tx_queue_len("hometun-absent", 1000).is_err(), "no such interface");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_allocator_settings() {
        assert!(keep_freed_memory());
    }
}
