//! Active scans (the I/O shell): TCP liveness and port scans, banner and protocol probes,
//! MAC addresses from the kernel's neighbour table and names from reverse DNS.
//!
//! Gentle by default: at most [`ScanOptions::per_host`] connections to one host at a time
//! and [`ScanOptions::concurrency`] overall, and a host that drops everything costs only a
//! few short timeouts. What bytes mean is decided in `discovery` (sans-IO); this module only
//! moves them. It never runs unless a user asks (CLI, button, API, schedule).

mod probe;
mod progress;

use progress::Tracker;
pub use progress::{overall, Phase, Progress};

use crate::discovery::identify::HttpInfo;
use crate::discovery::oui::{self, Mac};
use crate::discovery::passive;
use crate::discovery::services::{Evidence, HttpResponse, Match, ServiceMatcher};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("\"{0}\" is not an address or CIDR; write e.g. 192.168.1.0/24")]
    BadTarget(String),
    #[error(
        "{0} is not a private network; gatewatch scans only private ranges unless --allow-public is given"
    )]
    NotPrivate(String),
    #[error("{0} has {1} addresses; split it into networks of at most 65536")]
    TooLarge(String, u64),
}

/// How a scan behaves. The defaults are gentle enough for small IoT devices.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub ports: Vec<u16>,
    /// Connections in flight across all hosts.
    pub concurrency: usize,
    /// Connections in flight to one host.
    pub per_host: usize,
    /// Connect timeout before a host's round-trip time is known.
    pub connect_timeout: Duration,
    /// Time a quiet server gets to send a banner, and a probe to be answered.
    pub probe_timeout: Duration,
    pub resolve_names: bool,
    /// Cancels the scan: probes not yet started are skipped and the report says
    /// `cancelled` with what was found so far.
    pub cancel: Option<tokio_util::sync::CancellationToken>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            ports: crate::discovery::ports::default_ports(),
            concurrency: 256,
            per_host: 24,
            connect_timeout: Duration::from_millis(1000),
            probe_timeout: Duration::from_millis(1500),
            resolve_names: true,
            cancel: None,
        }
    }
}

/// Ports probed on every address to find live hosts (and make the kernel resolve ARP).
const LIVENESS_PORTS: [u16; 4] = [80, 443, 22, 7];

/// Expands targets (addresses or CIDRs) to IPv4/IPv6 addresses. Only private ranges
/// unless `allow_public`; network and broadcast addresses of IPv4 prefixes are left out.
pub fn expand_targets(specs: &[String], allow_public: bool) -> Result<Vec<IpAddr>, ScanError> {
    let mut out = Vec::new();
    for spec in specs {
        let net: ipnet::IpNet = spec
            .parse()
            .or_else(|_| spec.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| ScanError::BadTarget(spec.clone()))?;
        let private = match net.network() {
            IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        };
        if !private && !allow_public {
            return Err(ScanError::NotPrivate(spec.clone()));
        }
        let bits = net.max_prefix_len() - net.prefix_len();
        if bits > 16 {
            return Err(ScanError::TooLarge(spec.clone(), 1u64 << bits.min(63)));
        }
        match net {
            ipnet::IpNet::V4(v4) if v4.prefix_len() < 31 => out.extend(v4.hosts().map(IpAddr::V4)),
            other => out.extend(other.hosts()),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One open port and what answered on it.
#[derive(Debug, Clone, Serialize)]
pub struct PortReport {
    pub port: u16,
    pub proto: &'static str,
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpInfo>,
    pub tls: bool,
    /// How the service name was decided: banner, probe, tls or port.
    pub method: &'static str,
}

/// One live host.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub ip: IpAddr,
    pub mac: Option<String>,
    pub vendor: Option<String>,
    pub hostname: Option<String>,
    /// What showed the host is there: tcp (a port answered), arp (the kernel resolved it).
    pub seen_by: Vec<&'static str>,
    pub rtt_ms: Option<f64>,
    pub ports: Vec<PortReport>,
    /// Service definitions the evidence matched, with that evidence.
    pub services: Vec<Match>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub targets: usize,
    pub ports_per_host: usize,
    pub duration_ms: u64,
    /// True when [`ScanOptions::cancel`] stopped the scan early.
    pub cancelled: bool,
    /// What the scan could not do and did instead (e.g. no raw sockets: no ICMP).
    pub warnings: Vec<String>,
    pub hosts: Vec<HostReport>,
}

/// What a connection attempt showed.
enum Reach {
    Open(Duration),
    Refused(Duration),
    Silent,
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Reach {
    let start = Instant::now();
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Reach::Open(start.elapsed()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Reach::Refused(start.elapsed()),
        _ => Reach::Silent,
    }
}

/// Per-host state shared by the tasks probing it.
#[derive(Default)]
struct HostState {
    rtt: Option<Duration>,
    open: Vec<u16>,
}

impl ScanOptions {
    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.is_cancelled())
    }
}

/// Runs a scan of `targets` to completion (or until [`ScanOptions::cancel`] fires),
/// calling `progress` as it goes.
pub async fn scan(
    targets: Vec<IpAddr>,
    opts: ScanOptions,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> ScanReport {
    let opts = Arc::new(opts);
    let global = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let progress = Arc::new(Tracker::new(progress));
    progress.report(Phase::Liveness, 0, targets.len());
    let states: Arc<Mutex<BTreeMap<IpAddr, HostState>>> = Arc::default();

    // 1. Liveness: a few ports per address. Any answer (open or refused) proves the host;
    //    the attempt also makes the kernel resolve ARP for hosts on our L2.
    let total = targets.len();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // The slowest answer seen so far (µs); once hosts answer, silence is judged by it.
    let slowest = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for &ip in &targets {
        let slowest = slowest.clone();
        let (global, opts, states, done, progress) = (
            global.clone(),
            opts.clone(),
            states.clone(),
            done.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            let mut set = tokio::task::JoinSet::new();
            for port in LIVENESS_PORTS {
                let permit = global.clone().acquire_owned().await;
                let timeout = liveness_timeout(&slowest, opts.connect_timeout);
                let slowest = slowest.clone();
                let cancelled = opts.cancelled();
                set.spawn(async move {
                    let _permit = permit;
                    if cancelled {
                        return (port, Reach::Silent);
                    }
                    let reach = connect(SocketAddr::new(ip, port), timeout).await;
                    if let Reach::Open(rtt) | Reach::Refused(rtt) = reach {
                        slowest.fetch_max(rtt.as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    (port, reach)
                });
            }
            while let Some(Ok((port, reach))) = set.join_next().await {
                let rtt = match reach {
                    Reach::Open(rtt) => Some(rtt),
                    Reach::Refused(rtt) => Some(rtt),
                    Reach::Silent => None,
                };
                if let Some(rtt) = rtt {
                    let mut st = states.lock().unwrap_or_else(|e| e.into_inner());
                    let h = st.entry(ip).or_default();
                    h.rtt = Some(h.rtt.map_or(rtt, |r| r.min(rtt)));
                    if matches!(reach, Reach::Open(..)) {
                        h.open.push(port);
                    }
                }
            }
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.set_hosts_found(states.lock().map(|s| s.len()).unwrap_or(0));
            progress.report(Phase::Liveness, n, total);
        });
    }
    while tasks.join_next().await.is_some() {}

    // Hosts that answered ARP but dropped every probe are alive too.
    let neighbours = read_neighbours();
    let arp_alive: Vec<IpAddr> = targets
        .iter()
        .copied()
        .filter(|ip| neighbours.contains_key(ip))
        .collect();
    let live: Vec<IpAddr> = {
        let st = states.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<IpAddr> = st.keys().copied().chain(arp_alive.iter().copied()).collect();
        v.sort();
        v.dedup();
        v
    };

    // 2. Port scan of live hosts, with timeouts fitted to each host's round-trip time.
    let total = live.len() * opts.ports.len();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for &ip in &live {
        let (rtt, already_open) = {
            let st = states.lock().unwrap_or_else(|e| e.into_inner());
            st.get(&ip).map(|h| (h.rtt, h.open.clone())).unwrap_or_default()
        };
        let timeout = port_timeout(rtt, neighbours.contains_key(&ip), opts.connect_timeout);
        let per_host = Arc::new(Semaphore::new(opts.per_host.max(1)));
        for &port in opts
            .ports
            .iter()
            .filter(|p| !LIVENESS_PORTS.contains(p) || already_open.contains(p))
        {
            let (global, per_host, states, done, progress) = (
                global.clone(),
                per_host.clone(),
                states.clone(),
                done.clone(),
                progress.clone(),
            );
            let known_open = already_open.contains(&port);
            let opts = opts.clone();
            tasks.spawn(async move {
                let open = known_open || {
                    let _h = per_host.acquire().await;
                    let _g = global.acquire().await;
                    !opts.cancelled()
                        && matches!(connect(SocketAddr::new(ip, port), timeout).await, Reach::Open(..))
                };
                if open && !known_open {
                    let mut st = states.lock().unwrap_or_else(|e| e.into_inner());
                    st.entry(ip).or_default().open.push(port);
                }
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n % 64 == 0 || n == total {
                    progress.report(Phase::Ports, n, total);
                }
            });
        }
    }
    while tasks.join_next().await.is_some() {}

    // 3. What runs on each open port; 4. names.
    progress.set_hosts_found(live.len());
    progress.report(Phase::Probes, 0, live.len());
    let probed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut hosts = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for &ip in &live {
        let (rtt, mut open) = {
            let st = states.lock().unwrap_or_else(|e| e.into_inner());
            st.get(&ip).map(|h| (h.rtt, h.open.clone())).unwrap_or_default()
        };
        open.sort_unstable();
        open.dedup();
        let (global, opts) = (global.clone(), opts.clone());
        let mac = neighbours.get(&ip).copied();
        let arp = arp_alive.contains(&ip);
        let (progress, probed, total) = (progress.clone(), probed.clone(), live.len());
        tasks.spawn(async move {
            let mut ports = Vec::new();
            let mut set = tokio::task::JoinSet::new();
            if opts.cancelled() {
                open.clear();
            }
            for port in open {
                let global = global.clone();
                let timeout = opts.probe_timeout;
                set.spawn(async move {
                    let _g = global.acquire().await;
                    probe::identify(SocketAddr::new(ip, port), timeout).await
                });
            }
            while let Some(Ok(p)) = set.join_next().await {
                ports.push(p);
            }
            ports.sort_by_key(|p| p.port);
            let hostname = if opts.resolve_names {
                reverse_dns(ip).await
            } else {
                None
            };
            let mut seen_by = Vec::new();
            if rtt.is_some() || !ports.is_empty() {
                seen_by.push("tcp");
            }
            if arp {
                seen_by.push("arp");
            }
            let vendor = mac.and_then(oui::vendor).map(str::to_string);
            let mut services = ServiceMatcher::embedded().classify(&evidence(&ports, vendor.clone()));
            // One service seen on two ports (SMB on 139 and 445) is listed once.
            let mut seen = std::collections::BTreeSet::new();
            services.retain(|m| seen.insert((m.name.clone(), m.evidence.clone())));
            let n = probed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.report(Phase::Probes, n, total);
            HostReport {
                ip,
                mac: mac.map(|m| m.to_string()),
                vendor,
                hostname,
                seen_by,
                rtt_ms: rtt.map(|d| d.as_secs_f64() * 1000.0),
                ports,
                services,
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok(h) = r {
            hosts.push(h);
        }
    }
    hosts.sort_by_key(|h| h.ip);
    progress.set_hosts_found(hosts.len());
    progress.report(Phase::Done, hosts.len(), hosts.len());
    ScanReport {
        targets: targets.len(),
        ports_per_host: opts.ports.len(),
        duration_ms: progress.elapsed().as_millis() as u64,
        cancelled: opts.cancelled(),
        warnings: Vec::new(),
        hosts,
    }
}

/// What the probes of one host saw, in the form the service matcher reads.
fn evidence(ports: &[PortReport], mac_vendor: Option<String>) -> Evidence {
    Evidence {
        tcp_open: ports.iter().map(|p| p.port).collect(),
        banners: ports
            .iter()
            .filter_map(|p| Some((p.port, p.banner.clone()?)))
            .collect(),
        http: ports
            .iter()
            .filter_map(|p| {
                let h = p.http.as_ref()?;
                Some(HttpResponse {
                    port: p.port,
                    path: "/".into(),
                    status: h.status,
                    title: h.title.clone(),
                    headers: h.headers.clone(),
                    body: h.body_start.clone(),
                })
            })
            .collect(),
        mac_vendor,
        ..Default::default()
    }
}

/// Liveness connect timeout: the default until some host has answered, then ten times the
/// slowest answer seen (at least 200 ms), so dead addresses stop costing a full second
/// each once the network's round-trip time is known.
fn liveness_timeout(slowest_us: &std::sync::atomic::AtomicU64, default: Duration) -> Duration {
    match slowest_us.load(std::sync::atomic::Ordering::Relaxed) {
        0 => default,
        us => (Duration::from_micros(us) * 10).clamp(Duration::from_millis(200), default),
    }
}

/// The connect timeout for one host: a multiple of its RTT when known; short for hosts on
/// our own L2 that answered ARP (a LAN answers in well under a millisecond); the default
/// otherwise. This caps what a host that drops everything can cost.
fn port_timeout(rtt: Option<Duration>, on_link: bool, default: Duration) -> Duration {
    match (rtt, on_link) {
        (Some(rtt), _) => (rtt * 20).clamp(Duration::from_millis(150), default),
        (None, true) => Duration::from_millis(300).min(default),
        (None, false) => default,
    }
}

/// Complete entries of the kernel's neighbour table (Linux); empty where unavailable.
fn read_neighbours() -> BTreeMap<IpAddr, Mac> {
    let text = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
    passive::parse_proc_net_arp(&text)
        .items
        .into_iter()
        .map(|n| (n.ip, n.mac))
        .collect()
}

/// PTR name through the system resolver (getnameinfo), bounded to 3 s.
async fn reverse_dns(ip: IpAddr) -> Option<String> {
    let lookup = tokio::task::spawn_blocking(move || getnameinfo(ip));
    tokio::time::timeout(Duration::from_secs(3), lookup)
        .await
        .ok()?
        .ok()?
}

fn getnameinfo(ip: IpAddr) -> Option<String> {
    let sock = socket2::SockAddr::from(SocketAddr::new(ip, 0));
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `sock` is a valid sockaddr of the given length; `host` is writable for its
    // length and getnameinfo NUL-terminates it on success.
    let rc = unsafe {
        libc::getnameinfo(
            sock.as_ptr().cast(),
            sock.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: success means a NUL-terminated string in `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().trim_end_matches('.').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_expand_and_public_ranges_are_refused() {
        let t = expand_targets(&["10.0.0.0/30".into(), "10.0.0.1".into()], false).unwrap();
        assert_eq!(
            t,
            vec!["10.0.0.1".parse::<IpAddr>().unwrap(), "10.0.0.2".parse().unwrap()]
        );
        assert_eq!(
            expand_targets(&["192.168.1.0/24".into()], false).unwrap().len(),
            254
        );
        assert!(matches!(
            expand_targets(&["8.8.8.0/24".into()], false),
            Err(ScanError::NotPrivate(_))
        ));
        assert!(matches!(
            expand_targets(&["10.0.0.0/8".into()], false),
            Err(ScanError::TooLarge(..))
        ));
        assert!(matches!(
            expand_targets(&["nonsense".into()], false),
            Err(ScanError::BadTarget(_))
        ));
    }

    #[test]
    fn liveness_timeout_shrinks_once_hosts_answer() {
        let d = Duration::from_secs(1);
        let slowest = std::sync::atomic::AtomicU64::new(0);
        assert_eq!(liveness_timeout(&slowest, d), d);
        slowest.store(150, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(liveness_timeout(&slowest, d), Duration::from_millis(200));
        slowest.store(60_000, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(liveness_timeout(&slowest, d), Duration::from_millis(600));
        slowest.store(500_000, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(liveness_timeout(&slowest, d), d);
    }

    #[test]
    fn timeouts_follow_rtt() {
        let d = Duration::from_secs(1);
        assert_eq!(
            port_timeout(Some(Duration::from_micros(100)), true, d),
            Duration::from_millis(150)
        );
        assert_eq!(
            port_timeout(Some(Duration::from_millis(30)), false, d),
            Duration::from_millis(600)
        );
        assert_eq!(port_timeout(None, true, d), Duration::from_millis(300));
        assert_eq!(port_timeout(None, false, d), d);
    }
}
