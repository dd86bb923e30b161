//! Packet direction relative to a host spec (pktvisor's `host_spec`): the networks that are
//! "us" (the router's own subnets). A packet is `in` when only its destination is local,
//! `out` when only its source is, `internal` when both are, `external` (transit) when
//! neither is. With an empty spec no direction is known and nothing is counted here.
//! Pure classification and counters; owns no addresses of its own.

use ipnet::IpNet;
use std::net::IpAddr;

/// The local networks. Few entries (interface subnets), so a linear scan is cheapest; the
/// networks are also kept as (address, mask) integers because `contains` runs twice per
/// packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSpec {
    nets: Vec<IpNet>,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl HostSpec {
    pub fn new(nets: Vec<IpNet>) -> Self {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for net in &nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()))),
            }
        }
        HostSpec { nets, v4, v6 }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => {
                let ip = u32::from(*ip);
                self.v4.iter().any(|&(net, mask)| ip & mask == net)
            }
            IpAddr::V6(ip) => {
                let ip = u128::from(*ip);
                self.v6.iter().any(|&(net, mask)| ip & mask == net)
            }
        }
    }

    /// The direction of a packet from `src` to `dst`; `None` with an empty spec.
    pub fn classify(&self, src: &IpAddr, dst: &IpAddr) -> Option<Direction> {
        if self.nets.is_empty() {
            return None;
        }
        Some(match (self.contains(src), self.contains(dst)) {
            (false, true) => Direction::In,
            (true, false) => Direction::Out,
            (true, true) => Direction::Internal,
            (false, false) => Direction::External,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    Internal,
    External,
}

impl Direction {
    pub const ALL: [Direction; 4] = [
        Direction::In,
        Direction::Out,
        Direction::Internal,
        Direction::External,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Internal => "internal",
            Direction::External => "external",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Packets and bytes (wire) per direction; exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionCounts {
    pub packets: [u64; 4],
    pub bytes: [u64; 4],
}

impl DirectionCounts {
    pub fn add(&mut self, d: Direction, wire: u64) {
        self.packets[d.index()] += 1;
        self.bytes[d.index()] += wire;
    }

    pub fn packets(&self, d: Direction) -> u64 {
        self.packets[d.index()]
    }

    pub fn bytes(&self, d: Direction) -> u64 {
        self.bytes[d.index()]
    }

    pub fn merge_from(&mut self, o: &DirectionCounts) {
        for i in 0..4 {
            self.packets[i] += o.packets[i];
            self.bytes[i] += o.bytes[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_which_side_is_local() {
        let spec = HostSpec::new(vec![
            "192.168.0.0/24".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            spec.classify(&ip("8.8.8.8"), &ip("192.168.0.5")),
            Some(Direction::In)
        );
        assert_eq!(
            spec.classify(&ip("192.168.0.5"), &ip("8.8.8.8")),
            Some(Direction::Out)
        );
        assert_eq!(
            spec.classify(&ip("fd00::1"), &ip("192.168.0.5")),
            Some(Direction::Internal)
        );
        assert_eq!(
            spec.classify(&ip("1.1.1.1"), &ip("192.168.1.5")),
            Some(Direction::External)
        );
        assert_eq!(HostSpec::default().classify(&ip("1.1.1.1"), &ip("2.2.2.2")), None);
    }
}
