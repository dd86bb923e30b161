//! Benchmark helper for benches/syslog.sh: fills a temporary store with N parsed firewall
//! lines (pfSense filterlog, random sources among 65,536 addresses) and times searches for
//! one address, one port and a CIDR. Prints one line per measurement.
//!
//! Usage: log_search_bench [N] (default 1,000,000)

use gatewatch::logs::{parse_bytes, LineFormat, ParseContext};
use gatewatch::model::{LogQuery, RawLogQuery, StoredLog, Timestamp, Transport};
use gatewatch::store::{Store, StoreOptions};
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
    let ctx = ParseContext::with_year(2026);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let t0 = 1_800_000_000_000u64;
    let fill = Instant::now();
    let mut batch = Vec::with_capacity(20_000);
    for i in 0..n {
        let src = format!(
            "10.{}.{}.{}",
            rng.gen_range(0..4),
            rng.gen_range(0..64),
            rng.gen_range(0..256)
        );
        let action = if rng.gen_bool(0.7) { "block" } else { "pass" };
        let line = format!(
            "<134>Jul  3 19:10:30 filterlog[72237]: 146,,,1535324496,igb1.12,match,{action},in,4,0x0,,63,12617,0,DF,6,tcp,60,{src},192.0.2.{},{},{},0,S,1891286705,,64240,,mss",
            rng.gen_range(1..255),
            rng.gen_range(1024..65535),
            [22, 53, 80, 443, 853, 3389][rng.gen_range(0..6)],
        );
        let event = parse_bytes(line.as_bytes(), &ctx, LineFormat::Auto).expect("parses");
        batch.push(StoredLog {
            received: Timestamp(t0 + i),
            sender: "192.0.2.1".parse().expect("ip"),
            transport: Transport::Udp,
            event,
        });
        if batch.len() == 20_000 {
            store.append_logs(&mut batch).expect("append");
            batch.clear();
        }
    }
    store.append_logs(&mut batch).expect("append");
    println!(
        "filled {n} events in {:.1} s ({} MiB of log tables)",
        fill.elapsed().as_secs_f64(),
        store.logs_bytes().unwrap_or(0) >> 20
    );

    let time = |label: &str, raw: RawLogQuery, limit: usize| {
        let q = LogQuery::parse(&raw, Timestamp(t0 + n)).expect("query");
        let mut times = Vec::new();
        let mut hits = 0;
        for _ in 0..21 {
            let start = Instant::now();
            let page = store.search_logs(&q, None, limit, 500_000).expect("search");
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            hits = page.entries.len();
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "search {label} over {n} events: median {:.2} ms, max {:.2} ms ({hits} rows, limit {limit})",
            times[10], times[20]
        );
    };
    time(
        "ip=10.1.2.3",
        RawLogQuery {
            ip: Some("10.1.2.3".into()),
            ..Default::default()
        },
        100,
    );
    time(
        "ip=10.1.2.3 (all matches)",
        RawLogQuery {
            ip: Some("10.1.2.3".into()),
            ..Default::default()
        },
        100_000,
    );
    time(
        "ip=10.2.0.0/16",
        RawLogQuery {
            ip: Some("10.2.0.0/16".into()),
            ..Default::default()
        },
        100,
    );
    time(
        "port=3389 action=block",
        RawLogQuery {
            port: Some("3389".into()),
            action: Some("block".into()),
            ..Default::default()
        },
        100,
    );
}
