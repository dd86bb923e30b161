//! First-start setup, login and logout.

use super::{bare_layout, notice_box, page, Notice};
use crate::accounts::{AccountError, MIN_PASSWORD_LEN};
use crate::web::guard::{self, ClientIp, PRELOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::web::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;

/// The login/setup form's CSRF value: the existing double-submit cookie, or a new one.
fn prelogin_csrf(headers: &HeaderMap) -> (String, bool) {
    match guard::cookie(headers, PRELOGIN_CSRF_COOKIE).filter(|c| c.len() >= 16) {
        Some(c) => (c, false),
        None => (crate::accounts::random_token(24), true),
    }
}

fn with_prelogin_cookie(
    state: &AppState,
    markup: Markup,
    csrf: &str,
    is_new: bool,
    status: StatusCode,
) -> Response {
    let mut resp = (status, page(markup)).into_response();
    if is_new {
        resp.headers_mut().append(
            header::SET_COOKIE,
            guard::set_cookie(PRELOGIN_CSRF_COOKIE, csrf, None, state.facts.tls),
        );
    }
    resp
}

#[derive(Deserialize, Default)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    password: String,
    confirm: String,
}

fn setup_markup(csrf: &str, token: &str, username: &str, error: Option<String>) -> Markup {
    bare_layout(
        "Set up gatewatch",
        html! {
            h1 { "Create the admin account" }
            p.muted { "This is the first start. The account you create here can add other users later." }
            @if let Some(e) = error { (notice_box(Notice::Error(e))) }
            form.stack method="post" action="/setup" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Setup code" }
                input #token name="token" value=(token) required autocomplete="off" spellcheck="false";
                small.muted { "Printed by gatewatch on the console (or in its log) at start, as part of the setup link." }
                label for="username" { "Username" }
                input #username name="username" value=(username) required autocomplete="username" autocapitalize="none" maxlength="32";
                label for="password" { "Password" }
                input #password name="password" type="password" required autocomplete="new-password" minlength=(MIN_PASSWORD_LEN);
                small.muted { "At least " (MIN_PASSWORD_LEN) " characters." }
                label for="confirm" { "Password again" }
                input #confirm name="confirm" type="password" required autocomplete="new-password" minlength=(MIN_PASSWORD_LEN);
                button.primary type="submit" { "Create admin and log in" }
            }
        },
    )
}

pub async fn setup_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<SetupQuery>,
) -> Response {
    let (csrf, is_new) = prelogin_csrf(&headers);
    let token = q.token;
    with_prelogin_cookie(
        &state,
        setup_markup(&csrf, &token, "admin", None),
        &csrf,
        is_new,
        StatusCode::OK,
    )
}

pub async fn setup_submit(
    State(state): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    let (csrf, _) = prelogin_csrf(&headers);
    let fail = |msg: String| {
        let markup = setup_markup(&csrf, &form.token, &form.username, Some(msg));
        (StatusCode::BAD_REQUEST, page(markup)).into_response()
    };
    let token_ok = {
        use subtle::ConstantTimeEq;
        let given = form.token.trim().as_bytes();
        given.len() == state.setup_token.len() && bool::from(given.ct_eq(state.setup_token.as_bytes()))
    };
    if !token_ok {
        return fail("The setup code is wrong. Use the setup link gatewatch printed when it started.".into());
    }
    if form.password != form.confirm {
        return fail("The two passwords differ.".into());
    }
    let now = state.now();
    let st = state.clone();
    let (username, password) = (form.username.clone(), form.password.clone());
    let result = tokio::task::spawn_blocking(move || {
        st.accounts.create_first_admin(&username, &password, now)?;
        st.accounts.audit(
            &username,
            "setup",
            "created the first admin account",
            &ip.to_string(),
            now,
        )?;
        st.accounts.login(&username, &password, ip, now)
    })
    .await;
    match result {
        Ok(Ok((cookie, _))) => {
            tracing::info!(user = %form.username, "first admin account created");
            logged_in_redirect(&state, &cookie, "/")
        }
        Ok(Err(e)) => fail(e.to_string()),
        Err(_) => fail("internal error; see the server log".into()),
    }
}

fn logged_in_redirect(state: &AppState, cookie: &str, to: &str) -> Response {
    let mut resp = Redirect::to(to).into_response();
    let h = resp.headers_mut();
    let lifetime = state.accounts.config().session_lifetime.as_secs();
    h.append(
        header::SET_COOKIE,
        guard::set_cookie(SESSION_COOKIE, cookie, Some(lifetime), state.facts.tls),
    );
    h.append(
        header::SET_COOKIE,
        guard::set_cookie(PRELOGIN_CSRF_COOKIE, "", Some(0), state.facts.tls),
    );
    resp
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

fn login_markup(csrf: &str, username: &str, next: &str, error: Option<String>) -> Markup {
    bare_layout(
        "Log in",
        html! {
            h1 { "Log in" }
            @if let Some(e) = error { (notice_box(Notice::Error(e))) }
            form.stack method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label for="username" { "Username" }
                input #username name="username" value=(username) required autofocus autocomplete="username" autocapitalize="none";
                label for="password" { "Password" }
                input #password name="password" type="password" required autocomplete="current-password";
                button.primary type="submit" { "Log in" }
            }
            p.muted.small { "Forgot the password? On the router, run " code { "gatewatch user passwd NAME" } "." }
        },
    )
}

/// Only local paths, so `next` cannot send users to another site. Control characters are
/// refused too: browsers drop tabs and newlines from a Location, turning "/\t/x" into "//x".
fn safe_next(next: &str) -> &str {
    if next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
    {
        next
    } else {
        "/"
    }
}

pub async fn login_page(
    State(state): State<Arc<AppState>>,
    who: Option<Extension<crate::accounts::Principal>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    if state.accounts.needs_setup().unwrap_or(false) {
        return Redirect::to("/setup").into_response();
    }
    // Already logged in: nothing to do here.
    if who.is_some() {
        return Redirect::to(safe_next(&q.next)).into_response();
    }
    let (csrf, is_new) = prelogin_csrf(&headers);
    let next = q.next;
    with_prelogin_cookie(
        &state,
        login_markup(&csrf, "", safe_next(&next), None),
        &csrf,
        is_new,
        StatusCode::OK,
    )
}

pub async fn login_submit(
    State(state): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let now = state.now();
    let st = state.clone();
    let (username, password) = (form.username.clone(), form.password.clone());
    let result = tokio::task::spawn_blocking(move || {
        let r = st.accounts.login(&username, &password, ip, now);
        let (action, detail) = match &r {
            Ok(_) => ("login", String::new()),
            Err(e) => ("login.failed", e.to_string()),
        };
        // Failed logins are recorded too: they are what an admin looks for after an attack.
        if let Err(e) = st
            .accounts
            .audit(&username, action, &detail, &ip.to_string(), now)
        {
            tracing::error!(error = %e, "cannot write audit entry");
        }
        r
    })
    .await;
    match result {
        Ok(Ok((cookie, _))) => logged_in_redirect(&state, &cookie, safe_next(&form.next)),
        Ok(Err(e)) => {
            let status = match e {
                AccountError::LockedOut(_) => StatusCode::TOO_MANY_REQUESTS,
                AccountError::BadCredentials => StatusCode::UNAUTHORIZED,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let (csrf, _) = prelogin_csrf(&headers);
            let markup = login_markup(&csrf, &form.username, safe_next(&form.next), Some(e.to_string()));
            (status, page(markup)).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

pub async fn logout(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<crate::accounts::Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    if let Some(cookie) = guard::cookie(&headers, SESSION_COOKIE) {
        let st = state.clone();
        let now = state.now();
        let result = tokio::task::spawn_blocking(move || {
            st.accounts.logout(&cookie)?;
            st.accounts.audit(&who.name, "logout", "", &ip.to_string(), now)
        })
        .await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::error!("cannot end the session or record the logout");
        }
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        guard::set_cookie(SESSION_COOKIE, "", Some(0), state.facts.tls),
    );
    resp
}
