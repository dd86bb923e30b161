//! DHCP statistics from captured UDP datagrams: DHCPv4 (ports 67/68) message types from
//! option 53 and clients by hardware address (`chaddr`); DHCPv6 (ports 546/547) message
//! types and clients by DUID (option 1, Client Identifier), or by source address when a
//! message carries none. Relay messages count as their own type. Bounded: type counters
//! are fixed arrays, clients go into a frequent-items sketch. Never panics on bad input:
//! a datagram that is too short or lacks the fields counts as malformed.

use super::sketch::TopN;
use std::fmt::Write as _;
use std::net::IpAddr;

pub const DHCPV4_PORTS: [u16; 2] = [67, 68];
pub const DHCPV6_PORTS: [u16; 2] = [546, 547];
const MAGIC_COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];

/// Names of DHCPv4 message types (option 53), RFC 2132 and RFC 4388/6926.
pub fn v4_type_name(t: u8) -> String {
    let name = match t {
        1 => "DISCOVER",
        2 => "OFFER",
        3 => "REQUEST",
        4 => "DECLINE",
        5 => "ACK",
        6 => "NAK",
        7 => "RELEASE",
        8 => "INFORM",
        9 => "FORCERENEW",
        10 => "LEASEQUERY",
        11 => "LEASEUNASSIGNED",
        12 => "LEASEUNKNOWN",
        13 => "LEASEACTIVE",
        _ => return format!("TYPE{t}"),
    };
    name.to_string()
}

/// Names of DHCPv6 message types, RFC 8415 and RFC 5007.
pub fn v6_type_name(t: u8) -> String {
    let name = match t {
        1 => "SOLICIT",
        2 => "ADVERTISE",
        3 => "REQUEST",
        4 => "CONFIRM",
        5 => "RENEW",
        6 => "REBIND",
        7 => "REPLY",
        8 => "RELEASE",
        9 => "DECLINE",
        10 => "RECONFIGURE",
        11 => "INFORMATION-REQUEST",
        12 => "RELAY-FORW",
        13 => "RELAY-REPL",
        14 => "LEASEQUERY",
        15 => "LEASEQUERY-REPLY",
        _ => return format!("TYPE{t}"),
    };
    name.to_string()
}

/// DHCP counters for one window.
pub struct DhcpStats {
    pub v4_messages: u64,
    pub v4_types: [u64; 256],
    pub v4_malformed: u64,
    pub v4_clients: TopN<String>,
    pub v6_messages: u64,
    pub v6_types: [u64; 256],
    pub v6_malformed: u64,
    pub v6_clients: TopN<String>,
    key_buf: String,
}

impl Default for DhcpStats {
    fn default() -> Self {
        DhcpStats {
            v4_messages: 0,
            v4_types: [0; 256],
            v4_malformed: 0,
            v4_clients: TopN::new(TopN::<String>::SMALL),
            v6_messages: 0,
            v6_types: [0; 256],
            v6_malformed: 0,
            v6_clients: TopN::new(TopN::<String>::SMALL),
            key_buf: String::with_capacity(64),
        }
    }
}

fn hex_into(out: &mut String, bytes: &[u8], sep: Option<char>) {
    out.clear();
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            if let Some(s) = sep {
                out.push(s);
            }
        }
        let _ = write!(out, "{b:02x}");
    }
}

impl DhcpStats {
    /// True when a UDP datagram between these ports is DHCP (v4 or v6).
    pub fn is_dhcp_port(sport: u16, dport: u16) -> bool {
        (DHCPV4_PORTS.contains(&sport) && DHCPV4_PORTS.contains(&dport))
            || (DHCPV6_PORTS.contains(&sport) && DHCPV6_PORTS.contains(&dport))
    }

    /// Counts one UDP payload sent from `src:sport` to `dport`.
    pub fn ingest(&mut self, src: IpAddr, sport: u16, dport: u16, payload: &[u8]) {
        if DHCPV4_PORTS.contains(&sport) && DHCPV4_PORTS.contains(&dport) {
            self.ingest_v4(payload);
        } else if DHCPV6_PORTS.contains(&sport) && DHCPV6_PORTS.contains(&dport) {
            self.ingest_v6(src, payload);
        }
    }

    fn ingest_v4(&mut self, p: &[u8]) {
        let Some(msg_type) = v4_message_type(p) else {
            self.v4_malformed += 1;
            return;
        };
        self.v4_messages += 1;
        self.v4_types[usize::from(msg_type)] += 1;
        let hlen = usize::from(p[2]).min(16);
        if hlen > 0 {
            hex_into(&mut self.key_buf, &p[28..28 + hlen], Some(':'));
            self.v4_clients.add_ref(self.key_buf.as_str(), 1);
        }
    }

    fn ingest_v6(&mut self, src: IpAddr, p: &[u8]) {
        let Some(&msg_type) = p.first() else {
            self.v6_malformed += 1;
            return;
        };
        // Relay messages: type, hop count, link and peer address (34 bytes) before options.
        let options_at = if matches!(msg_type, 12 | 13) { 34 } else { 4 };
        if p.len() < options_at {
            self.v6_malformed += 1;
            return;
        }
        self.v6_messages += 1;
        self.v6_types[usize::from(msg_type)] += 1;
        if matches!(msg_type, 12 | 13) {
            return;
        }
        match v6_option(&p[options_at..], 1) {
            Some(duid) if !duid.is_empty() => hex_into(&mut self.key_buf, duid, None),
            _ => {
                self.key_buf.clear();
                let _ = write!(self.key_buf, "{src}");
            }
        }
        self.v6_clients.add_ref(self.key_buf.as_str(), 1);
    }

    pub fn merge_from(&mut self, o: &DhcpStats) {
        self.v4_messages += o.v4_messages;
        self.v4_malformed += o.v4_malformed;
        self.v6_messages += o.v6_messages;
        self.v6_malformed += o.v6_malformed;
        for i in 0..256 {
            self.v4_types[i] += o.v4_types[i];
            self.v6_types[i] += o.v6_types[i];
        }
        self.v4_clients.merge_from(&o.v4_clients);
        self.v6_clients.merge_from(&o.v6_clients);
    }
}

/// The option-53 message type of a BOOTP/DHCP payload, `None` when it is not DHCP.
fn v4_message_type(p: &[u8]) -> Option<u8> {
    v4_options(p)?.find(|(code, _)| *code == 53)?.1.first().copied()
}

/// The options of a BOOTP/DHCP payload as (code, value), `None` without the magic cookie.
/// Pads are skipped; the walk ends at the end option or at the first option cut short.
pub(super) fn v4_options(p: &[u8]) -> Option<impl Iterator<Item = (u8, &[u8])>> {
    if p.len() < 240 || p[236..240] != MAGIC_COOKIE {
        return None;
    }
    let mut opts = &p[240..];
    Some(std::iter::from_fn(move || loop {
        match *opts.first()? {
            0 => opts = &opts[1..],
            255 => return None,
            code => {
                let len = usize::from(*opts.get(1)?);
                let value = opts.get(2..2 + len)?;
                opts = &opts[2 + len..];
                return Some((code, value));
            }
        }
    }))
}

/// The value of the first DHCPv6 option `code` in an option list.
fn v6_option(mut opts: &[u8], code: u16) -> Option<&[u8]> {
    while opts.len() >= 4 {
        let c = u16::from_be_bytes([opts[0], opts[1]]);
        let len = usize::from(u16::from_be_bytes([opts[2], opts[3]]));
        let value = opts.get(4..4 + len)?;
        if c == code {
            return Some(value);
        }
        opts = &opts[4 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    //! Expected counts come from tshark reading the same fixtures (see
    //! `tshark_counts`); the test fails under CI=true when tshark is missing.
    use super::*;
    use crate::capture::summarize_files;
    use crate::traffic::tshark::fields as tshark;
    use crate::traffic::TrafficConfig;
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/pcap/fixtures")
            .join(name)
    }

    fn tally(rows: &[Vec<String>], col: usize) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for r in rows {
            if let Some(v) = r.get(col).filter(|v| !v.is_empty()) {
                *m.entry(v.clone()).or_insert(0) += 1;
            }
        }
        m
    }

    fn summarize(name: &str) -> DhcpStats {
        let cfg = TrafficConfig {
            period: None,
            ..Default::default()
        };
        summarize_files(&[fixture(name).as_path()], cfg, &mut |_, _, _| {})
            .window
            .dhcp
    }

    #[test]
    fn dhcpv4_types_and_clients_match_tshark() {
        let f = fixture("pktvisor__dhcp-flow.pcap");
        let Some(rows) = tshark(&f, "dhcp", &["dhcp.option.dhcp", "dhcp.hw.mac_addr"]) else {
            return;
        };
        assert!(!rows.is_empty());
        let d = summarize("pktvisor__dhcp-flow.pcap");
        let got_types: BTreeMap<String, u64> = (0..256)
            .filter(|&t| d.v4_types[t] > 0)
            .map(|t| (t.to_string(), d.v4_types[t]))
            .collect();
        assert_eq!(got_types, tally(&rows, 0));
        assert_eq!(d.v4_messages, rows.len() as u64);
        let got_clients: BTreeMap<String, u64> = d.v4_clients.top(100).into_iter().collect();
        assert_eq!(got_clients, tally(&rows, 1));
        assert_eq!(v4_type_name(5), "ACK");
    }

    #[test]
    fn dhcpv6_types_and_clients_match_tshark() {
        let f = fixture("pktvisor__dhcpv6.pcap");
        let Some(rows) = tshark(&f, "dhcpv6", &["dhcpv6.msgtype", "dhcpv6.duid.bytes"]) else {
            return;
        };
        assert!(!rows.is_empty());
        let d = summarize("pktvisor__dhcpv6.pcap");
        let got_types: BTreeMap<String, u64> = (0..256)
            .filter(|&t| d.v6_types[t] > 0)
            .map(|t| (t.to_string(), d.v6_types[t]))
            .collect();
        assert_eq!(got_types, tally(&rows, 0));
        // Every message of this capture has a Client Identifier; its DUID is the first one.
        let got_clients: BTreeMap<String, u64> = d.v6_clients.top(100).into_iter().collect();
        assert_eq!(got_clients, tally(&rows, 1));
        assert_eq!(v6_type_name(7), "REPLY");
    }

    #[test]
    fn garbage_is_counted_not_trusted() {
        let mut d = DhcpStats::default();
        d.ingest("10.0.0.1".parse().unwrap(), 68, 67, &[1, 2, 3]);
        d.ingest("fe80::1".parse().unwrap(), 546, 547, &[1, 0]);
        let mut bad_opts = vec![0u8; 240];
        bad_opts[236..240].copy_from_slice(&MAGIC_COOKIE);
        bad_opts.extend_from_slice(&[53, 9]);
        d.ingest("10.0.0.1".parse().unwrap(), 68, 67, &bad_opts);
        assert_eq!(
            (d.v4_messages, d.v4_malformed, d.v6_messages, d.v6_malformed),
            (0, 2, 0, 1)
        );
    }
}
