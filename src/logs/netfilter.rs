//! Linux netfilter log records, sans-IO: the `KEY=value` text the kernel writes for
//! iptables `LOG`, nftables `log`, OpenWrt fw3/fw4 and UniFi gateways
//! (`[prefix]IN=eth0 OUT= MAC=… SRC=… DST=… LEN=… TTL=… PROTO=TCP SPT=… DPT=… SYN`).
//!
//! The verdict comes from the log prefix, the only place it is written: UniFi's
//! `[RULESET-RULE-A|D|R]`, or a word such as `DROP`, `REJECT`, `ACCEPT` in the prefix
//! (`iptables DROP_INPUT:`, fw3 `DROP(src wan)`, fw4 `drop wan in:`, firewalld
//! `FINAL_REJECT:`). No verdict word means `action: None`. The first occurrence of a key
//! wins (a later `SRC=` belongs to an ICMP error's inner header). A record whose start was
//! cut off by the sender (no `IN=`, but `PROTO=`) is a `netfilter-log-fragment`.

use crate::model::{Direction, FirewallAction, FirewallEvent, FirewallFormat};
use std::net::IpAddr;

const TCP_FLAGS: [&str; 8] = ["CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN"];

/// True when `message` carries a netfilter record (full or fragment).
pub fn looks_like(message: &str) -> bool {
    find_in_key(message).is_some() || has_key(message, "PROTO")
}

/// Parses a netfilter record; `None` when there is none.
pub fn parse(message: &str) -> Option<FirewallEvent> {
    let (mut ev, body) = match find_in_key(message) {
        Some(pos) => {
            let mut ev = FirewallEvent::new(FirewallFormat::Netfilter);
            ev.prefix = prefix(&message[..pos]);
            (ev, &message[pos..])
        }
        None if has_key(message, "PROTO") => {
            let mut ev = FirewallEvent::new(FirewallFormat::NetfilterFragment);
            ev.partial = true;
            (ev, message)
        }
        None => return None,
    };
    let mut seen: Vec<&str> = Vec::with_capacity(24);
    let mut flags = Vec::new();
    let mut v6_hint = false;
    for tok in body.split_ascii_whitespace() {
        let Some((key, value)) = tok.split_once('=') else {
            if TCP_FLAGS.contains(&tok) {
                flags.push(tok.to_owned());
            }
            continue;
        };
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let value = (!value.is_empty()).then_some(value);
        match key {
            "IN" => ev.in_interface = value.map(str::to_owned),
            "OUT" => ev.out_interface = value.map(str::to_owned),
            "MAC" => ev.mac = value.map(str::to_owned),
            "SRC" => ev.src = value.and_then(|v| v.parse::<IpAddr>().ok()),
            "DST" => ev.dst = value.and_then(|v| v.parse::<IpAddr>().ok()),
            "LEN" => ev.length = value.and_then(|v| v.parse().ok()),
            "TTL" | "HOPLIMIT" => ev.ttl = value.and_then(|v| v.parse().ok()),
            "TC" | "FLOWLBL" => v6_hint = true,
            "PROTO" => ev.protocol = value.map(|v| v.to_ascii_lowercase()),
            "SPT" => ev.src_port = value.and_then(|v| v.parse().ok()),
            "DPT" => ev.dst_port = value.and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    if ev.protocol.as_deref() == Some("tcp") {
        ev.tcp_flags = Some(flags);
    }
    if ev.vendor_format == FirewallFormat::Netfilter {
        ev.ip_version = match ev.src.or(ev.dst) {
            Some(IpAddr::V4(_)) => Some(4),
            Some(IpAddr::V6(_)) => Some(6),
            None if v6_hint => Some(6),
            None => None,
        };
        ev.direction = match (&ev.in_interface, &ev.out_interface) {
            (Some(_), Some(_)) => Some(Direction::Forward),
            (Some(_), None) => Some(Direction::In),
            (None, Some(_)) => Some(Direction::Out),
            (None, None) => None,
        };
        ev.interface = ev.in_interface.clone().or_else(|| ev.out_interface.clone());
        if let Some(p) = ev.prefix.clone() {
            apply_prefix(&mut ev, &p);
        }
    }
    Some(ev)
}

/// Byte offset of the `IN=` key that starts the record.
fn find_in_key(message: &str) -> Option<usize> {
    let bytes = message.as_bytes();
    // One look for the last `OUT=` keeps hostile lines full of `IN=` linear.
    let last_out = message.rfind("OUT=")?;
    let mut from = 0;
    while let Some(i) = message[from..].find("IN=").map(|i| i + from) {
        if i > last_out {
            return None;
        }
        if i == 0 || !bytes[i - 1].is_ascii_alphanumeric() {
            return Some(i);
        }
        from = i + 3;
    }
    None
}

fn has_key(s: &str, key: &str) -> bool {
    s.split_ascii_whitespace()
        .any(|t| t.split_once('=').is_some_and(|(k, _)| k == key))
}

/// The log prefix without the kernel's `[  123.456]` uptime stamp; `None` if empty.
fn prefix(raw: &str) -> Option<String> {
    let mut p = raw.trim();
    if let Some(inner) = p.strip_prefix('[') {
        if let Some(end) = inner.find(']') {
            let stamp = inner[..end].trim();
            if !stamp.is_empty() && stamp.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                p = inner[end + 1..].trim();
            }
        }
    }
    (!p.is_empty()).then(|| p.to_owned())
}

/// Verdict, ruleset and rule from the prefix.
fn apply_prefix(ev: &mut FirewallEvent, p: &str) {
    // UniFi: [RULESET-RULE-A], [WAN_IN-D]
    if let Some(inner) = p.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        if let Some((name, verdict)) = inner.rsplit_once('-') {
            let action = match verdict {
                "A" => Some(FirewallAction::Pass),
                "D" => Some(FirewallAction::Block),
                "R" => Some(FirewallAction::Reject),
                _ => None,
            };
            if action.is_some() {
                ev.action = action;
                match name.rsplit_once('-') {
                    Some((ruleset, rule)) if !ruleset.is_empty() && !rule.is_empty() => {
                        ev.ruleset = Some(ruleset.to_owned());
                        ev.rule = Some(rule.to_owned());
                    }
                    _ => ev.ruleset = (!name.is_empty()).then(|| name.to_owned()),
                }
                return;
            }
        }
    }
    // fw3: DROP(src wan) / REJECT(dest lan)
    if let Some((_, zone)) = p.split_once('(') {
        if let Some(zone) = zone.strip_suffix(')') {
            let zone = zone.split_ascii_whitespace().last().unwrap_or("");
            if !zone.is_empty() {
                ev.ruleset = Some(zone.to_owned());
            }
        }
    }
    for word in p.split(|c: char| !c.is_ascii_alphanumeric()) {
        let action = match word.to_ascii_lowercase().as_str() {
            "drop" | "block" | "deny" | "denied" | "dropped" | "blocked" => FirewallAction::Block,
            "reject" | "rejected" => FirewallAction::Reject,
            "accept" | "allow" | "pass" | "accepted" | "allowed" => FirewallAction::Pass,
            _ => continue,
        };
        ev.action = Some(action);
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unifi_prefix_forward_tcp() {
        let ev = parse("[WAN_OUT-2000-A]IN=eth0 OUT=eth2 MAC=90:10:20:76:8d:20:90:10:65:29:b6:2a:08:00 SRC=192.168.110.116 DST=192.168.2.25 LEN=52 TOS=0x00 PREC=0x00 TTL=63 ID=0 DF PROTO=TCP SPT=50093 DPT=1443 WINDOW=2853 RES=0x00 ACK URGP=0").unwrap();
        assert_eq!(
            (ev.action, ev.direction),
            (Some(FirewallAction::Pass), Some(Direction::Forward))
        );
        assert_eq!(
            (ev.ruleset.as_deref(), ev.rule.as_deref()),
            (Some("WAN_OUT"), Some("2000"))
        );
        assert_eq!(
            (ev.src_port, ev.dst_port, ev.length),
            (Some(50093), Some(1443), Some(52))
        );
        assert_eq!(ev.tcp_flags, Some(vec!["ACK".to_owned()]));
    }

    #[test]
    fn ipv6_expanded_addresses_compress_and_uptime_is_not_a_prefix() {
        let ev = parse("[16571.459614] IN= OUT=lo SRC=2a02:cf40:0add:4002:91f2:a9b2:e09a:6fc6 DST=ff02:0000:0000:0000:0000:0000:0000:00fb LEN=104 TC=0 HOPLIMIT=64 FLOWLBL=868225 PROTO=ICMPv6 TYPE=128 CODE=0").unwrap();
        assert_eq!(ev.prefix, None);
        assert_eq!(ev.dst.unwrap().to_string(), "ff02::fb");
        assert_eq!(
            (ev.ip_version, ev.ttl, ev.protocol.as_deref()),
            (Some(6), Some(64), Some("icmpv6"))
        );
        assert_eq!(ev.direction, Some(Direction::Out));
    }

    #[test]
    fn verdict_words_fw3_fw4_and_duplicates() {
        let ev = parse(
            "DROP(src wan)IN=eth1 OUT= MAC=00 SRC=1.2.3.4 DST=5.6.7.8 LEN=40 PROTO=UDP SPT=1 DPT=2 LEN=20",
        )
        .unwrap();
        assert_eq!(
            (ev.action, ev.ruleset.as_deref(), ev.length),
            (Some(FirewallAction::Block), Some("wan"), Some(40))
        );
        let ev =
            parse("reject wan out: IN=br-lan OUT=eth1 SRC=10.0.0.2 DST=8.8.8.8 PROTO=TCP SPT=5 DPT=53 SYN")
                .unwrap();
        assert_eq!(ev.action, Some(FirewallAction::Reject));
        let ev =
            parse("IN=eth0 IN=eth1 OUT= SRC=1.2.3.4 SRC=5.6.7.8 DST=9.9.9.9 PROTO=TCP SPT=1 DPT=2").unwrap();
        assert_eq!(
            (ev.in_interface.as_deref(), ev.src.unwrap().to_string()),
            (Some("eth0"), "1.2.3.4".to_owned())
        );
        let ev = parse("TTL=126 ID=15317 DF PROTO=TCP SPT=59344 DPT=443 WINDOW=8212 RES=0x00 ACK PSH URGP=0")
            .unwrap();
        assert_eq!(ev.vendor_format, FirewallFormat::NetfilterFragment);
        assert!(ev.partial);
        assert!(parse("no record here").is_none());
    }
}
