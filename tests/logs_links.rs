//! Logs linked to the rest of gatewatch, through the real web server: the country facet of
//! blocked sources from a real MaxMind test database (../shared/testdata/geo, expected
//! countries read from the JSON it was built from), firewall lines linking to their
//! inventory host, the flows view and the source's history, and the host page showing the
//! host's firewall lines.

mod common;

use common::{setup_admin, token_for, Options, TestServer, PASSWORD, T0};
use gatewatch::logs::{parse_bytes, LineFormat, ParseContext};
use gatewatch::model::{StoredLog, Timestamp, Transport};
use ipnet::IpNet;
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;

fn geo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/geo")
}

/// The ISO country code the City test database's source data gives for `ip`.
fn expected_country(ip: IpAddr) -> String {
    let text = std::fs::read_to_string(geo_dir().join("GeoLite2-City-Test.json")).unwrap();
    let rows: Vec<serde_json::Map<String, Value>> = serde_json::from_str(&text).unwrap();
    for row in rows {
        for (net, v) in row {
            let net: IpNet = net.parse().unwrap();
            if net.contains(&ip) {
                return v["country"]["iso_code"].as_str().unwrap().to_string();
            }
        }
    }
    panic!("{ip} is not in the City test database");
}

/// A real pfSense block line (shared/testdata/syslog/cases.jsonl, c0001) with its source and
/// destination replaced.
fn block_line(src: &str, dst: &str, src_port: u16) -> String {
    format!(
        "<134>Jul  3 19:10:30 filterlog[72237]: 146,,,1535324496,igb1.12,match,block,in,4,0x0,,63,12617,0,DF,6,tcp,60,{src},{dst},{src_port},853,0,S,1891286705,,64240,,mss;sackOK;TS;nop;wscale"
    )
}

fn store_lines(server: &TestServer, lines: &[String]) {
    let mut logs: Vec<StoredLog> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| StoredLog {
            received: Timestamp(T0 - 60_000 + i as u64),
            sender: "192.168.1.1".parse().unwrap(),
            transport: Transport::Udp,
            event: parse_bytes(l.as_bytes(), &ParseContext::with_year(2026), LineFormat::Auto).unwrap(),
        })
        .collect();
    server.state.accounts.store().append_logs(&mut logs).unwrap();
}

/// The first lease of the dnsmasq fixture as an inventory host; returns (id, address).
fn seed_host(server: &TestServer) -> (u64, IpAddr) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/passive/dnsmasq.leases"
    ))
    .unwrap();
    let leases = gatewatch::discovery::passive::parse_dnsmasq_leases(&text, Timestamp(0));
    let lease = &leases.items[0];
    let obs = vec![gatewatch::inventory::sources::from_lease(lease)];
    server.state.discovery.observe_batch(obs, server.now()).unwrap();
    let host = server.state.discovery.host_by_ip(lease.ip).unwrap();
    (host.id, lease.ip)
}

async fn geo_server() -> TestServer {
    let db = geo_dir().join("GeoLite2-City-Test.mmdb");
    TestServer::start(Options {
        config_toml: format!("[geo]\ncity_db = {:?}\n", db.display().to_string()),
        ..Default::default()
    })
    .await
}

// Sources from the test database's source data: two networks in different countries,
// one private source (never counted by country) and one address the database lacks.
const SRC_A: &str = "81.2.69.142";
const SRC_B: &str = "175.16.199.1";
const SRC_LOCAL: &str = "10.170.12.50";
const SRC_UNKNOWN: &str = "198.51.100.7";

#[tokio::test]
async fn country_facet_counts_blocked_sources_from_the_geo_database() {
    let server = geo_server().await;
    let (a, b) = (
        expected_country(SRC_A.parse().unwrap()),
        expected_country(SRC_B.parse().unwrap()),
    );
    assert_ne!(a, b);
    let mut lines = vec![block_line(SRC_A, "1.1.1.1", 40000); 3];
    lines.push(block_line(SRC_B, "1.1.1.1", 40001));
    lines.push(block_line(SRC_LOCAL, "1.1.1.1", 40002));
    lines.push(block_line(SRC_UNKNOWN, "1.1.1.1", 40003));
    store_lines(&server, &lines);

    let token = token_for(&server, "api", "viewer");
    let stats: Value = common::api_json(
        &common::client(),
        format!("{}/api/v1/logs/stats", server.url),
        &token,
    )
    .await;
    let countries = stats["by_country"]
        .as_array()
        .expect("by_country with geo configured");
    let count_of = |iso: Option<&str>| {
        countries
            .iter()
            .find(|c| c["iso"].as_str() == iso)
            .map(|c| c["count"].as_u64().unwrap())
    };
    assert_eq!(count_of(Some(&a)), Some(3), "{countries:?}");
    assert_eq!(count_of(Some(&b)), Some(1), "{countries:?}");
    assert_eq!(
        count_of(None),
        Some(1),
        "the address the database lacks: {countries:?}"
    );
    assert_eq!(
        countries.len(),
        3,
        "the private source is not a country: {countries:?}"
    );
    assert_eq!(countries[0]["iso"], a.as_str(), "most blocked first");

    let c = setup_admin(&server, "admin", PASSWORD).await;
    let page = common::page_text(&c, format!("{}/logs", server.url)).await;
    assert!(page.contains("Blocked sources by country"), "{page}");
    assert!(page.contains(&format!("<span class=\"cc\">{a}</span>")), "{page}");
    server.stop().await;

    // Without a geo database there is no country facet, and the page says how to get one.
    let plain = TestServer::start(Options::default()).await;
    store_lines(&plain, &lines);
    let token = token_for(&plain, "api", "viewer");
    let stats: Value = common::api_json(
        &common::client(),
        format!("{}/api/v1/logs/stats", plain.url),
        &token,
    )
    .await;
    assert!(stats["by_country"].is_null(), "{stats}");
    let c = setup_admin(&plain, "admin", PASSWORD).await;
    let page = common::page_text(&c, format!("{}/logs", plain.url)).await;
    assert!(!page.contains("Blocked sources by country"));
    assert!(page.contains("geo.city_db"));
    plain.stop().await;
}

#[tokio::test]
async fn blocked_lines_link_to_host_flows_and_history_and_the_host_page_shows_them() {
    let server = TestServer::start(Options::default()).await;
    let (host_id, host_ip) = seed_host(&server);
    let other: IpAddr = "10.200.9.9".parse().unwrap();
    assert!(server.state.discovery.host_by_ip(other).is_none());
    store_lines(
        &server,
        &[
            block_line(SRC_A, &host_ip.to_string(), 51515),
            block_line(SRC_B, &other.to_string(), 52525),
        ],
    );

    // The API names the inventory host of each address.
    let token = token_for(&server, "api", "viewer");
    let found: Value = common::api_json(
        &common::client(),
        format!("{}/api/v1/logs/search?ip={SRC_A}", server.url),
        &token,
    )
    .await;
    let row = &found["entries"][0];
    assert_eq!(row["dst"], host_ip.to_string().as_str());
    assert_eq!(row["dst_host"]["id"], host_id, "{row}");
    assert!(row["src_host"].is_null(), "{row}");

    // The Logs page: the blocked line links to the host, to the flows of the source (and
    // its port) and to the source's history; the line to an unknown address has no host link.
    let c = setup_admin(&server, "admin", PASSWORD).await;
    let page = common::page_text(&c, format!("{}/logs", server.url)).await;
    let host_link = format!("href=\"/hosts/{host_id}\"");
    assert_eq!(page.matches(&host_link).count(), 1, "{page}");
    assert!(
        page.contains(&format!("href=\"/logs?ip={SRC_A}\"")),
        "history link: {page}"
    );
    assert!(
        page.contains(&format!("href=\"/traffic/flows?ip={SRC_A}&amp;port=51515\"")),
        "flows link: {page}"
    );
    assert!(page.contains(&format!("href=\"/traffic/flows?ip={host_ip}&amp;port=853\"")));
    assert!(page.contains(&format!("href=\"/logs?ip={SRC_B}\"")));
    assert_eq!(
        page.matches("href=\"/hosts/").count(),
        1,
        "only the inventory host links"
    );

    // The flows view the link points at accepts the filter.
    let flows = c
        .get(format!("{}/traffic/flows?ip={SRC_A}&port=51515", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(flows.status(), 200);

    // The host page lists the host's firewall line (and not the other one), with the link
    // to all its lines.
    let host = common::page_text(&c, format!("{}/hosts/{host_id}", server.url)).await;
    let card = host
        .split("Firewall events")
        .nth(1)
        .expect("firewall events card");
    let card = card.split("</section>").next().unwrap();
    assert!(card.contains(SRC_A), "{card}");
    assert!(card.contains("badge block"), "{card}");
    assert!(!card.contains(SRC_B), "{card}");
    assert!(card.contains(&format!("href=\"/logs?ip={host_ip}\"")), "{card}");
    server.stop().await;
}
