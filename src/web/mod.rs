//! The web server: HTTPS (or plain HTTP behind a proxy), login/session/CSRF/RBAC, the
//! server-rendered pages, the JSON API with its OpenAPI document, SSE and `/metrics`.
//!
//! Module map:
//! - [`server`]: accept loop, TLS handshake, hyper, limits, graceful shutdown.
//! - [`tls`]: user certificate or generated self-signed one.
//! - [`access`]: the route → permission table and the recording router builder.
//! - [`guard`]: middleware: security headers, host check, timeouts, auth, CSRF.
//! - [`pages`]: maud pages (setup, login, dashboard, users & roles, tokens, audit, settings, about).
//! - [`logs`]: the Logs page, search/stats API, CSV/JSON export and the live tail.
//! - [`api`]: `/api/v1` JSON routes, one error shape, OpenAPI document and docs page.
//! - [`sse`]: the one helper every live page uses for Server-Sent Events.
//! - [`assets`]: static files embedded and pre-compressed at build time.
//! - [`flowmap`]: the traffic world map, the flows view and their enriched-flows feed.
//! - [`metrics`]: process facts and the Prometheus text endpoint.
//! - [`multipart`]: one named part of a multipart/form-data body (uploads, their CSRF field).
//! - [`inventory_api`]: `/api/v1` hosts, subnets, scans and imports.

pub mod access;
pub mod api;
pub mod assets;
pub mod flowmap;
pub mod guard;
pub mod inventory_api;
pub mod logs;
pub mod metrics;
pub mod multipart;
pub mod pages;
pub mod server;
pub mod sse;
pub mod tls;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::model::Timestamp;
use access::Routes;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The clock the web layer reads `now` from; tests inject their own.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Facts about this process shown on the dashboard and in `/api/v1/status`.
#[derive(Debug, Clone)]
pub struct Facts {
    pub version: &'static str,
    pub started_at: Timestamp,
    pub started: Instant,
    /// URLs the server answers on, e.g. `https://127.0.0.1:8443/`.
    pub urls: Vec<String>,
    pub tls: bool,
}

/// Everything handlers share.
pub struct AppState {
    pub accounts: Arc<Accounts>,
    pub config: Arc<Config>,
    pub facts: Facts,
    /// Required on the setup form while no user exists; printed on the console at start so
    /// that nobody else on the LAN can claim the admin account first.
    pub setup_token: String,
    pub metrics: metrics::HttpMetrics,
    pub shutdown: CancellationToken,
    pub clock: Clock,
    /// Hosts, scans and the passive sources.
    pub discovery: Arc<crate::discovery_service::Discovery>,
    /// Live traffic state shared by the capture threads (see [`crate::sensor`]).
    pub traffic: Arc<crate::sensor::TrafficHub>,
    /// The syslog receivers' counters, live tail and listener status.
    pub logs: Arc<crate::syslog::LogsHub>,
}

impl AppState {
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }
}

/// What [`run`] needs; the caller binds the listener (port 0 in tests) and opens the store.
pub struct WebDeps {
    pub listener: TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub state: Arc<AppState>,
}

/// Serves until `shutdown` is cancelled, then drains open connections.
pub async fn run(deps: WebDeps, shutdown: CancellationToken) {
    let cfg = &deps.state.config.web;
    let limits = server::ServerLimits {
        header_timeout: cfg.header_timeout,
        max_connections: cfg.max_connections,
    };
    let router = router(deps.state.clone());
    server::serve(deps.listener, deps.tls, router, limits, shutdown).await;
}

/// Every route, in one place. Access rules are in [`access::ROUTE_ACCESS`].
pub fn routes() -> Routes<Arc<AppState>> {
    use pages::{admin, auth, hosts, scans, system};
    Routes::new()
        .get("/healthz", system::healthz)
        .get("/static/{file}", assets::serve)
        .get("/favicon.ico", assets::favicon)
        .get("/setup", auth::setup_page)
        .post("/setup", auth::setup_submit)
        .get("/login", auth::login_page)
        .post("/login", auth::login_submit)
        .post("/logout", auth::logout)
        .get("/", system::dashboard)
        .get("/events/dashboard", system::dashboard_events)
        .get("/hosts", hosts::hosts_page)
        .post("/hosts/bulk", hosts::hosts_bulk)
        .get("/hosts/{id}", hosts::host_page)
        .post("/hosts/{id}/acknowledge", hosts::host_acknowledge)
        .post("/hosts/{id}/split", hosts::host_split)
        .get("/scans", scans::scans_page)
        .post("/scans", scans::scan_start)
        .post("/scans/import", scans::scan_import)
        .post("/scans/{id}/cancel", scans::scan_cancel)
        .get("/events/scans/{id}", scans::scan_events)
        .get("/traffic", pages::traffic::page)
        .get("/events/traffic", pages::traffic::events)
        .get("/traffic/map", flowmap::map_page)
        .get("/traffic/flows", flowmap::flows_page)
        .get("/traffic/flows.csv", flowmap::export_csv)
        .get("/traffic/flows.json", flowmap::export_json)
        .get("/events/traffic/map", flowmap::events)
        .get("/api/v1/traffic/map", flowmap::api_map)
        .get("/api/v1/traffic/top", flowmap::api_top)
        .get("/logs", logs::logs_page)
        .get("/logs/export.csv", logs::export_csv)
        .get("/logs/export.json", logs::export_json)
        .get("/events/logs", logs::tail)
        .get("/monitors", system::monitors)
        .get("/settings", system::settings)
        .get("/settings/users", admin::users_page)
        .post("/settings/users", admin::user_create)
        .post("/settings/users/{name}/role", admin::user_set_role)
        .post("/settings/users/{name}/password", admin::user_set_password)
        .post("/settings/users/{name}/delete", admin::user_delete)
        .post("/settings/roles/{name}", admin::role_update)
        .get("/settings/tokens", admin::tokens_page)
        .post("/settings/tokens", admin::token_create)
        .post("/settings/tokens/{id}/revoke", admin::token_revoke)
        .get("/settings/audit", admin::audit_page)
        .get("/about", system::about)
        .get("/metrics", metrics::prometheus)
        .get("/api/openapi.json", api::openapi_json)
        .get("/api/docs", api::docs_page)
        .get("/api/v1/status", api::status)
        .get("/api/v1/me", api::me)
        .get("/api/v1/users", api::users_list)
        .post("/api/v1/users", api::users_create)
        .delete("/api/v1/users/{name}", api::users_delete)
        .get("/api/v1/roles", api::roles_list)
        .put("/api/v1/roles/{name}", api::roles_update)
        .get("/api/v1/tokens", api::tokens_list)
        .post("/api/v1/tokens", api::tokens_create)
        .delete("/api/v1/tokens/{id}", api::tokens_delete)
        .get("/api/v1/audit", api::audit_list)
        .get("/api/v1/settings", api::settings)
        .get("/api/v1/hosts", inventory_api::hosts_list)
        .get("/api/v1/hosts/{id}", inventory_api::host_get)
        .delete("/api/v1/hosts/{id}", inventory_api::host_delete)
        .post("/api/v1/hosts/{id}/acknowledge", inventory_api::host_acknowledge)
        .post("/api/v1/hosts/{id}/merge", inventory_api::host_merge)
        .post("/api/v1/hosts/{id}/split", inventory_api::host_split)
        .get("/api/v1/subnets", inventory_api::subnets_list)
        .get("/api/v1/scans", inventory_api::scans_list)
        .post("/api/v1/scans", inventory_api::scans_start)
        .get("/api/v1/scans/{id}", inventory_api::scan_get)
        .post("/api/v1/scans/{id}/cancel", inventory_api::scan_cancel)
        .post("/api/v1/imports/nmap", inventory_api::import_nmap)
        .get("/api/v1/traffic/status", api::traffic::status)
        .get("/api/v1/traffic/windows", api::traffic::windows)
        .get("/api/v1/traffic/summary", api::traffic::summary)
        .get("/api/v1/traffic/flows", api::traffic::flows)
        .get("/api/v1/traffic/hosts/{ip}", api::traffic::host)
        .get("/api/v1/logs/search", logs::api_search)
        .get("/api/v1/logs/stats", logs::api_stats)
}

/// The complete application: routes, the access guard on each, and the outer layers.
pub fn router(state: Arc<AppState>) -> axum::Router {
    let max_body = state.config.web.max_body_bytes;
    routes()
        .into_router()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::authorize,
        ))
        .fallback(guard::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::outer))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_an_access_entry_and_every_entry_a_route() {
        let routes = routes();
        assert!(routes.registered().len() > 30);
        for (method, path) in routes.registered() {
            assert!(
                access::lookup(method, path).is_some(),
                "{method} {path} has no entry in access::ROUTE_ACCESS"
            );
        }
        for (method, path, _) in access::ROUTE_ACCESS {
            assert!(
                routes.registered().contains(&(*method, *path)),
                "ROUTE_ACCESS lists {method} {path}, which is not routed"
            );
        }
    }

    #[test]
    fn every_api_route_needs_a_login() {
        for (method, path, a) in access::ROUTE_ACCESS {
            if path.starts_with("/api/v1") {
                assert_ne!(*a, access::Access::Public, "{method} {path}");
            }
        }
    }
}
