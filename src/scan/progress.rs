//! Progress of a running scan for progress bars and SSE: which phase, how far, hosts
//! found, overall percent and an ETA. The arithmetic ([`overall`]) is sans-IO; the
//! [`Tracker`] only adds the clock and the caller's callback.

use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The phases of a scan, in order, with the share of the total time each usually takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// ARP, ICMP and TCP liveness probes of every target address.
    Liveness,
    /// TCP connect scan of the live hosts.
    Ports,
    /// Banner/HTTP/TLS/UDP probes, mDNS/SSDP, reverse DNS.
    Probes,
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Liveness => "liveness",
            Phase::Ports => "ports",
            Phase::Probes => "probes",
            Phase::Done => "done",
        }
    }

    /// (start, width) of the phase in the overall 0..1 range.
    fn span(self) -> (f64, f64) {
        match self {
            Phase::Liveness => (0.0, 0.3),
            Phase::Ports => (0.3, 0.4),
            Phase::Probes => (0.7, 0.3),
            Phase::Done => (1.0, 0.0),
        }
    }
}

/// One progress report. `done`/`total` count the current phase's work items (addresses,
/// port probes, hosts); `percent` and `eta_ms` are for the whole scan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Progress {
    pub phase: Phase,
    pub done: usize,
    pub total: usize,
    /// Live hosts known so far.
    pub hosts_found: usize,
    /// Whole scan, 0.0..=100.0.
    pub percent: f64,
    pub elapsed_ms: u64,
    /// Estimated time left; `None` until enough of the scan is done to guess.
    pub eta_ms: Option<u64>,
}

/// Overall fraction done (0..=1) and the estimated time left, from the phase, its
/// counters and the time spent so far.
pub fn overall(phase: Phase, done: usize, total: usize, elapsed: Duration) -> (f64, Option<Duration>) {
    let (start, width) = phase.span();
    let within = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let fraction = (start + width * within).clamp(0.0, 1.0);
    let eta = if phase == Phase::Done {
        Some(Duration::ZERO)
    } else if fraction >= 0.05 {
        Some(elapsed.mul_f64((1.0 - fraction) / fraction))
    } else {
        None
    };
    (fraction, eta)
}

/// Reports progress through the caller's callback, with the clock read here.
pub(super) struct Tracker {
    started: Instant,
    callback: Box<dyn Fn(Progress) + Send + Sync>,
    hosts_found: AtomicUsize,
}

impl Tracker {
    pub fn new(callback: impl Fn(Progress) + Send + Sync + 'static) -> Tracker {
        Tracker {
            started: Instant::now(),
            callback: Box::new(callback),
            hosts_found: AtomicUsize::new(0),
        }
    }

    pub fn set_hosts_found(&self, n: usize) {
        self.hosts_found.store(n, Ordering::Relaxed);
    }

    pub fn report(&self, phase: Phase, done: usize, total: usize) {
        let elapsed = self.started.elapsed();
        let (fraction, eta) = overall(phase, done, total, elapsed);
        (self.callback)(Progress {
            phase,
            done,
            total,
            hosts_found: self.hosts_found.load(Ordering::Relaxed),
            percent: (fraction * 1000.0).round() / 10.0,
            elapsed_ms: elapsed.as_millis() as u64,
            eta_ms: eta.map(|d| d.as_millis() as u64),
        });
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_runs_through_the_phases_and_eta_follows() {
        let s = Duration::from_secs(1);
        assert_eq!(overall(Phase::Liveness, 0, 254, s), (0.0, None));
        let (f, eta) = overall(Phase::Liveness, 254, 254, Duration::from_secs(3));
        assert!((f - 0.3).abs() < 1e-9);
        assert_eq!(eta, Some(Duration::from_secs(7)));
        let (f, _) = overall(Phase::Ports, 50, 100, s);
        assert!((f - 0.5).abs() < 1e-9);
        let (f, eta) = overall(Phase::Probes, 0, 0, s);
        assert!((f - 1.0).abs() < 1e-9, "an empty phase counts as finished");
        assert_eq!(eta, Some(Duration::ZERO));
        assert_eq!(overall(Phase::Done, 0, 0, s), (1.0, Some(Duration::ZERO)));
        // Counters past their total do not push the scan past 100 %.
        assert!(overall(Phase::Probes, 9, 3, s).0 <= 1.0);
    }
}
