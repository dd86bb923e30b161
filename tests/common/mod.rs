//! Shared harness for integration tests: starts the real web server in-process on a
//! loopback port 0 with a temporary store and an injectable clock.
#![allow(dead_code)]

use gatewatch::accounts::Accounts;
use gatewatch::config::{self, Config, Overrides};
use gatewatch::model::Timestamp;
use gatewatch::store::Store;
use gatewatch::web::{self, AppState, Facts, WebDeps};
use std::sync::atomic::{AtomicU64, Ordering};
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
}

pub struct Options {
    pub tls: bool,
    /// Extra TOML appended to the config file (e.g. "[web]\nmax_body_bytes = 100").
    pub config_toml: String,
}

impl Default for Options {
    fn default() -> Self {
        Options { tls: false, config_toml: String::new() }
    }
}

impl TestServer {
    pub async fn start(opts: Options) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let flags = Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            listen: Some("127.0.0.1:0".into()),
            plain_http: !opts.tls,
        };
        let cfg: Config = config::load_from_str(&opts.config_toml, None, Vec::new(), &flags).unwrap();
        let store = Arc::new(Store::open(&cfg.data_dir, Default::default()).unwrap());
        let accounts = Arc::new(Accounts::new(store, cfg.auth.clone()));
        let tls = cfg.web.tls.as_ref().map(|f| web::tls::server_config(f, &cfg.data_dir).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let clock = Arc::new(AtomicU64::new(T0));
        let c = clock.clone();
        let shutdown = CancellationToken::new();
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
        });
        let handle = tokio::spawn(web::run(WebDeps { listener, tls, state: state.clone() }, shutdown.clone()));
        TestServer { url, setup_token: "test-setup-token".into(), state, clock, shutdown, handle, dir }
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
        self.state.accounts.create_user(name, role, PASSWORD, self.now()).unwrap();
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.handle.await;
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

/// Logs in through the login form; returns the client with its session cookie.
pub async fn login(server: &TestServer, user: &str, password: &str) -> reqwest::Client {
    let c = client();
    let page = c.get(format!("{}/login", server.url)).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_from(&page);
    let resp = c
        .post(format!("{}/login", server.url))
        .form(&[("csrf", csrf.as_str()), ("username", user), ("password", password), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "login as {user} failed");
    c
}
