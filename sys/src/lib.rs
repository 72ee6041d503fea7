//! The system calls hometun needs that its crates do not offer, each behind one safe function.
//! The rest of the workspace forbids `unsafe`; the few blocks here are each one system call
//! whose arguments are plain integers.

use std::io;
use std::os::fd::AsRawFd;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_that_is_not_a_tun_device_is_an_error_not_a_crash() {
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(tun_set_offload(&file, TUN_F_CSUM | TUN_F_TSO4).is_err());
    }
}
