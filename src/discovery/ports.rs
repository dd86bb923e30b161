//! Port sets for TCP scans and the port-table names used when a port never speaks.
//!
//! The default set is nmap's top-100 TCP ports plus the home/IoT ports those lists miss.

/// nmap's 100 most frequent TCP ports (`nmap --top-ports 100`).
pub const NMAP_TOP_100: [u16; 100] = [
    7, 9, 13, 21, 22, 23, 25, 26, 37, 53, 79, 80, 81, 88, 106, 110, 111, 113, 119, 135, 139, 143, 144, 179,
    199, 389, 427, 443, 444, 445, 465, 513, 514, 515, 543, 544, 548, 554, 587, 631, 646, 873, 990, 993, 995,
    1025, 1026, 1027, 1028, 1029, 1110, 1433, 1720, 1723, 1755, 1900, 2000, 2001, 2049, 2121, 2717, 3000,
    3128, 3306, 3389, 3986, 4899, 5000, 5009, 5051, 5060, 5101, 5190, 5357, 5432, 5631, 5666, 5800, 5900,
    6000, 6001, 6646, 7070, 8000, 8008, 8009, 8080, 8081, 8443, 8888, 9100, 9999, 10000, 32768, 49152, 49153,
    49154, 49155, 49156, 49157,
];

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

/// The default scan set, sorted and without duplicates.
pub fn default_ports() -> Vec<u16> {
    let mut v: Vec<u16> = NMAP_TOP_100
        .iter()
        .chain(HOME_IOT_EXTRA.iter())
        .copied()
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Parses `top100`, `default`, `all` or a list like `22,80,8000-8100`.
pub fn parse_port_spec(spec: &str) -> Result<Vec<u16>, String> {
    match spec.trim() {
        "default" | "" => return Ok(default_ports()),
        "top100" => {
            let mut v = NMAP_TOP_100.to_vec();
            v.sort_unstable();
            return Ok(v);
        }
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
    fn default_set_is_top100_plus_extras() {
        let d = default_ports();
        assert!(d.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(d.len(), 140);
        for p in [22, 80, 443, 1400, 1883, 5001, 6379, 7000, 8001, 8123, 9090, 9197] {
            assert!(d.contains(&p), "{p}");
        }
    }

    #[test]
    fn port_specs() {
        assert_eq!(
            parse_port_spec("22, 80,8000-8002").unwrap(),
            vec![22, 80, 8000, 8001, 8002]
        );
        assert_eq!(parse_port_spec("top100").unwrap().len(), 100);
        assert_eq!(parse_port_spec("all").unwrap().len(), 65535);
        assert!(parse_port_spec("0").is_err());
        assert!(parse_port_spec("90-80").is_err());
        assert!(parse_port_spec("http").is_err());
    }
}
