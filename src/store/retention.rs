//! Time-based pruning of time-keyed tables, in bounded batches so a large prune never
//! holds the single LMDB writer for long.
//!
//! Must not: decide what is old — callers compute the cutoff from their `now` and the
//! configured retention.

use super::{Record, Store, StoreError, Table, TimeKey};
use crate::model::Timestamp;

impl Store {
    /// Deletes entries of `table` whose key time is before `cutoff`, at most `batch` (at
    /// least 1) per write transaction, until none are left; returns how many were removed.
    pub fn prune_before<V: Record>(
        &self,
        table: &Table<TimeKey, V>,
        cutoff: Timestamp,
        batch: usize,
    ) -> Result<u64, StoreError> {
        let batch = batch.max(1);
        let end = TimeKey { at: cutoff, seq: 0 };
        let mut removed = 0u64;
        loop {
            let n = self.write(|txn| table.delete_before(txn, &end, batch))?;
            removed += n as u64;
            if n < batch {
                return Ok(removed);
            }
        }
    }
}
