//! The one writer of log lines: collects queued batches into a transaction at least once
//! every [`FLUSH_INTERVAL`] (sooner when [`MAX_BATCH`] lines are waiting), commits, counts
//! the lines as flushed, hands the batch to live tails, and prunes by age and size.
//!
//! Runs on its own OS thread: LMDB commits block (fsync) and must not stall the runtime.
//! Must not: parse, or read sockets.

use super::LogsHub;
use crate::model::{StoredLog, Timestamp};
use crate::store::Store;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Lines are committed no later than this after they were queued.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// A batch this big is committed at once.
pub const MAX_BATCH: usize = 32_768;
/// Batches (each from one read or wake-up) the queue holds before receivers wait.
pub const QUEUE_BATCHES: usize = 1024;
/// How often retention runs.
pub const RETENTION_PERIOD: Duration = Duration::from_secs(60);
/// Lines deleted per retention transaction.
pub const PRUNE_BATCH: usize = 5_000;

pub struct WriterDeps {
    pub store: Arc<Store>,
    pub hub: Arc<LogsHub>,
    pub retention: Duration,
    pub max_store_bytes: u64,
    pub clock: fn() -> Timestamp,
}

/// Starts the writer thread; it returns after the queue closed and the last batch was
/// committed.
pub fn spawn(deps: WriterDeps, rx: mpsc::Receiver<Vec<StoredLog>>) -> std::thread::JoinHandle<()> {
    let handle = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("syslog-writer".into())
        .spawn(move || write_loop(deps, rx, handle))
        .unwrap_or_else(|e| panic!("cannot start the syslog writer thread: {e}"))
}

fn write_loop(deps: WriterDeps, mut rx: mpsc::Receiver<Vec<StoredLog>>, rt: tokio::runtime::Handle) {
    let mut pending: Vec<StoredLog> = Vec::new();
    let mut first_at: Option<Instant> = None;
    let mut next_retention = Instant::now();
    let mut open = true;
    while open || !pending.is_empty() {
        if open {
            let wait = match first_at {
                Some(t) => FLUSH_INTERVAL.saturating_sub(t.elapsed()),
                None => FLUSH_INTERVAL,
            };
            match rt.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                Ok(Some(mut batch)) => {
                    first_at.get_or_insert_with(Instant::now);
                    pending.append(&mut batch);
                    // Take what else is already waiting without sleeping.
                    while pending.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(mut more) => pending.append(&mut more),
                            Err(_) => break,
                        }
                    }
                }
                Ok(None) => open = false,
                Err(_) => {}
            }
        }
        let due = first_at.is_some_and(|t| t.elapsed() >= FLUSH_INTERVAL);
        if !pending.is_empty() && (due || pending.len() >= MAX_BATCH || !open) {
            flush(&deps, &mut pending);
            first_at = None;
        }
        if Instant::now() >= next_retention {
            prune(&deps);
            next_retention = Instant::now() + RETENTION_PERIOD;
        }
    }
}

fn flush(deps: &WriterDeps, pending: &mut Vec<StoredLog>) {
    let c = &deps.hub.counters;
    let n = pending.len() as u64;
    match deps.store.append_logs(pending) {
        Ok(_) => {
            c.flushed.fetch_add(n, Relaxed);
            if deps.hub.tail.receiver_count() > 0 {
                let _ = deps.hub.tail.send(Arc::new(std::mem::take(pending)));
            }
        }
        Err(e) => {
            c.store_failures.fetch_add(n, Relaxed);
            tracing::warn!(error = %e, lines = n, "cannot store received log lines; they are lost");
        }
    }
    pending.clear();
}

/// Deletes lines past the retention age, then the oldest ones while over the size cap.
pub fn prune(deps: &WriterDeps) {
    let now = (deps.clock)();
    let cutoff = now.saturating_sub(deps.retention);
    let by_age = deps.store.prune_logs_before(cutoff, PRUNE_BATCH);
    let by_size = deps.store.prune_logs_to_size(deps.max_store_bytes, PRUNE_BATCH);
    for r in [by_age, by_size] {
        match r {
            Ok(n) => {
                deps.hub.counters.pruned.fetch_add(n, Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "log retention failed"),
        }
    }
}
