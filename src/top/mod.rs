//! `gatewatch top`: a terminal view of live traffic in the manner of pktvisor's CLI — rates
//! with percentiles, protocol mix, top talkers and ports, DNS names and rcodes, slow DNS
//! transactions — from a running instance's API or straight from an interface or a file.
//!
//! - [`TopView`]: everything one screen shows; the API sends it (`/api/v1/traffic/top`) and
//!   the local feed builds it, so both modes look the same.
//! - [`feed`]: where views come from (remote API, live interface, replayed file), each on
//!   its own thread, delivered over a channel.
//! - [`ui`]: the panels (ratatui) and the keys; drawing is separate from the terminal loop
//!   so tests can render into a buffer.
//!
//! Must not: write to the store or need root for `--url` (only `--iface` captures).

pub mod feed;
pub mod ui;

use crate::model::{Percentiles, TopLists, TrafficCounters, TrafficSummary};
use serde::{Deserialize, Serialize};

/// Seconds of rate history in a view (the sparkline).
pub const RATE_SECONDS: usize = 120;

/// One second of traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RateSample {
    /// Unix seconds.
    pub t: u64,
    pub pps: f64,
    /// Bits per second.
    pub bps: f64,
}

/// A slow DNS transaction (query to response).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlowRow {
    pub latency_us: u64,
    pub qname: Option<String>,
    pub client: String,
    pub server: String,
}

/// Everything one `top` screen shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopView {
    /// Capture source(s) the view is about.
    pub source: String,
    /// The window shown (Unix milliseconds, packet time).
    pub start_ms: u64,
    pub end_ms: u64,
    /// Packets and bits per second over the last second.
    pub pps: f64,
    pub bps: f64,
    /// Oldest first, at most [`RATE_SECONDS`].
    pub rates: Vec<RateSample>,
    pub counters: TrafficCounters,
    /// Packets per second over the window, sampled each second.
    pub rate_pps: Percentiles,
    /// Wire packet sizes (bytes).
    pub sizes: Percentiles,
    pub top: TopLists,
    /// Slowest first.
    pub slow: Vec<SlowRow>,
    /// Kernel and interface drops since the start.
    pub drops: u64,
    /// True once a replayed file has ended (the view stays on its last window).
    pub finished: bool,
}

impl TopView {
    pub fn new(s: &TrafficSummary, rates: Vec<RateSample>, slow: Vec<SlowRow>) -> TopView {
        let (pps, bps) = rates.last().map(|r| (r.pps, r.bps)).unwrap_or_default();
        let skip = rates.len().saturating_sub(RATE_SECONDS);
        TopView {
            source: s.source.clone(),
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            pps,
            bps,
            rates: rates[skip..].to_vec(),
            counters: s.counters,
            rate_pps: s.rate,
            sizes: s.sizes,
            top: s.top.clone(),
            slow,
            drops: s.counters.dropped,
            finished: false,
        }
    }
}

/// Slow transactions of an engine window as rows.
pub fn slow_rows(x: &crate::traffic::dns_xact::XactStats) -> Vec<SlowRow> {
    x.slowest
        .iter()
        .map(|s| SlowRow {
            latency_us: s.latency_us,
            qname: s.qname.as_ref().map(|q| q.to_string()),
            client: s.client.to_string(),
            server: s.server.to_string(),
        })
        .collect()
}
