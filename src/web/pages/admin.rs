//! Users & roles, API tokens and the audit log. Every write here is audited.

use super::{csrf_field, layout, page, settings_tabs, Nav, Notice};
use crate::accounts::{AccountError, Accounts, Principal};
use crate::model::{Permission, Timestamp};
use crate::store::TimeKey;
use crate::web::guard::ClientIp;
use crate::web::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Success messages after a redirect, by code, so no free text is reflected from the URL.
fn done_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "user-added" => "User added.",
        "user-removed" => "User removed.",
        "role-changed" => "Role changed.",
        "password-set" => "Password set; the user's sessions were ended.",
        "role-saved" => "Role permissions saved.",
        "token-revoked" => "Token revoked.",
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// Runs an account write off the async threads and records it in the audit log.
pub async fn audited<T: Send + 'static>(
    state: &Arc<AppState>,
    who: &Principal,
    ip: std::net::IpAddr,
    action: &'static str,
    detail: String,
    op: impl FnOnce(&Accounts, Timestamp) -> Result<T, AccountError> + Send + 'static,
) -> Result<T, AccountError> {
    let st = state.clone();
    let actor = who.name.clone();
    let now = state.now();
    tokio::task::spawn_blocking(move || {
        let out = op(&st.accounts, now)?;
        st.accounts.audit(&actor, action, &detail, &ip.to_string(), now)?;
        Ok(out)
    })
    .await
    .unwrap_or_else(|_| Err(AccountError::Refused("internal error; see the server log".into())))
}

fn status_of(e: &AccountError) -> StatusCode {
    match e {
        AccountError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        AccountError::NoSuchUser(_) | AccountError::NoSuchRole(_) | AccountError::NoSuchToken(_) => {
            StatusCode::NOT_FOUND
        }
        AccountError::UserExists(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

// ---- users & roles ----

fn users_markup(state: &AppState, who: &Principal, notice: Option<Notice>) -> Result<Markup, AccountError> {
    let users = state.accounts.list_users()?;
    let roles = state.accounts.roles()?;
    let csrf = csrf_field(who);
    let content = html! {
        (settings_tabs(who, "/settings/users"))
        section.card {
            h2 { "Users" }
            div.scroll {
                table {
                    thead { tr { th { "User" } th { "Role" } th { "Created" } th { "Last login" } th { "Password" } th { } } }
                    tbody {
                        @for u in &users {
                            tr {
                                td { strong { (u.username) } }
                                td {
                                    form.inline method="post" action=(format!("/settings/users/{}/role", u.username)) {
                                        (csrf)
                                        select name="role" aria-label=(format!("Role of {}", u.username)) {
                                            @for r in &roles {
                                                option value=(r.name) selected[r.name == u.role] { (r.name) }
                                            }
                                        }
                                        button.small type="submit" { "Change" }
                                    }
                                }
                                td.muted { (u.created_at) }
                                td.muted { @match u.last_login { Some(t) => (t), None => "never" } }
                                td {
                                    form.inline method="post" action=(format!("/settings/users/{}/password", u.username)) {
                                        (csrf)
                                        input type="password" name="password" placeholder="new password" autocomplete="new-password" required aria-label=(format!("New password for {}", u.username));
                                        button.small type="submit" { "Set" }
                                    }
                                }
                                td {
                                    @if u.username != who.name {
                                        form.inline method="post" action=(format!("/settings/users/{}/delete", u.username)) {
                                            (csrf)
                                            button.small.danger type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Add a user" }
            form.row method="post" action="/settings/users" {
                (csrf)
                label { "Username " input name="username" required maxlength="32" autocomplete="off"; }
                label { "Role "
                    select name="role" {
                        @for r in &roles { option value=(r.name) selected[r.name == "viewer"] { (r.name) } }
                    }
                }
                label { "Password " input type="password" name="password" required autocomplete="new-password"; }
                button.primary type="submit" { "Add user" }
            }
        }
        section.card {
            h2 { "Roles and permissions" }
            p.muted { "Tick what each role may do, then save that role. The admin role always keeps manage-users." }
            div.scroll {
                table.matrix {
                    thead {
                        tr {
                            th { "Permission" }
                            @for r in &roles { th { (r.name) } }
                        }
                    }
                    tbody {
                        @for p in Permission::ALL {
                            tr {
                                th scope="row" { code { (p.name()) } br; small.muted { (p.describe()) } }
                                @for r in &roles {
                                    td.center {
                                        input type="checkbox" name="perm" value=(p.name()) form=(format!("role-{}", r.name))
                                            checked[r.allows(p)] aria-label=(format!("{} may {}", r.name, p.name()));
                                    }
                                }
                            }
                        }
                        tr {
                            th { }
                            @for r in &roles {
                                td.center {
                                    form id=(format!("role-{}", r.name)) method="post" action=(format!("/settings/roles/{}", r.name)) {
                                        (csrf)
                                        button.small type="submit" { "Save " (r.name) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Users & roles", Nav::Settings, who, notice, content))
}

fn render_users(state: &AppState, who: &Principal, status: StatusCode, notice: Option<Notice>) -> Response {
    match users_markup(state, who, notice) {
        Ok(m) => (status, page(m)).into_response(),
        Err(e) => super::error_page(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.to_string()),
    }
}

pub async fn users_page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let notice = done_message(&q.done).map(|m| Notice::Ok(m.into()));
    render_users(&state, &who, StatusCode::OK, notice)
}

/// Redirect after a successful write (so reload does not repeat it), or the page with the error.
fn after_write<T>(
    state: &AppState,
    who: &Principal,
    result: Result<T, AccountError>,
    done: &str,
) -> Response {
    match result {
        Ok(_) => Redirect::to(&format!("/settings/users?done={done}")).into_response(),
        Err(e) => render_users(state, who, status_of(&e), Some(Notice::Error(e.to_string()))),
    }
}

#[derive(Deserialize)]
pub struct NewUserForm {
    username: String,
    role: String,
    password: String,
}

pub async fn user_create(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Form(f): Form<NewUserForm>,
) -> Response {
    let detail = format!("{} as {}", f.username, f.role);
    let r = audited(&state, &who, ip, "user.add", detail, move |a, now| {
        a.create_user(&f.username, &f.role, &f.password, now)
    })
    .await;
    after_write(&state, &who, r, "user-added")
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn user_set_role(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(name): Path<String>,
    Form(f): Form<RoleForm>,
) -> Response {
    let detail = format!("{name} → {}", f.role);
    let r = audited(&state, &who, ip, "user.role", detail, move |a, _| {
        a.set_user_role(&name, &f.role)
    })
    .await;
    after_write(&state, &who, r, "role-changed")
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
}

pub async fn user_set_password(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(name): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let r = audited(&state, &who, ip, "user.passwd", name.clone(), move |a, _| {
        a.set_password(&name, &f.password)
    })
    .await;
    after_write(&state, &who, r, "password-set")
}

pub async fn user_delete(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(name): Path<String>,
) -> Response {
    if name == who.name {
        let e = AccountError::Refused("you cannot remove yourself".into());
        return after_write::<()>(&state, &who, Err(e), "");
    }
    let r = audited(&state, &who, ip, "user.remove", name.clone(), move |a, _| {
        a.remove_user(&name)
    })
    .await;
    after_write(&state, &who, r, "user-removed")
}

pub async fn role_update(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(name): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let mut perms = BTreeSet::new();
    for (k, v) in &fields {
        if k == "perm" {
            match Permission::from_name(v) {
                Some(p) => {
                    perms.insert(p);
                }
                None => {
                    let e = AccountError::Refused(format!("unknown permission {v}"));
                    return after_write::<()>(&state, &who, Err(e), "");
                }
            }
        }
    }
    let detail = format!(
        "{name}: {}",
        perms.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
    );
    let r = audited(&state, &who, ip, "role.update", detail, move |a, _| {
        a.set_role_permissions(&name, perms)
    })
    .await;
    after_write(&state, &who, r, "role-saved")
}

// ---- API tokens ----

fn tokens_markup(
    state: &AppState,
    who: &Principal,
    notice: Option<Notice>,
    new_secret: Option<&str>,
) -> Result<Markup, AccountError> {
    let tokens = state.accounts.list_tokens()?;
    let roles = state.accounts.roles()?;
    let csrf = csrf_field(who);
    let content = html! {
        (settings_tabs(who, "/settings/tokens"))
        @if let Some(secret) = new_secret {
            section.card.highlight {
                h2 { "New token" }
                p { "Copy it now: it is shown only this once." }
                pre.secret { code { (secret) } }
                p.muted.small { "Use it as " code { "Authorization: Bearer <token>" } ", e.g. " code { "curl -H 'Authorization: Bearer …' https://router:8443/api/v1/status" } "." }
            }
        }
        section.card {
            h2 { "API tokens" }
            @if tokens.is_empty() {
                p.muted { "No tokens yet. Scripts and Prometheus use a token instead of a password." }
            } @else {
                div.scroll {
                    table {
                        thead { tr { th { "Id" } th { "Name" } th { "Role" } th { "Created" } th { "By" } th { "Last used" } th { } } }
                        tbody {
                            @for t in &tokens {
                                tr {
                                    td { code { (t.id) } }
                                    td { (t.name) }
                                    td { (t.role) }
                                    td.muted { (t.created_at) }
                                    td.muted { (t.created_by) }
                                    td.muted { @match t.last_used { Some(u) => (u), None => "never" } }
                                    td {
                                        form.inline method="post" action=(format!("/settings/tokens/{}/revoke", t.id)) {
                                            (csrf)
                                            button.small.danger type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Create a token" }
            form.row method="post" action="/settings/tokens" {
                (csrf)
                label { "Name " input name="name" required maxlength="64" placeholder="prometheus"; }
                label { "Role "
                    select name="role" {
                        @for r in &roles { option value=(r.name) selected[r.name == "viewer"] { (r.name) } }
                    }
                }
                button.primary type="submit" { "Create token" }
            }
        }
    };
    Ok(layout("API tokens", Nav::Settings, who, notice, content))
}

fn render_tokens(
    state: &AppState,
    who: &Principal,
    status: StatusCode,
    notice: Option<Notice>,
    secret: Option<&str>,
) -> Response {
    match tokens_markup(state, who, notice, secret) {
        Ok(m) => (status, page(m)).into_response(),
        Err(e) => super::error_page(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.to_string()),
    }
}

pub async fn tokens_page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let notice = done_message(&q.done).map(|m| Notice::Ok(m.into()));
    render_tokens(&state, &who, StatusCode::OK, notice, None)
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    name: String,
    role: String,
}

pub async fn token_create(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Form(f): Form<NewTokenForm>,
) -> Response {
    let detail = format!("{} as {}", f.name, f.role);
    let creator = who.name.clone();
    let r = audited(&state, &who, ip, "token.create", detail, move |a, now| {
        a.create_token(&f.name, &f.role, &creator, now)
    })
    .await;
    // The secret is shown in this response only; it is not in the URL and not stored.
    match r {
        Ok((secret, _)) => render_tokens(
            &state,
            &who,
            StatusCode::OK,
            Some(Notice::Ok("Token created.".into())),
            Some(&secret),
        ),
        Err(e) => render_tokens(
            &state,
            &who,
            status_of(&e),
            Some(Notice::Error(e.to_string())),
            None,
        ),
    }
}

pub async fn token_revoke(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
) -> Response {
    let r = audited(&state, &who, ip, "token.revoke", id.clone(), move |a, _| {
        a.revoke_token(&id)
    })
    .await;
    match r {
        Ok(_) => Redirect::to("/settings/tokens?done=token-revoked").into_response(),
        Err(e) => render_tokens(
            &state,
            &who,
            status_of(&e),
            Some(Notice::Error(e.to_string())),
            None,
        ),
    }
}

// ---- audit log ----

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    /// Cursor: `<millis>-<seq>` of the last entry on the previous page.
    #[serde(default)]
    before: String,
}

pub const AUDIT_PAGE_SIZE: usize = 50;

/// Parses an audit cursor `<millis>-<seq>`.
pub fn parse_cursor(s: &str) -> Option<TimeKey> {
    let (ms, seq) = s.split_once('-')?;
    Some(TimeKey {
        at: Timestamp(ms.parse().ok()?),
        seq: seq.parse().ok()?,
    })
}

pub fn format_cursor(k: &TimeKey) -> String {
    format!("{}-{}", k.at.as_millis(), k.seq)
}

pub async fn audit_page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let before = parse_cursor(&q.before);
    let entries = match state.accounts.audit_page(before, AUDIT_PAGE_SIZE) {
        Ok(e) => e,
        Err(e) => return super::error_page(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.to_string()),
    };
    let next = (entries.len() == AUDIT_PAGE_SIZE)
        .then(|| entries.last().map(|(k, _)| format_cursor(k)))
        .flatten();
    let content = html! {
        (settings_tabs(&who, "/settings/audit"))
        section.card {
            h2 { "Every change, newest first" }
            @if entries.is_empty() {
                p.muted { "Nothing recorded yet." }
            } @else {
                div.scroll {
                    table {
                        thead { tr { th { "When (UTC)" } th { "Who" } th { "Action" } th { "Detail" } th { "From" } } }
                        tbody {
                            @for (_, e) in &entries {
                                tr {
                                    td.nowrap { (e.at) }
                                    td { (e.actor) }
                                    td { code { (e.action) } }
                                    td { (e.detail) }
                                    td.muted { (e.remote_addr) }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if before.is_some() { a href="/settings/audit" { "← Newest" } }
                @if let Some(n) = next { a href=(format!("/settings/audit?before={n}")) { "Older →" } }
            }
        }
    };
    page(layout("Audit log", Nav::Settings, &who, None, content))
}
