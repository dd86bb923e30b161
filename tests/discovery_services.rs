//! Service definitions against the lab's ground truth (../shared/netlab/expected.json):
//! what each lab host really answers (banners, HTTP titles and Server headers, paths, TLS
//! names, mDNS types, SSDP fields) becomes [`Evidence`], and the matcher must name the
//! products the lab runs (protocol names are graded through the scanner in scan_netlab.rs).

use std::collections::BTreeMap;

use gatewatch::discovery::services::{Evidence, HttpResponse, ServiceMatcher, TlsInfo};
use serde_json::Value;

fn lab() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/netlab/expected.json");
    let text = std::fs::read_to_string(path).expect("../shared/netlab/expected.json is beside the repo");
    serde_json::from_str(&text).unwrap()
}

fn ports(v: &Value) -> Vec<u16> {
    v.as_array()
        .map(|a| a.iter().filter_map(|p| p.as_u64()).map(|p| p as u16).collect())
        .unwrap_or_default()
}

/// What a scanner would have seen on one lab host, from the ground truth.
fn evidence(host: &Value) -> Evidence {
    let mut ev = Evidence {
        tcp_open: ports(&host["tcp_open"]),
        udp_open: ports(&host["udp_open"]),
        mac_vendor: host["vendor_ieee"]
            .as_str()
            .filter(|_| host["mac_randomized"] != true)
            .map(String::from),
        ..Evidence::default()
    };
    for s in host["services"].as_array().into_iter().flatten() {
        if s["proto"] != "tcp" {
            continue;
        }
        let port = s["port"].as_u64().unwrap() as u16;
        if let Some(b) = s["banner"].as_str() {
            ev.banners.insert(port, b.to_string());
        }
        if let Some(server) = s["rtsp_server"].as_str() {
            ev.banners.insert(
                port,
                format!("RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: {server}\r\n\r\n"),
            );
        }
        if let Some(cn) = s["tls"]["subject_cn"].as_str() {
            ev.tls.insert(
                port,
                TlsInfo {
                    subject: format!("CN={cn}"),
                    ..TlsInfo::default()
                },
            );
        }
        let http = &s["http"];
        for (path, status) in http["paths"].as_object().into_iter().flatten() {
            let status = status.as_u64().unwrap() as u16;
            let headers = http["server"]
                .as_str()
                .map(|v| vec![("Server".to_string(), v.to_string())])
                .unwrap_or_default();
            // The lab's title is the root page's; other paths are JSON/XML.
            let title = if status == 200 && path == "/" {
                http["title"].as_str().map(String::from)
            } else {
                None
            };
            ev.http.push(HttpResponse {
                port,
                path: path.clone(),
                status,
                title,
                headers,
                body: String::new(),
            });
        }
    }
    for m in host["mdns"]["services"].as_array().into_iter().flatten() {
        ev.mdns.push(m["type"].as_str().unwrap().to_string());
    }
    let ssdp = &host["ssdp"];
    if ssdp.is_object() {
        for (field, key) in [
            ("SERVER", "server"),
            ("LOCATION", "location"),
            ("NT", "device_type"),
        ] {
            if let Some(v) = ssdp[key].as_str() {
                ev.ssdp.push((field.into(), v.into()));
            }
        }
        if let Some(u) = ssdp["usn_uuid"].as_str() {
            ev.ssdp.push(("USN".into(), format!("uuid:{u}")));
        }
        for st in ssdp["st"].as_array().into_iter().flatten() {
            ev.ssdp.push(("ST".into(), st.as_str().unwrap().into()));
        }
    }
    ev
}

/// (host, port) → definitions that count as recognising what the lab runs there. Ports
/// whose only evidence is a silent TLS handshake are left out.
fn expected() -> BTreeMap<(&'static str, u16), &'static [&'static str]> {
    let ssh: &[&str] = &["OpenSSH"];
    let smb: &[&str] = &["SMB file sharing"];
    BTreeMap::from([
        (("pihole", 22), ssh),
        (("pihole", 53), &["DNS server"][..]),
        (("pihole", 80), &["Pi-hole"][..]),
        (("nas", 22), ssh),
        (("nas", 80), &["Synology DSM"][..]),
        (("nas", 139), smb),
        (("nas", 445), smb),
        (("nas", 5000), &["Synology DSM"][..]),
        (("nas", 5001), &["Synology DSM"][..]),
        (("printer", 80), &["HP printer"][..]),
        (("printer", 443), &["HP printer"][..]),
        (("printer", 631), &["HP printer", "IPP printer"][..]),
        (("printer", 9100), &["JetDirect raw printing"][..]),
        (("unifi-ap", 22), &["Dropbear SSH"][..]),
        (("unifi-ap", 443), &["UniFi Network"][..]),
        (("appletv", 7000), &["Apple TV / AirPlay"][..]),
        (("homeassistant", 22), ssh),
        (("homeassistant", 1883), &["MQTT broker", "Mosquitto"][..]),
        (("homeassistant", 8123), &["Home Assistant"][..]),
        (("camera", 80), &["Hikvision"][..]),
        (("camera", 554), &["Hikvision", "RTSP stream server"][..]),
        (("winpc", 135), &["Windows RPC"][..]),
        (("winpc", 139), smb),
        (("winpc", 445), smb),
        (("winpc", 3389), &["Remote Desktop (RDP)"][..]),
        (("tasmota-plug", 80), &["Tasmota"][..]),
        (("devbox", 22), ssh),
        (("devbox", 3000), &["Grafana"][..]),
        (("devbox", 6379), &["Redis"][..]),
        (("devbox", 8080), &["Jenkins"][..]),
        (("devbox", 9090), &["Prometheus"][..]),
        (("fileserver", 21), &["vsftpd"][..]),
        (("fileserver", 22), ssh),
        (("fileserver", 80), &["Python http.server"][..]),
        (("samsung-tv", 8001), &["Samsung TV"][..]),
        (("samsung-tv", 9197), &["Samsung TV"][..]),
        (("sonos", 1400), &["Sonos"][..]),
        (("chromecast", 8008), &["Chromecast"][..]),
        (("core-switch", 22), &["Cisco IOS"][..]),
        (("core-switch", 23), &["Cisco IOS"][..]),
        (("core-switch", 443), &["Cisco IOS"][..]),
        (("ups", 80), &["APC UPS Network Management Card"][..]),
    ])
}

#[test]
fn lab_services_are_recognised() {
    let lab = lab();
    let matcher = ServiceMatcher::embedded();
    let want = expected();
    let mut hits = 0;
    let mut misses = Vec::new();
    let mut seen = 0;
    for host in lab["hosts"].as_array().unwrap() {
        let name = host["hostname"].as_str().unwrap();
        let got = matcher.classify(&evidence(host));
        for m in &got {
            println!(
                "{name}: {:?} {} [{}] {}",
                m.port,
                m.name,
                m.confidence.as_str(),
                m.summary()
            );
        }
        for ((h, port), names) in want.iter().filter(|((h, _), _)| *h == name) {
            seen += 1;
            match got.iter().find(|m| m.port == Some(*port)) {
                Some(m) if names.contains(&m.name.as_str()) => hits += 1,
                Some(m) => misses.push(format!(
                    "{h}:{port} wanted {names:?}, got '{}' ({})",
                    m.name,
                    m.summary()
                )),
                None => misses.push(format!("{h}:{port} wanted {names:?}, got nothing")),
            }
        }
    }
    assert_eq!(seen, want.len(), "every expected (host, port) is in the lab");
    let rate = hits as f64 / seen as f64;
    println!("lab service recognition: {hits}/{seen} = {rate:.3}");
    for m in &misses {
        println!("miss: {m}");
    }
    assert!(
        rate >= 0.9,
        "hit rate {rate:.3} below 0.9; misses:\n{}",
        misses.join("\n")
    );
}

#[test]
fn the_embedded_set_is_large_and_probes_what_the_lab_needs() {
    let m = ServiceMatcher::embedded();
    assert!(m.errors().is_empty(), "{:?}", m.errors());
    assert!(
        m.definitions().len() >= 220,
        "only {} definitions",
        m.definitions().len()
    );
    let ports = m.tcp_ports();
    for p in [
        22, 80, 443, 554, 631, 1400, 1883, 3389, 5000, 5001, 6379, 7000, 8001, 8008, 8123, 9090, 9100, 9197,
    ] {
        assert!(ports.contains(&p), "no definition names tcp/{p}");
    }
    for path in [
        "/admin/",
        "/manifest.json",
        "/setup/eureka_info",
        "/api/v2/",
        "/xml/device_description.xml",
        "/info",
    ] {
        assert!(m.http_paths().contains(path), "no definition probes {path}");
    }
}
