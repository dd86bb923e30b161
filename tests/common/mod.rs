//! Shared harness for integration tests: starts the real web server in-process on a
//! loopback port 0 with a temporary store and an injectable clock.
#![allow(dead_code)]

pub mod browser;

use gatewatch::accounts::Accounts;
use gatewatch::config::{self, Config, Overrides};
use gatewatch::model::Timestamp;
use gatewatch::sensor::Sensor;
use gatewatch::store::Store;
use gatewatch::web::{self, AppState, Facts, WebDeps};
use portable_atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "correct horse battery staple";
pub const T0: u64 = 1_800_000_000_000;

pub struct TestServer {
    pub url: String,
    pub setup_token: String,
    pub state: Arc<AppState>,
    pub clock: Arc<AtomicU64>,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<()>,
    pub dir: tempfile::TempDir,
    /// The capture threads and writer, when the test's config enables capture.
    pub sensor: Option<Sensor>,
}

#[derive(Default)]
pub struct Options {
    pub tls: bool,
    /// Extra TOML appended to the config file (e.g. "[web]\nmax_body_bytes = 100").
    pub config_toml: String,
}

impl TestServer {
    pub async fn start(opts: Options) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let flags = Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            listen: Some("127.0.0.1:0".into()),
            plain_http: !opts.tls,
        };
        // Capture stays off unless a test asks for it (e.g. a replayed fixture).
        let toml = if opts.config_toml.contains("[capture]") {
            opts.config_toml.clone()
        } else {
            format!("{}\n[capture]\nenabled = false\n", opts.config_toml)
        };
        let cfg: Config = config::load_from_str(&toml, None, Vec::new(), &flags).unwrap();
        let store = Arc::new(Store::open(&cfg.data_dir, Default::default()).unwrap());
        let sensor = Sensor::start(&cfg, store.clone());
        let accounts = Arc::new(Accounts::new(store, cfg.auth.clone()));
        let tls = cfg
            .web
            .tls
            .as_ref()
            .map(|f| web::tls::server_config(f, &cfg.data_dir).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let clock = Arc::new(AtomicU64::new(T0));
        let c = clock.clone();
        let shutdown = CancellationToken::new();
        let discovery = gatewatch::discovery_service::Discovery::open(
            accounts.store().clone(),
            cfg.discovery.clone(),
            shutdown.clone(),
            {
                let c = clock.clone();
                Arc::new(move || Timestamp(c.load(Ordering::SeqCst)))
            },
        )
        .unwrap();
        let state = Arc::new(AppState {
            accounts,
            config: Arc::new(cfg),
            facts: Facts {
                version: gatewatch::cli::VERSION,
                started_at: Timestamp(T0),
                started: Instant::now(),
                urls: vec![format!("{url}/")],
                tls: tls.is_some(),
            },
            setup_token: "test-setup-token".into(),
            metrics: Default::default(),
            shutdown: shutdown.clone(),
            clock: Arc::new(move || Timestamp(c.load(Ordering::SeqCst))),
            discovery,
            traffic: sensor.hub.clone(),
            logs: Default::default(),
        });
        let handle = tokio::spawn(web::run(
            WebDeps {
                listener,
                tls,
                state: state.clone(),
            },
            shutdown.clone(),
        ));
        TestServer {
            url,
            setup_token: "test-setup-token".into(),
            state,
            clock,
            shutdown,
            handle,
            dir,
            sensor: Some(sensor),
        }
    }

    /// Moves the injected clock forward.
    pub fn advance(&self, d: std::time::Duration) {
        self.clock.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn now(&self) -> Timestamp {
        Timestamp(self.clock.load(Ordering::SeqCst))
    }

    /// Creates a user directly in the store.
    pub fn add_user(&self, name: &str, role: &str) {
        self.state
            .accounts
            .create_user(name, role, PASSWORD, self.now())
            .unwrap();
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.handle).await;
        if let Some(sensor) = self.sensor.take() {
            let _ = tokio::task::spawn_blocking(move || sensor.stop()).await;
        }
    }
}

/// A browser-like client: cookie jar, no automatic redirects, accepts the self-signed cert.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

/// Extracts `name="csrf" value="..."` from a page.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a csrf field") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

/// Opens the page at `page`, takes its CSRF token, and posts `fields` with it to `action`,
/// as a browser submitting that page's form would.
pub async fn submit_form(
    c: &reqwest::Client,
    server: &TestServer,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = c
        .get(format!("{}{page}", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_from(&html);
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    c.post(format!("{}{action}", server.url))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Logs in through the login form; returns the client with its session cookie.
pub async fn login(server: &TestServer, user: &str, password: &str) -> reqwest::Client {
    let c = client();
    let resp = try_login(server, &c, user, password).await;
    assert_eq!(resp.status(), 303, "login as {user} failed");
    c
}

/// Creates the first admin through the setup form, as a browser would; returns the client
/// holding the admin's session.
pub async fn setup_admin(server: &TestServer, user: &str, password: &str) -> reqwest::Client {
    let c = client();
    let fields = [
        ("token", server.setup_token.as_str()),
        ("username", user),
        ("password", password),
        ("confirm", password),
    ];
    let resp = submit_form(&c, server, "/setup", "/setup", &fields).await;
    assert_eq!(resp.status(), 303, "setup as {user} failed");
    c
}

/// A loopback port that was free a moment ago, for child processes that need a `--port`.
pub fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Creates an API token for `role` directly in the store, as `gatewatch token create` does;
/// returns the secret to send as `Authorization: Bearer`.
pub fn token_for(server: &TestServer, name: &str, role: &str) -> String {
    server
        .state
        .accounts
        .create_token(name, role, "test", server.now())
        .unwrap()
        .0
}

/// Posts the login form with client `c` (fetching the login page first for the CSRF cookie)
/// and returns the response whatever its status.
pub async fn try_login(
    server: &TestServer,
    c: &reqwest::Client,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let fields = [("username", user), ("password", password), ("next", "/")];
    submit_form(c, server, "/login", "/login", &fields).await
}

/// Asserts that `resp` has `status` and the API error shape `{"error":{"code","message"}}`;
/// returns the code.
pub async fn api_error(resp: reqwest::Response, status: u16) -> String {
    let what = format!("{} {}", resp.url().path(), resp.status());
    assert_eq!(resp.status(), status, "{what}");
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string());
    assert!(
        ctype
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: content-type {ctype:?}"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error.code in {body}"));
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error.message in {body}"));
    assert!(!message.is_empty(), "{what}: empty message");
    code.to_string()
}

/// All `Set-Cookie` header values of a response.
pub fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The `Set-Cookie` value that sets cookie `name`, if any.
pub fn set_cookie_named(resp: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(resp)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The `Location` header of a redirect.
pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// `host:port` of the server, for raw sockets.
pub fn addr_of(server: &TestServer) -> String {
    server.url.rsplit("://").next().unwrap().to_string()
}

/// The real syslog receivers on loopback port 0, storing into a test server's store and
/// counting into its hub (so its pages, API and /metrics see them).
pub struct SyslogReceivers {
    pub udp: std::net::SocketAddr,
    pub tcp: std::net::SocketAddr,
    pub tls: std::net::SocketAddr,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<()>,
}

impl SyslogReceivers {
    /// `cfg` with every listener on 127.0.0.1:0 and TLS on the test server's data dir's
    /// self-signed certificate.
    pub async fn start(server: &TestServer, mut cfg: gatewatch::config::SyslogConfig) -> SyslogReceivers {
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        cfg.udp_listen = Some(any);
        cfg.tcp_listen = Some(any);
        cfg.tls_listen = Some(any);
        let tls = web::tls::plain_server_config(&config::TlsFiles::SelfSigned, server.dir.path()).unwrap();
        let (listeners, status) = gatewatch::syslog::bind(&cfg, Some(Arc::new(tls))).await;
        let addr = |t: gatewatch::model::Transport| {
            status
                .iter()
                .find(|s| s.transport == t)
                .unwrap()
                .result
                .clone()
                .unwrap()
        };
        let (udp, tcp, tls) = (
            addr(gatewatch::model::Transport::Udp),
            addr(gatewatch::model::Transport::Tcp),
            addr(gatewatch::model::Transport::Tls),
        );
        *server.state.logs.listeners.lock().unwrap() = status;
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(gatewatch::syslog::run(
            gatewatch::syslog::SyslogDeps {
                listeners,
                store: server.state.accounts.store().clone(),
                hub: server.state.logs.clone(),
                cfg,
                clock: server.state.clock.clone(),
            },
            shutdown.clone(),
        ));
        SyslogReceivers {
            udp,
            tcp,
            tls,
            shutdown,
            handle,
        }
    }

    /// Stops receiving and waits until everything received is committed.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.handle.await;
    }
}

/// Waits until the hub's flushed counter stops at `want` (or panics after `secs`).
pub async fn wait_flushed(server: &TestServer, want: u64, secs: u64) {
    let c = &server.state.logs.counters;
    let deadline = Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let got = c.flushed.load(Ordering::SeqCst);
        if got >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {got} of {want} lines flushed after {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The gatewatch binary the process-level tests run: `$TEST_GATEWATCH_BIN` when set (CI points
/// it at the static musl build from packaging/build.sh), else the one cargo built.
pub fn gatewatch_bin() -> std::path::PathBuf {
    std::env::var_os("TEST_GATEWATCH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_gatewatch").into())
}

/// GETs `url` with `client` and returns the body text (panics on a transport error).
pub async fn page_text(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// GETs an API `url` with a bearer `token` and returns the JSON body (panics on errors).
pub async fn api_json(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    token: &str,
) -> serde_json::Value {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
