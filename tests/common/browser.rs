//! Headless Chromium for the browser tests: chromedriver in its own process group, a
//! session with the flags this machine needs (no background networking), screenshots.

use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_loopback_port;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver in its own process group; dropping it ends the driver and the browsers it
/// started, also when the test panics half-way.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub async fn start() -> Result<Driver> {
        use std::os::unix::process::CommandExt;
        let port = free_loopback_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {CHROMEDRIVER}"))?;
        let driver = Driver { child, port };
        let status = format!("http://127.0.0.1:{port}/status");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(&status).send().await {
                if r.status().is_success() {
                    return Ok(driver);
                }
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on port {port} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group id is the child's pid (process_group(0)); it holds chromedriver and the
        // browser it launched, nothing else.
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals only that process group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Why the browser tests cannot run here, if they cannot.
pub fn tools_missing() -> Option<String> {
    [CHROMEDRIVER, CHROMIUM]
        .iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| format!("{p} not found"))
}

pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

/// A screenshot of the viewport into `target/screenshots/NAME.png`.
pub async fn screenshot(c: &Client, name: &str) -> Result<PathBuf> {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, c.screenshot().await?)?;
    println!("screenshot: {}", path.display());
    Ok(path)
}

/// A Chromium session of `window` size with a fresh profile in `profile`.
pub async fn connect(driver: &Driver, profile: &Path, window: (u32, u32)) -> Result<Client> {
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        format!("--window-size={},{}", window.0, window.1),
        format!("--user-data-dir={}", profile.display()),
        "--ignore-certificate-errors".into(),
    ];
    let caps = serde_json::json!({
        "browserName": "chrome",
        "acceptInsecureCerts": true,
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
    });
    let caps = caps.as_object().cloned().unwrap_or_default();
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .context("cannot open a Chromium session through chromedriver")?;
    Ok(client)
}
