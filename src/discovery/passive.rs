//! Passive discovery sources, parsed sans-IO from the text the system already keeps: the
//! kernel's neighbour table (`/proc/net/arp`, `ip neigh`, `ip -j neigh`) and DHCP lease
//! files (dnsmasq, ISC dhcpd, Kea memfile CSV). Nothing here sends a packet or reads a
//! file; the shell reads the text and passes it in with `now`.
//!
//! Lines that do not parse are counted in [`Parsed::skipped`], never fatal.

use super::oui::Mac;
use crate::model::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Items parsed from one source, and how many lines or records were skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub items: Vec<T>,
    pub skipped: usize,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            items: Vec::new(),
            skipped: 0,
        }
    }
}

/// A resolved entry of the kernel's ARP (IPv4) or NDP (IPv6) table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub ip: IpAddr,
    pub mac: Mac,
    pub interface: String,
    /// Answered recently (REACHABLE, DELAY, PROBE, PERMANENT) rather than only cached (STALE).
    pub confirmed: bool,
}

/// Which DHCP server wrote a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseSource {
    Dnsmasq,
    IscDhcpd,
    Kea,
}

/// An active DHCP lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: IpAddr,
    pub mac: Mac,
    pub hostname: Option<String>,
    /// `None` for infinite leases.
    pub expires: Option<Timestamp>,
    pub source: LeaseSource,
}

/// Linux `/proc/net/arp`. Incomplete entries (flags without ATF_COM, MAC all zero) are
/// not neighbours and are left out silently.
pub fn parse_proc_net_arp(text: &str) -> Parsed<Neighbour> {
    let mut out = Parsed::default();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(ip), Some(flags), Some(mac), Some(dev)) = (f.first(), f.get(2), f.get(3), f.get(5)) else {
            out.skipped += 1;
            continue;
        };
        let (Ok(ip), Some(mac), Ok(flags)) = (
            ip.parse::<IpAddr>(),
            Mac::parse(mac),
            u32::from_str_radix(flags.trim_start_matches("0x"), 16),
        ) else {
            out.skipped += 1;
            continue;
        };
        const ATF_COM: u32 = 0x02;
        if flags & ATF_COM == 0 || mac.0 == [0; 6] {
            continue;
        }
        out.items.push(Neighbour {
            ip,
            mac,
            interface: dev.to_string(),
            confirmed: false,
        });
    }
    out
}

fn confirmed_state(state: &str) -> Option<bool> {
    match state {
        "REACHABLE" | "DELAY" | "PROBE" | "PERMANENT" | "NOARP" => Some(true),
        "STALE" => Some(false),
        // INCOMPLETE, FAILED, NONE: no usable address.
        _ => None,
    }
}

/// `ip neigh show` text: `ADDR dev IF lladdr MAC [router] STATE`.
pub fn parse_ip_neigh(text: &str) -> Parsed<Neighbour> {
    let mut out = Parsed::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let value_after = |key: &str| {
            f.iter()
                .position(|w| *w == key)
                .and_then(|i| f.get(i + 1))
                .copied()
        };
        let Ok(ip) = f.first().copied().unwrap_or_default().parse::<IpAddr>() else {
            out.skipped += 1;
            continue;
        };
        let Some(state) = f.last().and_then(|s| confirmed_state(s)) else {
            continue;
        };
        let (Some(dev), Some(mac)) = (value_after("dev"), value_after("lladdr").and_then(Mac::parse)) else {
            out.skipped += 1;
            continue;
        };
        out.items.push(Neighbour {
            ip,
            mac,
            interface: dev.to_string(),
            confirmed: state,
        });
    }
    out
}

/// `ip -j neigh show` JSON.
pub fn parse_ip_neigh_json(text: &str) -> Parsed<Neighbour> {
    #[derive(serde::Deserialize)]
    struct Entry {
        dst: String,
        dev: Option<String>,
        lladdr: Option<String>,
        #[serde(default)]
        state: Vec<String>,
    }
    let mut out = Parsed::default();
    let Ok(entries) = serde_json::from_str::<Vec<serde_json::Value>>(text) else {
        out.skipped = 1;
        return out;
    };
    for value in entries {
        let Ok(e) = serde_json::from_value::<Entry>(value) else {
            out.skipped += 1;
            continue;
        };
        let Some(confirmed) = e.state.iter().find_map(|s| confirmed_state(s)) else {
            continue;
        };
        let (Ok(ip), Some(mac), Some(dev)) = (e.dst.parse(), e.lladdr.as_deref().and_then(Mac::parse), e.dev)
        else {
            out.skipped += 1;
            continue;
        };
        out.items.push(Neighbour {
            ip,
            mac,
            interface: dev,
            confirmed,
        });
    }
    out
}

/// dnsmasq's `dhcp.leases`: `EXPIRY MAC IP HOSTNAME CLIENT-ID` per IPv4 lease; `*` means
/// no hostname, expiry 0 an infinite lease. IPv6 leases (after the `duid` line) carry no
/// MAC and are skipped silently.
pub fn parse_dnsmasq_leases(text: &str, now: Timestamp) -> Parsed<Lease> {
    let mut out = Parsed::default();
    let mut in_v6 = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"duid") {
            in_v6 = true;
            continue;
        }
        if in_v6 {
            continue;
        }
        let (Some(expiry), Some(mac), Some(ip)) = (f.first(), f.get(1).and_then(|m| Mac::parse(m)), f.get(2))
        else {
            out.skipped += 1;
            continue;
        };
        let (Ok(expiry), Ok(ip)) = (expiry.parse::<u64>(), ip.parse::<IpAddr>()) else {
            out.skipped += 1;
            continue;
        };
        let expires = (expiry != 0).then(|| Timestamp::from_secs(expiry));
        if expires.is_some_and(|e| e <= now) {
            continue;
        }
        let hostname = f.get(3).filter(|h| **h != "*").map(|h| h.to_string());
        out.items.push(Lease {
            ip,
            mac,
            hostname,
            expires,
            source: LeaseSource::Dnsmasq,
        });
    }
    out
}

/// ISC dhcpd's `dhcpd.leases` (dhcpd.leases(5)): an append-only journal of `lease IP { … }`
/// blocks; the last block for an address wins. Only `binding state active` leases that
/// have not ended at `now` are returned.
pub fn parse_isc_dhcpd_leases(text: &str, now: Timestamp) -> Parsed<Lease> {
    let mut out = Parsed::default();
    let mut latest: BTreeMap<IpAddr, Option<Lease>> = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(addr) = line
            .trim()
            .strip_prefix("lease ")
            .and_then(|l| l.strip_suffix('{'))
        else {
            continue;
        };
        let mut body = String::new();
        let mut closed = false;
        for l in lines.by_ref().map(str::trim) {
            if l == "}" {
                closed = true;
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        // A block cut off at the end of the file (dhcpd stopped mid-write) is not a lease.
        if !closed {
            out.skipped += 1;
            break;
        }
        let addr = addr.trim();
        let Ok(ip) = addr.parse::<IpAddr>() else {
            out.skipped += 1;
            continue;
        };
        let mut mac = None;
        let mut hostname = None;
        let mut active = false;
        let mut expires = None;
        for stmt in body.split(';').map(str::trim) {
            if let Some(v) = stmt.strip_prefix("hardware ethernet ") {
                mac = Mac::parse(v.trim());
            } else if let Some(v) = stmt.strip_prefix("client-hostname ") {
                hostname = Some(v.trim().trim_matches('"').to_string());
            } else if stmt == "binding state active" {
                active = true;
            } else if let Some(v) = stmt.strip_prefix("ends ") {
                expires = parse_isc_time(v.trim());
            }
        }
        let lease = match mac {
            Some(mac) if active && expires.is_none_or(|e| e > now) => Some(Lease {
                ip,
                mac,
                hostname,
                expires,
                source: LeaseSource::IscDhcpd,
            }),
            Some(_) => None,
            None => {
                out.skipped += 1;
                None
            }
        };
        latest.insert(ip, lease);
    }
    out.items = latest.into_values().flatten().collect();
    out
}

/// `W YYYY/MM/DD HH:MM:SS` in UTC (the weekday is ignored), or `never`.
fn parse_isc_time(v: &str) -> Option<Timestamp> {
    let mut parts = v.split_whitespace();
    let (_weekday, date, time) = (parts.next()?, parts.next()?, parts.next()?);
    let d: Vec<i64> = date.split('/').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let t: Vec<i64> = time.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let ([y, m, day], [hh, mm, ss]) = (<[i64; 3]>::try_from(d).ok()?, <[i64; 3]>::try_from(t).ok()?);
    let secs = days_from_civil(y, m, day)? * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs).ok().map(Timestamp::from_secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Kea's memfile `kea-leases4.csv`: columns named by the header; later rows for an
/// address supersede earlier ones; state 0 is an active lease.
pub fn parse_kea_leases4(text: &str, now: Timestamp) -> Parsed<Lease> {
    let mut out = Parsed::default();
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return out;
    };
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(c_addr), Some(c_hw), Some(c_expire)) = (col("address"), col("hwaddr"), col("expire")) else {
        out.skipped = text.lines().count();
        return out;
    };
    let (c_host, c_state) = (col("hostname"), col("state"));
    let mut latest: BTreeMap<IpAddr, Option<Lease>> = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let field = |i: usize| f.get(i).map(|s| s.trim()).unwrap_or_default();
        let (Ok(ip), Ok(expire)) = (field(c_addr).parse::<IpAddr>(), field(c_expire).parse::<u64>()) else {
            out.skipped += 1;
            continue;
        };
        let Some(mac) = Mac::parse(field(c_hw)) else {
            out.skipped += 1;
            continue;
        };
        let active = c_state.is_none_or(|c| field(c) == "0");
        let expires = Timestamp::from_secs(expire);
        let hostname = c_host
            .map(field)
            .filter(|h| !h.is_empty())
            .map(|h| h.trim_end_matches('.').to_string());
        let lease = (active && expires > now).then_some(Lease {
            ip,
            mac,
            hostname,
            expires: Some(expires),
            source: LeaseSource::Kea,
        });
        latest.insert(ip, lease);
    }
    out.items = latest.into_values().flatten().collect();
    out
}

/// FreeBSD/pfSense `arp -an`: `? (10.0.0.5) at 00:11:22:33:44:55 on em0 expires in 1199
/// seconds [ethernet]`, or `permanent`; `(incomplete)` entries are not neighbours.
pub fn parse_bsd_arp(text: &str) -> Parsed<Neighbour> {
    let mut out = Parsed::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let ip = f
            .get(1)
            .and_then(|s| s.strip_prefix('(')?.strip_suffix(')'))
            .and_then(|s| s.parse::<IpAddr>().ok());
        let (Some(ip), Some(&"at"), Some(mac_text), Some(&"on"), Some(dev)) =
            (ip, f.get(2), f.get(3), f.get(4), f.get(5))
        else {
            out.skipped += 1;
            continue;
        };
        if *mac_text == "(incomplete)" {
            continue;
        }
        let Some(mac) = Mac::parse(mac_text) else {
            out.skipped += 1;
            continue;
        };
        out.items.push(Neighbour {
            ip,
            mac,
            interface: dev.to_string(),
            confirmed: !line.contains("expired"),
        });
    }
    out
}

/// FreeBSD `ndp -an`: a header line, then `ADDRESS LLADDR NETIF EXPIRE STATE [FLAGS]`;
/// link-local addresses carry `%ifname`. State R (reachable), D, P and permanent entries
/// count as confirmed; S (stale) as cached; I (incomplete) entries are left out.
pub fn parse_bsd_ndp(text: &str) -> Parsed<Neighbour> {
    let mut out = Parsed::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"Neighbor") {
            continue;
        }
        let (Some(addr), Some(mac_text), Some(dev), Some(expire)) = (f.first(), f.get(1), f.get(2), f.get(3))
        else {
            out.skipped += 1;
            continue;
        };
        if *mac_text == "(incomplete)" || f.get(4) == Some(&"I") {
            continue;
        }
        let ip = addr.split('%').next().and_then(|a| a.parse::<IpAddr>().ok());
        let (Some(ip), Some(mac)) = (ip, Mac::parse(mac_text)) else {
            out.skipped += 1;
            continue;
        };
        let state = f.get(4).copied().unwrap_or("");
        out.items.push(Neighbour {
            ip,
            mac,
            interface: dev.to_string(),
            confirmed: *expire == "permanent" || matches!(state, "R" | "D" | "P"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(
            parse_isc_time("1 2026/11/23 12:35:18"),
            Some(Timestamp::from_secs(1_795_437_318))
        );
        assert_eq!(parse_isc_time("never"), None);
    }

    #[test]
    fn garbage_is_counted_not_fatal() {
        let p = parse_ip_neigh("nonsense line\n10.0.0.1 dev eth0 lladdr zz REACHABLE\n");
        assert_eq!((p.items.len(), p.skipped), (0, 2));
        let p = parse_dnsmasq_leases("abc def\n", Timestamp(0));
        assert_eq!(p.skipped, 1);
        let cut = "lease 10.0.0.1 {\n  hardware ethernet 00:11:22:33:44:55;\n  binding state active;\n";
        let p = parse_isc_dhcpd_leases(cut, Timestamp(0));
        assert_eq!((p.items.len(), p.skipped), (0, 1));
        assert_eq!(parse_ip_neigh_json("{not json").skipped, 1);
    }

    #[test]
    fn isc_journal_last_block_wins() {
        let text = "lease 10.0.0.5 {\n binding state active;\n hardware ethernet 00:11:22:33:44:55;\n}\n\
                    lease 10.0.0.5 {\n binding state free;\n hardware ethernet 00:11:22:33:44:55;\n}\n";
        assert!(parse_isc_dhcpd_leases(text, Timestamp(0)).items.is_empty());
    }
}
