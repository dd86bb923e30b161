//! The machine's network interfaces (getifaddrs(3), the same on Linux and FreeBSD): names,
//! up/loopback flags and addresses with their prefix lengths. Used for the default capture
//! set (every interface that is up and not loopback) and the default host spec (the
//! router's own subnets).
//!
//! Owns reading the interface list. Must not open captures nor decide policy beyond the
//! two defaults below.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub up: bool,
    /// Up with a carrier (`IFF_RUNNING`).
    pub running: bool,
    pub loopback: bool,
    /// Addresses with their prefix length, e.g. 192.168.1.1/24 (host bits kept).
    pub addresses: Vec<IpNet>,
}

/// Every interface, in the kernel's order, each once.
pub fn list_interfaces() -> std::io::Result<Vec<Interface>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut out: Vec<Interface> = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let flags = ifa.ifa_flags as libc::c_int;
        let idx = match out.iter().position(|i| i.name == name) {
            Some(i) => i,
            None => {
                out.push(Interface {
                    name,
                    up: flags & libc::IFF_UP != 0,
                    running: flags & libc::IFF_RUNNING != 0,
                    loopback: flags & libc::IFF_LOOPBACK != 0,
                    addresses: Vec::new(),
                });
                out.len() - 1
            }
        };
        // SAFETY: the sockaddr pointers are null or point to sockaddrs of their family.
        let addr = unsafe { sockaddr_ip(ifa.ifa_addr) };
        let mask = unsafe { sockaddr_ip(ifa.ifa_netmask) };
        if let Some(addr) = addr {
            let prefix = match (addr, mask) {
                (_, Some(m)) => prefix_len(m),
                (IpAddr::V4(_), None) => 32,
                (IpAddr::V6(_), None) => 128,
            };
            if let Ok(net) = IpNet::new(addr, prefix) {
                if !out[idx].addresses.contains(&net) {
                    out[idx].addresses.push(net);
                }
            }
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The default capture set: interfaces that are up and not loopback.
pub fn default_capture_interfaces(list: &[Interface]) -> Vec<String> {
    list.iter()
        .filter(|i| i.up && !i.loopback)
        .map(|i| i.name.clone())
        .collect()
}

/// The default host spec: the subnets of every interface that is up (loopback included,
/// since its traffic is the router's own), network addresses, each once.
pub fn local_subnets(list: &[Interface]) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = Vec::new();
    for net in list.iter().filter(|i| i.up).flat_map(|i| &i.addresses) {
        let n = net.trunc();
        if !nets.contains(&n) {
            nets.push(n);
        }
    }
    nets
}

/// Reads an IPv4 or IPv6 address out of a sockaddr; other families give `None`.
///
/// # Safety
/// `sa` is null or points to a sockaddr whose family field tells its real type.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
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

/// Prefix length of a netmask (leading one bits; a non-contiguous mask counts its ones).
fn prefix_len(mask: IpAddr) -> u8 {
    match mask {
        IpAddr::V4(m) => u32::from(m).count_ones() as u8,
        IpAddr::V6(m) => u128::from(m).count_ones() as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_with_its_address_and_prefix() {
        let list = list_interfaces().expect("getifaddrs");
        let lo = list
            .iter()
            .find(|i| i.loopback)
            .expect("every Linux and FreeBSD host has a loopback interface");
        assert!(lo.up);
        let v4: IpNet = "127.0.0.1/8".parse().unwrap();
        assert!(lo.addresses.contains(&v4), "{lo:?}");
        assert!(!default_capture_interfaces(&list).contains(&lo.name));
        assert!(local_subnets(&list).contains(&"127.0.0.0/8".parse().unwrap()));
    }

    #[test]
    fn netmasks_become_prefix_lengths() {
        assert_eq!(prefix_len("255.255.255.0".parse().unwrap()), 24);
        assert_eq!(prefix_len("255.255.255.255".parse().unwrap()), 32);
        assert_eq!(prefix_len("ffff:ffff:ffff:ffff::".parse().unwrap()), 64);
    }

    #[test]
    fn defaults_skip_down_and_loopback_interfaces() {
        let iface = |name: &str, up, loopback, addr: &str| Interface {
            name: name.into(),
            up,
            running: up,
            loopback,
            addresses: vec![addr.parse().unwrap()],
        };
        let list = vec![
            iface("lo", true, true, "127.0.0.1/8"),
            iface("lan0", true, false, "192.168.1.1/24"),
            iface("wan0", false, false, "203.0.113.7/29"),
        ];
        assert_eq!(default_capture_interfaces(&list), vec!["lan0".to_string()]);
        let nets: Vec<String> = local_subnets(&list).iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, vec!["127.0.0.0/8", "192.168.1.0/24"]);
    }
}
