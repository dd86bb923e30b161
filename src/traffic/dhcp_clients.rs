//! What DHCPv4 clients say about themselves on the wire: per client hardware address
//! (`chaddr`), the host name (option 12) and vendor class (option 60) from its requests,
//! and the address it holds (the server's ACK `yiaddr`, else the request's `ciaddr` or
//! option 50). The map guesses device kinds from it. Bounded: at most `cap` clients, the
//! least recently seen goes first. Sans-IO: `now` is packet time; bad datagrams are
//! ignored (the statistics in [`super::dhcp`] count them).

use super::dhcp::v4_options;
use crate::capture::PacketTime;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// What one client said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhcpClient {
    pub mac: [u8; 6],
    pub ip: Option<IpAddr>,
    pub hostname: Option<Arc<str>>,
    pub vendor_class: Option<Arc<str>>,
    seen: PacketTime,
}

pub struct DhcpClients {
    by_mac: HashMap<[u8; 6], DhcpClient>,
    cap: usize,
    pub evicted: u64,
}

const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;
const DHCPREQUEST: u8 = 3;
const DHCPACK: u8 = 5;
const DHCPINFORM: u8 = 8;

/// Printable text of an option value (clients pad with NULs; some send garbage).
fn text(v: &[u8]) -> Option<Arc<str>> {
    let s = String::from_utf8_lossy(v);
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control)).then(|| Arc::from(s))
}

fn ipv4(b: &[u8]) -> Option<IpAddr> {
    let a: [u8; 4] = b.try_into().ok()?;
    let ip = Ipv4Addr::from(a);
    (!ip.is_unspecified() && !ip.is_broadcast()).then_some(IpAddr::V4(ip))
}

impl DhcpClients {
    pub fn new(cap: usize) -> Self {
        DhcpClients {
            by_mac: HashMap::new(),
            cap: cap.max(1),
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_mac.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_mac.is_empty()
    }

    /// Learns from one DHCPv4 payload (either direction).
    pub fn learn(&mut self, p: &[u8], now: PacketTime) {
        // Ethernet clients only: hardware type 1, length 6.
        if p.len() < 240 || p[1] != 1 || p[2] != 6 {
            return;
        }
        let Some(options) = v4_options(p) else {
            return;
        };
        let (mut msg_type, mut hostname, mut vendor_class, mut requested) = (None, None, None, None);
        for (code, v) in options {
            match code {
                53 => msg_type = v.first().copied(),
                12 => hostname = text(v),
                60 => vendor_class = text(v),
                50 => requested = ipv4(v),
                _ => {}
            }
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&p[28..34]);
        let (op, ciaddr, yiaddr) = (p[0], ipv4(&p[12..16]), ipv4(&p[16..20]));
        let ip = match (op, msg_type) {
            (BOOTREPLY, Some(DHCPACK)) => yiaddr.or(ciaddr),
            (BOOTREQUEST, Some(DHCPREQUEST | DHCPINFORM)) => ciaddr.or(requested),
            (BOOTREQUEST, Some(_)) => None,
            _ => return,
        };
        if !self.by_mac.contains_key(&mac) && self.by_mac.len() >= self.cap {
            self.evict_oldest();
        }
        let c = self.by_mac.entry(mac).or_insert_with(|| DhcpClient {
            mac,
            ..DhcpClient::default()
        });
        c.seen = now;
        if op == BOOTREQUEST {
            // A client that stops sending a name has not changed it: keep the last one.
            c.hostname = hostname.or(c.hostname.take());
            c.vendor_class = vendor_class.or(c.vendor_class.take());
        }
        if ip.is_some() {
            c.ip = ip;
        }
    }

    /// Drops the older half at once, so a flood of made-up MACs costs little per packet.
    fn evict_oldest(&mut self) {
        let mut seen: Vec<PacketTime> = self.by_mac.values().map(|c| c.seen).collect();
        let mid = seen.len() / 2;
        let (_, cut, _) = seen.select_nth_unstable(mid);
        let cut = *cut;
        let before = self.by_mac.len();
        self.by_mac.retain(|_, c| c.seen > cut);
        self.evicted += (before - self.by_mac.len()) as u64;
    }

    /// Clients whose address is known, by address (the latest client wins an address).
    pub fn by_ip(&self) -> HashMap<IpAddr, DhcpClient> {
        let mut clients: Vec<&DhcpClient> = self.by_mac.values().filter(|c| c.ip.is_some()).collect();
        clients.sort_by_key(|c| c.seen);
        clients
            .into_iter()
            .filter_map(|c| Some((c.ip?, c.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! Expected values come from tshark reading the pktvisor DHCP capture.
    use super::*;
    use crate::capture::{CaptureSource, FileSource};
    use crate::traffic::TrafficConfig;
    use std::path::Path;

    #[test]
    fn names_classes_and_addresses_match_tshark() {
        let pcap = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/pcap/fixtures/pktvisor__dhcp-flow.pcap");
        let fields = [
            "dhcp.hw.mac_addr",
            "dhcp.option.hostname",
            "dhcp.option.vendor_class_id",
            "dhcp.option.dhcp",
            "dhcp.ip.your",
        ];
        let Some(rows) = crate::traffic::tshark::fields(&pcap, "dhcp", &fields) else {
            return;
        };
        // (mac) → (hostname, vendor class, address of the last ACK), as tshark reads them.
        let mut want: HashMap<String, (Option<String>, Option<String>, Option<IpAddr>)> = HashMap::new();
        for f in &rows {
            let e = want.entry(f[0].to_string()).or_default();
            let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
            if let Some(h) = some(&f[1]) {
                e.0 = Some(h);
            }
            if let Some(v) = some(&f[2]) {
                e.1 = Some(v);
            }
            if f[3] == "5" {
                e.2 = f[4].parse().ok();
            }
        }
        assert_eq!(want.len(), 2, "{rows:?}");
        // Through the engine, as the capture threads feed it.
        let mut engine = crate::traffic::Engine::new(TrafficConfig::default());
        let mut src = FileSource::open(&pcap).unwrap();
        while let Some(pkt) = src.next_packet().unwrap() {
            engine.ingest(&pkt);
        }
        let got = engine.dhcp_clients().by_ip();
        for (mac, (hostname, class, ip)) in &want {
            let ip = ip.expect("every client got an ACK");
            let c = got
                .get(&ip)
                .unwrap_or_else(|| panic!("no client at {ip}: {got:?}"));
            assert_eq!(crate::discovery::oui::Mac(c.mac).to_string(), *mac);
            assert_eq!(c.hostname.as_deref(), hostname.as_deref());
            assert_eq!(c.vendor_class.as_deref(), class.as_deref());
        }
    }

    fn request(mac: u8, name: &str, requested: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 240];
        p[0] = BOOTREQUEST;
        p[1] = 1;
        p[2] = 6;
        p[28..34].copy_from_slice(&[2, 0, 0, 0, 0, mac]);
        p[236..240].copy_from_slice(&[0x63, 0x82, 0x53, 0x63]);
        p.extend_from_slice(&[53, 1, DHCPREQUEST, 50, 4]);
        p.extend_from_slice(&requested);
        p.extend_from_slice(&[12, name.len() as u8]);
        p.extend_from_slice(name.as_bytes());
        p.push(255);
        p
    }

    #[test]
    fn bounded_and_safe_on_bad_options() {
        let mut c = DhcpClients::new(2);
        for i in 0..5u8 {
            c.learn(&request(i, "h", [10, 0, 0, i + 1]), PacketTime(u64::from(i)));
        }
        assert!(
            c.len() <= 2 && c.evicted == 5 - c.len() as u64,
            "{} kept",
            c.len()
        );
        assert!(
            c.by_ip().contains_key(&"10.0.0.5".parse().unwrap()),
            "the newest stays"
        );
        let mut bad = request(9, "x", [10, 0, 0, 9]);
        let n = bad.len();
        bad[n - 4] = 200; // option 12 claims more bytes than follow
        c.learn(&bad, PacketTime(10));
        let mut ctl = request(8, "a\u{1}b", [10, 0, 0, 8]);
        ctl.truncate(ctl.len() - 1);
        c.learn(&ctl, PacketTime(11));
        let kept = c.len();
        c.learn(&[0u8; 10], PacketTime(12));
        assert_eq!(c.len(), kept, "nothing learnt from a broken datagram");
        assert!(c
            .by_ip()
            .values()
            .all(|x| x.hostname.as_deref() != Some("a\u{1}b")));
    }
}
