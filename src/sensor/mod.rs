//! The traffic sensor: runs the sans-IO traffic engine on capture threads (one OS thread per
//! interface or replayed file), shares what they see with the web layer through
//! [`TrafficHub`], and persists closed windows (per minute, rolled up per hour) through a
//! writer thread.
//!
//! - [`runner`]: the capture thread: packets → engine, windows by packet time and by the
//!   clock when idle, a live snapshot each second, closed windows to the writer.
//! - [`persist`]: the writer thread: batched minute writes, hourly roll-up, retention, and
//!   the range reads the API uses (all with `now` passed in).
//! - [`summarize`]: a window as a [`TrafficSummary`].
//!
//! Must not: block a capture thread on the store or on web clients (channels are bounded;
//! a full one drops and counts), or decode packets itself (that is `traffic`).

pub mod persist;
pub mod runner;
pub mod summarize;

use crate::capture::SourceStats;
use crate::config::{CaptureConfig, Config, GeoConfig, TrafficSettings};
use crate::model::{Timestamp, TrafficCounters, TrafficSummary};
use crate::store::Store;
use crate::traffic::flows::FlowLimits;
use crate::traffic::TrafficConfig;
use portable_atomic::AtomicU64;
use serde::Serialize;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Seconds of combined rate history kept for the live chart.
pub const RATE_HISTORY_SECS: usize = 600;

/// Closed-window summaries waiting for the writer; beyond this they are dropped (counted).
const SUMMARY_QUEUE: usize = 256;

/// Where a source's packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Live,
    Replay,
}

/// What a capture thread is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SourceState {
    Starting,
    Running,
    /// A replayed file ended (its last window is kept and stored).
    Finished,
    /// The capture could not start for lack of privileges; `hint` says what to do.
    NotPermitted {
        message: String,
        hint: String,
    },
    Failed {
        message: String,
    },
    Stopped,
}

/// One capture source as the status API and the page show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceStatus {
    pub name: String,
    pub kind: SourceKind,
    #[serde(flatten)]
    pub state: SourceState,
    /// Since the source started.
    pub packets: u64,
    pub bytes: u64,
    /// Over the last second.
    pub packets_per_second: f64,
    pub bytes_per_second: f64,
    pub received_kernel: u64,
    pub dropped_kernel: u64,
    pub dropped_interface: u64,
    pub flows_active: u64,
    pub flows_evicted: u64,
    /// Share of packets that get deep analysis (DNS, flows); 1 when nothing is sampled.
    pub sample_rate: f64,
}

impl SourceStatus {
    fn new(name: &str, kind: SourceKind) -> Self {
        SourceStatus {
            name: name.to_string(),
            kind,
            state: SourceState::Starting,
            packets: 0,
            bytes: 0,
            packets_per_second: 0.0,
            bytes_per_second: 0.0,
            received_kernel: 0,
            dropped_kernel: 0,
            dropped_interface: 0,
            flows_active: 0,
            flows_evicted: 0,
            sample_rate: 1.0,
        }
    }

    fn set_stats(&mut self, s: SourceStats) {
        self.received_kernel = s.received;
        self.dropped_kernel = s.dropped_kernel;
        self.dropped_interface = s.dropped_interface;
    }
}

/// One second of the combined rate, for the chart.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct RatePoint {
    /// Unix seconds.
    pub t: u64,
    pub pps: f64,
    pub bps: f64,
}

/// A flow as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FlowRow {
    pub source: String,
    pub proto: u8,
    pub a: String,
    pub a_port: u16,
    pub b: String,
    pub b_port: u16,
    pub packets_ab: u64,
    pub packets_ba: u64,
    pub bytes_ab: u64,
    pub bytes_ba: u64,
    /// Unix milliseconds (packet time).
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// OR of the TCP flags seen, e.g. "SYN,ACK,FIN".
    pub tcp_flags: String,
}

impl FlowRow {
    pub fn bytes(&self) -> u64 {
        self.bytes_ab + self.bytes_ba
    }
    pub fn packets(&self) -> u64 {
        self.packets_ab + self.packets_ba
    }
}

/// Which flows to list.
#[derive(Debug, Clone, Default)]
pub struct FlowFilter {
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    pub proto: Option<u8>,
    pub min_bytes: u64,
    pub limit: usize,
    pub sort: FlowSort,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FlowSort {
    #[default]
    Bytes,
    Packets,
    LastSeen,
}

impl FlowFilter {
    pub fn matches(&self, r: &FlowRow) -> bool {
        let ip_ok = self.ip.is_none_or(|ip| {
            let s = ip.to_string();
            r.a == s || r.b == s
        });
        let port_ok = self.port.is_none_or(|p| r.a_port == p || r.b_port == p);
        let proto_ok = self.proto.is_none_or(|p| r.proto == p);
        ip_ok && port_ok && proto_ok && r.bytes() >= self.min_bytes
    }

    pub fn sort(&self, rows: &mut [FlowRow]) {
        match self.sort {
            FlowSort::Bytes => rows.sort_by_key(|r| std::cmp::Reverse(r.bytes())),
            FlowSort::Packets => rows.sort_by_key(|r| std::cmp::Reverse(r.packets())),
            FlowSort::LastSeen => rows.sort_by_key(|r| std::cmp::Reverse(r.last_seen_ms)),
        }
    }
}

/// A question to a capture thread about its flow table; answered between packets.
pub struct FlowQuery {
    pub filter: FlowFilter,
    pub reply: tokio::sync::oneshot::Sender<Vec<FlowRow>>,
}

struct SourceSlot {
    status: SourceStatus,
    /// The window in progress, refreshed each second.
    live: Option<Arc<TrafficSummary>>,
    queries: Option<SyncSender<FlowQuery>>,
    /// Counters of every window this source closed (for Prometheus counters).
    closed_totals: TrafficCounters,
}

#[derive(Default)]
struct HubInner {
    sources: Vec<SourceSlot>,
    history: VecDeque<RatePoint>,
    /// Closed windows of every source, newest last, at most `windows_kept` per source.
    recent: VecDeque<Arc<TrafficSummary>>,
    /// Each source's IP → name table from DNS answers (by source index), for labels.
    names: std::collections::HashMap<usize, Arc<NameMap>>,
    /// Each source's DHCP clients by address (host name, vendor class, MAC), for device kinds.
    dhcp_clients: std::collections::HashMap<usize, Arc<DhcpClientMap>>,
    /// Each source's slowest DNS transactions in the window in progress.
    slow_dns: std::collections::HashMap<usize, Arc<Vec<crate::top::SlowRow>>>,
}

/// Addresses with the name DNS answers gave them.
pub type NameMap = std::collections::HashMap<IpAddr, Arc<str>>;

/// Addresses with what their DHCP client said about itself.
pub type DhcpClientMap = std::collections::HashMap<IpAddr, crate::traffic::dhcp_clients::DhcpClient>;

/// Why there are no sources, when there are none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    /// `capture.enabled = false`.
    Disabled,
    Live,
    Replay,
}

/// What the capture threads share with the web layer. Readers take short locks and copy.
/// Receives, per closed window, the addresses of the active flows' endpoints and the names
/// DNS answers gave them. Must not block (capture threads call it).
pub type HostsSeenSink = Box<dyn Fn(&[IpAddr], &[(IpAddr, Arc<str>)]) + Send + Sync>;

pub struct TrafficHub {
    pub mode: CaptureMode,
    pub settings: TrafficSettings,
    /// The geo/ASN databases the engines use, for pages that place addresses on a map.
    pub geo: std::sync::OnceLock<Arc<crate::geo::GeoDb>>,
    /// Where each closed window's endpoints and DNS-learnt names go (the inventory's
    /// passive traffic source); set once by `serve` after discovery starts.
    pub hosts_seen: std::sync::OnceLock<HostsSeenSink>,
    inner: Mutex<HubInner>,
    summaries_sent: AtomicU64,
    summaries_dropped: AtomicU64,
    summaries_written: AtomicU64,
    store_errors: AtomicU64,
    /// A problem before any source started (e.g. no interface found).
    notice: Mutex<Option<String>>,
}

/// A copy of the hub's state for one response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HubStatus {
    pub mode: CaptureMode,
    pub sources: Vec<SourceStatus>,
    pub notice: Option<String>,
    pub period_seconds: u64,
    /// Networks counted as inside for in/out direction.
    pub host_spec: Vec<String>,
    /// Closed-window summaries handed to the writer, written, and dropped because the
    /// writer was behind.
    pub summaries_sent: u64,
    pub summaries_written: u64,
    pub summaries_dropped: u64,
    pub store_errors: u64,
}

impl HubStatus {
    /// Summaries sent but neither written nor dropped yet.
    pub fn store_pending(&self) -> u64 {
        self.summaries_sent
            .saturating_sub(self.summaries_written + self.summaries_dropped)
    }
}

impl TrafficHub {
    pub fn new(mode: CaptureMode, settings: TrafficSettings) -> Self {
        TrafficHub {
            mode,
            settings,
            geo: std::sync::OnceLock::new(),
            hosts_seen: std::sync::OnceLock::new(),
            inner: Mutex::new(HubInner::default()),
            summaries_sent: AtomicU64::new(0),
            summaries_dropped: AtomicU64::new(0),
            summaries_written: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            notice: Mutex::new(None),
        }
    }

    /// A hub with capture off (tests, and `capture.enabled = false`).
    pub fn disabled() -> Self {
        TrafficHub::new(CaptureMode::Disabled, TrafficSettings::default())
    }

    fn lock(&self) -> MutexGuard<'_, HubInner> {
        // A panicking capture thread must not take the web pages down with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces one source's name table (the capture thread sends it with each snapshot).
    fn publish_names(&self, idx: usize, names: NameMap) {
        self.lock().names.insert(idx, Arc::new(names));
    }

    fn publish_dhcp_clients(&self, idx: usize, clients: DhcpClientMap) {
        self.lock().dhcp_clients.insert(idx, Arc::new(clients));
    }

    /// Every source's DHCP client table (usually one).
    pub fn dhcp_client_tables(&self) -> Vec<Arc<DhcpClientMap>> {
        self.lock().dhcp_clients.values().cloned().collect()
    }

    fn publish_slow_dns(&self, idx: usize, rows: Vec<crate::top::SlowRow>) {
        self.lock().slow_dns.insert(idx, Arc::new(rows));
    }

    /// The slowest DNS transactions of every source's window in progress, slowest first.
    pub fn slow_dns(&self) -> Vec<crate::top::SlowRow> {
        let mut all: Vec<crate::top::SlowRow> = self
            .lock()
            .slow_dns
            .values()
            .flat_map(|v| v.iter().cloned())
            .collect();
        all.sort_by_key(|x| std::cmp::Reverse(x.latency_us));
        all.truncate(crate::traffic::dns_xact::XactStats::SLOWEST);
        all
    }

    /// Every source's name table (usually one).
    pub fn name_tables(&self) -> Vec<Arc<NameMap>> {
        self.lock().names.values().cloned().collect()
    }

    fn set_notice(&self, msg: String) {
        *self.notice.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg);
    }

    fn add_source(&self, name: &str, kind: SourceKind, queries: SyncSender<FlowQuery>) -> usize {
        let mut g = self.lock();
        g.sources.push(SourceSlot {
            status: SourceStatus::new(name, kind),
            live: None,
            queries: Some(queries),
            closed_totals: TrafficCounters::default(),
        });
        g.sources.len() - 1
    }

    fn update_source(&self, idx: usize, f: impl FnOnce(&mut SourceStatus)) {
        if let Some(s) = self.lock().sources.get_mut(idx) {
            f(&mut s.status);
        }
    }

    fn clear_live(&self, idx: usize) {
        if let Some(s) = self.lock().sources.get_mut(idx) {
            s.live = None;
        }
    }

    fn publish_live(&self, idx: usize, live: Arc<TrafficSummary>) {
        if let Some(s) = self.lock().sources.get_mut(idx) {
            s.live = Some(live);
        }
    }

    /// Adds this second's rate of one source into the combined history.
    fn record_rate(&self, t: u64, pps: f64, bps: f64) {
        let mut g = self.lock();
        match g.history.back_mut() {
            Some(p) if p.t == t => {
                p.pps += pps;
                p.bps += bps;
            }
            _ => {
                g.history.push_back(RatePoint { t, pps, bps });
                while g.history.len() > RATE_HISTORY_SECS {
                    g.history.pop_front();
                }
            }
        }
    }

    fn push_closed(&self, idx: usize, s: Arc<TrafficSummary>) {
        let mut g = self.lock();
        if let Some(slot) = g.sources.get_mut(idx) {
            slot.closed_totals.add(&s.counters);
            // Its counters are in the totals now; the next second brings the new window.
            slot.live = None;
        }
        g.recent.push_back(s);
        let cap = self.settings.windows_kept.max(1) * g.sources.len().max(1);
        while g.recent.len() > cap {
            g.recent.pop_front();
        }
    }

    /// Hands a closed window to the writer without waiting.
    fn send_summary(&self, tx: &SyncSender<TrafficSummary>, s: TrafficSummary) {
        self.summaries_sent.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(s) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.summaries_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn status(&self) -> HubStatus {
        let sources = self.lock().sources.iter().map(|s| s.status.clone()).collect();
        HubStatus {
            mode: self.mode.clone(),
            sources,
            notice: self.notice.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            period_seconds: self.settings.period.as_secs(),
            host_spec: self.settings.host_spec.iter().map(|n| n.to_string()).collect(),
            summaries_sent: self.summaries_sent.load(Ordering::Relaxed),
            summaries_written: self.summaries_written.load(Ordering::Relaxed),
            summaries_dropped: self.summaries_dropped.load(Ordering::Relaxed),
            store_errors: self.store_errors.load(Ordering::Relaxed),
        }
    }

    /// The windows in progress, one per source.
    pub fn live_windows(&self) -> Vec<Arc<TrafficSummary>> {
        self.lock()
            .sources
            .iter()
            .filter_map(|s| s.live.clone())
            .collect()
    }

    /// The windows in progress merged across sources (`None` before the first packet).
    pub fn live_merged(&self) -> Option<TrafficSummary> {
        let live = self.live_windows();
        if live.is_empty() {
            return None;
        }
        let mut m = TrafficSummary::default();
        for w in &live {
            m.merge(w);
        }
        Some(m)
    }

    /// Closed windows still in memory, oldest first.
    pub fn recent_windows(&self) -> Vec<Arc<TrafficSummary>> {
        self.lock().recent.iter().cloned().collect()
    }

    pub fn rate_history(&self) -> Vec<RatePoint> {
        self.lock().history.iter().copied().collect()
    }

    /// Asks every capture thread for its matching flows; waits at most `timeout` for each.
    pub async fn flows(&self, filter: &FlowFilter, timeout: Duration) -> Vec<FlowRow> {
        let senders: Vec<SyncSender<FlowQuery>> = self
            .lock()
            .sources
            .iter()
            .filter_map(|s| s.queries.clone())
            .collect();
        let mut replies = Vec::new();
        for tx in senders {
            let (reply, rx) = tokio::sync::oneshot::channel();
            let q = FlowQuery {
                filter: filter.clone(),
                reply,
            };
            if tx.try_send(q).is_ok() {
                replies.push(rx);
            }
        }
        let mut rows = Vec::new();
        for rx in replies {
            if let Ok(Ok(mut r)) = tokio::time::timeout(timeout, rx).await {
                rows.append(&mut r);
            }
        }
        filter.sort(&mut rows);
        rows.truncate(filter.limit);
        rows
    }

    /// Counters since start per source: closed windows plus the window in progress.
    pub fn counters_by_source(&self) -> Vec<(String, TrafficCounters)> {
        self.lock()
            .sources
            .iter()
            .map(|s| {
                let mut c = s.closed_totals;
                if let Some(l) = &s.live {
                    c.add(&l.counters);
                }
                (s.status.name.clone(), c)
            })
            .collect()
    }

    /// Totals over every source since start: (packets, bytes, packets/s, bytes/s, drops).
    pub fn totals(&self) -> (u64, u64, f64, f64, u64) {
        let g = self.lock();
        g.sources.iter().fold((0, 0, 0.0, 0.0, 0), |acc, s| {
            let st = &s.status;
            (
                acc.0 + st.packets,
                acc.1 + st.bytes,
                acc.2 + st.packets_per_second,
                acc.3 + st.bytes_per_second,
                acc.4 + st.dropped_kernel + st.dropped_interface,
            )
        })
    }
}

/// The engine's configuration from the validated settings.
pub fn engine_config(t: &TrafficSettings) -> TrafficConfig {
    TrafficConfig {
        dns_ports: t.dns_ports.clone(),
        period: Some(t.period),
        keep_closed: t.windows_kept,
        host_spec: t.host_spec.clone(),
        deep_sample_above_pps: t.deep_sample_above_pps,
        flows: FlowLimits {
            max_flows: t.max_flows,
            idle: t.flow_idle_timeout,
        },
        ..TrafficConfig::default()
    }
}

/// The running sensor: capture threads and the writer. [`Sensor::stop`] joins them.
pub struct Sensor {
    pub hub: Arc<TrafficHub>,
    stop: Arc<AtomicBool>,
    captures: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
}

impl Sensor {
    /// Starts capturing as configured. Sources that cannot open (no permission, no such
    /// interface) are shown in the hub's status; the server keeps running either way.
    pub fn start(cfg: &Config, store: Arc<Store>) -> Sensor {
        let capture = &cfg.capture;
        let mode = match (capture.enabled, &capture.replay) {
            (false, _) => CaptureMode::Disabled,
            (true, Some(_)) => CaptureMode::Replay,
            (true, None) => CaptureMode::Live,
        };
        let interfaces = match mode {
            CaptureMode::Live => crate::capture::interfaces::list_interfaces().unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut settings = cfg.traffic.clone();
        if settings.host_spec.is_empty() {
            // Default: the subnets of this machine's interfaces (replays: unknown direction).
            settings.host_spec = crate::capture::interfaces::local_subnets(&interfaces);
        }
        let hub = Arc::new(TrafficHub::new(mode.clone(), settings.clone()));
        let mut engine_cfg = engine_config(&settings);
        // Opened even without capture: the Logs page places blocked sources by country.
        if let Some(g) = open_geo(&cfg.geo, &hub) {
            let _ = hub.geo.set(g.clone());
            if mode != CaptureMode::Disabled {
                engine_cfg.geo = Some(g);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel::<TrafficSummary>(SUMMARY_QUEUE);
        let writer = {
            let (hub, store, settings, stop) = (hub.clone(), store, cfg.traffic.clone(), stop.clone());
            std::thread::Builder::new()
                .name("traffic-writer".into())
                .spawn(move || persist::run_writer(rx, &store, &settings, &hub, &stop, Timestamp::now))
                .ok()
        };
        let mut captures = Vec::new();
        for spec in sources(capture, &interfaces, &hub) {
            let (qtx, qrx) = sync_channel::<FlowQuery>(8);
            let idx = hub.add_source(&spec.name, spec.kind, qtx);
            let ctx = runner::Context {
                hub: hub.clone(),
                idx,
                name: spec.name.clone(),
                engine: engine_cfg.clone(),
                store_tx: tx.clone(),
                stop: stop.clone(),
                queries: qrx,
            };
            let open = spec.open;
            match std::thread::Builder::new()
                .name(format!("capture-{}", spec.name))
                .spawn(move || runner::run(ctx, open))
            {
                Ok(h) => captures.push(h),
                Err(e) => hub.update_source(idx, |s| {
                    s.state = SourceState::Failed {
                        message: format!("cannot start a thread: {e}"),
                    }
                }),
            }
        }
        drop(tx);
        Sensor {
            hub,
            stop,
            captures,
            writer,
        }
    }

    /// Stops the capture threads (each flushes its window in progress), then lets the
    /// writer store what is queued, and joins everything.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.captures.drain(..) {
            let _ = h.join();
        }
        // The capture threads are gone, so the writer sees the channel close after the
        // last queued window.
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Drop for Sensor {
    /// A sensor dropped without [`Sensor::stop`] still ends its threads (without waiting).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A source to start: its name and how to open it (on its own thread).
pub struct SourceSpec {
    pub name: String,
    pub kind: SourceKind,
    pub open: runner::Opener,
}

fn sources(
    capture: &CaptureConfig,
    interfaces: &[crate::capture::interfaces::Interface],
    hub: &TrafficHub,
) -> Vec<SourceSpec> {
    if !capture.enabled {
        return Vec::new();
    }
    if let Some(r) = &capture.replay {
        let r = r.clone();
        let poll = capture.poll_interval;
        let name = r
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "replay".into());
        return vec![SourceSpec {
            name,
            kind: SourceKind::Replay,
            open: Box::new(move || {
                crate::capture::ReplaySource::open(&r.path, r.realtime, r.looped, poll)
                    .map(|s| Box::new(s) as Box<dyn crate::capture::CaptureSource + Send>)
                    .map_err(|e| runner::OpenError::Failed(e.to_string()))
            }),
        }];
    }
    runner::live_sources(capture, interfaces, hub)
}

/// The geo/ASN databases, when configured; a broken file is reported, not fatal.
fn open_geo(g: &GeoConfig, hub: &TrafficHub) -> Option<Arc<crate::geo::GeoDb>> {
    if g.city_db.is_none() && g.asn_db.is_none() {
        return None;
    }
    let home = crate::geo::HomeLocation {
        country_iso: g.home_country.clone(),
        country_name: None,
        city: g.home_city.clone(),
        latitude: g.home_location.map(|l| l.0),
        longitude: g.home_location.map(|l| l.1),
    };
    match crate::geo::GeoDb::open(g.city_db.as_deref(), g.asn_db.as_deref(), home) {
        Ok(db) => Some(Arc::new(db)),
        Err(e) => {
            tracing::warn!(error = %e, "geo databases not usable");
            hub.set_notice(format!("Geo databases not used: {e}"));
            None
        }
    }
}
