//! DNS message statistics: header counters, rcodes, NODATA, qtypes, distinct qnames (HLL)
//! and top qnames (frequent items). The question is decoded with `hickory-proto`'s wire
//! decoder; the 12-byte header is read directly so that a message whose answers were cut
//! off (snaplen, first IP fragment) still counts.
//!
//! Rules (README of the pcap test data): a message counts when its header is present;
//! qname/qtype only when the first question parses; rcode is the 4-bit header field over
//! responses; NODATA is a NOERROR response without answers; qnames are lower-cased, without
//! the trailing dot, the root is `.`, and bytes outside `!`..`~` are written `\DDD`.

use super::sketch::{hll, TopN};
use datasketches::hll::HllSketch;
use hickory_proto::op::Query;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub const RCODE_NAMES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET",
    "NOTAUTH", "NOTZONE",
];

/// How a DNS message reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp { incomplete: bool },
    Tcp,
}

/// The parts of a message we count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub response: bool,
    pub opcode: u8,
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
}

impl Header {
    pub fn parse(msg: &[u8]) -> Option<Header> {
        let h = msg.get(..12)?;
        let flags = u16::from_be_bytes([h[2], h[3]]);
        Some(Header {
            response: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0xF) as u8,
            rcode: (flags & 0xF) as u8,
            qdcount: u16::from_be_bytes([h[4], h[5]]),
            ancount: u16::from_be_bytes([h[6], h[7]]),
        })
    }
}

/// Writes the normalised first-question name into `out` and returns the qtype, or `None`
/// when the question does not parse.
pub fn first_question(msg: &[u8], out: &mut String) -> Option<u16> {
    let mut decoder = BinDecoder::new(msg);
    decoder.read_slice(12).ok()?;
    let query = Query::read(&mut decoder).ok()?;
    out.clear();
    for label in query.name().iter() {
        if !out.is_empty() {
            out.push('.');
        }
        for &b in label {
            match b {
                b'.' | b'\\' => {
                    out.push('\\');
                    out.push(b as char);
                }
                b'A'..=b'Z' => out.push(b.to_ascii_lowercase() as char),
                0x21..=0x7E => out.push(b as char),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    Some(u16::from(query.query_type()))
}

/// DNS counters for one window. Bounded: qtypes are at most 65536 small counters, qnames
/// go into sketches.
pub struct DnsStats {
    pub messages: u64,
    pub udp_messages: u64,
    pub tcp_messages: u64,
    pub udp_incomplete: u64,
    pub too_short: u64,
    pub queries: u64,
    pub responses: u64,
    pub rcodes: [u64; 16],
    pub nodata: u64,
    pub opcode_nonzero: u64,
    pub question_unparsed: u64,
    pub qtypes: BTreeMap<u16, u64>,
    pub qnames: HllSketch,
    pub top_qnames: TopN<String>,
    name_buf: String,
}

impl Default for DnsStats {
    fn default() -> Self {
        DnsStats {
            messages: 0,
            udp_messages: 0,
            tcp_messages: 0,
            udp_incomplete: 0,
            too_short: 0,
            queries: 0,
            responses: 0,
            rcodes: [0; 16],
            nodata: 0,
            opcode_nonzero: 0,
            question_unparsed: 0,
            qtypes: BTreeMap::new(),
            qnames: hll(),
            top_qnames: TopN::new(TopN::<String>::LARGE),
            name_buf: String::with_capacity(256),
        }
    }
}

impl DnsStats {
    /// Counts one message (a UDP payload or a reassembled TCP message).
    pub fn ingest(&mut self, msg: &[u8], transport: Transport) {
        let Some(h) = Header::parse(msg) else {
            if matches!(transport, Transport::Udp { .. }) {
                self.too_short += 1;
            }
            return;
        };
        self.messages += 1;
        match transport {
            Transport::Udp { incomplete } => {
                self.udp_messages += 1;
                if incomplete {
                    self.udp_incomplete += 1;
                }
            }
            Transport::Tcp => self.tcp_messages += 1,
        }
        if h.response {
            self.responses += 1;
            self.rcodes[usize::from(h.rcode)] += 1;
            if h.rcode == 0 && h.ancount == 0 {
                self.nodata += 1;
            }
        } else {
            self.queries += 1;
        }
        if h.opcode != 0 {
            self.opcode_nonzero += 1;
        }
        let qtype = if h.qdcount >= 1 {
            first_question(msg, &mut self.name_buf)
        } else {
            None
        };
        match qtype {
            Some(t) => {
                *self.qtypes.entry(t).or_insert(0) += 1;
                self.qnames.update(self.name_buf.as_str());
                self.top_qnames.add_ref(self.name_buf.as_str(), 1);
            }
            None => self.question_unparsed += 1,
        }
    }

    pub fn rcode_name(rcode: usize) -> String {
        RCODE_NAMES
            .get(rcode)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("RCODE{rcode}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[&[u8]], qtype: u16, flags: u16, ancount: u16) -> Vec<u8> {
        let mut v = vec![0x12, 0x34];
        v.extend_from_slice(&flags.to_be_bytes());
        v.extend_from_slice(&[0, 1]);
        v.extend_from_slice(&ancount.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0]);
        for l in name {
            v.push(l.len() as u8);
            v.extend_from_slice(l);
        }
        v.push(0);
        v.extend_from_slice(&qtype.to_be_bytes());
        v.extend_from_slice(&[0, 1]);
        v
    }

    #[test]
    fn qname_is_normalised() {
        let mut s = String::new();
        let m = query(&[b"WwW", b"Ex ample", b"a.b"], 28, 0, 0);
        assert_eq!(first_question(&m, &mut s), Some(28));
        assert_eq!(s, "www.ex\\032ample.a\\.b");
        let m = query(&[], 2, 0, 0);
        assert_eq!(first_question(&m, &mut s), Some(2));
        assert_eq!(s, ".");
    }

    #[test]
    fn counts_rcodes_nodata_and_truncated_questions() {
        let mut d = DnsStats::default();
        d.ingest(&query(&[b"a", b"com"], 1, 0x0100, 0), Transport::Tcp);
        d.ingest(
            &query(&[b"a", b"com"], 1, 0x8180, 0),
            Transport::Udp { incomplete: false },
        );
        d.ingest(
            &query(&[b"b", b"com"], 1, 0x8183, 0),
            Transport::Udp { incomplete: false },
        );
        let cut = query(&[b"c", b"com"], 1, 0x8180, 1);
        d.ingest(&cut[..14], Transport::Udp { incomplete: true });
        d.ingest(&[0; 5], Transport::Udp { incomplete: false });
        assert_eq!((d.messages, d.queries, d.responses), (4, 1, 3));
        assert_eq!((d.rcodes[0], d.rcodes[3], d.nodata), (2, 1, 1));
        assert_eq!((d.question_unparsed, d.too_short, d.udp_incomplete), (1, 1, 1));
        assert_eq!(d.top_qnames.top(10)[0], ("a.com".to_string(), 2));
        assert_eq!(d.qnames.estimate().round() as u64, 2);
    }
}
