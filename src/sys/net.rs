//! The host's local networks, as Scope's probe reports them in its Host node.
//!
//! Scope lists every interface address with its prefix length (`127.0.0.1/8`,
//! `192.0.2.2/24`; see `fixtures/go-probe-report.json`), i.e. the address itself rather than the
//! masked network. This module reads them from `getifaddrs` and returns them sorted and unique.
//!
//! Out of scope: IPv6 (Scope's probe reports IPv4 only), interface names and link state.

use std::io;
use std::net::Ipv4Addr;

/// Returns the IPv4 address and prefix length of every configured interface address, formatted
/// `a.b.c.d/len`, sorted and without duplicates.
pub fn local_networks() -> io::Result<Vec<String>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the kernel list it points to is freed
    // by `IfAddrs::drop` below and nowhere else.
    super::cvt(unsafe { libc::getifaddrs(&mut head) })?;
    let list = IfAddrs(head);
    let mut networks = Vec::new();
    let mut cursor = list.0;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a non-null node of the list getifaddrs returned, alive until
        // `list` is dropped after this loop.
        let ifa = unsafe { &*cursor };
        if let Some((addr, prefix)) = ipv4_with_prefix(ifa) {
            networks.push(format!("{addr}/{prefix}"));
        }
        cursor = ifa.ifa_next;
    }
    drop(list);
    networks.sort();
    networks.dedup();
    Ok(networks)
}

/// The IPv4 address and netmask prefix length of one entry, if it has both.
fn ipv4_with_prefix(ifa: &libc::ifaddrs) -> Option<(Ipv4Addr, u32)> {
    let addr = ipv4_of(ifa.ifa_addr)?;
    let mask = ipv4_of(ifa.ifa_netmask)?;
    // A netmask is contiguous ones; count them the way Go's `IPMask.Size` would for the valid
    // case. A non-contiguous mask (never set by Linux) still yields its number of ones.
    Some((addr, u32::from(mask).count_ones()))
}

fn ipv4_of(sa: *const libc::sockaddr) -> Option<Ipv4Addr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: getifaddrs gives either null or a pointer to a valid sockaddr whose family field
    // is readable; we only reinterpret it as sockaddr_in once the family says AF_INET, in which
    // case the kernel allocated a full sockaddr_in. read_unaligned avoids assuming alignment.
    unsafe {
        let family = std::ptr::addr_of!((*sa).sa_family).read_unaligned();
        if i32::from(family) != libc::AF_INET {
            return None;
        }
        let sin = sa.cast::<libc::sockaddr_in>().read_unaligned();
        Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    }
}

/// Owns the list returned by `getifaddrs`.
struct IfAddrs(*mut libc::ifaddrs);

impl Drop for IfAddrs {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful getifaddrs and is freed exactly once.
        unsafe { libc::freeifaddrs(self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_loopback_sorted_and_unique() {
        let nets = local_networks().unwrap();
        assert!(nets.iter().any(|n| n == "127.0.0.1/8"), "{nets:?}");
        let mut sorted = nets.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(nets, sorted);
        for n in &nets {
            let (addr, len) = n.split_once('/').unwrap();
            addr.parse::<Ipv4Addr>().unwrap();
            assert!(len.parse::<u32>().unwrap() <= 32);
        }
    }
}
