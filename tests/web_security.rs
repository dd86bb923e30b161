//! The web server's security properties, checked over real HTTP on loopback: who may do
//! what, CSRF, lockout, session expiry (with the injected clock), headers, limits and audit.

mod common;
use common::*;
use gatewatch::model::{Permission, BUILTIN_ROLES};
use gatewatch::web::access::{self, Access, ROUTE_ACCESS};
use reqwest::{Method, StatusCode};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

fn url(s: &TestServer, path: &str) -> String {
    format!("{}{path}", s.url)
}

/// A route pattern with its `{param}`s replaced by "x".
fn concrete(path: &str) -> String {
    path.replace("{name}", "x")
        .replace("{id}", "x")
        .replace("{file}", "x")
}

/// Whether a role with `perms` may call `method path`, according to the access table.
fn table_allows(perms: &[Permission], method: &str, path: &str) -> bool {
    match access::lookup(method, path).unwrap_or_else(|| panic!("{method} {path} not in ROUTE_ACCESS")) {
        Access::Public | Access::AnyUser => true,
        Access::Needs(p) => perms.contains(&p),
        Access::Setup => false,
    }
}

fn perms_of(role: &str) -> &'static [Permission] {
    BUILTIN_ROLES
        .iter()
        .find(|(name, _, _)| *name == role)
        .map(|(_, _, p)| *p)
        .unwrap_or_else(|| panic!("no built-in role {role}"))
}

#[tokio::test]
async fn without_a_session_pages_redirect_and_api_answers_401() {
    let s = TestServer::start(Options::default()).await;
    let c = client();

    let r = c.get(url(&s, "/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/setup", "first start sends visitors to setup");

    s.add_user("alice", "admin");
    let r = c.get(url(&s, "/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    let r = c.get(url(&s, "/settings/users")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/login"), "{}", location(&r));

    let api_routes: Vec<_> = ROUTE_ACCESS
        .iter()
        .filter(|(_, path, _)| path.starts_with("/api/v1"))
        .collect();
    assert!(api_routes.len() >= 10, "found {} API routes", api_routes.len());
    for (method, path, _) in api_routes {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let path = concrete(path);
        for bearer in [None, Some("gw_000000000000_not-a-real-secret"), Some("garbage")] {
            let mut req = c.request(method.clone(), url(&s, &path));
            if method == Method::POST || method == Method::PUT {
                req = req.header("content-type", "application/json").body("{}");
            }
            if let Some(b) = bearer {
                req = req.bearer_auth(b);
            }
            let code = api_error(req.send().await.unwrap(), 401).await;
            assert_eq!(code, "unauthorized", "{method} {path} with {bearer:?}");
        }
    }

    let code = api_error(c.get(url(&s, "/metrics")).send().await.unwrap(), 401).await;
    assert_eq!(code, "unauthorized");
    s.stop().await;
}

async fn setup_flow(tls: bool) {
    let s = TestServer::start(Options {
        tls,
        ..Default::default()
    })
    .await;
    assert!(s.url.starts_with(if tls { "https://" } else { "http://" }));
    let c = client();

    let r = c.get(url(&s, "/setup")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = set_cookie_named(&r, "gw_csrf").expect("GET /setup sets gw_csrf");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(cookie.contains("Secure"), tls, "{cookie}");
    let page = r.text().await.unwrap();
    let csrf = csrf_from(&page);
    assert!(
        cookie.starts_with(&format!("gw_csrf={csrf};")),
        "field and cookie differ: {cookie}"
    );

    let form = |token: &'static str, user: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("token", token.to_string()),
            ("username", user.to_string()),
            ("password", PASSWORD.to_string()),
            ("confirm", PASSWORD.to_string()),
        ]
    };
    let r = c
        .post(url(&s, "/setup"))
        .form(&form("wrong-token", "root"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(set_cookie_named(&r, "gw_session").is_none());
    assert!(
        s.state.accounts.needs_setup().unwrap(),
        "a wrong setup token created a user"
    );

    let r = c
        .post(url(&s, "/setup"))
        .form(&form("test-setup-token", "root"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/");
    let session = set_cookie_named(&r, "gw_session").expect("setup logs the admin in");
    assert!(session.len() > "gw_session=;".len() + 20, "{session}");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert_eq!(session.contains("Secure"), tls, "{session}");
    assert_eq!(s.state.accounts.user("root").unwrap().role, "admin");
    let r = c.get(url(&s, "/")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the new session works");

    let other = client();
    let r = other.get(url(&s, "/setup")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    let r = other
        .post(url(&s, "/setup"))
        .header("cookie", format!("gw_csrf={csrf}"))
        .form(&form("test-setup-token", "mallory"))
        .send()
        .await
        .unwrap();
    assert!(
        !r.status().is_success() && location(&r) != "/",
        "second setup accepted: {}",
        r.status()
    );
    assert!(set_cookie_named(&r, "gw_session").is_none());
    assert!(s.state.accounts.user("mallory").is_err(), "setup ran twice");
    assert_eq!(s.state.accounts.list_users().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn setup_needs_the_token_and_runs_once_over_http() {
    setup_flow(false).await;
}

#[tokio::test]
async fn setup_over_tls_sets_secure_cookies() {
    setup_flow(true).await;
}

#[tokio::test]
async fn state_changing_requests_need_the_csrf_token() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("alice", "admin");
    let c = login(&s, "alice", PASSWORD).await;
    let page = common::page_text(&c, url(&s, "/settings/users")).await;
    let csrf = csrf_from(&page);
    let new_user = |name: &'static str, csrf: Option<&str>| {
        let mut f = vec![("username", name), ("role", "viewer"), ("password", PASSWORD)];
        if let Some(t) = csrf {
            f.push(("csrf", t));
        }
        f.into_iter().map(|(k, v)| (k, v.to_string())).collect::<Vec<_>>()
    };

    let r = c
        .post(url(&s, "/settings/users"))
        .form(&new_user("bob", None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "form without csrf");
    assert!(s.state.accounts.user("bob").is_err());
    let wrong = "A".repeat(csrf.len());
    let r = c
        .post(url(&s, "/settings/users"))
        .form(&new_user("bob", Some(&wrong)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "form with a wrong csrf");
    let r = c
        .post(url(&s, "/settings/users"))
        .form(&new_user("bob", Some("")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "form with an empty csrf");
    assert!(s.state.accounts.user("bob").is_err());
    let r = c
        .post(url(&s, "/settings/users"))
        .form(&new_user("bob", Some(&csrf)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/settings/users"), "{}", location(&r));
    assert_eq!(s.state.accounts.user("bob").unwrap().role, "viewer");

    // JSON with the session cookie: the header is required.
    let body = serde_json::json!({"username": "carol", "role": "viewer", "password": PASSWORD});
    let r = c.post(url(&s, "/api/v1/users")).json(&body).send().await.unwrap();
    let code = api_error(r, 403).await;
    assert_eq!(code, "forbidden");
    let r = c
        .post(url(&s, "/api/v1/users"))
        .header("x-csrf-token", &wrong)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r, 403).await, "forbidden", "wrong X-CSRF-Token");
    assert!(s.state.accounts.user("carol").is_err());
    let r = c
        .post(url(&s, "/api/v1/users"))
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the session's token in the header is accepted");

    // Login without the double-submit cookie, and with a field that does not match it.
    let fresh = client();
    let r = fresh
        .post(url(&s, "/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "login without gw_csrf cookie");
    assert!(set_cookie_named(&r, "gw_session").is_none());
    let fresh = client();
    fresh.get(url(&s, "/login")).send().await.unwrap();
    let r = fresh
        .post(url(&s, "/login"))
        .form(&[
            ("csrf", "not-the-cookie-value"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "login with a csrf field that differs from the cookie"
    );
    assert!(set_cookie_named(&r, "gw_session").is_none());
    s.stop().await;
}

#[tokio::test]
async fn five_failures_lock_the_account_until_the_clock_moves_on() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("alice", "admin");
    let c = client();
    for i in 0..5 {
        let r = try_login(&s, &c, "alice", "wrong password!").await;
        assert_eq!(r.status(), 401, "failure {i}");
        assert!(set_cookie_named(&r, "gw_session").is_none());
    }
    let r = try_login(&s, &c, "alice", PASSWORD).await;
    assert_eq!(r.status(), 429, "the right password during lockout");
    assert!(set_cookie_named(&r, "gw_session").is_none());
    s.advance(14 * MIN);
    let r = try_login(&s, &c, "alice", PASSWORD).await;
    assert_eq!(r.status(), 429, "still locked after 14 minutes");
    s.advance(MIN);
    let r = try_login(&s, &c, "alice", PASSWORD).await;
    assert_eq!(r.status(), 303, "unlocked after 15 minutes");
    assert!(set_cookie_named(&r, "gw_session").is_some());
    s.stop().await;
}

#[tokio::test]
async fn failures_from_one_address_lock_that_address() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("bob", "viewer");
    let c = client();
    let page = common::page_text(&c, url(&s, "/login")).await;
    let csrf = csrf_from(&page);
    // X-Forwarded-For from an untrusted peer must not give each guess a new address.
    let attempt = |user: String, password: &'static str, i: usize| {
        c.post(url(&s, "/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .form(&[
                ("csrf", csrf.clone()),
                ("username", user),
                ("password", password.into()),
            ])
            .send()
    };
    for i in 0..5 {
        let r = attempt(format!("nonexistent{i}"), "whatever password", i)
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "failure {i}");
    }
    let r = attempt("bob".into(), PASSWORD, 99).await.unwrap();
    assert_eq!(r.status(), 429, "a correct login from a locked address");
    assert!(set_cookie_named(&r, "gw_session").is_none());
    s.stop().await;
}

#[tokio::test]
async fn roles_allow_exactly_what_the_access_table_says() {
    let s = TestServer::start(Options::default()).await;
    let pages = [
        "/settings/users",
        "/settings/tokens",
        "/settings/audit",
        "/settings",
        "/traffic",
        "/",
    ];
    let api = ["/api/v1/users", "/api/v1/audit", "/api/v1/status", "/api/v1/me"];
    let (mut allowed, mut denied) = (0, 0);
    let mut sessions = Vec::new();
    let mut tokens = Vec::new();
    for (role, _, perms) in BUILTIN_ROLES {
        let user = format!("u-{role}");
        s.add_user(&user, role);
        let c = login(&s, &user, PASSWORD).await;
        for page in pages {
            let expect = table_allows(perms, "GET", page);
            let r = c.get(url(&s, page)).send().await.unwrap();
            let want = if expect { 200 } else { 403 };
            assert_eq!(r.status(), want, "{role} GET {page}");
            if expect {
                allowed += 1;
            } else {
                denied += 1;
            }
        }
        let token = token_for(&s, &format!("t-{role}"), role);
        for path in api {
            let expect = table_allows(perms, "GET", path);
            let r = c.get(url(&s, path)).bearer_auth(&token).send().await.unwrap();
            if expect {
                assert_eq!(r.status(), 200, "{role} token GET {path}");
            } else {
                assert_eq!(api_error(r, 403).await, "forbidden", "{role} token GET {path}");
            }
        }
        let body = serde_json::json!({"username": format!("made-by-{role}"), "role": "viewer", "password": PASSWORD});
        let r = c
            .post(url(&s, "/api/v1/users"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let expect = table_allows(perms, "POST", "/api/v1/users");
        assert_eq!(
            r.status(),
            if expect { 201 } else { 403 },
            "{role} token POST /api/v1/users"
        );
        sessions.push((role, c));
        tokens.push((role, token));
    }
    assert!(allowed > 0 && denied > 0, "the oracle must both allow and deny");

    // By hand, so that a wrong table fails too.
    let session = |role: &str| &sessions.iter().find(|(r, _)| *r == role).unwrap().1;
    let token = |role: &str| tokens.iter().find(|(r, _)| *r == role).unwrap().1.clone();
    let get = |c: &reqwest::Client, path: &str| c.get(url(&s, path)).send();
    assert_eq!(
        get(session("viewer"), "/settings/users").await.unwrap().status(),
        403
    );
    assert_eq!(
        get(session("viewer"), "/settings/audit").await.unwrap().status(),
        403
    );
    assert_eq!(get(session("viewer"), "/traffic").await.unwrap().status(), 200);
    assert_eq!(
        get(session("security-analyst"), "/settings/audit")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get(session("security-analyst"), "/settings/users")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        get(session("network-admin"), "/settings").await.unwrap().status(),
        200
    );
    assert_eq!(
        get(session("network-admin"), "/settings/tokens")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        get(session("admin"), "/settings/users").await.unwrap().status(),
        200
    );
    let body = serde_json::json!({"username": "sneaky", "role": "admin", "password": PASSWORD});
    let r = client()
        .post(url(&s, "/api/v1/users"))
        .bearer_auth(token("security-analyst"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r, 403).await, "forbidden");
    assert!(s.state.accounts.user("sneaky").is_err());
    let r = client()
        .get(url(&s, "/api/v1/audit"))
        .bearer_auth(token("security-analyst"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Editing a role takes effect on the next request of a live session.
    let without_traffic: Vec<&str> = perms_of("viewer")
        .iter()
        .filter(|p| **p != Permission::ViewTraffic)
        .map(|p| p.name())
        .collect();
    let r = client()
        .put(url(&s, "/api/v1/roles/viewer"))
        .bearer_auth(token("admin"))
        .json(&serde_json::json!({ "permissions": without_traffic }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let role: serde_json::Value = r.json().await.unwrap();
    let now: Vec<&str> = role["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        !now.contains(&"view-traffic") && now.contains(&"view-hosts"),
        "{role}"
    );
    assert_eq!(get(session("viewer"), "/traffic").await.unwrap().status(), 403);
    assert_eq!(get(session("viewer"), "/hosts").await.unwrap().status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_lifetime() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("alice", "admin");
    let c = login(&s, "alice", PASSWORD).await;
    assert_eq!(c.get(url(&s, "/")).send().await.unwrap().status(), 200);
    s.advance(29 * MIN);
    assert_eq!(
        c.get(url(&s, "/")).send().await.unwrap().status(),
        200,
        "29 min idle"
    );
    // Activity restarts the idle timer: 58 minutes after login, 29 after the last request.
    s.advance(29 * MIN);
    assert_eq!(
        c.get(url(&s, "/")).send().await.unwrap().status(),
        200,
        "active session"
    );
    s.advance(31 * MIN);
    let r = c.get(url(&s, "/")).send().await.unwrap();
    assert_eq!(r.status(), 303, "31 min idle");
    assert_eq!(location(&r), "/login");
    let r = c.get(url(&s, "/api/v1/me")).send().await.unwrap();
    assert_eq!(api_error(r, 401).await, "unauthorized");

    let c = login(&s, "alice", PASSWORD).await;
    let lifetime = 12 * 60 * MIN;
    let mut elapsed = Duration::ZERO;
    loop {
        s.advance(10 * MIN);
        elapsed += 10 * MIN;
        let r = c.get(url(&s, "/")).send().await.unwrap();
        if elapsed < lifetime {
            assert_eq!(r.status(), 200, "active session at {elapsed:?}");
        } else if elapsed > lifetime {
            assert_eq!(r.status(), 303, "session older than 12h");
            assert_eq!(location(&r), "/login");
            break;
        }
    }
    s.stop().await;
}

fn check_headers(what: &str, r: &reqwest::Response, tls: bool) {
    let h = r.headers();
    let get = |name: &str| {
        h.get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{what}: no {name} header"))
    };
    let csp = get("content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert!(!get("referrer-policy").is_empty(), "{what}");
    assert_eq!(get("x-frame-options").to_ascii_uppercase(), "DENY", "{what}");
    match h.get("strict-transport-security") {
        Some(v) if tls => assert!(v.to_str().unwrap().contains("max-age="), "{what}: {v:?}"),
        Some(v) => panic!("{what}: HSTS over plain HTTP: {v:?}"),
        None if tls => panic!("{what}: no HSTS over TLS"),
        None => {}
    }
}

async fn headers_on_every_kind_of_response(tls: bool) {
    let s = TestServer::start(Options {
        tls,
        ..Default::default()
    })
    .await;
    s.add_user("alice", "admin");
    let token = token_for(&s, "ops", "admin");
    let c = client();
    let cases = [
        ("page", c.get(url(&s, "/login")), 200),
        ("api", c.get(url(&s, "/api/v1/status")).bearer_auth(&token), 200),
        ("api 401", c.get(url(&s, "/api/v1/status")), 401),
        ("404 page", c.get(url(&s, "/no/such/page")), 404),
        ("404 api", c.get(url(&s, "/api/v1/nothing-here")), 404),
        ("static", c.get(url(&s, "/static/app.css")), 200),
    ];
    for (what, req, status) in cases {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status, "{what}");
        check_headers(what, &r, tls);
    }
    s.stop().await;
}

#[tokio::test]
async fn security_headers_over_http() {
    headers_on_every_kind_of_response(false).await;
}

#[tokio::test]
async fn security_headers_over_tls_include_hsts() {
    headers_on_every_kind_of_response(true).await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let s = TestServer::start(Options {
        config_toml: "[web]\nmax_body_bytes = 1000".into(),
        ..Default::default()
    })
    .await;
    let token = token_for(&s, "ops", "admin");
    let c = client();
    let big =
        serde_json::json!({"username": "big", "role": "viewer", "password": "p".repeat(10_000)}).to_string();
    assert!(big.len() >= 10_000);
    let r = c
        .post(url(&s, "/api/v1/users"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(s.state.accounts.user("big").is_err());
    let small = serde_json::json!({"username": "small", "role": "viewer", "password": PASSWORD});
    let r = c
        .post(url(&s, "/api/v1/users"))
        .bearer_auth(&token)
        .json(&small)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "a body under the limit");

    // Forms read by the CSRF check obey the same limit.
    let c = login(&s, "small", PASSWORD).await;
    let page = c.get(url(&s, "/")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_from(&page);
    let padding = "x".repeat(10_000);
    let r = c
        .post(url(&s, "/logout"))
        .form(&[("padding", padding.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        c.get(url(&s, "/")).send().await.unwrap().status(),
        200,
        "still logged in"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start(Options {
        config_toml: "[web]\nheader_timeout = \"1s\"".into(),
        ..Default::default()
    })
    .await;
    let mut sock = tokio::net::TcpStream::connect(addr_of(&s)).await.unwrap();
    sock.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        // A 408 response before the close is fine; what matters is that the server hangs up.
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept a half-sent request open");
    s.stop().await;
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start(Options {
        config_toml: "[web]\nrequest_timeout = \"1s\"".into(),
        ..Default::default()
    })
    .await;
    s.add_user("alice", "admin");
    let mut sock = tokio::net::TcpStream::connect(addr_of(&s)).await.unwrap();
    // Headers complete, body promised but only partly sent: the handler waits for it.
    let head = "POST /login HTTP/1.1\r\nHost: x\r\nCookie: gw_csrf=abcdefghijklmnopqrstuvwx\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ncsrf=abc";
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    response.extend_from_slice(&buf[..n]);
                    if response.windows(4).any(|w| w == b"\r\n\r\n") {
                        return;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server waited forever for the body");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    s.stop().await;
}

#[tokio::test]
async fn unknown_host_headers_get_421() {
    let s = TestServer::start(Options {
        config_toml: "[web]\ntrusted_hosts = [\"gw.lan\"]".into(),
        ..Default::default()
    })
    .await;
    let c = client();
    let cases = [
        ("/healthz", "evil.example", 421),
        ("/login", "evil.example:8443", 421),
        ("/healthz", "gw.lan.evil.example", 421),
        ("/healthz", "gw.lan:8443", 200),
        // Host names are case-insensitive.
        ("/healthz", "GW.LAN", 200),
    ];
    for (path, host, status) in cases {
        let r = c.get(url(&s, path)).header("host", host).send().await.unwrap();
        assert_eq!(r.status(), status, "Host: {host}");
    }
    s.stop().await;
}

#[tokio::test]
async fn writes_through_ui_and_api_are_audited_with_actor_and_address() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("alice", "admin");
    let c = login(&s, "alice", PASSWORD).await;
    let fields = [("username", "bob"), ("role", "viewer"), ("password", PASSWORD)];
    let r = submit_form(&c, &s, "/settings/users", "/settings/users", &fields).await;
    assert_eq!(r.status(), 303);
    let token = token_for(&s, "ops", "admin");
    let r = client()
        .post(url(&s, "/api/v1/tokens"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "ci", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    assert!(created["token"].as_str().unwrap().starts_with("gw_"));

    let r = client()
        .get(url(&s, "/api/v1/audit"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let audit: serde_json::Value = r.json().await.unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {audit}"))
    };
    let add = find("user.add");
    assert_eq!(add["actor"], "alice");
    assert_eq!(add["remote_addr"], "127.0.0.1");
    assert!(add["detail"].as_str().unwrap().contains("bob"), "{add}");
    let tok = find("token.create");
    assert_eq!(tok["actor"], "token:ops");
    assert_eq!(tok["remote_addr"], "127.0.0.1");
    assert!(tok["detail"].as_str().unwrap().contains("ci"), "{tok}");
    let login = find("login");
    assert_eq!(login["actor"], "alice");

    let r = c.get(url(&s, "/settings/audit")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    for needle in [
        "user.add",
        "token.create",
        "bob as viewer",
        "ci as viewer",
        "token:ops",
        "127.0.0.1",
    ] {
        assert!(html.contains(needle), "audit page lacks {needle}");
    }
    s.stop().await;
}

#[tokio::test]
async fn login_page_sends_a_logged_in_user_on() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("alice", "admin");
    let c = login(&s, "alice", PASSWORD).await;
    let r = c.get(url(&s, "/login?next=/settings")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/settings");
    s.stop().await;
}

#[tokio::test]
async fn login_next_never_leaves_the_site() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("alice", "admin");
    // Browsers drop tabs and newlines from URLs, so "/\t/evil.example" means "//evil.example".
    let cases = [
        ("/settings", "/settings"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/\r\n/evil.example", "/"),
    ];
    for (next, want) in cases {
        let c = client();
        let page = common::page_text(&c, url(&s, "/login")).await;
        let csrf = csrf_from(&page);
        let r = c
            .post(url(&s, "/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "next={next:?}");
        assert_eq!(location(&r), want, "next={next:?}");
        assert!(set_cookie_named(&r, "gw_session").is_some(), "next={next:?}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_cannot_outrun_the_lockout() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("alice", "admin");
    let mut forms = Vec::new();
    for _ in 0..20 {
        let c = client();
        let page = common::page_text(&c, url(&s, "/login")).await;
        forms.push((c, csrf_from(&page)));
    }
    // All guesses in flight at once: each must see the failures counted before it.
    let tasks: Vec<_> = forms
        .into_iter()
        .map(|(c, csrf)| {
            let login = url(&s, "/login");
            tokio::spawn(async move {
                let form = [
                    ("csrf", csrf.as_str()),
                    ("username", "alice"),
                    ("password", "a wrong guess"),
                ];
                c.post(login).form(&form).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let (mut checked, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            401 => checked += 1,
            429 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        checked <= 5,
        "{checked} passwords were checked despite a threshold of 5"
    );
    assert_eq!(checked + refused, 20);
    let r = try_login(&s, &client(), "alice", PASSWORD).await;
    assert_eq!(r.status(), 429);
    s.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("alice", "admin");
    let c = client();
    let r = try_login(&s, &c, "alice", PASSWORD).await;
    assert_eq!(r.status(), 303);
    let cookie = set_cookie_named(&r, "gw_session").unwrap();
    let value = cookie.split(';').next().unwrap().to_string();
    let page = c.get(url(&s, "/")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_from(&page);
    let r = c
        .post(url(&s, "/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    let cleared = set_cookie_named(&r, "gw_session").expect("logout clears the cookie");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // A copy of the old cookie is worthless now.
    let r = client()
        .get(url(&s, "/"))
        .header("cookie", &value)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    s.stop().await;
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let s = TestServer::start(Options {
        config_toml: "[web]\ntrusted_proxies = [\"127.0.0.1\"]".into(),
        ..Default::default()
    })
    .await;
    s.add_user("alice", "admin");
    let token = token_for(&s, "ops", "admin");
    let r = client()
        .post(url(&s, "/api/v1/tokens"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "203.0.113.7, 127.0.0.1")
        .json(&serde_json::json!({"name": "via-proxy", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client()
        .get(url(&s, "/api/v1/audit"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let audit: serde_json::Value = r.json().await.unwrap();
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "token.create")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(entry["remote_addr"], "203.0.113.7");
    s.stop().await;
}
