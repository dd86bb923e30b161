//! Server-rendered pages (maud). Every page works without JavaScript; `static/app.js` only
//! adds live updates. The layout, navigation and shared bits live here.
//!
//! - [`auth`]: setup, login, logout.
//! - [`system`]: dashboard, subsystem pages, settings, about, health.
//! - [`traffic`]: the Traffic page (live chart, breakdowns, top lists, flows) and its SSE.
//! - [`admin`]: users & roles, API tokens, audit log.
//! - [`hosts`]: hosts table, subnets, host page.
//! - [`scans`]: scan now, progress, history, nmap import.

pub mod admin;
pub mod auth;
pub mod hosts;
pub mod scans;
pub mod system;
pub mod traffic;

use super::assets;
use crate::accounts::Principal;
use crate::model::Permission;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// Top-level sections, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Traffic,
    Hosts,
    Logs,
    Monitors,
    Settings,
}

const NAV: [(Nav, &str, &str, Permission); 6] = [
    (Nav::Dashboard, "Dashboard", "/", Permission::ViewDashboard),
    (Nav::Traffic, "Traffic", "/traffic", Permission::ViewTraffic),
    (Nav::Hosts, "Hosts", "/hosts", Permission::ViewHosts),
    (Nav::Logs, "Logs", "/logs", Permission::ViewLogs),
    (Nav::Monitors, "Monitors", "/monitors", Permission::ViewMonitors),
    (Nav::Settings, "Settings", "/settings", Permission::ViewSettings),
];

/// A message shown at the top of a page.
pub enum Notice {
    Ok(String),
    Error(String),
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) " · gatewatch" }
            link rel="stylesheet" href=(assets::url("app.css"));
            link rel="icon" href=(assets::url("favicon.svg")) type="image/svg+xml";
            script src=(assets::url("app.js")) defer {}
        }
    }
}

/// The page frame for logged-in users: top bar, navigation, notice, content.
pub fn layout(title: &str, active: Nav, who: &Principal, notice: Option<Notice>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.topbar {
                    a.brand href="/" { span.logo aria-hidden="true" { "◉" } " gatewatch" }
                    nav.mainnav aria-label="Main" {
                        @for (nav, label, href, perm) in NAV {
                            @if who.can(perm) {
                                a href=(href) aria-current=[(nav == active).then_some("page")] { (label) }
                            }
                        }
                    }
                    div.who {
                        span.user title=(format!("role: {}", who.role.name)) { (who.name) " · " span.role { (who.role.name) } }
                        form method="post" action="/logout" {
                            (csrf_field(who))
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    @if let Some(n) = notice { (notice_box(n)) }
                    (content)
                }
                footer.foot { "gatewatch " (crate::cli::VERSION) " · " a href="/about" { "About" } " · " a href="/api/docs" { "API" } }
            }
        }
    }
}

/// The frame for pages without a login (setup, login, errors).
pub fn bare_layout(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main #main.card.narrow {
                    p.brand.center { span.logo aria-hidden="true" { "◉" } " gatewatch" }
                    (content)
                }
            }
        }
    }
}

pub fn notice_box(n: Notice) -> Markup {
    match n {
        Notice::Ok(m) => html! { p.notice.ok role="status" { (m) } },
        Notice::Error(m) => html! { p.notice.error role="alert" { (m) } },
    }
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(who: &Principal) -> Markup {
    html! { input type="hidden" name="csrf" value=(who.csrf_token.as_deref().unwrap_or_default()); }
}

/// A settings sub-page: the section's tabs above the content.
pub fn settings_tabs(who: &Principal, current: &str) -> Markup {
    let tabs = [
        ("/settings", "Configuration", Permission::ViewSettings),
        ("/settings/users", "Users & roles", Permission::ManageUsers),
        ("/settings/tokens", "API tokens", Permission::ManageTokens),
        ("/settings/audit", "Audit log", Permission::ViewAudit),
        ("/api/docs", "API", Permission::ViewDashboard),
        ("/about", "About", Permission::ViewDashboard),
    ];
    html! {
        nav.tabs aria-label="Settings" {
            @for (href, label, perm) in tabs {
                @if who.can(perm) {
                    a href=(href) aria-current=[(href == current).then_some("page")] { (label) }
                }
            }
        }
    }
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = bare_layout(
        title,
        html! {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "Back to the dashboard" } }
        },
    );
    (status, Html(body.into_string())).into_response()
}

/// One CSV field of an export: quoted when it holds a separator, quote or line break, and
/// prefixed with `'` when it starts like a spreadsheet formula (`=`, `+`, `-`, `@`).
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Percent-encodes for a query value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Renders a whole page response.
pub fn page(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// An empty state: what this place will show and what to do to fill it.
pub fn empty_state(title: &str, body: Markup) -> Markup {
    html! {
        section.card.empty {
            h2 { (title) }
            (body)
        }
    }
}
