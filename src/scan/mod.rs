//! Active scans (the I/O shell): ARP/ICMP/TCP liveness (`liveness`), TCP port scans,
//! banner and protocol probes (`probe`), UDP probes with mDNS and SSDP (`udp`), MACs and
//! names; progress reports (`progress`) for the UI.
//!
//! Gentle by default: at most [`ScanOptions::per_host`] connections to one host at a time
//! and [`ScanOptions::concurrency`] overall, and a host that drops everything costs only a
//! few short timeouts. What bytes mean is decided in `discovery` (sans-IO); this module only
//! moves them. It never runs unless a user asks (CLI, button, API, schedule).

mod liveness;
mod probe;
mod progress;
mod udp;

use progress::Tracker;
pub use progress::{overall, Phase, Progress};

use crate::discovery::identify::HttpInfo;
use crate::discovery::mdns::MdnsInfo;
use crate::discovery::names::{self, NameSource};
use crate::discovery::oui::{self, Mac};
use crate::discovery::passive;
use crate::discovery::services::{Evidence, HttpResponse, Match, ServiceMatcher, TlsInfo};
use crate::discovery::ssdp::SsdpInfo;
use crate::discovery::udp::{DnsInfo, NetbiosInfo, NtpInfo, SnmpInfo};
use crate::discovery::x509::CertInfo;
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
    /// UDP probes (DNS, NTP, SNMP, NetBIOS, mDNS, SSDP) of live hosts.
    pub udp: bool,
    /// How long ARP and ICMP sweeps wait for answers, per round (two rounds).
    pub arp_wait: Duration,
    /// The most time the port scan of one host may take; a host that drops most probes
    /// is cut off here (and the report says so) instead of costing minutes.
    pub host_budget: Duration,
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
            udp: true,
            arp_wait: Duration::from_millis(400),
            host_budget: Duration::from_secs(10),
            cancel: None,
        }
    }
}

/// Ports probed on every address to find live hosts (and make the kernel resolve ARP).
const LIVENESS_PORTS: [u16; 4] = [80, 443, 22, 7];

/// Expands targets (addresses, CIDRs, or `all` = the IPv4 networks of this machine's
/// interfaces) to addresses. Only private ranges unless `allow_public` (`all` leaves public
/// networks such as a WAN link out); network and broadcast addresses of IPv4 prefixes are
/// left out. IPv6 prefixes are never swept by `all`: IPv6 hosts come from the neighbour
/// table and mDNS.
pub fn expand_targets(specs: &[String], allow_public: bool) -> Result<Vec<IpAddr>, ScanError> {
    let mut specs: Vec<String> = specs.to_vec();
    if let Some(i) = specs.iter().position(|s| s.eq_ignore_ascii_case("all")) {
        specs.remove(i);
        for net in liveness::attached_networks() {
            if allow_public || net.network().is_private() {
                specs.push(net.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for spec in &specs {
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
    /// "tcp" or "udp".
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
    /// The leaf certificate a TLS port presented (subject CN, SANs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<CertInfo>,
    /// SNMP agent (udp/161): community that worked, sysDescr, sysName.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snmp: Option<SnmpInfo>,
    /// DNS server (udp/53): its answer to version.bind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsInfo>,
    /// NTP server (udp/123): version, stratum, reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ntp: Option<NtpInfo>,
    /// How the service name was decided: banner, probe, tls or port.
    pub method: &'static str,
}

/// One live host.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub ip: IpAddr,
    pub mac: Option<String>,
    pub vendor: Option<String>,
    /// The best name by [`names::best_hostname`] (DNS > mDNS > NetBIOS > service).
    pub hostname: Option<String>,
    /// Where `hostname` came from: dns, mdns, netbios, service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname_source: Option<NameSource>,
    /// The reverse DNS (PTR) name, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ptr: Option<String>,
    /// IPv6 addresses of the same host (same MAC in the neighbour table, or mDNS AAAA).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ipv6: Vec<std::net::Ipv6Addr>,
    /// What showed the host is there: arp, icmp, tcp.
    pub seen_by: Vec<&'static str>,
    pub rtt_ms: Option<f64>,
    /// Open TCP ports and answering UDP ports.
    pub ports: Vec<PortReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mdns: Option<MdnsInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssdp: Option<SsdpInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netbios: Option<NetbiosInfo>,
    /// Service definitions the evidence matched, with that evidence.
    pub services: Vec<Match>,
    /// True when the port scan of this host hit [`ScanOptions::host_budget`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cut_short: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub targets: usize,
    pub ports_per_host: usize,
    pub duration_ms: u64,
    /// True when [`ScanOptions::cancel`] stopped the scan early.
    pub cancelled: bool,
    /// Time spent in each phase: liveness, ports, probes (ms).
    pub phase_ms: BTreeMap<&'static str, u64>,
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
    /// The TCP liveness ports were already tried (skipped in the port scan).
    tcp_probed: bool,
    cut_short: bool,
    seen_by: Vec<&'static str>,
    mac: Option<Mac>,
}

impl HostState {
    fn saw(&mut self, how: &'static str, rtt: Option<Duration>) {
        if !self.seen_by.contains(&how) {
            self.seen_by.push(how);
        }
        if let Some(rtt) = rtt {
            self.rtt = Some(self.rtt.map_or(rtt, |r| r.min(rtt)));
        }
    }
}

impl ScanOptions {
    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.is_cancelled())
    }
}

type States = Arc<Mutex<BTreeMap<IpAddr, HostState>>>;

fn lock(states: &States) -> std::sync::MutexGuard<'_, BTreeMap<IpAddr, HostState>> {
    states.lock().unwrap_or_else(|e| e.into_inner())
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
    let states: States = Arc::default();
    let mut warnings = Vec::new();
    progress.report(Phase::Liveness, 0, targets.len());

    // 1a. ARP on our own links and ICMP echo, side by side.
    let (arp, icmp) = if opts.cancelled() {
        (liveness::ArpSweep::default(), liveness::IcmpSweep::default())
    } else {
        let arp_targets = targets.clone();
        let arp_wait = opts.arp_wait;
        let arp = tokio::task::spawn_blocking(move || liveness::arp_sweep(&arp_targets, arp_wait));
        let icmp = liveness::icmp_sweep(&targets, opts.arp_wait);
        let (arp, icmp) = tokio::join!(arp, icmp);
        (arp.unwrap_or_default(), icmp)
    };
    warnings.extend(arp.warnings.iter().cloned());
    warnings.extend(icmp.warnings.iter().cloned());
    {
        let mut st = lock(&states);
        // ARP answer times include the pacing of a whole sweep: no use as an RTT.
        for (ip, (mac, _)) in &arp.found {
            let h = st.entry(IpAddr::V4(*ip)).or_default();
            h.saw("arp", None);
            h.mac = Some(*mac);
        }
        for (ip, rtt) in &icmp.found {
            st.entry(*ip).or_default().saw("icmp", Some(*rtt));
        }
        progress.set_hosts_found(st.len());
    }
    progress.report(Phase::Liveness, arp.covered.len(), targets.len());

    // 1b. TCP liveness for addresses ARP could not settle (other links, no capture
    //     permission): any answer (open or refused) proves the host, and the attempt makes
    //     the kernel resolve ARP for hosts on our L2.
    let tcp_targets: Vec<IpAddr> = targets
        .iter()
        .copied()
        .filter(|ip| !matches!(ip, IpAddr::V4(v4) if arp.covered.contains(v4)))
        .collect();
    let total = targets.len();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(arp.covered.len()));
    // The slowest answer seen so far (µs); once hosts answer, silence is judged by it.
    let slowest = Arc::new(portable_atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for &ip in &tcp_targets {
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
                    Reach::Open(rtt) | Reach::Refused(rtt) => rtt,
                    Reach::Silent => continue,
                };
                let mut st = lock(&states);
                let h = st.entry(ip).or_default();
                h.saw("tcp", Some(rtt));
                if matches!(reach, Reach::Open(..)) {
                    h.open.push(port);
                }
            }
            if let Some(h) = lock(&states).get_mut(&ip) {
                h.tcp_probed = true;
            }
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.set_hosts_found(states.lock().map(|s| s.len()).unwrap_or(0));
            progress.report(Phase::Liveness, n, total);
        });
    }
    while tasks.join_next().await.is_some() {}

    // Hosts the kernel resolved (TCP attempts above) but that dropped every probe.
    let neighbours = read_neighbours();
    {
        let mut st = lock(&states);
        for ip in &tcp_targets {
            if let Some(mac) = neighbours.get(ip) {
                let h = st.entry(*ip).or_default();
                h.saw("arp", None);
                h.mac.get_or_insert(*mac);
            }
        }
        for (ip, h) in st.iter_mut() {
            if h.mac.is_none() {
                h.mac = neighbours.get(ip).copied();
            }
        }
    }
    let live: Vec<IpAddr> = lock(&states).keys().copied().collect();
    progress.set_hosts_found(live.len());
    let mut phase_ms = BTreeMap::new();
    let mut mark = progress.elapsed();
    phase_ms.insert("liveness", mark.as_millis() as u64);

    // 2. Port scan of live hosts, with timeouts fitted to each host's round-trip time and a
    //    time budget per host, so one that drops everything costs a bounded time.
    let jobs: Vec<(IpAddr, Vec<u16>, Vec<u16>, Option<Duration>, bool)> = {
        let st = lock(&states);
        live.iter()
            .map(|ip| {
                let h = &st[ip];
                let ports: Vec<u16> = opts
                    .ports
                    .iter()
                    .copied()
                    .filter(|p| !(h.tcp_probed && LIVENESS_PORTS.contains(p)) || h.open.contains(p))
                    .collect();
                (*ip, ports, h.open.clone(), h.rtt, h.mac.is_some())
            })
            .collect()
    };
    let total: usize = jobs.iter().map(|j| j.1.len()).sum();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (ip, ports, already_open, rtt, on_link) in jobs {
        let timeout = port_timeout(rtt, on_link, opts.connect_timeout);
        let per_host = Arc::new(Semaphore::new(opts.per_host.max(1)));
        let deadline = Instant::now() + opts.host_budget;
        for port in ports {
            let (global, per_host, states, done, progress, opts) = (
                global.clone(),
                per_host.clone(),
                states.clone(),
                done.clone(),
                progress.clone(),
                opts.clone(),
            );
            let known_open = already_open.contains(&port);
            tasks.spawn(async move {
                let open = known_open || {
                    let _h = per_host.acquire().await;
                    let _g = global.acquire().await;
                    let late = Instant::now() >= deadline;
                    if late {
                        if let Some(h) = lock(&states).get_mut(&ip) {
                            h.cut_short = true;
                        }
                    }
                    !late
                        && !opts.cancelled()
                        && matches!(connect(SocketAddr::new(ip, port), timeout).await, Reach::Open(..))
                };
                if open && !known_open {
                    lock(&states).entry(ip).or_default().open.push(port);
                }
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n % 64 == 0 || n == total {
                    progress.report(Phase::Ports, n, total);
                }
            });
        }
    }
    while tasks.join_next().await.is_some() {}

    phase_ms.insert("ports", (progress.elapsed() - mark).as_millis() as u64);
    mark = progress.elapsed();

    // 3. What runs on each open port, UDP probes, mDNS/SSDP; 4. names.
    progress.report(Phase::Probes, 0, live.len());
    let probed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let neighbours6 = read_neighbours6();
    let mut hosts = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for &ip in &live {
        let (rtt, mut open, mac, seen_by, cut_short) = {
            let st = lock(&states);
            let h = &st[&ip];
            (h.rtt, h.open.clone(), h.mac, h.seen_by.clone(), h.cut_short)
        };
        open.sort_unstable();
        open.dedup();
        let (global, opts) = (global.clone(), opts.clone());
        let (progress, probed, total) = (progress.clone(), probed.clone(), live.len());
        let ipv6_by_mac: Vec<std::net::Ipv6Addr> = neighbours6
            .iter()
            .filter(|(_, m)| Some(*m) == mac)
            .map(|(ip6, _)| *ip6)
            .collect();
        tasks.spawn(async move {
            let mut ports = Vec::new();
            let mut set = tokio::task::JoinSet::new();
            let cancelled = opts.cancelled();
            if cancelled {
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
            let udp_timeout = udp_timeout(rtt, mac.is_some(), opts.probe_timeout);
            let udp_probes = async {
                if opts.udp && !cancelled {
                    let _g = global.acquire().await;
                    udp::probe_host(ip, udp_timeout).await
                } else {
                    udp::UdpFindings::default()
                }
            };
            let ptr = async {
                if opts.resolve_names && !cancelled {
                    reverse_dns(ip).await
                } else {
                    None
                }
            };
            let (mut found, ptr) = tokio::join!(udp_probes, ptr);
            while let Some(Ok(p)) = set.join_next().await {
                ports.push(p);
            }
            ports.extend(std::mem::take(&mut found.ports));
            ports.sort_by_key(|p| (p.proto, p.port));
            let vendor = mac.and_then(oui::vendor).map(str::to_string);
            let ev = evidence(&ports, vendor.clone(), found.mdns.as_ref(), found.ssdp.as_ref());
            let mut services = ServiceMatcher::embedded().classify(&ev);
            // One service seen on two ports (SMB on 139 and 445) is listed once.
            let mut seen = std::collections::BTreeSet::new();
            services.retain(|m| seen.insert((m.name.clone(), m.evidence.clone())));
            let (hostname, hostname_source) = host_name(ip, ptr.as_deref(), &ports, &found);
            let mut ipv6 = ipv6_by_mac;
            for a in found.mdns.iter().flat_map(|m| &m.addresses) {
                if let IpAddr::V6(v6) = a {
                    if !ipv6.contains(v6) {
                        ipv6.push(*v6);
                    }
                }
            }
            let n = probed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.report(Phase::Probes, n, total);
            HostReport {
                ip,
                mac: mac.map(|m| m.to_string()),
                vendor,
                hostname,
                hostname_source,
                ptr,
                ipv6,
                seen_by,
                rtt_ms: rtt.map(|d| d.as_secs_f64() * 1000.0),
                ports,
                mdns: found.mdns,
                ssdp: found.ssdp,
                netbios: found.netbios,
                services,
                cut_short,
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok(h) = r {
            hosts.push(h);
        }
    }
    hosts.sort_by_key(|h| h.ip);
    phase_ms.insert("probes", (progress.elapsed() - mark).as_millis() as u64);
    for h in hosts.iter().filter(|h| h.cut_short) {
        warnings.push(format!(
            "{}: port scan stopped after {} s (the host drops most probes); its remaining ports were not tried",
            h.ip,
            opts.host_budget.as_secs()
        ));
    }
    progress.set_hosts_found(hosts.len());
    progress.report(Phase::Done, hosts.len(), hosts.len());
    ScanReport {
        targets: targets.len(),
        ports_per_host: opts.ports.len(),
        duration_ms: progress.elapsed().as_millis() as u64,
        cancelled: opts.cancelled(),
        phase_ms,
        warnings,
        hosts,
    }
}

/// The host's name by the one precedence rule, from what this scan saw (no DHCP leases
/// here: the inventory adds those with the same function).
fn host_name(
    ip: IpAddr,
    ptr: Option<&str>,
    ports: &[PortReport],
    udp: &udp::UdpFindings,
) -> (Option<String>, Option<NameSource>) {
    let mut candidates: Vec<(NameSource, &str)> = Vec::new();
    if let Some(p) = ptr {
        candidates.push((NameSource::Dns, p));
    }
    if let Some(h) = udp.mdns.as_ref().and_then(|m| m.hostname.as_deref()) {
        candidates.push((NameSource::Mdns, h));
    }
    if let Some(nb) = &udp.netbios {
        candidates.push((NameSource::Netbios, &nb.name));
    }
    for p in ports {
        if let Some(n) = p.snmp.as_ref().and_then(|s| s.sys_name.as_deref()) {
            candidates.push((NameSource::Service, n));
        }
    }
    if let Some(n) = udp.ssdp.as_ref().and_then(|s| s.friendly_name.as_deref()) {
        candidates.push((NameSource::Service, n));
    }
    for p in ports {
        if let Some(cn) = p.tls_cert.as_ref().and_then(|c| c.subject_cn.as_deref()) {
            if cn.contains('.') && cn.parse::<IpAddr>().is_err() {
                candidates.push((NameSource::Service, cn));
            }
        }
    }
    match names::best_hostname(candidates, &ip.to_string()) {
        (_, NameSource::Ip) => (None, None),
        (name, src) => (Some(name), Some(src)),
    }
}

/// What the probes of one host saw, in the form the service matcher reads.
fn evidence(
    ports: &[PortReport],
    mac_vendor: Option<String>,
    mdns: Option<&MdnsInfo>,
    ssdp: Option<&SsdpInfo>,
) -> Evidence {
    let tcp = || ports.iter().filter(|p| p.proto == "tcp");
    Evidence {
        tcp_open: tcp().map(|p| p.port).collect(),
        udp_open: ports
            .iter()
            .filter(|p| p.proto == "udp")
            .map(|p| p.port)
            .collect(),
        banners: tcp().filter_map(|p| Some((p.port, p.banner.clone()?))).collect(),
        http: tcp()
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
        tls: tcp()
            .filter_map(|p| {
                let c = p.tls_cert.as_ref()?;
                Some((
                    p.port,
                    TlsInfo {
                        subject: c.subject_cn.clone().unwrap_or_default(),
                        issuer: c.issuer_cn.clone().unwrap_or_default(),
                        sans: c.sans.clone(),
                    },
                ))
            })
            .collect(),
        mdns: mdns
            .map(|m| m.services.iter().map(|s| s.service_type.clone()).collect())
            .unwrap_or_default(),
        ssdp: ssdp.map(SsdpInfo::evidence).unwrap_or_default(),
        mac_vendor,
    }
}

/// UDP answer timeout: twenty round trips, between 250 ms and the probe timeout; 400 ms
/// for a host on our link whose RTT is unknown (it answered ARP only), 800 ms elsewhere.
/// UDP probes run in parallel, so a host that drops them all costs two of these.
fn udp_timeout(rtt: Option<Duration>, on_link: bool, max: Duration) -> Duration {
    let floor = Duration::from_millis(250).min(max);
    match (rtt, on_link) {
        (Some(r), _) => (r * 20).clamp(floor, max),
        (None, true) => max.min(Duration::from_millis(400)),
        (None, false) => max.min(Duration::from_millis(800)),
    }
}

/// Liveness connect timeout: the default until some host has answered, then ten times the
/// slowest answer seen (at least 200 ms), so dead addresses stop costing a full second
/// each once the network's round-trip time is known.
fn liveness_timeout(slowest_us: &portable_atomic::AtomicU64, default: Duration) -> Duration {
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
        (None, true) => Duration::from_millis(150).min(default),
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

/// IPv6 neighbours with their MACs (Linux `ip -6 neigh`); empty where unavailable.
fn read_neighbours6() -> Vec<(std::net::Ipv6Addr, Mac)> {
    let Ok(out) = std::process::Command::new("ip")
        .args(["-6", "neigh", "show"])
        .output()
    else {
        return Vec::new();
    };
    passive::parse_ip_neigh(&String::from_utf8_lossy(&out.stdout))
        .items
        .into_iter()
        .filter_map(|n| match n.ip {
            IpAddr::V6(v6) => Some((v6, n.mac)),
            IpAddr::V4(_) => None,
        })
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
            // socklen_t on Linux, size_t on FreeBSD.
            host.len() as _,
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
        let slowest = portable_atomic::AtomicU64::new(0);
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
        assert_eq!(port_timeout(None, true, d), Duration::from_millis(150));
        assert_eq!(port_timeout(None, false, d), d);
    }

    #[test]
    fn udp_timeouts_follow_rtt_and_the_link() {
        let max = Duration::from_millis(1500);
        assert_eq!(
            udp_timeout(Some(Duration::from_micros(100)), true, max),
            Duration::from_millis(250)
        );
        assert_eq!(
            udp_timeout(Some(Duration::from_millis(40)), false, max),
            Duration::from_millis(800)
        );
        assert_eq!(udp_timeout(Some(Duration::from_millis(200)), false, max), max);
        assert_eq!(udp_timeout(None, true, max), Duration::from_millis(400));
        assert_eq!(udp_timeout(None, false, max), Duration::from_millis(800));
    }
}
