//! DHCP server transaction lines, sans-IO: dnsmasq (`DHCPACK(br-lan) 10.0.0.45
//! a0:82:22:44:c6:1a host`) and ISC dhcpd (`DHCPACK on 10.0.0.45 to a0:… (host) via eth0`).
//! These feed passive discovery (IP ↔ MAC ↔ hostname).

use crate::model::{DhcpEvent, DhcpFormat};
use std::net::IpAddr;

/// dnsmasq: `[serial ]DHCPxxx(iface) [ip] [mac] [hostname|reason…]`.
pub fn parse_dnsmasq(message: &str) -> Option<DhcpEvent> {
    let mut words = message.split_ascii_whitespace().peekable();
    // With `log-dhcp`, dnsmasq puts a transaction serial number first.
    if words
        .peek()
        .is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit()))
    {
        words.next();
    }
    let head = words.next()?;
    let (event, interface) = match head.split_once('(') {
        Some((e, rest)) => (e, rest.strip_suffix(')').filter(|i| !i.is_empty())),
        None => (head, None),
    };
    if !is_dhcp_event(event) {
        return None;
    }
    let mut ev = DhcpEvent {
        vendor_format: DhcpFormat::Dnsmasq,
        event: event.to_owned(),
        interface: interface.map(str::to_owned),
        ip: None,
        mac: None,
        hostname: None,
    };
    let rest: Vec<&str> = words.collect();
    let mut i = 0;
    if let Some(ip) = rest.first().and_then(|w| w.parse::<IpAddr>().ok()) {
        ev.ip = Some(ip);
        i = 1;
    }
    if let Some(mac) = rest.get(i).and_then(|w| mac(w)) {
        ev.mac = Some(mac);
        i += 1;
        // Only ACK/OFFER-style lines end in a hostname; NAK and friends end in a reason.
        if matches!(event, "DHCPACK" | "DHCPOFFER" | "DHCPREQUEST" | "DHCPDISCOVER") && rest.len() == i + 1 {
            ev.hostname = Some(rest[i].to_owned());
        }
    }
    Some(ev)
}

/// ISC dhcpd: `DHCPxxx (on|for|of) IP … (from|to) MAC [(host)] via IFACE`.
pub fn parse_isc(message: &str) -> Option<DhcpEvent> {
    let mut words = message.split_ascii_whitespace();
    let event = words.next()?;
    if !is_dhcp_event(event) {
        return None;
    }
    let mut ev = DhcpEvent {
        vendor_format: DhcpFormat::IscDhcpd,
        event: event.to_owned(),
        interface: None,
        ip: None,
        mac: None,
        hostname: None,
    };
    let words: Vec<&str> = words.collect();
    let mut i = 0;
    while i < words.len() {
        let next = words.get(i + 1).map(|w| w.trim_end_matches([':', ',', ';']));
        match words[i] {
            "on" | "for" | "of" => ev.ip = ev.ip.or_else(|| next.and_then(|w| w.parse().ok())),
            "from" | "to" => {
                if let Some(w) = next {
                    if let Some(m) = mac(w) {
                        ev.mac = Some(m);
                        if let Some(h) = words.get(i + 2).and_then(|w| w.strip_prefix('(')) {
                            let h = h.trim_end_matches(')');
                            if !h.is_empty() && h.parse::<IpAddr>().is_err() {
                                ev.hostname = Some(h.to_owned());
                            }
                        }
                    } else if ev.ip.is_none() {
                        ev.ip = w.parse().ok();
                    }
                }
            }
            "via" => ev.interface = next.map(str::to_owned),
            _ => {}
        }
        i += 1;
    }
    Some(ev)
}

fn is_dhcp_event(word: &str) -> bool {
    word.len() > 4
        && word.starts_with("DHCP")
        && word[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A 6-octet MAC in `aa:bb:…` or `aa-bb-…` form, lower-cased.
fn mac(w: &str) -> Option<String> {
    let parts: Vec<&str> = w.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| parts.join(":").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnsmasq_forms() {
        let ev = parse_dnsmasq("DHCPACK(br-lan) 10.0.0.45 a0:82:22:44:c6:1a uplus-haier").unwrap();
        assert_eq!(ev.interface.as_deref(), Some("br-lan"));
        assert_eq!(ev.ip.unwrap().to_string(), "10.0.0.45");
        assert_eq!(
            (ev.mac.as_deref(), ev.hostname.as_deref()),
            (Some("a0:82:22:44:c6:1a"), Some("uplus-haier"))
        );
        let ev = parse_dnsmasq("DHCPDISCOVER(eth0) 4C:CC:6A:4F:2D:06").unwrap();
        assert_eq!((ev.ip, ev.mac.as_deref()), (None, Some("4c:cc:6a:4f:2d:06")));
        let ev = parse_dnsmasq("DHCPACK(br-lan)").unwrap();
        assert_eq!((ev.ip, ev.mac), (None, None));
        let ev = parse_dnsmasq("1234 DHCPNAK(br-lan) 10.0.0.9 a0:82:22:44:c6:1a wrong network").unwrap();
        assert_eq!((ev.event.as_str(), ev.hostname), ("DHCPNAK", None));
        assert!(parse_dnsmasq("DHCP, IP range 192.168.1.50 -- 192.168.1.100, lease time 1d").is_none());
    }

    #[test]
    fn isc_forms() {
        let ev =
            parse_isc("DHCPOFFER on 10.150.60.56 to 4c:55:41:a0:fa:99 (computer-name) via eth0.60").unwrap();
        assert_eq!(ev.ip.unwrap().to_string(), "10.150.60.56");
        assert_eq!(ev.hostname.as_deref(), Some("computer-name"));
        assert_eq!(ev.interface.as_deref(), Some("eth0.60"));
        let ev = parse_isc("DHCPDISCOVER from 4c:55:41:a0:fa:99 via eth0.60").unwrap();
        assert_eq!((ev.ip, ev.mac.as_deref()), (None, Some("4c:55:41:a0:fa:99")));
        let ev = parse_isc("DHCPREQUEST for 10.0.0.5 (10.0.0.1) from 4c:55:41:a0:fa:99 via igb1").unwrap();
        assert_eq!(
            (ev.ip.unwrap().to_string(), ev.hostname),
            ("10.0.0.5".to_owned(), None)
        );
        assert!(parse_isc("Reusing lease for: 2a02:cf40::1, age 265").is_none());
    }
}
