//! Where `top` gets its views: a running instance's API, or a capture read here (a live
//! interface or a replayed file) through the same engine the server runs. Each feed runs on
//! its own thread and sends [`Update`]s; it stops when the receiver is gone.

use super::{slow_rows, RateSample, TopView};
use crate::capture::{CaptureSource, LiveOptions, LiveSource, PacketTime, ReplaySource};
use crate::sensor::summarize::summarize;
use crate::traffic::{Engine, TrafficConfig};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// What a feed sends.
#[derive(Debug, Clone)]
pub enum Update {
    View(Box<TopView>),
    /// A problem worth showing (the feed keeps trying where that makes sense).
    Problem(String),
}

/// Where to read from.
#[derive(Debug, Clone)]
pub enum FeedSpec {
    Remote {
        url: String,
        token: String,
        /// Accept any certificate (the instance's self-signed one).
        insecure: bool,
        /// A PEM certificate to trust, e.g. `<data dir>/tls-cert.pem`.
        ca_cert: Option<PathBuf>,
    },
    Iface {
        name: String,
        bpf: Option<String>,
    },
    Pcap {
        path: PathBuf,
        /// As fast as possible instead of at the file's own pace.
        fast: bool,
    },
}

const REFRESH: Duration = Duration::from_secs(1);

/// Starts the feed's thread.
pub fn start(spec: FeedSpec, tx: Sender<Update>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("top-feed".into())
        .spawn(move || match spec {
            FeedSpec::Remote {
                url,
                token,
                insecure,
                ca_cert,
            } => remote(&url, &token, insecure, ca_cert, &tx),
            FeedSpec::Iface { name, bpf } => {
                let opts = LiveOptions {
                    bpf_filter: bpf,
                    ..LiveOptions::default()
                };
                match LiveSource::open(&name, &opts) {
                    Ok(src) => local(Box::new(src), &name, &tx),
                    Err(e) => {
                        let _ = tx.send(Update::Problem(e.to_string()));
                    }
                }
            }
            FeedSpec::Pcap { path, fast } => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match ReplaySource::open(&path, !fast, false, Duration::from_millis(200)) {
                    Ok(src) => local(Box::new(src), &name, &tx),
                    Err(e) => {
                        let _ = tx.send(Update::Problem(format!("{}: {e}", path.display())));
                    }
                }
            }
        })
}

fn remote(url: &str, token: &str, insecure: bool, ca_cert: Option<PathBuf>, tx: &Sender<Update>) {
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .danger_accept_invalid_certs(insecure);
    if let Some(path) = ca_cert {
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string()))
        {
            Ok(cert) => builder = builder.add_root_certificate(cert),
            Err(e) => {
                let _ = tx.send(Update::Problem(format!("{}: {e}", path.display())));
                return;
            }
        }
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(Update::Problem(format!("HTTP client: {e}")));
            return;
        }
    };
    let endpoint = format!("{}/api/v1/traffic/top", url.trim_end_matches('/'));
    loop {
        let update = match client.get(&endpoint).bearer_auth(token).send() {
            Ok(r) if r.status().is_success() => match r.json::<TopView>() {
                Ok(v) => Update::View(Box::new(v)),
                Err(e) => Update::Problem(format!("unexpected answer from {endpoint}: {e}")),
            },
            Ok(r)
                if r.status() == reqwest::StatusCode::UNAUTHORIZED
                    || r.status() == reqwest::StatusCode::FORBIDDEN =>
            {
                Update::Problem(format!(
                    "{endpoint}: {} — the token is wrong or its role cannot view traffic",
                    r.status()
                ))
            }
            Ok(r) => Update::Problem(format!("{endpoint}: {}", r.status())),
            Err(e) => Update::Problem(format!("{endpoint}: {}", error_chain(&e))),
        };
        if tx.send(update).is_err() {
            return;
        }
        std::thread::sleep(REFRESH);
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Per-second packet and bit counts by packet time, the last [`super::RATE_SECONDS`].
#[derive(Default)]
struct Rates {
    samples: Vec<RateSample>,
}

impl Rates {
    fn add(&mut self, t: u64, wire: u32) {
        match self.samples.last_mut() {
            Some(s) if s.t == t => {
                s.pps += 1.0;
                s.bps += f64::from(wire) * 8.0;
            }
            Some(s) if s.t > t => {}
            _ => {
                self.samples.push(RateSample {
                    t,
                    pps: 1.0,
                    bps: f64::from(wire) * 8.0,
                });
                let over = self.samples.len().saturating_sub(super::RATE_SECONDS);
                self.samples.drain(..over);
            }
        }
    }

    /// Complete seconds only (the current one is still filling).
    fn complete(&self) -> Vec<RateSample> {
        let n = self.samples.len().saturating_sub(1);
        self.samples[..n].to_vec()
    }
}

fn wall() -> PacketTime {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    PacketTime(since.as_nanos() as u64)
}

fn local(mut src: Box<dyn CaptureSource>, name: &str, tx: &Sender<Update>) {
    let live = src.is_live();
    // A file is one window from its first packet to its last (like `gatewatch pcap`); an
    // interface shows pktvisor-style periods of a minute.
    let mut engine = Engine::new(TrafficConfig {
        period: live.then_some(Duration::from_secs(60)),
        ..TrafficConfig::default()
    });
    let mut rates = Rates::default();
    let mut sent = Instant::now();
    let view = |engine: &mut Engine, rates: &Rates, finished: bool| {
        let w = engine.live();
        let start = w.start.map(|t| t.as_secs() * 1000).unwrap_or(0);
        let end = w.end.map(|t| t.as_secs() * 1000).unwrap_or(start);
        let mut v = TopView::new(
            &summarize(w, name, start, end, 0),
            rates.complete(),
            slow_rows(&w.dns_xact),
        );
        v.finished = finished;
        Update::View(Box::new(v))
    };
    loop {
        match src.next_packet() {
            Ok(Some(p)) => {
                rates.add(p.ts.as_secs(), p.wire_len);
                engine.ingest(&p);
            }
            Ok(None) if live => engine.advance(wall()),
            Ok(None) => {
                let w = engine.finish();
                let (start, end) = (
                    w.start.map(|t| t.as_secs() * 1000).unwrap_or(0),
                    w.end.map(|t| t.as_secs() * 1000).unwrap_or(0),
                );
                let mut v = TopView::new(
                    &summarize(&w, name, start, end, 0),
                    rates.complete(),
                    slow_rows(&w.dns_xact),
                );
                v.finished = true;
                let _ = tx.send(Update::View(Box::new(v)));
                return;
            }
            Err(e) => {
                let _ = tx.send(view(&mut engine, &rates, true));
                let _ = tx.send(Update::Problem(e.to_string()));
                return;
            }
        }
        if sent.elapsed() >= REFRESH {
            sent = Instant::now();
            let mut u = view(&mut engine, &rates, false);
            if let (Update::View(v), true) = (&mut u, live) {
                v.drops = src.stats().dropped_kernel + src.stats().dropped_interface;
            }
            if tx.send(u).is_err() {
                return;
            }
        }
    }
}
