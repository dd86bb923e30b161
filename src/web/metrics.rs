//! Process facts (memory, CPU, descriptors) read from the OS, request counters, and the
//! Prometheus text endpoint at `/metrics`.

use super::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portable_atomic::AtomicU64;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Request counters; atomics, so counting costs no lock.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    requests: AtomicU64,
    /// Responses by status class: 1xx..5xx at index 0..4.
    by_class: [AtomicU64; 5],
}

impl HttpMetrics {
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    pub fn count_status(&self, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }
}

/// What the OS says about this process.
#[derive(Debug, Clone, Default)]
pub struct ProcessStats {
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: Option<u64>,
    pub threads: Option<u64>,
}

impl ProcessStats {
    pub fn read() -> Self {
        // SAFETY: getrusage only writes the struct we pass.
        let usage = unsafe {
            let mut u: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut u);
            u
        };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let cpu_seconds = tv(usage.ru_utime) + tv(usage.ru_stime);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        };
        // Without /proc (FreeBSD), fall back to the peak RSS, which getrusage reports in KiB.
        let rss_bytes = field("VmRSS:")
            .map(|kib| kib * 1024)
            .unwrap_or(usage.ru_maxrss as u64 * 1024);
        let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
        ProcessStats {
            rss_bytes,
            cpu_seconds,
            open_fds,
            threads: field("Threads:"),
        }
    }
}

/// Human-readable byte count, e.g. `12.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Human-readable duration, e.g. `3d 4h`, `12m 5s`.
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m {secs}s")
    } else {
        format!("{secs}s")
    }
}

pub async fn prometheus(State(state): State<Arc<AppState>>) -> Response {
    let body = tokio::task::spawn_blocking(move || render(&state))
        .await
        .unwrap_or_default();
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// The Prometheus text exposition of process, store and HTTP metrics.
pub fn render(state: &AppState) -> String {
    let p = ProcessStats::read();
    let store = state.accounts.store().stats();
    let now = state.now();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let version_label = format!("{{version=\"{}\"}}", state.facts.version);
    metric(
        "gatewatch_build_info",
        "gauge",
        "Build information.",
        &[(&version_label, 1.0)],
    );
    metric(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds.",
        &[("", state.facts.started_at.as_millis() as f64 / 1000.0)],
    );
    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        &[("", p.rss_bytes as f64)],
    );
    metric(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent in seconds.",
        &[("", p.cpu_seconds)],
    );
    if let Some(fds) = p.open_fds {
        metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            &[("", fds as f64)],
        );
    }
    if let Some(t) = p.threads {
        metric(
            "process_threads",
            "gauge",
            "Number of OS threads.",
            &[("", t as f64)],
        );
    }
    metric(
        "gatewatch_store_file_bytes",
        "gauge",
        "Size of the LMDB data file on disk.",
        &[("", store.file_bytes as f64)],
    );
    metric(
        "gatewatch_store_used_bytes",
        "gauge",
        "Bytes of the LMDB map in use.",
        &[("", store.used_bytes as f64)],
    );
    metric(
        "gatewatch_store_map_bytes",
        "gauge",
        "Current LMDB map size (grows by itself when full).",
        &[("", store.map_size as f64)],
    );
    let entries: Vec<(String, f64)> = store
        .entries
        .iter()
        .map(|(t, n)| (format!("{{table=\"{t}\"}}"), *n as f64))
        .collect();
    let entries: Vec<(&str, f64)> = entries.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric(
        "gatewatch_store_entries",
        "gauge",
        "Entries per store table.",
        &entries,
    );
    metric(
        "gatewatch_http_requests_total",
        "counter",
        "HTTP requests received.",
        &[("", state.metrics.requests() as f64)],
    );
    let classes: Vec<(String, f64)> = state
        .metrics
        .by_class
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{{class=\"{}xx\"}}", i + 1), c.load(Relaxed) as f64))
        .collect();
    let classes: Vec<(&str, f64)> = classes.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric(
        "gatewatch_http_responses_total",
        "counter",
        "HTTP responses by status class.",
        &classes,
    );
    traffic_metrics(state, &mut metric);
    metric(
        "gatewatch_auth_locked_out",
        "gauge",
        "Accounts and addresses locked out after failed logins.",
        &[("", state.accounts.locked_count(now) as f64)],
    );
    let c = &state.logs.counters;
    let syslog: [(&str, &str, &AtomicU64); 12] = [
        (
            "received",
            "Syslog messages (datagrams or frames) received, admitted or not.",
            &c.received,
        ),
        (
            "parsed",
            "Syslog messages parsed and queued for the store.",
            &c.parsed,
        ),
        ("rejected", "Syslog messages the parser rejected.", &c.rejected),
        (
            "not_allowed",
            "Syslog messages and connections from senders outside syslog.allowed_senders.",
            &c.not_allowed,
        ),
        (
            "rate_limited",
            "Syslog messages over the per-sender rate limit.",
            &c.rate_limited,
        ),
        (
            "truncated",
            "Syslog messages cut to syslog.max_message_size.",
            &c.truncated,
        ),
        (
            "udp_overflows",
            "Syslog UDP datagrams dropped by the kernel because the receive queue was full.",
            &c.udp_overflows,
        ),
        (
            "framing_errors",
            "Syslog TCP/TLS framing errors.",
            &c.framing_errors,
        ),
        (
            "flushed",
            "Syslog events whose batch was committed to the store.",
            &c.flushed,
        ),
        (
            "store_failures",
            "Syslog events lost because the store refused their batch.",
            &c.store_failures,
        ),
        (
            "pruned",
            "Syslog events deleted by retention (age or size).",
            &c.pruned,
        ),
        (
            "tls_failures",
            "Syslog TLS handshakes that failed.",
            &c.tls_failures,
        ),
    ];
    for (name, help, v) in syslog {
        metric(
            &format!("gatewatch_syslog_{name}_total"),
            "counter",
            help,
            &[("", v.load(Relaxed) as f64)],
        );
    }
    metric(
        "gatewatch_syslog_connections",
        "gauge",
        "Open syslog TCP/TLS connections.",
        &[("", c.connections.load(Relaxed) as f64)],
    );
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Capture and traffic counters per interface.
/// Writes one metric family: (name, kind, help, [(labels, value)]).
type MetricSink<'a> = dyn FnMut(&str, &str, &str, &[(&str, f64)]) + 'a;

fn traffic_metrics(state: &AppState, metric: &mut MetricSink) {
    let status = state.traffic.status();
    let counters = state.traffic.counters_by_source();
    let per = |f: &dyn Fn(&crate::sensor::SourceStatus) -> f64| -> Vec<(String, f64)> {
        status
            .sources
            .iter()
            .map(|s| (format!("{{interface=\"{}\"}}", label(&s.name)), f(s)))
            .collect()
    };
    let emit = |metric: &mut MetricSink, name: &str, kind: &str, help: &str, v: Vec<(String, f64)>| {
        let v: Vec<(&str, f64)> = v.iter().map(|(l, x)| (l.as_str(), *x)).collect();
        metric(name, kind, help, &v);
    };
    emit(
        metric,
        "gatewatch_capture_packets_total",
        "counter",
        "Packets captured.",
        per(&|s| s.packets as f64),
    );
    emit(
        metric,
        "gatewatch_capture_bytes_total",
        "counter",
        "Bytes captured (wire length).",
        per(&|s| s.bytes as f64),
    );
    emit(
        metric,
        "gatewatch_capture_packets_per_second",
        "gauge",
        "Packets per second over the last second.",
        per(&|s| s.packets_per_second),
    );
    emit(
        metric,
        "gatewatch_capture_bits_per_second",
        "gauge",
        "Bits per second over the last second.",
        per(&|s| s.bytes_per_second),
    );
    emit(
        metric,
        "gatewatch_capture_kernel_drops_total",
        "counter",
        "Packets the kernel dropped because the capture buffer was full.",
        per(&|s| s.dropped_kernel as f64),
    );
    emit(
        metric,
        "gatewatch_capture_interface_drops_total",
        "counter",
        "Packets the interface or driver dropped.",
        per(&|s| s.dropped_interface as f64),
    );
    emit(
        metric,
        "gatewatch_flows_active",
        "gauge",
        "Flows in the flow table.",
        per(&|s| s.flows_active as f64),
    );
    emit(
        metric,
        "gatewatch_flows_evicted_total",
        "counter",
        "Flows evicted because the flow table was full.",
        per(&|s| s.flows_evicted as f64),
    );
    emit(
        metric,
        "gatewatch_capture_up",
        "gauge",
        "1 while the source captures.",
        per(&|s| f64::from(u8::from(s.state == crate::sensor::SourceState::Running))),
    );
    let mut proto = Vec::new();
    let mut dns = Vec::new();
    let mut rcode = Vec::new();
    for (name, c) in &counters {
        let n = label(name);
        for (p, v) in [
            ("tcp", c.tcp),
            ("udp", c.udp),
            ("icmp", c.icmp),
            ("other", c.other),
            ("non_ip", c.non_ip),
        ] {
            proto.push((format!("{{interface=\"{n}\",protocol=\"{p}\"}}"), v as f64));
        }
        for (k, v) in [("query", c.dns_queries), ("response", c.dns_responses)] {
            dns.push((format!("{{interface=\"{n}\",kind=\"{k}\"}}"), v as f64));
        }
        for (r, v) in [
            ("NOERROR", c.dns_noerror),
            ("NXDOMAIN", c.dns_nxdomain),
            ("SERVFAIL", c.dns_servfail),
            ("REFUSED", c.dns_refused),
            ("NODATA", c.dns_nodata),
        ] {
            rcode.push((format!("{{interface=\"{n}\",rcode=\"{r}\"}}"), v as f64));
        }
    }
    emit(
        metric,
        "gatewatch_traffic_packets_by_protocol_total",
        "counter",
        "Packets by protocol.",
        proto,
    );
    emit(
        metric,
        "gatewatch_dns_messages_total",
        "counter",
        "DNS queries and responses seen.",
        dns,
    );
    emit(
        metric,
        "gatewatch_dns_responses_total",
        "counter",
        "DNS responses by result (NODATA: NOERROR without answers).",
        rcode,
    );
    let n = |v: u64| vec![(String::new(), v as f64)];
    emit(
        metric,
        "gatewatch_traffic_summaries_stored_total",
        "counter",
        "Window summaries written to the store.",
        n(status.summaries_written),
    );
    emit(
        metric,
        "gatewatch_traffic_summaries_dropped_total",
        "counter",
        "Window summaries dropped because the store writer was behind or failing.",
        n(status.summaries_dropped),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(human_duration(std::time::Duration::from_secs(90061)), "1d 1h");
        assert_eq!(human_duration(std::time::Duration::from_secs(65)), "1m 5s");
    }

    #[test]
    fn process_stats_are_plausible() {
        let p = ProcessStats::read();
        assert!(p.rss_bytes > 1024 * 1024, "rss {}", p.rss_bytes);
    }
}
