//! Snapshots of the rendered HTML of the key pages, fetched from the real server over
//! loopback. The clock is fixed at `T0`; whatever still varies between runs (CSRF tokens,
//! process figures, asset hashes, temp paths, the port, token ids) is redacted by filters.
//! Review changes with `INSTA_UPDATE=always cargo test --test snapshots_pages` and `git diff`.

mod common;
use common::*;

/// The insta settings for one server: redactions, then one tag per line so diffs read well.
fn settings(server: &TestServer) -> insta::Settings {
    let mut st = insta::Settings::clone_current();
    st.set_omit_expression(true);
    st.add_filter(r#"name="csrf" value="[^"]*""#, r#"name="csrf" value="[CSRF]""#);
    st.add_filter(r"\?v=[0-9a-f]+", "?v=[HASH]");
    st.add_filter(r"127\.0\.0\.1:[0-9]+", "127.0.0.1:[PORT]");
    let dir = server.dir.path();
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    for path in [canonical, dir.to_path_buf()] {
        st.add_filter(&regex_escape(&path.display().to_string()), "[DATA_DIR]");
    }
    st.add_filter(
        r#"(data-field="(?:uptime|rss|cpu|threads|fds|store_file|store_used|store_map|requests)">)[^<]*"#,
        "${1}[VARIES]",
    );
    st.add_filter(r"(<dt>Process id</dt><dd>)[0-9]+", "${1}[PID]");
    st.add_filter(r"(<dt>Platform</dt><dd>)[^<]*", "${1}[PLATFORM]");
    st.add_filter(r"gw_[0-9a-f]{12}_[A-Za-z0-9_-]+", "gw_[TOKEN]");
    st.add_filter(r"<code>[0-9a-f]{12}</code>", "<code>[TOKEN_ID]</code>");
    st.add_filter(r"/settings/tokens/[0-9a-f]{12}/", "/settings/tokens/[TOKEN_ID]/");
    st.add_filter(&regex_escape(gatewatch::cli::VERSION), "[VERSION]");
    st.add_filter(r">\s*<", ">\n<");
    st
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Fetches `path` with `client`, checks the status and snapshots the body as `name`.
async fn snap(server: &TestServer, client: &reqwest::Client, path: &str, status: u16, name: &str) {
    let resp = client.get(format!("{}{path}", server.url)).send().await.unwrap();
    assert_eq!(resp.status(), status, "GET {path}");
    let body = resp.text().await.unwrap();
    settings(server).bind(|| insta::assert_snapshot!(name, body));
}

#[tokio::test]
async fn pages_without_login() {
    let s = TestServer::start(Options::default()).await;
    let c = client();
    snap(&s, &c, "/setup", 200, "setup").await;
    snap(&s, &c, "/no/such/page", 404, "not_found").await;
    setup_admin(&s, "admin", PASSWORD).await;
    snap(&s, &client(), "/login", 200, "login").await;
    s.stop().await;
}

#[tokio::test]
async fn admin_pages() {
    let s = TestServer::start(Options::default()).await;
    let c = setup_admin(&s, "admin", PASSWORD).await;

    // Some history for the users, tokens and audit pages, made through the forms.
    let fields = [
        ("username", "viewer1"),
        ("role", "viewer"),
        ("password", PASSWORD),
    ];
    let r = submit_form(&c, &s, "/settings/users", "/settings/users", &fields).await;
    assert_eq!(r.status(), 303);
    let fields = [("name", "prometheus"), ("role", "viewer")];
    let r = submit_form(&c, &s, "/settings/tokens", "/settings/tokens", &fields).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("gw_"), "the new token's secret is shown once");
    settings(&s).bind(|| insta::assert_snapshot!("tokens_created", body));

    snap(&s, &c, "/", 200, "dashboard").await;
    snap(&s, &c, "/settings/users?done=user-added", 200, "users").await;
    snap(&s, &c, "/settings/tokens", 200, "tokens").await;
    snap(&s, &c, "/settings/audit", 200, "audit").await;
    snap(&s, &c, "/settings", 200, "settings").await;
    snap(&s, &c, "/about", 200, "about").await;
    snap(&s, &c, "/api/docs", 200, "api_docs").await;
    snap(&s, &c, "/traffic", 200, "traffic").await;
    snap(&s, &c, "/hosts", 200, "hosts_empty").await;
    let xml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/nmap/loopback-sV.xml"
    ))
    .unwrap();
    s.state
        .discovery
        .import_nmap(&xml, "loopback-sV.xml", "admin", s.now())
        .unwrap();
    snap(&s, &c, "/hosts", 200, "hosts").await;
    snap(&s, &c, "/hosts/1", 200, "host").await;
    snap(&s, &c, "/scans", 200, "scans").await;
    s.stop().await;
}

#[tokio::test]
async fn forbidden_page() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("admin", "admin");
    s.add_user("viewer1", "viewer");
    let c = login(&s, "viewer1", PASSWORD).await;
    snap(&s, &c, "/settings/users", 403, "forbidden").await;
    s.stop().await;
}
