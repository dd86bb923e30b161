//! The router's own interface addresses, from getifaddrs(3) (Linux and FreeBSD alike).

use crate::inventory::sources::RouterAddress;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn addr_of(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: getifaddrs gives valid sockaddr pointers whose family says their real type.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let sin6 = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

fn prefix_len(mask: Option<IpAddr>) -> u8 {
    match mask {
        Some(IpAddr::V4(m)) => u32::from(m).count_ones() as u8,
        Some(IpAddr::V6(m)) => u128::from(m).count_ones() as u8,
        None => 0,
    }
}

/// Every IPv4/IPv6 address of every interface that is up.
pub fn router_addresses() -> Vec<RouterAddress> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: on success getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` walks the list getifaddrs returned; it stays valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_flags & (libc::IFF_UP as u32) == 0 || ifa.ifa_name.is_null() {
            continue;
        }
        let Some(ip) = addr_of(ifa.ifa_addr) else { continue };
        let prefix = prefix_len(addr_of(ifa.ifa_netmask));
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        if let Ok(net) = ipnet::IpNet::new(ip, prefix) {
            out.push(RouterAddress { interface: name, net });
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_listed() {
        let a = super::router_addresses();
        assert!(
            a.iter()
                .any(|r| r.net.addr().is_loopback() && r.net.prefix_len() > 0),
            "{a:?}"
        );
    }
}
