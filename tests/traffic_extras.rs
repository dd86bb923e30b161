//! The traffic engine's analyses beyond the pcap oracle's schema, checked against other
//! tools' readings of the same real captures: direction against pktvisor's own asserted
//! in/out counts (host spec from its test), qname2/qname3, error qnames and DNS
//! transactions against tshark, geo tops against the MaxMind test databases' source JSON;
//! window merge and deep sampling against the engine's own unsampled, unsplit run of the
//! same file (exact counters must be equal). tshark is required under CI=true.

use gatewatch::capture::{CaptureSource, FileSource, LinkType, PacketTime, RawPacket};
use gatewatch::geo::{GeoDb, HomeLocation};
use gatewatch::traffic::direction::Direction;
use gatewatch::traffic::sketch::{hll_count, TopN};
use gatewatch::traffic::{report, Engine, TrafficConfig, Window};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata")
}

fn fixture(name: &str) -> PathBuf {
    testdata().join("pcap/fixtures").join(name)
}

fn one_window(cfg: TrafficConfig) -> TrafficConfig {
    TrafficConfig { period: None, ..cfg }
}

/// Feeds a file to one engine; `keep(index, packet)` may rewrite a packet's time, or drop
/// it by returning false.
fn run(engine: &mut Engine, path: &Path, mut keep: impl FnMut(usize, &mut PacketTime) -> bool) {
    let mut src = FileSource::open(path).unwrap();
    let mut i = 0;
    while let Ok(Some(mut pkt)) = src.next_packet() {
        if keep(i, &mut pkt.ts) {
            engine.ingest(&pkt);
        }
        i += 1;
    }
    assert!(i > 0, "{} has packets", path.display());
}

fn summarize(path: &Path, cfg: TrafficConfig) -> Window {
    let mut e = Engine::new(one_window(cfg));
    run(&mut e, path, |_, _| true);
    e.finish()
}

/// tshark `-T fields` rows (all occurrences, space-aggregated), or None (skip) when tshark
/// is absent outside CI.
fn tshark(file: &Path, filter: &str, fields: &[&str]) -> Option<Vec<Vec<String>>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-o", "tcp.reassemble_out_of_order:TRUE", "-r"])
        .arg(file);
    cmd.args([
        "-Y",
        filter,
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator= ",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    match cmd.output() {
        Ok(o) if o.status.success() => Some(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.split('\t').map(str::to_string).collect())
                .collect(),
        ),
        other => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tshark is needed under CI: {other:?}"
            );
            eprintln!("skipping: tshark not available ({other:?})");
            None
        }
    }
}

/// Compares a top list with exact counts: values equal; keys equal unless the 10th and
/// 11th counts tie (then the last keys depend on the implementation).
fn assert_top(what: &str, got: &TopN<String>, exact: &BTreeMap<String, u64>) {
    let mut want: Vec<(String, u64)> = exact.iter().map(|(k, v)| (k.clone(), *v)).collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let tie = want.len() > 10 && want[9].1 == want[10].1;
    want.truncate(10);
    let got = got.top(10);
    let values = |v: &[(String, u64)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
    assert_eq!(values(&got), values(&want), "{what} values");
    if tie {
        let cutoff = want[9].1;
        let above = |v: &[(String, u64)]| v.iter().filter(|x| x.1 > cutoff).cloned().collect::<Vec<_>>();
        assert_eq!(above(&got), above(&want), "{what} keys above the tie");
    } else {
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn direction_matches_pktvisors_asserted_in_out_counts() {
    let expected_dir = testdata().join("pcap/expected");
    let mut checked = 0;
    for entry in std::fs::read_dir(&expected_dir).unwrap() {
        let path = entry.unwrap().path();
        let exp: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(asserts) = exp.get("pktvisor_asserts").and_then(Value::as_array) else {
            continue;
        };
        // The host spec pktvisor's test used is quoted in the assert's note.
        let mut spec = None;
        let mut want: Vec<(Direction, u64)> = Vec::new();
        for a in asserts {
            let text = a["assert"].as_str().unwrap_or("");
            let note = a["note"].as_str().unwrap_or("");
            if let Some(i) = note.find("host_spec ") {
                let cidr: String = note[i + 10..]
                    .chars()
                    .take_while(|c| !matches!(c, ':' | ' ' | ','))
                    .collect();
                spec = Some(cidr.parse::<ipnet::IpNet>().unwrap());
            }
            let v = a["value"].as_u64().unwrap_or(0);
            if text.contains("total_in") {
                want.push((Direction::In, v));
            } else if text.contains("total_out") {
                want.push((Direction::Out, v));
            }
        }
        if want.is_empty() {
            continue;
        }
        let spec = spec.expect("the note names the host spec");
        let fx = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".json")
            .to_string();
        let w = summarize(
            &fixture(&fx),
            TrafficConfig {
                host_spec: vec![spec],
                ..Default::default()
            },
        );
        for (d, v) in want {
            assert_eq!(w.direction.packets(d), v, "{fx} {d:?}");
            checked += 1;
        }
        let all: u64 = Direction::ALL.iter().map(|d| w.direction.packets(*d)).sum();
        assert_eq!(all, w.ipv4 + w.ipv6, "{fx}: every IP packet has a direction");
    }
    assert!(checked >= 2, "found {checked} direction asserts");
}

#[test]
fn qname2_and_qname3_match_tshark() {
    let f = fixture("pktvisor__dns_udp_tcp_random.pcap");
    let Some(rows) = tshark(&f, "dns && (udp.port==53 || tcp.port==53)", &["dns.qry.name"]) else {
        return;
    };
    let (mut q2, mut q3) = (BTreeMap::new(), BTreeMap::new());
    let mut names = 0;
    for name in rows
        .iter()
        .flat_map(|r| r[0].split(' ').map(str::to_string).collect::<Vec<_>>())
    {
        if name.is_empty() {
            continue;
        }
        names += 1;
        let labels: Vec<&str> = name.split('.').collect();
        let n = labels.len();
        *q2.entry(labels[n.saturating_sub(2)..].join(".").to_lowercase())
            .or_insert(0u64) += 1;
        if n >= 3 {
            *q3.entry(labels[n - 3..].join(".").to_lowercase()).or_insert(0u64) += 1;
        }
    }
    let w = summarize(&f, TrafficConfig::default());
    assert_eq!(names, w.dns.messages, "tshark and we see the same messages");
    assert_top("qname2", &w.dns.top_qname2, &q2);
    assert_top("qname3", &w.dns.top_qname3, &q3);
}

/// Qnames of port-53 responses by (rcode, NODATA) according to tshark.
fn tshark_response_qnames(f: &Path) -> Option<BTreeMap<(u8, bool), BTreeMap<String, u64>>> {
    let port53 = "dns.flags.response==1 && (udp.port==53 || tcp.port==53)";
    let rows = tshark(
        f,
        port53,
        &["dns.qry.name", "dns.flags.rcode", "dns.count.answers"],
    )?;
    let mut by_rcode: BTreeMap<(u8, bool), BTreeMap<String, u64>> = BTreeMap::new();
    for r in &rows {
        // A frame may carry several TCP messages: one name, rcode and count for each.
        let names = r[0].split(' ');
        let rcodes = r[1].split(' ');
        let answers = r[2].split(' ');
        for ((name, rcode), answers) in names.zip(rcodes).zip(answers) {
            let rcode: u8 = rcode.parse().unwrap();
            let nodata = rcode == 0 && answers == "0";
            *by_rcode
                .entry((rcode, nodata))
                .or_default()
                .entry(name.to_lowercase())
                .or_insert(0) += 1;
        }
    }
    Some(by_rcode)
}

#[test]
fn error_and_nodata_qnames_match_tshark() {
    let empty = BTreeMap::new();
    let mut nonempty = 0;
    for fx in [
        "zeek__var-services-std-ports.pcap",
        "pktvisor__dns_udp_tcp_random.pcap",
    ] {
        let f = fixture(fx);
        let Some(by_rcode) = tshark_response_qnames(&f) else {
            return;
        };
        let w = summarize(&f, TrafficConfig::default());
        let d = &w.dns;
        for (what, top, key) in [
            ("NXDOMAIN", &d.top_nxdomain, (3, false)),
            ("SERVFAIL", &d.top_servfail, (2, false)),
            ("REFUSED", &d.top_refused, (5, false)),
            ("NODATA", &d.top_nodata, (0, true)),
        ] {
            let want = by_rcode.get(&key).unwrap_or(&empty);
            nonempty += usize::from(!want.is_empty());
            assert_top(&format!("{fx} {what}"), top, want);
        }
    }
    assert!(nonempty >= 2, "the fixtures have NXDOMAIN and NODATA answers");
}

#[test]
fn dns_transactions_and_latency_match_tshark() {
    let f = fixture("pktvisor__dns_udp_tcp_random.pcap");
    let filter = "dns.flags.response==1 && (udp.port==53 || tcp.port==53)";
    let Some(rows) = tshark(&f, filter, &["dns.time"]) else {
        return;
    };
    let mut us: Vec<u64> = rows
        .iter()
        .flat_map(|r| {
            r[0].split(' ')
                .filter_map(|t| t.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .map(|s| (s * 1e6).round() as u64)
        .collect();
    us.sort_unstable();
    assert!(us.len() > 1000);
    let w = summarize(
        &f,
        TrafficConfig {
            host_spec: vec!["192.168.0.0/24".parse().unwrap()],
            ..Default::default()
        },
    );
    let x = &w.dns_xact;
    assert_eq!(x.total(), us.len() as u64);
    // The capture's client is 192.168.0.189 asking 8.8.8.8: the router side is the client.
    assert_eq!(x.completed, [0, us.len() as u64, 0]);
    assert_eq!((x.timeouts, x.unmatched_responses), (0, 0));
    assert_eq!(x.slowest[0].latency_us, *us.last().unwrap());
    // KLL (k=200): the answer's rank is within 2 % of the asked rank.
    let q = &x.latency_us[1];
    for r in [0.5, 0.9, 0.99] {
        let got = q.quantile(r).unwrap();
        let at = |rr: f64| us[((rr.clamp(0.0, 1.0) * us.len() as f64) as usize).min(us.len() - 1)];
        assert!(
            at(r - 0.02) <= got && got <= at(r + 0.02),
            "p{r}: {got} not in [{}, {}]",
            at(r - 0.02),
            at(r + 0.02)
        );
    }
    let json = report::to_json(&w, &Default::default(), &[53]);
    assert_eq!(json["dns_transactions"]["completed"], us.len() as u64);
}

#[test]
fn merging_the_two_halves_of_a_file_equals_the_whole_file() {
    let f = fixture("pktvisor__dns_udp_tcp_random.pcap");
    let cfg = || {
        one_window(TrafficConfig {
            host_spec: vec!["192.168.0.0/24".parse().unwrap()],
            ..Default::default()
        })
    };
    let whole = summarize(&f, cfg());
    let split = (whole.packets / 2) as usize;
    let (mut a, mut b) = (Engine::new(cfg()), Engine::new(cfg()));
    run(&mut a, &f, |i, _| i < split);
    run(&mut b, &f, |i, _| i >= split);
    let mut merged = a.finish();
    merged.merge_from(&b.finish());
    let counters = |w: &Window| {
        vec![
            w.packets,
            w.bytes_wire,
            w.bytes_captured,
            w.ipv4,
            w.ipv6,
            w.tcp,
            w.udp,
            w.icmp(),
            w.other,
            w.l4_tcp,
            w.l4_udp,
            w.tcp_syn,
            w.tcp_synack,
            w.tcp_rst,
            w.dns.udp_messages,
            w.direction.packets(Direction::In),
            w.direction.packets(Direction::Out),
            w.direction.bytes(Direction::In),
            w.direction.bytes(Direction::Out),
            w.sizes_wire.count(),
        ]
    };
    assert_eq!(counters(&merged), counters(&whole));
    assert_eq!(merged.start, whole.start);
    assert_eq!(merged.end, whole.end);
    // A TCP DNS connection cut by the split loses at most its messages.
    assert!(merged.dns.tcp_messages <= whole.dns.tcp_messages);
    assert!(whole.dns.tcp_messages - merged.dns.tcp_messages <= 4);
    for (m, w) in [
        (hll_count(&merged.src_ips), hll_count(&whole.src_ips)),
        (hll_count(&merged.dst_ips), hll_count(&whole.dst_ips)),
        (hll_count(&merged.dns.qnames), hll_count(&whole.dns.qnames)),
    ] {
        assert!(
            (m as f64 - w as f64).abs() <= (0.02 * w as f64).max(0.0),
            "{m} vs {w}"
        );
    }
    assert_eq!(merged.top_src_bytes.top(10), whole.top_src_bytes.top(10));
    assert_eq!(merged.top_dport_packets.top(10), whole.top_dport_packets.top(10));
    for r in [0.5, 0.9, 0.99] {
        assert_eq!(
            merged.sizes_wire.quantile(r),
            whole.sizes_wire.quantile(r),
            "size p{r}"
        );
    }
    assert_eq!(
        merged.dns_xact.total() + merged.dns_xact.unmatched_responses,
        whole.dns_xact.total()
    );
}

#[test]
fn deep_sampling_at_a_high_rate_keeps_counters_exact_and_flows_whole() {
    let f = fixture("pktvisor__dns_udp_tcp_random.pcap");
    // Replayed at 5000 packets/s (one every 200 µs from t = 1000 s): 3.2 s of traffic.
    const START: u64 = 1_000_000_000_000;
    let replay = |i: usize, ts: &mut PacketTime| {
        *ts = PacketTime(START + i as u64 * 200_000);
        true
    };
    let cfg = |sample: Option<u64>| {
        one_window(TrafficConfig {
            deep_sample_above_pps: sample,
            ..Default::default()
        })
    };
    let (mut exact, mut sampled) = (Engine::new(cfg(None)), Engine::new(cfg(Some(1_000))));
    run(&mut exact, &f, replay);
    run(&mut sampled, &f, replay);
    let flows_exact = exact.flows().top_by_bytes(usize::MAX);
    let flows_sampled = sampled.flows().top_by_bytes(usize::MAX);
    let (we, ws) = (exact.finish(), sampled.finish());
    let plain = |w: &Window| {
        (
            w.packets,
            w.bytes_wire,
            w.tcp,
            w.udp,
            w.tcp_syn,
            hll_count(&w.src_ips),
            w.top_dst_bytes.top(10),
            w.sizes_wire.quantile(0.5),
        )
    };
    assert_eq!(plain(&ws), plain(&we), "plain counters are not sampled");
    assert_eq!(we.deep_skipped, 0);
    assert_eq!(ws.deep_packets + ws.deep_skipped, we.deep_packets);
    // After the first second (5000 packets/s seen), 1000/5000 of the flow hash space is kept.
    assert!((ws.deep_keep_min - 0.2).abs() < 0.01, "{}", ws.deep_keep_min);
    let share = ws.deep_packets as f64 / we.deep_packets as f64;
    let expected_share = (5000.0 + 0.2 * (we.deep_packets as f64 - 5000.0)) / we.deep_packets as f64;
    assert!(
        (share - expected_share).abs() < 0.08,
        "kept {share}, expected about {expected_share}"
    );
    assert!(ws.dns.messages < we.dns.messages && ws.dns.messages > 0);
    // Flows are in or out as a whole: a kept flow that started in the sampled part has
    // exactly the packets and bytes of the unsampled run; queries keep their responses.
    let sampled_from = PacketTime(START + 1_000_000_000);
    let mut whole = 0;
    for (key, st) in flows_sampled
        .iter()
        .filter(|(_, st)| st.first_seen >= sampled_from)
    {
        let full = flows_exact
            .iter()
            .find(|(k, _)| k == key)
            .expect("flow exists unsampled")
            .1;
        assert_eq!(
            (st.packets_ab, st.packets_ba, st.bytes_ab, st.bytes_ba),
            (full.packets_ab, full.packets_ba, full.bytes_ab, full.bytes_ba),
            "{key:?}"
        );
        whole += 1;
    }
    assert!(whole > 100, "{whole} sampled flows checked");
    assert!(flows_sampled.len() < flows_exact.len());
    assert_eq!(ws.dns_xact.unmatched_responses, 0);
    let json = report::to_json(&ws, &Default::default(), &[53]);
    assert_eq!(json["sampling"]["deep_skipped"], ws.deep_skipped);
}

#[test]
fn geo_tops_follow_the_maxmind_test_databases() {
    let geo_dir = testdata().join("geo");
    let source = |file: &str, net: &str| -> Value {
        let v: Vec<serde_json::Map<String, Value>> =
            serde_json::from_str(&std::fs::read_to_string(geo_dir.join(file)).unwrap()).unwrap();
        v.into_iter()
            .find_map(|m| m.get(net).cloned())
            .expect("network in the source JSON")
    };
    // Networks of the source data; addresses inside them with no more specific entry.
    let city_src = source("GeoLite2-City-Test.json", "2.125.160.216/29");
    let asn_src = source("GeoLite2-ASN-Test.json", "1.128.0.0/11");
    let db = GeoDb::open(
        Some(&geo_dir.join("GeoLite2-City-Test.mmdb")),
        Some(&geo_dir.join("GeoLite2-ASN-Test.mmdb")),
        HomeLocation::default(),
    )
    .unwrap();
    let mut e = Engine::new(one_window(TrafficConfig {
        host_spec: vec!["192.168.1.0/24".parse().unwrap()],
        geo: Some(Arc::new(db)),
        ..Default::default()
    }));
    let packet = |src: &str, dst: &str| -> Vec<u8> {
        let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let (IpAddr::V4(s), IpAddr::V4(d)) = (s, d) else {
            unreachable!()
        };
        let mut v = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        v.extend_from_slice(&s.octets());
        v.extend_from_slice(&d.octets());
        v.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
        v
    };
    let traffic = [
        (packet("2.125.160.217", "192.168.1.2"), 3, 100),
        (packet("192.168.1.2", "1.128.0.1"), 2, 1000),
        (packet("192.168.1.2", "192.168.1.3"), 5, 60),
    ];
    for (bytes, count, wire) in &traffic {
        for _ in 0..*count {
            e.ingest(&RawPacket {
                ts: PacketTime::from_secs(1),
                wire_len: *wire,
                data: bytes,
                link_type: LinkType::RAW,
            });
        }
    }
    let w = e.finish();
    let iso = city_src["country"]["iso_code"].as_str().unwrap();
    let city = format!("{}, {iso}", city_src["city"]["names"]["en"].as_str().unwrap());
    let asn = format!(
        "AS{} {}",
        asn_src["autonomous_system_number"],
        asn_src["autonomous_system_organization"].as_str().unwrap()
    );
    assert_eq!(w.geo.lookups, 5, "only the remote endpoints are looked up");
    let top = |t: &TopN<Arc<str>>| -> Vec<(String, u64)> {
        t.top(10).into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    };
    assert!(top(&w.geo.country_packets).contains(&(iso.to_string(), 3)));
    assert_eq!(top(&w.geo.city_bytes)[0], (city, 300));
    assert_eq!(top(&w.geo.asn_bytes), vec![(asn, 2000)]);
    let json = report::to_json(&w, &Default::default(), &[53]);
    assert_eq!(json["geo"]["top10_asns_by_packets"]["entries"][0]["value"], 2);
    assert_eq!(json["direction"]["internal"]["packets"], 5);
}
