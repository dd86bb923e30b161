//! Received log lines: the time-keyed `log_events` table, its `log_index` of search terms,
//! batch appends, indexed search and pruning by age and by size.
//!
//! Keys: an event is stored under a [`TimeKey`] (receive millis, sequence), strictly
//! increasing so appends use LMDB's append fast path. The index holds posting lists: under
//! `[kind][term][first event key]` the value is the event keys (12 bytes each, oldest first)
//! of up to [`POSTINGS_PER_ENTRY`] lines of one commit that have the term. A term's lists
//! therefore sort by time and never overlap, a search for one address is a short range
//! scan, and a commit writes one index entry per term and 128 lines instead of one per term
//! and line. Index terms are derived from the event ([`StoredLog::index_terms`]), so pruning
//! recomputes them and drops or trims the lists that pointed at the deleted events.
//! Receivers encode values and index prefixes where they parse ([`EncodedLogs`]); the one
//! writer only assigns keys and puts ([`Store::append_encoded`]).
//!
//! Must not: read clocks (callers pass cutoffs and receive times) or decide what matches
//! beyond [`LogQuery::matches`].

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::ops::Bound;

use foldhash::fast::RandomState;
use heed::types::Bytes;
use heed::PutFlags;

use super::schema::Tables;
use super::table::{decode_value, encode_into, sealed::Sealed as _, RawDb, WriteTxn};
use super::{Key, Store, StoreError, TimeKey};
use crate::model::{FirewallAction, HostFilter, IndexTerm, LogQuery, StoredLog, Timestamp};

const K_IP: u8 = 1;
const K_PORT: u8 = 2;
const K_ACTION: u8 = 3;
const K_PROTOCOL: u8 = 4;
const K_INTERFACE: u8 = 5;
const K_HOSTNAME: u8 = 6;
const K_SENDER: u8 = 7;

const EVENT_KEY_LEN: usize = 12;
/// Event keys in one index value at most: 1.5 KB, so the value stays inside its leaf page
/// (LMDB moves values over about 2 KB to overflow pages, which fragment the free list).
pub const POSTINGS_PER_ENTRY: usize = 128;

fn ip16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn action_byte(a: FirewallAction) -> u8 {
    match a {
        FirewallAction::Pass => 0,
        FirewallAction::Block => 1,
        FirewallAction::Reject => 2,
    }
}

/// `[kind][term]` — the part of an index key before the event key.
fn term_prefix(term: &IndexTerm) -> Vec<u8> {
    let mut k = Vec::with_capacity(24);
    push_term_prefix(&mut k, term);
    k
}

fn push_term_prefix(k: &mut Vec<u8>, term: &IndexTerm) {
    match term {
        IndexTerm::Ip(ip) => {
            k.push(K_IP);
            k.extend_from_slice(&ip16(*ip));
        }
        IndexTerm::Port(p) => {
            k.push(K_PORT);
            k.extend_from_slice(&p.to_be_bytes());
        }
        IndexTerm::Action(a) => k.extend_from_slice(&[K_ACTION, action_byte(*a)]),
        IndexTerm::Protocol(s) => text_term(k, K_PROTOCOL, s),
        IndexTerm::Interface(s) => text_term(k, K_INTERFACE, s),
        IndexTerm::Hostname(s) => text_term(k, K_HOSTNAME, s),
        IndexTerm::Sender(ip) => {
            k.push(K_SENDER);
            k.extend_from_slice(&ip16(*ip));
        }
    }
}

fn text_term(k: &mut Vec<u8>, kind: u8, s: &str) {
    k.push(kind);
    k.extend_from_slice(s.as_bytes());
    k.push(0);
}

fn index_key(prefix: &[u8], at: &TimeKey) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&at.encode());
    k
}

fn time_key_bytes(k: &TimeKey) -> [u8; EVENT_KEY_LEN] {
    let mut b = [0u8; EVENT_KEY_LEN];
    b[..8].copy_from_slice(&k.at.0.to_be_bytes());
    b[8..].copy_from_slice(&k.seq.to_be_bytes());
    b
}

fn time_key_from(b: &[u8]) -> TimeKey {
    let mut at = [0u8; 8];
    at.copy_from_slice(&b[..8]);
    let mut seq = [0u8; 4];
    seq.copy_from_slice(&b[8..EVENT_KEY_LEN]);
    TimeKey {
        at: Timestamp(u64::from_be_bytes(at)),
        seq: u32::from_be_bytes(seq),
    }
}

/// The event keys of one index value, oldest first.
fn postings(value: &[u8]) -> Result<impl DoubleEndedIterator<Item = TimeKey> + '_, StoreError> {
    if value.is_empty() || value.len() % EVENT_KEY_LEN != 0 {
        return Err(StoreError::Corrupt {
            table: super::schema::LOG_INDEX,
            detail: format!("an index value of {} bytes", value.len()),
        });
    }
    Ok(value.chunks_exact(EVENT_KEY_LEN).map(time_key_from))
}

/// Writes the index entries of one commit: for each term prefix, its event keys (ascending,
/// all newer than anything indexed before) in values of at most [`POSTINGS_PER_ENTRY`].
fn put_postings(
    txn: &mut WriteTxn<'_>,
    index: RawDb,
    mut by_term: Vec<(&[u8], Vec<[u8; EVENT_KEY_LEN]>)>,
) -> Result<(), StoreError> {
    // In key order, so that the cursor is mostly already on the right page.
    by_term.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut cursor = index
        .iter_mut(&mut txn.txn)
        .map_err(|e| StoreError::lmdb("writing", e))?;
    let mut key = Vec::with_capacity(64);
    let mut value = Vec::with_capacity(POSTINGS_PER_ENTRY * EVENT_KEY_LEN);
    let mut failed = None;
    'terms: for (term, keys) in &by_term {
        for chunk in keys.chunks(POSTINGS_PER_ENTRY) {
            key.clear();
            key.extend_from_slice(term);
            key.extend_from_slice(&chunk[0]);
            value.clear();
            value.extend(chunk.iter().flatten());
            // SAFETY: no value read from the database is held while the cursor writes.
            let put = unsafe { cursor.put_current_with_options::<Bytes>(PutFlags::empty(), &key, &value) };
            if let Err(e) = put {
                failed = Some(e);
                break 'terms;
            }
        }
    }
    drop(cursor);
    match failed {
        Some(e) => Err(txn.note("writing", e)),
        None => Ok(()),
    }
}

/// Removes the event keys up to `newest` from `prefix`'s lists (pruning deleted those
/// events): drops the lists that end there and trims the one that goes past it.
fn drop_postings_through(
    txn: &mut WriteTxn<'_>,
    index: RawDb,
    prefix: &[u8],
    newest: TimeKey,
) -> Result<(), StoreError> {
    let hi = index_key(prefix, &newest);
    let range = (Bound::Included(prefix), Bound::Included(hi.as_slice()));
    let mut dropped = Vec::new();
    let mut trimmed = None;
    for item in index
        .range(txn.ro(), &range)
        .map_err(|e| StoreError::lmdb("reading", e))?
    {
        let (k, list) = item.map_err(|e| StoreError::lmdb("reading", e))?;
        // (A malformed list is dropped: search could not use it either.)
        let kept: Vec<u8> = match postings(list) {
            Ok(keys) => keys
                .filter(|k| *k > newest)
                .flat_map(|k| time_key_bytes(&k))
                .collect(),
            Err(_) => Vec::new(),
        };
        dropped.push(k.to_vec());
        if !kept.is_empty() {
            // Lists do not overlap: no later one holds anything up to `newest`.
            trimmed = Some(kept);
            break;
        }
    }
    for k in &dropped {
        let r = index.delete(&mut txn.txn, k);
        r.map_err(|e| txn.note("deleting", e))?;
    }
    if let Some(kept) = trimmed {
        let mut key = prefix.to_vec();
        key.extend_from_slice(&kept[..EVENT_KEY_LEN]);
        let r = index.put(&mut txn.txn, &key, &kept);
        r.map_err(|e| txn.note("writing", e))?;
    }
    Ok(())
}

/// Events read per step while [`rebuild_log_index`] runs.
const REBUILD_CHUNK: usize = 8192;

/// Rewrites the whole index from the stored events (the index layout changed in schema v3);
/// returns how many events were indexed.
pub(crate) fn rebuild_log_index(txn: &mut WriteTxn<'_>, tables: &Tables) -> Result<u64, StoreError> {
    let (events, index) = (tables.log_events, tables.log_index.raw());
    index.clear(&mut txn.txn).map_err(|e| txn.note("clearing", e))?;
    let mut after: Option<Vec<u8>> = None;
    let mut total = 0u64;
    loop {
        let mut chunk: Vec<([u8; EVENT_KEY_LEN], Vec<Vec<u8>>)> = Vec::new();
        {
            let range = (
                after.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                Bound::Unbounded,
            );
            let iter = events.raw().range(txn.ro(), &range);
            for item in iter
                .map_err(|e| StoreError::lmdb("reading", e))?
                .take(REBUILD_CHUNK)
            {
                let (k, v) = item.map_err(|e| StoreError::lmdb("reading", e))?;
                let terms = decode_value::<StoredLog>(events.name(), v)
                    .map(|log| log.index_terms())
                    .unwrap_or_default();
                let key = time_key_bytes(&TimeKey::decode(k)?);
                chunk.push((key, terms.iter().map(term_prefix).collect()));
            }
        }
        let Some((last, _)) = chunk.last() else {
            return Ok(total);
        };
        after = Some(last.to_vec());
        let mut by_term: HashMap<&[u8], Vec<[u8; EVENT_KEY_LEN]>, RandomState> = HashMap::default();
        for (key, prefixes) in &chunk {
            for p in prefixes {
                by_term.entry(p.as_slice()).or_default().push(*key);
            }
        }
        put_postings(txn, index, by_term.into_iter().collect())?;
        total += chunk.len() as u64;
    }
}

/// postcard's unsigned varint (LEB128) of `v`.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `bytes` after the varint it starts with.
fn skip_varint(bytes: &[u8]) -> &[u8] {
    let len = bytes
        .iter()
        .position(|b| b & 0x80 == 0)
        .map_or(bytes.len(), |i| i + 1);
    &bytes[len..]
}

/// A line's ranges in an [`EncodedLogs`] buffer.
#[derive(Debug, Clone, Copy)]
struct EncodedLine {
    received: Timestamp,
    /// The value (version byte and postcard body) in `buf`.
    value: (u32, u32),
    /// Its index term prefixes: a range of `terms`.
    terms: (u32, u32),
}

/// Lines encoded for [`Store::append_encoded`] where they were parsed, so the one writer
/// thread only assigns keys and writes: each value as stored (version byte, then postcard
/// with the receive time first) and each index term's key prefix, all in one buffer.
#[derive(Debug, Default)]
pub struct EncodedLogs {
    buf: Vec<u8>,
    lines: Vec<EncodedLine>,
    /// Ranges of `buf` holding index key prefixes.
    terms: Vec<(u32, u32)>,
}

impl EncodedLogs {
    /// Encodes one line (its receive time is the key's unless the clock stepped back).
    pub fn push(&mut self, log: &StoredLog) -> Result<(), StoreError> {
        if self.buf.len() > u32::MAX as usize / 2 {
            return Err(StoreError::Encode {
                table: super::schema::LOG_EVENTS,
                detail: "encoded batch too large".into(),
            });
        }
        let start = self.buf.len() as u32;
        let buf = std::mem::take(&mut self.buf);
        self.buf = encode_into(super::schema::LOG_EVENTS, log, buf)?;
        let value = (start, self.buf.len() as u32);
        let first_term = self.terms.len() as u32;
        for term in log.index_terms() {
            let t0 = self.buf.len() as u32;
            push_term_prefix(&mut self.buf, &term);
            self.terms.push((t0, self.buf.len() as u32));
        }
        self.lines.push(EncodedLine {
            received: log.received,
            value,
            terms: (first_term, self.terms.len() as u32),
        });
        Ok(())
    }

    /// Room for about `bytes` of values and index prefixes and `lines` lines.
    pub fn reserve(&mut self, bytes: usize, lines: usize) {
        self.buf.reserve(bytes);
        self.lines.reserve(lines);
        self.terms.reserve(lines * 2);
    }

    /// Empties the buffer, keeping its allocations for reuse.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.lines.clear();
        self.terms.clear();
    }

    /// Bytes allocated (for deciding whether a spare buffer is worth keeping).
    pub fn capacity_bytes(&self) -> usize {
        self.buf.capacity()
            + self.lines.capacity() * std::mem::size_of::<EncodedLine>()
            + self.terms.capacity() * std::mem::size_of::<(u32, u32)>()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn slice(&self, r: (u32, u32)) -> &[u8] {
        &self.buf[r.0 as usize..r.1 as usize]
    }
}

/// One page of search results, newest first.
#[derive(Debug, Clone, Default)]
pub struct LogPage {
    pub entries: Vec<(TimeKey, StoredLog)>,
    /// Pass as `before` to get the next page; `None` when there is none.
    pub next: Option<TimeKey>,
    /// Stored lines looked at.
    pub scanned: u64,
    /// The scan stopped at its limit before reaching the start of the range.
    pub scan_limited: bool,
}

/// How a search walks the store: one index term's entries, a range of addresses, or every
/// event in the time range.
enum Driver {
    Prefix(Vec<u8>),
    IpRange([u8; 16], [u8; 16]),
    Time,
}

fn driver(q: &LogQuery) -> Driver {
    if let Some(net) = &q.ip {
        let (lo, hi) = (ip16(net.network()), ip16(net.broadcast()));
        return if lo == hi {
            Driver::Prefix(term_prefix(&IndexTerm::Ip(net.addr())))
        } else {
            Driver::IpRange(lo, hi)
        };
    }
    if let Some(p) = q.port {
        return Driver::Prefix(term_prefix(&IndexTerm::Port(p)));
    }
    match &q.host {
        Some(HostFilter::Sender(ip)) => return Driver::Prefix(term_prefix(&IndexTerm::Sender(*ip))),
        Some(HostFilter::Name(n)) => return Driver::Prefix(term_prefix(&IndexTerm::Hostname(n.clone()))),
        None => {}
    }
    if let Some(i) = &q.interface {
        return Driver::Prefix(term_prefix(&IndexTerm::Interface(i.clone())));
    }
    if let Some(a) = q.action {
        return Driver::Prefix(term_prefix(&IndexTerm::Action(a)));
    }
    if let Some(p) = &q.protocol {
        return Driver::Prefix(term_prefix(&IndexTerm::Protocol(p.clone())));
    }
    Driver::Time
}

/// The time keys bounding a search: `[from, min(to, before))`.
fn time_bounds(q: &LogQuery, before: Option<TimeKey>) -> (TimeKey, Option<TimeKey>) {
    let lo = TimeKey {
        at: q.from.unwrap_or(Timestamp(0)),
        seq: 0,
    };
    let to = q.to.map(|t| TimeKey { at: t, seq: 0 });
    let hi = match (to, before) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    (lo, hi)
}

impl Store {
    /// Appends `logs` in one transaction (committed when this returns `Ok`) with their index
    /// entries. Receive times are made strictly increasing against what is stored (a clock
    /// that stepped back is clamped), and written back into `logs`.
    pub fn append_logs(&self, logs: &mut [StoredLog]) -> Result<usize, StoreError> {
        let mut batch = EncodedLogs::default();
        for log in logs.iter() {
            batch.push(log)?;
        }
        let mut keys = vec![
            TimeKey {
                at: Timestamp(0),
                seq: 0
            };
            logs.len()
        ];
        self.append_encoded(std::slice::from_ref(&batch), |i, k| keys[i] = k)?;
        for (log, k) in logs.iter_mut().zip(keys) {
            log.received = k.at;
        }
        Ok(logs.len())
    }

    /// Appends encoded lines (see [`EncodedLogs`]) in one transaction, committed when this
    /// returns `Ok`. Receive times are made strictly increasing against what is stored (a
    /// clock that stepped back is clamped); `on_key` learns each line's key (the n-th line
    /// over all batches), possibly more than once if the map had to grow.
    pub fn append_encoded(
        &self,
        batches: &[EncodedLogs],
        mut on_key: impl FnMut(usize, TimeKey),
    ) -> Result<usize, StoreError> {
        let events = self.tables().log_events;
        let index = self.tables().log_index;
        self.write(|txn| {
            let mut last = match events
                .raw()
                .last(txn.ro())
                .map_err(|e| StoreError::lmdb("reading", e))?
            {
                Some((k, _)) => Some(TimeKey::decode(k)?),
                None => None,
            };
            let lines: usize = batches.iter().map(EncodedLogs::len).sum();
            let mut keys = Vec::with_capacity(lines);
            let mut clamped = Vec::new();
            // One cursor for all puts: LMDB's `mdb_put` opens and positions a new one each
            // time. (Safety of the cursor puts: no value read from the database is held.)
            let mut cursor = events
                .raw()
                .iter_mut(&mut txn.txn)
                .map_err(|e| StoreError::lmdb("writing", e))?;
            let mut failed = None;
            'events: for batch in batches {
                for line in &batch.lines {
                    let key = match last {
                        Some(l) if line.received <= l.at => TimeKey {
                            at: l.at,
                            seq: l.seq.checked_add(1).ok_or_else(|| StoreError::Encode {
                                table: events.name(),
                                detail: "too many events in one millisecond".into(),
                            })?,
                        },
                        _ => TimeKey {
                            at: line.received,
                            seq: 0,
                        },
                    };
                    last = Some(key);
                    on_key(keys.len(), key);
                    let key_bytes = time_key_bytes(&key);
                    keys.push(key_bytes);
                    let mut value = batch.slice(line.value);
                    if key.at != line.received {
                        // The stored receive time is the key's: re-encode the leading field.
                        clamped.clear();
                        clamped.push(value[0]);
                        clamped.extend_from_slice(&varint(key.at.0));
                        clamped.extend_from_slice(skip_varint(&value[1..]));
                        value = &clamped;
                    }
                    // SAFETY: see above.
                    let put = unsafe {
                        cursor.put_current_with_options::<Bytes>(PutFlags::APPEND, &key_bytes, value)
                    };
                    if let Err(e) = put {
                        failed = Some(e);
                        break 'events;
                    }
                }
            }
            drop(cursor);
            if let Some(e) = failed {
                return Err(txn.note("writing", e));
            }
            // Grouped by term, each in line order (time order). Consecutive lines mostly share
            // terms (one sender, one hostname), so a term is first compared with the one at
            // the same place in the previous line, and hashed only when it differs.
            let mut groups: Vec<(&[u8], Vec<[u8; EVENT_KEY_LEN]>)> = Vec::new();
            let mut by_term: HashMap<&[u8], usize, RandomState> = HashMap::default();
            let mut previous: Vec<usize> = Vec::new();
            let mut line_no = 0;
            for batch in batches {
                for line in &batch.lines {
                    let terms = &batch.terms[line.terms.0 as usize..line.terms.1 as usize];
                    for (place, t) in terms.iter().enumerate() {
                        let term = batch.slice(*t);
                        let group = match previous.get(place) {
                            Some(&g) if groups[g].0 == term => g,
                            _ => *by_term.entry(term).or_insert_with(|| {
                                groups.push((term, Vec::new()));
                                groups.len() - 1
                            }),
                        };
                        match previous.get_mut(place) {
                            Some(p) => *p = group,
                            None => previous.push(group),
                        }
                        groups[group].1.push(keys[line_no]);
                    }
                    line_no += 1;
                }
            }
            put_postings(txn, index.raw(), groups)?;
            Ok(keys.len())
        })
    }

    /// Up to `limit` lines matching `q` received before `before` (if given), newest first,
    /// looking at no more than `max_scan` candidates.
    pub fn search_logs(
        &self,
        q: &LogQuery,
        before: Option<TimeKey>,
        limit: usize,
        max_scan: u64,
    ) -> Result<LogPage, StoreError> {
        let mut page = LogPage::default();
        let limit = limit.max(1);
        let mut last = None;
        let (scanned, limited) = self.scan_logs(q, before, max_scan, |key, log| {
            if page.entries.len() == limit {
                return false;
            }
            last = Some(*key);
            page.entries.push((*key, log));
            true
        })?;
        page.scanned = scanned;
        page.scan_limited = limited;
        if page.entries.len() == limit || limited {
            page.next = last;
        }
        Ok(page)
    }

    /// Calls `f` for every line matching `q` (before `before`), newest first, until `f`
    /// returns false or `max_scan` candidates were looked at. Returns (looked at, stopped at
    /// the limit).
    pub fn scan_logs(
        &self,
        q: &LogQuery,
        before: Option<TimeKey>,
        max_scan: u64,
        mut f: impl FnMut(&TimeKey, StoredLog) -> bool,
    ) -> Result<(u64, bool), StoreError> {
        let events = self.tables().log_events;
        let index = self.tables().log_index;
        let (lo, hi) = time_bounds(q, before);
        if hi.is_some_and(|h| h <= lo) {
            return Ok((0, false));
        }
        self.read(|txn| {
            let mut scanned = 0u64;
            let mut visit = |key: TimeKey, bytes: &[u8]| -> Result<Option<bool>, StoreError> {
                if scanned >= max_scan {
                    return Ok(None);
                }
                scanned += 1;
                let log: StoredLog = decode_value(events.name(), bytes)?;
                if q.matches(&log) {
                    return Ok(Some(f(&key, log)));
                }
                Ok(Some(true))
            };
            let read_err = |e| StoreError::lmdb("reading", e);
            match driver(q) {
                Driver::Time => {
                    let lo_b = lo.encode();
                    let hi_b = hi.map(|h| h.encode());
                    let range = (
                        Bound::Included(lo_b.as_slice()),
                        hi_b.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                    );
                    for item in events.raw().rev_range(txn.ro(), &range).map_err(read_err)? {
                        let (k, v) = item.map_err(read_err)?;
                        match visit(TimeKey::decode(k)?, v)? {
                            None => return Ok((scanned, true)),
                            Some(false) => break,
                            Some(true) => {}
                        }
                    }
                }
                Driver::Prefix(prefix) => {
                    // The term's lists that start before `hi`, newest first.
                    let hi_b = index_key(&prefix, &hi.unwrap_or(TimeKey::MAX));
                    let range = (
                        Bound::Included(prefix.as_slice()),
                        Bound::Excluded(hi_b.as_slice()),
                    );
                    'lists: for item in index.raw().rev_range(txn.ro(), &range).map_err(read_err)? {
                        let (_, list) = item.map_err(read_err)?;
                        for key in postings(list)?.rev() {
                            if hi.is_some_and(|h| key >= h) {
                                continue;
                            }
                            if key < lo {
                                break 'lists;
                            }
                            let Some(v) = events.raw().get(txn.ro(), &key.encode()).map_err(read_err)? else {
                                continue;
                            };
                            match visit(key, v)? {
                                None => return Ok((scanned, true)),
                                Some(false) => break 'lists,
                                Some(true) => {}
                            }
                        }
                    }
                }
                Driver::IpRange(net_lo, net_hi) => {
                    let mut start = vec![K_IP];
                    start.extend_from_slice(&net_lo);
                    let mut end = vec![K_IP];
                    end.extend_from_slice(&net_hi);
                    end.extend_from_slice(&[0xff; EVENT_KEY_LEN]);
                    let range = (Bound::Included(start.as_slice()), Bound::Included(end.as_slice()));
                    let mut keys = Vec::new();
                    for item in index.raw().range(txn.ro(), &range).map_err(read_err)? {
                        let (_, list) = item.map_err(read_err)?;
                        keys.extend(postings(list)?.filter(|k| *k >= lo && hi.is_none_or(|h| *k < h)));
                    }
                    keys.sort_unstable_by(|a, b| b.cmp(a));
                    keys.dedup();
                    for key in keys {
                        let Some(v) = events.raw().get(txn.ro(), &key.encode()).map_err(read_err)? else {
                            continue;
                        };
                        match visit(key, v)? {
                            None => return Ok((scanned, true)),
                            Some(false) => break,
                            Some(true) => {}
                        }
                    }
                }
            }
            Ok((scanned, false))
        })
    }

    /// Counts of index entries for one term per time bucket, from the index keys alone (no
    /// event is decoded): `buckets` counts starting at `from`, each `width` long.
    pub fn count_term_by_time(
        &self,
        term: &IndexTerm,
        from: Timestamp,
        width_ms: u64,
        buckets: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let index = self.tables().log_index;
        let prefix = term_prefix(term);
        let width_ms = width_ms.max(1);
        let end = Timestamp(from.0.saturating_add(width_ms.saturating_mul(buckets as u64)));
        let hi = index_key(&prefix, &TimeKey { at: end, seq: 0 });
        self.read(|txn| {
            let mut counts = vec![0u64; buckets];
            // The term's lists that start before `end`, newest first, down to `from`.
            let range = (Bound::Included(prefix.as_slice()), Bound::Excluded(hi.as_slice()));
            let iter = index.raw().rev_range(txn.ro(), &range);
            'lists: for item in iter.map_err(|e| StoreError::lmdb("reading", e))? {
                let (_, list) = item.map_err(|e| StoreError::lmdb("reading", e))?;
                for key in postings(list)?.rev() {
                    if key.at < from {
                        break 'lists;
                    }
                    let i = ((key.at.0 - from.0) / width_ms) as usize;
                    if let Some(c) = counts.get_mut(i) {
                        *c += 1;
                    }
                }
            }
            Ok(counts)
        })
    }

    /// Deletes lines received before `cutoff` with their index entries, at most `batch` per
    /// transaction; returns how many were removed.
    pub fn prune_logs_before(&self, cutoff: Timestamp, batch: usize) -> Result<u64, StoreError> {
        let end = TimeKey { at: cutoff, seq: 0 };
        let mut removed = 0u64;
        loop {
            let n = self.delete_oldest_logs(Some(end), batch.max(1))?;
            removed += n as u64;
            if n < batch.max(1) {
                return Ok(removed);
            }
        }
    }

    /// Deletes the oldest lines, `batch` per transaction, until the two log tables use at
    /// most `max_bytes`; returns how many were removed.
    pub fn prune_logs_to_size(&self, max_bytes: u64, batch: usize) -> Result<u64, StoreError> {
        let mut removed = 0u64;
        while self.logs_bytes()? > max_bytes {
            let n = self.delete_oldest_logs(None, batch.max(1))?;
            if n == 0 {
                break;
            }
            removed += n as u64;
        }
        Ok(removed)
    }

    /// Bytes of the pages the log tables use (events and index).
    pub fn logs_bytes(&self) -> Result<u64, StoreError> {
        let t = self.tables();
        self.read(|txn| {
            let mut total = 0u64;
            for db in [t.log_events.raw(), t.log_index.raw()] {
                let s = db
                    .stat(txn.ro())
                    .map_err(|e| StoreError::lmdb("reading stats", e))?;
                let pages = (s.leaf_pages + s.branch_pages + s.overflow_pages) as u64;
                total += pages * u64::from(s.page_size);
            }
            Ok(total)
        })
    }

    /// Event keys in the log index over all terms: each stored line once per index term it
    /// has (what pruning must keep exact).
    pub fn log_index_postings(&self) -> Result<u64, StoreError> {
        let index = self.tables().log_index;
        self.read(|txn| {
            let mut n = 0u64;
            for item in index
                .raw()
                .iter(txn.ro())
                .map_err(|e| StoreError::lmdb("reading", e))?
            {
                let (_, list) = item.map_err(|e| StoreError::lmdb("reading", e))?;
                n += postings(list)?.count() as u64;
            }
            Ok(n)
        })
    }

    /// Number of stored lines.
    pub fn logs_count(&self) -> Result<u64, StoreError> {
        let events = self.tables().log_events;
        self.read(|txn| events.len(txn))
    }

    fn delete_oldest_logs(&self, end: Option<TimeKey>, batch: usize) -> Result<usize, StoreError> {
        let events = self.tables().log_events;
        let index = self.tables().log_index;
        self.write(|txn| {
            let end_b = end.map(|e| e.encode());
            let range = (
                Bound::Unbounded,
                end_b.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            );
            // The oldest events and every index term they had.
            let (victims, terms) = {
                let iter = events
                    .raw()
                    .range(txn.ro(), &range)
                    .map_err(|e| StoreError::lmdb("reading", e))?;
                let mut victims = Vec::new();
                let mut terms = HashSet::new();
                for item in iter.take(batch) {
                    let (k, v) = item.map_err(|e| StoreError::lmdb("reading", e))?;
                    victims.push(TimeKey::decode(k)?);
                    // An undecodable event still goes; postings of it that stay in a list
                    // point nowhere, which search skips.
                    if let Ok(log) = decode_value::<StoredLog>(events.name(), v) {
                        terms.extend(log.index_terms().iter().map(term_prefix));
                    }
                }
                (victims, terms)
            };
            let Some(&newest) = victims.last() else {
                return Ok(0);
            };
            for k in &victims {
                let r = events.raw().delete(&mut txn.txn, &k.encode());
                r.map_err(|e| txn.note("deleting", e))?;
            }
            for prefix in &terms {
                drop_postings_through(txn, index.raw(), prefix, newest)?;
            }
            Ok(victims.len())
        })
    }

    /// The newest `limit` lines, newest first (the tail's first screen).
    pub fn latest_logs(&self, limit: usize) -> Result<Vec<(TimeKey, StoredLog)>, StoreError> {
        let events = self.tables().log_events;
        self.read(|txn| events.iter_rev_page(txn, None, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{parse_bytes, LineFormat, ParseContext};
    use crate::model::Transport;
    use crate::store::{StoreOptions, SCHEMA_VERSION_KEY};

    fn line(i: u64) -> StoredLog {
        let raw = format!(
            "<134>1 2026-11-23T10:00:00Z fw filterlog 1 - - 5,,,1000000103,igb0,match,block,in,4,0x0,,64,1,0,none,6,tcp,60,10.9.0.{},192.0.2.10,40000,{},0,S,1,,64240,,mss",
            i % 200,
            1000 + i % 7
        );
        StoredLog {
            received: Timestamp(1_800_000_000_000 + i * 10),
            sender: "192.0.2.1".parse().unwrap(),
            transport: Transport::Tcp,
            event: parse_bytes(raw.as_bytes(), &ParseContext::with_year(2026), LineFormat::Auto).unwrap(),
        }
    }

    fn ip_hits(store: &Store, ip: &str) -> Vec<TimeKey> {
        let raw = crate::model::RawLogQuery {
            ip: Some(ip.into()),
            ..Default::default()
        };
        let q = LogQuery::parse(&raw, Timestamp(1_900_000_000_000)).unwrap();
        let page = store.search_logs(&q, None, 10_000, u64::MAX).unwrap();
        page.entries.into_iter().map(|(k, _)| k).collect()
    }

    /// A schema-v2 store (one empty-valued `[term][event key]` entry per term and line) is
    /// migrated to posting lists at open, and searches find the same lines as before.
    #[test]
    fn a_v2_index_is_rebuilt_as_posting_lists_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let n = 1000u64;
        let mut logs: Vec<StoredLog> = (0..n).map(line).collect();
        let terms_per_line: u64 = logs.iter().map(|l| l.index_terms().len() as u64).sum();
        {
            let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
            store.append_logs(&mut logs).unwrap();
            // Turn it into what gatewatch with schema v2 wrote.
            let t = store.tables();
            store
                .write(|txn| {
                    t.log_index.raw().clear(&mut txn.txn).unwrap();
                    for (i, log) in logs.iter().enumerate() {
                        let key = TimeKey {
                            at: log.received,
                            seq: 0,
                        };
                        assert_eq!(i as u64, (key.at.0 - 1_800_000_000_000) / 10);
                        for term in log.index_terms() {
                            let k = index_key(&term_prefix(&term), &key);
                            t.log_index.raw().put(&mut txn.txn, &k, &[]).unwrap();
                        }
                    }
                    t.meta.put(
                        txn,
                        &SCHEMA_VERSION_KEY.to_string(),
                        &super::super::MetaValue::U64(2),
                    )
                })
                .unwrap();
        }
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.log_index_postings().unwrap(), terms_per_line);
        let entries = store.stats().entries;
        let lists = entries.iter().find(|(name, _)| *name == "log_index").unwrap().1;
        assert!(
            lists < n,
            "{lists} index entries for {n} lines: not posting lists"
        );
        // 10.9.0.7 is the source of lines 7, 207, 407, 607, 807.
        let want: Vec<u64> = (0..5)
            .rev()
            .map(|k| 1_800_000_000_000 + (7 + 200 * k) * 10)
            .collect();
        let got: Vec<u64> = ip_hits(&store, "10.9.0.7").iter().map(|k| k.at.0).collect();
        assert_eq!(got, want);
    }

    /// Pruning in batches that end inside a posting list trims that list, so every key left
    /// in the index points at a stored line and the count stays exact.
    #[test]
    fn pruning_trims_the_list_it_ends_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut logs: Vec<StoredLog> = (0..600).map(line).collect();
        store.append_logs(&mut logs).unwrap();
        let per_line = logs[0].index_terms().len() as u64;
        for (cut, batch) in [(1u64, 1usize), (130, 50), (301, 301), (599, 7)] {
            let cutoff = Timestamp(1_800_000_000_000 + cut * 10);
            store.prune_logs_before(cutoff, batch).unwrap();
            let left = 600 - cut;
            assert_eq!(store.logs_count().unwrap(), left);
            assert_eq!(
                store.log_index_postings().unwrap(),
                left * per_line,
                "after cut {cut}"
            );
        }
        assert_eq!(ip_hits(&store, "10.9.0.199").len(), 1, "line 599 is still found");
        assert!(ip_hits(&store, "10.9.0.198").is_empty());
    }
}
