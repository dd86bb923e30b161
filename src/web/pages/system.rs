//! Dashboard (real process facts, live over SSE), the subsystem pages, settings, about and
//! the health check.

use super::{empty_state, layout, page, settings_tabs, Nav};
use crate::accounts::Principal;
use crate::web::metrics::{human_bytes, human_duration, ProcessStats};
use crate::web::{sse, AppState};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use maud::{html, Markup};
use std::sync::Arc;
use std::time::Duration;

pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let store_ok = state.accounts.needs_setup().is_ok();
    let body = serde_json::json!({
        "status": if store_ok { "ok" } else { "degraded" },
        "version": state.facts.version,
        "store": if store_ok { "ok" } else { "error" },
    });
    let code = if store_ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// The live facts on the dashboard, keyed by `data-field` name.
fn dashboard_fields(state: &AppState, traffic: bool) -> sse::Snapshot {
    let p = ProcessStats::read();
    let s = state.accounts.store().stats();
    let now = state.now();
    let count = |table: &str| {
        s.entries
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let mut fields = vec![
        ("uptime", human_duration(state.facts.started.elapsed())),
        ("rss", human_bytes(p.rss_bytes)),
        ("cpu", format!("{:.1} s", p.cpu_seconds)),
        (
            "threads",
            p.threads.map(|t| t.to_string()).unwrap_or_else(|| "n/a".into()),
        ),
        (
            "fds",
            p.open_fds.map(|t| t.to_string()).unwrap_or_else(|| "n/a".into()),
        ),
        ("store_file", human_bytes(s.file_bytes)),
        ("store_used", human_bytes(s.used_bytes)),
        ("store_map", human_bytes(s.map_size as u64)),
        ("users", count("users").to_string()),
        ("sessions", count("sessions").to_string()),
        ("tokens", count("api_tokens").to_string()),
        ("audit", count("audit").to_string()),
        ("locked", state.accounts.locked_count(now).to_string()),
        ("requests", state.metrics.requests().to_string()),
        ("hosts", state.discovery.counts().0.to_string()),
        ("new_hosts", state.discovery.counts().1.to_string()),
        ("now", now.to_string()),
    ];
    // Only for users who may see traffic.
    if traffic {
        fields.push(("traffic_rate", traffic_rate(state)));
        fields.push(("top_talker", top_talker(state)));
    }
    fields
}

fn traffic_rate(state: &AppState) -> String {
    use super::traffic::{human_bits, human_count};
    let (_, _, pps, bps, _) = state.traffic.totals();
    format!("{} pkt/s · {}", human_count(pps), human_bits(bps))
}

fn top_talker(state: &AppState) -> String {
    let view = super::traffic::live_view(&state.traffic);
    match view.top.src_ips_by_bytes.first() {
        Some(e) => format!("{} ({})", e.key, human_bytes(e.value)),
        None => "–".into(),
    }
}

/// The capture state in a few words, for the dashboard.
fn capture_badge(state: &AppState) -> Markup {
    use crate::sensor::{CaptureMode, SourceState};
    let status = state.traffic.status();
    let running = status
        .sources
        .iter()
        .filter(|s| s.state == SourceState::Running)
        .count();
    let refused = status
        .sources
        .iter()
        .any(|s| matches!(s.state, SourceState::NotPermitted { .. }));
    html! {
        @if status.mode == CaptureMode::Disabled { span.badge { "off" } }
        @else if refused { a href="/traffic" { span.badge.bad { "not permitted" } } }
        @else if running > 0 { span.badge.ok { "capturing on " (running) } }
        @else if status.sources.is_empty() { span.badge.bad { "no interface" } }
        @else { span.badge { "idle" } }
    }
}

fn fact(label: &str, field: &str, fields: &sse::Snapshot) -> Markup {
    let value = fields
        .iter()
        .find(|(k, _)| *k == field)
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    html! {
        div.fact { dt { (label) } dd data-field=(field) { (value) } }
    }
}

pub async fn dashboard(State(state): State<Arc<AppState>>, Extension(who): Extension<Principal>) -> Response {
    let st = state.clone();
    let traffic = who.can(crate::model::Permission::ViewTraffic);
    let fields = tokio::task::spawn_blocking(move || dashboard_fields(&st, traffic))
        .await
        .unwrap_or_default();
    let f = &state.facts;
    let content = html! {
        div.grid data-live="/events/dashboard" {
            section.card {
                h2 { "gatewatch" }
                dl.facts {
                    div.fact { dt { "Version" } dd { (f.version) } }
                    div.fact { dt { "Started" } dd { (f.started_at) } }
                    (fact("Uptime", "uptime", &fields))
                    (fact("Server time", "now", &fields))
                }
            }
            section.card {
                h2 { "Listening on" }
                ul.plain {
                    @for url in &f.urls { li { a href=(url) { (url) } } }
                }
                p.muted.small {
                    @if f.tls { "HTTPS. A self-signed certificate is normal on first start; replace it with web.cert_file and web.key_file." }
                    @else { "Plain HTTP: keep it behind a TLS-terminating reverse proxy." }
                }
            }
            @if who.can(crate::model::Permission::ViewTraffic) {
                section.card {
                    h2 { a href="/traffic" { "Traffic" } }
                    dl.facts {
                        (fact("Rate now", "traffic_rate", &fields))
                        (fact("Top talker (recent)", "top_talker", &fields))
                    }
                }
            }
            section.card {
                h2 { "Process" }
                dl.facts {
                    (fact("Memory (RSS)", "rss", &fields))
                    (fact("CPU time", "cpu", &fields))
                    (fact("Threads", "threads", &fields))
                    (fact("Open files", "fds", &fields))
                    (fact("Requests served", "requests", &fields))
                }
            }
            section.card {
                h2 { "Database" }
                dl.facts {
                    div.fact { dt { "Location" } dd { code { (state.accounts.store().path().display()) } } }
                    (fact("File size", "store_file", &fields))
                    (fact("In use", "store_used", &fields))
                    (fact("Map size", "store_map", &fields))
                    (fact("Audit entries", "audit", &fields))
                }
            }
            @if who.can(crate::model::Permission::ViewHosts) {
                section.card {
                    h2 { "Hosts" }
                    dl.facts {
                        (fact("Known hosts", "hosts", &fields))
                        (fact("New devices", "new_hosts", &fields))
                    }
                    p { a href="/hosts" { "All hosts →" } " · " a href="/hosts?new=1" { "New devices →" } }
                }
            }
            section.card {
                h2 { "Access" }
                dl.facts {
                    (fact("Users", "users", &fields))
                    (fact("Active sessions", "sessions", &fields))
                    (fact("API tokens", "tokens", &fields))
                    (fact("Locked out", "locked", &fields))
                }
                @if who.can(crate::model::Permission::ManageUsers) {
                    p { a href="/settings/users" { "Manage users →" } }
                }
            }
            section.card {
                h2 { "Subsystems" }
                table.compact {
                    tbody {
                        tr { td { "Web UI and API" } td { span.badge.ok { "running" } } }
                        tr { td { a href="/traffic" { "Traffic capture" } } td { (capture_badge(&state)) } }
                        tr { td { a href="/hosts" { "Passive discovery" } } td {
                            @if state.discovery.config.passive { span.badge.ok { "running" } } @else { span.badge { "off" } }
                        } }
                        tr { td { a href="/logs" { "Syslog receiver" } } td { (syslog_badge(&state)) } }
                        @for name in SUBSYSTEMS {
                            tr { td { (name) } td { span.badge { "not enabled" } } }
                        }
                    }
                }
            }
        }
    };
    page(layout("Dashboard", Nav::Dashboard, &who, None, content))
}

/// "listening" when at least one syslog listener is bound, "off" when none is configured,
/// "failed" when every configured one failed to bind.
fn syslog_badge(state: &AppState) -> Markup {
    let listeners = state.logs.listeners.lock().map(|l| l.clone()).unwrap_or_default();
    if listeners.is_empty() {
        html! { span.badge { "off" } }
    } else if listeners.iter().any(|l| l.result.is_ok()) {
        html! { span.badge.ok { "listening" } }
    } else {
        html! { span.badge.bad { "failed" } }
    }
}

/// The engines that are not part of this build yet.
const SUBSYSTEMS: [&str; 1] = ["Monitors and alerts"];

pub async fn dashboard_events(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
) -> Response {
    let st = state.clone();
    let traffic = who.can(crate::model::Permission::ViewTraffic);
    sse::live(Duration::from_secs(2), state.shutdown.clone(), move || {
        dashboard_fields(&st, traffic)
    })
    .into_response()
}

fn subsystem_page(who: &Principal, nav: Nav, title: &str, what: &str, how: Markup) -> Response {
    let content = empty_state(
        "Nothing collected yet",
        html! {
            p { (what) }
            (how)
        },
    );
    page(layout(title, nav, who, None, content))
}

pub async fn monitors(Extension(who): Extension<Principal>) -> Response {
    subsystem_page(
        &who,
        Nav::Monitors,
        "Monitors",
        "Ping and TCP monitors, uptime history and alerts appear here.",
        html! { p.muted { "No monitor is defined on this instance." } },
    )
}

pub async fn settings(State(state): State<Arc<AppState>>, Extension(who): Extension<Principal>) -> Response {
    let cfg = &state.config;
    let content = html! {
        (settings_tabs(&who, "/settings"))
        section.card {
            h2 { "Effective configuration" }
            p.muted {
                "Read from "
                @match &cfg.source_file {
                    Some(p) => code { (p.display()) },
                    None => "built-in defaults (no config file found)",
                }
                ". Change it in the file, with GATEWATCH_* environment variables or flags, then restart. "
                "Print a commented sample with " code { "gatewatch config example" } "."
            }
            div.scroll {
                table {
                    thead { tr { th { "Key" } th { "Value" } th { "Set by" } } }
                    tbody {
                        tr { td { code { "data_dir (effective)" } } td { code { (cfg.data_dir.display()) } } td { } }
                        @for (key, value, origin) in &cfg.effective {
                            tr { td { code { (key) } } td { code { (value) } } td.muted { (origin) } }
                        }
                    }
                }
            }
        }
    };
    page(layout("Settings", Nav::Settings, &who, None, content))
}

pub async fn about(State(state): State<Arc<AppState>>, Extension(who): Extension<Principal>) -> Response {
    let f = &state.facts;
    let content = html! {
        (settings_tabs(&who, "/about"))
        section.card {
            h2 { "gatewatch " (f.version) }
            p { "Network visibility that runs on the router itself: traffic, discovery, inventory, logs and monitoring from one static binary." }
            dl.facts {
                div.fact { dt { "Platform" } dd { (std::env::consts::OS) " / " (std::env::consts::ARCH) } }
                div.fact { dt { "Process id" } dd { (std::process::id()) } }
                div.fact { dt { "Data dir" } dd { code { (state.config.data_dir.display()) } } }
                div.fact { dt { "API" } dd { a href="/api/docs" { "/api/docs" } " · " a href="/api/openapi.json" { "OpenAPI document" } } }
                div.fact { dt { "Metrics" } dd { a href="/metrics" { "/metrics" } " (Prometheus; scrape with an API token)" } }
            }
        }
    };
    page(layout("About", Nav::Settings, &who, None, content))
}
