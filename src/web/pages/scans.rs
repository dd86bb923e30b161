//! The scans page: scan now (targets, port set), live progress over SSE, cancel, the
//! history, and the nmap XML upload.

use super::hosts::{audit, time_cell};
use super::{csrf_field, layout, notice_box, page, Nav, Notice};
use crate::accounts::Principal;
use crate::discovery_service::scans::ScanProgress;
use crate::inventory::{ScanOrigin, ScanRecord};
use crate::model::Permission;
use crate::web::guard::ClientIp;
use crate::web::{multipart, sse, AppState};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};
use std::sync::Arc;
use std::time::Duration;

fn progress_fields(p: &ScanProgress) -> sse::Snapshot {
    vec![
        ("state", p.state.clone()),
        ("phase", p.phase.clone()),
        ("percent", p.percent.to_string()),
        ("hosts", p.hosts_found.to_string()),
        (
            "eta",
            match p.eta_seconds {
                Some(s) if s >= 60 => format!("about {} min left", s.div_ceil(60)),
                Some(s) => format!("about {s} s left"),
                None => String::new(),
            },
        ),
        ("summary", p.summary.clone()),
    ]
}

fn field<'a>(fields: &'a sse::Snapshot, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn running_card(who: &Principal, p: &ScanProgress, targets: &str) -> Markup {
    let f = progress_fields(p);
    html! {
        div.scanrun data-live=(format!("/events/scans/{}", p.id)) {
            p {
                strong { "Scan " (p.id) } " of " code { (targets) } " · "
                span data-field="state" { (field(&f, "state")) } " · "
                span data-field="phase" { (field(&f, "phase")) }
            }
            progress max="100" value=(p.percent) data-field="percent" aria-label=(format!("scan {} progress", p.id)) { (p.percent) "%" }
            p.small.muted {
                span data-field="hosts" { (field(&f, "hosts")) } " hosts found · "
                span data-field="percent" { (field(&f, "percent")) } "% · "
                span data-field="eta" { (field(&f, "eta")) }
            }
            @if who.can(Permission::RunScans) {
                form.inline method="post" action=(format!("/scans/{}/cancel", p.id)) {
                    (csrf_field(who))
                    button.small.danger type="submit" { "Cancel" }
                }
            }
        }
    }
}

fn origin_text(o: ScanOrigin) -> &'static str {
    match o {
        ScanOrigin::Manual => "scan",
        ScanOrigin::Schedule => "schedule",
        ScanOrigin::NmapImport => "nmap import",
    }
}

fn history_table(state: &AppState, history: &[ScanRecord]) -> Markup {
    let now = state.now();
    html! {
        @if history.is_empty() { p.muted { "No scan yet." } }
        @else {
            div.scroll { table.compact {
                thead { tr { th { "#" } th { "When" } th { "What" } th { "Targets" } th { "Ports" } th { "By" } th { "State" } th { "Result" } } }
                tbody {
                    @for s in history {
                        tr {
                            td { (s.id) }
                            td.nowrap { (time_cell(now, s.started_at.unwrap_or(s.queued_at))) }
                            td { (origin_text(s.origin)) }
                            td { code { (s.targets.join(", ")) } }
                            td.small { (s.ports) }
                            td.small { (s.requested_by) }
                            td { span class=(format!("badge {}", s.state.as_str())) { (s.state.as_str()) } }
                            td.small { (s.summary) }
                        }
                    }
                }
            } }
        }
    }
}

fn scans_markup(state: &AppState, who: &Principal, notice: Option<Notice>) -> Markup {
    let d = &state.discovery;
    let history = d.scan_history(50).unwrap_or_default();
    let active: Vec<(ScanProgress, String)> = d
        .active_scans()
        .into_iter()
        .filter_map(|id| {
            let p = d.scan_progress(id).ok()?;
            let targets = history
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.targets.join(", "))
                .unwrap_or_default();
            Some((p, targets))
        })
        .collect();
    let suggestion = d
        .subnets()
        .into_iter()
        .filter(|s| {
            s.kind != crate::inventory::SubnetKind::Internet && s.kind != crate::inventory::SubnetKind::Wan
        })
        .filter(|s| s.cidr.addr().is_ipv4() && s.cidr.prefix_len() >= 16)
        .map(|s| s.cidr.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let can_scan = who.can(Permission::RunScans);
    html! {
        @if let Some(n) = notice { (notice_box(n)) }
        @if can_scan {
            div.grid {
                section.card {
                    h2 { "Scan now" }
                    form.stack method="post" action="/scans" {
                        (csrf_field(who))
                        label for="targets" { "Targets" }
                        input #targets type="text" name="targets" required placeholder=(if suggestion.is_empty() { "192.168.1.0/24".to_string() } else { suggestion.clone() }) value=(suggestion);
                        span.muted.small { "Addresses or CIDRs, separated by commas. "
                            @if d.config.allow_public_targets { "Public targets are allowed by the configuration." }
                            @else { "Private ranges only (discovery.allow_public_targets)." } }
                        label for="ports" { "Ports" }
                        select #ports name="ports" {
                            @for (v, l) in [("default", "default: nmap top-100 + home/IoT + service-definition ports"), ("top100", "nmap top 100"), ("top1000", "nmap top 1000"), ("all", "all 65535")] {
                                option value=(v) selected[v == d.config.default_ports] { (l) }
                            }
                        }
                        span.muted.small { "Gentle by default: few connections per host at a time. At most " (d.config.max_concurrent_scans) " scan(s) run at once; more wait." }
                        button.primary type="submit" { "Scan" }
                    }
                }
                section.card {
                    h2 { "Import nmap XML" }
                    form.stack method="post" action="/scans/import" enctype="multipart/form-data" {
                        (csrf_field(who))
                        label for="nmapfile" { "Report file" }
                        input #nmapfile type="file" name="file" accept=".xml,text/xml,application/xml" required;
                        span.muted.small { "Written by " code { "nmap -oX FILE" } " (any scan type; -sV adds products). Up to "
                            (state.config.web.max_body_bytes / 1024) " KiB (web.max_body_bytes)." }
                        button.primary type="submit" { "Import" }
                    }
                }
            }
        }
        section.card {
            h2 { "Running" }
            @if active.is_empty() { p.muted { "No scan is running." } }
            @for (p, targets) in &active { (running_card(who, p, targets)) }
        }
        section.card {
            h2 { "History" }
            (history_table(state, &history))
            @if !d.config.schedules.is_empty() {
                p.muted.small { "Schedules: "
                    @for (i, s) in d.config.schedules.iter().enumerate() {
                        @if i > 0 { ", " }
                        code { (s.target) } " "
                        @match s.when {
                            crate::inventory::schedule::When::Every(e) => { "every " (humantime::format_duration(e)) }
                            crate::inventory::schedule::When::Daily(m) => { "daily " (format!("{:02}:{:02}", m / 60, m % 60)) " UTC" }
                        }
                    }
                }
            }
        }
    }
}

pub async fn scans_page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
) -> Response {
    let content = scans_markup(&state, &who, None);
    page(layout("Scans", Nav::Hosts, &who, None, content))
}

fn with_notice(state: &AppState, who: &Principal, status: StatusCode, n: Notice) -> Response {
    let content = scans_markup(state, who, Some(n));
    (status, page(layout("Scans", Nav::Hosts, who, None, content))).into_response()
}

pub async fn scan_start(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let fields = super::hosts::form_fields(&body);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let targets = get("targets").unwrap_or_default();
    let ports = get("ports");
    match state.discovery.start_scan(
        vec![targets.clone()],
        ports,
        ScanOrigin::Manual,
        &who.name,
        state.now(),
    ) {
        Ok(rec) => {
            audit(
                &state,
                &who,
                ip,
                "scan.start",
                format!("{} ports {}", targets, rec.ports),
            )
            .await;
            Redirect::to("/scans").into_response()
        }
        Err(e) => with_notice(
            &state,
            &who,
            StatusCode::BAD_REQUEST,
            Notice::Error(e.to_string()),
        ),
    }
}

pub async fn scan_cancel(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<u64>,
) -> Response {
    if state.discovery.cancel_scan(id) {
        audit(&state, &who, ip, "scan.cancel", id.to_string()).await;
        Redirect::to("/scans").into_response()
    } else {
        with_notice(
            &state,
            &who,
            StatusCode::NOT_FOUND,
            Notice::Error(format!("Scan {id} is not running.")),
        )
    }
}

pub async fn scan_import(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(part) = multipart::field(ct, &body, "file") else {
        return with_notice(
            &state,
            &who,
            StatusCode::BAD_REQUEST,
            Notice::Error("No file in the upload; choose an nmap XML report.".into()),
        );
    };
    let name = part.filename.unwrap_or_else(|| "upload.xml".into());
    let Ok(text) = std::str::from_utf8(part.data) else {
        return with_notice(
            &state,
            &who,
            StatusCode::BAD_REQUEST,
            Notice::Error(format!("{name} is not UTF-8 text; nothing was imported.")),
        );
    };
    let (d, now, actor, xml, n2) = (
        state.discovery.clone(),
        state.now(),
        who.name.clone(),
        text.to_string(),
        name.clone(),
    );
    match tokio::task::spawn_blocking(move || d.import_nmap(&xml, &n2, &actor, now)).await {
        Ok(Ok(rec)) => {
            audit(
                &state,
                &who,
                ip,
                "scan.import",
                format!("{name}: {}", rec.summary),
            )
            .await;
            with_notice(
                &state,
                &who,
                StatusCode::OK,
                Notice::Ok(format!("{name}: {}.", rec.summary)),
            )
        }
        Ok(Err(e)) => with_notice(
            &state,
            &who,
            StatusCode::BAD_REQUEST,
            Notice::Error(format!("{name}: {e}. Nothing was imported.")),
        ),
        Err(_) => with_notice(
            &state,
            &who,
            StatusCode::INTERNAL_SERVER_ERROR,
            Notice::Error("internal error; see the server log".into()),
        ),
    }
}

pub async fn scan_events(State(state): State<Arc<AppState>>, Path(id): Path<u64>) -> Response {
    if state.discovery.scan_progress(id).is_err() {
        return (StatusCode::NOT_FOUND, "no such scan").into_response();
    }
    let st = state.clone();
    sse::live(Duration::from_secs(1), state.shutdown.clone(), move || {
        match st.discovery.scan_progress(id) {
            Ok(p) => progress_fields(&p),
            Err(_) => vec![("state", "gone".to_string())],
        }
    })
    .into_response()
}
