//! Liveness sweeps (I/O): ARP on the scanner's own links through libpcap and ICMP echo
//! through socket2 (unprivileged ICMP datagram sockets where the system allows them, raw
//! sockets otherwise). What the packets are is `discovery::ping`; here they are sent,
//! paced and waited for. Each sweep reports what it could not do as a warning, and the
//! scan falls back to TCP probes and the kernel's neighbour table.

use crate::discovery::oui::Mac;
use crate::discovery::ping;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the ARP sweep found.
#[derive(Debug, Default)]
pub struct ArpSweep {
    /// Targets that answered: MAC and time to answer.
    pub found: BTreeMap<Ipv4Addr, (Mac, Duration)>,
    /// Targets on a link the sweep could send on: silence there means nobody is home.
    pub covered: BTreeSet<Ipv4Addr>,
    pub warnings: Vec<String>,
}

/// A local IPv4 network and the interface it is on.
#[derive(Debug, Clone)]
struct Link {
    device: pcap::Device,
    addr: Ipv4Addr,
    net: ipnet::Ipv4Net,
}

fn links() -> Result<Vec<Link>, pcap::Error> {
    let mut out = Vec::new();
    for device in pcap::Device::list()? {
        if device.flags.is_loopback() {
            continue;
        }
        for a in &device.addresses {
            if let (IpAddr::V4(addr), Some(IpAddr::V4(mask))) = (a.addr, a.netmask) {
                let prefix = u32::from(mask).leading_ones() as u8;
                if let Ok(net) = ipnet::Ipv4Net::new(addr, prefix) {
                    out.push(Link {
                        device: device.clone(),
                        addr,
                        net: net.trunc(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The IPv4 networks of the scanner's own interfaces (the `all` target), loopback left out.
pub fn attached_networks() -> Vec<ipnet::Ipv4Net> {
    let mut nets: Vec<ipnet::Ipv4Net> = links().unwrap_or_default().into_iter().map(|l| l.net).collect();
    nets.sort();
    nets.dedup();
    nets
}

/// ARP requests for every IPv4 target on one of our links; two rounds (`wait`, then half
/// of it for the addresses still silent).
/// Blocking (libpcap): run it on a blocking thread.
pub fn arp_sweep(targets: &[IpAddr], wait: Duration) -> ArpSweep {
    let mut sweep = ArpSweep::default();
    let links = match links() {
        Ok(l) => l,
        Err(e) => {
            sweep.warnings.push(format!(
                "ARP: cannot list interfaces ({e}); liveness by ICMP, TCP and the kernel's neighbour table"
            ));
            return sweep;
        }
    };
    let mut by_link: BTreeMap<usize, Vec<Ipv4Addr>> = BTreeMap::new();
    for ip in targets {
        let IpAddr::V4(v4) = ip else { continue };
        if let Some(i) = links.iter().position(|l| l.net.contains(v4) && l.addr != *v4) {
            by_link.entry(i).or_default().push(*v4);
        }
    }
    let handles: Vec<_> = by_link
        .into_iter()
        .map(|(i, targets)| {
            let link = links[i].clone();
            std::thread::spawn(move || {
                let name = link.device.name.clone();
                (name, targets.clone(), arp_on_link(link, &targets, wait))
            })
        })
        .collect();
    for h in handles {
        let Ok((name, targets, result)) = h.join() else {
            continue;
        };
        match result {
            Ok(found) => {
                sweep.covered.extend(targets);
                sweep.found.extend(found);
            }
            Err(e) => sweep.warnings.push(format!(
                "ARP on {name}: {e}; liveness there by ICMP, TCP and the kernel's neighbour table (run as root or with CAP_NET_RAW)"
            )),
        }
    }
    sweep
}

fn arp_on_link(
    link: Link,
    targets: &[Ipv4Addr],
    wait: Duration,
) -> Result<BTreeMap<Ipv4Addr, (Mac, Duration)>, String> {
    let mac = interface_mac(&link.device.name).ok_or("no hardware address")?;
    let mut cap = pcap::Capture::from_device(link.device.clone())
        .and_then(|c| c.immediate_mode(true).snaplen(128).timeout(20).open())
        .map_err(|e| e.to_string())?;
    cap.filter("arp", true).map_err(|e| e.to_string())?;
    // Non-blocking reads polled every 2 ms: libpcap's read timeout is not honoured the same
    // way on every platform (Linux's TPACKET_V3 can hold a read for a second).
    let mut cap = cap.setnonblock().map_err(|e| e.to_string())?;
    let wanted: BTreeSet<Ipv4Addr> = targets.iter().copied().collect();
    let mut sent: HashMap<Ipv4Addr, Instant> = HashMap::new();
    let mut found = BTreeMap::new();
    for round in 0..2 {
        let pending: Vec<Ipv4Addr> = targets
            .iter()
            .copied()
            .filter(|t| !found.contains_key(t))
            .collect();
        for (i, &t) in pending.iter().enumerate() {
            cap.sendpacket(&ping::arp_request(mac, link.addr, t)[..])
                .map_err(|e| e.to_string())?;
            sent.insert(t, Instant::now());
            // Pacing: bursts of 8, then a pause (at most a few thousand requests a second).
            if i % 8 == 7 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // The second round only catches replies lost the first time: a shorter wait.
        let deadline = Instant::now() + if round == 0 { wait } else { wait / 2 };
        while Instant::now() < deadline && found.len() < wanted.len() {
            match cap.next_packet() {
                Ok(p) => {
                    if let Some((ip, from)) = ping::parse_arp_reply(p.data) {
                        if wanted.contains(&ip) {
                            let rtt = sent.get(&ip).map(|s| s.elapsed()).unwrap_or_default();
                            found.entry(ip).or_insert((from, rtt));
                        }
                    }
                }
                Err(pcap::Error::TimeoutExpired) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(e.to_string()),
            }
        }
        if found.len() == wanted.len() {
            break;
        }
    }
    Ok(found)
}

#[cfg(target_os = "linux")]
fn interface_mac(name: &str) -> Option<Mac> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/address")).ok()?;
    Mac::parse(text.trim())
}

#[cfg(not(target_os = "linux"))]
fn interface_mac(name: &str) -> Option<Mac> {
    // BSDs: the AF_LINK entry of getifaddrs carries the hardware address.
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` on success; it is freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut out = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string; ifa_addr points at a sockaddr whose
        // family is checked before it is read as sockaddr_dl.
        let ifname = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if ifname.to_bytes() != name.as_bytes()
            || unsafe { (*ifa.ifa_addr).sa_family } as i32 != libc::AF_LINK
        {
            continue;
        }
        let dl = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_dl) };
        let start = dl.sdl_nlen as usize;
        if dl.sdl_alen == 6 && start + 6 <= dl.sdl_data.len() {
            let mut b = [0u8; 6];
            for (i, byte) in b.iter_mut().enumerate() {
                *byte = dl.sdl_data[start + i] as u8;
            }
            out = Some(Mac(b));
        }
    }
    // SAFETY: `list` came from getifaddrs.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// What the ICMP sweep found: round-trip time per answering target.
#[derive(Debug, Default)]
pub struct IcmpSweep {
    pub found: BTreeMap<IpAddr, Duration>,
    pub warnings: Vec<String>,
}

/// Echo requests to every target; two rounds (`wait`, then half of it).
pub async fn icmp_sweep(targets: &[IpAddr], wait: Duration) -> IcmpSweep {
    let v4: Vec<IpAddr> = targets.iter().copied().filter(IpAddr::is_ipv4).collect();
    let v6: Vec<IpAddr> = targets.iter().copied().filter(IpAddr::is_ipv6).collect();
    let (a, b) = tokio::join!(icmp_family(false, &v4, wait), icmp_family(true, &v6, wait));
    let mut sweep = IcmpSweep::default();
    for r in [a, b] {
        match r {
            Ok(found) => sweep.found.extend(found),
            Err(w) => sweep.warnings.push(w),
        }
    }
    sweep
}

/// An ICMP socket: unprivileged datagram first, raw second. `true` when raw.
fn open_icmp(v6: bool) -> std::io::Result<(tokio::net::UdpSocket, bool)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let (sock, raw) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(_) => (Socket::new(domain, Type::RAW, Some(proto))?, true),
    };
    sock.set_nonblocking(true)?;
    let std_sock: std::net::UdpSocket = sock.into();
    Ok((tokio::net::UdpSocket::from_std(std_sock)?, raw))
}

async fn icmp_family(
    v6: bool,
    targets: &[IpAddr],
    wait: Duration,
) -> Result<BTreeMap<IpAddr, Duration>, String> {
    if targets.is_empty() {
        return Ok(BTreeMap::new());
    }
    let (sock, raw) = open_icmp(v6).map_err(|e| {
        format!(
            "ICMP{}: cannot open an ICMP socket ({e}); liveness by ARP and TCP only (allow it with sysctl net.ipv4.ping_group_range or run as root)",
            if v6 { "v6" } else { "" }
        )
    })?;
    let sock = Arc::new(sock);
    let id: u16 = rand::random();
    let sent: Arc<Mutex<HashMap<IpAddr, Instant>>> = Arc::default();
    let found: Arc<Mutex<BTreeMap<IpAddr, Duration>>> = Arc::default();
    let receiver = {
        let (sock, sent, found) = (sock.clone(), sent.clone(), found.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                let Some((reply_id, _seq)) = ping::parse_echo_reply(v6, raw && !v6, &buf[..n]) else {
                    continue;
                };
                // Datagram sockets get the kernel's id; raw sockets see every reply.
                if raw && reply_id != id {
                    continue;
                }
                let ip = from.ip();
                let rtt = sent.lock().ok().and_then(|s| s.get(&ip).map(|t| t.elapsed()));
                if let (Some(rtt), Ok(mut f)) = (rtt, found.lock()) {
                    f.entry(ip).or_insert(rtt);
                }
            }
        })
    };
    for round in 0..2 {
        let pending: Vec<IpAddr> = {
            let f = found.lock().unwrap_or_else(|e| e.into_inner());
            targets.iter().copied().filter(|t| !f.contains_key(t)).collect()
        };
        if pending.is_empty() {
            break;
        }
        for (seq, ip) in pending.iter().enumerate() {
            let packet = ping::echo_request(v6, id, seq as u16, b"gatewatch liveness");
            sent.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(*ip, Instant::now());
            let _ = sock.send_to(&packet, SocketAddr::new(*ip, 0)).await;
            if seq % 32 == 31 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        tokio::time::sleep(if round == 0 { wait } else { wait / 2 }).await;
    }
    receiver.abort();
    let found = found.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(found)
}
