//! `/api/v1/traffic/...`: capture status, windows (live, recent and stored), a merged
//! summary of any range, flows with filters and per-host traffic. Read-only.

use super::{ApiError, ApiResult};
use crate::model::{Percentiles, TopEntry, TopLists, TrafficCounters, TrafficSummary};
use crate::sensor::{persist, FlowFilter, FlowRow, FlowSort, HubStatus, RatePoint, TrafficHub};
use crate::web::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// Stored records read for one range at most (a week of minutes on two interfaces).
const MAX_RECORDS: usize = 20_160;
const FLOW_TIMEOUT: Duration = Duration::from_secs(3);

/// Capture state with what to do about it.
#[derive(Serialize, ToSchema)]
pub struct StatusBody {
    #[serde(flatten)]
    pub status: HubStatus,
    /// Summaries written to the store but not yet confirmed.
    pub store_pending: u64,
}

/// One window (or a merged range) as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SummaryBody {
    /// Unix milliseconds (packet time).
    pub start_ms: u64,
    pub end_ms: u64,
    /// Interface name, or "all" when several were merged.
    pub source: String,
    /// Windows merged into this one.
    pub windows: u32,
    pub counters: TrafficCounters,
    pub distinct_src_ips: u64,
    pub distinct_dst_ips: u64,
    pub distinct_qnames: u64,
    /// Wire sizes in bytes. Merged across windows these are count-weighted means.
    pub size_percentiles: Percentiles,
    /// Packets per second, sampled each second.
    pub rate_pps: Percentiles,
    pub top: TopLists,
}

impl SummaryBody {
    pub fn new(s: &TrafficSummary, top_n: usize) -> Self {
        let mut top = s.top.clone();
        top.truncate(top_n);
        SummaryBody {
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            source: s.source.clone(),
            windows: s.windows,
            counters: s.counters,
            distinct_src_ips: s.distinct_src_ips(),
            distinct_dst_ips: s.distinct_dst_ips(),
            distinct_qnames: s.distinct_qnames(),
            size_percentiles: s.sizes,
            rate_pps: s.rate,
            top,
        }
    }
}

/// A stored window without its top lists (for charts and tables of many windows).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowRow {
    pub start_ms: u64,
    pub end_ms: u64,
    pub source: String,
    pub windows: u32,
    pub counters: TrafficCounters,
    pub rate_pps: Percentiles,
}

impl From<&TrafficSummary> for WindowRow {
    fn from(s: &TrafficSummary) -> Self {
        WindowRow {
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            source: s.source.clone(),
            windows: s.windows,
            counters: s.counters,
            rate_pps: s.rate,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WindowsBody {
    /// The window in progress on each source.
    pub live: Vec<SummaryBody>,
    /// Recently closed windows still in memory, oldest first.
    pub recent: Vec<SummaryBody>,
    /// Stored windows in the requested range (minutes, or hours where minutes have been
    /// rolled up and pruned, or hours only with `resolution=hour`), oldest first.
    pub stored: Vec<WindowRow>,
    /// Combined packet and bit rate of the last minutes, one point per second.
    pub rate_history: Vec<RatePoint>,
}

/// A time range in Unix milliseconds; defaults: the last hour before now.
#[derive(Deserialize, IntoParams)]
pub struct RangeParams {
    /// Start, Unix milliseconds (inclusive).
    pub from: Option<u64>,
    /// End, Unix milliseconds (exclusive).
    pub to: Option<u64>,
    /// `minute` (default: minutes where kept, hours before) or `hour`.
    pub resolution: Option<String>,
}

impl RangeParams {
    pub fn resolve(&self, now_ms: u64) -> ApiResult<(u64, u64)> {
        let to = self.to.unwrap_or(now_ms.saturating_add(1));
        let from = self.from.unwrap_or(to.saturating_sub(3_600_000));
        if from >= to {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "from must be before to",
            ));
        }
        Ok((from, to))
    }
}

fn store_error(e: crate::store::StoreError) -> ApiError {
    ApiError::internal(&format!("cannot read traffic history: {e}"))
}

/// Capture sources, their state (running, not permitted and what to do, failed), packet
/// counts, rates, kernel drops and the store writer's counters.
#[utoipa::path(get, path = "/api/v1/traffic/status", tag = "traffic",
    responses((status = 200, body = StatusBody)))]
pub async fn status(State(state): State<Arc<AppState>>) -> Json<StatusBody> {
    let status = state.traffic.status();
    Json(StatusBody {
        store_pending: status.store_pending(),
        status,
    })
}

/// The windows in progress, the recent closed ones and stored windows in a range.
#[utoipa::path(get, path = "/api/v1/traffic/windows", tag = "traffic", params(RangeParams),
    responses((status = 200, body = WindowsBody), (status = 400, body = ApiError)))]
pub async fn windows(
    State(state): State<Arc<AppState>>,
    Query(q): Query<RangeParams>,
) -> ApiResult<Json<WindowsBody>> {
    let (from, to) = q.resolve(state.now().as_millis())?;
    let hours_only = match q.resolution.as_deref() {
        None | Some("minute") => false,
        Some("hour") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("resolution \"{other}\" is not minute or hour"),
            ))
        }
    };
    let st = state.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let store = st.accounts.store();
        if hours_only {
            persist::read_hours(store, from, to, MAX_RECORDS)
        } else {
            persist::read_range(store, from, to, MAX_RECORDS)
        }
    })
    .await
    .map_err(|_| ApiError::internal("reading traffic history failed"))?
    .map_err(store_error)?;
    let hub = &state.traffic;
    let n = hub.settings.top_n;
    Ok(Json(WindowsBody {
        live: hub
            .live_windows()
            .iter()
            .map(|s| SummaryBody::new(s, n))
            .collect(),
        recent: hub
            .recent_windows()
            .iter()
            .map(|s| SummaryBody::new(s, n))
            .collect(),
        stored: stored.iter().map(WindowRow::from).collect(),
        rate_history: hub.rate_history(),
    }))
}

/// Stored windows of the range merged with the windows in progress that start in it.
pub async fn merged_range(state: &Arc<AppState>, from: u64, to: u64) -> ApiResult<TrafficSummary> {
    let st = state.clone();
    let stored =
        tokio::task::spawn_blocking(move || persist::read_range(st.accounts.store(), from, to, MAX_RECORDS))
            .await
            .map_err(|_| ApiError::internal("reading traffic history failed"))?
            .map_err(store_error)?;
    let mut merged = TrafficSummary::default();
    for s in &stored {
        merged.merge(s);
    }
    for live in state.traffic.live_windows() {
        if live.start_ms >= from && live.start_ms < to {
            merged.merge(&live);
        }
    }
    if merged.windows == 0 {
        merged.start_ms = from;
        merged.end_ms = to;
    }
    Ok(merged)
}

/// Everything in a time range merged into one summary: exact counters, top lists (exact
/// where every key was in every window's kept list), cardinalities (HLL union).
#[utoipa::path(get, path = "/api/v1/traffic/summary", tag = "traffic", params(RangeParams),
    responses((status = 200, body = SummaryBody), (status = 400, body = ApiError)))]
pub async fn summary(
    State(state): State<Arc<AppState>>,
    Query(q): Query<RangeParams>,
) -> ApiResult<Json<SummaryBody>> {
    let (from, to) = q.resolve(state.now().as_millis())?;
    let merged = merged_range(&state, from, to).await?;
    Ok(Json(SummaryBody::new(&merged, state.traffic.settings.top_n)))
}

/// Which flows to list.
#[derive(Deserialize, IntoParams, Default)]
pub struct FlowParams {
    /// Either endpoint is this address.
    pub ip: Option<String>,
    /// Either endpoint uses this port.
    pub port: Option<String>,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or an IP protocol number.
    pub proto: Option<String>,
    /// Both directions together carried at least this many bytes.
    pub min_bytes: Option<String>,
    /// At most this many flows (default 100, at most 1000).
    pub limit: Option<String>,
    /// `bytes` (default), `packets` or `last_seen`.
    pub sort: Option<String>,
}

fn invalid(msg: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid", &msg)
}

fn proto_number(s: &str) -> Option<u8> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "icmpv6" => Some(58),
        n => n.parse().ok(),
    }
}

/// A protocol number's name.
pub fn proto_name(p: u8) -> String {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        n => n.to_string(),
    }
}

impl FlowParams {
    /// Parses the parameters (empty ones, as a plain HTML form sends, count as absent).
    pub fn filter(&self) -> Result<FlowFilter, String> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let ip = match given(&self.ip) {
            None => None,
            Some(s) => Some(
                s.parse::<IpAddr>()
                    .map_err(|_| format!("ip \"{s}\" is not an address"))?,
            ),
        };
        let port = match given(&self.port) {
            None => None,
            Some(s) => Some(
                s.parse::<u16>()
                    .map_err(|_| format!("port \"{s}\" is not a port number"))?,
            ),
        };
        let proto = match given(&self.proto) {
            None => None,
            Some(s) => Some(
                proto_number(&s)
                    .ok_or_else(|| format!("proto \"{s}\" is not tcp, udp, icmp, icmpv6 or a number"))?,
            ),
        };
        let min_bytes = match given(&self.min_bytes) {
            None => 0,
            Some(s) => s
                .parse::<u64>()
                .map_err(|_| format!("min_bytes \"{s}\" is not a whole number"))?,
        };
        let limit = match given(&self.limit) {
            None => 100,
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| format!("limit \"{s}\" is not a whole number"))?
                .clamp(1, 1000),
        };
        let sort = match given(&self.sort).as_deref() {
            None | Some("bytes") => FlowSort::Bytes,
            Some("packets") => FlowSort::Packets,
            Some("last_seen") => FlowSort::LastSeen,
            Some(other) => return Err(format!("sort \"{other}\" is not bytes, packets or last_seen")),
        };
        Ok(FlowFilter {
            ip,
            port,
            proto,
            min_bytes,
            limit,
            sort,
        })
    }
}

/// Active flows (bidirectional 5-tuples) of every source, filtered and sorted.
#[utoipa::path(get, path = "/api/v1/traffic/flows", tag = "traffic", params(FlowParams),
    responses((status = 200, body = Vec<FlowRow>), (status = 400, body = ApiError)))]
pub async fn flows(
    State(state): State<Arc<AppState>>,
    Query(q): Query<FlowParams>,
) -> ApiResult<Json<Vec<FlowRow>>> {
    let filter = q.filter().map_err(invalid)?;
    Ok(Json(state.traffic.flows(&filter, FLOW_TIMEOUT).await))
}

/// One host's traffic.
#[derive(Serialize, ToSchema)]
pub struct HostBody {
    pub ip: String,
    pub from_ms: u64,
    pub to_ms: u64,
    /// From the range's top lists: `null` when the host is not among the kept heavy hitters.
    pub sent_packets: Option<u64>,
    pub sent_bytes: Option<u64>,
    pub received_packets: Option<u64>,
    pub received_bytes: Option<u64>,
    /// Its active flows, heaviest first, and their totals.
    pub flows: Vec<FlowRow>,
    pub flow_bytes: u64,
    pub flow_packets: u64,
    /// The addresses it talks to most (by bytes over its active flows).
    pub peers: Vec<TopEntry>,
}

fn find(list: &[TopEntry], key: &str) -> Option<u64> {
    list.iter().find(|e| e.key == key).map(|e| e.value)
}

/// Per-host traffic: what the range's top lists say about the address, plus its active
/// flows and peers.
#[utoipa::path(get, path = "/api/v1/traffic/hosts/{ip}", tag = "traffic", params(("ip" = String, Path, description = "IPv4 or IPv6 address"), RangeParams),
    responses((status = 200, body = HostBody), (status = 400, body = ApiError)))]
pub async fn host(
    State(state): State<Arc<AppState>>,
    Path(ip): Path<String>,
    Query(q): Query<RangeParams>,
) -> ApiResult<Json<HostBody>> {
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| invalid(format!("\"{ip}\" is not an IP address")))?;
    let (from, to) = q.resolve(state.now().as_millis())?;
    let merged = merged_range(&state, from, to).await?;
    Ok(Json(host_body(&state.traffic, addr, from, to, &merged).await))
}

pub async fn host_body(
    hub: &TrafficHub,
    addr: IpAddr,
    from: u64,
    to: u64,
    merged: &TrafficSummary,
) -> HostBody {
    let key = addr.to_string();
    let filter = FlowFilter {
        ip: Some(addr),
        limit: 1000,
        ..Default::default()
    };
    let flows = hub.flows(&filter, FLOW_TIMEOUT).await;
    let mut peers: Vec<TopEntry> = Vec::new();
    for f in &flows {
        let peer = if f.a == key { &f.b } else { &f.a };
        crate::model::merge_top(
            &mut peers,
            &[TopEntry {
                key: peer.clone(),
                value: f.bytes(),
            }],
            usize::MAX,
        );
    }
    peers.truncate(hub.settings.top_n);
    let t = &merged.top;
    HostBody {
        ip: key.clone(),
        from_ms: from,
        to_ms: to,
        sent_packets: find(&t.src_ips_by_packets, &key),
        sent_bytes: find(&t.src_ips_by_bytes, &key),
        received_packets: find(&t.dst_ips_by_packets, &key),
        received_bytes: find(&t.dst_ips_by_bytes, &key),
        flow_bytes: flows.iter().map(FlowRow::bytes).sum(),
        flow_packets: flows.iter().map(FlowRow::packets).sum(),
        flows: flows.into_iter().take(100).collect(),
        peers,
    }
}
