//! DNS message statistics: header counters, rcodes, NODATA, qtypes, distinct qnames (HLL)
//! and top qnames (frequent items). The question is decoded with `hickory-proto`'s wire
//! decoder; the 12-byte header is read directly so that a message whose answers were cut
//! off (snaplen, first IP fragment) still counts.
//!
//! Rules (README of the pcap test data): a message counts when its header is present;
//! qname/qtype only when the first question parses; rcode is the 4-bit header field over
//! responses; NODATA is a NOERROR response without answers; qnames are lower-cased, without
//! the trailing dot, the root is `.`, and bytes outside `!`..`~` are written `\DDD`.
//!
//! Beyond the reference schema: qnames aggregated to their last 2 and 3 labels (pktvisor's
//! qname2/qname3), top qnames per error kind (NXDOMAIN, SERVFAIL, REFUSED, NODATA), top
//! qnames by response bytes, and query/response byte totals for the size ratio.

use super::sketch::{hll, hll_merge, TopN};
use datasketches::hll::HllSketch;
use foldhash::fast::RandomState;
use hickory_proto::op::Query;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::collections::{BTreeMap, HashMap};
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
    pub id: u16,
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
            id: u16::from_be_bytes([h[0], h[1]]),
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
        push_label(out, label);
    }
    if out.is_empty() {
        out.push('.');
    }
    Some(u16::from(query.query_type()))
}

/// Appends one label: printable ASCII lower-cased, `.` and `\` escaped, other bytes `\DDD`.
fn push_label(out: &mut String, label: &[u8]) {
    let plain = |b: &u8| matches!(b, 0x21..=0x7E) && *b != b'.' && *b != b'\\';
    if let (true, Ok(text)) = (label.iter().all(plain), std::str::from_utf8(label)) {
        let start = out.len();
        out.push_str(text);
        out[start..].make_ascii_lowercase();
        return;
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

/// DNS counters for one window. Bounded: qtypes are at most 65536 small counters, qnames
/// go into sketches. Per-question figures (qtypes, qname sketches) are exact after
/// [`DnsStats::settle`].
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
    pub top_qname2: TopN<String>,
    pub top_qname3: TopN<String>,
    pub top_nxdomain: TopN<String>,
    pub top_servfail: TopN<String>,
    pub top_refused: TopN<String>,
    pub top_nodata: TopN<String>,
    /// Responses' sizes (DNS message bytes) per qname.
    pub top_response_bytes: TopN<String>,
    pub query_bytes: u64,
    pub response_bytes: u64,
    /// Where hickory writes a question it decodes.
    name_buf: String,
    /// The first question of the last message, an index into `questions`.
    last_question: Option<usize>,
    questions: Questions,
}

/// A first question seen since the questions were last cleared, keyed by its wire bytes
/// (name, qtype and qclass as they follow the header; see [`question_key`]).
///
/// Two jobs in one map. A cache: a busy resolver sees the same few thousand questions
/// again and again, so each distinct one is decoded by hickory once and later messages
/// only look it up (hickory's result depends on nothing but these bytes). And exact
/// per-question counts since the last [`DnsStats::settle`]: the HLL and the
/// frequent-items sketches then get one update per distinct name and batch instead of one
/// per message (the same result while the sketches are exact, the same error bounds when
/// they are not). Bounded by [`DnsStats::MAX_QUESTIONS`] entries.
struct Question {
    name: Box<str>,
    qtype: u16,
    messages: u64,
    response_bytes: u64,
    nodata: u64,
    servfail: u64,
    nxdomain: u64,
    refused: u64,
}

impl Question {
    fn new(name: Box<str>, qtype: u16) -> Self {
        Question {
            name,
            qtype,
            messages: 0,
            response_bytes: 0,
            nodata: 0,
            servfail: 0,
            nxdomain: 0,
            refused: 0,
        }
    }

    fn reset_counts(&mut self) {
        *self = Question::new(std::mem::take(&mut self.name), self.qtype);
    }
}

/// The [`Question`]s, found by their wire bytes.
#[derive(Default)]
struct Questions {
    index: HashMap<Box<[u8]>, usize, RandomState>,
    list: Vec<Question>,
}

impl Questions {
    /// The first question of `msg`: looked up by its wire bytes, else decoded by hickory
    /// (into `name_buf`) and remembered. `None` when it does not decode.
    fn get_or_decode(&mut self, name_buf: &mut String, msg: &[u8]) -> Option<(usize, &mut Question)> {
        let key = question_key(msg);
        if let Some(&i) = key.and_then(|k| self.index.get(k)) {
            return Some((i, &mut self.list[i]));
        }
        let qtype = first_question(msg, name_buf)?;
        // Questions with compression pointers (never seen in practice) are keyed by their
        // decoded name behind a byte no wire name starts with.
        let key: Box<[u8]> = match key {
            Some(k) => k.into(),
            None => [&[0xFF][..], name_buf.as_bytes(), &qtype.to_be_bytes()]
                .concat()
                .into(),
        };
        let i = *self.index.entry(key).or_insert_with(|| {
            self.list.push(Question::new(name_buf.as_str().into(), qtype));
            self.list.len() - 1
        });
        Some((i, &mut self.list[i]))
    }

    fn clear(&mut self) {
        self.index.clear();
        self.list.clear();
    }
}

/// The wire bytes of the first question (uncompressed name, qtype, qclass), or `None` when
/// the name uses a compression pointer or an extended label type, or the message ends
/// first. Only a key: the question is decoded by hickory the first time it is seen.
fn question_key(msg: &[u8]) -> Option<&[u8]> {
    const START: usize = 12;
    let mut i = START;
    loop {
        let len = usize::from(*msg.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 || i - START > 255 {
            return None;
        }
        i += len;
    }
    msg.get(START..i + 4)
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
            top_qname2: TopN::new(TopN::<String>::LARGE),
            top_qname3: TopN::new(TopN::<String>::LARGE),
            top_nxdomain: TopN::new(TopN::<String>::SMALL),
            top_servfail: TopN::new(TopN::<String>::SMALL),
            top_refused: TopN::new(TopN::<String>::SMALL),
            top_nodata: TopN::new(TopN::<String>::SMALL),
            top_response_bytes: TopN::new(TopN::<String>::LARGE),
            query_bytes: 0,
            response_bytes: 0,
            name_buf: String::with_capacity(256),
            last_question: None,
            questions: Questions::default(),
        }
    }
}

impl DnsStats {
    /// Counts one message (a UDP payload or a reassembled TCP message) and returns its
    /// header; [`DnsStats::last_qname`] then gives its first question's name.
    pub fn ingest(&mut self, msg: &[u8], transport: Transport) -> Option<Header> {
        self.last_question = None;
        let Some(h) = Header::parse(msg) else {
            if matches!(transport, Transport::Udp { .. }) {
                self.too_short += 1;
            }
            return None;
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
        let size = msg.len() as u64;
        if h.response {
            self.response_bytes += size;
            self.responses += 1;
            self.rcodes[usize::from(h.rcode)] += 1;
            if h.rcode == 0 && h.ancount == 0 {
                self.nodata += 1;
            }
        } else {
            self.query_bytes += size;
            self.queries += 1;
        }
        if h.opcode != 0 {
            self.opcode_nonzero += 1;
        }
        let q = if h.qdcount >= 1 {
            self.questions.get_or_decode(&mut self.name_buf, msg)
        } else {
            None
        };
        match q {
            Some((i, q)) => {
                self.last_question = Some(i);
                q.messages += 1;
                if h.response {
                    q.response_bytes += size;
                    match h.rcode {
                        0 if h.ancount == 0 => q.nodata += 1,
                        2 => q.servfail += 1,
                        3 => q.nxdomain += 1,
                        5 => q.refused += 1,
                        _ => {}
                    }
                }
            }
            None => self.question_unparsed += 1,
        }
        Some(h)
    }

    /// Distinct first questions kept between [`DnsStats::settle`] calls.
    pub const MAX_QUESTIONS: usize = 4096;

    /// True when the question map should be settled before the next message.
    pub fn is_full(&self) -> bool {
        self.questions.list.len() >= Self::MAX_QUESTIONS
    }

    /// Feeds the per-question counts to the sketches; call before reading them. The
    /// questions stay for lookups until the map is full.
    pub fn settle(&mut self) {
        for q in &mut self.questions.list {
            if q.messages == 0 {
                continue;
            }
            *self.qtypes.entry(q.qtype).or_insert(0) += q.messages;
            let name = &*q.name;
            self.qnames.update(name);
            self.top_qnames.add_ref(name, q.messages);
            let (q2, q3) = aggregate_labels(name);
            self.top_qname2.add_ref(q2, q.messages);
            if let Some(q3) = q3 {
                self.top_qname3.add_ref(q3, q.messages);
            }
            for (top, n) in [
                (&mut self.top_response_bytes, q.response_bytes),
                (&mut self.top_nodata, q.nodata),
                (&mut self.top_servfail, q.servfail),
                (&mut self.top_nxdomain, q.nxdomain),
                (&mut self.top_refused, q.refused),
            ] {
                if n > 0 {
                    top.add_ref(name, n);
                }
            }
            q.reset_counts();
        }
        if self.is_full() {
            self.questions.clear();
            self.last_question = None;
        }
    }

    /// The normalised first-question name of the message ingested last, if it parsed.
    pub fn last_qname(&self) -> Option<&str> {
        let i = self.last_question?;
        self.questions.list.get(i).map(|q| &*q.name)
    }

    /// Response bytes per query byte (DNS message sizes), `None` without queries.
    pub fn response_query_ratio(&self) -> Option<f64> {
        (self.query_bytes > 0).then(|| self.response_bytes as f64 / self.query_bytes as f64)
    }

    /// Adds a settled `o` into this one.
    pub fn merge_from(&mut self, o: &DnsStats) {
        debug_assert!(
            o.questions.list.iter().all(|q| q.messages == 0),
            "merge_from needs settled stats"
        );
        self.messages += o.messages;
        self.udp_messages += o.udp_messages;
        self.tcp_messages += o.tcp_messages;
        self.udp_incomplete += o.udp_incomplete;
        self.too_short += o.too_short;
        self.queries += o.queries;
        self.responses += o.responses;
        for (a, b) in self.rcodes.iter_mut().zip(o.rcodes.iter()) {
            *a += b;
        }
        self.nodata += o.nodata;
        self.opcode_nonzero += o.opcode_nonzero;
        self.question_unparsed += o.question_unparsed;
        for (t, n) in &o.qtypes {
            *self.qtypes.entry(*t).or_insert(0) += n;
        }
        hll_merge(&mut self.qnames, &o.qnames);
        self.top_qnames.merge_from(&o.top_qnames);
        self.top_qname2.merge_from(&o.top_qname2);
        self.top_qname3.merge_from(&o.top_qname3);
        self.top_nxdomain.merge_from(&o.top_nxdomain);
        self.top_servfail.merge_from(&o.top_servfail);
        self.top_refused.merge_from(&o.top_refused);
        self.top_nodata.merge_from(&o.top_nodata);
        self.top_response_bytes.merge_from(&o.top_response_bytes);
        self.query_bytes += o.query_bytes;
        self.response_bytes += o.response_bytes;
    }

    pub fn rcode_name(rcode: usize) -> String {
        RCODE_NAMES
            .get(rcode)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("RCODE{rcode}"))
    }
}

/// A normalised name cut to its last 2 labels, and to its last 3 when it has at least 3
/// (pktvisor's qname2/qname3). Escaped dots (`\.`) are inside labels, not separators.
pub fn aggregate_labels(name: &str) -> (&str, Option<&str>) {
    let b = name.as_bytes();
    // Start offsets of the last three labels, found from the left (escapes run forward).
    let mut starts = [0usize; 3];
    let mut labels = 1;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'.' if i + 1 < b.len() => {
                starts = [starts[1], starts[2], i + 1];
                labels += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let at = |n: usize| &name[starts[3 - n]..];
    match labels {
        0..=2 => (name, None),
        3 => (at(2), Some(name)),
        _ => (at(2), Some(at(3))),
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
    fn names_aggregate_to_two_and_three_labels() {
        assert_eq!(
            aggregate_labels("a.b.example.com"),
            ("example.com", Some("b.example.com"))
        );
        assert_eq!(
            aggregate_labels("b.example.com"),
            ("example.com", Some("b.example.com"))
        );
        assert_eq!(aggregate_labels("example.com"), ("example.com", None));
        assert_eq!(
            aggregate_labels("x\\.y.example.com"),
            ("example.com", Some("x\\.y.example.com"))
        );
        assert_eq!(aggregate_labels("."), (".", None));
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
        d.settle();
        assert_eq!(d.top_qnames.top(10)[0], ("a.com".to_string(), 2));
        assert_eq!(d.qnames.estimate().round() as u64, 2);
    }
}
