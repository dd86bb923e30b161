//! Stored log lines: search semantics on real lines (shared/testdata/syslog/cases.jsonl,
//! expected matches computed from the rows' own expected fields, not from our parser), paging,
//! and retention by age and by size with an injected `now`.

use gatewatch::logs::{parse_bytes, LineFormat, ParseContext};
use gatewatch::model::{LogQuery, RawLogQuery, StoredLog, Timestamp, Transport};
use gatewatch::store::{Store, StoreOptions, TimeKey};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;

const T0: u64 = 1_800_000_000_000;
const MINUTE: u64 = 60_000;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    (dir, store)
}

struct Case {
    at: u64,
    row: Value,
}

fn raw_bytes(row: &Value) -> Vec<u8> {
    use base64::Engine;
    match (
        row.get("raw").and_then(Value::as_str),
        row.get("raw_b64").and_then(Value::as_str),
    ) {
        (Some(s), _) => s.as_bytes().to_vec(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        _ => panic!("case without raw"),
    }
}

/// Every case the parser accepts, stored one minute apart from T0.
fn load_cases(store: &Store) -> Vec<Case> {
    let text = std::fs::read_to_string("../shared/testdata/syslog/cases.jsonl").unwrap();
    let ctx = ParseContext::with_year(2026);
    let mut cases = Vec::new();
    let mut logs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let row: Value = serde_json::from_str(line).unwrap();
        let Ok(event) = parse_bytes(&raw_bytes(&row), &ctx, LineFormat::Auto) else {
            continue;
        };
        let at = T0 + i as u64 * MINUTE;
        logs.push(StoredLog {
            received: Timestamp(at),
            sender: format!("192.0.2.{}", i % 4 + 1).parse().unwrap(),
            transport: Transport::Udp,
            event,
        });
        cases.push(Case { at, row });
    }
    assert!(cases.len() > 150, "found {} cases", cases.len());
    store.append_logs(&mut logs).unwrap();
    cases
}

fn fw<'a>(c: &'a Case, key: &str) -> Option<&'a Value> {
    c.row
        .get("firewall")
        .filter(|f| !f.is_null())
        .and_then(|f| f.get(key))
        .filter(|v| !v.is_null())
}

fn fw_ip(c: &Case, key: &str) -> Option<IpAddr> {
    fw(c, key).and_then(Value::as_str).and_then(|s| s.parse().ok())
}

fn search(store: &Store, pairs: &[(&str, &str)]) -> BTreeSet<u64> {
    let raw: RawLogQuery = serde_urlencoded::from_str(&serde_urlencoded::to_string(pairs).unwrap()).unwrap();
    let q = LogQuery::parse(&raw, Timestamp(T0 + 1000 * MINUTE)).unwrap();
    let page = store.search_logs(&q, None, 10_000, u64::MAX).unwrap();
    assert!(page.next.is_none());
    let keys: Vec<u64> = page.entries.iter().map(|(k, _)| k.at.0).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted, "results are newest first");
    keys.into_iter().collect()
}

fn expect(cases: &[Case], f: impl Fn(&Case) -> bool) -> BTreeSet<u64> {
    cases.iter().filter(|c| f(c)).map(|c| c.at).collect()
}

#[test]
fn search_semantics_on_real_lines() {
    let (_dir, store) = open();
    let cases = load_cases(&store);
    let has_ip = |c: &Case, ip: IpAddr| {
        fw_ip(c, "src") == Some(ip)
            || fw_ip(c, "dst") == Some(ip)
            || c.row
                .get("dhcp")
                .and_then(|d| d.get("ip"))
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                == Some(ip)
    };

    // One address, v4 and v6.
    for ip in ["10.170.12.50", "fe80::208:9bff:fef3:652b"] {
        let want = expect(&cases, |c| has_ip(c, ip.parse().unwrap()));
        assert!(!want.is_empty(), "{ip}");
        assert_eq!(search(&store, &[("ip", ip)]), want, "ip={ip}");
    }
    // A CIDR.
    let net: ipnet::IpNet = "10.170.0.0/16".parse().unwrap();
    let want = expect(&cases, |c| {
        [fw_ip(c, "src"), fw_ip(c, "dst")]
            .into_iter()
            .flatten()
            .any(|a| net.contains(&a))
    });
    assert!(want.len() > 17);
    assert_eq!(search(&store, &[("ip", "10.170.0.0/16")]), want);

    // Port (either side).
    let port = |c: &Case, p: u64| {
        fw(c, "src_port").and_then(Value::as_u64) == Some(p)
            || fw(c, "dst_port").and_then(Value::as_u64) == Some(p)
    };
    assert_eq!(
        search(&store, &[("port", "853")]),
        expect(&cases, |c| port(c, 853))
    );
    assert_eq!(search(&store, &[("port", "53")]), expect(&cases, |c| port(c, 53)));

    // Action, and action within a time range.
    let action = |c: &Case, a: &str| fw(c, "action").and_then(Value::as_str) == Some(a);
    let blocks = expect(&cases, |c| action(c, "block"));
    assert!(blocks.len() > 30);
    assert_eq!(search(&store, &[("action", "block")]), blocks);
    assert_eq!(
        search(&store, &[("action", "pass")]),
        expect(&cases, |c| action(c, "pass"))
    );
    let (from, to) = (T0 + 20 * MINUTE, T0 + 120 * MINUTE);
    let fmt = |ms: u64| {
        humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
            .to_string()
    };
    assert_eq!(
        search(
            &store,
            &[("action", "block"), ("from", &fmt(from)), ("to", &fmt(to))]
        ),
        expect(&cases, |c| action(c, "block") && c.at >= from && c.at < to)
    );
    // Time range alone.
    assert_eq!(
        search(&store, &[("from", &fmt(from)), ("to", &fmt(to))]),
        expect(&cases, |c| c.at >= from && c.at < to)
    );

    // Interface.
    let iface = |c: &Case, i: &str| {
        ["interface", "in_interface", "out_interface"]
            .iter()
            .any(|k| fw(c, k).and_then(Value::as_str) == Some(i))
    };
    assert_eq!(
        search(&store, &[("interface", "eth0")]),
        expect(&cases, |c| iface(c, "eth0"))
    );

    // Free text: every word, case-insensitive, in the message, hostname or program.
    let text = |c: &Case, w: &str| {
        let e = &c.row["expected"];
        ["message", "hostname", "app_name"].iter().any(|k| {
            e.get(k)
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().contains(w))
        })
    };
    let want = expect(&cases, |c| text(c, "wscale") && text(c, "853"));
    assert!(!want.is_empty());
    assert_eq!(search(&store, &[("q", "WSCALE 853")]), want);

    // Combined: address and port and action.
    assert_eq!(
        search(
            &store,
            &[("ip", "10.170.12.50"), ("port", "853"), ("action", "block")]
        ),
        expect(&cases, |c| has_ip(c, "10.170.12.50".parse().unwrap())
            && port(c, 853)
            && action(c, "block"))
    );
    // Host: the sender address.
    let sender_1 = search(&store, &[("host", "192.0.2.1")]);
    assert_eq!(
        sender_1.len(),
        cases.iter().enumerate().filter(|(i, _)| i % 4 == 0).count()
    );
}

#[test]
fn paging_returns_everything_once() {
    let (_dir, store) = open();
    let cases = load_cases(&store);
    let q = LogQuery::default();
    let mut before: Option<TimeKey> = None;
    let mut seen = Vec::new();
    loop {
        let page = store.search_logs(&q, before, 7, u64::MAX).unwrap();
        seen.extend(page.entries.iter().map(|(k, _)| k.at.0));
        match page.next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    let mut want: Vec<u64> = cases.iter().map(|c| c.at).collect();
    want.reverse();
    assert_eq!(seen, want);
}

fn synthetic(i: u64, at: u64) -> StoredLog {
    let raw = format!(
        "<134>1 2026-11-23T10:00:00Z fw filterlog 1 - - 5,,,1000000103,igb0,match,block,in,4,0x0,,64,1,0,none,6,tcp,60,10.9.{}.{},192.0.2.10,40000,{},0,S,1,,64240,,mss",
        i / 250 % 250,
        i % 250,
        1000 + i % 100
    );
    let event = parse_bytes(raw.as_bytes(), &ParseContext::with_year(2026), LineFormat::Auto).unwrap();
    assert!(event.firewall.is_some());
    StoredLog {
        received: Timestamp(at),
        sender: "192.0.2.1".parse().unwrap(),
        transport: Transport::Tcp,
        event,
    }
}

fn index_entries(store: &Store) -> u64 {
    store.log_index_postings().unwrap()
}

#[test]
fn retention_by_age_removes_events_and_their_index_entries() {
    let (_dir, store) = open();
    let day = 86_400_000u64;
    let n = 2000u64;
    // One line every 7.2 minutes over 10 days.
    let mut logs: Vec<StoredLog> = (0..n).map(|i| synthetic(i, T0 + i * (10 * day / n))).collect();
    let terms_per_line = logs[0].index_terms().len() as u64;
    store.append_logs(&mut logs).unwrap();
    assert_eq!(index_entries(&store), n * terms_per_line);

    let now = Timestamp(T0 + 10 * day);
    let cutoff = now.saturating_sub(std::time::Duration::from_secs(7 * 86_400));
    let removed = store.prune_logs_before(cutoff, 37).unwrap();
    let kept = logs.iter().filter(|l| l.received >= cutoff).count() as u64;
    assert_eq!(removed, n - kept);
    assert_eq!(store.logs_count().unwrap(), kept);
    assert_eq!(
        index_entries(&store),
        kept * terms_per_line,
        "index entries went with their events"
    );
    // The oldest line's address is no longer found; a recent one is.
    let find = |ip: &str| {
        let raw = RawLogQuery {
            ip: Some(ip.into()),
            ..Default::default()
        };
        store
            .search_logs(&LogQuery::parse(&raw, now).unwrap(), None, 10, u64::MAX)
            .unwrap()
            .entries
            .len()
    };
    assert_eq!(find("10.9.0.0"), 0);
    assert_eq!(
        find(&format!("10.9.{}.{}", (n - 1) / 250 % 250, (n - 1) % 250)),
        1
    );
    // Pruning again removes nothing.
    assert_eq!(store.prune_logs_before(cutoff, 37).unwrap(), 0);
}

#[test]
fn retention_by_size_keeps_the_newest_under_the_cap() {
    let (_dir, store) = open();
    let n = 5000u64;
    let mut logs: Vec<StoredLog> = (0..n).map(|i| synthetic(i, T0 + i * 1000)).collect();
    store.append_logs(&mut logs).unwrap();
    let before = store.logs_bytes().unwrap();
    let cap = before / 3;
    let removed = store.prune_logs_to_size(cap, 250).unwrap();
    assert!(removed > 0);
    assert!(
        store.logs_bytes().unwrap() <= cap,
        "{} > {cap}",
        store.logs_bytes().unwrap()
    );
    let left = store.logs_count().unwrap();
    assert_eq!(left, n - removed);
    // What is left is the newest lines.
    let newest = store.latest_logs(left as usize + 1).unwrap();
    assert_eq!(newest.len() as u64, left);
    assert_eq!(newest.last().unwrap().0.at.0, T0 + removed * 1000);
}

#[test]
fn a_clock_that_steps_back_is_clamped_and_the_line_still_found() {
    let (_dir, store) = open();
    // Receive times far apart so the stored time's varint changes length when clamped.
    let mut first = vec![synthetic(1, T0)];
    store.append_logs(&mut first).unwrap();
    let mut earlier = vec![synthetic(2, 5), synthetic(3, T0 + 1)];
    store.append_logs(&mut earlier).unwrap();
    assert_eq!(
        earlier[0].received,
        Timestamp(T0),
        "clamped to the newest stored time"
    );
    assert_eq!(earlier[1].received, Timestamp(T0 + 1));
    let page = store.search_logs(&LogQuery::default(), None, 10, 1000).unwrap();
    let got: Vec<(TimeKey, StoredLog)> = page.entries;
    assert_eq!(got.len(), 3);
    // Newest first: the unclamped line, then the clamped one (same millisecond, next seq).
    assert_eq!(
        got[1].0,
        TimeKey {
            at: Timestamp(T0),
            seq: 1
        }
    );
    assert_eq!(
        got[1].1, earlier[0],
        "the clamped line decodes whole, with the key's time"
    );
    assert_eq!(got[0].1, earlier[1]);
    // Its index entries carry the clamped key: a search by its source finds it.
    let src = earlier[0].event.firewall.as_ref().unwrap().src.unwrap();
    let q = LogQuery::parse(
        &RawLogQuery {
            ip: Some(src.to_string()),
            ..Default::default()
        },
        Timestamp(T0 + 10),
    )
    .unwrap();
    let found = store.search_logs(&q, None, 10, 1000).unwrap().entries;
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].0,
        TimeKey {
            at: Timestamp(T0),
            seq: 1
        }
    );
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap()
        .to_rfc3339()
}

/// Index terms over lines committed in batches of many sizes (so a term's postings are
/// split over lists of every shape), searched with time windows that start and end inside
/// lists, paged: the same lines, newest first, as a filter over all lines finds.
#[test]
fn term_search_over_many_commits_matches_a_filter_over_the_lines() {
    let (_dir, store) = open();
    let mut all = Vec::new();
    let mut next = 0u64;
    for size in [1u64, 7, 128, 129, 300, 2, 433] {
        let mut logs: Vec<StoredLog> = (next..next + size).map(|j| synthetic(j, T0 + j * 1000)).collect();
        store.append_logs(&mut logs).unwrap();
        all.extend(logs);
        next += size;
    }
    let now = Timestamp(T0 + next * 1000 + 1);
    for (from, to) in [(0, next), (5, 6), (127, 400), (135, 136), (300, 1000), (700, 999)] {
        for (field, value) in [("host", "192.0.2.1"), ("port", "1042"), ("ip", "10.9.2.7")] {
            let mut raw = RawLogQuery {
                from: Some(rfc3339(T0 + from * 1000)),
                to: Some(rfc3339(T0 + to * 1000)),
                ..Default::default()
            };
            match field {
                "host" => raw.host = Some(value.into()),
                "port" => raw.port = Some(value.into()),
                _ => raw.ip = Some(value.into()),
            }
            let q = LogQuery::parse(&raw, now).unwrap();
            let mut got = Vec::new();
            let mut before = None;
            for page_no in 0.. {
                assert!(page_no <= all.len() / 25, "paging does not end");
                let page = store.search_logs(&q, before, 25, u64::MAX).unwrap();
                got.extend(page.entries.iter().map(|(k, _)| k.at.0));
                match page.next {
                    Some(n) => before = Some(n),
                    None => break,
                }
            }
            let want: Vec<u64> = all
                .iter()
                .rev()
                .filter(|l| (T0 + from * 1000..T0 + to * 1000).contains(&l.received.0))
                .filter(|l| {
                    let fw = l.event.firewall.as_ref().unwrap();
                    match field {
                        "host" => l.sender.to_string() == value,
                        "port" => fw.dst_port == Some(1042) || fw.src_port == Some(1042),
                        _ => fw.src.map(|a| a.to_string()).as_deref() == Some(value),
                    }
                })
                .map(|l| l.received.0)
                .collect();
            assert!(
                !want.is_empty() || field == "ip" || to - from < 100,
                "{field} {from}..{to}"
            );
            assert_eq!(got, want, "{field}={value} in lines {from}..{to}");
        }
    }
    // Counts per time bucket from the index alone agree with the lines.
    let term = gatewatch::model::IndexTerm::Action(gatewatch::model::FirewallAction::Block);
    let counts = store
        .count_term_by_time(&term, Timestamp(T0 + 50_000), 100_000, 9)
        .unwrap();
    let want: Vec<u64> = (0..9)
        .map(|b| {
            let lo = T0 + 50_000 + b * 100_000;
            all.iter()
                .filter(|l| (lo..lo + 100_000).contains(&l.received.0))
                .count() as u64
        })
        .collect();
    assert_eq!(counts, want);
}
