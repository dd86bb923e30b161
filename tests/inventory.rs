//! The inventory as users reach it: nmap imports (CLI, upload form, API) checked against
//! what nmap's own XML says, passive lease files, Docker over a unix socket, scans of
//! loopback listeners with progress and cancel, and who may do what.

mod common;
use common::*;
use gatewatch::inventory::{NameSource, ScanOrigin, Source};
use std::collections::BTreeMap;
use std::time::Duration;

fn fixture(path: &str) -> String {
    let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// (ip, port → (service name, product)) of every up host, read straight from nmap's XML.
fn nmap_says(xml: &str) -> BTreeMap<String, BTreeMap<u16, (String, String)>> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, opts).unwrap();
    let mut out = BTreeMap::new();
    for host in doc.descendants().filter(|n| n.has_tag_name("host")) {
        let ip = host
            .children()
            .find(|n| n.has_tag_name("address") && n.attribute("addrtype") == Some("ipv4"))
            .and_then(|n| n.attribute("addr"))
            .unwrap()
            .to_string();
        let mut ports = BTreeMap::new();
        for p in host.descendants().filter(|n| n.has_tag_name("port")) {
            let state = p.children().find(|n| n.has_tag_name("state")).unwrap();
            if state.attribute("state") != Some("open") {
                continue;
            }
            let svc = p.children().find(|n| n.has_tag_name("service"));
            ports.insert(
                p.attribute("portid").unwrap().parse().unwrap(),
                (
                    svc.and_then(|s| s.attribute("name")).unwrap_or("").to_string(),
                    svc.and_then(|s| s.attribute("product")).unwrap_or("").to_string(),
                ),
            );
        }
        out.insert(ip, ports);
    }
    assert!(!out.is_empty());
    out
}

fn check_import(s: &TestServer, xml: &str) {
    let truth = nmap_says(xml);
    for (ip, ports) in &truth {
        let h = s
            .state
            .discovery
            .host_by_ip(ip.parse().unwrap())
            .unwrap_or_else(|| panic!("{ip} not imported"));
        assert!(h.sources.contains(&Source::Nmap));
        let got: BTreeMap<u16, _> = h.services.iter().filter_map(|s| s.port.map(|p| (p, s))).collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            ports.keys().collect::<Vec<_>>(),
            "{ip}"
        );
        for (port, (name, product)) in ports {
            let svc = got[port];
            assert_eq!(svc.name.as_deref().unwrap_or(""), name, "{ip}:{port}");
            assert!(
                svc.product.as_deref().unwrap_or("").starts_with(product.as_str()),
                "{ip}:{port}: {:?} vs {product}",
                svc.product
            );
            assert!(!svc.evidence.is_empty());
        }
    }
}

#[tokio::test]
async fn nmap_upload_form_imports_and_bad_xml_stores_nothing() {
    let s = TestServer::start(Options::default()).await;
    let c = setup_admin(&s, "root", PASSWORD).await;
    let page = common::page_text(&c, format!("{}/scans", s.url)).await;
    assert!(page.contains("Import nmap XML"), "{page}");
    let csrf = csrf_from(&page);
    let upload = |name: &'static str, data: String, csrf: String| {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf)
            .part("file", reqwest::multipart::Part::text(data).file_name(name));
        c.post(format!("{}/scans/import", s.url)).multipart(form).send()
    };

    // Without the CSRF field the upload is refused before anything is read.
    let r = upload("x.xml", fixture("nmap/loopback-sV.xml"), "wrong".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(s.state.discovery.hosts().is_empty());

    let r = upload("broken.xml", "<nmaprun><host>".into(), csrf.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("broken.xml") && body.contains("Nothing was imported"),
        "{body}"
    );
    assert!(s.state.discovery.hosts().is_empty());
    assert!(s.state.discovery.scan_history(10).unwrap().is_empty());

    let xml = fixture("nmap/loopback-sV.xml");
    let r = upload("loopback-sV.xml", xml.clone(), csrf).await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("imported 1 hosts and 4 open ports"), "{body}");
    check_import(&s, &xml);
    let h = s
        .state
        .discovery
        .host_by_ip("127.0.0.57".parse().unwrap())
        .unwrap();
    assert!(h.is_new);
    // nmap guessed 1883 from its port table; the service definitions name the application.
    let mqtt = h.services.iter().find(|s| s.port == Some(1883)).unwrap();
    assert_eq!(mqtt.application.as_deref(), Some("MQTT broker"), "{mqtt:?}");
    assert!(mqtt.evidence.iter().any(|e| e == "port 1883"), "{mqtt:?}");
    let history = s.state.discovery.scan_history(10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].origin, ScanOrigin::NmapImport);
    assert_eq!(history[0].open_ports, 4);

    // The pages show it.
    let hosts = common::page_text(&c, format!("{}/hosts", s.url)).await;
    assert!(
        hosts.contains("127.0.0.57") && hosts.contains("badge new"),
        "{hosts}"
    );
    let page = common::page_text(&c, format!("{}/hosts/{}", s.url, h.id)).await;
    assert!(
        page.contains("OpenSSH 9.2p1") && page.contains("/traffic?ip=127.0.0.57"),
        "{page}"
    );
    s.stop().await;
}

#[tokio::test]
async fn api_imports_raw_xml_lists_hosts_and_acknowledges() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("root", "admin");
    let token = token_for(&s, "ops", "admin");
    let c = client();
    let r = c
        .post(format!("{}/api/v1/imports/nmap?name=lab.xml", s.url))
        .bearer_auth(&token)
        .body("not xml at all")
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r, 400).await, "invalid");
    let r = c
        .post(format!("{}/api/v1/imports/nmap?name=lab.xml", s.url))
        .bearer_auth(&token)
        .body(fixture("nmap/loopback-sV.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let scan: serde_json::Value = r.json().await.unwrap();
    assert_eq!(scan["targets"][0], "lab.xml");
    assert_eq!(scan["hosts_found"], 1);

    let list: serde_json::Value =
        common::api_json(&c, format!("{}/api/v1/hosts?new=true", s.url), &token).await;
    assert_eq!(list["total"], 1, "{list}");
    let id = list["hosts"][0]["id"].as_u64().unwrap();
    let r = c
        .post(format!("{}/api/v1/hosts/{id}/acknowledge", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let host: serde_json::Value = r.json().await.unwrap();
    assert_eq!(host["new"], false);
    let ports: Vec<u64> = host["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["port"].as_u64())
        .collect();
    assert_eq!(ports, vec![22, 80, 1883, 8123]);
    let filtered: serde_json::Value =
        common::api_json(&c, format!("{}/api/v1/hosts?service=ssh", s.url), &token).await;
    assert_eq!(filtered["total"], 1);
    let none: serde_json::Value =
        common::api_json(&c, format!("{}/api/v1/hosts?q=no-such-thing", s.url), &token).await;
    assert_eq!(none["total"], 0);
    let subnets: serde_json::Value = common::api_json(&c, format!("{}/api/v1/subnets", s.url), &token).await;
    assert!(subnets
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["cidr"] == "0.0.0.0/0" && s["kind"] == "internet"));
    s.stop().await;
}

#[tokio::test]
async fn lease_files_become_named_hosts_and_merge_split_work_over_the_api() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("root", "admin");
    let token = token_for(&s, "ops", "admin");
    let now = s.now();
    // The dnsmasq fixture (written by the real dnsmasq) with leases valid at T0.
    // Leases written by the real dnsmasq and Kea (tests/fixtures/passive), read at time 0
    // so none has expired.
    let mut leases = gatewatch::discovery::passive::parse_dnsmasq_leases(
        &fixture("passive/dnsmasq.leases"),
        gatewatch::model::Timestamp(0),
    );
    let kea = gatewatch::discovery::passive::parse_kea_leases4(
        &fixture("passive/kea-leases4.csv"),
        gatewatch::model::Timestamp(0),
    );
    let first_mac = leases.items[0].mac;
    leases
        .items
        .extend(kea.items.into_iter().filter(|l| l.mac != first_mac));
    assert!(leases.items.len() >= 2, "{leases:?}");
    let obs = leases
        .items
        .iter()
        .map(gatewatch::inventory::sources::from_lease)
        .collect();
    let new = s.state.discovery.observe_batch(obs, now).unwrap();
    assert_eq!(new, leases.items.len());
    for l in &leases.items {
        let h = s.state.discovery.host_by_ip(l.ip).unwrap();
        assert_eq!(h.macs().next(), Some(l.mac.0));
        if let Some(name) = &l.hostname {
            assert_eq!(h.names.get(&NameSource::Dhcp), Some(name));
        }
    }
    let a = s.state.discovery.host_by_ip(leases.items[0].ip).unwrap().id;
    let b = s.state.discovery.host_by_ip(leases.items[1].ip).unwrap().id;
    let c = client();
    let r = c
        .post(format!("{}/api/v1/hosts/{a}/merge", s.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"from": [b]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let merged: serde_json::Value = r.json().await.unwrap();
    assert_eq!(merged["interfaces"].as_array().unwrap().len(), 2);
    let r = c
        .get(format!("{}/api/v1/hosts/{b}", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r, 404).await, "not_found");
    let r = c
        .post(format!("{}/api/v1/hosts/{a}/split", s.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"interface": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let split: serde_json::Value = r.json().await.unwrap();
    let new_id = split["new_host"].as_u64().unwrap();
    assert_eq!(
        s.state.discovery.host_by_ip(leases.items[1].ip).unwrap().id,
        new_id
    );
    // Events were stored; the audit log has the API writes.
    let events = s.state.discovery.events(Some(a), 10).unwrap();
    assert!(events.len() >= 3, "{events:?}");
    let audit = s.state.accounts.audit_page(None, 50).unwrap();
    assert!(audit.iter().any(|(_, e)| e.action == "hosts.merge"));
    s.stop().await;
}

/// Serves `body` for every request on a unix socket, like the Docker daemon's.
async fn fake_docker(path: std::path::PathBuf, body: String) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let (status, body) = if req.starts_with("GET /containers/json ") {
                    ("200 OK", body)
                } else {
                    ("404 Not Found", "{\"message\":\"page not found\"}".to_string())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nApi-Version: 1.56\r\nContent-Type: application/json\r\nServer: Docker/28.1.1 (linux)\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    })
}

#[tokio::test]
async fn docker_containers_become_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    let server = fake_docker(sock.clone(), fixture("docker/containers-json.json")).await;
    let toml = format!(
        "[discovery]\ndocker_socket = {:?}\nlease_files = []\n",
        sock.display().to_string()
    );
    let s = TestServer::start(Options {
        config_toml: toml,
        ..Default::default()
    })
    .await;
    s.state.discovery.poll_passive().await;
    let status = s.state.discovery.passive_status();
    assert!(
        status
            .read
            .iter()
            .any(|(src, n)| src.starts_with("docker") && *n == 2),
        "{status:?}"
    );
    // Values from the fixture (Docker's published API examples).
    let h = s
        .state
        .discovery
        .host_by_ip("172.17.0.4".parse().unwrap())
        .unwrap();
    assert_eq!(
        h.names.get(&NameSource::Docker).map(String::as_str),
        Some("funny_chatelet")
    );
    assert_eq!(h.macs().next(), Some([0x02, 0x42, 0xac, 0x11, 0x00, 0x04]));
    assert!(h.ips().any(|ip| ip.to_string() == "2001:db8::5689"));
    assert!(h.sources.contains(&Source::Docker));
    let svc = h.services.iter().find(|s| s.port == Some(8080)).unwrap();
    assert!(svc.evidence.iter().any(|e| e.contains("port 80")), "{svc:?}");
    assert_eq!(svc.product.as_deref(), Some("docker.io/library/ubuntu:latest"));
    // A socket that answers garbage is a problem to show, not a crash.
    server.abort();
    s.stop().await;
}

/// Listeners on a loopback address of their own, for scans.
async fn listeners(ip: &str, ports: &[u16]) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    for &p in ports {
        let l = tokio::net::TcpListener::bind((ip, p)).await.unwrap();
        out.push(tokio::spawn(async move {
            loop {
                if let Ok((mut c, _)) = l.accept().await {
                    use tokio::io::AsyncWriteExt;
                    let _ = c.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").await;
                }
            }
        }));
    }
    out
}

async fn wait_done(c: &reqwest::Client, s: &TestServer, token: &str, id: u64) -> serde_json::Value {
    for _ in 0..600 {
        let v: serde_json::Value = common::api_json(c, format!("{}/api/v1/scans/{id}", s.url), token).await;
        if ["done", "cancelled", "failed"].contains(&v["state"].as_str().unwrap()) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("scan {id} did not finish");
}

#[tokio::test]
async fn scans_run_stream_progress_cancel_and_refuse_public_targets() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("root", "admin");
    s.add_user("vera", "viewer");
    let token = token_for(&s, "ops", "admin");
    let viewer = token_for(&s, "look", "viewer");
    let c = client();
    let _l = listeners("127.0.0.61", &[2222, 8123]).await;

    let post = |t: &str, body: serde_json::Value| {
        c.post(format!("{}/api/v1/scans", s.url))
            .bearer_auth(t)
            .json(&body)
            .send()
    };
    // Public targets are refused before anything is sent; viewers may not scan.
    let r = post(&token, serde_json::json!({"targets": ["8.8.8.0/30"]}))
        .await
        .unwrap();
    let msg = r.text().await.unwrap();
    assert!(
        msg.contains("not a private network") && msg.contains("allow_public_targets"),
        "{msg}"
    );
    let r = post(&viewer, serde_json::json!({"targets": ["127.0.0.61"]}))
        .await
        .unwrap();
    assert_eq!(api_error(r, 403).await, "forbidden");
    assert!(s.state.discovery.scan_history(10).unwrap().is_empty());

    let r = post(
        &token,
        serde_json::json!({"targets": ["127.0.0.61"], "ports": "2222,8123,2223"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_u64()
        .unwrap();
    // The SSE stream sends the progress fields.
    let mut events = c
        .get(format!("{}/events/scans/{id}", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let first = events.chunk().await.unwrap().unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(
        first.contains("\"percent\"") && first.contains("\"hosts\""),
        "{first}"
    );
    drop(events);
    let done = wait_done(&c, &s, &token, id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["progress"]["percent"], 100);
    assert_eq!(done["open_ports"], 2, "{done}");
    let h = s
        .state
        .discovery
        .host_by_ip("127.0.0.61".parse().unwrap())
        .unwrap();
    let ports: Vec<u16> = h.services.iter().filter_map(|s| s.port).collect();
    assert_eq!(ports, vec![2222, 8123]);
    assert!(
        h.services[0].name.as_deref() == Some("ssh"),
        "{:?}",
        h.services[0]
    );

    // One slot: a second scan queues behind a long one; cancelling both ends them.
    let long = post(
        &token,
        serde_json::json!({"targets": ["127.0.0.64/30"], "ports": "1-20000"}),
    )
    .await
    .unwrap()
    .json::<serde_json::Value>()
    .await
    .unwrap()["id"]
        .as_u64()
        .unwrap();
    let queued = post(
        &token,
        serde_json::json!({"targets": ["127.0.0.61"], "ports": "2222"}),
    )
    .await
    .unwrap()
    .json::<serde_json::Value>()
    .await
    .unwrap()["id"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let q: serde_json::Value = common::api_json(&c, format!("{}/api/v1/scans/{queued}", s.url), &token).await;
    assert_eq!(q["state"], "queued", "{q}");
    for id in [queued, long] {
        let r = c
            .post(format!("{}/api/v1/scans/{id}/cancel", s.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(wait_done(&c, &s, &token, id).await["state"], "cancelled");
    }
    let r = c
        .post(format!("{}/api/v1/scans/{long}/cancel", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r, 404).await, "not_found");
    let history: serde_json::Value = common::api_json(&c, format!("{}/api/v1/scans", s.url), &token).await;
    assert_eq!(history.as_array().unwrap().len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn viewers_see_hosts_but_cannot_change_them() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("root", "admin");
    let viewer = token_for(&s, "look", "viewer");
    let c = client();
    let r = c
        .get(format!("{}/api/v1/hosts", s.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!("{}/api/v1/imports/nmap", s.url))
        .bearer_auth(&viewer)
        .body(fixture("nmap/loopback-sV.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r, 403).await, "forbidden");
    let r = c
        .delete(format!("{}/api/v1/hosts/1", s.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r, 403).await, "forbidden");
    s.stop().await;
}

#[tokio::test]
async fn traffic_hook_adds_hosts_on_local_subnets_only() {
    let local = gatewatch::discovery_service::ifaddrs::router_addresses()
        .into_iter()
        .find(|a| a.net.addr().is_ipv4() && !a.net.addr().is_loopback() && a.net.prefix_len() < 31);
    let Some(local) = local else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI machine has no IPv4 interface"
        );
        println!("skipping: no IPv4 interface besides loopback");
        return;
    };
    let neighbour = local.net.hosts().find(|ip| *ip != local.net.addr()).unwrap();
    let s = TestServer::start(Options {
        config_toml: "[discovery]\nlease_files = []\ndocker_socket = \"\"\n".into(),
        ..Default::default()
    })
    .await;
    let sink = s.state.discovery.traffic_sink();
    let obs = gatewatch::inventory::sources::from_traffic(
        &[
            (neighbour, Some([0x00, 0x11, 0x32, 1, 2, 3])),
            ("203.0.113.9".parse().unwrap(), None),
        ],
        &[(neighbour, "nas.lan")],
    );
    for o in obs {
        sink.try_send(o).unwrap();
    }
    s.state.discovery.poll_passive().await;
    let h = s.state.discovery.host_by_ip(neighbour).unwrap();
    assert_eq!(h.name(), Some("nas.lan"));
    assert!(h.sources.contains(&Source::Traffic) && h.sources.contains(&Source::Dns));
    assert_eq!(h.vendor(), Some("Synology Incorporated"));
    assert!(
        s.state
            .discovery
            .host_by_ip("203.0.113.9".parse().unwrap())
            .is_none(),
        "an Internet address is not a host of this network"
    );
    // The sensor's per-window hook, as `serve` connects it: endpoints and DNS names.
    gatewatch::app::feed_inventory_from_traffic(&s.state.traffic, &s.state.discovery);
    // The subnet's last address: not this machine, and unlikely to be in its ARP table.
    let second = local.net.hosts().last().unwrap();
    let hook = s.state.traffic.hosts_seen.get().expect("the hook is set");
    hook(
        &[second, "198.51.100.7".parse().unwrap()],
        &[(second, std::sync::Arc::from("printer.lan"))],
    );
    s.state.discovery.poll_passive().await;
    let h2 = s
        .state
        .discovery
        .host_by_ip(second)
        .expect("a host seen in traffic");
    assert_eq!(h2.name(), Some("printer.lan"));
    assert!(s
        .state
        .discovery
        .host_by_ip("198.51.100.7".parse().unwrap())
        .is_none());
    s.stop().await;
}
