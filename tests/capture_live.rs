//! Live capture and capture filters, as a user meets them:
//! - `pcap -b FILTER` keeps exactly the packets tcpdump's BPF keeps on every fixture
//!   (expected counts from `expected/*.json`, `cross_check.tcpdump.bpf_counts`);
//! - a live capture with no traffic stops within a second of being asked (library and
//!   `gatewatch capture` under SIGTERM);
//! - UDP sent to 127.0.0.1 is counted exactly, with the sizes the test sent;
//! - without capture rights the error says what to do.
//!
//! The live tests need root (libpcap on `lo`, `setpriv`): they run when CI=true (and fail
//! if they cannot) and skip with a message elsewhere.

mod common;
use gatewatch::capture::live::threads::run_session;
use gatewatch::capture::{summarize_files_filtered, BpfFilter, CaptureSource, LiveOptions, LiveSource};
use gatewatch::traffic::{Engine, TrafficConfig};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A filter that never matches on loopback: an EtherType nobody uses here (IEEE local
/// experimental 0x88b5).
const NEVER: &str = "ether proto 0x88b5";

fn can_run_live() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let msg = "skipping: live capture tests need root (libpcap on lo)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}, and CI=true");
    }
    eprintln!("{msg}");
    false
}

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/pcap")
}

/// The tcpdump filter behind each key of `bpf_counts`.
fn bpf_expression(key: &str) -> Option<&'static str> {
    Some(match key {
        "ip" => "ip",
        "ip6" => "ip6",
        "tcp" => "tcp",
        "udp" => "udp",
        "icmp_or_icmp6" => "icmp or icmp6",
        "vlan" => "vlan",
        "port53" => "port 53",
        _ => return None,
    })
}

#[test]
fn file_filters_keep_what_tcpdump_keeps() {
    let dir = oracle_dir();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("expected"))
        .unwrap()
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap();
        let Some(counts) = expected
            .pointer("/cross_check/tcpdump/bpf_counts")
            .and_then(Value::as_object)
        else {
            continue;
        };
        let name = entry
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".json")
            .to_string();
        let fixture = dir.join("fixtures").join(&name);
        for (key, want) in counts {
            let Some(expr) = bpf_expression(key) else {
                continue;
            };
            let mut filter = BpfFilter::new(expr).unwrap();
            let cfg = TrafficConfig {
                period: None,
                ..Default::default()
            };
            let s = summarize_files_filtered(&[&fixture], cfg, Some(&mut filter), &mut |_, _, _| {});
            checked += 1;
            // null: tcpdump could not compile the filter for the file's link type.
            let Some(want) = want.as_u64() else {
                if filter.problems().is_empty() || filter.matched != 0 {
                    failures.push(format!(
                        "{name} -b {expr:?}: tcpdump cannot apply it, we kept {} without a warning",
                        filter.matched
                    ));
                }
                continue;
            };
            if filter.matched != want || s.window.packets != want {
                failures.push(format!(
                    "{name} -b {expr:?}: tcpdump keeps {want}, we kept {} and counted {}",
                    filter.matched, s.window.packets
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "found only {checked} filter counts in the expected files"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn pcap_command_reports_the_filter() {
    let fixture = oracle_dir().join("fixtures/pktvisor__dns_udp_tcp_random.pcap");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(oracle_dir().join("expected/pktvisor__dns_udp_tcp_random.pcap.json"))
            .unwrap(),
    )
    .unwrap();
    let want_udp = expected
        .pointer("/cross_check/tcpdump/bpf_counts/udp")
        .unwrap()
        .as_u64()
        .unwrap();
    let want_all = expected["packets"].as_u64().unwrap();
    let out = Command::new(common::gatewatch_bin())
        .args(["pcap", "--json", "-b", "udp"])
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["packets"].as_u64(), Some(want_udp));
    assert_eq!(v["protocol"]["udp"].as_u64(), Some(want_udp));
    assert_eq!(v["filter"]["matched"].as_u64(), Some(want_udp));
    assert_eq!(v["filter"]["rejected"].as_u64(), Some(want_all - want_udp));

    let bad = Command::new(common::gatewatch_bin())
        .args(["pcap", "-b", "udp port banana"])
        .arg(&fixture)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("banana"));
}

#[test]
fn live_source_returns_idle_and_its_thread_stops_within_a_second() {
    if !can_run_live() {
        return;
    }
    let opts = LiveOptions {
        bpf_filter: Some(NEVER.into()),
        ..Default::default()
    };
    let mut src = LiveSource::open("lo", &opts).expect("open lo");
    assert!(src.is_live());
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut idle = 0u32;
        while !flag.load(Ordering::Relaxed) {
            match src.next_packet() {
                Ok(None) => idle += 1,
                Ok(Some(p)) => panic!("the filter matches nothing, got {} bytes", p.data.len()),
                Err(e) => panic!("{e}"),
            }
        }
        let _ = done_tx.send(idle);
    });
    std::thread::sleep(Duration::from_millis(700));
    let asked = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let idle = done_rx
        .recv_timeout(Duration::from_secs(1))
        .expect("the capture thread did not stop within 1 s of being asked");
    t.join().unwrap();
    assert!(asked.elapsed() < Duration::from_secs(1));
    assert!(idle >= 2, "next_packet reported idle only {idle} times in 0.7 s");
}

#[test]
fn session_with_no_traffic_stops_within_a_second() {
    if !can_run_live() {
        return;
    }
    let opts = LiveOptions {
        bpf_filter: Some(NEVER.into()),
        ..Default::default()
    };
    let sources = vec![
        LiveSource::open("lo", &opts).unwrap(),
        LiveSource::open("lo", &opts).unwrap(),
    ];
    let mut engine = Engine::new(TrafficConfig {
        period: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    let start = Instant::now();
    let stop_at = start + Duration::from_millis(1500);
    let mut asked: Option<Instant> = None;
    let mut should_stop = || {
        let now = Instant::now();
        if now >= stop_at {
            asked.get_or_insert(now);
            return true;
        }
        false
    };
    let mut windows = 0;
    let reports = run_session(
        sources,
        &mut engine,
        Some(Duration::from_secs(1)),
        &mut should_stop,
        &mut |ev| {
            if let gatewatch::capture::live::threads::SessionEvent::WindowClosed(w) = ev {
                assert_eq!(w.packets, 0);
                windows += 1;
            }
        },
    )
    .unwrap();
    let asked = asked.expect("should_stop was asked");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "took {:?} to stop",
        asked.elapsed()
    );
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(r.status.packets, 0);
    }
    assert!(windows >= 1, "1 s windows must close by the clock while idle");
}

/// Starts `gatewatch capture ARGS` and waits for its "capturing on" line.
fn start_capture(args: &[&str]) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(common::gatewatch_bin())
        .arg("capture")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("capturing on"), "unexpected first line: {line:?}");
    (child, err)
}

fn sigterm(child: &Child) {
    // SAFETY: kill with a pid we spawned and a valid signal.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
}

fn wait_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("gatewatch capture did not exit within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn capture_command_stops_on_sigterm_and_prints_the_summary() {
    if !can_run_live() {
        return;
    }
    let (mut child, mut err) = start_capture(&["lo", "-b", NEVER, "--json"]);
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&child);
    let status = wait_within(&mut child, Duration::from_millis(1500));
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "exit {status:?}: {rest}");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let v: Value = serde_json::from_str(&out).expect("a JSON summary on stdout");
    assert_eq!(v["packets"].as_u64(), Some(0));
    assert_eq!(v["capture"]["interfaces"][0]["interface"], "lo");
    assert_eq!(v["capture"]["filter"], NEVER);
}

#[test]
fn udp_to_loopback_is_counted_exactly() {
    if !can_run_live() {
        return;
    }
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let filter = format!("udp dst port {port}");
    let (mut child, mut err) = start_capture(&["lo", "--json", "-b", &filter]);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Payload sizes 0..=299 bytes: 300 datagrams, wire sizes 42..=341 (Ethernet + IPv4 + UDP).
    let sent = 300u64;
    for size in 0..sent as usize {
        sender.send_to(&vec![0x5a; size], ("127.0.0.1", port)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    sigterm(&child);
    let status = wait_within(&mut child, Duration::from_millis(1500));
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "exit {status:?}: {rest}");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["packets"].as_u64(), Some(sent), "{out}");
    assert_eq!(v["protocol"]["udp"].as_u64(), Some(sent));
    let bytes: u64 = (0..sent).map(|s| 42 + s).sum();
    assert_eq!(v["bytes_wire"].as_u64(), Some(bytes));
    let top_port = &v["top10"]["dst_ports_by_packets"]["entries"][0];
    assert_eq!(top_port["key"].as_u64(), Some(u64::from(port)));
    assert_eq!(top_port["value"].as_u64(), Some(sent));
    let lo = &v["capture"]["interfaces"][0];
    assert_eq!(lo["packets"].as_u64(), Some(sent));
    assert_eq!(lo["dropped_kernel"].as_u64(), Some(0));
}

#[test]
fn without_capture_rights_the_error_says_what_to_do() {
    if !can_run_live() {
        return;
    }
    // nobody:nogroup, no supplementary groups, no capabilities.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(common::gatewatch_bin())
        .args(["capture", "lo", "--seconds", "1"])
        .output()
        .expect("setpriv (util-linux) runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(
        err.contains("run gatewatch as root") || err.contains("Run gatewatch as root"),
        "{err}"
    );
    assert!(err.contains("setcap cap_net_raw,cap_net_admin=eip"), "{err}");
    assert!(
        err.contains(&*common::gatewatch_bin().to_string_lossy()),
        "the hint names the binary: {err}"
    );
}

#[test]
fn unknown_interfaces_list_the_available_ones() {
    let out = Command::new(common::gatewatch_bin())
        .args(["capture", "gwlive-nosuch0", "--seconds", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no interface named \"gwlive-nosuch0\""), "{err}");
    let lo = gatewatch::capture::interfaces::list_interfaces()
        .unwrap()
        .into_iter()
        .find(|i| i.loopback)
        .unwrap();
    assert!(err.contains(&lo.name), "the list names {}: {err}", lo.name);
}

#[test]
fn windows_printed_with_a_period_add_up_to_what_was_sent() {
    if !can_run_live() {
        return;
    }
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let filter = format!("udp dst port {port}");
    let (mut child, mut err) = start_capture(&["lo", "--json", "--period", "1", "-b", &filter]);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Two bursts 1.2 s apart: they fall into different 1 s windows.
    for burst in [40usize, 60] {
        for _ in 0..burst {
            sender.send_to(b"gatewatch", ("127.0.0.1", port)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1200));
    }
    sigterm(&child);
    let status = wait_within(&mut child, Duration::from_millis(1500));
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "exit {status:?}: {rest}");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let windows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(windows.len() >= 3, "two closed windows and the last one: {out}");
    let total: u64 = windows.iter().map(|w| w["packets"].as_u64().unwrap()).sum();
    assert_eq!(total, 100);
    // Bursts 1.2 s apart never share a 1 s window (a burst may straddle a boundary).
    assert!(
        windows.iter().all(|w| w["packets"].as_u64().unwrap() <= 60),
        "{out}"
    );
    let last = windows.last().unwrap();
    assert_eq!(last["capture"]["interfaces"][0]["packets"].as_u64(), Some(100));
    assert!(windows[..windows.len() - 1]
        .iter()
        .all(|w| w.get("capture").is_none()));
}
