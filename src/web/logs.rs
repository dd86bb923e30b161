//! The Logs section: the `/logs` page (receiver status, search with facets and a pass/block
//! chart, results, live tail, setup help), CSV/JSON export of a search, the live tail over
//! SSE, and the `/api/v1/logs/*` JSON routes.
//!
//! Must not: parse lines or touch LMDB keys: it turns request parameters into a
//! [`LogQuery`] and asks the store; facets come from [`crate::logs::stats`].

use super::api::ApiError;
use super::pages::admin::{format_cursor, parse_cursor};
use super::pages::{csv_field, layout, page, url_encode, Nav};
use super::AppState;
use crate::accounts::Principal;
use crate::logs::stats::{LogStats, StatsBuilder};
use crate::model::{LogQuery, QueryError, RawLogQuery, StoredLog, Timestamp};
use crate::store::{LogPage, TimeKey};
use crate::syslog::{ListenerStatus, SyslogCounters};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// Rows on one page of results.
const PAGE_ROWS: usize = 100;
/// Candidates one page or stats request may look at (bounds free-text scans).
const MAX_SCAN: u64 = 500_000;
/// Default and largest export.
const EXPORT_DEFAULT_ROWS: usize = 10_000;
const EXPORT_MAX_ROWS: usize = 100_000;
/// Rows per live-tail event; a burst beyond it is summarised as "n more".
const TAIL_ROWS_PER_EVENT: usize = 200;
/// Time series points in the chart.
const CHART_BUCKETS: usize = 60;

/// Paging and export parameters next to the search fields.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Cursor from a previous page's `next`.
    pub before: Option<String>,
    /// Rows per page (1 to 1000; default 100) or per export (default 10000, at most 100000).
    pub limit: Option<usize>,
}

/// One stored line, flattened for tables, the tail and the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogRow {
    /// Cursor of this line (`millis-seq`).
    pub id: String,
    /// Receive time, RFC 3339.
    pub received: String,
    pub sender: String,
    pub transport: String,
    pub host: Option<String>,
    pub app: Option<String>,
    pub facility: String,
    pub severity: String,
    pub action: Option<String>,
    pub protocol: Option<String>,
    pub interface: Option<String>,
    pub src: Option<String>,
    pub src_port: Option<u16>,
    pub dst: Option<String>,
    pub dst_port: Option<u16>,
    pub message: String,
    pub truncated: bool,
    /// The inventory host with the source address, if any.
    pub src_host: Option<HostLink>,
    /// The inventory host with the destination address, if any.
    pub dst_host: Option<HostLink>,
    /// The whole parsed event (syslog header, firewall/DHCP/auth fields), as `parse-log` prints it.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

impl LogRow {
    pub fn new(key: &TimeKey, log: &StoredLog, with_event: bool) -> LogRow {
        let h = &log.event.syslog;
        let fw = log.event.firewall.as_ref();
        let auth = log.event.auth.as_ref();
        LogRow {
            id: format_cursor(key),
            received: rfc3339_millis(log.received),
            sender: log.sender.to_string(),
            transport: log.transport.as_str().into(),
            host: h.hostname.clone(),
            app: h.app_name.clone(),
            facility: h.facility.as_str().into(),
            severity: h.severity.as_str().into(),
            action: fw.and_then(|f| f.action).map(|a| a.as_str().into()),
            protocol: fw.and_then(|f| f.protocol.clone()),
            interface: fw.and_then(|f| f.interface.clone()),
            src: fw
                .and_then(|f| f.src)
                .or(auth.and_then(|a| a.src))
                .or(log.event.dhcp.as_ref().and_then(|d| d.ip))
                .map(|ip| ip.to_string()),
            src_port: fw.and_then(|f| f.src_port).or(auth.and_then(|a| a.src_port)),
            dst: fw.and_then(|f| f.dst).map(|ip| ip.to_string()),
            dst_port: fw.and_then(|f| f.dst_port),
            message: h.message.clone(),
            truncated: log.event.truncated,
            src_host: None,
            dst_host: None,
            event: if with_event {
                serde_json::to_value(&log.event).unwrap_or_default()
            } else {
                serde_json::Value::Null
            },
        }
    }
}

/// An inventory host a line's address belongs to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostLink {
    /// The host's id: its page is `/hosts/{id}`.
    pub id: u64,
    /// Its name, or its address when it has none.
    pub label: String,
}

impl LogRow {
    /// Fills `src_host` and `dst_host` from the inventory.
    pub fn link_hosts(mut self, d: &crate::discovery_service::Discovery) -> LogRow {
        let find = |ip: &Option<String>| {
            let ip = ip.as_deref()?.parse().ok()?;
            d.host_by_ip(ip).map(|h| HostLink {
                id: h.id,
                label: h.label(),
            })
        };
        self.src_host = find(&self.src);
        self.dst_host = find(&self.dst);
        self
    }
}

fn rfc3339_millis(t: Timestamp) -> String {
    let st = std::time::UNIX_EPOCH + Duration::from_millis(t.0);
    humantime::format_rfc3339_millis(st).to_string()
}

/// The query string of a search (for links: next page, export, tail).
fn query_string(raw: &RawLogQuery) -> String {
    serde_urlencoded::to_string(raw)
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.ends_with('='))
        .collect::<Vec<_>>()
        .join("&")
}

fn with_param(qs: &str, extra: &str) -> String {
    match (qs.is_empty(), extra.is_empty()) {
        (true, _) => extra.to_string(),
        (_, true) => qs.to_string(),
        _ => format!("{qs}&{extra}"),
    }
}

fn bad_query(e: QueryError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid", &e.to_string())
}

fn parse_before(p: &Paging) -> Result<Option<TimeKey>, ApiError> {
    match p.before.as_deref() {
        None | Some("") => Ok(None),
        Some(c) => parse_cursor(c).map(Some).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "before must be a cursor from a previous page's next",
            )
        }),
    }
}

async fn search(
    state: &Arc<AppState>,
    q: LogQuery,
    before: Option<TimeKey>,
    limit: usize,
) -> Result<LogPage, ApiError> {
    let store = state.accounts.store().clone();
    tokio::task::spawn_blocking(move || store.search_logs(&q, before, limit, MAX_SCAN))
        .await
        .map_err(|_| ApiError::internal("search task failed"))?
        .map_err(|e| ApiError::internal(&e.to_string()))
}

/// Stats over the query's range; without `from`, the last 24 hours.
async fn stats(state: &Arc<AppState>, mut q: LogQuery, now: Timestamp) -> Result<LogStats, ApiError> {
    let to = q.to.unwrap_or(Timestamp(now.0 + 1));
    let from = q.from.unwrap_or(to.saturating_sub(Duration::from_secs(86_400)));
    q.from = Some(from);
    q.to = Some(to);
    let store = state.accounts.store().clone();
    let geo = state.traffic.geo.get().cloned();
    tokio::task::spawn_blocking(move || {
        let mut b = StatsBuilder::new(from, to, CHART_BUCKETS);
        let (_, limited) = store.scan_logs(&q, None, MAX_SCAN, |_, log| {
            b.add(&log);
            true
        })?;
        let country_of = |ip| {
            let g = geo.as_ref()?.lookup(ip);
            let iso = g.country_iso.as_deref()?.to_string();
            let name = g.country_name.as_deref().unwrap_or(&iso).to_string();
            Some((iso, name))
        };
        let country_of: Option<crate::logs::stats::CountryOf<'_>> = geo.is_some().then_some(&country_of);
        Ok::<_, crate::store::StoreError>(b.finish(10, limited, country_of))
    })
    .await
    .map_err(|_| ApiError::internal("stats task failed"))?
    .map_err(|e| ApiError::internal(&e.to_string()))
}

// ---- API ----

/// A page of search results, newest first.
#[derive(Serialize, ToSchema)]
pub struct LogSearchPage {
    pub entries: Vec<LogRow>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<String>,
    /// Stored lines looked at.
    pub scanned: u64,
    /// The search stopped at its scan limit; narrow it (time range, IP, port) to see older lines.
    pub scan_limited: bool,
}

/// Search received syslog and firewall lines.
#[utoipa::path(get, path = "/api/v1/logs/search", tag = "logs", params(RawLogQuery, Paging),
    responses((status = 200, body = LogSearchPage), (status = 400, body = ApiError)))]
pub async fn api_search(
    State(state): State<Arc<AppState>>,
    Query(raw): Query<RawLogQuery>,
    Query(paging): Query<Paging>,
) -> Result<Json<LogSearchPage>, ApiError> {
    let q = LogQuery::parse(&raw, state.now()).map_err(bad_query)?;
    let before = parse_before(&paging)?;
    let limit = paging.limit.unwrap_or(PAGE_ROWS).clamp(1, 1000);
    let page = search(&state, q, before, limit).await?;
    Ok(Json(LogSearchPage {
        entries: page
            .entries
            .iter()
            .map(|(k, l)| LogRow::new(k, l, true).link_hosts(&state.discovery))
            .collect(),
        next: page.next.as_ref().map(format_cursor),
        scanned: page.scanned,
        scan_limited: page.scan_limited,
    }))
}

/// Facets (top blocked sources and ports, interfaces, hosts), pass/block counts and a time
/// series for a search; without `from`, over the last 24 hours.
#[utoipa::path(get, path = "/api/v1/logs/stats", tag = "logs", params(RawLogQuery),
    responses((status = 200, body = LogStats), (status = 400, body = ApiError)))]
pub async fn api_stats(
    State(state): State<Arc<AppState>>,
    Query(raw): Query<RawLogQuery>,
) -> Result<Json<LogStats>, ApiError> {
    let now = state.now();
    let q = LogQuery::parse(&raw, now).map_err(bad_query)?;
    Ok(Json(stats(&state, q, now).await?))
}

// ---- live tail ----

/// Server-Sent Events: every newly stored line matching the search, as `event: logs` with a
/// JSON body `{"rows": [LogRow…], "more": n}` (n lines of the burst not sent).
pub async fn tail(State(state): State<Arc<AppState>>, Query(raw): Query<RawLogQuery>) -> Response {
    let q = match LogQuery::parse(&raw, state.now()) {
        Ok(mut q) => {
            // A tail is about what arrives from now on.
            q.from = None;
            q.to = None;
            q
        }
        Err(e) => return bad_query(e).into_response(),
    };
    let rx = state.logs.tail.subscribe();
    let shutdown = state.shutdown.clone();
    let discovery = state.discovery.clone();
    let events = super::sse::broadcast_events(rx, shutdown, move |batch: Arc<Vec<StoredLog>>| {
        let mut rows = Vec::new();
        let mut more = 0usize;
        for (i, log) in batch.iter().enumerate().rev() {
            if !q.matches(log) {
                continue;
            }
            if rows.len() == TAIL_ROWS_PER_EVENT {
                more += 1;
                continue;
            }
            let key = TimeKey {
                at: log.received,
                seq: i as u32,
            };
            rows.push(LogRow::new(&key, log, false).link_hosts(&discovery));
        }
        if rows.is_empty() {
            return None;
        }
        rows.reverse();
        let body = serde_json::json!({ "rows": rows, "more": more });
        Some(Event::default().event("logs").data(body.to_string()))
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

// ---- export ----

pub async fn export_csv(
    state: State<Arc<AppState>>,
    raw: Query<RawLogQuery>,
    paging: Query<Paging>,
) -> Response {
    export(state, raw, paging, ExportFormat::Csv).await
}

pub async fn export_json(
    state: State<Arc<AppState>>,
    raw: Query<RawLogQuery>,
    paging: Query<Paging>,
) -> Response {
    export(state, raw, paging, ExportFormat::Json).await
}

#[derive(Clone, Copy)]
enum ExportFormat {
    Csv,
    /// One JSON object per line (NDJSON): streams, and `jq` reads it.
    Json,
}

const CSV_HEADER: &str =
    "received,sender,host,app,facility,severity,action,protocol,interface,src,src_port,dst,dst_port,truncated,message\n";

fn csv_line(r: &LogRow) -> String {
    let opt = |o: &Option<String>| csv_field(o.as_deref().unwrap_or(""));
    let port = |p: Option<u16>| p.map(|p| p.to_string()).unwrap_or_default();
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
        r.received,
        r.sender,
        opt(&r.host),
        opt(&r.app),
        r.facility,
        r.severity,
        opt(&r.action),
        opt(&r.protocol),
        opt(&r.interface),
        opt(&r.src),
        port(r.src_port),
        opt(&r.dst),
        port(r.dst_port),
        r.truncated,
        csv_field(&r.message),
    )
}

async fn export(
    State(state): State<Arc<AppState>>,
    Query(raw): Query<RawLogQuery>,
    Query(paging): Query<Paging>,
    format: ExportFormat,
) -> Response {
    let q = match LogQuery::parse(&raw, state.now()) {
        Ok(q) => q,
        Err(e) => return bad_query(e).into_response(),
    };
    let before = match parse_before(&paging) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let max_rows = paging
        .limit
        .unwrap_or(EXPORT_DEFAULT_ROWS)
        .clamp(1, EXPORT_MAX_ROWS);
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    let store = state.accounts.store().clone();
    tokio::task::spawn_blocking(move || {
        if matches!(format, ExportFormat::Csv) && tx.blocking_send(CSV_HEADER.to_string()).is_err() {
            return;
        }
        let mut cursor = before;
        let mut sent = 0usize;
        while sent < max_rows {
            let want = (max_rows - sent).min(1000);
            let Ok(page) = store.search_logs(&q, cursor, want, MAX_SCAN) else {
                return;
            };
            let mut chunk = String::new();
            for (k, log) in &page.entries {
                let row = LogRow::new(k, log, matches!(format, ExportFormat::Json));
                match format {
                    ExportFormat::Csv => chunk.push_str(&csv_line(&row)),
                    ExportFormat::Json => {
                        chunk.push_str(&serde_json::to_string(&row).unwrap_or_default());
                        chunk.push('\n');
                    }
                }
            }
            sent += page.entries.len();
            if tx.blocking_send(chunk).is_err() {
                return;
            }
            match page.next {
                Some(n) => cursor = Some(n),
                None => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    let (ctype, name) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "gatewatch-logs.csv"),
        ExportFormat::Json => ("application/x-ndjson", "gatewatch-logs.ndjson"),
    };
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ctype));
    if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

// ---- the page ----

pub async fn logs_page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Query(raw): Query<RawLogQuery>,
    Query(paging): Query<Paging>,
) -> Response {
    let now = state.now();
    let qs = query_string(&raw);
    let parsed = LogQuery::parse(&raw, now);
    let mut notice = None;
    let (results, facets) = match parsed {
        Err(e) => {
            notice = Some(super::pages::Notice::Error(format!("Search: {e}")));
            (None, None)
        }
        Ok(q) => {
            let before = parse_before(&paging).ok().flatten();
            let page = search(&state, q.clone(), before, PAGE_ROWS).await;
            let st = stats(&state, q, now).await;
            (page.ok(), st.ok())
        }
    };
    let content = html! {
        link rel="stylesheet" href=(super::assets::url("uPlot.min.css"));
        script src=(super::assets::url("uPlot.iife.min.js")) defer {}
        script src=(super::assets::url("logs.js")) defer {}
        (status_card(&state))
        (search_form(&raw))
        @if let Some(s) = &facets { (facets_card(s, &raw)) }
        (tail_card(&qs))
        @if let Some(p) = &results { (results_card(p, &qs, &state.discovery)) }
        (setup_help(&state.logs.listener_status()))
    };
    let mut resp = page(layout("Logs", Nav::Logs, &who, notice, content));
    if results.is_none() {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

fn status_card(state: &AppState) -> Markup {
    let c = &state.logs.counters;
    let g = SyslogCounters::get;
    let listeners = state.logs.listener_status();
    html! {
        section.card {
            h2 { "Receiver" }
            @if listeners.is_empty() {
                p.muted { "The syslog receiver is not running on this instance (syslog.enabled is false, or it runs inside a test harness)." }
            } @else {
                ul.plain {
                    @for l in &listeners {
                        li {
                            strong { (l.transport.as_str().to_uppercase()) } " "
                            @match &l.result {
                                Ok(a) => span { "listening on " code { (a) } },
                                Err(e) => span.error { (e) },
                            }
                        }
                    }
                }
            }
            dl.facts {
                @for (label, v) in [
                    ("Received", &c.received), ("Stored", &c.flushed), ("Rejected (unparsable)", &c.rejected),
                    ("Refused (sender not allowed)", &c.not_allowed), ("Rate-limited", &c.rate_limited),
                    ("UDP lost in the kernel", &c.udp_overflows), ("Truncated", &c.truncated),
                ] {
                    div.fact { dt { (label) } dd { (g(v)) } }
                }
            }
        }
    }
}

fn search_form(raw: &RawLogQuery) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    html! {
        section.card {
            h2 { "Search" }
            form.logsearch method="get" action="/logs" {
                label { "IP or CIDR" input type="text" name="ip" value=(v(&raw.ip)) placeholder="192.168.1.20 or 10.0.0.0/8"; }
                label { "Port" input type="text" name="port" inputmode="numeric" value=(v(&raw.port)) placeholder="22"; }
                label { "Protocol" input type="text" name="protocol" value=(v(&raw.protocol)) placeholder="tcp"; }
                label { "Action"
                    select name="action" {
                        @for (val, label) in [("", "any"), ("block", "block"), ("pass", "pass"), ("reject", "reject")] {
                            option value=(val) selected[raw.action.as_deref().unwrap_or("") == val] { (label) }
                        }
                    }
                }
                label { "Interface" input type="text" name="interface" value=(v(&raw.interface)) placeholder="igb0, br-lan"; }
                label { "Host" input type="text" name="host" value=(v(&raw.host)) placeholder="hostname or sender address"; }
                label.wide { "Text" input type="search" name="q" value=(v(&raw.q)) placeholder="words in the message"; }
                label { "From" input type="text" name="from" value=(v(&raw.from)) placeholder="1h, 24h, 7d or RFC 3339"; }
                label { "To" input type="text" name="to" value=(v(&raw.to)) placeholder="RFC 3339"; }
                div.actions {
                    button type="submit" { "Search" }
                    a href="/logs" { "Clear" }
                }
            }
        }
    }
}

fn facet_list(title: &str, items: &[crate::logs::stats::Count], link: impl Fn(&str) -> String) -> Markup {
    html! {
        div.facet {
            h3 { (title) }
            @if items.is_empty() {
                p.muted { "none" }
            } @else {
                ol {
                    @for c in items {
                        li { a href=(link(&c.value)) { (c.value) } " " span.count { (c.count) } }
                    }
                }
            }
        }
    }
}

fn facets_card(s: &LogStats, raw: &RawLogQuery) -> Markup {
    let series: Vec<[u64; 3]> = s.series.iter().map(|p| [p.at / 1000, p.pass, p.block]).collect();
    let chart = serde_json::to_string(&series).unwrap_or_default();
    let refine = |field: &str, value: &str| {
        let mut r = raw.clone();
        match field {
            "ip" => r.ip = Some(value.into()),
            "port" => r.port = Some(value.into()),
            "interface" => r.interface = Some(value.into()),
            _ => r.host = Some(value.into()),
        }
        if field != "host" {
            r.action = Some("block".into());
        }
        format!("/logs?{}", query_string(&r))
    };
    html! {
        section.card {
            h2 { "Overview" }
            p.muted {
                (s.total) " lines in the range · " (s.firewall) " firewall decisions: "
                span.pass { (s.pass) " passed" } ", " span.block { (s.block) " blocked" }
                @if s.scan_limited { " · counted the newest " (MAX_SCAN) " lines only" }
            }
            div.logchart data-series=(chart) data-bucket=(s.bucket_ms / 1000) role="img" aria-label="Passed and blocked per time bucket" {}
            div.facets {
                (facet_list("Top blocked sources", &s.top_blocked_sources, |v| refine("ip", v)))
                (facet_list("Top blocked destination ports", &s.top_blocked_ports, |v| refine("port", v)))
                (facet_list("By interface", &s.by_interface, |v| refine("interface", v)))
                (facet_list("By host", &s.by_host, |v| refine("host", v)))
            }
            @match &s.by_country {
                Some(c) => div.facets { (country_facet(c)) },
                None => p.muted.small { "By country: set " code { "geo.city_db" } " to a GeoLite2 City or Country database (.mmdb) to see where blocked sources come from." },
            }
        }
    }
}

fn country_facet(items: &[crate::logs::stats::CountryCount]) -> Markup {
    html! {
        div.facet.countries {
            h3 { "Blocked sources by country" }
            @if items.is_empty() {
                p.muted { "none (private and local sources are not counted)" }
            } @else {
                ol {
                    @for c in items {
                        li {
                            @if let Some(iso) = &c.iso { span.cc { (iso) } " " }
                            (c.name) " " span.count { (c.count) }
                        }
                    }
                }
            }
        }
    }
}

fn tail_card(qs: &str) -> Markup {
    html! {
        section.card.tail data-tail=(format!("/events/logs?{qs}")) {
            h2 { "Live tail" }
            div.tailbar {
                button type="button" data-tail-toggle aria-pressed="false" { "Pause" }
                label { "Highlight " input type="search" data-tail-highlight placeholder="IP, word…"; }
                span.muted data-tail-status { "Needs JavaScript; shows new lines matching the search as they arrive." }
            }
            div.scroll {
                table.logs {
                    thead { tr { th { "Received" } th { "Host" } th { "Action" } th { "Source" } th { "Destination" } th { "Message" } } }
                    tbody data-tail-rows {}
                }
            }
        }
    }
}

/// The flows view filtered to an address (and port): the traffic engine's flows of it.
pub fn flows_url(ip: &str, port: Option<u16>) -> String {
    let port = port.map(|p| format!("&port={p}")).unwrap_or_default();
    format!("/traffic/flows?ip={}{port}", url_encode(ip))
}

/// Where an address links: its history here (the address), its inventory host (when
/// known), and the traffic view's flows of it.
fn addr_links(ip: &Option<String>, port: Option<u16>, host: &Option<HostLink>) -> Markup {
    html! {
        @if let Some(ip) = ip {
            a href=(format!("/logs?ip={}", url_encode(ip))) title="History of this address" { (ip) }
            @if let Some(p) = port { ":" a href=(format!("/logs?port={p}")) title="Lines with this port" { (p) } }
            @if let Some(h) = host {
                br;
                a.host href=(format!("/hosts/{}", h.id)) title="This address's host in the inventory" { (h.label) }
            }
            " "
            a.small href=(flows_url(ip, port)) title="Flows of this address and port" { "flows" }
        }
    }
}

fn results_card(p: &LogPage, qs: &str, discovery: &crate::discovery_service::Discovery) -> Markup {
    html! {
        section.card {
            h2 { "Results" }
            p.muted {
                @if p.entries.is_empty() { "No stored line matches. " } @else { "Newest first. " }
                "Export: "
                a href=(format!("/logs/export.csv?{qs}")) { "CSV" } " · "
                a href=(format!("/logs/export.json?{qs}")) { "JSON" }
                " (up to " (EXPORT_DEFAULT_ROWS) " lines)"
            }
            @if !p.entries.is_empty() {
                div.scroll {
                    table.logs {
                        thead { tr { th { "Received" } th { "Host" } th { "Action" } th { "Source" } th { "Destination" } th { "Message" } } }
                        tbody {
                            @for (k, log) in &p.entries {
                                @let r = LogRow::new(k, log, false).link_hosts(discovery);
                                tr {
                                    td.nowrap { time datetime=(r.received) { (r.received.get(11..19).unwrap_or(&r.received)) } br; span.muted.small { (r.received.get(..10).unwrap_or("")) } }
                                    td { (r.host.clone().unwrap_or_else(|| r.sender.clone())) @if let Some(a) = &r.app { br; span.muted.small { (a) } } }
                                    td { @if let Some(a) = &r.action { span class=(format!("badge {a}")) { (a) } } @if let Some(p) = &r.protocol { " " span.small { (p) } } }
                                    td { (addr_links(&r.src, r.src_port, &r.src_host)) }
                                    td { (addr_links(&r.dst, r.dst_port, &r.dst_host)) }
                                    td.msg { (r.message) @if r.truncated { " " span.badge { "truncated" } } }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = &p.next {
                p { a href=(format!("/logs?{}", with_param(qs, &format!("before={}", format_cursor(next))))) { "Older →" } }
            }
            @if p.scan_limited { p.muted { "The search stopped after " (p.scanned) " lines; narrow the time range or add an IP, port or host." } }
        }
    }
}

/// How to point each platform at this receiver. The same text is in README.md.
pub fn setup_help(listeners: &[ListenerStatus]) -> Markup {
    let port = |t: crate::model::Transport, default: u16| {
        listeners
            .iter()
            .find(|l| l.transport == t)
            .and_then(|l| l.result.as_ref().ok())
            .map(|a| a.port())
            .unwrap_or(default)
    };
    let udp = port(crate::model::Transport::Udp, 5514);
    let tcp = port(crate::model::Transport::Tcp, 5514);
    let tls = port(crate::model::Transport::Tls, 6514);
    html! {
        section.card.setup #setup {
            h2 { "Send logs here" }
            p { "Replace " code { "GATEWATCH_IP" } " with this machine's LAN address. Senders must be in "
                code { "syslog.allowed_senders" } " (by default loopback and private ranges). When gatewatch runs on the firewall itself, use "
                code { "127.0.0.1" } "." }
            details {
                summary { "pfSense" }
                ol {
                    li { "Status → System Logs → Settings." }
                    li { "General Logging Options: Log Message Format " strong { "syslog (RFC 5424)" } " (keeps the year and time zone)." }
                    li { "Remote Logging Options: tick " strong { "Send log messages to remote syslog server" } ", Source Address " em { "LAN" } " (or " em { "Localhost" } " when gatewatch runs on the pfSense box), IP Protocol IPv4." }
                    li { "Remote log servers: " code { (format!("GATEWATCH_IP:{udp}")) } " (pfSense sends UDP; on the box itself: " code { (format!("127.0.0.1:{udp}")) } ")." }
                    li { "Remote Syslog Contents: " strong { "Firewall Events" } " (add DHCP and System events if you want them). Save." }
                }
            }
            details {
                summary { "OPNsense" }
                ol {
                    li { "System → Settings → Logging → Remote, press +." }
                    li { "Transport " strong { "TCP(4)" } " (or UDP(4), or TLS(4) on port " (tls) "), Applications: leave empty for all or pick " em { "filter (filterlog)" } ", " em { "dhcpd" } ", " em { "sshd" } "." }
                    li { "Hostname " code { "GATEWATCH_IP" } " (on the box itself " code { "127.0.0.1" } "), Port " code { (tcp) } ", tick " strong { "rfc5424" } ". Save, Apply." }
                    li { "Firewall rules log only when their " em { "Log packets" } " box is ticked (and the default block rules under Firewall → Settings → Logging)." }
                }
            }
            details {
                summary { "OpenWrt" }
                p { "logd forwards everything it logs (firewall lines included):" }
                pre { code { (format!("uci set system.@system[0].log_ip='GATEWATCH_IP'\nuci set system.@system[0].log_port='{tcp}'\nuci set system.@system[0].log_proto='tcp'\nuci commit system\n/etc/init.d/log restart")) } }
                p { "Use " code { "log_proto='udp'" } " for UDP. On the router itself use " code { "log_ip='127.0.0.1'" } ". Firewall (fw4/fw3) lines appear when a zone or rule logs: "
                    code { "uci set firewall.@zone[1].log='1'; uci commit firewall; /etc/init.d/firewall reload" } " (zone 1 is usually wan)." }
            }
            details {
                summary { "UniFi" }
                ol {
                    li { "UniFi Network → Settings → Control Plane → Integrations (older versions: Settings → System → Advanced) → " strong { "Activity Logging (Syslog)" } " / " em { "SIEM Server" } "." }
                    li { "Server address " code { "GATEWATCH_IP" } ", port " code { (udp) } " (UniFi sends UDP). Tick the categories you want, including " em { "Firewall" } " / " em { "Security Detections" } "." }
                    li { "Firewall rules log only with " em { "Syslog Logging" } " enabled on the rule (Settings → Security → Firewall Rules, or the zone policy's Logging)." }
                }
            }
            details {
                summary { "rsyslog (any Linux box)" }
                p { "Put this in " code { "/etc/rsyslog.d/90-gatewatch.conf" } " and " code { "systemctl restart rsyslog" } "; the disk queue keeps lines while gatewatch restarts:" }
                pre { code { (format!("*.* action(type=\"omfwd\" target=\"GATEWATCH_IP\" port=\"{tcp}\" protocol=\"tcp\"\n       TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\"\n       queue.type=\"LinkedList\" queue.filename=\"gatewatch\" queue.saveOnShutdown=\"on\"\n       action.resumeRetryCount=\"-1\")")) } }
                p { "For TLS (port " (tls) "), install rsyslog-gnutls and add " code { "StreamDriver=\"gtls\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"anon\"" } " with " code { (format!("port=\"{tls}\"")) } " (or " code { "x509/name" } " with gatewatch's certificate as CA)." }
            }
        }
    }
}

// ---- a host's firewall events (host page) ----

/// Firewall lines shown on a host page.
pub const HOST_EVENT_ROWS: usize = 10;
/// Stored lines about the host's addresses looked at to find them.
const HOST_EVENT_SCAN: u64 = 20_000;

/// The newest `limit` firewall lines about any of `ips`, newest first. A store error shows
/// as no lines (the page still renders; the Logs link is next to the table).
pub fn recent_firewall_events(
    store: &crate::store::Store,
    ips: &[std::net::IpAddr],
    limit: usize,
) -> Vec<(TimeKey, StoredLog)> {
    let mut all = Vec::new();
    for ip in ips {
        let q = LogQuery {
            ip: Some(ipnet::IpNet::from(*ip)),
            ..Default::default()
        };
        let mut found = Vec::new();
        let scanned = store.scan_logs(&q, None, HOST_EVENT_SCAN, |k, log| {
            if log.event.firewall.is_some() {
                found.push((*k, log));
            }
            found.len() < limit
        });
        if let Err(e) = scanned {
            tracing::warn!(error = %e, "cannot read firewall lines for a host page");
        }
        all.extend(found);
    }
    all.sort_by_key(|e| std::cmp::Reverse(e.0));
    all.dedup_by(|a, b| a.0 == b.0);
    all.truncate(limit);
    all
}

/// The host page's card: its recent firewall lines, with links to its full history.
pub fn host_events_card(entries: &[(TimeKey, StoredLog)], ips: &[std::net::IpAddr]) -> Markup {
    html! {
        section.card.host-firewall {
            h2 { "Firewall events" }
            @if entries.is_empty() {
                p.muted { "No stored firewall line mentions this host's addresses." }
            } @else {
                div.scroll {
                    table.logs.compact {
                        thead { tr { th { "Received" } th { "Action" } th { "Interface" } th { "Source" } th { "Destination" } } }
                        tbody {
                            @for (k, log) in entries {
                                @let r = LogRow::new(k, log, false);
                                tr {
                                    td.nowrap { time datetime=(r.received) { (r.received.get(..19).unwrap_or(&r.received).replace('T', " ")) } }
                                    td { @if let Some(a) = &r.action { span class=(format!("badge {a}")) { (a) } } @if let Some(p) = &r.protocol { " " span.small { (p) } } }
                                    td { (r.interface.clone().unwrap_or_default()) }
                                    td.nowrap { (endpoint(&r.src, r.src_port)) }
                                    td.nowrap { (endpoint(&r.dst, r.dst_port)) }
                                }
                            }
                        }
                    }
                }
            }
            p.links {
                @for (i, ip) in ips.iter().enumerate() {
                    @if i > 0 { " · " }
                    a href=(format!("/logs?ip={}", url_encode(&ip.to_string()))) { "All log lines of " (ip) " →" }
                }
            }
        }
    }
}

fn endpoint(ip: &Option<String>, port: Option<u16>) -> Markup {
    html! {
        @if let Some(ip) = ip {
            a href=(format!("/logs?ip={}", url_encode(ip))) title="History of this address" { (ip) }
            @if let Some(p) = port { ":" (p) }
        }
    }
}
