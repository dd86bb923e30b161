//! The JSON API under `/api/v1`, its one error shape, the OpenAPI document generated from
//! these handlers (utoipa; a test writes it to `openapi.json`, which the binary embeds) and a
//! server-rendered docs page built from that document.
//!
//! Authentication: a session cookie (then state-changing calls need the `X-CSRF-Token`
//! header) or `Authorization: Bearer <token>`. Writes are audited like the UI's.

use super::access::{self, Access};
use super::guard::ClientIp;
use super::metrics::ProcessStats;
use super::pages::admin::{audited, format_cursor, parse_cursor};
use super::pages::{layout, page, settings_tabs, Nav};
use super::AppState;
use crate::accounts::{AccountError, Principal};
use crate::model::{ApiToken, AuditEntry, Permission, Role, User};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use maud::html;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

pub mod traffic;

/// Every API error looks like `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    pub error: ErrorBody,
    #[serde(skip)]
    #[schema(ignore)]
    status: StatusCode,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `unauthorized`, `forbidden`, `not_found`, `invalid`.
    pub code: String,
    /// What went wrong and what to do, for people.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: &str) -> Self {
        ApiError {
            error: ErrorBody {
                code: code.into(),
                message: message.into(),
            },
            status,
        }
    }

    pub fn internal(message: &str) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        let (status, code) = match &e {
            AccountError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            AccountError::NoSuchUser(_) | AccountError::NoSuchRole(_) | AccountError::NoSuchToken(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            AccountError::UserExists(_) => (StatusCode::CONFLICT, "conflict"),
            AccountError::BadCredentials => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AccountError::LockedOut(_) => (StatusCode::TOO_MANY_REQUESTS, "locked_out"),
            _ => (StatusCode::BAD_REQUEST, "invalid"),
        };
        ApiError::new(status, code, &e.to_string())
    }
}

/// JSON body extractor whose rejections use the API error shape.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(ApiError::new(e.status(), "invalid", &e.body_text())),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

// ---- bodies ----

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub version: String,
    /// RFC 3339.
    pub started_at: String,
    pub uptime_seconds: u64,
    pub urls: Vec<String>,
    pub tls: bool,
    pub process: ProcessBody,
    pub store: StoreBody,
}

#[derive(Serialize, ToSchema)]
pub struct ProcessBody {
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
    pub threads: Option<u64>,
    pub open_fds: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct StoreBody {
    pub path: String,
    pub file_bytes: u64,
    pub used_bytes: u64,
    pub map_bytes: u64,
    /// Entries per table.
    pub entries: std::collections::BTreeMap<String, u64>,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub name: String,
    pub role: String,
    pub permissions: Vec<Permission>,
}

#[derive(Serialize, ToSchema)]
pub struct UserBody {
    pub username: String,
    pub role: String,
    pub created_at: String,
    pub last_login: Option<String>,
}

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        UserBody {
            username: u.username,
            role: u.role,
            created_at: u.created_at.to_string(),
            last_login: u.last_login.map(|t| t.to_string()),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    pub username: String,
    /// admin, network-admin, security-analyst or viewer.
    pub role: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct RoleBody {
    pub name: String,
    pub description: String,
    pub permissions: Vec<Permission>,
}

impl From<Role> for RoleBody {
    fn from(r: Role) -> Self {
        RoleBody {
            name: r.name,
            description: r.description,
            permissions: r.permissions.into_iter().collect(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct RoleUpdate {
    /// The complete new permission set.
    pub permissions: Vec<Permission>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenBody {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub created_by: String,
    pub last_used: Option<String>,
}

impl From<ApiToken> for TokenBody {
    fn from(t: ApiToken) -> Self {
        TokenBody {
            id: t.id,
            name: t.name,
            role: t.role,
            created_at: t.created_at.to_string(),
            created_by: t.created_by,
            last_used: t.last_used.map(|t| t.to_string()),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewToken {
    pub name: String,
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// The secret, shown only in this response. Send it as `Authorization: Bearer <token>`.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenBody,
}

#[derive(Serialize, ToSchema)]
pub struct AuditBody {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub remote_addr: String,
}

impl From<AuditEntry> for AuditBody {
    fn from(e: AuditEntry) -> Self {
        AuditBody {
            at: e.at.to_string(),
            actor: e.actor,
            action: e.action,
            detail: e.detail,
            remote_addr: e.remote_addr,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditBody>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// Cursor from a previous page's `next`.
    pub before: Option<String>,
    /// Entries per page, 1–500 (default 100).
    pub limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct Setting {
    pub key: String,
    /// Effective value; secrets are masked.
    pub value: String,
    /// Where it was set: default, file and line, env variable or flag.
    pub origin: String,
}

// ---- handlers ----

/// Process and database facts: version, uptime, listeners, memory, store size.
#[utoipa::path(get, path = "/api/v1/status", tag = "system",
    responses((status = 200, body = Status), (status = 401, body = ApiError)))]
pub async fn status(State(state): State<Arc<AppState>>) -> ApiResult<Json<Status>> {
    let st = state.clone();
    let (p, s) = tokio::task::spawn_blocking(move || (ProcessStats::read(), st.accounts.store().stats()))
        .await
        .map_err(|_| ApiError::internal("status failed"))?;
    let f = &state.facts;
    Ok(Json(Status {
        version: f.version.to_string(),
        started_at: f.started_at.to_string(),
        uptime_seconds: f.started.elapsed().as_secs(),
        urls: f.urls.clone(),
        tls: f.tls,
        process: ProcessBody {
            rss_bytes: p.rss_bytes,
            cpu_seconds: p.cpu_seconds,
            threads: p.threads,
            open_fds: p.open_fds,
        },
        store: StoreBody {
            path: state.accounts.store().path().display().to_string(),
            file_bytes: s.file_bytes,
            used_bytes: s.used_bytes,
            map_bytes: s.map_size as u64,
            entries: s.entries.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        },
    }))
}

/// Who the caller is and what their role allows.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = Me), (status = 401, body = ApiError)))]
pub async fn me(Extension(who): Extension<Principal>) -> Json<Me> {
    Json(Me {
        name: who.name,
        role: who.role.name,
        permissions: who.role.permissions.into_iter().collect(),
    })
}

/// All users.
#[utoipa::path(get, path = "/api/v1/users", tag = "accounts",
    responses((status = 200, body = Vec<UserBody>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub async fn users_list(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<UserBody>>> {
    let users = state.accounts.list_users()?;
    Ok(Json(users.into_iter().map(UserBody::from).collect()))
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = NewUser,
    responses((status = 201, body = UserBody), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
pub async fn users_create(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<UserBody>)> {
    let detail = format!("{} as {}", body.username, body.role);
    let user = audited(&state, &who, ip, "user.add", detail, move |a, now| {
        a.create_user(&body.username, &body.role, &body.password, now)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Remove a user (not the last admin).
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "accounts",
    params(("name" = String, Path, description = "Username")),
    responses((status = 204), (status = 404, body = ApiError)))]
pub async fn users_delete(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    audited(&state, &who, ip, "user.remove", name.clone(), move |a, _| {
        a.remove_user(&name)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Roles and their permission sets.
#[utoipa::path(get, path = "/api/v1/roles", tag = "accounts",
    responses((status = 200, body = Vec<RoleBody>)))]
pub async fn roles_list(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<RoleBody>>> {
    Ok(Json(
        state.accounts.roles()?.into_iter().map(RoleBody::from).collect(),
    ))
}

/// Replace a role's permission set.
#[utoipa::path(put, path = "/api/v1/roles/{name}", tag = "accounts", request_body = RoleUpdate,
    params(("name" = String, Path, description = "Role name")),
    responses((status = 200, body = RoleBody), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub async fn roles_update(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RoleUpdate>,
) -> ApiResult<Json<RoleBody>> {
    let perms: std::collections::BTreeSet<Permission> = body.permissions.into_iter().collect();
    let detail = format!(
        "{name}: {}",
        perms.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
    );
    let role = audited(&state, &who, ip, "role.update", detail, move |a, _| {
        a.set_role_permissions(&name, perms)
    })
    .await?;
    Ok(Json(role.into()))
}

/// API tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "accounts",
    responses((status = 200, body = Vec<TokenBody>)))]
pub async fn tokens_list(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<TokenBody>>> {
    Ok(Json(
        state
            .accounts
            .list_tokens()?
            .into_iter()
            .map(TokenBody::from)
            .collect(),
    ))
}

/// Create an API token; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "accounts", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ApiError)))]
pub async fn tokens_create(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let detail = format!("{} as {}", body.name, body.role);
    let creator = who.name.clone();
    let (token, info) = audited(&state, &who, ip, "token.create", detail, move |a, now| {
        a.create_token(&body.name, &body.role, &creator, now)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            info: info.into(),
        }),
    ))
}

/// Revoke an API token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "accounts",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204), (status = 404, body = ApiError)))]
pub async fn tokens_delete(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    audited(&state, &who, ip, "token.revoke", id.clone(), move |a, _| {
        a.revoke_token(&id)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log, newest first, paged.
#[utoipa::path(get, path = "/api/v1/audit", tag = "accounts", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = ApiError)))]
pub async fn audit_list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let before = match q.before.as_deref() {
        None | Some("") => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "before must be a cursor from a previous page's next",
            )
        })?),
    };
    let entries = state.accounts.audit_page(before, limit)?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|(k, _)| format_cursor(k)))
        .flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(|(_, e)| e.into()).collect(),
        next,
    }))
}

/// The effective configuration, secrets masked, with where each value came from.
#[utoipa::path(get, path = "/api/v1/settings", tag = "system",
    responses((status = 200, body = Vec<Setting>)))]
pub async fn settings(State(state): State<Arc<AppState>>) -> Json<Vec<Setting>> {
    Json(
        state
            .config
            .effective
            .iter()
            .map(|(k, v, o)| Setting {
                key: k.clone(),
                value: v.clone(),
                origin: o.to_string(),
            })
            .collect(),
    )
}

// ---- the OpenAPI document and its page ----

#[derive(OpenApi)]
#[openapi(
    info(title = "gatewatch API", description = "JSON API of gatewatch. Authenticate with `Authorization: Bearer <token>` (create one with `gatewatch token create` or on Settings → API tokens) or a session cookie plus the `X-CSRF-Token` header for writes. Errors are `{\"error\": {\"code\", \"message\"}}`."),
    paths(status, me, users_list, users_create, users_delete, roles_list, roles_update,
          tokens_list, tokens_create, tokens_delete, audit_list, settings,
          traffic::status, traffic::windows, traffic::summary, traffic::flows, traffic::host,
          super::logs::api_search, super::logs::api_stats,
          super::inventory_api::hosts_list, super::inventory_api::host_get,
          super::inventory_api::host_delete, super::inventory_api::host_acknowledge,
          super::inventory_api::host_merge, super::inventory_api::host_split,
          super::inventory_api::subnets_list, super::inventory_api::scans_list,
          super::inventory_api::scans_start, super::inventory_api::scan_get,
          super::inventory_api::scan_cancel, super::inventory_api::import_nmap,
          super::flowmap::api_map, super::flowmap::api_top),
    modifiers(&BearerAuth),
    tags((name = "system", description = "Process, store and configuration"),
         (name = "accounts", description = "Users, roles, tokens and the audit log"),
         (name = "traffic", description = "Capture status, traffic windows and history, flows, hosts"),
         (name = "logs", description = "Received syslog and firewall lines: search and statistics; the live tail is the SSE stream /events/logs"),
         (name = "inventory", description = "Hosts, subnets, scans and imports"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// The OpenAPI document as shipped: generated from `ApiDoc` by the test
/// `openapi_json_matches_the_handlers` (run it with `UPDATE_OPENAPI=1` after changing an
/// API route) into `src/web/openapi.json`, which build.rs embeds gzip-compressed. So the
/// binary carries no document-building code (about 420 kB of the x86_64 router binary).
static OPENAPI_JSON_GZ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi.json.gz"));

/// The shipped OpenAPI document's text.
pub fn openapi_text() -> String {
    crate::embedded::inflate_text(OPENAPI_JSON_GZ).expect("build.rs embeds valid gzip of a UTF-8 file")
}

pub async fn openapi_json() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_text(),
    )
        .into_response()
}

/// The API reference, rendered on the server from the same OpenAPI document.
pub async fn docs_page(Extension(who): Extension<Principal>) -> Response {
    let doc: serde_json::Value = serde_json::from_str(&openapi_text()).unwrap_or_default();
    let no_paths = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&no_paths);
    let content = html! {
        (settings_tabs(&who, "/api/docs"))
        section.card {
            h2 { "Using the API" }
            p { "Send " code { "Authorization: Bearer <token>" } " with every request. Create a token with "
                code { "gatewatch token create --name NAME --role ROLE" } " or on " a href="/settings/tokens" { "API tokens" } "." }
            p { "Errors always look like " code { "{\"error\": {\"code\": \"forbidden\", \"message\": \"…\"}}" } "." }
            p { "Machine-readable document: " a href="/api/openapi.json" { "/api/openapi.json" } " (OpenAPI 3.1)." }
        }
        @for (path, item) in paths {
            @for (method, op) in operations(item) {
                section.card.endpoint {
                    h3 {
                        span class=(format!("method {}", method.to_ascii_lowercase())) { (method) }
                        " " code { (path) }
                    }
                    @if let Some(s) = op["summary"].as_str() { p { (s) } }
                    p.muted.small { "Needs: " (access_label(access::lookup(method, path))) }
                    @if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                        p.small { "Parameters: "
                            @for p in params { code { (p["name"].as_str().unwrap_or_default()) } " " }
                        }
                    }
                    p.small { "Responses: "
                        @for code in op["responses"].as_object().into_iter().flat_map(|r| r.keys()) {
                            span.badge { (code) } " "
                        }
                    }
                }
            }
        }
    };
    page(layout("API", Nav::Settings, &who, None, content))
}

/// The operations of one path item of the document, in the order the page lists them.
fn operations(item: &serde_json::Value) -> Vec<(&'static str, &serde_json::Value)> {
    ["GET", "POST", "PUT", "DELETE", "PATCH"]
        .into_iter()
        .filter_map(|m| item.get(m.to_ascii_lowercase()).map(|op| (m, op)))
        .collect()
}

fn access_label(a: Option<Access>) -> String {
    match a {
        Some(Access::Public) => "nothing (public)".into(),
        Some(Access::Setup) => "first start only".into(),
        Some(Access::AnyUser) => "any logged-in user or token".into(),
        Some(Access::Needs(p)) => format!("the {} permission", p.name()),
        None => "(not routed)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_document() -> serde_json::Value {
        serde_json::from_str(&openapi_text()).expect("src/web/openapi.json is JSON")
    }

    #[test]
    fn openapi_json_matches_the_handlers() {
        let generated = serde_json::to_value(ApiDoc::openapi()).unwrap();
        if generated == shipped_document() {
            return;
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
            std::fs::write(path, text).unwrap();
            panic!("{path} rewritten; rebuild and run the tests again");
        }
        panic!("{path} is out of date: run `UPDATE_OPENAPI=1 cargo test --lib openapi_json` and commit it");
    }

    #[test]
    fn openapi_lists_every_api_route_in_the_access_table() {
        let doc = shipped_document();
        for (method, path, _) in access::ROUTE_ACCESS {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let item = &doc["paths"][*path];
            assert!(item.is_object(), "{path} missing from OpenAPI");
            assert!(
                operations(item).iter().any(|(m, _)| m == method),
                "{method} {path} missing from OpenAPI"
            );
        }
    }
}
