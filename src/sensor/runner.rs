//! One capture thread: reads its source into its own traffic [`Engine`], closes windows by
//! packet time (and by the wall clock while the line is quiet), publishes a live snapshot
//! each second, hands closed windows to the writer without waiting, and answers flow
//! queries between packets. Stops within one poll interval of the stop flag, flushing the
//! window in progress.

use super::summarize::summarize;
use super::{FlowFilter, FlowQuery, FlowRow, SourceKind, SourceSpec, SourceState, TrafficHub};
use crate::capture::interfaces::Interface;
use crate::capture::{
    CaptureError, CaptureSource, LiveError, LiveOptions, LiveSource, PacketTime, SourceStats,
};
use crate::config::CaptureConfig;
use crate::model::TrafficSummary;
use crate::traffic::flows::FlowTable;
use crate::traffic::{Engine, TrafficConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why a source did not open.
#[derive(Debug)]
pub enum OpenError {
    NotPermitted { message: String, hint: String },
    Failed(String),
}

/// Opens a source on the capture thread (libpcap handles stay on the thread that reads them).
pub type Opener = Box<dyn FnOnce() -> Result<Box<dyn CaptureSource + Send>, OpenError> + Send>;

/// What a capture thread works with.
pub struct Context {
    pub hub: Arc<TrafficHub>,
    pub idx: usize,
    pub name: String,
    pub engine: TrafficConfig,
    pub store_tx: SyncSender<TrafficSummary>,
    pub stop: Arc<AtomicBool>,
    pub queries: Receiver<FlowQuery>,
}

const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// Packets between clock reads while packets keep coming.
const CLOCK_EVERY: u64 = 256;

/// Hands the endpoints of the active flows and their DNS names to the hub's sink (the
/// inventory), once per closed window.
fn report_hosts_seen(ctx: &Context, engine: &Engine, now: PacketTime) {
    let Some(sink) = ctx.hub.hosts_seen.get() else {
        return;
    };
    let ips: Vec<std::net::IpAddr> = engine
        .flows()
        .endpoints()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let names: Vec<_> = ips
        .iter()
        .filter_map(|ip| engine.names().lookup(ip, now).map(|n| (*ip, n)))
        .collect();
    sink(&ips, &names);
}

fn wall() -> PacketTime {
    PacketTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    )
}

/// Mirrors the engine's window boundaries (windows start at multiples of the period).
struct Windows {
    period_ns: u64,
    current: Option<u64>,
}

impl Windows {
    /// Moves to `t`'s window; returns the index of the window this closes, if any.
    fn advance(&mut self, t: PacketTime) -> Option<u64> {
        let idx = t.0 / self.period_ns.max(1);
        match self.current {
            None => {
                self.current = Some(idx);
                None
            }
            Some(c) if idx > c => {
                self.current = Some(idx);
                Some(c)
            }
            Some(_) => None,
        }
    }

    fn bounds_ms(&self, idx: u64) -> (u64, u64) {
        let ms = self.period_ns / 1_000_000;
        (idx * ms, (idx + 1) * ms)
    }
}

struct Publisher {
    at: Instant,
    packets: u64,
    bytes: u64,
}

pub fn run(ctx: Context, open: Opener) {
    let mut src = match open() {
        Ok(s) => s,
        Err(e) => {
            let state = match e {
                OpenError::NotPermitted { message, hint } => SourceState::NotPermitted { message, hint },
                OpenError::Failed(message) => SourceState::Failed { message },
            };
            tracing::warn!(source = %ctx.name, ?state, "capture did not start");
            ctx.hub.update_source(ctx.idx, |s| s.state = state);
            // Keep answering (with nothing) so flow requests do not wait for a timeout.
            serve_queries_until_stop(&ctx, &[]);
            return;
        }
    };
    ctx.hub.update_source(ctx.idx, |s| s.state = SourceState::Running);
    tracing::info!(source = %ctx.name, "capture started");
    let mut engine = Engine::new(ctx.engine.clone());
    let period = ctx.engine.period.unwrap_or(Duration::from_secs(60));
    let mut windows = Windows {
        period_ns: period.as_nanos() as u64,
        current: None,
    };
    let (mut packets, mut bytes) = (0u64, 0u64);
    let mut publisher = Publisher {
        at: Instant::now(),
        packets: 0,
        bytes: 0,
    };
    let mut drops_at_window_start = 0u64;
    let live = src.is_live();
    let outcome: Result<(), CaptureError> = loop {
        if ctx.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let (closed, check_clock) = match src.next_packet() {
            Ok(Some(p)) => {
                packets += 1;
                bytes += u64::from(p.wire_len);
                let closed = windows.advance(p.ts);
                engine.ingest(&p);
                (closed, packets % CLOCK_EVERY == 0)
            }
            Ok(None) if live => {
                let now = wall();
                let closed = windows.advance(now);
                if closed.is_some() {
                    engine.advance(now);
                }
                (closed, true)
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        if let Some(idx) = closed {
            let stats = src.stats();
            let drops = stats.dropped_kernel + stats.dropped_interface;
            let (start, end) = windows.bounds_ms(idx);
            if let Some(w) = engine.closed().last() {
                let s = summarize(
                    w,
                    &ctx.name,
                    start,
                    end,
                    drops.saturating_sub(drops_at_window_start),
                );
                ctx.hub.push_closed(ctx.idx, Arc::new(s.clone()));
                ctx.hub.send_summary(&ctx.store_tx, s);
            }
            report_hosts_seen(&ctx, &engine, PacketTime(end.saturating_mul(1_000_000)));
            drops_at_window_start = drops;
        }
        if check_clock && publisher.at.elapsed() >= PUBLISH_EVERY {
            let stats = src.stats();
            publish(
                &ctx,
                &mut engine,
                &windows,
                &mut publisher,
                (packets, bytes),
                stats,
                drops_at_window_start,
            );
            answer_queries(&ctx, engine.flows());
        }
    };
    let stopping = ctx.stop.load(Ordering::Relaxed);
    let stats = src.stats();
    // What queries see once the source has ended: the flow table as it was left.
    let remaining = if stopping {
        Vec::new()
    } else {
        flow_rows(engine.flows(), &ctx.name)
    };
    let evicted = engine.flows().evicted;
    ctx.hub.publish_names(ctx.idx, engine.names().entries().collect());
    ctx.hub
        .publish_dhcp_clients(ctx.idx, engine.dhcp_clients().by_ip());
    ctx.hub
        .publish_slow_dns(ctx.idx, crate::top::slow_rows(&engine.live().dns_xact));
    let current = windows.current;
    let last = engine.finish();
    if let (Some(idx), true) = (current, last.packets > 0) {
        let (start, end) = windows.bounds_ms(idx);
        let drops = (stats.dropped_kernel + stats.dropped_interface).saturating_sub(drops_at_window_start);
        let s = summarize(&last, &ctx.name, start, end, drops);
        ctx.hub.push_closed(ctx.idx, Arc::new(s.clone()));
        ctx.hub.send_summary(&ctx.store_tx, s);
    }
    ctx.hub.clear_live(ctx.idx);
    let state = match (&outcome, stopping) {
        (Err(e), _) => SourceState::Failed {
            message: e.to_string(),
        },
        (Ok(()), true) => SourceState::Stopped,
        (Ok(()), false) => SourceState::Finished,
    };
    tracing::info!(source = %ctx.name, packets, state = ?state, "capture ended");
    ctx.hub.update_source(ctx.idx, |s| {
        s.state = state;
        s.packets = packets;
        s.bytes = bytes;
        s.packets_per_second = 0.0;
        s.bytes_per_second = 0.0;
        s.flows_active = remaining.len() as u64;
        s.flows_evicted = evicted;
        s.set_stats(stats);
    });
    serve_queries_until_stop(&ctx, &remaining);
}

fn publish(
    ctx: &Context,
    engine: &mut Engine,
    windows: &Windows,
    p: &mut Publisher,
    (packets, bytes): (u64, u64),
    stats: SourceStats,
    drops_at_window_start: u64,
) {
    let secs = p.at.elapsed().as_secs_f64().max(0.001);
    let pps = (packets - p.packets) as f64 / secs;
    let bps = (bytes - p.bytes) as f64 * 8.0 / secs;
    *p = Publisher {
        at: Instant::now(),
        packets,
        bytes,
    };
    if let Some(idx) = windows.current {
        let (start, end) = windows.bounds_ms(idx);
        let drops = (stats.dropped_kernel + stats.dropped_interface).saturating_sub(drops_at_window_start);
        let mut s = summarize(engine.live(), &ctx.name, start, end, drops);
        s.counters.flows_evicted = engine.flows().evicted;
        ctx.hub.publish_live(ctx.idx, Arc::new(s));
    }
    ctx.hub.record_rate(wall().as_secs(), pps, bps);
    ctx.hub.publish_names(ctx.idx, engine.names().entries().collect());
    ctx.hub
        .publish_dhcp_clients(ctx.idx, engine.dhcp_clients().by_ip());
    ctx.hub
        .publish_slow_dns(ctx.idx, crate::top::slow_rows(&engine.live().dns_xact));
    let flows = engine.flows();
    ctx.hub.update_source(ctx.idx, |s| {
        s.packets = packets;
        s.bytes = bytes;
        s.packets_per_second = pps;
        s.bytes_per_second = bps;
        s.flows_active = flows.active() as u64;
        s.flows_evicted = flows.evicted;
        s.sample_rate = engine.deep_keep_fraction();
        s.set_stats(stats);
    });
}

fn answer_queries(ctx: &Context, flows: &FlowTable) {
    let mut all: Option<Vec<FlowRow>> = None;
    while let Ok(q) = ctx.queries.try_recv() {
        let rows = all.get_or_insert_with(|| flow_rows(flows, &ctx.name));
        let _ = q.reply.send(select(rows, &q.filter));
    }
}

fn serve_queries_until_stop(ctx: &Context, rows: &[FlowRow]) {
    loop {
        match ctx.queries.recv_timeout(Duration::from_millis(200)) {
            Ok(q) => {
                let _ = q.reply.send(select(rows, &q.filter));
            }
            Err(RecvTimeoutError::Timeout) if !ctx.stop.load(Ordering::Relaxed) => {}
            Err(_) => return,
        }
    }
}

fn select(rows: &[FlowRow], f: &FlowFilter) -> Vec<FlowRow> {
    let mut out: Vec<FlowRow> = rows.iter().filter(|r| f.matches(r)).cloned().collect();
    f.sort(&mut out);
    out.truncate(f.limit);
    out
}

/// TCP flag names, in header order.
pub fn tcp_flag_names(flags: u8) -> String {
    const NAMES: [(u8, &str); 8] = [
        (0x01, "FIN"),
        (0x02, "SYN"),
        (0x04, "RST"),
        (0x08, "PSH"),
        (0x10, "ACK"),
        (0x20, "URG"),
        (0x40, "ECE"),
        (0x80, "CWR"),
    ];
    NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

fn flow_rows(flows: &FlowTable, source: &str) -> Vec<FlowRow> {
    flows
        .top_by_bytes(usize::MAX)
        .into_iter()
        .map(|(k, f)| FlowRow {
            source: source.to_string(),
            proto: k.proto(),
            a: k.a().0.to_string(),
            a_port: k.a().1,
            b: k.b().0.to_string(),
            b_port: k.b().1,
            packets_ab: f.packets_ab,
            packets_ba: f.packets_ba,
            bytes_ab: f.bytes_ab,
            bytes_ba: f.bytes_ba,
            first_seen_ms: f.first_seen.0 / 1_000_000,
            last_seen_ms: f.last_seen.0 / 1_000_000,
            tcp_flags: tcp_flag_names(f.tcp_flags),
        })
        .collect()
}

/// The live interfaces to capture on (configured, or every interface that is up except
/// loopback), each with its opener.
pub fn live_sources(capture: &CaptureConfig, interfaces: &[Interface], hub: &TrafficHub) -> Vec<SourceSpec> {
    let names = if capture.interfaces.is_empty() {
        crate::capture::interfaces::default_capture_interfaces(interfaces)
    } else {
        capture.interfaces.clone()
    };
    if names.is_empty() {
        hub.set_notice(
            "No interface to capture on: none is up besides loopback. Name one in capture.interfaces.".into(),
        );
    }
    let opts = LiveOptions {
        snaplen: capture.snaplen,
        promiscuous: capture.promiscuous,
        buffer_size: u32::try_from(capture.buffer_size).unwrap_or(u32::MAX),
        immediate_mode: capture.immediate_mode,
        bpf_filter: capture.bpf_filter.clone(),
        poll_interval: capture.poll_interval,
    };
    names
        .into_iter()
        .map(|name| {
            let (iface, opts) = (name.clone(), opts.clone());
            SourceSpec {
                name,
                kind: SourceKind::Live,
                open: Box::new(move || match LiveSource::open(&iface, &opts) {
                    Ok(s) => Ok(Box::new(s) as Box<dyn CaptureSource + Send>),
                    Err(LiveError::PermissionDenied { iface, detail }) => Err(OpenError::NotPermitted {
                        message: format!("cannot capture on {iface}: permission denied ({detail})."),
                        hint: crate::capture::live::permission_hint(),
                    }),
                    Err(e) => Err(OpenError::Failed(e.to_string())),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_close_when_time_passes_a_boundary() {
        let mut w = Windows {
            period_ns: 60 * PacketTime::NANOS_PER_SEC,
            current: None,
        };
        let s = PacketTime::from_secs;
        assert_eq!(w.advance(s(61)), None);
        assert_eq!(w.advance(s(119)), None);
        assert_eq!(w.advance(s(30)), None, "time going back closes nothing");
        assert_eq!(w.advance(s(300)), Some(1));
        assert_eq!(w.bounds_ms(1), (60_000, 120_000));
        assert_eq!(w.advance(s(301)), None);
    }

    #[test]
    fn flag_names() {
        assert_eq!(tcp_flag_names(0x12), "SYN,ACK");
        assert_eq!(tcp_flag_names(0), "");
    }
}
