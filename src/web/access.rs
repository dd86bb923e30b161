//! The one table that says what every route needs. The guard looks requests up here and
//! refuses any route that is missing (fail closed); a test checks that every registered
//! route has an entry.

use crate::model::Permission;
use axum::handler::Handler;
use axum::routing::{delete, get, post, put};
use axum::Router;
use std::sync::Arc;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: login page, health check, static files.
    Public,
    /// Only while no user exists (first start).
    Setup,
    /// Any logged-in user.
    AnyUser,
    /// A logged-in user or token whose role has this permission.
    Needs(Permission),
}

use Access::*;
use Permission::*;

/// (method, path pattern as registered, access).
pub const ROUTE_ACCESS: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Public),
    ("GET", "/static/{file}", Public),
    ("GET", "/favicon.ico", Public),
    ("GET", "/setup", Setup),
    ("POST", "/setup", Setup),
    ("GET", "/login", Public),
    ("POST", "/login", Public),
    ("POST", "/logout", AnyUser),
    ("GET", "/", Needs(ViewDashboard)),
    ("GET", "/events/dashboard", Needs(ViewDashboard)),
    ("GET", "/traffic", Needs(ViewTraffic)),
    ("GET", "/events/traffic", Needs(ViewTraffic)),
    ("GET", "/traffic/map", Needs(ViewTraffic)),
    ("GET", "/traffic/flows", Needs(ViewTraffic)),
    ("GET", "/traffic/flows.csv", Needs(ViewTraffic)),
    ("GET", "/traffic/flows.json", Needs(ViewTraffic)),
    ("GET", "/events/traffic/map", Needs(ViewTraffic)),
    ("GET", "/api/v1/traffic/map", Needs(ViewTraffic)),
    ("GET", "/api/v1/traffic/top", Needs(ViewTraffic)),
    ("GET", "/hosts", Needs(ViewHosts)),
    ("POST", "/hosts/bulk", Needs(EditHosts)),
    ("GET", "/hosts/{id}", Needs(ViewHosts)),
    ("POST", "/hosts/{id}/acknowledge", Needs(EditHosts)),
    ("POST", "/hosts/{id}/split", Needs(EditHosts)),
    ("GET", "/scans", Needs(ViewHosts)),
    ("POST", "/scans", Needs(RunScans)),
    ("POST", "/scans/import", Needs(RunScans)),
    ("POST", "/scans/{id}/cancel", Needs(RunScans)),
    ("GET", "/events/scans/{id}", Needs(ViewHosts)),
    ("GET", "/logs", Needs(ViewLogs)),
    ("GET", "/logs/export.csv", Needs(ViewLogs)),
    ("GET", "/logs/export.json", Needs(ViewLogs)),
    ("GET", "/events/logs", Needs(ViewLogs)),
    ("GET", "/monitors", Needs(ViewMonitors)),
    ("GET", "/settings", Needs(ViewSettings)),
    ("GET", "/settings/users", Needs(ManageUsers)),
    ("POST", "/settings/users", Needs(ManageUsers)),
    ("POST", "/settings/users/{name}/role", Needs(ManageUsers)),
    ("POST", "/settings/users/{name}/password", Needs(ManageUsers)),
    ("POST", "/settings/users/{name}/delete", Needs(ManageUsers)),
    ("POST", "/settings/roles/{name}", Needs(ManageUsers)),
    ("GET", "/settings/tokens", Needs(ManageTokens)),
    ("POST", "/settings/tokens", Needs(ManageTokens)),
    ("POST", "/settings/tokens/{id}/revoke", Needs(ManageTokens)),
    ("GET", "/settings/audit", Needs(ViewAudit)),
    ("GET", "/about", Needs(ViewDashboard)),
    ("GET", "/metrics", Needs(ViewDashboard)),
    ("GET", "/api/openapi.json", Public),
    ("GET", "/api/docs", Needs(ViewDashboard)),
    ("GET", "/api/v1/status", Needs(ViewDashboard)),
    ("GET", "/api/v1/me", AnyUser),
    ("GET", "/api/v1/users", Needs(ManageUsers)),
    ("POST", "/api/v1/users", Needs(ManageUsers)),
    ("DELETE", "/api/v1/users/{name}", Needs(ManageUsers)),
    ("GET", "/api/v1/roles", Needs(ManageUsers)),
    ("PUT", "/api/v1/roles/{name}", Needs(ManageUsers)),
    ("GET", "/api/v1/tokens", Needs(ManageTokens)),
    ("POST", "/api/v1/tokens", Needs(ManageTokens)),
    ("DELETE", "/api/v1/tokens/{id}", Needs(ManageTokens)),
    ("GET", "/api/v1/audit", Needs(ViewAudit)),
    ("GET", "/api/v1/settings", Needs(ViewSettings)),
    ("GET", "/api/v1/hosts", Needs(ViewHosts)),
    ("GET", "/api/v1/hosts/{id}", Needs(ViewHosts)),
    ("DELETE", "/api/v1/hosts/{id}", Needs(EditHosts)),
    ("POST", "/api/v1/hosts/{id}/acknowledge", Needs(EditHosts)),
    ("POST", "/api/v1/hosts/{id}/merge", Needs(EditHosts)),
    ("POST", "/api/v1/hosts/{id}/split", Needs(EditHosts)),
    ("GET", "/api/v1/subnets", Needs(ViewHosts)),
    ("GET", "/api/v1/scans", Needs(ViewHosts)),
    ("POST", "/api/v1/scans", Needs(RunScans)),
    ("GET", "/api/v1/scans/{id}", Needs(ViewHosts)),
    ("POST", "/api/v1/scans/{id}/cancel", Needs(RunScans)),
    ("POST", "/api/v1/imports/nmap", Needs(RunScans)),
    ("GET", "/api/v1/traffic/status", Needs(ViewTraffic)),
    ("GET", "/api/v1/traffic/windows", Needs(ViewTraffic)),
    ("GET", "/api/v1/traffic/summary", Needs(ViewTraffic)),
    ("GET", "/api/v1/traffic/flows", Needs(ViewTraffic)),
    ("GET", "/api/v1/traffic/hosts/{ip}", Needs(ViewTraffic)),
    ("GET", "/api/v1/logs/search", Needs(ViewLogs)),
    ("GET", "/api/v1/logs/stats", Needs(ViewLogs)),
];

/// What `method path` needs, or `None` when the route is not in the table.
pub fn lookup(method: &str, path: &str) -> Option<Access> {
    ROUTE_ACCESS
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, a)| *a)
}

/// Builds the axum router while recording every (method, path) it registers, so tests can
/// compare the router with [`ROUTE_ACCESS`].
pub struct Routes<S> {
    router: Router<S>,
    registered: Vec<(&'static str, &'static str)>,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            registered: Vec::new(),
        }
    }

    pub fn get<H: Handler<T, S>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.registered.push(("GET", path));
        self.router = self.router.route(path, get(h));
        self
    }

    pub fn post<H: Handler<T, S>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.registered.push(("POST", path));
        self.router = self.router.route(path, post(h));
        self
    }

    pub fn put<H: Handler<T, S>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.registered.push(("PUT", path));
        self.router = self.router.route(path, put(h));
        self
    }

    pub fn delete<H: Handler<T, S>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.registered.push(("DELETE", path));
        self.router = self.router.route(path, delete(h));
        self
    }

    pub fn registered(&self) -> &[(&'static str, &'static str)] {
        &self.registered
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// Shared state type the routes are built over.
pub type State = Arc<super::AppState>;
