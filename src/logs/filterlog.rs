//! pfSense / OPNsense `filterlog` CSV records, sans-IO.
//!
//! Field order (OPNsense `filterlog` and pfSense `filter_log.inc`): `rule, subrule, anchor,
//! tracker, interface, reason, action, direction, ipversion`, then for IPv4 `tos, ecn, ttl,
//! id, offset, flags, protonum, protoname, length, src, dst` and for IPv6 `class, flowlabel,
//! hoplimit, protoname, protonum, length, src, dst`, then per protocol: TCP `srcport,
//! dstport, datalen, tcpflags, seq, ack, window, urg, options`; UDP `srcport, dstport,
//! datalen`; ICMP/ICMPv6 type-specific fields (kept verbatim in `icmp_detail`); CARP
//! `type, ttl, vhid, version, advskew, advbase`. A record cut short is returned with what it
//! has and `partial: true`; a value that does not parse (IP, port) is `None`.

use crate::model::{Direction, FirewallAction, FirewallEvent, FirewallFormat};
use std::net::IpAddr;

/// The smallest record we accept: the common part up to the IP version.
const COMMON_FIELDS: usize = 9;

/// Parses a `filterlog` message; `None` when it does not look like one.
pub fn parse(message: &str) -> Option<FirewallEvent> {
    let f: Vec<&str> = message.trim().split(',').collect();
    if f.len() < COMMON_FIELDS || !f[3].bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let mut ev = FirewallEvent::new(FirewallFormat::Filterlog);
    ev.rule = non_empty(f[0]);
    ev.tracker = non_empty(f[3]);
    ev.interface = non_empty(f[4]);
    ev.reason = non_empty(f[5]);
    ev.action = match f[6] {
        "pass" => Some(FirewallAction::Pass),
        "block" => Some(FirewallAction::Block),
        "reject" => Some(FirewallAction::Reject),
        _ => None,
    };
    ev.direction = match f[7] {
        "in" => Some(Direction::In),
        "out" => Some(Direction::Out),
        _ => None,
    };
    let get = |i: usize| f.get(i).copied();
    let proto_start = match f[8] {
        "4" => {
            ev.ip_version = Some(4);
            ev.ttl = get(11).and_then(|v| v.parse().ok());
            ev.protocol = get(16).and_then(protocol_name);
            ev.length = get(17).and_then(|v| v.parse().ok());
            ev.src = get(18).and_then(ip);
            ev.dst = get(19).and_then(ip);
            20
        }
        "6" => {
            ev.ip_version = Some(6);
            ev.ttl = get(11).and_then(|v| v.parse().ok());
            ev.protocol = get(12).and_then(protocol_name);
            ev.length = get(14).and_then(|v| v.parse().ok());
            ev.src = get(15).and_then(ip);
            ev.dst = get(16).and_then(ip);
            17
        }
        _ => {
            ev.partial = true;
            return Some(ev);
        }
    };
    let rest = f.get(proto_start..).unwrap_or(&[]);
    let needed = match ev.protocol.as_deref() {
        Some("tcp") => {
            ev.tcp_flags = rest.get(3).map(|s| tcp_flags(s));
            4
        }
        Some("udp") => 3,
        Some("icmp") | Some("icmpv6") => {
            ev.icmp_detail = Some(rest.iter().map(|s| (*s).to_owned()).collect());
            1
        }
        _ => 0,
    };
    if matches!(ev.protocol.as_deref(), Some("tcp") | Some("udp")) {
        ev.src_port = rest.first().and_then(|v| v.parse().ok());
        ev.dst_port = rest.get(1).and_then(|v| v.parse().ok());
    }
    ev.partial = f.len() < proto_start || rest.len() < needed;
    Some(ev)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn protocol_name(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "" => None,
        "ipv6-icmp" | "icmp6" => Some("icmpv6".to_owned()),
        _ => Some(lower),
    }
}

/// pf's flag letters (`S`, `SA`, `FPA`, …) as names.
fn tcp_flags(s: &str) -> Vec<String> {
    s.chars()
        .filter_map(|c| {
            Some(match c {
                'S' => "SYN",
                'A' => "ACK",
                'F' => "FIN",
                'R' => "RST",
                'P' => "PSH",
                'U' => "URG",
                'E' => "ECE",
                'W' => "CWR",
                _ => return None,
            })
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_tcp() {
        let ev = parse("146,,,1535324496,igb1.12,match,block,in,4,0x0,,63,12617,0,DF,6,tcp,60,10.170.12.50,1.1.1.1,49724,853,0,S,1891286705,,64240,,mss;sackOK;TS;nop;wscale").unwrap();
        assert_eq!(ev.action, Some(FirewallAction::Block));
        assert_eq!(ev.src.unwrap().to_string(), "10.170.12.50");
        assert_eq!(
            (ev.src_port, ev.dst_port, ev.length, ev.ttl),
            (Some(49724), Some(853), Some(60), Some(63))
        );
        assert_eq!(ev.tcp_flags, Some(vec!["SYN".to_owned()]));
        assert!(!ev.partial);
    }

    #[test]
    fn ipv6_udp_and_icmpv6() {
        let ev = parse("6,,,1000000105,igb1.27,match,block,in,6,0x00,0xf6279,1,UDP,17,32,fe80::208:9bff:fef3:652b,ff02::1:2,546,547,32").unwrap();
        assert_eq!(
            (ev.protocol.as_deref(), ev.src_port, ev.ttl),
            (Some("udp"), Some(546), Some(1))
        );
        let ev = parse("32,,,1535324496a,igb0,match,pass,in,6,0x0,0x00000,255,ipv6-icmp,58,16,fe80::208:9bff:fef3:652b,ff02::1:2,datalength=16").unwrap();
        assert_eq!(ev.protocol.as_deref(), Some("icmpv6"));
        assert_eq!(ev.icmp_detail, Some(vec!["datalength=16".to_owned()]));
    }

    #[test]
    fn bad_values_are_none_never_guessed() {
        let ev = parse(
            "146,,,1535324496,igb1.12,match,block,in,4,0x0,,63,12617,0,DF,6,tcp,60,999.1.1.1,1.1.1.1,70000",
        )
        .unwrap();
        assert_eq!((ev.src, ev.src_port), (None, None));
        assert!(ev.partial);
        let ev = parse("146,,,1535324496,igb1.12,match,block,in,9,0x0").unwrap();
        assert!(ev.partial && ev.ip_version.is_none());
        assert!(parse("not,a,filterlog").is_none());
    }
}
