//! Typed tables over LMDB byte databases: key encoding ([`Key`], big-endian, time first),
//! value framing (`[Record::VERSION] ++ postcard(value)`, see [`Record`]) and the
//! transaction wrappers the rest of the crate uses instead of heed's types.
//!
//! Must not: open, resize or copy the environment (that is [`super::Store`]), or know the
//! schema version of the whole store (that is `migrate`).

use std::marker::PhantomData;
use std::ops::Bound;

use heed::types::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{is_map_full, StoreError};
use crate::model::Timestamp;
use sealed::Sealed as _;

pub(crate) type RawDb = heed::Database<Bytes, Bytes>;

/// LMDB's compile-time key size limit (MDB_MAXKEYSIZE).
const MAX_KEY_BYTES: usize = 511;

pub(crate) mod sealed {
    /// Gives the store module the heed transaction behind a [`super::Txn`].
    pub trait Sealed {
        fn ro(&self) -> &heed::RoTxn<'_>;
    }
}

/// Anything tables can read through: a [`ReadTxn`] or a [`WriteTxn`] (which sees its own
/// uncommitted writes).
pub trait Txn: sealed::Sealed {}

/// A read-only snapshot, alive for the duration of [`super::Store::read`].
pub struct ReadTxn<'a> {
    pub(crate) txn: heed::RoTxn<'a, heed::WithoutTls>,
}

/// A write transaction, alive for the duration of [`super::Store::write`].
pub struct WriteTxn<'a> {
    pub(crate) txn: heed::RwTxn<'a>,
    /// Set when LMDB ran out of map space; `Store::write` then aborts, grows and retries
    /// even if the closure swallowed the error.
    pub(crate) map_full: bool,
}

impl sealed::Sealed for ReadTxn<'_> {
    fn ro(&self) -> &heed::RoTxn<'_> {
        &self.txn
    }
}
impl Txn for ReadTxn<'_> {}

impl sealed::Sealed for WriteTxn<'_> {
    fn ro(&self) -> &heed::RoTxn<'_> {
        &self.txn
    }
}
impl Txn for WriteTxn<'_> {}

impl WriteTxn<'_> {
    pub(crate) fn note(&mut self, op: &'static str, e: heed::Error) -> StoreError {
        if is_map_full(&e) {
            self.map_full = true;
        }
        StoreError::lmdb(op, e)
    }
}

/// A table key. Encodings must sort (bytewise) in the key's natural order.
pub trait Key: Sized {
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Result<Self, StoreError>;
}

impl Key for String {
    fn encode(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::bad_key("key is not UTF-8".to_string()))
    }
}

impl Key for u64 {
    fn encode(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let b: [u8; 8] = bytes.try_into().map_err(|_| wrong_len(8, bytes))?;
        Ok(u64::from_be_bytes(b))
    }
}

impl Key for Vec<u8> {
    fn encode(&self) -> Vec<u8> {
        self.clone()
    }
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        Ok(bytes.to_vec())
    }
}

impl Key for [u8; 32] {
    fn encode(&self) -> Vec<u8> {
        self.to_vec()
    }
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        bytes.try_into().map_err(|_| wrong_len(32, bytes))
    }
}

/// Time-ordered key: millis then a sequence number, both big-endian, so entries sort by
/// time and equal timestamps do not collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeKey {
    pub at: Timestamp,
    pub seq: u32,
}

impl TimeKey {
    /// The last possible key.
    pub const MAX: TimeKey = TimeKey {
        at: Timestamp(u64::MAX),
        seq: u32::MAX,
    };
}

impl Key for TimeKey {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12);
        out.extend_from_slice(&self.at.as_millis().to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out
    }
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let b: [u8; 12] = bytes.try_into().map_err(|_| wrong_len(12, bytes))?;
        let (at, seq) = b.split_at(8);
        Ok(TimeKey {
            at: Timestamp(u64::from_be_bytes(at.try_into().unwrap_or_default())),
            seq: u32::from_be_bytes(seq.try_into().unwrap_or_default()),
        })
    }
}

fn wrong_len(want: usize, bytes: &[u8]) -> StoreError {
    StoreError::bad_key(format!("key is {} bytes, expected {want}", bytes.len()))
}

/// A value type stored in a table. `VERSION` is written as the first byte of every value;
/// bump it when the serialized shape changes and add a migration step.
pub trait Record: Serialize + DeserializeOwned {
    const VERSION: u8;
}

pub(crate) fn encode_value<V: Record>(table: &'static str, value: &V) -> Result<Vec<u8>, StoreError> {
    encode_into(table, value, Vec::new())
}

/// Appends the encoded value (version byte, then postcard) to `out`.
pub(crate) fn encode_into<V: Record>(
    table: &'static str,
    value: &V,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    out.push(V::VERSION);
    postcard::to_extend(value, out).map_err(|e| StoreError::Encode {
        table,
        detail: e.to_string(),
    })
}

pub(crate) fn decode_value<V: Record>(table: &'static str, bytes: &[u8]) -> Result<V, StoreError> {
    let (&version, body) = bytes.split_first().ok_or_else(|| StoreError::Corrupt {
        table,
        detail: "empty value".to_string(),
    })?;
    if version != V::VERSION {
        return Err(StoreError::VersionMismatch {
            table,
            found: version,
            expected: V::VERSION,
        });
    }
    match postcard::take_from_bytes::<V>(body) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(StoreError::Corrupt {
            table,
            detail: format!("{} trailing bytes after the value", rest.len()),
        }),
        Err(e) => Err(StoreError::Corrupt {
            table,
            detail: e.to_string(),
        }),
    }
}

/// A typed table: `K` encoded by [`Key`], `V` framed by [`Record`].
pub struct Table<K: Key, V: Record> {
    db: RawDb,
    name: &'static str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Key, V: Record> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: Key, V: Record> Copy for Table<K, V> {}

impl<K: Key, V: Record> std::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("name", &self.name).finish()
    }
}

impl<K: Key, V: Record> Table<K, V> {
    pub(crate) fn new(db: RawDb, name: &'static str) -> Self {
        Table {
            db,
            name,
            _types: PhantomData,
        }
    }

    pub(crate) fn raw(&self) -> RawDb {
        self.db
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn get(&self, txn: &impl Txn, key: &K) -> Result<Option<V>, StoreError> {
        let found = self
            .db
            .get(txn.ro(), &key.encode())
            .map_err(|e| StoreError::lmdb("reading", e))?;
        found.map(|bytes| decode_value(self.name, bytes)).transpose()
    }

    pub fn put(&self, txn: &mut WriteTxn, key: &K, value: &V) -> Result<(), StoreError> {
        let key = key.encode();
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(StoreError::Encode {
                table: self.name,
                detail: format!("key is {} bytes, must be 1 to {MAX_KEY_BYTES}", key.len()),
            });
        }
        let value = encode_value(self.name, value)?;
        let result = self.db.put(&mut txn.txn, &key, &value);
        result.map_err(|e| txn.note("writing", e))
    }

    /// Removes `key`; returns whether it was present.
    pub fn delete(&self, txn: &mut WriteTxn, key: &K) -> Result<bool, StoreError> {
        let result = self.db.delete(&mut txn.txn, &key.encode());
        result.map_err(|e| txn.note("deleting", e))
    }

    /// Every entry, ascending by key.
    pub fn iter(&self, txn: &impl Txn) -> Result<Vec<(K, V)>, StoreError> {
        let iter = self
            .db
            .iter(txn.ro())
            .map_err(|e| StoreError::lmdb("reading", e))?;
        iter.map(|item| self.decode_entry(item)).collect()
    }

    /// Entries with `from <= key < to`, ascending, at most `limit`.
    pub fn range(&self, txn: &impl Txn, from: &K, to: &K, limit: usize) -> Result<Vec<(K, V)>, StoreError> {
        let (lo, hi) = (from.encode(), to.encode());
        let range = (Bound::Included(lo.as_slice()), Bound::Excluded(hi.as_slice()));
        let iter = self
            .db
            .range(txn.ro(), &range)
            .map_err(|e| StoreError::lmdb("reading", e))?;
        iter.take(limit).map(|item| self.decode_entry(item)).collect()
    }

    /// Up to `limit` entries with keys below `before` (all, if `None`), newest first: page
    /// on by passing the last key of the previous page.
    pub fn iter_rev_page(
        &self,
        txn: &impl Txn,
        before: Option<&K>,
        limit: usize,
    ) -> Result<Vec<(K, V)>, StoreError> {
        let end = before.map(Key::encode);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let range = (Bound::Unbounded, upper);
        let iter = self
            .db
            .rev_range(txn.ro(), &range)
            .map_err(|e| StoreError::lmdb("reading", e))?;
        iter.take(limit).map(|item| self.decode_entry(item)).collect()
    }

    pub fn len(&self, txn: &impl Txn) -> Result<u64, StoreError> {
        self.db.len(txn.ro()).map_err(|e| StoreError::lmdb("counting", e))
    }

    pub fn is_empty(&self, txn: &impl Txn) -> Result<bool, StoreError> {
        let first = self
            .db
            .first(txn.ro())
            .map_err(|e| StoreError::lmdb("reading", e))?;
        Ok(first.is_none())
    }

    /// Deletes up to `limit` entries with keys below `end`, oldest first; returns how many.
    pub(crate) fn delete_before(
        &self,
        txn: &mut WriteTxn,
        end: &K,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let end = end.encode();
        let range = (Bound::Unbounded, Bound::Excluded(end.as_slice()));
        let keys = {
            let iter = self
                .db
                .range(txn.ro(), &range)
                .map_err(|e| StoreError::lmdb("reading", e))?;
            iter.take(limit)
                .map(|item| item.map(|(k, _)| k.to_vec()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::lmdb("reading", e))?
        };
        for key in &keys {
            let result = self.db.delete(&mut txn.txn, key);
            result.map_err(|e| txn.note("deleting", e))?;
        }
        Ok(keys.len())
    }

    fn decode_entry(&self, item: heed::Result<(&[u8], &[u8])>) -> Result<(K, V), StoreError> {
        let (k, v) = item.map_err(|e| StoreError::lmdb("reading", e))?;
        let key = K::decode(k).map_err(|e| e.in_table(self.name))?;
        Ok((key, decode_value(self.name, v)?))
    }
}

impl<V: Record> Table<TimeKey, V> {
    /// Stores `value` under the first free sequence number at millisecond `at`.
    pub fn append(&self, txn: &mut WriteTxn, at: Timestamp, value: &V) -> Result<TimeKey, StoreError> {
        let lo = TimeKey { at, seq: 0 }.encode();
        let hi = TimeKey { at, seq: u32::MAX }.encode();
        let range = (Bound::Included(lo.as_slice()), Bound::Included(hi.as_slice()));
        let last = {
            let mut iter = self
                .db
                .rev_range(txn.ro(), &range)
                .map_err(|e| StoreError::lmdb("reading", e))?;
            match iter.next() {
                Some(item) => Some(self.decode_entry(item)?.0),
                None => None,
            }
        };
        let seq = match last {
            None => 0,
            Some(k) => k.seq.checked_add(1).ok_or_else(|| StoreError::Encode {
                table: self.name,
                detail: format!("more than {} entries in millisecond {}", u32::MAX, at.as_millis()),
            })?,
        };
        let key = TimeKey { at, seq };
        self.put(txn, &key, value)?;
        Ok(key)
    }
}
