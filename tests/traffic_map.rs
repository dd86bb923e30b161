//! The traffic world map and flows view against a replayed fixture: the server replays
//! `tests/fixtures/map/geo-replay.pcap` (a Zeek fixture whose public addresses were moved
//! into MaxMind's test networks, see `make_geo_replay.py` there) with MaxMind's published
//! test databases. Expected endpoints come from tshark's reading of the file and expected
//! places from the databases' JSON sources, not from our own output.
//!
//! The browser part (headless Chromium through chromedriver) checks that arcs are drawn for
//! the fixture's remote endpoints, that each filter narrows them, takes screenshots (zoomed
//! out, zoomed in with labels, filtered) into `target/screenshots/`, and prints the frame
//! time with 2,000 synthetic arcs (`?demo=2000`). Without chromedriver it is skipped, except
//! under `CI=true`.

mod common;
use anyhow::{bail, ensure, Context, Result};
use common::browser::*;
use common::*;
use fantoccini::{Client, Locator};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const HOME: (f64, f64) = (52.52, 13.405);

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    manifest().join("tests/fixtures/map/geo-replay.pcap")
}

fn geo_dir() -> PathBuf {
    manifest().join("../shared/testdata/geo")
}

fn config_toml(replay: &Path) -> String {
    format!(
        "[capture]\nreplay = {:?}\nreplay_speed = \"fast\"\n\n[geo]\ncity_db = {:?}\nasn_db = {:?}\nhome_latitude = {}\nhome_longitude = {}\n",
        replay,
        geo_dir().join("GeoLite2-City-Test.mmdb"),
        geo_dir().join("GeoLite2-ASN-Test.mmdb"),
        HOME.0,
        HOME.1
    )
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(fixture())
        .args(args)
        .output()
        .expect("tshark runs (apt install tshark)");
    assert!(out.status.success(), "tshark {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The public (non-private, non-multicast) addresses tshark sees in the fixture.
fn public_endpoints() -> BTreeSet<IpAddr> {
    let text = tshark(&["-T", "fields", "-e", "ip.src", "-e", "ip.dst"]);
    text.split_whitespace()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .filter(|ip| !gatewatch::geo::is_local(ip) && !ip.is_multicast())
        .collect()
}

/// qnames whose DNS answers carried `ip`, as tshark reads them.
fn names_answering(ip: &IpAddr) -> BTreeSet<String> {
    let filter = format!("dns.flags.response==1 && dns.a=={ip}");
    tshark(&["-Y", &filter, "-T", "fields", "-e", "dns.qry.name"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// (country ISO, latitude, longitude) of `ip` in the City test database's JSON source.
fn expected_place(ip: &IpAddr) -> Option<(String, f64, f64)> {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(geo_dir().join("GeoLite2-City-Test.json")).unwrap())
            .unwrap();
    for entry in json.as_array()? {
        for (net, v) in entry.as_object()? {
            let Ok(net) = net.parse::<ipnet::IpNet>() else {
                continue;
            };
            if net.contains(ip) {
                let loc = &v["location"];
                return Some((
                    v["country"]["iso_code"].as_str()?.to_string(),
                    loc["latitude"].as_f64()?,
                    loc["longitude"].as_f64()?,
                ));
            }
        }
    }
    None
}

async fn start() -> TestServer {
    start_replaying(&fixture()).await
}

async fn start_replaying(replay: &Path) -> TestServer {
    TestServer::start(Options {
        tls: true,
        config_toml: config_toml(replay),
    })
    .await
}

/// The MAC of an Espressif module (an IoT gadget), as our OUI table names its vendor.
const ESPRESSIF_MAC: [u8; 6] = [0x24, 0x0a, 0xc4, 0x12, 0x34, 0x56];

/// Tells the inventory (as the neighbour table would) that `ip` has an Espressif MAC.
fn neighbour_is_espressif(server: &TestServer, ip: &str) {
    use gatewatch::inventory::{sources::vendor_of, Observation, Source};
    let mut o = Observation::new(Source::Arp);
    o.ip = Some(ip.parse().unwrap());
    o.mac = Some(ESPRESSIF_MAC);
    o.vendor = vendor_of(gatewatch::discovery::oui::Mac(ESPRESSIF_MAC));
    assert_eq!(o.vendor.as_deref(), Some("Espressif Inc."));
    server
        .state
        .discovery
        .observe_batch(vec![o], server.now())
        .unwrap();
}

/// The local client of the geo fixture (the end that talks to the public addresses).
const FIXTURE_CLIENT: &str = "172.16.238.131";

/// Waits until the replay has finished (its flows stay queryable afterwards).
async fn replay_finished(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = server.state.traffic.status();
        if st
            .sources
            .iter()
            .any(|s| matches!(s.state, gatewatch::sensor::SourceState::Finished))
        {
            return;
        }
        assert!(Instant::now() < deadline, "replay did not finish: {st:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_flows_view_place_and_name_the_fixture_endpoints() {
    let server = start().await;
    replay_finished(&server).await;
    let token = token_for(&server, "viewer", "viewer");
    let c = client();
    let body: Value = common::api_json(&c, format!("{}/api/v1/traffic/map", server.url), &token).await;
    assert_eq!(body["home"]["lat"].as_f64(), Some(HOME.0));
    let flows = body["flows"].as_array().unwrap();
    let endpoints = public_endpoints();
    assert_eq!(endpoints.len(), 3, "the fixture talks to three public addresses");
    for ip in &endpoints {
        let f = flows
            .iter()
            .find(|f| f["remote"] == ip.to_string())
            .unwrap_or_else(|| panic!("no flow to {ip} in {body}"));
        let (country, lat, lon) = expected_place(ip).unwrap();
        assert_eq!(f["country"], country.as_str(), "{ip}");
        assert_eq!(
            (f["lat"].as_f64(), f["lon"].as_f64()),
            (Some(lat), Some(lon)),
            "{ip}"
        );
        assert_eq!(f["remote_private"], false);
        let names = names_answering(ip);
        if !names.is_empty() {
            let got = f["remote_name"].as_str().unwrap_or_default();
            assert!(names.contains(got), "{ip} named {got:?}, DNS said {names:?}");
        }
    }
    // Private and multicast remote ends are at home, never "unplaced".
    assert!(flows
        .iter()
        .filter(|f| f["remote_private"] == true)
        .any(|f| f["remote"] == "172.16.238.2"));
    // Filters on the API: a bad value is refused, a port narrows.
    let r = c
        .get(format!("{}/api/v1/traffic/map?port=http", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let dns: Value = common::api_json(
        &c,
        format!("{}/api/v1/traffic/map?port=53&proto=udp", server.url),
        &token,
    )
    .await;
    let dns = dns["flows"].as_array().unwrap();
    assert!(!dns.is_empty() && dns.len() < flows.len());
    assert!(dns
        .iter()
        .all(|f| f["proto"] == 17 && (f["remote_port"] == 53 || f["local_port"] == 53)));

    // The flows view and its exports, as a logged-in user.
    let web = setup_admin(&server, "admin", PASSWORD).await;
    let html = common::page_text(&web, format!("{}/traffic/flows?sort=remote&dir=asc", server.url)).await;
    for ip in &endpoints {
        assert!(html.contains(&ip.to_string()), "flows view lacks {ip}");
    }
    assert!(html.contains("aria-sort=\"ascending\""));
    let csv = common::page_text(&web, format!("{}/traffic/flows.csv?ip=81.2.69.142", server.url)).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("source,proto,local"));
    assert!(
        lines.len() >= 2
            && lines[1..]
                .iter()
                .all(|l| l.contains("81.2.69.142") && l.contains(",GB,")),
        "{csv}"
    );
    let json: Value = web
        .get(format!("{}/traffic/flows.json?proto=tcp", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(json.as_array().unwrap().iter().all(|f| f["proto"] == 6));
    page_weight(&web, &server).await;
    server.stop().await;
}

/// Device kinds (the arcs' colours) come from the DHCP vendor class and the MAC vendor when
/// the host name says nothing. The pktvisor DHCP capture has an Android phone with a
/// randomised MAC whose name (`Zenfone-8`) names no OS: only its vendor class tells. The
/// geo fixture's client has no name and VMware's MAC; once the inventory knows it by an
/// Espressif MAC it is an IoT device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_kinds_follow_dhcp_vendor_class_and_mac_vendor() {
    let pcap = manifest().join("../shared/testdata/pcap/fixtures/pktvisor__dhcp-flow.pcap");
    // What the phone said, read by tshark: (address ACKed, host name, vendor class).
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args([
            "-Y",
            "dhcp.option.vendor_class_id",
            "-T",
            "fields",
            "-E",
            "occurrence=f",
        ])
        .args([
            "-e",
            "dhcp.option.requested_ip_address",
            "-e",
            "dhcp.option.hostname",
        ])
        .args(["-e", "dhcp.option.vendor_class_id"])
        .output()
        .expect("tshark runs (apt install tshark)");
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().expect("the capture has a vendor class");
    let f: Vec<&str> = first.split('\t').collect();
    let (phone, name, class) = (f[0], f[1], f[2]);
    assert!(class.starts_with("android-dhcp-"), "{first}");

    let server = start_replaying(&pcap).await;
    replay_finished(&server).await;
    let token = token_for(&server, "viewer", "viewer");
    let get = |q: &'static str| {
        let (url, token) = (server.url.clone(), token.clone());
        async move {
            let v = api_json(&client(), format!("{url}/api/v1/traffic/map?{q}"), &token).await;
            v["flows"].as_array().cloned().unwrap_or_default()
        }
    };
    let flows = get("").await;
    let f = flows
        .iter()
        .find(|f| f["local"] == phone)
        .unwrap_or_else(|| panic!("no flow of {phone}: {flows:?}"));
    assert_eq!(f["device_hints"]["dhcp_vendor_class"], class, "{f}");
    assert_eq!(f["device_hints"]["hostname"], name, "{f}");
    assert!(
        f["device_hints"]["mac_vendor"].is_null(),
        "a randomised MAC has no vendor: {f}"
    );
    assert_eq!(f["device"], "android", "{f}");
    server.stop().await;

    let server = start().await;
    replay_finished(&server).await;
    let token = token_for(&server, "viewer", "viewer");
    let client_flows = |body: Value| -> Vec<Value> {
        body["flows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["local"] == FIXTURE_CLIENT && f["remote_private"] == false)
            .cloned()
            .collect()
    };
    let fetch = || async { api_json(&client(), format!("{}/api/v1/traffic/map", server.url), &token).await };
    let before = client_flows(fetch().await);
    assert!(!before.is_empty());
    assert!(before.iter().all(|f| f["device"] == "unknown"), "{before:?}");
    neighbour_is_espressif(&server, FIXTURE_CLIENT);
    let after = client_flows(fetch().await);
    assert_eq!(after.len(), before.len());
    for f in &after {
        assert_eq!(f["device_hints"]["mac_vendor"], "Espressif Inc.", "{f}");
        assert_eq!(f["device"], "iot", "{f}");
    }
    server.stop().await;
}

/// Bytes on the wire (gzip) of the map page and everything it loads, measured over HTTP:
/// the page itself, its stylesheets and scripts, and both world maps (the 1:50m one is
/// fetched once the user zooms in). Printed for the report; the budget is 400 KB.
async fn page_weight(web: &reqwest::Client, server: &TestServer) {
    use std::io::Write;
    let html = common::page_text(web, format!("{}/traffic/map", server.url)).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(html.as_bytes()).unwrap();
    let mut total = gz.finish().unwrap().len();
    let mut parts = vec![format!("page {total}")];
    let assets: BTreeSet<String> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/static/"))
        .map(|s| s.replace("&amp;", "&"))
        .collect();
    assert!(
        assets.iter().any(|a| a.contains("world-110m.json")) && assets.iter().any(|a| a.contains("map.js"))
    );
    for a in &assets {
        let r = web
            .get(format!("{}{a}", server.url))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{a}");
        let n = r.bytes().await.unwrap().len();
        total += n;
        parts.push(format!(
            "{} {n}",
            a.trim_start_matches("/static/").split('?').next().unwrap_or(a)
        ));
    }
    println!("map page weight (gzip, bytes): {total} = {}", parts.join(" + "));
    assert!(total <= 400_000, "map page weighs {total} bytes compressed");
}

async fn arcs(c: &Client) -> Result<Vec<Value>> {
    let v = c
        .execute(
            "return window.gatewatchMap ? window.gatewatchMap.arcs() : null",
            vec![],
        )
        .await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// Waits until at least `n` arcs are drawn; returns them.
async fn wait_arcs(c: &Client, n: usize) -> Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = arcs(c).await?;
        if a.len() >= n {
            return Ok(a);
        }
        if Instant::now() > deadline {
            bail!("only {} arcs drawn after 20 s", a.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn set_filter(c: &Client, name: &str, value: &str) -> Result<()> {
    c.execute(
        "const el = document.querySelector('#map-filters [name=\"' + arguments[0] + '\"]');
         el.value = arguments[1];
         el.dispatchEvent(new Event('input', { bubbles: true }));",
        vec![Value::from(name), Value::from(value)],
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_draws_arcs_for_the_fixture_and_filters_narrow_them() {
    if let Some(why) = tools_missing() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}: the map browser test must run in CI");
        }
        println!("skipping: {why} (apt install chromium chromium-driver)");
        return;
    }
    let server = start().await;
    replay_finished(&server).await;
    // The fixture's client gets a vendor (an IoT gadget's MAC): its arcs take IoT's colour.
    neighbour_is_espressif(&server, FIXTURE_CLIENT);
    let _ = setup_admin(&server, "admin", PASSWORD).await;
    let driver = Driver::start().await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let c = connect(&driver, profile.path(), (1400, 900)).await.unwrap();
    let result = map_checks(&c, &server).await;
    let _ = c.close().await;
    server.stop().await;
    drop(driver);
    if let Err(e) = result {
        panic!("{e:#}");
    }
}

async fn map_checks(c: &Client, server: &TestServer) -> Result<()> {
    let base = server.url.as_str();
    c.goto(&format!("{base}/login")).await?;
    c.find(Locator::Css("#username"))
        .await?
        .send_keys("admin")
        .await?;
    c.find(Locator::Css("#password"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    c.find(Locator::Css("form.stack button[type=submit]"))
        .await?
        .click()
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.goto(&format!("{base}/traffic/map")).await?;

    let endpoints = public_endpoints();
    let all = wait_arcs(c, endpoints.len()).await?;
    let remotes: BTreeSet<String> = all
        .iter()
        .filter_map(|a| a["remote"].as_str().map(String::from))
        .collect();
    for ip in &endpoints {
        ensure!(
            remotes.contains(&ip.to_string()),
            "no arc to {ip}; arcs go to {remotes:?}"
        );
        let (_, lat, lon) = expected_place(ip).context("test DB knows the address")?;
        let arc = all.iter().find(|a| a["remote"] == ip.to_string()).unwrap();
        ensure!(
            arc["lat"].as_f64() == Some(lat) && arc["lon"].as_f64() == Some(lon),
            "{ip} placed at {arc}"
        );
    }
    // Each arc has its device's legend colour; the client's arcs are IoT by its MAC vendor.
    let legend = c
        .execute(
            "const m = {}; document.querySelectorAll('#map-legend .swatch').forEach(s => {
               const k = [...s.classList].find(c => c.startsWith('dev-')).slice(4);
               m[k] = getComputedStyle(s).backgroundColor; }); return m;",
            vec![],
        )
        .await?;
    ensure!(legend.as_object().map(|m| m.len()) == Some(7), "legend: {legend}");
    for a in &all {
        let want = &legend[a["device"].as_str().unwrap_or("?")];
        ensure!(
            a["color"] == *want,
            "arc {} is {} but its device's legend colour is {want}",
            a["remote"],
            a["color"]
        );
    }
    let client_arcs: Vec<&Value> = all
        .iter()
        .filter(|a| a["local"] == FIXTURE_CLIENT && a["remote_private"] == false)
        .collect();
    ensure!(
        !client_arcs.is_empty()
            && client_arcs
                .iter()
                .all(|a| a["device"] == "iot" && a["color"] == legend["iot"]),
        "the client's arcs are not IoT-coloured: {client_arcs:?}"
    );
    ensure!(legend["iot"] != legend["unknown"]);
    let state = c.find(Locator::Css("#map-state")).await?;
    ensure!(state.attr("data-arcs").await?.as_deref() == Some(all.len().to_string().as_str()));
    ensure!(
        state.attr("data-unplaced").await?.as_deref() == Some("0"),
        "every flow has a place"
    );
    let list = c.find(Locator::Css("#map-list")).await?.text().await?;
    ensure!(
        list.contains("maps.google.com") || list.contains("google.com"),
        "side list: {list}"
    );
    // The whole map with its legend in the viewport.
    c.execute("document.getElementById('flowmap').scrollIntoView()", vec![])
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screenshot(c, "map-zoomed-out").await?;

    // Zoomed in over Europe: country names (≥ 1.8×) and host names (≥ 2.5×) are drawn.
    c.execute("window.gatewatchMap.view(3.2, 54, 6)", vec![]).await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    ensure!(state.attr("data-zoom").await?.as_deref() == Some("3.20"));
    screenshot(c, "map-zoomed-in-labels").await?;
    c.execute("window.gatewatchMap.view(1, 40, 0)", vec![]).await?;

    // Each filter narrows the arcs to those that match it.
    let total = all.len();
    let source = all[0]["source"].as_str().unwrap_or_default().to_string();
    type Check = fn(&Value) -> bool;
    let checks: [(&str, &str, Check); 7] = [
        ("ip", "81.2.69.142", |a| {
            a["remote"] == "81.2.69.142" || a["local"] == "81.2.69.142"
        }),
        ("port", "53", |a| a["remote_port"] == 53 || a["local_port"] == 53),
        ("host", "google", |a| {
            [&a["remote_name"], &a["local_name"]]
                .iter()
                .any(|n| n.as_str().is_some_and(|n| n.contains("google")))
        }),
        ("iface", "no-such-if", |_| false),
        ("len", "500-2000", |a| {
            let (b, p) = (
                a["bytes_out"].as_u64().unwrap() + a["bytes_in"].as_u64().unwrap(),
                a["packets_out"].as_u64().unwrap() + a["packets_in"].as_u64().unwrap(),
            );
            (500..=2000).contains(&(b / p.max(1)))
        }),
        ("proto", "udp", |a| a["proto"] == 17),
        ("proto", "tcp", |a| a["proto"] == 6),
    ];
    let mut seen = BTreeMap::new();
    for (name, value, ok) in checks {
        set_filter(c, name, value).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = arcs(c).await?;
        ensure!(
            got.len() < total,
            "{name}={value} did not narrow ({} of {total})",
            got.len()
        );
        ensure!(
            got.iter().all(ok),
            "{name}={value} kept a flow that does not match"
        );
        let expected = all.iter().filter(|a| ok(a)).count();
        ensure!(
            got.len() == expected,
            "{name}={value}: {} arcs, {expected} flows match",
            got.len()
        );
        seen.insert(format!("{name}={value}"), got.len());
        if name == "ip" {
            screenshot(c, "map-filtered-ip").await?;
        }
        set_filter(c, name, "").await?;
    }
    set_filter(c, "iface", &source).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(
        arcs(c).await?.len() == total,
        "the capture's own interface keeps every arc"
    );
    println!("arcs: {total} total; filtered: {seen:?}");

    // Pause keeps the picture; resume goes on.
    c.find(Locator::Css("#map-pause")).await?.click().await?;
    ensure!(
        c.find(Locator::Css("#map-pause"))
            .await?
            .attr("aria-pressed")
            .await?
            .as_deref()
            == Some("true")
    );
    c.find(Locator::Css("#map-pause")).await?.click().await?;

    // Frame time with 2,000 synthetic arcs (reported, not asserted: benches/map_frames.sh
    // measures). `flush` rasterises the canvas inside the timing.
    c.goto(&format!("{base}/traffic/map?demo=2000")).await?;
    wait_arcs(c, 1900).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for flush in [false, true] {
        let m = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 window.gatewatchMap.measure(3000, { flush: arguments[0] }).then(done);",
                vec![Value::from(flush)],
            )
            .await?;
        println!(
            "frame time with 2000 arcs over 3 s{}: {m}",
            if flush { " (script + raster)" } else { " (script)" }
        );
        ensure!(m["frames"].as_u64().unwrap_or(0) > 0, "no frame drawn: {m}");
        ensure!(m["arcs"] == 2000, "{m}");
    }
    // The demo's devices are of every kind: the legend explains each colour drawn.
    let kinds: BTreeSet<String> = arcs(c)
        .await?
        .iter()
        .filter_map(|a| a["device"].as_str().map(String::from))
        .collect();
    ensure!(kinds.len() == 7, "demo kinds: {kinds:?}");
    c.execute("document.getElementById('flowmap').scrollIntoView()", vec![])
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screenshot(c, "map-demo-2000").await?;
    Ok(())
}
