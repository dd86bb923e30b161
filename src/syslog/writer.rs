//! The one writer of log lines: collects queued batches into a transaction at least once
//! every [`FLUSH_INTERVAL`] (sooner when [`MAX_BATCH`] lines are waiting), commits, counts
//! the lines as flushed, hands the batch to live tails, and prunes by age and size.
//!
//! Runs on its own OS thread: LMDB commits block (fsync) and must not stall the runtime.
//! Must not: parse, or read sockets.

use super::{LogBatch, LogsHub};
use crate::store::Store;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Lines are committed no later than this after they were queued.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// A batch this big is committed at once.
pub const MAX_BATCH: usize = 65_536;
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
    pub clock: super::Clock,
}

/// Starts the writer thread; it returns after the queue closed and the last batch was
/// committed.
pub fn spawn(deps: WriterDeps, rx: mpsc::Receiver<LogBatch>) -> std::thread::JoinHandle<()> {
    let handle = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("syslog-writer".into())
        .spawn(move || write_loop(deps, rx, handle))
        .unwrap_or_else(|e| panic!("cannot start the syslog writer thread: {e}"))
}

fn write_loop(deps: WriterDeps, mut rx: mpsc::Receiver<LogBatch>, rt: tokio::runtime::Handle) {
    let mut pending = Pending::default();
    let mut first_at: Option<Instant> = None;
    let mut next_retention = Instant::now();
    let mut open = true;
    while open || pending.lines > 0 {
        if open {
            let wait = match first_at {
                Some(t) => FLUSH_INTERVAL.saturating_sub(t.elapsed()),
                None => FLUSH_INTERVAL,
            };
            match rt.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                Ok(Some(batch)) => {
                    first_at.get_or_insert_with(Instant::now);
                    pending.add(batch);
                    // Take what else is already waiting without sleeping.
                    while pending.lines < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(more) => pending.add(more),
                            Err(_) => break,
                        }
                    }
                }
                Ok(None) => open = false,
                Err(_) => {}
            }
        }
        let due = first_at.is_some_and(|t| t.elapsed() >= FLUSH_INTERVAL);
        if pending.lines > 0 && (due || pending.lines >= MAX_BATCH || !open) {
            flush(&deps, &mut pending);
            first_at = None;
        }
        if Instant::now() >= next_retention {
            prune(&deps);
            next_retention = Instant::now() + RETENTION_PERIOD;
        }
    }
}

/// Batches waiting for the next commit.
#[derive(Default)]
struct Pending {
    batches: Vec<crate::store::EncodedLogs>,
    tail: Vec<crate::model::StoredLog>,
    lines: usize,
}

impl Pending {
    fn add(&mut self, b: LogBatch) {
        self.lines += b.len();
        self.batches.push(b.encoded);
        let mut tail = b.tail;
        self.tail.append(&mut tail);
    }
}

fn flush(deps: &WriterDeps, pending: &mut Pending) {
    let c = &deps.hub.counters;
    let n = pending.lines as u64;
    // (A tail line keeps its receive time even where the store clamped a stepped-back clock.)
    match deps.store.append_encoded(&pending.batches, |_, _| {}) {
        Ok(_) => {
            c.flushed.fetch_add(n, Relaxed);
            if deps.hub.tail.receiver_count() > 0 && !pending.tail.is_empty() {
                let _ = deps.hub.tail.send(Arc::new(std::mem::take(&mut pending.tail)));
            }
        }
        Err(e) => {
            c.store_failures.fetch_add(n, Relaxed);
            tracing::warn!(error = %e, lines = n, "cannot store received log lines; they are lost");
        }
    }
    deps.hub.give_back(pending.batches.drain(..));
    pending.tail.clear();
    pending.lines = 0;
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
