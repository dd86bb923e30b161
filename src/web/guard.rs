//! Middleware every request passes: `outer` (host check, timeout, security headers,
//! counters) on all requests, and `authorize` (who is asking, may they, CSRF) on each
//! routed request, looked up in [`super::access::ROUTE_ACCESS`].

use super::access::{self, Access};
use super::server::PeerAddr;
use super::{api, pages, AppState};
use crate::accounts::Principal;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::net::IpAddr;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "gw_session";
/// Double-submit cookie protecting the login and setup forms (no session exists yet).
pub const PRELOGIN_CSRF_COOKIE: &str = "gw_csrf";
/// Header carrying the session's CSRF token for JSON requests made with a session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The client's address: the TCP peer, or the first untrusted hop of X-Forwarded-For when
/// the peer is a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Runs for every request, routed or not.
pub async fn outer(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    state.metrics.count_request();
    if !host_allowed(&state, req.headers()) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "unknown Host; add it to web.trusted_hosts",
        )
            .into_response();
    }
    let ip = client_ip(&state, &req);
    req.extensions_mut().insert(ClientIp(ip));
    let timeout = state.config.web.request_timeout;
    let mut resp = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long").into_response(),
    };
    state.metrics.count_status(resp.status());
    set_security_headers(resp.headers_mut(), state.facts.tls);
    resp
}

fn set_security_headers(h: &mut HeaderMap, tls: bool) {
    let mut set = |name: header::HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "same-origin");
    set(header::CACHE_CONTROL, "no-store");
    set(
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    set(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if tls {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
}

fn host_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let allowed = &state.config.web.trusted_hosts;
    if allowed.is_empty() {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let name = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default().to_string()
    };
    allowed
        .iter()
        .any(|a| *a == name || a.trim_matches(['[', ']']) == name.trim_matches(['[', ']']))
}

fn client_ip(state: &AppState, req: &Request) -> IpAddr {
    let peer = req
        .extensions()
        .get::<PeerAddr>()
        .map(|p| p.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let proxies = &state.config.web.trusted_proxies;
    if !proxies.iter().any(|n| n.contains(&peer)) {
        return peer;
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !proxies.iter().any(|n| n.contains(ip)))
        .unwrap_or(peer)
}

/// Runs for every routed request, after routing, so the matched path is known.
pub async fn authorize(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let method = if req.method() == Method::HEAD {
        "GET"
    } else {
        req.method().as_str()
    };
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let Some(access) = access::lookup(method, &path) else {
        tracing::error!(%method, %path, "route has no entry in the access table; refusing");
        return (StatusCode::FORBIDDEN, "this route has no access rule").into_response();
    };
    let is_api = is_machine_path(&path);
    let uri_path = req.uri().path().to_string();
    let state_changing = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);

    let principal = match resolve_principal(&state, req.headers()).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };

    match access {
        Access::Public => {}
        Access::Setup => {
            if !needs_setup(&state) {
                return Redirect::to("/login").into_response();
            }
        }
        Access::AnyUser | Access::Needs(_) => {
            let Some(p) = &principal else {
                return unauthenticated(&state, is_api, &uri_path);
            };
            if let Access::Needs(perm) = access {
                if !p.can(perm) {
                    return forbidden(is_api, p, perm);
                }
            }
        }
    }

    if state_changing {
        // Which token the request must carry: forms shown before login (login, setup) use
        // the double-submit cookie; everything else the session's token. Bearer tokens need
        // none: browsers never attach them on their own.
        let expected = match (access, principal.as_ref()) {
            (Access::Public | Access::Setup, _) => {
                Some(cookie(req.headers(), PRELOGIN_CSRF_COOKIE).unwrap_or_default())
            }
            (_, Some(p)) => p.csrf_token.clone(),
            (_, None) => None,
        };
        if let Some(expected) = expected {
            if expected.is_empty() {
                return csrf_failed(is_api);
            }
            match check_csrf(req, &expected, state.config.web.max_body_bytes, is_api).await {
                Ok(r) => req = r,
                Err(resp) => return resp,
            }
        }
    }

    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    next.run(req).await
}

/// Routes whose clients are programs: they get JSON/text 401s instead of login redirects.
fn is_machine_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics" || path.starts_with("/events/")
}

fn needs_setup(state: &AppState) -> bool {
    state.accounts.needs_setup().unwrap_or(false)
}

async fn resolve_principal(
    state: &Arc<AppState>,
    headers: &HeaderMap,
) -> Result<Option<Principal>, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| s.trim().to_string());
    let session = cookie(headers, SESSION_COOKIE);
    if bearer.is_none() && session.is_none() {
        return Ok(None);
    }
    let state = state.clone();
    let now = state.now();
    let result = tokio::task::spawn_blocking(move || match (bearer, session) {
        (Some(b), _) => state.accounts.token_principal(&b, now),
        (None, Some(c)) => state.accounts.session(&c, now),
        (None, None) => Ok(None),
    })
    .await;
    match result {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot check credentials");
            Err(api::ApiError::internal("cannot check credentials; see the server log").into_response())
        }
        Err(_) => Err(api::ApiError::internal("credential check failed").into_response()),
    }
}

fn unauthenticated(state: &AppState, is_api: bool, uri_path: &str) -> Response {
    if is_api {
        return api::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in, or send `Authorization: Bearer <token>` (create one with `gatewatch token create`)",
        )
        .into_response();
    }
    if needs_setup(state) {
        return Redirect::to("/setup").into_response();
    }
    let next = if uri_path == "/" || !uri_path.starts_with('/') || uri_path.starts_with("//") {
        String::new()
    } else {
        format!("?next={}", pages::url_encode(uri_path))
    };
    Redirect::to(&format!("/login{next}")).into_response()
}

fn forbidden(is_api: bool, p: &Principal, perm: crate::model::Permission) -> Response {
    let msg = format!(
        "role {} lacks the {} permission; ask an admin to grant it",
        p.role.name,
        perm.name()
    );
    if is_api {
        api::ApiError::new(StatusCode::FORBIDDEN, "forbidden", &msg).into_response()
    } else {
        pages::error_page(StatusCode::FORBIDDEN, "Not allowed", &msg)
    }
}

fn csrf_failed(is_api: bool) -> Response {
    if is_api {
        // API clients get the API's one error shape, as for every other refusal.
        return api::ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a session needs its CSRF token in the X-CSRF-Token header; or use a bearer token",
        )
        .into_response();
    }
    pages::error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "The form's security token did not match. Go back, reload the page and try again.",
    )
}

/// Checks the CSRF token in the `x-csrf-token` header or the `csrf` form field (urlencoded or
/// multipart); returns the
/// request rebuilt with its body when it matches.
async fn check_csrf(req: Request, expected: &str, limit: usize, is_api: bool) -> Result<Request, Response> {
    if let Some(given) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return if constant_time_eq(given, expected) {
            Ok(req)
        } else {
            Err(csrf_failed(is_api))
        };
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let is_multipart = content_type.starts_with("multipart/form-data");
    if !is_form && !is_multipart {
        return Err(csrf_failed(is_api));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response())?;
    let ok = if is_multipart {
        super::multipart::field(&content_type, &bytes, "csrf")
            .and_then(|p| std::str::from_utf8(p.data).ok())
            .is_some_and(|v| constant_time_eq(v, expected))
    } else {
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        fields
            .iter()
            .any(|(k, v)| k == "csrf" && constant_time_eq(v, expected))
    };
    if !ok {
        return Err(csrf_failed(is_api));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name`, if the request has it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value with our flags: HttpOnly, SameSite=Strict, Path=/, Secure on TLS.
pub fn set_cookie(name: &str, value: &str, max_age_secs: Option<u64>, tls: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age_secs {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if tls {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static(""))
}

pub async fn not_found(req: Request) -> Response {
    if is_machine_path(req.uri().path()) {
        api::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response()
    } else {
        pages::error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no page at this address.",
        )
    }
}
