//! The Traffic page: capture status (with what to do when capture is off or not permitted),
//! a packet/bit rate chart (uPlot), protocol, direction and DNS breakdowns, top talkers,
//! ports, DNS names and countries, and the flows table with filters. "Live" shows the
//! recent windows in memory and updates over `/events/traffic`; the last hour/day/week read
//! the stored history. Everything renders on the server; `static/traffic.js` only draws the
//! chart and applies live updates.

use super::{layout, url_encode, Nav};
use crate::accounts::Principal;
use crate::model::{TopEntry, TrafficSummary};
use crate::sensor::{persist, CaptureMode, FlowRow, HubStatus, SourceState, TrafficHub};
use crate::web::api::traffic::{proto_name, FlowParams};
use crate::web::assets;
use crate::web::metrics::human_bytes;
use crate::web::{sse, AppState};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The ranges of the picker: (query value, label, length in ms).
const RANGES: [(&str, &str, u64); 4] = [
    ("live", "Live", 0),
    ("hour", "Last hour", 3_600_000),
    ("day", "Last day", 86_400_000),
    ("week", "Last week", 7 * 86_400_000),
];

/// Flows listed on the page unless `limit` asks for more.
const PAGE_FLOWS: usize = 25;

#[derive(Deserialize, Default)]
pub struct TrafficQuery {
    pub range: Option<String>,
    #[serde(flatten)]
    pub flows: FlowParams,
}

/// `12.3 k`, `4.5 M`: packet rates and counts.
pub fn human_count(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.1} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1} M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1} k", v / 1e3)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `12.3 Mbit/s`.
pub fn human_bits(bps: f64) -> String {
    const UNITS: [&str; 5] = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
    let (mut v, mut u) = (bps, 0);
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[0])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

/// The live view: recent closed windows and the ones in progress, merged.
pub fn live_view(hub: &TrafficHub) -> TrafficSummary {
    let mut m = TrafficSummary::default();
    for w in hub.recent_windows() {
        m.merge(&w);
    }
    for w in hub.live_windows() {
        m.merge(&w);
    }
    m
}

/// Chart series as the `data-series` attribute: `{"t":[s…],"pps":[…],"bps":[…]}`.
fn series_json(points: &[(u64, f64, f64)]) -> String {
    let t: Vec<u64> = points.iter().map(|p| p.0).collect();
    let pps: Vec<f64> = points.iter().map(|p| (p.1 * 10.0).round() / 10.0).collect();
    let bps: Vec<f64> = points.iter().map(|p| p.2.round()).collect();
    serde_json::json!({"t": t, "pps": pps, "bps": bps}).to_string()
}

/// Rate points of stored windows: each window's average.
fn stored_points(stored: &[TrafficSummary]) -> Vec<(u64, f64, f64)> {
    let mut by_start: std::collections::BTreeMap<u64, (f64, f64)> = Default::default();
    for s in stored {
        let secs = (s.end_ms.saturating_sub(s.start_ms) as f64 / 1000.0).max(1.0);
        let e = by_start.entry(s.start_ms / 1000).or_default();
        e.0 += s.counters.packets as f64 / secs;
        e.1 += s.counters.bytes as f64 * 8.0 / secs;
    }
    by_start.into_iter().map(|(t, (p, b))| (t, p, b)).collect()
}

fn state_badge(s: &SourceState) -> Markup {
    match s {
        SourceState::Running => html! { span.badge.ok { "capturing" } },
        SourceState::Starting => html! { span.badge { "starting" } },
        SourceState::Finished => html! { span.badge { "replay finished" } },
        SourceState::Stopped => html! { span.badge { "stopped" } },
        SourceState::NotPermitted { .. } => html! { span.badge.bad { "not permitted" } },
        SourceState::Failed { .. } => html! { span.badge.bad { "failed" } },
    }
}

/// What to tell the user about capture, if anything is wrong or off.
pub fn capture_problems(status: &HubStatus) -> Markup {
    let not_permitted: Vec<(&str, &str, &str)> = status
        .sources
        .iter()
        .filter_map(|s| match &s.state {
            SourceState::NotPermitted { message, hint } => {
                Some((s.name.as_str(), message.as_str(), hint.as_str()))
            }
            _ => None,
        })
        .collect();
    html! {
        @if status.mode == CaptureMode::Disabled {
            div.notice.warn role="status" {
                strong { "Capture is off." }
                " Set " code { "enabled = true" } " in the " code { "[capture]" } " section of the config file (or "
                code { "GATEWATCH_CAPTURE_ENABLED=true" } ") and restart gatewatch. It only listens; it never sends."
            }
        }
        @if let Some((_, message, hint)) = not_permitted.first() {
            div.notice.error role="alert" {
                strong { "gatewatch may not capture packets. " }
                (message)
                @if !hint.is_empty() { p.small { (hint) } }
            }
        }
        @for s in &status.sources {
            @if let SourceState::Failed { message } = &s.state {
                div.notice.error role="alert" { strong { (s.name) ": " } (message) }
            }
        }
        @if let Some(n) = &status.notice {
            div.notice.warn role="status" { (n) }
        }
        @if status.summaries_dropped > 0 {
            div.notice.warn role="status" {
                (status.summaries_dropped) " window summaries could not be stored (the database was too slow or failing); the live view is complete, the history has gaps."
            }
        }
    }
}

fn sources_table(status: &HubStatus) -> Markup {
    html! {
        section.card #sources {
            h2 { "Interfaces" }
            @if status.sources.is_empty() {
                p.muted { "No capture source is running." }
            } @else {
                div.scroll {
                    table.compact {
                        thead { tr { th { "Interface" } th { "State" } th.num { "Packets" } th.num { "Rate" } th.num { "Kernel drops" } th.num { "Interface drops" } th.num { "Active flows" } th.num { "Evicted" } th.num title="Share of packets given to flow and DNS analysis; below 100 % the engine samples under load (traffic.deep_sample_above_pps) while the counters stay exact" { "Deep analysis" } } }
                        tbody {
                            @for s in &status.sources {
                                tr {
                                    td { code { (s.name) } }
                                    td { (state_badge(&s.state)) }
                                    td.num { (human_count(s.packets as f64)) }
                                    td.num.nowrap { (human_count(s.packets_per_second)) " pkt/s · " (human_bits(s.bytes_per_second)) }
                                    td.num { (s.dropped_kernel) }
                                    td.num { (s.dropped_interface) }
                                    td.num { (s.flows_active) }
                                    td.num { (s.flows_evicted) }
                                    td.num { @if s.sample_rate < 1.0 { span.badge.info { (format!("{:.1} % sampled", s.sample_rate * 100.0)) } } @else { "all packets" } }
                                }
                            }
                        }
                    }
                }
                p.muted.small { "Windows of " (status.period_seconds) " s; "
                    (status.summaries_written) " stored, " (status.summaries_dropped) " dropped." }
            }
        }
    }
}

/// Rows of a top list as table rows (also built by `static/traffic.js` from SSE).
fn top_rows(list: &[TopEntry], total: u64, bytes: bool, link_ips: bool) -> Markup {
    html! {
        @if list.is_empty() {
            tr { td.muted colspan="3" { "Nothing yet." } }
        }
        @for e in list {
            tr {
                td {
                    @if link_ips {
                        a href=(format!("/traffic?ip={}#flows", url_encode(&e.key))) { code { (e.key) } }
                    } @else { code { (e.key) } }
                }
                td.num { @if bytes { (human_bytes(e.value)) } @else { (e.value) } }
                td.num.muted { (percent(e.value, total)) }
            }
        }
    }
}

fn top_card(
    title: &str,
    table: &str,
    what: &str,
    list: &[TopEntry],
    total: u64,
    bytes: bool,
    link: bool,
) -> Markup {
    html! {
        section.card {
            h2 { (title) }
            table.compact.top {
                thead { tr { th { (what) } th.num { @if bytes { "Bytes" } @else { "Packets" } } th.num { "Share" } } }
                tbody data-table=(table) data-bytes=[bytes.then_some("1")] data-total=(total) data-link=[link.then_some("1")] {
                    (top_rows(list, total, bytes, link))
                }
            }
        }
    }
}

fn breakdown(s: &TrafficSummary) -> Markup {
    let c = &s.counters;
    let ip = c.ipv4 + c.ipv6;
    let rows = |items: &[(&str, &'static str, u64, u64)]| {
        html! {
            @for (label, field, n, whole) in items {
                div.fact { dt { (label) } dd { span data-field=(field) { (n) } " " span.muted.small { (percent(*n, *whole)) } } }
            }
        }
    };
    html! {
        section.card {
            h2 { "Protocols" }
            dl.facts {
                (rows(&[("TCP", "tcp", c.tcp, ip), ("UDP", "udp", c.udp, ip), ("ICMP", "icmp", c.icmp, ip), ("Other IP", "other", c.other, ip),
                        ("IPv4", "ipv4", c.ipv4, c.packets), ("IPv6", "ipv6", c.ipv6, c.packets), ("Not IP", "non_ip", c.non_ip, c.packets)]))
            }
        }
        section.card {
            h2 { "Direction and TCP" }
            dl.facts {
                (rows(&[("Inbound packets", "packets_in", c.packets_in, c.packets), ("Outbound packets", "packets_out", c.packets_out, c.packets)]))
                div.fact { dt { "Inbound bytes" } dd data-field="bytes_in_h" { (human_bytes(c.bytes_in)) } }
                div.fact { dt { "Outbound bytes" } dd data-field="bytes_out_h" { (human_bytes(c.bytes_out)) } }
                (rows(&[("TCP SYN", "tcp_syn", c.tcp_syn, c.tcp), ("TCP SYN-ACK", "tcp_synack", c.tcp_synack, c.tcp), ("TCP RST", "tcp_rst", c.tcp_rst, c.tcp),
                        ("IP fragments", "fragments", c.fragments, c.packets), ("Malformed", "malformed", c.malformed, c.packets)]))
            }
            @if c.packets > 0 && c.packets_in + c.packets_out == 0 {
                p.muted.small { "In/out needs the host spec: " code { "traffic.host_spec" } " (default: the captured interfaces' subnets)." }
            }
        }
        section.card {
            h2 { "DNS" }
            dl.facts {
                (rows(&[("Queries", "dns_queries", c.dns_queries, c.dns_messages), ("Responses", "dns_responses", c.dns_responses, c.dns_messages),
                        ("NOERROR", "dns_noerror", c.dns_noerror, c.dns_responses), ("NXDOMAIN", "dns_nxdomain", c.dns_nxdomain, c.dns_responses),
                        ("SERVFAIL", "dns_servfail", c.dns_servfail, c.dns_responses), ("REFUSED", "dns_refused", c.dns_refused, c.dns_responses),
                        ("NODATA", "dns_nodata", c.dns_nodata, c.dns_responses)]))
                div.fact { dt { "Distinct names" } dd data-field="distinct_qnames" { (s.distinct_qnames()) } }
            }
        }
    }
}

fn flows_card(flows: &[FlowRow], q: &FlowParams, range: &str, error: Option<&str>) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let sort = v(&q.sort);
    let more = format!(
        "/traffic?range={range}&ip={}&port={}&proto={}&min_bytes={}&sort={}&limit=500#flows",
        url_encode(&v(&q.ip)),
        url_encode(&v(&q.port)),
        url_encode(&v(&q.proto)),
        url_encode(&v(&q.min_bytes)),
        url_encode(&sort)
    );
    html! {
        section.card #flows {
            h2 { "Active flows" }
            form.row method="get" action="/traffic#flows" {
                input type="hidden" name="range" value=(range);
                label { "Address" input type="text" name="ip" value=(v(&q.ip)) placeholder="192.168.1.10" size="16"; }
                label { "Port" input type="text" name="port" value=(v(&q.port)) placeholder="443" size="6" inputmode="numeric"; }
                label { "Protocol"
                    select name="proto" {
                        @for (val, label) in [("", "any"), ("tcp", "TCP"), ("udp", "UDP"), ("icmp", "ICMP"), ("icmpv6", "ICMPv6")] {
                            option value=(val) selected[v(&q.proto).eq_ignore_ascii_case(val)] { (label) }
                        }
                    }
                }
                label { "Min bytes" input type="text" name="min_bytes" value=(v(&q.min_bytes)) placeholder="0" size="8" inputmode="numeric"; }
                label { "Sort"
                    select name="sort" {
                        @for (val, label) in [("bytes", "bytes"), ("packets", "packets"), ("last_seen", "last seen")] {
                            option value=(val) selected[sort == val] { (label) }
                        }
                    }
                }
                button.primary type="submit" { "Filter" }
                a href=(format!("/traffic?range={range}#flows")) { "Clear" }
            }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            div.scroll {
                table.compact {
                    thead { tr { th { "Proto" } th { "Endpoint A" } th { "Endpoint B" } th.num { "Packets A→B / B→A" } th.num { "Bytes" } th { "Flags" } th { "Interface" } } }
                    tbody data-table="flows" {
                        @if flows.is_empty() { tr { td.muted colspan="7" { "No active flow matches." } } }
                        @for f in flows {
                            tr {
                                td { (proto_name(f.proto)) }
                                td.nowrap { a href=(format!("/traffic?ip={}#flows", url_encode(&f.a))) { code { (f.a) } } @if f.a_port > 0 { ":" (f.a_port) } }
                                td.nowrap { a href=(format!("/traffic?ip={}#flows", url_encode(&f.b))) { code { (f.b) } } @if f.b_port > 0 { ":" (f.b_port) } }
                                td.num.nowrap { (f.packets_ab) " / " (f.packets_ba) }
                                td.num.nowrap { (human_bytes(f.bytes())) }
                                td.small { (f.tcp_flags) }
                                td.small { (f.source) }
                            }
                        }
                    }
                }
            }
            @if flows.len() == PAGE_FLOWS && q.limit.is_none() {
                p.small { "The " (PAGE_FLOWS) " heaviest flows. " a href=(more) { "Show up to 500" } }
            }
        }
    }
}

pub async fn page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<TrafficQuery>,
) -> Response {
    let hub = &state.traffic;
    let range = q
        .range
        .as_deref()
        .filter(|r| RANGES.iter().any(|(v, ..)| v == r))
        .unwrap_or("live")
        .to_string();
    let span = RANGES
        .iter()
        .find(|(v, ..)| *v == range)
        .map(|r| r.2)
        .unwrap_or(0);
    let status = hub.status();
    let now = state.now().as_millis();
    let (summary, points, live) = if span == 0 {
        let pts: Vec<(u64, f64, f64)> = hub.rate_history().iter().map(|p| (p.t, p.pps, p.bps)).collect();
        (live_view(hub), pts, true)
    } else {
        let st = state.clone();
        let from = now.saturating_sub(span);
        let stored = tokio::task::spawn_blocking(move || {
            let store = st.accounts.store();
            if span > 86_400_000 {
                persist::read_hours(store, from, now + 1, 20_000)
            } else {
                persist::read_range(store, from, now + 1, 20_000)
            }
        })
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
        let mut m = TrafficSummary::default();
        for s in &stored {
            m.merge(s);
        }
        (m, stored_points(&stored), false)
    };
    let (flow_filter, flow_error) = match q.flows.filter() {
        // The page shows the 25 heaviest unless asked for more.
        Ok(mut f) if q.flows.limit.as_deref().is_none_or(|l| l.trim().is_empty()) => {
            f.limit = PAGE_FLOWS;
            (Some(f), None)
        }
        Ok(f) => (Some(f), None),
        Err(e) => (None, Some(e)),
    };
    let flows = match &flow_filter {
        Some(f) => hub.flows(f, Duration::from_secs(3)).await,
        None => Vec::new(),
    };
    let n = hub.settings.top_n;
    let mut top = summary.top.clone();
    top.truncate(n);
    let c = &summary.counters;
    let (_, _, pps, bps, drops) = hub.totals();
    let content = html! {
        link rel="stylesheet" href=(assets::url("uPlot.min.css"));
        (capture_problems(&status))
        nav.tabs aria-label="Time range" {
            @for (value, label, _) in RANGES {
                a href=(format!("/traffic?range={value}")) aria-current=[(value == range).then_some("page")] { (label) }
            }
        }
        div data-live=[live.then_some("/events/traffic")] {
            section.card #rate {
                div.ratehead {
                    h2 { @if live { "Packet and bit rate, live" } @else { "Packet and bit rate" } }
                    dl.facts.inline {
                        div.fact { dt { "Now" } dd { span data-field="pps" { (human_count(pps)) } " pkt/s · " span data-field="bps" { (human_bits(bps)) } } }
                        div.fact { dt { "Packets" } dd data-field="packets" { (human_count(c.packets as f64)) } }
                        div.fact { dt { "Bytes" } dd data-field="bytes" { (human_bytes(c.bytes)) } }
                        div.fact { dt { "Drops" } dd data-field="drops" { (drops) } }
                    }
                }
                div #traffic-chart.chart data-series=(series_json(&points)) data-live=[live.then_some("1")] role="img"
                    aria-label="Packets per second and bits per second over time" {}
                @if points.is_empty() {
                    p.muted.small.chart-empty { @if live { "The chart fills in as packets arrive." } @else { "Nothing stored for this range yet." } }
                }
                p.muted.small {
                    @if live { "Last " (hub.settings.windows_kept) " windows and the one in progress." }
                    @else { (summary.windows) " stored windows; percentiles across windows are averages." }
                    " Distinct sources " span data-field="distinct_src" { (summary.distinct_src_ips()) }
                    ", destinations " span data-field="distinct_dst" { (summary.distinct_dst_ips()) } "."
                    @if let Some(p) = summary.sizes.p50 { " Median packet " (p) " B, p99 " (summary.sizes.p99.unwrap_or(p)) " B." }
                }
            }
            div.grid {
                (breakdown(&summary))
            }
            div.grid {
                (top_card("Top talkers", "src_bytes", "Source", &top.src_ips_by_bytes, c.bytes, true, true))
                (top_card("Top destinations", "dst_bytes", "Destination", &top.dst_ips_by_bytes, c.bytes, true, true))
                (top_card("Top ports", "ports", "Destination port", &top.dst_ports_by_packets, c.packets, false, false))
                (top_card("Top DNS names", "qnames", "Name", &top.qnames, c.dns_messages, false, false))
                @if top.countries.is_empty() && state.config.geo.city_db.is_none() {
                    section.card {
                        h2 { "Top countries" }
                        p.muted { "Countries and cities need a city database: set " code { "geo.city_db" } " to a GeoLite2-City or ip-location-db .mmdb file." }
                    }
                } @else {
                    (top_card("Top countries", "countries", "Country", &top.countries, c.packets, false, false))
                }
            }
        }
        (flows_card(&flows, &q.flows, &range, flow_error.as_deref()))
        (sources_table(&status))
        script src=(assets::url("uPlot.iife.min.js")) defer {}
        script src=(assets::url("traffic.js")) defer {}
    };
    super::page(layout("Traffic", Nav::Traffic, &who, None, content))
}

fn top_json(list: &[TopEntry], n: usize) -> String {
    serde_json::to_string(&list.iter().take(n).map(|e| (&e.key, e.value)).collect::<Vec<_>>())
        .unwrap_or_default()
}

/// The fields of one live update (also the fields the page renders with `data-field`).
pub fn live_fields(hub: &TrafficHub) -> sse::Snapshot {
    let s = live_view(hub);
    let c = &s.counters;
    let n = hub.settings.top_n;
    let (_, _, pps, bps, drops) = hub.totals();
    let last = hub.rate_history().last().copied();
    let count = |n: u64| n.to_string();
    vec![
        ("pps", human_count(pps)),
        ("bps", human_bits(bps)),
        ("packets", human_count(c.packets as f64)),
        ("bytes", human_bytes(c.bytes)),
        ("drops", drops.to_string()),
        ("tcp", count(c.tcp)),
        ("udp", count(c.udp)),
        ("icmp", count(c.icmp)),
        ("other", count(c.other)),
        ("ipv4", count(c.ipv4)),
        ("ipv6", count(c.ipv6)),
        ("non_ip", count(c.non_ip)),
        ("packets_in", count(c.packets_in)),
        ("packets_out", count(c.packets_out)),
        ("bytes_in_h", human_bytes(c.bytes_in)),
        ("bytes_out_h", human_bytes(c.bytes_out)),
        ("tcp_syn", count(c.tcp_syn)),
        ("tcp_synack", count(c.tcp_synack)),
        ("tcp_rst", count(c.tcp_rst)),
        ("fragments", count(c.fragments)),
        ("malformed", count(c.malformed)),
        ("dns_queries", count(c.dns_queries)),
        ("dns_responses", count(c.dns_responses)),
        ("dns_noerror", count(c.dns_noerror)),
        ("dns_nxdomain", count(c.dns_nxdomain)),
        ("dns_servfail", count(c.dns_servfail)),
        ("dns_refused", count(c.dns_refused)),
        ("dns_nodata", count(c.dns_nodata)),
        ("distinct_qnames", s.distinct_qnames().to_string()),
        ("distinct_src", s.distinct_src_ips().to_string()),
        ("distinct_dst", s.distinct_dst_ips().to_string()),
        (
            "rate_point",
            last.map(|p| serde_json::json!([p.t, (p.pps * 10.0).round() / 10.0, p.bps.round()]).to_string())
                .unwrap_or_default(),
        ),
        ("table:src_bytes", top_json(&s.top.src_ips_by_bytes, n)),
        ("table:dst_bytes", top_json(&s.top.dst_ips_by_bytes, n)),
        ("table:ports", top_json(&s.top.dst_ports_by_packets, n)),
        ("table:qnames", top_json(&s.top.qnames, n)),
        ("table:countries", top_json(&s.top.countries, n)),
        ("total:src_bytes", c.bytes.to_string()),
        ("total:dst_bytes", c.bytes.to_string()),
        ("total:ports", c.packets.to_string()),
        ("total:qnames", c.dns_messages.to_string()),
        ("total:countries", c.packets.to_string()),
    ]
}

pub async fn events(State(state): State<Arc<AppState>>) -> Response {
    let st = state.clone();
    sse::live(Duration::from_secs(1), state.shutdown.clone(), move || {
        live_fields(&st.traffic)
    })
    .into_response()
}
