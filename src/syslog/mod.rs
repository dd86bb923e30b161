//! The syslog receivers: UDP (RFC 5426), TCP (RFC 6587, octet counting and LF framing on one
//! port) and TLS (RFC 5425), feeding one batch writer that stores the lines in LMDB.
//!
//! ```text
//! udp ─┐  admit (allowlist, rate)   parse (logs::parse_bytes)
//! tcp ─┼─► frame (logs::Framer) ──────────────► encode (store::EncodedLogs) ─► writer thread
//! tls ─┘                                     bounded channel: backpressure ─┘  (batch txn, ≤ 1 s,
//!                                                                               retention, tail)
//! ```
//!
//! Modules: [`admission`] (allowlist, token buckets; sans-IO), [`udp`], [`stream`] (TCP and
//! TLS connections), [`writer`] (batches, flush counter, retention, live tail). The caller
//! binds the sockets ([`bind`]) and passes them to [`run`], so tests use port 0.
//!
//! Must not: parse (that is [`crate::logs`]) or encode store keys (that is [`crate::store`]).

pub mod admission;
pub mod stream;
pub mod udp;
pub mod writer;

use crate::config::SyslogConfig;
use crate::logs::{self, LineFormat, ParseContext};
use crate::model::{LogEvent, StoredLog, Timestamp, Transport};
use crate::store::{EncodedLogs, Store};
use portable_atomic::AtomicU64;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Where receive times and retention's `now` come from: the wall clock in `serve`, an
/// injected one in tests (the same type as the web layer's clock).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Counters shown in `/metrics` and on the Logs page. Atomics: counting costs no lock.
#[derive(Debug, Default)]
pub struct SyslogCounters {
    /// Messages (datagrams or frames) that arrived, admitted or not.
    pub received: AtomicU64,
    /// Messages parsed into events and queued for the store.
    pub parsed: AtomicU64,
    /// Messages the parser rejected (no event).
    pub rejected: AtomicU64,
    /// Messages (or TCP/TLS connections) from senders outside the allowlist.
    pub not_allowed: AtomicU64,
    /// Messages over the per-sender rate limit.
    pub rate_limited: AtomicU64,
    /// Messages cut to the maximum size.
    pub truncated: AtomicU64,
    /// Datagrams the kernel dropped because the socket's receive queue was full.
    pub udp_overflows: AtomicU64,
    /// Stream framing errors (bad octet counts, streams ending inside a frame).
    pub framing_errors: AtomicU64,
    /// Events whose batch's transaction committed.
    pub flushed: AtomicU64,
    /// Events lost because the store refused a batch (disk full, map at its maximum).
    pub store_failures: AtomicU64,
    /// Events deleted by retention (age or size).
    pub pruned: AtomicU64,
    /// Open TCP/TLS connections.
    pub connections: AtomicU64,
    /// TLS handshakes that failed.
    pub tls_failures: AtomicU64,
}

impl SyslogCounters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
}

/// One receiver's state for the Logs page: where it listens, or why it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStatus {
    pub transport: Transport,
    pub result: Result<SocketAddr, String>,
}

/// What the web layer shares with the receivers: counters, the live tail and the listeners'
/// status. Exists (empty) when syslog is off, so pages always have something to show.
#[derive(Debug)]
pub struct LogsHub {
    pub counters: SyslogCounters,
    /// Every committed batch, for live tails. Lagging subscribers skip ahead.
    pub tail: broadcast::Sender<Arc<Vec<StoredLog>>>,
    pub listeners: Mutex<Vec<ListenerStatus>>,
    /// Encode buffers the writer handed back after a commit, reused by the receivers:
    /// a fresh 400 KiB buffer per read cost page faults and zeroing on every read.
    spare: Mutex<Vec<EncodedLogs>>,
}

impl Default for LogsHub {
    fn default() -> Self {
        LogsHub {
            counters: SyslogCounters::default(),
            tail: broadcast::channel(256).0,
            listeners: Mutex::new(Vec::new()),
            spare: Mutex::new(Vec::new()),
        }
    }
}

/// Spare encode buffers kept at most (each about one read's worth of lines).
const SPARE_BUFFERS: usize = 16;
/// A buffer grown past this is dropped rather than kept.
const SPARE_MAX_BYTES: usize = 1 << 20;

impl LogsHub {
    pub fn listener_status(&self) -> Vec<ListenerStatus> {
        self.listeners.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// An empty encode buffer, reused if one is spare.
    fn take_buffer(&self) -> EncodedLogs {
        self.spare
            .lock()
            .ok()
            .and_then(|mut s| s.pop())
            .unwrap_or_default()
    }

    /// Keeps committed buffers (emptied) for the receivers, up to [`SPARE_BUFFERS`].
    pub fn give_back(&self, buffers: impl Iterator<Item = EncodedLogs>) {
        let Ok(mut spare) = self.spare.lock() else {
            return;
        };
        for mut b in buffers {
            if spare.len() >= SPARE_BUFFERS {
                break;
            }
            if b.capacity_bytes() <= SPARE_MAX_BYTES {
                b.clear();
                spare.push(b);
            }
        }
    }
}

/// Sockets [`bind`] opened.
#[derive(Debug, Default)]
pub struct Listeners {
    pub udp: Option<UdpSocket>,
    pub tcp: Option<TcpListener>,
    pub tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
}

/// Binds what `cfg` asks for. A port that cannot be bound is reported in the returned status
/// (and on the Logs page) instead of stopping gatewatch: the web UI stays useful and says
/// what to fix.
pub async fn bind(
    cfg: &SyslogConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (Listeners, Vec<ListenerStatus>) {
    let mut out = Listeners::default();
    let mut status = Vec::new();
    if !cfg.enabled {
        return (out, status);
    }
    if let Some(addr) = cfg.udp_listen {
        let r = udp::bind(addr, cfg.udp_receive_buffer);
        status.push(ListenerStatus {
            transport: Transport::Udp,
            result: r
                .as_ref()
                .map(|s| s.local_addr().unwrap_or(addr))
                .map_err(|e| bind_message(addr, e)),
        });
        out.udp = r.ok();
    }
    if let Some(addr) = cfg.tcp_listen {
        let r = TcpListener::bind(addr).await;
        status.push(ListenerStatus {
            transport: Transport::Tcp,
            result: r
                .as_ref()
                .map(|s| s.local_addr().unwrap_or(addr))
                .map_err(|e| bind_message(addr, e)),
        });
        out.tcp = r.ok();
    }
    if let Some(addr) = cfg.tls_listen {
        match tls {
            None => status.push(ListenerStatus {
                transport: Transport::Tls,
                result: Err("no certificate could be loaded (see the log)".into()),
            }),
            Some(tls) => {
                let r = TcpListener::bind(addr).await;
                status.push(ListenerStatus {
                    transport: Transport::Tls,
                    result: r
                        .as_ref()
                        .map(|s| s.local_addr().unwrap_or(addr))
                        .map_err(|e| bind_message(addr, e)),
                });
                out.tls = r.ok().map(|l| (l, tls));
            }
        }
    }
    (out, status)
}

fn bind_message(addr: SocketAddr, e: &std::io::Error) -> String {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another program, maybe a syslog daemon, uses it; pick another port)"
        }
        std::io::ErrorKind::PermissionDenied => " (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
        _ => "",
    };
    format!("cannot listen on {addr}: {e}{hint}")
}

/// Lines from one read or wake-up of a receiver, encoded for the store where they were
/// parsed (the writer thread only writes), plus the parsed lines for live tails when
/// someone watches.
#[derive(Debug, Default)]
pub struct LogBatch {
    pub encoded: EncodedLogs,
    /// The same lines, kept only while a live tail is subscribed.
    pub tail: Vec<StoredLog>,
    /// Lines parsed into this batch, added to the shared counter once per batch.
    parsed: u64,
}

impl LogBatch {
    /// A batch that keeps parsed lines for the tail when `hub` has subscribers.
    pub fn new(hub: &LogsHub) -> LogBatch {
        LogBatch {
            encoded: hub.take_buffer(),
            tail: Vec::with_capacity(if hub.tail.receiver_count() > 0 { 64 } else { 0 }),
            parsed: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.encoded.len()
    }

    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }
}

/// What a receiver needs to turn bytes into queued events.
#[derive(Clone)]
pub struct Ingest {
    pub hub: Arc<LogsHub>,
    pub queue: mpsc::Sender<LogBatch>,
    pub admission: Arc<Mutex<admission::Admission>>,
    /// No per-sender rate limit: admitted stream frames need no lock.
    pub unlimited: bool,
    pub max_message_size: usize,
    pub clock: Clock,
}

impl Ingest {
    /// Parses one message and adds it to `batch`; counts it (rejected when the parser
    /// finds no message).
    #[allow(clippy::too_many_arguments)]
    pub fn parse_into(
        &self,
        batch: &mut LogBatch,
        data: &[u8],
        truncated: bool,
        sender: IpAddr,
        transport: Transport,
        now: Timestamp,
        ctx: &ParseContext,
    ) {
        let c = &self.hub.counters;
        if truncated {
            c.truncated.fetch_add(1, Relaxed);
        }
        match logs::parse_bytes(data, ctx, LineFormat::Auto) {
            Ok(mut event) => {
                event.truncated = truncated;
                let log = stored(event, sender, transport, now);
                match batch.encoded.push(&log) {
                    Ok(()) => {
                        batch.parsed += 1;
                        if batch.tail.capacity() > 0 {
                            batch.tail.push(log);
                        }
                    }
                    Err(e) => {
                        c.store_failures.fetch_add(1, Relaxed);
                        tracing::warn!(error = %e, "cannot encode a received line; it is lost");
                    }
                }
            }
            Err(_) => {
                c.rejected.fetch_add(1, Relaxed);
            }
        }
    }

    /// Queues a batch for the writer, waiting while the queue is full (backpressure).
    /// Returns false when the writer is gone (shutdown).
    pub async fn enqueue(&self, batch: LogBatch) -> bool {
        if batch.is_empty() {
            return true;
        }
        self.hub.counters.parsed.fetch_add(batch.parsed, Relaxed);
        self.queue.send(batch).await.is_ok()
    }
}

fn stored(event: LogEvent, sender: IpAddr, transport: Transport, now: Timestamp) -> StoredLog {
    StoredLog {
        received: now,
        sender: admission::canonical(sender),
        transport,
        event,
    }
}

/// The parse context for messages received at `now`.
pub fn context_at(now: Timestamp) -> ParseContext {
    let utc = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now.0 as i64).unwrap_or_default();
    ParseContext::received_at(utc)
}

/// Everything [`run`] needs.
pub struct SyslogDeps {
    pub listeners: Listeners,
    pub store: Arc<Store>,
    pub hub: Arc<LogsHub>,
    pub cfg: SyslogConfig,
    /// Wall clock for receive times and retention (tests pass their own).
    pub clock: Clock,
}

/// Runs the receivers and the writer until `shutdown`; then stops accepting, flushes what
/// was received and returns once the last batch is committed.
pub async fn run(deps: SyslogDeps, shutdown: CancellationToken) {
    let SyslogDeps {
        listeners,
        store,
        hub,
        cfg,
        clock,
    } = deps;
    let (queue, rx) = mpsc::channel::<LogBatch>(writer::QUEUE_BATCHES);
    let writer = writer::spawn(
        writer::WriterDeps {
            store,
            hub: hub.clone(),
            retention: cfg.retention,
            max_store_bytes: cfg.max_store_bytes,
            clock: clock.clone(),
        },
        rx,
    );
    let ingest = Ingest {
        hub,
        queue,
        admission: Arc::new(Mutex::new(admission::Admission::new(
            cfg.allowed_senders.clone(),
            cfg.rate_limit_per_sender,
        ))),
        unlimited: cfg.rate_limit_per_sender == 0,
        max_message_size: cfg.max_message_size,
        clock,
    };
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(sock) = listeners.udp {
        tasks.spawn(udp::run(sock, ingest.clone(), shutdown.clone()));
    }
    if let Some(l) = listeners.tcp {
        tasks.spawn(stream::accept_loop(l, None, ingest.clone(), shutdown.clone()));
    }
    if let Some((l, tls)) = listeners.tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        tasks.spawn(stream::accept_loop(
            l,
            Some(acceptor),
            ingest.clone(),
            shutdown.clone(),
        ));
    }
    drop(ingest);
    while tasks.join_next().await.is_some() {}
    // Every sender is gone once the receivers returned; the writer drains and exits.
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
}
