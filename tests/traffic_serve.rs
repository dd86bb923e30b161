//! The traffic sensor inside the server: a real fixture replayed into the engine, then the
//! API, metrics and SSE read as a client would. The numbers must equal the fixture's expected
//! JSON (made with other tools, see ../shared/testdata/pcap/README.md), exactly for counts.

mod common;

use common::{Options, TestServer};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

fn fixture(name: &str) -> (PathBuf, Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/pcap");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected").join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    (dir.join("fixtures").join(name), expected)
}

async fn replay_server(path: &std::path::Path) -> TestServer {
    TestServer::start(Options {
        config_toml: format!(
            "[capture]\nenabled = true\nreplay = {:?}\nreplay_speed = \"fast\"\n[traffic]\nperiod = \"60s\"\n",
            path.display().to_string()
        ),
        ..Default::default()
    })
    .await
}

async fn get(s: &TestServer, token: &str, path: &str) -> Value {
    let resp = common::client()
        .get(format!("{}{path}", s.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// Waits until the replay finished and every window summary reached the store.
async fn wait_until_stored(s: &TestServer, token: &str) -> Value {
    for _ in 0..200 {
        let st = get(s, token, "/api/v1/traffic/status").await;
        let finished = st["sources"][0]["state"] == "finished";
        if finished && st["store_pending"] == 0 {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replay did not finish and reach the store in 10 s");
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test]
async fn replayed_fixtures_give_the_expected_counts_through_the_api() {
    for name in [
        "pktvisor__dns_udp_tcp_random.pcap",
        "zeek__web.pcap",
        "zeek__icmp_dot1q.pcap",
        "tcpdump__icmpv6.pcap",
    ] {
        let (path, want) = fixture(name);
        let s = replay_server(&path).await;
        let token = common::token_for(&s, "reader", "viewer");
        let status = wait_until_stored(&s, &token).await;
        assert_eq!(status["mode"], "replay");
        assert_eq!(n(&status["sources"][0]["packets"]), n(&want["packets"]), "{name}");
        assert_eq!(status["summaries_dropped"], 0, "{name}");

        let sum = get(&s, &token, "/api/v1/traffic/summary?from=0&to=4102444800000").await;
        let c = &sum["counters"];
        let checks = [
            ("packets", &want["packets"]),
            ("bytes", &want["bytes_wire"]),
            ("ipv4", &want["ip_version"]["ipv4"]),
            ("ipv6", &want["ip_version"]["ipv6"]),
            ("non_ip", &want["ip_version"]["non_ip"]),
            ("tcp", &want["protocol"]["tcp"]),
            ("udp", &want["protocol"]["udp"]),
            ("icmp", &want["protocol"]["icmp"]),
            ("other", &want["protocol"]["other"]),
            ("tcp_syn", &want["tcp_syn_packets"]),
            ("fragments", &want["fragments"]["ip_fragments"]),
            ("vlan_tagged", &want["vlan_tagged_packets"]),
            ("dns_queries", &want["dns"]["queries"]),
            ("dns_responses", &want["dns"]["responses"]),
            ("dns_noerror", &want["dns"]["rcode"]["NOERROR"]),
            ("dns_nxdomain", &want["dns"]["rcode"]["NXDOMAIN"]),
            ("dns_nodata", &want["dns"]["nodata"]),
        ];
        for (key, expected) in checks {
            assert_eq!(n(&c[key]), n(expected), "{name}: counters.{key}");
        }
        for (key, exp) in [("distinct_src_ips", "src_ips"), ("distinct_dst_ips", "dst_ips")] {
            let (got, want) = (n(&sum[key]) as f64, n(&want["cardinality"][exp]) as f64);
            assert!(
                (got - want).abs() <= (want * 0.02).max(0.0),
                "{name}: {key} {got} vs {want}"
            );
        }
        // Top lists: equal where the counts are distinct (ties may order differently).
        for (ours, theirs) in [
            ("src_ips_by_packets", "src_ips_by_packets"),
            ("dst_ips_by_bytes", "dst_ips_by_bytes"),
            ("dst_ports_by_packets", "dst_ports_by_packets"),
        ] {
            let got = sum["top"][ours].as_array().unwrap();
            let exp = want["top10"][theirs]["entries"].as_array().unwrap();
            let exp_values: Vec<u64> = exp.iter().map(|e| n(&e["value"])).collect();
            for (i, e) in exp.iter().enumerate() {
                let v = n(&e["value"]);
                if exp_values.iter().filter(|x| **x == v).count() == 1 {
                    assert_eq!(
                        got[i]["key"].as_str().map(str::to_string),
                        e["key"]
                            .as_str()
                            .map(str::to_string)
                            .or_else(|| Some(e["key"].to_string())),
                        "{name}: top.{ours}[{i}]"
                    );
                    assert_eq!(n(&got[i]["value"]), v, "{name}: top.{ours}[{i}]");
                }
            }
        }

        // Per host: the heaviest source's packets as the top list says.
        let top_src = &want["top10"]["src_ips_by_packets"]["entries"][0];
        let ip = top_src["key"].as_str().unwrap();
        let host = get(
            &s,
            &token,
            &format!("/api/v1/traffic/hosts/{ip}?from=0&to=4102444800000"),
        )
        .await;
        assert_eq!(
            n(&host["sent_packets"]),
            n(&top_src["value"]),
            "{name}: host {ip}"
        );
        for f in host["flows"].as_array().unwrap() {
            assert!(f["a"] == ip || f["b"] == ip, "{name}: flow without {ip}: {f}");
        }

        // Stored windows add up to the same total.
        let windows = get(&s, &token, "/api/v1/traffic/windows?from=0&to=4102444800000").await;
        let stored: u64 = windows["stored"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| n(&w["counters"]["packets"]))
            .sum();
        assert_eq!(stored, n(&want["packets"]), "{name}: stored windows");
        s.stop().await;
    }
}

#[tokio::test]
async fn flows_filters_metrics_and_the_live_stream() {
    let (path, want) = fixture("zeek__web.pcap");
    let s = replay_server(&path).await;
    let token = common::token_for(&s, "reader", "viewer");
    wait_until_stored(&s, &token).await;

    // Both flows of this capture are short TCP exchanges: all packets are in active flows.
    let flows = get(&s, &token, "/api/v1/traffic/flows?limit=1000").await;
    let flows = flows.as_array().unwrap();
    assert_eq!(flows.len() as u64, n(&want["flows"]["bidirectional_5tuple"]));
    let packets: u64 = flows
        .iter()
        .map(|f| n(&f["packets_ab"]) + n(&f["packets_ba"]))
        .sum();
    assert_eq!(packets, n(&want["packets"]));
    let heavy = n(&flows[0]["bytes_ab"]) + n(&flows[0]["bytes_ba"]);
    let filtered = get(
        &s,
        &token,
        &format!("/api/v1/traffic/flows?min_bytes={heavy}&proto=tcp"),
    )
    .await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert!(get(&s, &token, "/api/v1/traffic/flows?proto=udp")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    let bad = common::client()
        .get(format!("{}/api/v1/traffic/flows?port=http", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(common::api_error(bad, 400).await, "invalid");

    // Prometheus counters per interface.
    let metrics = common::client()
        .get(format!("{}/metrics", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!(
        "gatewatch_capture_packets_total{{interface=\"zeek__web.pcap\"}} {}",
        n(&want["packets"])
    );
    assert!(metrics.contains(&line), "{line} missing");
    let tcp = format!(
        "gatewatch_traffic_packets_by_protocol_total{{interface=\"zeek__web.pcap\",protocol=\"tcp\"}} {}",
        n(&want["protocol"]["tcp"])
    );
    assert!(metrics.contains(&tcp), "{tcp} missing");

    // The live stream sends an update with the page's fields.
    let mut resp = common::client()
        .get(format!("{}/events/traffic", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(
        text.contains("event: update") && text.contains("\"table:src_bytes\""),
        "{text}"
    );
    drop(resp);

    s.stop().await;
}

#[tokio::test]
async fn capture_off_is_said_plainly() {
    let s = TestServer::start(Options::default()).await;
    let token = common::token_for(&s, "reader", "viewer");
    let st = get(&s, &token, "/api/v1/traffic/status").await;
    assert_eq!(st["mode"], "disabled");
    assert!(st["sources"].as_array().unwrap().is_empty());
    s.stop().await;
}
