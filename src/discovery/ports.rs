//! Port sets for TCP scans and the port-table names used when a port never speaks.
//!
//! The default set is nmap's top-100 TCP ports, the home/IoT ports those lists miss and every
//! port a service definition names.

/// nmap's TCP ports, most frequently open first, 1000 of them (`nmap --top-ports N` scans
/// the first N). Regenerated from Debian's nmap-services by `data/ports-update.sh`.
const NMAP_TOP_TCP: &str = include_str!("../../data/nmap-top-tcp-ports.txt");

/// nmap's `n` most frequent TCP ports (n ≤ 1000), sorted by number.
pub fn nmap_top(n: usize) -> Vec<u16> {
    let mut v: Vec<u16> = NMAP_TOP_TCP
        .lines()
        .take(n)
        .map(|l| {
            l.trim()
                .parse()
                .expect("data/nmap-top-tcp-ports.txt holds port numbers")
        })
        .collect();
    v.sort_unstable();
    v
}

/// Ports home labs and IoT devices use that the top-100 misses.
pub const HOME_IOT_EXTRA: [u16; 40] = [
    1400,  // Sonos
    1880,  // Node-RED
    1883,  // MQTT
    2375,  // Docker API
    2376,  // Docker API (TLS)
    3001,  // Uptime Kuma
    3478,  // STUN
    5001,  // Synology DSM (HTTPS)
    5601,  // Kibana
    6053,  // ESPHome API
    6379,  // Redis
    6443,  // Kubernetes API
    7000,  // AirPlay
    7878,  // Radarr
    8001,  // Samsung TV
    8006,  // Proxmox VE
    8086,  // InfluxDB
    8096,  // Jellyfin
    8123,  // Home Assistant
    8200,  // Vault, Duplicati
    8291,  // MikroTik Winbox
    8384,  // Syncthing
    8554,  // RTSP alternate
    8686,  // Lidarr
    8883,  // MQTT over TLS
    8989,  // Sonarr
    9000,  // Portainer, MinIO
    9090,  // Prometheus, Cockpit
    9091,  // Transmission
    9117,  // Jackett
    9197,  // Samsung TV (UPnP)
    9200,  // Elasticsearch
    9443,  // Portainer (HTTPS)
    9696,  // Prowlarr
    19999, // Netdata
    27017, // MongoDB
    32400, // Plex
    37777, // Dahua DVR
    51820, // WireGuard UI
    62078, // Apple lockdown
];

/// The default scan set: nmap's top 100, the home/IoT ports it misses and every TCP port a
/// service definition names; sorted, without duplicates.
pub fn default_ports() -> Vec<u16> {
    let mut v = nmap_top(100);
    v.extend(HOME_IOT_EXTRA);
    v.extend(crate::discovery::services::ServiceMatcher::embedded().tcp_ports());
    v.sort_unstable();
    v.dedup();
    v
}

/// Parses `default`, `top100`, `top1000`, `all` or a list like `22,80,8000-8100`.
pub fn parse_port_spec(spec: &str) -> Result<Vec<u16>, String> {
    match spec.trim() {
        "default" | "" => return Ok(default_ports()),
        "top100" => return Ok(nmap_top(100)),
        "top1000" => return Ok(nmap_top(1000)),
        "all" => return Ok((1..=u16::MAX).collect()),
        _ => {}
    }
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("\"{part}\" is not a port or range; write e.g. 22,80,8000-8100");
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<u16>().map_err(|_| bad())?,
                b.trim().parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let p = part.parse::<u16>().map_err(|_| bad())?;
                (p, p)
            }
        };
        if lo == 0 || lo > hi {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err("no ports given".into());
    }
    Ok(out)
}

/// The conventional (IANA / nmap) name of a TCP port, used when a port accepts connections
/// but never answers a probe.
pub fn port_name(port: u16) -> Option<&'static str> {
    Some(match port {
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 | 587 => "smtp",
        53 => "domain",
        80 | 8000 | 8008 | 8080 | 8081 | 8888 => "http",
        88 => "kerberos-sec",
        110 => "pop3",
        111 => "rpcbind",
        135 => "msrpc",
        139 => "netbios-ssn",
        143 => "imap",
        389 => "ldap",
        443 | 8443 => "https",
        445 => "microsoft-ds",
        465 => "smtps",
        515 => "printer",
        548 => "afp",
        554 | 8554 => "rtsp",
        631 => "ipp",
        873 => "rsync",
        993 => "imaps",
        995 => "pop3s",
        1433 => "ms-sql-s",
        1723 => "pptp",
        1883 => "mqtt",
        1900 => "upnp",
        2049 => "nfs",
        3306 => "mysql",
        3389 => "ms-wbt-server",
        5060 => "sip",
        5432 => "postgresql",
        5900 => "vnc",
        6379 => "redis",
        8883 => "secure-mqtt",
        9100 => "jetdirect",
        27017 => "mongodb",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_is_top100_plus_extras_plus_definition_ports() {
        let d = default_ports();
        assert!(d.windows(2).all(|w| w[0] < w[1]));
        for p in [22, 80, 443, 1400, 1883, 5001, 6379, 7000, 8001, 8123, 9090, 9197] {
            assert!(d.contains(&p), "{p}");
        }
        let named = crate::discovery::services::ServiceMatcher::embedded().tcp_ports();
        assert!(named.iter().all(|p| d.contains(p)));
        assert!(nmap_top(100).iter().all(|p| d.contains(p)));
        // Still a gentle set: a few hundred ports, not thousands.
        assert!(d.len() < 400, "{}", d.len());
    }

    #[test]
    fn nmap_lists_match_nmap_itself() {
        // `nmap --top-ports 100 -oX -` lists these; the file is nmap's own frequency order.
        let top100 = nmap_top(100);
        assert_eq!(top100.len(), 100);
        assert_eq!(&top100[..6], &[7, 9, 13, 21, 22, 23]);
        assert_eq!(&top100[94..], &[49152, 49153, 49154, 49155, 49156, 49157]);
        let top1000 = nmap_top(1000);
        assert_eq!(top1000.len(), 1000);
        assert!(top1000.windows(2).all(|w| w[0] < w[1]));
        assert!(top100.iter().all(|p| top1000.contains(p)));
    }

    #[test]
    fn port_specs() {
        assert_eq!(
            parse_port_spec("22, 80,8000-8002").unwrap(),
            vec![22, 80, 8000, 8001, 8002]
        );
        assert_eq!(parse_port_spec("top100").unwrap().len(), 100);
        assert_eq!(parse_port_spec("top1000").unwrap().len(), 1000);
        assert_eq!(parse_port_spec("all").unwrap().len(), 65535);
        assert!(parse_port_spec("0").is_err());
        assert!(parse_port_spec("90-80").is_err());
        assert!(parse_port_spec("http").is_err());
    }
}
