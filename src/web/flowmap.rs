//! The flows people look at rather than read: the world map (`/traffic/map`, drawn by
//! `static/map.js`), the flows view (`/traffic/flows`, sortable, CSV/JSON export), the
//! enriched-flows API and the SSE feed the map animates from.
//!
//! A flow here is the sensor's [`FlowRow`] seen from the local side: which end is ours, the
//! names DNS answers gave both ends, where the remote end is (geo/ASN; private remote
//! addresses are at the home location) and what kind of device the local end looks like
//! ([`device_kind`] over the inventory's MAC vendor and names and the DHCP clients the
//! traffic engine saw).
//!
//! Must not: read packets or keep state of its own (everything comes from the
//! [`crate::sensor::TrafficHub`] and the inventory per request), or open the geo databases
//! (the sensor does).

use super::pages::{csv_field, layout, page, url_encode, Nav};
use super::AppState;
use crate::accounts::Principal;
use crate::discovery::oui::Mac;
use crate::geo::is_local;
use crate::sensor::{DhcpClientMap, FlowFilter, FlowRow, FlowSort, NameMap, TrafficHub};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Flows fetched from the capture threads for one map update or table (largest first).
pub const MAX_FLOWS: usize = 5000;
/// How often the map's SSE feed sends the flows.
const MAP_PERIOD: Duration = Duration::from_secs(2);
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

pub use crate::discovery::device_kind::{device_kind, DeviceKind};

/// A flow seen from the local side, with names, geo and the device guess.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MapFlow {
    /// Capture source (interface or replayed file).
    pub source: String,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub proto: u8,
    pub local: String,
    pub local_port: u16,
    pub local_name: Option<String>,
    pub remote: String,
    pub remote_port: u16,
    pub remote_name: Option<String>,
    /// The remote address is private/local: it is drawn at the home location.
    pub remote_private: bool,
    pub country: Option<String>,
    pub country_name: Option<String>,
    pub city: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
    /// The local device's kind (the arc's colour) and the hints it was read from.
    pub device: DeviceKind,
    pub device_hints: DeviceHints,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub packets_in: u64,
    /// Unix milliseconds (packet time).
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

impl MapFlow {
    pub fn bytes(&self) -> u64 {
        self.bytes_out + self.bytes_in
    }
    pub fn packets(&self) -> u64 {
        self.packets_out + self.packets_in
    }
    pub fn duration_ms(&self) -> u64 {
        self.last_seen_ms.saturating_sub(self.first_seen_ms)
    }
    pub fn proto_name(&self) -> String {
        proto_name(self.proto)
    }
}

pub fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        n => n.to_string(),
    }
}

fn name_of(tables: &[Arc<NameMap>], ip: &IpAddr) -> Option<String> {
    tables.iter().find_map(|t| t.get(ip)).map(|n| n.to_string())
}

/// What the server knows about a local address: the hints [`device_kind`] reads and the
/// kind it made of them.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct DeviceHints {
    /// The host name the kind was read from (DHCP option 12, the inventory, DNS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// DHCP option 60 as the device last sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp_vendor_class: Option<String>,
    /// The vendor of the device's MAC (inventory, else the DHCP client's hardware address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_vendor: Option<String>,
}

struct LocalDevice {
    name: Option<String>,
    kind: DeviceKind,
    hints: DeviceHints,
}

/// Device kinds of local addresses for one request: the inventory (host by address → MAC
/// vendor, names) and the traffic engine's DHCP clients (host name, vendor class, MAC),
/// looked up once per address.
pub struct LocalDevices<'a> {
    discovery: &'a crate::discovery_service::Discovery,
    dhcp: Vec<Arc<DhcpClientMap>>,
    names: Vec<Arc<NameMap>>,
    seen: HashMap<IpAddr, Arc<LocalDevice>>,
}

impl<'a> LocalDevices<'a> {
    pub fn new(discovery: &'a crate::discovery_service::Discovery, hub: &TrafficHub) -> Self {
        LocalDevices {
            discovery,
            dhcp: hub.dhcp_client_tables(),
            names: hub.name_tables(),
            seen: HashMap::new(),
        }
    }

    fn get(&mut self, ip: IpAddr) -> Arc<LocalDevice> {
        if let Some(d) = self.seen.get(&ip) {
            return d.clone();
        }
        let dhcp = self.dhcp.iter().find_map(|t| t.get(&ip));
        let host = self.discovery.host_by_ip(ip);
        let dns = name_of(&self.names, &ip);
        let inventory_names = host.iter().flat_map(|h| h.names.values().cloned());
        // Names in order of who chose them: the device (DHCP), the inventory, DNS.
        let names: Vec<String> = dhcp
            .and_then(|c| c.hostname.as_deref().map(String::from))
            .into_iter()
            .chain(inventory_names)
            .chain(dns.clone())
            .collect();
        let hostname = names
            .iter()
            .find(|n| device_kind(Some(n), None, None) != DeviceKind::Unknown)
            .or(names.first())
            .cloned();
        let mac_vendor = host
            .as_ref()
            .and_then(|h| h.vendor().map(String::from))
            .or_else(|| dhcp.and_then(|c| crate::inventory::sources::vendor_of(Mac(c.mac))));
        let dhcp_vendor_class = dhcp.and_then(|c| c.vendor_class.as_deref().map(String::from));
        let kind = device_kind(
            hostname.as_deref(),
            dhcp_vendor_class.as_deref(),
            mac_vendor.as_deref(),
        );
        let name = dns
            .or_else(|| host.as_ref().and_then(|h| h.name().map(String::from)))
            .or_else(|| names.first().cloned());
        let d = Arc::new(LocalDevice {
            name,
            kind,
            hints: DeviceHints {
                hostname,
                dhcp_vendor_class,
                mac_vendor,
            },
        });
        self.seen.insert(ip, d.clone());
        d
    }
}

/// Turns a sensor flow into a map flow: the local end is the private one.
pub fn enrich(hub: &TrafficHub, devices: &mut LocalDevices<'_>, r: &FlowRow) -> MapFlow {
    let a: Option<IpAddr> = r.a.parse().ok();
    let b: Option<IpAddr> = r.b.parse().ok();
    let a_local = a.as_ref().is_some_and(is_local);
    let b_local = b.as_ref().is_some_and(is_local);
    // Between two local (or two remote) ends, the client is ours: the higher, ephemeral port.
    let a_is_local = if a_local != b_local {
        a_local
    } else {
        r.a_port >= r.b_port
    };
    let (local, lport, remote, rport) = if a_is_local {
        (a, r.a_port, b, r.b_port)
    } else {
        (b, r.b_port, a, r.a_port)
    };
    let (out_b, in_b, out_p, in_p) = if a_is_local {
        (r.bytes_ab, r.bytes_ba, r.packets_ab, r.packets_ba)
    } else {
        (r.bytes_ba, r.bytes_ab, r.packets_ba, r.packets_ab)
    };
    let device = local.map(|ip| devices.get(ip));
    let local_name = device.as_ref().and_then(|d| d.name.clone());
    let remote_name = remote.as_ref().and_then(|ip| name_of(&devices.names, ip));
    let geo = match (hub.geo.get(), remote) {
        (Some(db), Some(ip)) if !ip.is_multicast() => Some(db.lookup(ip)),
        _ => None,
    };
    let s = |v: &Option<Arc<str>>| v.as_ref().map(|x| x.to_string());
    MapFlow {
        source: r.source.clone(),
        proto: r.proto,
        local: local.map(|i| i.to_string()).unwrap_or_else(|| r.a.clone()),
        local_port: lport,
        local_name,
        remote: remote.map(|i| i.to_string()).unwrap_or_else(|| r.b.clone()),
        remote_port: rport,
        remote_name,
        // Multicast and broadcast never leave the site either.
        remote_private: remote
            .as_ref()
            .is_some_and(|ip| is_local(ip) || ip.is_multicast()),
        country: geo.as_ref().and_then(|g| s(&g.country_iso)),
        country_name: geo.as_ref().and_then(|g| s(&g.country_name)),
        city: geo.as_ref().and_then(|g| s(&g.city)),
        lat: geo.as_ref().and_then(|g| g.latitude),
        lon: geo.as_ref().and_then(|g| g.longitude),
        asn: geo.as_ref().and_then(|g| g.asn),
        as_org: geo.as_ref().and_then(|g| s(&g.as_org)),
        device: device.as_ref().map_or(DeviceKind::Unknown, |d| d.kind),
        device_hints: device.map(|d| d.hints.clone()).unwrap_or_default(),
        bytes_out: out_b,
        bytes_in: in_b,
        packets_out: out_p,
        packets_in: in_p,
        first_seen_ms: r.first_seen_ms,
        last_seen_ms: r.last_seen_ms,
    }
}

/// The filters of the map and the flows view (all optional, all must match).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MapFilter {
    /// Part of either address.
    pub ip: Option<String>,
    /// Either port.
    pub port: Option<String>,
    /// Part of either name (from DNS answers).
    pub host: Option<String>,
    /// Capture source (interface) name.
    pub iface: Option<String>,
    /// Mean packet length in bytes: `N` (at least N) or `N-M`.
    pub len: Option<String>,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or a protocol number.
    pub proto: Option<String>,
    /// Table sort column and direction (`asc`/`desc`).
    pub sort: Option<String>,
    pub dir: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl MapFilter {
    /// Why a filter value is not understood, if one is not.
    pub fn check(&self) -> Result<(), String> {
        if let Some(p) = nonempty(&self.port) {
            p.parse::<u16>()
                .map_err(|_| format!("port: {p:?} is not a port number"))?;
        }
        if let Some(l) = nonempty(&self.len) {
            parse_len(l).ok_or_else(|| format!("packet length: {l:?} is not N or N-M"))?;
        }
        if let Some(p) = nonempty(&self.proto) {
            parse_proto(p)
                .ok_or_else(|| format!("protocol: {p:?} is not tcp, udp, icmp, icmpv6 or a number"))?;
        }
        Ok(())
    }

    pub fn matches(&self, f: &MapFlow) -> bool {
        let lower = |s: &str| s.to_ascii_lowercase();
        if let Some(ip) = nonempty(&self.ip) {
            if !f.local.contains(ip) && !f.remote.contains(ip) {
                return false;
            }
        }
        if let Some(p) = nonempty(&self.port).and_then(|p| p.parse::<u16>().ok()) {
            if f.local_port != p && f.remote_port != p {
                return false;
            }
        }
        if let Some(h) = nonempty(&self.host).map(lower) {
            let hit = |n: &Option<String>| n.as_deref().is_some_and(|n| lower(n).contains(&h));
            if !hit(&f.local_name) && !hit(&f.remote_name) {
                return false;
            }
        }
        if let Some(i) = nonempty(&self.iface) {
            if f.source != i {
                return false;
            }
        }
        if let Some((lo, hi)) = nonempty(&self.len).and_then(parse_len) {
            let mean = f.bytes().checked_div(f.packets()).unwrap_or(0);
            if mean < lo || mean > hi {
                return false;
            }
        }
        if let Some(p) = nonempty(&self.proto).and_then(parse_proto) {
            if f.proto != p {
                return false;
            }
        }
        true
    }

    fn sort_key(&self) -> (&str, bool) {
        let col = nonempty(&self.sort).unwrap_or("bytes");
        let asc = nonempty(&self.dir) == Some("asc");
        (col, asc)
    }

    pub fn sort(&self, rows: &mut [MapFlow]) {
        let (col, asc) = self.sort_key();
        rows.sort_by(|x, y| {
            let o = match col {
                "local" => sortable_ip(&x.local).cmp(&sortable_ip(&y.local)),
                "remote" => sortable_ip(&x.remote).cmp(&sortable_ip(&y.remote)),
                "name" => x.remote_name.cmp(&y.remote_name),
                "country" => x.country.cmp(&y.country),
                "asn" => x.asn.cmp(&y.asn),
                "proto" => x.proto.cmp(&y.proto),
                "out" => x.bytes_out.cmp(&y.bytes_out),
                "in" => x.bytes_in.cmp(&y.bytes_in),
                "packets" => x.packets().cmp(&y.packets()),
                "duration" => x.duration_ms().cmp(&y.duration_ms()),
                "last" => x.last_seen_ms.cmp(&y.last_seen_ms),
                _ => x.bytes().cmp(&y.bytes()),
            };
            if asc {
                o
            } else {
                o.reverse()
            }
        });
    }

    /// The filter as a query string (without sort), for links and exports.
    pub fn query(&self) -> String {
        let pairs = [
            ("ip", &self.ip),
            ("port", &self.port),
            ("host", &self.host),
            ("iface", &self.iface),
            ("len", &self.len),
            ("proto", &self.proto),
        ];
        pairs
            .iter()
            .filter_map(|(k, v)| nonempty(v).map(|v| format!("{k}={}", url_encode(v))))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn sortable_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn parse_len(s: &str) -> Option<(u64, u64)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => Some((s.parse().ok()?, u64::MAX)),
    }
}

fn parse_proto(s: &str) -> Option<u8> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "icmpv6" => Some(58),
        n => n.parse().ok(),
    }
}

/// The home location the arcs start from: the configured one, else the geo database's.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Home {
    pub lat: f64,
    pub lon: f64,
    /// False when no home location is configured (the arcs start at 0°, 0°).
    pub configured: bool,
}

fn home(state: &AppState) -> Home {
    match state.config.geo.home_location {
        Some((lat, lon)) => Home {
            lat,
            lon,
            configured: true,
        },
        None => Home {
            lat: 0.0,
            lon: 0.0,
            configured: false,
        },
    }
}

/// One map update: where home is and the flows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MapFeed {
    pub home: Home,
    /// False when no geo database is configured (every remote end is drawn at home).
    pub geo: bool,
    /// Capture sources, for the interface filter.
    pub sources: Vec<String>,
    pub flows: Vec<MapFlow>,
}

/// Every active flow (up to [`MAX_FLOWS`], largest first), enriched.
pub async fn map_flows(state: &AppState) -> Vec<MapFlow> {
    let hub = &state.traffic;
    let filter = FlowFilter {
        limit: MAX_FLOWS,
        sort: FlowSort::Bytes,
        ..FlowFilter::default()
    };
    let rows = hub.flows(&filter, QUERY_TIMEOUT).await;
    let mut devices = LocalDevices::new(&state.discovery, hub);
    rows.iter().map(|r| enrich(hub, &mut devices, r)).collect()
}

async fn feed(state: &AppState) -> MapFeed {
    MapFeed {
        home: home(state),
        geo: state.traffic.geo.get().is_some(),
        sources: state
            .traffic
            .status()
            .sources
            .into_iter()
            .map(|s| s.name)
            .collect(),
        flows: map_flows(state).await,
    }
}

/// Active flows with names, geo, ASN and the device guess, filtered and sorted.
#[utoipa::path(get, path = "/api/v1/traffic/map", tag = "traffic", params(MapFilter),
    responses((status = 200, body = MapFeed), (status = 400, body = super::api::ApiError)))]
pub async fn api_map(State(state): State<Arc<AppState>>, Query(f): Query<MapFilter>) -> Response {
    if let Err(e) = f.check() {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "bad_request", "message": e})),
        )
            .into_response();
    }
    let mut body = feed(&state).await;
    body.flows.retain(|x| f.matches(x));
    f.sort(&mut body.flows);
    Json(body).into_response()
}

/// What `gatewatch top --url` shows: the windows in progress merged (or, once every source
/// has ended, the closed ones still in memory), the last two minutes of rates and the slowest DNS
/// transactions.
#[utoipa::path(get, path = "/api/v1/traffic/top", tag = "traffic",
    responses((status = 200, body = crate::top::TopView)))]
pub async fn api_top(State(state): State<Arc<AppState>>) -> Json<crate::top::TopView> {
    let hub = &state.traffic;
    // Once every source has ended (a replay), the windows it left, merged: the whole file.
    let summary = hub.live_merged().unwrap_or_else(|| {
        let mut m = crate::model::TrafficSummary::default();
        for w in hub.recent_windows() {
            m.merge(&w);
        }
        m
    });
    let rates = hub
        .rate_history()
        .iter()
        .map(|r| crate::top::RateSample {
            t: r.t,
            pps: r.pps,
            bps: r.bps,
        })
        .collect();
    let status = hub.status();
    let mut view = crate::top::TopView::new(&summary, rates, hub.slow_dns());
    view.drops = status
        .sources
        .iter()
        .map(|s| s.dropped_kernel + s.dropped_interface)
        .sum();
    view.finished = !status.sources.is_empty()
        && status.sources.iter().all(|s| {
            !matches!(
                s.state,
                crate::sensor::SourceState::Running | crate::sensor::SourceState::Starting
            )
        });
    if view.source.is_empty() {
        view.source = status
            .sources
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(",");
    }
    Json(view)
}

/// The map's live feed: `event: flows` with a [`MapFeed`] every two seconds (the page
/// filters; a paused page ignores them).
pub async fn events(State(state): State<Arc<AppState>>) -> Response {
    let shutdown = state.shutdown.clone();
    let stream = futures_util::stream::unfold((true, state), move |(first, state)| {
        let shutdown = shutdown.clone();
        async move {
            if !first {
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(MAP_PERIOD) => {}
                }
            }
            let body = feed(&state).await;
            let data = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
            let ev: Result<Event, std::convert::Infallible> = Ok(Event::default().event("flows").data(data));
            Some((ev, (false, state)))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Dashboard extras for the traffic card: a text sparkline of the last minute's packet rate
/// (block characters, so the card's SSE updates it without a chart library), the top
/// country and the drops.
pub fn dashboard_fields(hub: &TrafficHub) -> Vec<(&'static str, String)> {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let history = hub.rate_history();
    let last: Vec<f64> = history.iter().rev().take(60).rev().map(|r| r.pps).collect();
    let max = last.iter().cloned().fold(0.0_f64, f64::max);
    let spark: String = if max <= 0.0 {
        "–".into()
    } else {
        last.iter()
            .map(|v| BARS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize])
            .collect()
    };
    let view = hub
        .live_merged()
        .or_else(|| hub.recent_windows().last().map(|w| (**w).clone()));
    let country = view
        .as_ref()
        .and_then(|v| {
            v.top
                .countries
                .first()
                .map(|e| format!("{} ({})", e.key, human_bytes(e.value)))
        })
        .unwrap_or_else(|| "–".into());
    let drops = hub.totals().4;
    vec![
        ("traffic_spark", spark),
        ("top_country", country),
        ("traffic_drops", drops.to_string()),
    ]
}

/// The sparkline line of the dashboard's traffic card, with links to the map and flows.
pub fn dashboard_spark(fields: &[(&'static str, String)]) -> Markup {
    let spark = fields
        .iter()
        .find(|(k, _)| *k == "traffic_spark")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    html! {
        p.spark title="packets per second, last minute" { span data-field="traffic_spark" { (spark) } }
        p.small { a href="/traffic/map" { "World map" } " · " a href="/traffic/flows" { "Flows" } }
    }
}

fn filter_form(action: &str, f: &MapFilter, with_sort: bool) -> Markup {
    let v = |x: &Option<String>| x.clone().unwrap_or_default();
    html! {
        form.row.filters #map-filters method="get" action=(action) {
            label { "IP " input type="text" name="ip" value=(v(&f.ip)) size="15" placeholder="address"; }
            label { "Port " input type="text" name="port" value=(v(&f.port)) size="5" inputmode="numeric"; }
            label { "Host " input type="text" name="host" value=(v(&f.host)) size="14" placeholder="name part"; }
            label { "Interface " input type="text" name="iface" value=(v(&f.iface)) size="8"; }
            label title="mean packet length in bytes: N (at least) or N-M" { "Pkt length " input type="text" name="len" value=(v(&f.len)) size="8" placeholder="N or N-M"; }
            label { "Protocol "
                select name="proto" {
                    @for (val, text) in [("", "any"), ("tcp", "TCP"), ("udp", "UDP"), ("icmp", "ICMP"), ("icmpv6", "ICMPv6")] {
                        option value=(val) selected[v(&f.proto) == val] { (text) }
                    }
                }
            }
            @if with_sort {
                @if let Some(s) = nonempty(&f.sort) { input type="hidden" name="sort" value=(s); }
                @if let Some(d) = nonempty(&f.dir) { input type="hidden" name="dir" value=(d); }
            }
            button type="submit" { "Filter" }
            a href=(action) { "Clear" }
        }
    }
}

/// `/traffic/map`: the canvas, legend, filters, pause and the side list; `static/map.js`
/// draws (without JavaScript the page links to the flows view).
pub async fn map_page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Query(f): Query<MapFilter>,
) -> Response {
    let h = home(&state);
    let content = html! {
        link rel="stylesheet" href=(super::assets::url("map.css"));
        nav.tabs aria-label="Traffic" {
            a href="/traffic" { "Overview" }
            a href="/traffic/map" aria-current="page" { "World map" }
            a href="/traffic/flows" { "Flows" }
        }
        @if !h.configured {
            p.notice.error role="status" { "No home location is set, so arcs start at 0°, 0°. Set " code { "geo.home_latitude" } " and " code { "geo.home_longitude" } "." }
        }
        @if state.traffic.geo.get().is_none() {
            p.notice.error role="status" { "No geo database is configured (" code { "geo.city_db" } "), so remote ends cannot be placed." }
        }
        (filter_form("/traffic/map", &f, false))
        div.mapwrap #flowmap
            data-world=(super::assets::url("world-110m.json"))
            data-world-detail=(super::assets::url("world-50m.json"))
            data-events="/events/traffic/map"
            data-home-lat=(h.lat) data-home-lon=(h.lon) {
            div.mapcanvas {
                canvas #map-canvas aria-label="World map of active flows" {}
                div.maptools {
                    button #map-pause type="button" aria-pressed="false" { "Pause" }
                    button #map-zoom-in type="button" aria-label="Zoom in" { "+" }
                    button #map-zoom-out type="button" aria-label="Zoom out" { "−" }
                    button #map-reset type="button" { "Reset" }
                    span #map-status.muted role="status" { "Loading…" }
                }
                ul.legend #map-legend {
                    @for k in DeviceKind::ALL {
                        li { span class=(format!("swatch dev-{}", k.key())) {} (k.label()) }
                    }
                }
            }
            aside.maplist {
                h2 { "Flows in view " span #map-count.muted {} }
                ol #map-list {}
                noscript { p { "The map needs JavaScript; the " a href="/traffic/flows" { "flows view" } " works without." } }
            }
            // Read by tests and tools: how many arcs are drawn, at which zoom.
            div #map-state hidden data-arcs="0" data-zoom="1" {}
        }
        script src=(super::assets::url("topojson-client.min.js")) defer {}
        script src=(super::assets::url("map.js")) defer {}
    };
    page(layout("Traffic map", Nav::Traffic, &who, None, content))
}

fn human_bytes(b: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

fn human_ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{}m {}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

const COLUMNS: [(&str, &str); 12] = [
    ("local", "Local"),
    ("remote", "Remote"),
    ("name", "Name"),
    ("country", "Where"),
    ("asn", "ASN"),
    ("proto", "Proto"),
    ("out", "Bytes out"),
    ("in", "Bytes in"),
    ("packets", "Packets out / in"),
    ("duration", "Duration"),
    ("last", "Last seen"),
    ("bytes", "Total"),
];

/// `/traffic/flows`: every active flow (and flows of replays that ended), sortable by any
/// column, with the map's filters and CSV/JSON export.
pub async fn flows_page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Query(f): Query<MapFilter>,
) -> Response {
    let error = f.check().err();
    let mut rows = if error.is_none() {
        map_flows(&state).await
    } else {
        Vec::new()
    };
    let total = rows.len();
    rows.retain(|x| f.matches(x));
    f.sort(&mut rows);
    let (col, asc) = f.sort_key();
    let q = f.query();
    let amp = if q.is_empty() {
        String::new()
    } else {
        format!("{q}&")
    };
    let content = html! {
        link rel="stylesheet" href=(super::assets::url("map.css"));
        nav.tabs aria-label="Traffic" {
            a href="/traffic" { "Overview" }
            a href="/traffic/map" { "World map" }
            a href="/traffic/flows" aria-current="page" { "Flows" }
        }
        (filter_form("/traffic/flows", &f, true))
        @if let Some(e) = &error { p.notice.error role="alert" { (e) } }
        section.card {
            p.muted {
                (rows.len()) " of " (total) " flows. Export: "
                a href=(format!("/traffic/flows.csv?{q}")) download { "CSV" } " · "
                a href=(format!("/traffic/flows.json?{q}")) download { "JSON" }
            }
            div.scroll {
                table.compact.flows #flows-table {
                    thead { tr {
                        @for (key, label) in COLUMNS {
                            @let now_asc = col == key && asc;
                            @let dir = if col == key && !asc { "asc" } else { "desc" };
                            th aria-sort=[(col == key).then_some(if now_asc { "ascending" } else { "descending" })] {
                                a href=(format!("/traffic/flows?{amp}sort={key}&dir={dir}")) { (label) }
                            }
                        }
                    } }
                    tbody {
                        @if rows.is_empty() { tr { td.muted colspan="12" { "No flow matches." } } }
                        @for r in &rows {
                            tr {
                                td.nowrap { code { (r.local) } @if r.local_port > 0 { ":" (r.local_port) } @if let Some(n) = &r.local_name { br; span.muted { (n) } } }
                                td.nowrap { code { (r.remote) } @if r.remote_port > 0 { ":" (r.remote_port) } }
                                td { (r.remote_name.as_deref().unwrap_or("")) }
                                td { @if r.remote_private { span.muted { "local" } } @else { (r.country.as_deref().unwrap_or("?")) @if let Some(c) = &r.city { " · " (c) } } }
                                td { @if let Some(a) = r.asn { "AS" (a) } @if let Some(o) = &r.as_org { br; span.muted { (o) } } }
                                td { (r.proto_name()) }
                                td.num { (human_bytes(r.bytes_out)) }
                                td.num { (human_bytes(r.bytes_in)) }
                                td.num { (r.packets_out) " / " (r.packets_in) }
                                td.num { (human_ms(r.duration_ms())) }
                                td.nowrap { (crate::model::Timestamp(r.last_seen_ms).to_string()) }
                                td.num { (human_bytes(r.bytes())) }
                            }
                        }
                    }
                }
            }
        }
    };
    page(layout("Flows", Nav::Traffic, &who, None, content))
}

const CSV_HEADER: &str = "source,proto,local,local_port,local_name,remote,remote_port,remote_name,remote_private,country,city,lat,lon,asn,as_org,device,bytes_out,bytes_in,packets_out,packets_in,first_seen_ms,last_seen_ms\n";

fn csv_row(f: &MapFlow) -> String {
    let o = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
    let n = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
        csv_field(&f.source),
        f.proto_name(),
        f.local,
        f.local_port,
        o(&f.local_name),
        f.remote,
        f.remote_port,
        o(&f.remote_name),
        f.remote_private,
        o(&f.country),
        o(&f.city),
        n(f.lat),
        n(f.lon),
        f.asn.map(|a| a.to_string()).unwrap_or_default(),
        o(&f.as_org),
        f.device.key(),
        f.bytes_out,
        f.bytes_in,
        f.packets_out,
        f.packets_in,
        f.first_seen_ms,
        f.last_seen_ms
    )
}

async fn export(state: Arc<AppState>, f: MapFilter, csv: bool) -> Response {
    if let Err(e) = f.check() {
        return (StatusCode::BAD_REQUEST, e).into_response();
    }
    let mut rows = map_flows(&state).await;
    rows.retain(|x| f.matches(x));
    f.sort(&mut rows);
    let (body, ctype, name) = if csv {
        let mut s = String::from(CSV_HEADER);
        rows.iter().for_each(|r| s.push_str(&csv_row(r)));
        (s, "text/csv; charset=utf-8", "flows.csv")
    } else {
        let s = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into());
        (s, "application/json", "flows.json")
    };
    (
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

pub async fn export_csv(State(state): State<Arc<AppState>>, Query(f): Query<MapFilter>) -> Response {
    export(state, f, true).await
}

pub async fn export_json(State(state): State<Arc<AppState>>, Query(f): Query<MapFilter>) -> Response {
    export(state, f, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(
        local: &str,
        lport: u16,
        remote: &str,
        rport: u16,
        proto: u8,
        bytes: u64,
        packets: u64,
    ) -> MapFlow {
        MapFlow {
            source: "eth0".into(),
            proto,
            local: local.into(),
            local_port: lport,
            local_name: Some("Annas-iPhone.lan".into()),
            remote: remote.into(),
            remote_port: rport,
            remote_name: Some("maps.google.com".into()),
            remote_private: false,
            country: None,
            country_name: None,
            city: None,
            lat: None,
            lon: None,
            asn: None,
            as_org: None,
            device: DeviceKind::Iphone,
            device_hints: DeviceHints::default(),
            bytes_out: bytes / 2,
            bytes_in: bytes - bytes / 2,
            packets_out: packets / 2,
            packets_in: packets - packets / 2,
            first_seen_ms: 0,
            last_seen_ms: 10,
        }
    }

    #[test]
    fn each_filter_narrows_and_bad_values_are_refused() {
        let flows = [
            flow("192.168.1.10", 50000, "81.2.69.142", 443, 6, 9000, 10),
            flow("192.168.1.11", 50001, "89.160.20.112", 53, 17, 200, 2),
            flow("192.168.1.10", 50002, "216.160.83.56", 0, 1, 84, 1),
        ];
        let count = |f: &MapFilter| flows.iter().filter(|x| f.matches(x)).count();
        assert_eq!(count(&MapFilter::default()), 3);
        let set = |g: fn(&mut MapFilter)| {
            let mut f = MapFilter::default();
            g(&mut f);
            count(&f)
        };
        assert_eq!(set(|f| f.ip = Some("192.168.1.10".into())), 2);
        assert_eq!(set(|f| f.port = Some("53".into())), 1);
        assert_eq!(set(|f| f.host = Some("MAPS".into())), 3);
        assert_eq!(set(|f| f.host = Some("nothing".into())), 0);
        assert_eq!(set(|f| f.iface = Some("wlan0".into())), 0);
        assert_eq!(set(|f| f.len = Some("500".into())), 1);
        assert_eq!(set(|f| f.len = Some("80-100".into())), 2);
        assert_eq!(set(|f| f.proto = Some("udp".into())), 1);
        assert_eq!(set(|f| f.proto = Some("1".into())), 1);
        for bad in [
            MapFilter {
                port: Some("http".into()),
                ..Default::default()
            },
            MapFilter {
                len: Some("9-3".into()),
                ..Default::default()
            },
            MapFilter {
                proto: Some("sctp".into()),
                ..Default::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sorting_and_csv_are_safe() {
        let mut rows = vec![
            flow("192.168.1.10", 1, "81.2.69.142", 443, 6, 100, 1),
            flow("192.168.1.10", 2, "10.0.0.1", 53, 17, 900, 3),
        ];
        let f = MapFilter {
            sort: Some("remote".into()),
            dir: Some("asc".into()),
            ..Default::default()
        };
        f.sort(&mut rows);
        assert_eq!(rows[0].remote, "10.0.0.1");
        MapFilter::default().sort(&mut rows);
        assert_eq!(rows[0].bytes(), 900);
        rows[0].remote_name = Some("=cmd,\"x\"".into());
        let line = csv_row(&rows[0]);
        assert!(line.contains("\"'=cmd,\"\"x\"\"\""), "{line}");
        assert_eq!(line.matches(',').count(), CSV_HEADER.matches(',').count() + 1);
    }
}
