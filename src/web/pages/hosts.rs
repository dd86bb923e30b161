//! The hosts table (search, filters, sort, bulk acknowledge/merge/delete), the subnets
//! list and the host page (interfaces, addresses, services with evidence, events, split).

use super::{csrf_field, empty_state, layout, notice_box, page, url_encode, Nav, Notice};
use crate::accounts::Principal;
use crate::discovery::oui::Mac;
use crate::discovery_service::{hosts_per_subnet, Discovery, DiscoveryError};
use crate::inventory::{EventKind, Host, HostEvent, Service};
use crate::model::{Permission, Timestamp};
use crate::web::guard::ClientIp;
use crate::web::{assets, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;

/// "3 min ago" for the table; the exact time goes in the title.
pub fn ago(now: Timestamp, t: Timestamp) -> String {
    let s = now.since(t).as_secs();
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

pub fn time_cell(now: Timestamp, t: Timestamp) -> Markup {
    html! { time datetime=(t.to_rfc3339()) title=(t.to_rfc3339()) { (ago(now, t)) } }
}

/// The sprite symbol for a service: by category, else by protocol name.
pub fn icon_for(s: &Service) -> &'static str {
    let by_category = match s.category.as_deref().unwrap_or("") {
        "web-servers" | "proxies" => "web",
        "media" | "media-devices" => "media",
        "iot" | "home-automation" => "home",
        "remote-access" => "terminal",
        "cameras" => "camera",
        "mail" => "mail",
        "databases" => "database",
        "routers" | "infrastructure" | "dns" | "security" => "network",
        "printers" => "printer",
        "nas" | "file-sharing" => "storage",
        "monitoring" => "chart",
        "hypervisors" | "containers" | "devtools" | "self-hosted" => "server",
        _ => "",
    };
    if !by_category.is_empty() {
        return by_category;
    }
    match s.name.as_deref().unwrap_or("") {
        "ssh" | "telnet" | "ms-wbt-server" | "vnc" | "rdp" => "terminal",
        "http" | "https" | "http-alt" | "http-proxy" | "https-alt" => "web",
        "domain" | "dns" | "snmp" | "dhcp" => "network",
        "smtp" | "imap" | "pop3" | "submission" => "mail",
        "ipp" | "jetdirect" | "printer" => "printer",
        "rtsp" => "camera",
        "microsoft-ds" | "netbios-ssn" | "nfs" | "ftp" | "smb" => "storage",
        "mysql" | "postgresql" | "redis" | "mongodb" => "database",
        "mqtt" => "home",
        _ => "dot",
    }
}

pub fn icon(name: &str) -> Markup {
    html! {
        svg.icon aria-hidden="true" { use href=(format!("{}#i-{name}", assets::url("icons.svg"))) {} }
    }
}

/// One service as a small label: icon + application or protocol name and port.
pub fn service_chip(s: &Service) -> Markup {
    let label = s
        .application
        .clone()
        .or_else(|| s.name.clone())
        .unwrap_or_else(|| "open".into());
    let port = s.port.map(|p| format!("{p}/{}", s.proto.as_str()));
    let title = [
        port.clone(),
        s.product.clone(),
        Some(s.evidence.join(" + ")).filter(|e| !e.is_empty()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    html! {
        span.chip title=(title) { (icon(icon_for(s))) (label) @if let Some(p) = s.port { span.muted { " " (p) } } }
    }
}

fn infra_badges(h: &Host) -> Markup {
    html! {
        @if h.infra.gateway { " " span.badge.info { "gateway" } }
        @if h.infra.dns_server { " " span.badge.info { "DNS" } }
        @if h.infra.dhcp_server { " " span.badge.info { "DHCP" } }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct HostQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub subnet: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub new: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub dir: String,
}

/// Hosts matching the filters, sorted.
pub fn filter_hosts(d: &Discovery, q: &HostQuery) -> Vec<Host> {
    let needle = q.q.trim().to_lowercase();
    let subnet: Option<ipnet::IpNet> = q.subnet.parse().ok();
    let mut hosts: Vec<Host> = d
        .hosts()
        .into_iter()
        .filter(|h| {
            let text_ok = needle.is_empty() || {
                let mut hay = h.label().to_lowercase();
                for n in h.names.values() {
                    hay.push(' ');
                    hay.push_str(&n.to_lowercase());
                }
                for ip in h.ips() {
                    hay.push_str(&format!(" {ip}"));
                }
                for m in h.macs() {
                    hay.push_str(&format!(" {}", Mac(m)));
                }
                if let Some(v) = h.vendor() {
                    hay.push(' ');
                    hay.push_str(&v.to_lowercase());
                }
                for s in &h.services {
                    for t in [&s.name, &s.application, &s.product].into_iter().flatten() {
                        hay.push(' ');
                        hay.push_str(&t.to_lowercase());
                    }
                }
                hay.contains(&needle)
            };
            let subnet_ok = subnet.is_none_or(|n| h.ips().any(|ip| n.contains(&ip)));
            let vendor_ok = q.vendor.is_empty() || h.vendor() == Some(q.vendor.as_str());
            let service_ok = q.service.is_empty()
                || h.services.iter().any(|s| {
                    s.application.as_deref() == Some(q.service.as_str())
                        || s.name.as_deref() == Some(q.service.as_str())
                });
            let new_ok = q.new.is_empty() || h.is_new;
            text_ok && subnet_ok && vendor_ok && service_ok && new_ok
        })
        .collect();
    match q.sort.as_str() {
        "ip" => hosts.sort_by_key(|h| h.primary_ip()),
        "vendor" => hosts.sort_by(|a, b| a.vendor().cmp(&b.vendor()).then(a.id.cmp(&b.id))),
        "first" => hosts.sort_by_key(|h| h.first_seen),
        "last" => hosts.sort_by_key(|h| h.last_seen),
        "services" => hosts.sort_by_key(|h| h.services.len()),
        _ => hosts.sort_by_key(|h| {
            (
                h.name().is_none(),
                h.name().map(str::to_lowercase),
                h.primary_ip(),
            )
        }),
    }
    if q.dir == "desc" {
        hosts.reverse();
    }
    hosts
}

fn sort_link(q: &HostQuery, key: &str, label: &str) -> Markup {
    let desc = q.sort == key && q.dir != "desc";
    let href = format!(
        "/hosts?q={}&subnet={}&vendor={}&service={}&new={}&sort={key}&dir={}",
        url_encode(&q.q),
        url_encode(&q.subnet),
        url_encode(&q.vendor),
        url_encode(&q.service),
        url_encode(&q.new),
        if desc { "desc" } else { "asc" }
    );
    let mark = match (q.sort == key, q.dir == "desc") {
        (true, false) => " ▲",
        (true, true) => " ▼",
        _ => "",
    };
    html! { a.sort href=(href) { (label) (mark) } }
}

fn hosts_markup(state: &AppState, who: &Principal, q: &HostQuery, notice: Option<Notice>) -> Markup {
    let d = &state.discovery;
    let now = state.now();
    let all = d.hosts();
    let hosts = filter_hosts(d, q);
    let subnets = d.subnets();
    let per_subnet = hosts_per_subnet(&subnets, &all);
    let mut vendors: Vec<&str> = all.iter().filter_map(|h| h.vendor()).collect();
    vendors.sort_unstable();
    vendors.dedup();
    let mut services: Vec<String> = all
        .iter()
        .flat_map(|h| h.services.iter())
        .filter_map(|s| s.application.clone().or_else(|| s.name.clone()))
        .collect();
    services.sort_unstable();
    services.dedup();
    let new_count = all.iter().filter(|h| h.is_new).count();
    let can_edit = who.can(Permission::EditHosts);
    let status = d.passive_status();
    html! {
        @if let Some(n) = notice { (notice_box(n)) }
        section.card {
            form.row.filters method="get" action="/hosts" role="search" {
                label { "Search" input type="search" name="q" value=(q.q) placeholder="name, address, MAC, vendor, service"; }
                label { "Subnet" select name="subnet" {
                    option value="" { "All" }
                    @for s in &subnets { option value=(s.cidr) selected[q.subnet == s.cidr.to_string()] { (s.cidr) " (" (s.kind.as_str()) ")" } }
                } }
                label { "Vendor" select name="vendor" {
                    option value="" { "All" }
                    @for v in &vendors { option value=(v) selected[q.vendor == *v] { (v) } }
                } }
                label { "Service" select name="service" {
                    option value="" { "All" }
                    @for s in &services { option value=(s) selected[q.service == *s] { (s) } }
                } }
                label.check { input type="checkbox" name="new" value="1" checked[!q.new.is_empty()]; " New only" }
                input type="hidden" name="sort" value=(q.sort);
                input type="hidden" name="dir" value=(q.dir);
                button.primary type="submit" { "Filter" }
                @if who.can(Permission::RunScans) { a.button href="/scans" { "Scan…" } }
            }
            p.muted.small {
                (all.len()) " hosts, " (hosts.len()) " shown"
                @if new_count > 0 { ", " a href="/hosts?new=1" { (new_count) " new" } }
                ". Passive discovery "
                @if !d.config.passive { "is off (discovery.passive)." }
                @else if let Some(t) = status.last_poll { "last read " (time_cell(now, t)) "." }
                @else { "has not run yet." }
            }
        }
        @if all.is_empty() {
            (empty_state("No host known yet", html! {
                p { "Hosts appear here as the router's neighbour table and DHCP leases show them (passive, nothing is sent), after a scan, or when you import an nmap report." }
                @if who.can(Permission::RunScans) { p { a href="/scans" { "Scan a subnet or import nmap XML →" } } }
            }))
        } @else {
            form method="post" action="/hosts/bulk" {
                (csrf_field(who))
                @if can_edit {
                    div.bulk {
                        span.muted.small { "With the selected hosts:" }
                        button.small type="submit" name="action" value="acknowledge" { "Acknowledge" }
                        button.small type="submit" name="action" value="merge" title="Fold the selected hosts into the first one" { "Merge" }
                        button.small.danger type="submit" name="action" value="delete" { "Delete" }
                    }
                }
                div.scroll {
                    table.hosts {
                        thead { tr {
                            @if can_edit { th { span.sr { "Select" } } }
                            th { (sort_link(q, "name", "Name")) }
                            th { (sort_link(q, "ip", "Addresses")) }
                            th { (sort_link(q, "vendor", "MAC · vendor")) }
                            th { (sort_link(q, "services", "Services")) }
                            th.nowrap { (sort_link(q, "first", "First seen")) }
                            th.nowrap { (sort_link(q, "last", "Last seen")) }
                        } }
                        tbody {
                            @for h in &hosts {
                                tr {
                                    @if can_edit { td { input type="checkbox" name="id" value=(h.id) aria-label=(format!("select {}", h.label())); } }
                                    td {
                                        a href=(format!("/hosts/{}", h.id)) { (h.label()) }
                                        @if h.is_new { " " span.badge.new { "new" } }
                                        (infra_badges(h))
                                    }
                                    td.addrs { @for ip in h.ips().take(3) { code { (ip) } " " } @if h.ips().count() > 3 { span.muted { "+" (h.ips().count() - 3) } } }
                                    td {
                                        @if let Some(m) = h.macs().next() { code { (Mac(m)) } br; }
                                        span.muted.small { (h.vendor().unwrap_or(if h.macs().next().is_some_and(|m| Mac(m).is_locally_administered()) { "random MAC" } else { "" })) }
                                    }
                                    td.services { @for s in h.services.iter().take(6) { (service_chip(s)) " " } @if h.services.len() > 6 { span.muted { "+" (h.services.len() - 6) } } }
                                    td.nowrap { (time_cell(now, h.first_seen)) }
                                    td.nowrap { (time_cell(now, h.last_seen)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Subnets" }
            div.scroll { table.compact {
                thead { tr { th { "Network" } th { "Kind" } th { "Interface" } th { "Router address" } th { "Hosts" } } }
                tbody {
                    @for s in &subnets {
                        tr {
                            td { a href=(format!("/hosts?subnet={}", url_encode(&s.cidr.to_string()))) { code { (s.cidr) } } }
                            td { (s.kind.as_str()) }
                            td { (s.interface.as_deref().unwrap_or("—")) }
                            td { @if let Some(ip) = s.router_ip { code { (ip) } } @else { "—" } }
                            td { (per_subnet.get(&s.cidr.to_string()).copied().unwrap_or(0)) }
                        }
                    }
                }
            } }
            @if !status.read.is_empty() || !status.problems.is_empty() {
                p.muted.small {
                    "Passive sources: "
                    @for (i, (src, n)) in status.read.iter().enumerate() { @if i > 0 { ", " } code { (src) } " " (n) }
                }
                @for p in &status.problems { p.small.warn { (p) } }
            }
        }
    }
}

pub async fn hosts_page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<HostQuery>,
) -> Response {
    let content = hosts_markup(&state, &who, &q, None);
    page(layout("Hosts", Nav::Hosts, &who, None, content))
}

/// Form fields of a POST, repeated keys kept.
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn ids_of(fields: &[(String, String)]) -> Vec<u64> {
    fields
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .collect()
}

fn error_notice(e: &DiscoveryError) -> Notice {
    Notice::Error(e.to_string())
}

pub async fn audit(
    state: &Arc<AppState>,
    who: &Principal,
    ip: std::net::IpAddr,
    action: &str,
    detail: String,
) {
    let st = state.clone();
    let (actor, action, now) = (who.name.clone(), action.to_string(), state.now());
    let _ = tokio::task::spawn_blocking(move || {
        st.accounts.audit(&actor, &action, &detail, &ip.to_string(), now)
    })
    .await;
}

pub async fn hosts_bulk(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    let ids = ids_of(&fields);
    let action = fields
        .iter()
        .find(|(k, _)| k == "action")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let now = state.now();
    let d = state.discovery.clone();
    let actor = who.name.clone();
    let result: Result<String, Notice> = if ids.is_empty() {
        Err(Notice::Error("Select at least one host first.".into()))
    } else {
        let ids2 = ids.clone();
        let action2 = action.to_string();
        let r = tokio::task::spawn_blocking(move || match action2.as_str() {
            "acknowledge" => d
                .acknowledge(&ids2, now, &actor)
                .map(|n| format!("{n} hosts acknowledged.")),
            "delete" => d
                .delete(&ids2, now, &actor)
                .map(|_| format!("{} hosts deleted.", ids2.len())),
            "merge" if ids2.len() < 2 => Err(DiscoveryError::BadScan(
                "Select two or more hosts to merge.".into(),
            )),
            "merge" => d
                .merge(ids2[0], &ids2[1..], now, &actor)
                .map(|_| format!("{} hosts merged into host {}.", ids2.len() - 1, ids2[0])),
            other => Err(DiscoveryError::BadScan(format!("unknown action \"{other}\""))),
        })
        .await;
        match r {
            Ok(Ok(msg)) => Ok(msg),
            Ok(Err(e)) => Err(error_notice(&e)),
            Err(_) => Err(Notice::Error("internal error; see the server log".into())),
        }
    };
    match result {
        Ok(msg) => {
            audit(&state, &who, ip, &format!("hosts.{action}"), format!("{ids:?}")).await;
            let content = hosts_markup(&state, &who, &HostQuery::default(), Some(Notice::Ok(msg)));
            page(layout("Hosts", Nav::Hosts, &who, None, content))
        }
        Err(n) => {
            let content = hosts_markup(&state, &who, &HostQuery::default(), Some(n));
            (
                StatusCode::BAD_REQUEST,
                page(layout("Hosts", Nav::Hosts, &who, None, content)),
            )
                .into_response()
        }
    }
}

fn event_text(e: &HostEvent) -> String {
    match &e.kind {
        EventKind::NewDevice => "first seen (new device)".into(),
        EventKind::Acknowledged => "acknowledged".into(),
        EventKind::AddressMoved { ip, from_host } => format!("took over {ip} from host {from_host}"),
        EventKind::Merged {
            from_host,
            automatic: true,
        } => format!("host {from_host} merged in (same MAC)"),
        EventKind::Merged {
            from_host,
            automatic: false,
        } => format!("host {from_host} merged in"),
        EventKind::SplitOff { into_host } => format!("an interface split off into host {into_host}"),
        EventKind::Deleted => "deleted".into(),
    }
}

pub fn events_table(now: Timestamp, events: &[HostEvent], with_host: bool) -> Markup {
    html! {
        @if events.is_empty() { p.muted { "No events." } }
        @else {
            table.compact {
                tbody {
                    @for e in events {
                        tr {
                            td.nowrap { (time_cell(now, e.at)) }
                            @if with_host { td { a href=(format!("/hosts/{}", e.host)) { (e.label) } } }
                            td { (event_text(e)) }
                            td.muted { (e.actor.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

fn host_markup(state: &AppState, who: &Principal, h: &Host, notice: Option<Notice>) -> Markup {
    let now = state.now();
    let events = state.discovery.events(Some(h.id), 50).unwrap_or_default();
    let can_edit = who.can(Permission::EditHosts);
    let first_ip = h.primary_ip();
    let ips: Vec<std::net::IpAddr> = h.ips().collect();
    let firewall = who.can(Permission::ViewLogs).then(|| {
        let store = state.accounts.store();
        crate::web::logs::recent_firewall_events(store, &ips, crate::web::logs::HOST_EVENT_ROWS)
    });
    html! {
        @if let Some(n) = notice { (notice_box(n)) }
        div.grid {
            section.card {
                h2 { "Summary" @if h.is_new { " " span.badge.new { "new" } } (infra_badges(h)) }
                dl.facts {
                    div.fact { dt { "Name" } dd { (h.name().unwrap_or("—")) } }
                    @for (src, n) in &h.names { div.fact { dt { "Name from " (src.as_str()) } dd { (n) } } }
                    div.fact { dt { "Vendor" } dd { (h.vendor().unwrap_or("—")) } }
                    div.fact { dt { "First seen" } dd { (h.first_seen) } }
                    div.fact { dt { "Last seen" } dd { (h.last_seen) " (" (ago(now, h.last_seen)) ")" } }
                    div.fact { dt { "Learned from" } dd { @for (i, s) in h.sources.iter().enumerate() { @if i > 0 { ", " } (s.as_str()) } } }
                }
                @if let Some(ip) = first_ip {
                    p.links {
                        a href=(format!("/traffic?ip={}", url_encode(&ip.to_string()))) { "Traffic of " (ip) " →" }
                        " · "
                        a href=(format!("/logs?ip={}", url_encode(&ip.to_string()))) { "Logs of " (ip) " →" }
                    }
                }
                @if can_edit && h.is_new {
                    form.inline method="post" action=(format!("/hosts/{}/acknowledge", h.id)) {
                        (csrf_field(who))
                        button.small type="submit" { "Acknowledge" }
                    }
                }
            }
            section.card {
                h2 { "Interfaces" }
                @for (i, iface) in h.interfaces.iter().enumerate() {
                    div.iface {
                        p {
                            strong { @if let Some(m) = iface.mac { code { (Mac(m)) } } @else { "MAC unknown" } }
                            @if let Some(v) = &iface.vendor { " · " (v) }
                            @else if iface.mac.is_some_and(|m| Mac(m).is_locally_administered()) { " · " span.muted { "locally administered (random) MAC" } }
                            @if let Some(l) = &iface.label { " · " span.muted { (l) } }
                        }
                        table.compact {
                            thead { tr { th { "Address" } th { "First seen" } th { "Last seen" } th { "Sources" } } }
                            tbody {
                                @for a in &iface.addresses {
                                    tr {
                                        td { code { (a.ip) } }
                                        td.nowrap { (time_cell(now, a.first_seen)) }
                                        td.nowrap { (time_cell(now, a.last_seen)) }
                                        td.small { @for (j, s) in a.sources.iter().enumerate() { @if j > 0 { ", " } (s.as_str()) } }
                                    }
                                }
                            }
                        }
                        @if can_edit && h.interfaces.len() > 1 {
                            form.inline method="post" action=(format!("/hosts/{}/split", h.id)) {
                                (csrf_field(who))
                                input type="hidden" name="interface" value=(i);
                                button.small type="submit" title="This interface is another device" { "Split off" }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Services and open ports" }
            @if h.services.is_empty() { p.muted { "None known. A scan finds open ports; passive sources do not." } }
            @else {
                div.scroll { table {
                    thead { tr { th { "Port" } th { "Service" } th { "Product" } th { "Evidence" } th { "Last seen" } } }
                    tbody {
                        @for s in &h.services {
                            tr {
                                td.nowrap { @if let Some(p) = s.port { code { (p) "/" (s.proto.as_str()) } } @else { span.muted { "host" } } }
                                td { (icon(icon_for(s))) " " (s.application.as_deref().or(s.name.as_deref()).unwrap_or("—"))
                                    @if s.application.is_some() { @if let Some(n) = &s.name { span.muted.small { " (" (n) ")" } } }
                                }
                                td { (s.product.as_deref().unwrap_or("")) }
                                td.small.evidence { (s.evidence.join(" + ")) }
                                td.nowrap { (time_cell(now, s.last_seen)) }
                            }
                        }
                    }
                } }
            }
        }
        @if let Some(fw) = &firewall { (crate::web::logs::host_events_card(fw, &ips)) }
        section.card {
            h2 { "Events" }
            (events_table(now, &events, false))
        }
    }
}

pub async fn host_page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<u64>,
) -> Response {
    match state.discovery.host(id) {
        Some(h) => {
            let content = host_markup(&state, &who, &h, None);
            page(layout(&h.label(), Nav::Hosts, &who, None, content))
        }
        None => super::error_page(
            StatusCode::NOT_FOUND,
            "No such host",
            "It may have been merged or deleted.",
        ),
    }
}

pub async fn host_acknowledge(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<u64>,
) -> Response {
    let (d, now, actor) = (state.discovery.clone(), state.now(), who.name.clone());
    match tokio::task::spawn_blocking(move || d.acknowledge(&[id], now, &actor)).await {
        Ok(Ok(_)) => {
            audit(&state, &who, ip, "hosts.acknowledge", format!("[{id}]")).await;
            Redirect::to(&format!("/hosts/{id}")).into_response()
        }
        _ => super::error_page(
            StatusCode::NOT_FOUND,
            "No such host",
            "It may have been merged or deleted.",
        ),
    }
}

pub async fn host_split(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    let Some(index) = fields
        .iter()
        .find(|(k, _)| k == "interface")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    else {
        return super::error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Which interface? The form sends its number.",
        );
    };
    let (d, now, actor) = (state.discovery.clone(), state.now(), who.name.clone());
    match tokio::task::spawn_blocking(move || d.split(id, index, now, &actor)).await {
        Ok(Ok(new_id)) => {
            audit(
                &state,
                &who,
                ip,
                "hosts.split",
                format!("{id} interface {index} → {new_id}"),
            )
            .await;
            Redirect::to(&format!("/hosts/{new_id}")).into_response()
        }
        Ok(Err(e)) => {
            let Some(h) = state.discovery.host(id) else {
                return super::error_page(StatusCode::NOT_FOUND, "No such host", &e.to_string());
            };
            let content = host_markup(&state, &who, &h, Some(error_notice(&e)));
            (
                StatusCode::BAD_REQUEST,
                page(layout(&h.label(), Nav::Hosts, &who, None, content)),
            )
                .into_response()
        }
        Err(_) => super::error_page(StatusCode::INTERNAL_SERVER_ERROR, "Error", "see the server log"),
    }
}
