//! DNS over TCP: per-direction stream reassembly and RFC 1035 length-prefixed framing.
//!
//! Each direction of a connection is a stream keyed by (src, sport, dst, dport). A SYN
//! starts a new stream (a retransmitted SYN with the same ISN does not); a stream first seen
//! mid-connection starts at the sequence number of its first data segment. Bytes are placed
//! by sequence number, the first copy of a byte wins (retransmissions are dropped), segments
//! that arrive out of order wait until the gap before them is filled, and the stream stops
//! at a gap that is never filled. Memory is bounded: a maximum number of streams, a maximum
//! of buffered out-of-order bytes per stream, idle expiry by `now`.

use super::flows::ip_bits;
use crate::capture::PacketTime;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;

/// One direction of a connection: (src, sport) → (dst, dport), kept as whole integers
/// (see `flows::FlowKey` for why: it is hashed for every DNS-over-TCP segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    src: u128,
    dst: u128,
    /// sport, dport << 16, src is IPv4 << 32, dst is IPv4 << 33.
    rest: u64,
}

impl StreamKey {
    pub fn new((src, sport): (IpAddr, u16), (dst, dport): (IpAddr, u16)) -> StreamKey {
        let ((src, src_v4), (dst, dst_v4)) = (ip_bits(src), ip_bits(dst));
        StreamKey {
            src,
            dst,
            rest: u64::from(sport)
                | u64::from(dport) << 16
                | u64::from(src_v4) << 32
                | u64::from(dst_v4) << 33,
        }
    }
}

/// A segment that arrived ahead of the stream, waiting for the gap before it.
struct Pending {
    rel: u64,
    data: Vec<u8>,
    arrival: u64,
}

impl Pending {
    fn end(&self) -> u64 {
        self.rel + self.data.len() as u64
    }
}

struct Stream {
    isn: u32,
    syn: bool,
    /// Sequence number of relative offset 0 (set by the SYN or the first data segment).
    base: Option<u32>,
    /// Relative offset of the next byte the stream needs.
    next: u64,
    /// Contiguous bytes not yet framed into messages; `buf[..consumed]` is done.
    buf: Vec<u8>,
    consumed: usize,
    pending: Vec<Pending>,
    pending_bytes: usize,
    arrivals: u64,
    last_seen: PacketTime,
}

impl Stream {
    fn new(isn: u32, syn: bool, now: PacketTime) -> Stream {
        Stream {
            isn,
            syn,
            base: if syn { Some(isn.wrapping_add(1)) } else { None },
            next: 0,
            buf: Vec::new(),
            consumed: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            arrivals: 0,
            last_seen: now,
        }
    }

    fn append(&mut self, data: &[u8]) {
        if self.consumed > 0 && self.consumed == self.buf.len() {
            self.buf.clear();
            self.consumed = 0;
        }
        self.buf.extend_from_slice(data);
        self.next += data.len() as u64;
    }

    /// Moves waiting segments into the stream while they touch `next`; for each byte the
    /// segment that arrived first wins.
    fn drain_pending(&mut self) {
        loop {
            let next = self.next;
            let Some(chosen) = self
                .pending
                .iter()
                .enumerate()
                .filter(|(_, p)| p.rel <= next && next < p.end())
                .min_by_key(|(_, p)| p.arrival)
                .map(|(i, _)| i)
            else {
                break;
            };
            let arrival = self.pending[chosen].arrival;
            let run_end = self
                .pending
                .iter()
                .filter(|p| p.arrival < arrival && p.rel > next)
                .map(|p| p.rel)
                .fold(self.pending[chosen].end(), u64::min);
            let seg = &self.pending[chosen];
            let from = (next - seg.rel) as usize;
            let to = (run_end - seg.rel) as usize;
            let piece = seg.data.get(from..to).unwrap_or(&[]).to_vec();
            self.append(&piece);
            let now_next = self.next;
            self.pending.retain(|p| p.end() > now_next);
            self.pending_bytes = self.pending.iter().map(|p| p.data.len()).sum();
        }
    }

    /// Frames complete length-prefixed messages.
    fn frame(&mut self, on_message: &mut impl FnMut(&[u8])) {
        self.consumed += frame_messages(&self.buf[self.consumed..], on_message);
        if self.consumed > 0 && self.consumed * 2 >= self.buf.len() {
            self.buf.drain(..self.consumed);
            self.consumed = 0;
        }
    }
}

/// Hands each complete length-prefixed message at the start of `bytes` to `on_message`;
/// returns how many bytes they took.
fn frame_messages(bytes: &[u8], on_message: &mut impl FnMut(&[u8])) -> usize {
    let mut used = 0;
    loop {
        let rest = &bytes[used..];
        let Some(len) = rest
            .get(..2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            return used;
        };
        let Some(msg) = rest.get(2..2 + len) else {
            return used;
        };
        on_message(msg);
        used += 2 + len;
    }
}

/// Limits and counters of the reassembler.
pub struct TcpDnsStreams {
    streams: HashMap<StreamKey, Stream, foldhash::fast::RandomState>,
    max_streams: usize,
    max_pending_bytes: usize,
    idle: std::time::Duration,
    last_sweep: PacketTime,
    /// Streams dropped because the table was full or a stream buffered too much.
    pub dropped_streams: u64,
    pub expired_streams: u64,
}

impl TcpDnsStreams {
    pub fn new(max_streams: usize, idle: std::time::Duration) -> Self {
        TcpDnsStreams {
            streams: HashMap::default(),
            max_streams,
            max_pending_bytes: 256 * 1024,
            idle,
            last_sweep: PacketTime::default(),
            dropped_streams: 0,
            expired_streams: 0,
        }
    }

    pub fn active(&self) -> usize {
        self.streams.len()
    }

    /// Feeds one TCP segment; `on_message` is called for each complete DNS message.
    pub fn ingest(
        &mut self,
        key: StreamKey,
        seq: u32,
        syn: bool,
        payload: &[u8],
        now: PacketTime,
        on_message: &mut impl FnMut(&[u8]),
    ) {
        self.expire(now);
        let full = self.streams.len() >= self.max_streams;
        let s = match self.streams.entry(key) {
            Entry::Occupied(o) => {
                let s = o.into_mut();
                if syn && !(s.syn && s.isn == seq) {
                    *s = Stream::new(seq, syn, now);
                }
                s
            }
            Entry::Vacant(_) if full => {
                self.dropped_streams += 1;
                return;
            }
            Entry::Vacant(v) => v.insert(Stream::new(seq, syn, now)),
        };
        s.last_seen = now;
        if payload.is_empty() {
            return;
        }
        let base = *s.base.get_or_insert(seq);
        let rel = seq.wrapping_sub(base);
        if rel > 0x7FFF_FFFF {
            return; // before the start of the stream
        }
        let rel = u64::from(rel);
        let end = rel + payload.len() as u64;
        if end <= s.next {
            return; // retransmission of bytes we have
        }
        if s.pending.is_empty() && rel <= s.next {
            let from = (s.next - rel) as usize;
            let data = payload.get(from..).unwrap_or(&[]);
            if s.consumed == s.buf.len() {
                // Nothing buffered (the usual case: a message per segment): frame straight
                // from the segment and keep only an incomplete tail.
                s.buf.clear();
                s.consumed = 0;
                s.next += data.len() as u64;
                let used = frame_messages(data, on_message);
                s.buf.extend_from_slice(&data[used..]);
                return;
            }
            s.append(data);
        } else {
            if s.pending_bytes + payload.len() > self.max_pending_bytes {
                self.streams.remove(&key);
                self.dropped_streams += 1;
                return;
            }
            s.arrivals += 1;
            s.pending_bytes += payload.len();
            s.pending.push(Pending {
                rel,
                data: payload.to_vec(),
                arrival: s.arrivals,
            });
            s.drain_pending();
        }
        s.frame(on_message);
    }

    /// Forgets streams idle for longer than the timeout. Expiry only frees memory here, so
    /// sweeps are rare: every sixteenth of the timeout (at least a second) of `now`.
    pub fn expire(&mut self, now: PacketTime) {
        let every = (self.idle.as_nanos() as u64 / 16).max(PacketTime::NANOS_PER_SEC);
        if now.0 < self.last_sweep.0.saturating_add(every) {
            return;
        }
        self.last_sweep = now;
        let idle = self.idle.as_nanos() as u64;
        let before = self.streams.len();
        self.streams
            .retain(|_, s| now.0.saturating_sub(s.last_seen.0) <= idle);
        self.expired_streams += (before - self.streams.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> StreamKey {
        StreamKey::new(
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 53),
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 4000),
        )
    }

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u16).to_be_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    fn run(segments: &[(u32, bool, Vec<u8>)]) -> Vec<Vec<u8>> {
        let mut r = TcpDnsStreams::new(16, std::time::Duration::from_secs(60));
        let mut out = Vec::new();
        for (seq, syn, data) in segments {
            r.ingest(key(), *seq, *syn, data, PacketTime(0), &mut |m: &[u8]| {
                out.push(m.to_vec())
            });
        }
        out
    }

    #[test]
    fn in_order_out_of_order_and_retransmitted() {
        let stream = framed(&[b"hello world!", b"second message"]);
        let (a, b) = stream.split_at(5);
        let (b, c) = b.split_at(10);
        // SYN at 1000, data from 1001; c arrives before b, a is retransmitted.
        let got = run(&[
            (1000, true, vec![]),
            (1001, false, a.to_vec()),
            (1001 + 15, false, c.to_vec()),
            (1001, false, a.to_vec()),
            (1001 + 5, false, b.to_vec()),
        ]);
        assert_eq!(got, vec![b"hello world!".to_vec(), b"second message".to_vec()]);
    }

    #[test]
    fn a_gap_that_is_never_filled_stops_the_stream() {
        let stream = framed(&[b"abc", b"def"]);
        let got = run(&[
            (7, false, stream[..5].to_vec()),
            (7 + 6, false, stream[6..].to_vec()),
        ]);
        assert_eq!(got, vec![b"abc".to_vec()]);
    }

    #[test]
    fn data_before_the_first_segment_is_ignored() {
        let stream = framed(&[b"xyz"]);
        let got = run(&[(100, false, stream.clone()), (90, false, vec![0; 12])]);
        assert_eq!(got, vec![b"xyz".to_vec()]);
    }
}
