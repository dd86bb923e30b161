//! Runs live captures: one OS thread per interface reads its [`LiveSource`] and copies
//! packets into batches; the calling thread feeds the batches to one traffic [`Engine`],
//! so several interfaces make one summary and reading overlaps analysis on two cores.
//! Stops within one poll interval of being asked, with or without traffic.
//!
//! Owns the threads, the batch hand-over (a bounded channel: when analysis falls behind,
//! the kernel ring fills and its drops are counted, memory does not grow) and the capture
//! statistics. Must not print or decide policy: events go to a callback.

use super::LiveSource;
use crate::capture::{CaptureError, CaptureSource, LinkType, PacketTime, RawPacket, SourceStats};
use crate::traffic::{Engine, Window};
use portable_atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

const BATCH_PACKETS: usize = 256;
const BATCH_BYTES: usize = 128 << 10;
/// Batches in flight per session (with the sizes above, at most a few MiB).
const CHANNEL_BATCHES: usize = 16;
const STATS_EVERY: Duration = Duration::from_secs(1);

struct Record {
    ts: PacketTime,
    wire_len: u32,
    start: u32,
    len: u32,
}

/// Packets of one interface, copied out of the capture ring.
pub struct Batch {
    interface: usize,
    link_type: LinkType,
    data: Vec<u8>,
    records: Vec<Record>,
}

impl Batch {
    fn new(interface: usize, link_type: LinkType) -> Self {
        Batch {
            interface,
            link_type,
            data: Vec::with_capacity(BATCH_BYTES),
            records: Vec::with_capacity(BATCH_PACKETS),
        }
    }

    fn push(&mut self, p: &RawPacket<'_>) {
        self.records.push(Record {
            ts: p.ts,
            wire_len: p.wire_len,
            start: self.data.len() as u32,
            len: p.data.len() as u32,
        });
        self.data.extend_from_slice(p.data);
    }

    fn is_full(&self) -> bool {
        self.records.len() >= BATCH_PACKETS || self.data.len() >= BATCH_BYTES
    }

    fn clear(&mut self) {
        self.data.clear();
        self.records.clear();
    }

    pub fn packets(&self) -> impl Iterator<Item = RawPacket<'_>> {
        self.records.iter().map(|r| RawPacket {
            ts: r.ts,
            wire_len: r.wire_len,
            data: &self.data[r.start as usize..(r.start + r.len) as usize],
            link_type: self.link_type,
        })
    }
}

/// Counters a capture thread publishes about once a second (and at its end).
#[derive(Default)]
struct Shared {
    packets: AtomicU64,
    received: AtomicU64,
    dropped_kernel: AtomicU64,
    dropped_interface: AtomicU64,
}

impl Shared {
    fn publish(&self, packets: u64, s: SourceStats) {
        self.packets.store(packets, Ordering::Relaxed);
        self.received.store(s.received, Ordering::Relaxed);
        self.dropped_kernel.store(s.dropped_kernel, Ordering::Relaxed);
        self.dropped_interface
            .store(s.dropped_interface, Ordering::Relaxed);
    }

    fn read(&self, interface: &str) -> InterfaceStatus {
        InterfaceStatus {
            interface: interface.to_string(),
            packets: self.packets.load(Ordering::Relaxed),
            stats: SourceStats {
                received: self.received.load(Ordering::Relaxed),
                dropped_kernel: self.dropped_kernel.load(Ordering::Relaxed),
                dropped_interface: self.dropped_interface.load(Ordering::Relaxed),
            },
        }
    }
}

/// Where one interface stands: packets read by gatewatch and libpcap's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceStatus {
    pub interface: String,
    pub packets: u64,
    pub stats: SourceStats,
}

/// How an interface's capture ended.
#[derive(Debug)]
pub struct InterfaceReport {
    pub status: InterfaceStatus,
    /// The read error that ended it early (e.g. the interface went away).
    pub error: Option<CaptureError>,
}

/// A capture thread for one source; it runs until `stop` is set or its source fails.
pub struct CaptureThread {
    interface: String,
    shared: Arc<Shared>,
    handle: JoinHandle<Option<CaptureError>>,
}

impl CaptureThread {
    /// Starts reading `source` on a new thread named after the interface. Full batches go
    /// to `tx` (tagged with `index`); used ones come back through `recycle`.
    pub fn spawn(
        index: usize,
        mut source: LiveSource,
        stop: Arc<AtomicBool>,
        tx: SyncSender<Batch>,
        recycle: Receiver<Batch>,
    ) -> std::io::Result<CaptureThread> {
        let interface = source.interface().to_string();
        let shared = Arc::new(Shared::default());
        let published = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name(format!("capture-{interface}"))
            .spawn(move || {
                let link = source.link_type();
                let fresh = |recycle: &Receiver<Batch>| {
                    recycle.try_recv().unwrap_or_else(|_| Batch::new(index, link))
                };
                let mut batch = Batch::new(index, link);
                let mut packets: u64 = 0;
                let mut next_stats = Instant::now() + STATS_EVERY;
                let mut error = None;
                while !stop.load(Ordering::Relaxed) {
                    let idle = match source.next_packet() {
                        Ok(Some(p)) => {
                            batch.push(&p);
                            packets += 1;
                            false
                        }
                        Ok(None) => true,
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    };
                    if batch.is_full() || (idle && !batch.records.is_empty()) {
                        let next = fresh(&recycle);
                        if tx.send(std::mem::replace(&mut batch, next)).is_err() {
                            break;
                        }
                    }
                    if (idle || packets % 4096 == 0) && Instant::now() >= next_stats {
                        published.publish(packets, source.stats());
                        next_stats = Instant::now() + STATS_EVERY;
                    }
                }
                if !batch.records.is_empty() {
                    let _ = tx.send(batch);
                }
                published.publish(packets, source.stats());
                error
            })?;
        Ok(CaptureThread {
            interface,
            shared,
            handle,
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn status(&self) -> InterfaceStatus {
        self.shared.read(&self.interface)
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the thread (set the stop flag first) and returns how it ended.
    pub fn join(self) -> InterfaceReport {
        let error = match self.handle.join() {
            Ok(e) => e,
            Err(_) => Some(CaptureError::Live {
                iface: self.interface.clone(),
                detail: "the capture thread panicked".into(),
            }),
        };
        InterfaceReport {
            status: self.shared.read(&self.interface),
            error,
        }
    }
}

/// What a session tells its caller while it runs.
pub enum SessionEvent<'a> {
    /// A window closed (only with a period): it is the engine's newest closed window.
    WindowClosed(&'a Window),
    /// About once a second.
    Progress(&'a [InterfaceStatus]),
}

/// Mirrors the engine's window boundaries so that a close is noticed right after the
/// packet (or clock tick) that caused it.
struct WindowClock {
    period_ns: u64,
    start: Option<u64>,
}

impl WindowClock {
    fn passes(&mut self, now: PacketTime) -> bool {
        let floor = now.0 - now.0 % self.period_ns;
        let start = *self.start.get_or_insert(floor);
        if now.0 >= start.saturating_add(self.period_ns) {
            self.start = Some(floor);
            return true;
        }
        false
    }
}

fn wall_clock() -> PacketTime {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    PacketTime(d.as_nanos() as u64)
}

/// Captures on every source until `should_stop()` says so (asked about ten times a second)
/// or every source has failed, feeding `engine`. With a `period` (the engine's), windows
/// also close by the wall clock while no packet comes. Returns one report per source, in
/// order.
pub fn run_session(
    sources: Vec<LiveSource>,
    engine: &mut Engine,
    period: Option<Duration>,
    should_stop: &mut dyn FnMut() -> bool,
    on_event: &mut dyn FnMut(SessionEvent<'_>),
) -> std::io::Result<Vec<InterfaceReport>> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel::<Batch>(CHANNEL_BATCHES);
    let mut threads = Vec::new();
    let mut recyclers: Vec<Sender<Batch>> = Vec::new();
    for (i, source) in sources.into_iter().enumerate() {
        let (back_tx, back_rx) = mpsc::channel();
        match CaptureThread::spawn(i, source, Arc::clone(&stop), tx.clone(), back_rx) {
            Ok(t) => threads.push(t),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                drop(tx);
                for t in threads {
                    t.join();
                }
                return Err(e);
            }
        }
        recyclers.push(back_tx);
    }
    drop(tx);
    let mut clock = period.map(|p| WindowClock {
        period_ns: (p.as_nanos() as u64).max(1),
        start: None,
    });
    let mut next_progress = Instant::now() + STATS_EVERY;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(batch) => {
                for p in batch.packets() {
                    engine.ingest(&p);
                    if let Some(c) = clock.as_mut() {
                        if c.passes(p.ts) {
                            if let Some(w) = engine.closed().last() {
                                on_event(SessionEvent::WindowClosed(w));
                            }
                        }
                    }
                }
                let mut batch = batch;
                batch.clear();
                if let Some(back) = recyclers.get(batch.interface) {
                    let _ = back.send(batch);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some(c) = clock.as_mut() {
                    let now = wall_clock();
                    engine.advance(now);
                    if c.passes(now) {
                        if let Some(w) = engine.closed().last() {
                            on_event(SessionEvent::WindowClosed(w));
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if !stop.load(Ordering::Relaxed) && should_stop() {
            stop.store(true, Ordering::Relaxed);
        }
        if Instant::now() >= next_progress {
            let statuses: Vec<InterfaceStatus> = threads.iter().map(CaptureThread::status).collect();
            on_event(SessionEvent::Progress(&statuses));
            next_progress = Instant::now() + STATS_EVERY;
        }
    }
    Ok(threads.into_iter().map(CaptureThread::join).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_clock_matches_period_boundaries() {
        let s = PacketTime::NANOS_PER_SEC;
        let mut c = WindowClock {
            period_ns: 10 * s,
            start: None,
        };
        assert!(!c.passes(PacketTime(13 * s)));
        assert!(!c.passes(PacketTime(19 * s)));
        assert!(c.passes(PacketTime(20 * s)));
        assert!(!c.passes(PacketTime(15 * s)), "time going back closes nothing");
        assert!(c.passes(PacketTime(55 * s)), "a gap closes one window");
        assert!(!c.passes(PacketTime(59 * s)));
    }

    #[test]
    fn batches_give_back_what_was_pushed() {
        let mut b = Batch::new(0, LinkType::RAW);
        let a = [1u8, 2, 3];
        let c = [4u8; 5];
        for (i, d) in [&a[..], &c[..]].iter().enumerate() {
            b.push(&RawPacket {
                ts: PacketTime(i as u64),
                wire_len: 100 + i as u32,
                data: d,
                link_type: LinkType::RAW,
            });
        }
        let got: Vec<(u64, u32, Vec<u8>)> = b
            .packets()
            .map(|p| (p.ts.0, p.wire_len, p.data.to_vec()))
            .collect();
        assert_eq!(got, vec![(0, 100, a.to_vec()), (1, 101, c.to_vec())]);
        b.clear();
        assert_eq!(b.packets().count(), 0);
    }
}
