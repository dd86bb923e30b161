//! The IP → name table built from DNS answers seen on the wire: each A/AAAA address in a
//! NOERROR response is labelled with the name the client asked for (the first question), so
//! a CNAME chain (`www.example.com` → `cdn.example.net` → 192.0.2.1) labels the address
//! with the name the user typed. Entries live for the record's TTL (clamped to
//! [`NameTable::MIN_TTL`]..[`NameTable::MAX_TTL`]); the table has a fixed capacity with
//! counted evictions. Flows and hosts use it for labels. Sans-IO: `now` is packet time.

use crate::capture::PacketTime;
use foldhash::fast::RandomState;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

struct Entry {
    name: Arc<str>,
    expires: PacketTime,
}

pub struct NameTable {
    map: HashMap<IpAddr, Entry, RandomState>,
    cap: usize,
    pub inserted: u64,
    pub evicted: u64,
    pub expired: u64,
    /// Responses whose answer section did not parse.
    pub unparsed: u64,
    last_sweep: PacketTime,
}

impl NameTable {
    pub const MIN_TTL: u64 = 60;
    pub const MAX_TTL: u64 = 86_400;

    pub fn new(cap: usize) -> Self {
        NameTable {
            map: HashMap::default(),
            cap: cap.max(1),
            inserted: 0,
            evicted: 0,
            expired: 0,
            unparsed: 0,
            last_sweep: PacketTime::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every address with the name it was last given (expired ones go at the next sweep).
    pub fn entries(&self) -> impl Iterator<Item = (IpAddr, Arc<str>)> + '_ {
        self.map.iter().map(|(ip, e)| (*ip, e.name.clone()))
    }

    /// The name of `ip` if an unexpired answer gave one.
    pub fn lookup(&self, ip: &IpAddr, now: PacketTime) -> Option<Arc<str>> {
        self.map
            .get(ip)
            .filter(|e| e.expires >= now)
            .map(|e| e.name.clone())
    }

    /// Learns from a DNS response message (`qname`: its normalised first question).
    pub fn learn(&mut self, msg: &[u8], qname: &str, now: PacketTime) {
        self.sweep(now);
        let Some(answers) = address_answers(msg) else {
            self.unparsed += 1;
            return;
        };
        let mut name: Option<Arc<str>> = None;
        for (ip, ttl) in answers {
            let name = name.get_or_insert_with(|| Arc::from(qname)).clone();
            let ttl = u64::from(ttl).clamp(Self::MIN_TTL, Self::MAX_TTL);
            let expires = PacketTime(now.0.saturating_add(ttl * PacketTime::NANOS_PER_SEC));
            if self.map.len() >= self.cap && !self.map.contains_key(&ip) {
                if let Some(k) = self
                    .map
                    .iter()
                    .take(16)
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| *k)
                {
                    self.map.remove(&k);
                    self.evicted += 1;
                }
            }
            self.map.insert(ip, Entry { name, expires });
            self.inserted += 1;
        }
    }

    /// Drops expired entries, at most once a minute of packet time.
    fn sweep(&mut self, now: PacketTime) {
        if now.0 < self.last_sweep.0.saturating_add(60 * PacketTime::NANOS_PER_SEC) {
            return;
        }
        self.last_sweep = now;
        let before = self.map.len();
        self.map.retain(|_, e| e.expires >= now);
        self.expired += (before - self.map.len()) as u64;
    }
}

/// The A and AAAA records of a message's answer section as (address, TTL), in order, or
/// `None` when the message does not hold the sections its header announces.
///
/// A walk over the record framing (RFC 1035 4.1): names are skipped, not decoded (a
/// compression pointer ends a name), and only A/AAAA data is read. The question itself is
/// decoded elsewhere (by hickory, see `dns`); decoding every answer with hickory's
/// `Message` cost more than the rest of the DNS analysis together (an owned name per
/// record), for two integers per record. Answers must be whole; records after the answer
/// section are not looked at.
fn address_answers(msg: &[u8]) -> Option<impl Iterator<Item = (IpAddr, u32)> + '_> {
    fn be16(m: &[u8], at: usize) -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([*m.get(at)?, *m.get(at + 1)?])))
    }
    /// The offset just past the name starting at `at`.
    fn skip_name(m: &[u8], mut at: usize) -> Option<usize> {
        loop {
            let len = *m.get(at)?;
            match len {
                0 => return Some(at + 1),
                1..=63 => at += 1 + usize::from(len),
                0xC0..=0xFF => return m.get(at + 1).map(|_| at + 2),
                // Extended label types (0x40, 0x80) were never deployed.
                _ => return None,
            }
        }
    }
    let (qdcount, ancount) = (be16(msg, 4)?, be16(msg, 6)?);
    let mut at = 12;
    for _ in 0..qdcount {
        at = skip_name(msg, at)? + 4;
    }
    // Check the whole answer section before yielding anything.
    let start = at;
    for _ in 0..ancount {
        at = skip_name(msg, at)?;
        let (rtype, rdlen) = (be16(msg, at)?, be16(msg, at + 8)?);
        match (rtype, rdlen) {
            (1, 4) | (28, 16) => {}
            (1 | 28, _) => return None,
            _ => {}
        }
        at += 10 + rdlen;
        if at > msg.len() {
            return None;
        }
    }
    let mut at = start;
    Some((0..ancount).filter_map(move |_| {
        at = skip_name(msg, at)?;
        let rtype = be16(msg, at)?;
        let ttl = u32::from_be_bytes(msg.get(at + 4..at + 8)?.try_into().ok()?);
        let rdlen = be16(msg, at + 8)?;
        let data = msg.get(at + 10..at + 10 + rdlen)?;
        at += 10 + rdlen;
        match rtype {
            1 => <[u8; 4]>::try_from(data).ok().map(|a| (IpAddr::from(a), ttl)),
            28 => <[u8; 16]>::try_from(data).ok().map(|a| (IpAddr::from(a), ttl)),
            _ => None,
        }
    }))
}

#[cfg(test)]
mod tests {
    //! Expected names come from tshark's reading of the same DNS fixture.
    use super::*;
    use crate::capture::{CaptureSource, FileSource};
    use crate::traffic::{Engine, TrafficConfig};
    use std::path::Path;
    use std::process::Command;

    /// The record walk finds the same A/AAAA answers as hickory's full decoder, on every
    /// DNS message of the DNS fixtures (hickory's answers are the expected values); and it
    /// refuses every cut-off copy of a message with answers.
    #[test]
    fn address_answers_agree_with_hickory() {
        use crate::traffic::decode::decode;
        use hickory_proto::op::Message;
        use hickory_proto::rr::RData;
        use hickory_proto::serialize::binary::BinDecodable;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/pcap/fixtures");
        let (mut compared, mut addresses, mut cut) = (0, 0, 0);
        for name in [
            "pktvisor__dns_ipv6_udp.pcap",
            "pktvisor__dns_udp_tcp_random.pcap",
            "pktvisor__dnssec.pcap",
            "zeek__var-services-std-ports.pcap",
        ] {
            let mut src = FileSource::open(&dir.join(name)).unwrap();
            while let Ok(Some(pkt)) = src.next_packet() {
                let d = decode(pkt.link_type, pkt.data);
                let msg = d.l4_payload;
                if d.proto != 17 || msg.len() < 12 {
                    continue;
                }
                let Ok(m) = Message::from_bytes(msg) else {
                    continue;
                };
                let expected: Vec<(IpAddr, u32)> = m
                    .answers()
                    .iter()
                    .filter_map(|rr| match rr.data() {
                        RData::A(a) => Some((IpAddr::V4(a.0), rr.ttl())),
                        RData::AAAA(a) => Some((IpAddr::V6(a.0), rr.ttl())),
                        _ => None,
                    })
                    .collect();
                let got: Option<Vec<(IpAddr, u32)>> = address_answers(msg).map(|a| a.collect());
                assert_eq!(got.as_ref(), Some(&expected), "{name}");
                compared += 1;
                addresses += expected.len();
                // Answers last in the message: one byte less cuts the last answer.
                let nothing_after =
                    m.name_servers().is_empty() && m.additionals().is_empty() && m.extensions().is_none();
                if m.answer_count() > 0 && nothing_after {
                    assert!(address_answers(&msg[..msg.len() - 1]).is_none(), "{name}");
                    cut += 1;
                }
            }
        }
        assert!(
            compared > 1000 && addresses > 100 && cut > 0,
            "{compared} messages, {addresses} addresses, {cut} cut"
        );
    }

    #[test]
    fn answers_in_a_capture_label_their_addresses_like_tshark_says() {
        let f = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/pcap/fixtures/zeek__var-services-std-ports.pcap");
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&f)
            .args([
                "-Y",
                "dns.flags.response==1 && dns.flags.rcode==0 && udp.port==53",
            ])
            .args(["-T", "fields", "-E", "occurrence=a", "-E", "aggregator= "])
            .args([
                "-e",
                "dns.qry.name",
                "-e",
                "dns.count.answers",
                "-e",
                "dns.resp.type",
            ])
            .args(["-e", "dns.a", "-e", "dns.aaaa"])
            .output();
        let out = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            other => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "tshark is needed under CI: {other:?}"
                );
                eprintln!("skipping: tshark not available");
                return;
            }
        };
        // tshark lists the A/AAAA records of all sections in order; the answer section's
        // are the first ones, as many as A/AAAA types among the first `answers` records.
        let mut expected: Vec<(IpAddr, String)> = Vec::new();
        for line in out.lines() {
            let cols: Vec<&str> = line.split('\t').collect();
            let qname = cols[0].split(' ').next().unwrap_or("").to_ascii_lowercase();
            let answers: usize = cols[1].parse().unwrap();
            let types: Vec<&str> = cols[2].split(' ').take(answers).collect();
            let n_a = types.iter().filter(|t| **t == "1").count();
            let n_aaaa = types.iter().filter(|t| **t == "28").count();
            let a = cols[3].split(' ').take(n_a);
            let aaaa = cols.get(4).copied().unwrap_or("").split(' ').take(n_aaaa);
            for ip in a.chain(aaaa).filter_map(|s| s.parse::<IpAddr>().ok()) {
                expected.retain(|(i, _)| *i != ip);
                expected.push((ip, qname.clone()));
            }
        }
        assert!(!expected.is_empty(), "the fixture has answers");
        let mut engine = Engine::new(TrafficConfig {
            period: None,
            ..Default::default()
        });
        let mut src = FileSource::open(&f).unwrap();
        let mut last = PacketTime::default();
        while let Ok(Some(pkt)) = src.next_packet() {
            last = pkt.ts;
            engine.ingest(&pkt);
        }
        for (ip, name) in &expected {
            assert_eq!(
                engine.names().lookup(ip, last).as_deref(),
                Some(name.as_str()),
                "{ip}"
            );
        }
        assert_eq!(engine.names().len(), expected.len());
    }
}
