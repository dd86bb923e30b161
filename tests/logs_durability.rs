//! kill -9 during syslog ingest: a child process (this test binary, re-executed) runs the real
//! receivers on a loopback port and prints the flushed counter each time a batch commits; the
//! parent streams numbered lines over TCP, kills the child with SIGKILL mid-stream, reopens the
//! store and checks that every line acknowledged as flushed is there — as a gap-free prefix of
//! what was sent, so nothing acknowledged is missing and nothing is half-written.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use gatewatch::config::SyslogConfig;
use gatewatch::model::{LogQuery, Timestamp};
use gatewatch::store::{Store, StoreOptions};
use gatewatch::syslog::{self, LogsHub, SyslogDeps};

const CHILD_DIR_VAR: &str = "GATEWATCH_SYSLOG_CHILD_DIR";
const FLUSHED_BEFORE_KILL: u64 = 30_000;

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Not a test of its own: the child process of `kill_during_ingest_loses_nothing_flushed`.
#[test]
#[ignore = "child process of kill_during_ingest_loses_nothing_flushed"]
fn child_receiver() {
    let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Arc::new(Store::open(dir.as_ref(), StoreOptions::default()).unwrap());
        let cfg = SyslogConfig {
            udp_listen: None,
            tls_listen: None,
            tcp_listen: Some("127.0.0.1:0".parse().unwrap()),
            rate_limit_per_sender: 0,
            ..SyslogConfig::default()
        };
        let (listeners, status) = syslog::bind(&cfg, None).await;
        let hub = Arc::new(LogsHub::default());
        let port = status[0].result.as_ref().unwrap().port();
        println!("port {port}");
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(syslog::run(
            SyslogDeps {
                listeners,
                store,
                hub: hub.clone(),
                cfg,
                clock: Timestamp::now,
            },
            shutdown,
        ));
        let mut last = 0;
        loop {
            // Read after the commit that counted it: a printed number is acknowledged.
            let flushed = hub.counters.flushed.load(std::sync::atomic::Ordering::SeqCst);
            if flushed != last {
                println!("flushed {flushed}");
                std::io::stdout().flush().unwrap();
                last = flushed;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

#[test]
fn kill_during_ingest_loses_nothing_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_receiver",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines.next().expect("child printed its port").unwrap();
        // libtest prints "test child_receiver ... " on the same line.
        if let Some((_, p)) = line.split_once("port ") {
            break p.trim().parse().unwrap();
        }
    };

    // The sender streams numbered lines until the connection breaks.
    let sender = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut n = 0u64;
        loop {
            let mut buf = String::new();
            for _ in 0..200 {
                buf.push_str(&format!("<13>1 2026-11-23T00:00:00Z h app - - - line {n:09}\n"));
                n += 1;
            }
            if s.write_all(buf.as_bytes()).is_err() {
                return n;
            }
        }
    });

    let mut acknowledged = 0u64;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("flushed ") {
            acknowledged = n.parse().unwrap();
            if acknowledged >= FLUSHED_BEFORE_KILL {
                break;
            }
        }
    }
    // SIGKILL, while the sender is still streaming and batches are being written.
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGKILL) };
    let _ = child.0.wait();
    let sent = sender.join().unwrap();
    assert!(sent > acknowledged);

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut numbers = Vec::new();
    store
        .scan_logs(&LogQuery::default(), None, u64::MAX, |_, log| {
            let m = &log.event.syslog.message;
            numbers.push(m.strip_prefix("line ").unwrap().parse::<u64>().unwrap());
            true
        })
        .unwrap();
    numbers.reverse();
    let stored = numbers.len() as u64;
    assert!(
        stored >= acknowledged,
        "stored {stored} < acknowledged {acknowledged}"
    );
    assert_eq!(
        numbers,
        (0..stored).collect::<Vec<_>>(),
        "a gap-free prefix of what was sent"
    );
    // The index agrees with the events.
    let raw = gatewatch::model::RawLogQuery {
        host: Some("h".into()),
        ..Default::default()
    };
    let mut by_host = 0u64;
    store
        .scan_logs(
            &LogQuery::parse(&raw, Timestamp::now()).unwrap(),
            None,
            u64::MAX,
            |_, _| {
                by_host += 1;
                true
            },
        )
        .unwrap();
    assert_eq!(by_host, stored);
}
