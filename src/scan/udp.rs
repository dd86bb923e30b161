//! UDP probes of one live host (I/O): DNS, NTP, SNMP, NetBIOS, then mDNS service browsing
//! and SSDP with the UPnP device description. Each probe uses its own connected socket, so
//! only the target's answers arrive and an ICMP port-unreachable ends the wait at once;
//! a silent port costs two timeouts. Payloads and parsing live in `discovery`.

use super::PortReport;
use crate::discovery::mdns::{self, MdnsInfo};
use crate::discovery::ssdp::{self, SsdpInfo};
use crate::discovery::udp::{NetbiosInfo, UdpAnswer, UdpProbe};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// What the UDP probes learned about one host.
#[derive(Debug, Default)]
pub struct UdpFindings {
    pub ports: Vec<PortReport>,
    pub mdns: Option<MdnsInfo>,
    pub ssdp: Option<SsdpInfo>,
    pub netbios: Option<NetbiosInfo>,
}

async fn socket_to(addr: SocketAddr) -> Option<UdpSocket> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().ok()?,
        SocketAddr::V6(_) => "[::]:0".parse().ok()?,
    };
    let sock = UdpSocket::bind(local).await.ok()?;
    sock.connect(addr).await.ok()?;
    Some(sock)
}

/// Sends `payload` (twice at most) and returns the first datagram `accept` takes.
async fn ask<T>(
    sock: &UdpSocket,
    payload: &[u8],
    timeout: Duration,
    accept: impl Fn(&[u8]) -> Option<T>,
) -> Option<T> {
    let mut buf = vec![0u8; 9000];
    for _try in 0..2 {
        sock.send(payload).await.ok()?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, sock.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    if let Some(t) = accept(&buf[..n]) {
                        return Some(t);
                    }
                }
                // Port unreachable: closed, no point in asking again.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return None,
                Ok(Err(_)) => return None,
                Err(_) => break,
            }
        }
    }
    None
}

fn udp_port(port: u16, service: &str) -> PortReport {
    PortReport {
        port,
        proto: "udp",
        service: service.to_string(),
        product: None,
        version: None,
        banner: None,
        http: None,
        tls: false,
        tls_cert: None,
        snmp: None,
        dns: None,
        ntp: None,
        method: "probe",
    }
}

/// Runs every UDP probe against `ip` concurrently.
pub async fn probe_host(ip: IpAddr, timeout: Duration) -> UdpFindings {
    let simple = UdpProbe::ALL.map(|p| simple_probe(ip, p, timeout));
    let (simple, mdns, ssdp) = tokio::join!(
        futures_util::future::join_all(simple),
        browse_mdns(ip, timeout),
        search_ssdp(ip, timeout)
    );
    let mut out = UdpFindings::default();
    for (port, answer) in simple.into_iter().flatten() {
        match answer {
            UdpAnswer::Netbios(nb) => {
                out.ports.push(udp_port(port, "netbios-ns"));
                out.netbios = Some(nb);
            }
            other => out.ports.push(report_for(port, other)),
        }
    }
    if let Some(m) = mdns {
        out.ports.push(udp_port(5353, "mdns"));
        out.mdns = Some(m);
    }
    if let Some(s) = ssdp {
        let mut p = udp_port(1900, "ssdp");
        p.product = s.server.clone();
        out.ports.push(p);
        out.ssdp = Some(s);
    }
    out.ports.sort_by_key(|p| p.port);
    out
}

fn report_for(port: u16, answer: UdpAnswer) -> PortReport {
    match answer {
        UdpAnswer::Dns(d) => {
            let mut p = udp_port(port, "domain");
            if let Some(v) = &d.version_bind {
                // "dnsmasq-2.90", "9.18.24-1-Debian" (BIND)
                match v.split_once('-') {
                    Some((prod, ver)) if prod.chars().all(|c| c.is_ascii_alphabetic()) => {
                        p.product = Some(prod.to_string());
                        p.version = Some(ver.to_string());
                    }
                    _ => p.version = Some(v.clone()),
                }
            }
            p.dns = Some(d);
            p
        }
        UdpAnswer::Ntp(n) => {
            let mut p = udp_port(port, "ntp");
            p.version = Some(format!("v{}", n.version));
            p.ntp = Some(n);
            p
        }
        UdpAnswer::Snmp(s) => {
            let mut p = udp_port(port, "snmp");
            p.product = s.sys_descr.clone();
            p.snmp = Some(s);
            p
        }
        UdpAnswer::Netbios(_) => udp_port(port, "netbios-ns"),
    }
}

async fn simple_probe(ip: IpAddr, probe: UdpProbe, timeout: Duration) -> Option<(u16, UdpAnswer)> {
    let sock = socket_to(SocketAddr::new(ip, probe.port())).await?;
    let id: u16 = rand::random();
    let payload = probe.payload(id);
    ask(&sock, &payload, timeout, |data| probe.parse(id, data))
        .await
        .map(|a| (probe.port(), a))
}

/// DNS-SD over unicast: the service types, then the instances of each.
async fn browse_mdns(ip: IpAddr, timeout: Duration) -> Option<MdnsInfo> {
    let sock = socket_to(SocketAddr::new(ip, 5353)).await?;
    let id: u16 = rand::random();
    let types = ask(&sock, &mdns::ptr_query(id, mdns::SERVICES_META), timeout, |d| {
        let t = mdns::parse_service_types(d);
        (!t.is_empty()).then_some(t)
    })
    .await?;
    let mut info = MdnsInfo::default();
    for t in types.iter().take(16) {
        let query = mdns::ptr_query(id.wrapping_add(1), &format!("{t}."));
        if let Some(answer) = ask(&sock, &query, timeout, |d| Some(d.to_vec())).await {
            mdns::merge_answer(&mut info, &answer);
        }
        if !info.services.iter().any(|s| &s.service_type == t) {
            info.services.push(mdns::MdnsService::of_type(t));
        }
    }
    Some(info)
}

/// M-SEARCH to the host, all answers within the window, then its device description when
/// the LOCATION is on the same host (never another address).
async fn search_ssdp(ip: IpAddr, timeout: Duration) -> Option<SsdpInfo> {
    let sock = socket_to(SocketAddr::new(ip, 1900)).await?;
    let request = ssdp::msearch(&ip.to_string(), 1);
    let mut info = SsdpInfo::default();
    let mut buf = vec![0u8; 9000];
    for _try in 0..2 {
        sock.send(&request).await.ok()?;
        let deadline = Instant::now() + timeout;
        let mut quiet = timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now()).min(quiet);
            match tokio::time::timeout(left, sock.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    if info.merge_response(&buf[..n]) {
                        quiet = Duration::from_millis(150);
                    }
                }
                Ok(Err(_)) => return None,
                Err(_) => break,
            }
        }
        if !info.st.is_empty() {
            break;
        }
    }
    if info.st.is_empty() && info.location.is_none() {
        return None;
    }
    if let Some(loc) = info.location.clone() {
        if let Some(xml) = fetch_description(ip, &loc, timeout).await {
            info.merge_description(&xml);
        }
    }
    Some(info)
}

/// GETs `http://<ip>:<port>/<path>` when `location` names exactly `ip`.
async fn fetch_description(ip: IpAddr, location: &str, timeout: Duration) -> Option<String> {
    let rest = location.strip_prefix("http://")?;
    let (hostport, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let addr: SocketAddr = match hostport.parse() {
        Ok(a) => a,
        Err(_) => SocketAddr::new(hostport.parse().ok()?, 80),
    };
    if addr.ip() != ip {
        return None;
    }
    let fetch = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: gatewatch\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut body = Vec::new();
        let _ = (&mut s).take(256 * 1024).read_to_end(&mut body).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        let (head, xml) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.").then(|| xml.to_string())
    };
    tokio::time::timeout(timeout * 2, fetch).await.ok()?
}
