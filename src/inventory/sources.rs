//! Turns what each source produced (neighbour entries, leases, scan reports, router
//! facts) into [`Observation`]s. Pure functions over parsed data.

use super::merge::{Observation, ServiceObservation};
use super::model::{Infra, NameSource, Proto, Source, Subnet, SubnetKind};
use crate::discovery::oui::{self, Mac};
use crate::discovery::passive::{Lease, Neighbour};
use crate::discovery::services::Match;
use crate::scan::HostReport;
use std::net::IpAddr;

/// The vendor of a MAC, none for locally administered (randomised) ones.
pub fn vendor_of(mac: Mac) -> Option<String> {
    if mac.is_locally_administered() {
        return None;
    }
    oui::vendor(mac).map(str::to_string)
}

pub fn from_neighbour(n: &Neighbour) -> Observation {
    let mut o = Observation::new(if n.ip.is_ipv4() { Source::Arp } else { Source::Ndp });
    o.ip = Some(n.ip);
    o.mac = Some(n.mac.0);
    o.vendor = vendor_of(n.mac);
    o
}

pub fn from_lease(l: &Lease) -> Observation {
    let mut o = Observation::new(Source::Dhcp);
    o.ip = Some(l.ip);
    o.mac = Some(l.mac.0);
    o.vendor = vendor_of(l.mac);
    if let Some(h) = &l.hostname {
        o.names.push((NameSource::Dhcp, h.clone()));
    }
    o
}

/// A service definition match as a service observation.
pub fn from_match(m: &Match) -> ServiceObservation {
    ServiceObservation {
        port: m.port,
        proto: Proto::Tcp,
        name: None,
        product: None,
        application: Some(m.name.clone()),
        category: Some(m.category.clone()),
        evidence: m.evidence.clone(),
    }
}

/// One host of a gatewatch scan (`source` is [`Source::Scan`]).
pub fn from_scan_host(h: &HostReport, source: Source) -> Observation {
    let mut o = Observation::new(source);
    o.ip = Some(h.ip);
    let mac = h.mac.as_deref().and_then(Mac::parse);
    o.mac = mac.map(|m| m.0);
    o.vendor = h.vendor.clone().or_else(|| mac.and_then(vendor_of));
    if let Some(name) = &h.hostname {
        o.names.push((NameSource::Dns, name.clone()));
    }
    for p in &h.ports {
        let product = [p.product.as_deref(), p.version.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let mut evidence = vec![format!("port {}/{} open", p.port, p.proto)];
        if let Some(b) = &p.banner {
            evidence.push(format!("banner '{}'", b.chars().take(60).collect::<String>()));
        }
        if let Some(t) = p.http.as_ref().and_then(|h| h.title.as_deref()) {
            evidence.push(format!("title '{t}'"));
        }
        let m = h.services.iter().find(|m| m.port == Some(p.port));
        o.services.push(ServiceObservation {
            port: Some(p.port),
            proto: if p.proto == "udp" { Proto::Udp } else { Proto::Tcp },
            name: Some(p.service.clone()).filter(|s| !s.is_empty()),
            product: Some(product).filter(|s| !s.is_empty()),
            application: m.map(|m| m.name.clone()),
            category: m.map(|m| m.category.clone()),
            evidence: m.map(|m| m.evidence.clone()).unwrap_or(evidence),
        });
        if p.port == 53 {
            o.infra.dns_server = true;
        }
    }
    for m in h.services.iter().filter(|m| m.port.is_none()) {
        o.services.push(from_match(m));
    }
    o
}

/// What a closed traffic window knows about local hosts: addresses seen on the wire
/// (with the MAC when the capture had Ethernet headers) and names from DNS answers
/// (the traffic engine's IP → name table). For the traffic runner to send on
/// `Discovery::traffic_sink`; the passive poll keeps only addresses inside the router's
/// own subnets, so the Internet does not become hosts.
pub fn from_traffic(seen: &[(IpAddr, Option<[u8; 6]>)], names: &[(IpAddr, &str)]) -> Vec<Observation> {
    let mut out: Vec<Observation> = seen
        .iter()
        .map(|(ip, mac)| {
            let mut o = Observation::new(Source::Traffic);
            o.ip = Some(*ip);
            o.mac = *mac;
            o.vendor = mac.and_then(|m| vendor_of(Mac(m)));
            o
        })
        .collect();
    for (ip, name) in names {
        let mut o = Observation::new(Source::Dns);
        o.ip = Some(*ip);
        o.names.push((NameSource::Dns, name.to_string()));
        out.push(o);
    }
    out
}

/// An address of one of the router's own interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterAddress {
    pub interface: String,
    pub net: ipnet::IpNet,
}

/// The subnets the router is attached to, plus the organisational Internet. The interface
/// holding the default route is WAN, as is any with a public address; names with a VLAN
/// tag (`eth0.20`, `vlan20`, `br-lan.3`) are VLANs; the rest LAN. Loopback, link-local
/// and IPv6 ULA/link-local duplicates of the same interface are kept (IPv6) or skipped
/// (link-local).
pub fn subnets(addresses: &[RouterAddress], default_route_interface: Option<&str>) -> Vec<Subnet> {
    let mut out: Vec<Subnet> = Vec::new();
    for a in addresses {
        let ip = a.net.addr();
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        if link_local {
            continue;
        }
        let public = match ip {
            IpAddr::V4(v4) => {
                let cgnat = v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64;
                !(v4.is_private() || cgnat)
            }
            IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) != 0xfc00,
        };
        let is_vlan = a.interface.contains('.') || a.interface.starts_with("vlan");
        let kind = if Some(a.interface.as_str()) == default_route_interface || (public && ip.is_ipv4()) {
            SubnetKind::Wan
        } else if is_vlan {
            SubnetKind::Vlan
        } else {
            SubnetKind::Lan
        };
        let cidr = a.net.trunc();
        if out.iter().any(|s| s.cidr == cidr) {
            continue;
        }
        out.push(Subnet {
            cidr,
            kind,
            interface: Some(a.interface.clone()),
            router_ip: Some(ip),
        });
    }
    out.push(Subnet {
        cidr: "0.0.0.0/0".parse().unwrap_or_else(|_| ipnet::IpNet::default()),
        kind: SubnetKind::Internet,
        interface: None,
        router_ip: None,
    });
    out
}

/// Facts about the router itself: its own addresses (gateway of its LANs), and the
/// servers it runs or points at.
pub fn router_observations(
    addresses: &[RouterAddress],
    dhcp_server_here: bool,
    dns_server_here: bool,
) -> Vec<Observation> {
    addresses
        .iter()
        .filter(|a| !a.net.addr().is_loopback())
        .filter(|a| match a.net.addr() {
            IpAddr::V4(v4) => !v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .map(|a| {
            let mut o = Observation::new(Source::Router);
            o.ip = Some(a.net.addr());
            o.label = Some(a.interface.clone());
            o.infra = Infra {
                gateway: true,
                dns_server: dns_server_here,
                dhcp_server: dhcp_server_here,
            };
            o
        })
        .collect()
}

/// Nameservers from resolv.conf text.
pub fn resolv_conf_nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("nameserver")).then(|| f.next()).flatten()
        })
        .filter_map(|s| s.split('%').next().and_then(|s| s.parse().ok()))
        .collect()
}

/// The default-route gateway and its interface from Linux `/proc/net/route`.
pub fn proc_net_route_default(text: &str) -> Option<(String, IpAddr)> {
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(iface), Some(dest), Some(gw)) = (f.first(), f.get(1), f.get(2)) else {
            continue;
        };
        if *dest != "00000000" {
            continue;
        }
        let gw = u32::from_str_radix(gw, 16).ok()?;
        // The kernel prints the address in host (little-endian) byte order.
        let ip = std::net::Ipv4Addr::from(gw.swap_bytes());
        return Some((iface.to_string(), IpAddr::V4(ip)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_classified_from_interfaces_and_the_default_route() {
        let a = |i: &str, n: &str| RouterAddress {
            interface: i.into(),
            net: n.parse().unwrap(),
        };
        let addrs = [
            a("lo", "127.0.0.1/8"),
            a("br-lan", "192.168.1.1/24"),
            a("br-lan", "fd00:1::1/64"),
            a("br-lan", "fe80::1/64"),
            a("eth0.20", "10.20.0.1/24"),
            a("wan", "203.0.113.7/24"),
            a("ppp0", "100.64.3.2/32"),
        ];
        let s = subnets(&addrs, Some("ppp0"));
        let kind = |c: &str| s.iter().find(|x| x.cidr.to_string() == c).map(|x| x.kind.clone());
        assert_eq!(kind("192.168.1.0/24"), Some(SubnetKind::Lan));
        assert_eq!(kind("fd00:1::/64"), Some(SubnetKind::Lan));
        assert_eq!(kind("10.20.0.0/24"), Some(SubnetKind::Vlan));
        assert_eq!(kind("203.0.113.0/24"), Some(SubnetKind::Wan));
        assert_eq!(kind("100.64.3.2/32"), Some(SubnetKind::Wan));
        assert_eq!(kind("0.0.0.0/0"), Some(SubnetKind::Internet));
        assert_eq!(s.len(), 6, "loopback and link-local are not subnets: {s:?}");
    }

    #[test]
    fn default_route_and_resolvers() {
        // Real /proc/net/route layout (a Debian router, gateway 192.168.1.254 on enp1s0).
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     enp1s0\t00000000\tFE01A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                     enp1s0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            proc_net_route_default(route),
            Some(("enp1s0".into(), "192.168.1.254".parse().unwrap()))
        );
        let resolv = "# generated\nnameserver 192.168.1.2\nnameserver fe80::1%eth0\nsearch lan\n";
        assert_eq!(
            resolv_conf_nameservers(resolv),
            vec![
                "192.168.1.2".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
    }
}
