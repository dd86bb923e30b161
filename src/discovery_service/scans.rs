//! Scans run by the server: validated targets (private ranges unless allowed), a queue
//! behind a concurrency limit, progress for SSE (phase, % done, hosts found, ETA), cancel,
//! and the history record written when a scan starts and ends. Results go into the
//! inventory.

use super::{lock, Discovery, DiscoveryError};
use crate::inventory::{sources, ScanOrigin, ScanRecord, ScanState, Source};
use crate::model::Timestamp;
use crate::scan::{self, Progress, ScanOptions};
use portable_atomic::AtomicU64;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// What a progress bar shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ScanProgress {
    pub id: u64,
    /// queued, running, done, cancelled, failed.
    pub state: String,
    /// liveness, ports, done (the scanner's phases).
    pub phase: String,
    pub percent: u8,
    pub hosts_found: u64,
    /// Seconds left, estimated from the pace so far.
    pub eta_seconds: Option<u64>,
    pub summary: String,
}

struct Running {
    cancel: CancellationToken,
    /// The scanner's last report; `None` while queued.
    progress: Option<Progress>,
    record: ScanRecord,
}

pub(super) struct Scans {
    permits: Arc<Semaphore>,
    next_id: AtomicU64,
    running: Mutex<BTreeMap<u64, Running>>,
}

impl Scans {
    pub(super) fn new(max_concurrent: usize, next_id: u64) -> Scans {
        Scans {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            next_id: AtomicU64::new(next_id.max(1)),
            running: Mutex::new(BTreeMap::new()),
        }
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }
}

impl Discovery {
    /// Queues a scan of `targets` (addresses or CIDRs) with `ports` (a port spec; the
    /// configured default when `None`). Refuses public targets unless the config allows.
    pub fn start_scan(
        self: &Arc<Self>,
        targets: Vec<String>,
        ports: Option<String>,
        origin: ScanOrigin,
        who: &str,
        now: Timestamp,
    ) -> Result<ScanRecord, DiscoveryError> {
        let targets: Vec<String> = targets
            .iter()
            .flat_map(|t| t.split([',', ' ', '\n']))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        if targets.is_empty() {
            return Err(DiscoveryError::BadScan(
                "give at least one target, e.g. 192.168.1.0/24".into(),
            ));
        }
        let addresses = scan::expand_targets(&targets, self.config.allow_public_targets).map_err(|e| {
            let hint = match e {
                scan::ScanError::NotPrivate(_) => " (discovery.allow_public_targets)",
                _ => "",
            };
            DiscoveryError::BadScan(format!("{e}{hint}"))
        })?;
        let port_spec = ports
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| self.config.default_ports.clone());
        let port_list = crate::discovery::ports::parse_port_spec(&port_spec)
            .map_err(|e| DiscoveryError::BadScan(format!("ports: {e}")))?;
        let record = ScanRecord {
            id: self.scans.next_id(),
            origin,
            requested_by: who.to_string(),
            targets,
            ports: port_spec,
            state: ScanState::Queued,
            queued_at: now,
            started_at: None,
            finished_at: None,
            addresses: addresses.len() as u64,
            hosts_found: 0,
            open_ports: 0,
            new_hosts: 0,
            summary: "waiting for a free scan slot".into(),
        };
        self.save_scan(&record)?;
        let cancel = self.shutdown.child_token();
        lock(&self.scans.running).insert(
            record.id,
            Running {
                cancel: cancel.clone(),
                progress: None,
                record: record.clone(),
            },
        );
        let me = self.clone();
        let id = record.id;
        let opts = ScanOptions {
            ports: port_list,
            cancel: Some(cancel.clone()),
            ..Default::default()
        };
        tokio::spawn(async move { me.run_scan(id, addresses, opts, cancel).await });
        Ok(record)
    }

    async fn run_scan(
        self: Arc<Self>,
        id: u64,
        addresses: Vec<std::net::IpAddr>,
        opts: ScanOptions,
        cancel: CancellationToken,
    ) {
        let permit = tokio::select! {
            p = self.scans.permits.clone().acquire_owned() => p.ok(),
            _ = cancel.cancelled() => None,
        };
        let Some(_permit) = permit else {
            self.finish(
                id,
                ScanState::Cancelled,
                None,
                "cancelled before it started".into(),
            );
            return;
        };
        let record = {
            let mut running = lock(&self.scans.running);
            let Some(r) = running.get_mut(&id) else { return };
            r.record.state = ScanState::Running;
            r.record.started_at = Some(self.now());
            r.record.summary = "running".into();
            r.record.clone()
        };
        if let Err(e) = self.save_scan(&record) {
            tracing::warn!(error = %e, scan = id, "cannot record scan start");
        }
        tracing::info!(scan = id, targets = ?record.targets, "scan started");
        let me = self.clone();
        let on_progress = move |p: Progress| {
            if let Some(r) = lock(&me.scans.running).get_mut(&id) {
                r.progress = Some(p);
            }
        };
        // Cancelling stops the scanner early; what it found so far is kept.
        let report = scan::scan(addresses, opts, on_progress).await;
        let open_ports: usize = report.hosts.iter().map(|h| h.ports.len()).sum();
        let obs = report
            .hosts
            .iter()
            .map(|h| sources::from_scan_host(h, Source::Scan))
            .collect();
        let (state, verb) = if report.cancelled {
            (ScanState::Cancelled, "cancelled after")
        } else {
            (ScanState::Done, "")
        };
        match self.observe_batch(obs, self.now()) {
            Ok(new) => {
                let mut summary = format!(
                    "{} hosts up of {} addresses, {open_ports} open ports, {new} new, in {:.1} s",
                    report.hosts.len(),
                    report.targets,
                    report.duration_ms as f64 / 1000.0
                );
                if !verb.is_empty() {
                    summary = format!("{verb} {:.1} s: {summary}", report.duration_ms as f64 / 1000.0);
                }
                for w in &report.warnings {
                    summary.push_str(&format!("; {w}"));
                }
                let counts = (report.hosts.len() as u64, open_ports as u64, new as u64);
                self.finish(id, state, Some(counts), summary);
            }
            Err(e) => self.finish(
                id,
                ScanState::Failed,
                None,
                format!("cannot store the results: {e}"),
            ),
        }
    }

    fn finish(&self, id: u64, state: ScanState, counts: Option<(u64, u64, u64)>, summary: String) {
        let record = {
            let mut running = lock(&self.scans.running);
            let Some(r) = running.remove(&id) else { return };
            let mut rec = r.record;
            rec.state = state;
            rec.finished_at = Some(self.now());
            if let Some((hosts, ports, new)) = counts {
                rec.hosts_found = hosts;
                rec.open_ports = ports;
                rec.new_hosts = new;
            } else {
                rec.hosts_found = r.progress.map_or(0, |p| p.hosts_found as u64);
            }
            rec.summary = summary;
            rec
        };
        tracing::info!(scan = id, state = record.state.as_str(), summary = %record.summary, "scan finished");
        if let Err(e) = self.save_scan(&record) {
            tracing::warn!(error = %e, scan = id, "cannot record scan end");
        }
    }

    /// Cancels a queued or running scan; `false` when it is not running.
    pub fn cancel_scan(&self, id: u64) -> bool {
        match lock(&self.scans.running).get(&id) {
            Some(r) => {
                r.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Progress of a scan, running or finished.
    pub fn scan_progress(&self, id: u64) -> Result<ScanProgress, DiscoveryError> {
        if let Some(r) = lock(&self.scans.running).get(&id) {
            let p = r.progress;
            return Ok(ScanProgress {
                id,
                state: r.record.state.as_str().into(),
                phase: p.map_or("waiting", |p| p.phase.as_str()).into(),
                percent: p.map_or(0, |p| p.percent.clamp(0.0, 100.0) as u8),
                hosts_found: p.map_or(0, |p| p.hosts_found as u64),
                eta_seconds: p.and_then(|p| p.eta_ms).map(|ms| ms.div_ceil(1000)),
                summary: r.record.summary.clone(),
            });
        }
        let rec = self.scan(id)?;
        Ok(ScanProgress {
            id,
            state: rec.state.as_str().into(),
            phase: "done".into(),
            percent: if rec.state == ScanState::Done { 100 } else { 0 },
            hosts_found: rec.hosts_found,
            eta_seconds: None,
            summary: rec.summary,
        })
    }

    /// Ids of scans queued or running.
    pub fn active_scans(&self) -> Vec<u64> {
        lock(&self.scans.running).keys().copied().collect()
    }

    /// Starts the configured schedules when due; checks every 30 s until shutdown.
    pub async fn run_schedules(self: Arc<Self>) {
        if self.config.schedules.is_empty() {
            return;
        }
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
            let now = self.now();
            let history = self.scan_history(500).unwrap_or_default();
            for s in &self.config.schedules {
                let target = s.target.to_string();
                let last = history
                    .iter()
                    .find(|r| r.origin == ScanOrigin::Schedule && r.targets == [target.clone()])
                    .map(|r| r.queued_at);
                if !s.due(last, now) {
                    continue;
                }
                let busy = lock(&self.scans.running)
                    .values()
                    .any(|r| r.record.origin == ScanOrigin::Schedule && r.record.targets == [target.clone()]);
                if busy {
                    continue;
                }
                if let Err(e) =
                    self.start_scan(vec![target.clone()], None, ScanOrigin::Schedule, "schedule", now)
                {
                    tracing::warn!(target = %target, error = %e, "scheduled scan refused");
                }
            }
        }
    }
}
