//! The real syslog receivers on loopback: 100,000 random RFC 5424 messages over TCP (both
//! framings) and 100,000 over UDP; TLS; and hostile input (oversize, garbage, half frames,
//! slowloris) that must never take the receiver down.

mod common;

use common::{setup_admin, wait_flushed, Options, SyslogReceivers, TestServer, PASSWORD};
use gatewatch::config::SyslogConfig;
use gatewatch::model::{LogQuery, RawLogQuery, Timestamp, Transport};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const TCP_MESSAGES: u64 = 100_000;
const UDP_MESSAGES: u64 = 100_000;
const HOSTS: u64 = 17;

fn unlimited() -> SyslogConfig {
    SyslogConfig {
        rate_limit_per_sender: 0,
        ..SyslogConfig::default()
    }
}

/// A random RFC 5424 message whose text carries `seq-<n>`.
fn message(n: u64, rng: &mut impl Rng) -> String {
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let body: Vec<&str> = (0..rng.gen_range(1..12))
        .map(|_| words[rng.gen_range(0..words.len())])
        .collect();
    format!(
        "<{}>1 2026-11-23T{:02}:{:02}:{:02}.{:03}Z host{} app{} {} ID{} [ex@32473 seq=\"{n}\" r=\"{}\"] seq-{n:07} {}",
        rng.gen_range(0..192),
        rng.gen_range(0..24),
        rng.gen_range(0..60),
        rng.gen_range(0..60),
        rng.gen_range(0..1000),
        n % HOSTS,
        rng.gen_range(0..5),
        rng.gen_range(1..99999),
        rng.gen_range(0..50),
        rng.gen::<u32>(),
        body.join(" ")
    )
}

fn seq_of(message: &str) -> Option<u64> {
    let i = message.find("seq-")?;
    message.get(i + 4..i + 11)?.parse().ok()
}

async fn metric(c: &reqwest::Client, server: &TestServer, name: &str) -> f64 {
    let text = common::page_text(&c, format!("{}/metrics", server.url)).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tcp_message_is_stored_and_udp_losses_are_counted() {
    let server = TestServer::start(Options::default()).await;
    let admin = setup_admin(&server, "admin", PASSWORD).await;
    let rx = SyslogReceivers::start(&server, unlimited()).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);

    // TCP: half octet-counted, half LF-framed, on two concurrent connections.
    let half = TCP_MESSAGES / 2;
    let mut counted = Vec::new();
    let mut lines = Vec::new();
    for n in 0..TCP_MESSAGES {
        let m = message(n, &mut rng);
        if n < half {
            counted.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
        } else {
            lines.extend_from_slice(m.as_bytes());
            lines.push(b'\n');
        }
    }
    let send = |addr, bytes: Vec<u8>| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        for chunk in bytes.chunks(16 * 1024) {
            s.write_all(chunk).await.unwrap();
        }
        s.shutdown().await.unwrap();
    };
    tokio::join!(send(rx.tcp, counted), send(rx.tcp, lines));
    wait_flushed(&server, TCP_MESSAGES, 300).await;

    // UDP: as fast as one socket sends.
    let udp_addr = rx.udp;
    let datagrams: Vec<String> = (TCP_MESSAGES..TCP_MESSAGES + UDP_MESSAGES)
        .map(|n| message(n, &mut rng))
        .collect();
    tokio::task::spawn_blocking(move || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for d in &datagrams {
            s.send_to(d.as_bytes(), udp_addr).unwrap();
        }
    })
    .await
    .unwrap();
    // Wait until the receiver has read everything the kernel kept and it is committed.
    let c = &server.state.logs.counters;
    let mut last = (u64::MAX, u64::MAX);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let now = (
            c.received.load(Ordering::SeqCst),
            c.flushed.load(Ordering::SeqCst),
        );
        if now == last && now.1 == c.parsed.load(Ordering::SeqCst) {
            break;
        }
        assert!(Instant::now() < deadline, "receiver never settled");
        last = now;
    }
    rx.stop().await;

    // Every stored line, by transport and sequence number.
    let store = server.state.accounts.store().clone();
    let mut seen: HashMap<Transport, Vec<u64>> = HashMap::new();
    store
        .scan_logs(&LogQuery::default(), None, u64::MAX, |_, log| {
            let n = seq_of(&log.event.syslog.message).expect("stored message has its seq");
            seen.entry(log.transport).or_default().push(n);
            true
        })
        .unwrap();
    let mut tcp = seen.remove(&Transport::Tcp).unwrap_or_default();
    tcp.sort_unstable();
    assert_eq!(
        tcp,
        (0..TCP_MESSAGES).collect::<Vec<_>>(),
        "every TCP message stored exactly once"
    );
    let mut udp = seen.remove(&Transport::Udp).unwrap_or_default();
    udp.sort_unstable();
    udp.dedup();
    let losses = c.udp_overflows.load(Ordering::SeqCst);
    assert_eq!(
        udp.len() as u64 + losses,
        UDP_MESSAGES,
        "stored {} + counted losses {losses}",
        udp.len()
    );
    assert!(udp
        .iter()
        .all(|n| (TCP_MESSAGES..TCP_MESSAGES + UDP_MESSAGES).contains(n)));
    assert_eq!(c.rejected.load(Ordering::SeqCst), 0);

    // Losses and stored lines are visible in /metrics.
    assert_eq!(
        metric(&admin, &server, "gatewatch_syslog_udp_overflows_total").await as u64,
        losses
    );
    assert_eq!(
        metric(&admin, &server, "gatewatch_syslog_flushed_total").await as u64,
        TCP_MESSAGES + udp.len() as u64
    );

    // Searchable: by host (index), by free text, through the API.
    let by_host = |h: u64| {
        let raw = RawLogQuery {
            host: Some(format!("host{h}")),
            ..Default::default()
        };
        let q = LogQuery::parse(&raw, Timestamp::now()).unwrap();
        let mut n = 0u64;
        store
            .scan_logs(&q, None, u64::MAX, |_, _| {
                n += 1;
                true
            })
            .unwrap();
        n
    };
    let stored_on_host3 = tcp.iter().chain(&udp).filter(|n| *n % HOSTS == 3).count() as u64;
    assert_eq!(by_host(3), stored_on_host3);
    let body: serde_json::Value = admin
        .get(format!("{}/api/v1/logs/search?q=seq-0012345", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{body}");
    assert!(entries[0]["message"].as_str().unwrap().contains("seq-0012345"));
    assert_eq!(entries[0]["host"], format!("host{}", 12345 % HOSTS));
    server.stop().await;
}

/// A client config trusting the test server's self-signed certificate.
fn tls_client(server: &TestServer) -> tokio_rustls::TlsConnector {
    let pem = std::fs::read(server.dir.path().join("tls-cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_receiver_takes_octet_counted_frames() {
    let server = TestServer::start(Options::default()).await;
    let rx = SyslogReceivers::start(&server, unlimited()).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5425);
    let tcp = tokio::net::TcpStream::connect(rx.tls).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = tls_client(&server).connect(name, tcp).await.unwrap();
    for n in 0..500 {
        let m = message(n, &mut rng);
        s.write_all(format!("{} {m}", m.len()).as_bytes()).await.unwrap();
    }
    s.shutdown().await.unwrap();
    wait_flushed(&server, 500, 60).await;
    rx.stop().await;
    let store = server.state.accounts.store();
    let page = store
        .search_logs(&LogQuery::default(), None, 1000, u64::MAX)
        .unwrap();
    assert_eq!(page.entries.len(), 500);
    assert!(page.entries.iter().all(|(_, l)| l.transport == Transport::Tls));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_never_takes_the_receiver_down() {
    let server = TestServer::start(Options::default()).await;
    let cfg = SyslogConfig {
        max_message_size: 4096,
        ..unlimited()
    };
    let rx = SyslogReceivers::start(&server, cfg).await;
    let c = &server.state.logs.counters;
    let mut rng = rand::rngs::StdRng::seed_from_u64(666);

    // Slowloris: a connection that dribbles one byte at a time and never finishes a frame.
    let slow_addr = rx.tcp;
    let slow = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(slow_addr).await.unwrap();
        for b in b"<13>1 2026-11-23T00:00:00Z slow loris - - - never ends"
            .iter()
            .cycle()
            .take(60)
        {
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        s
    });

    let hostile: Vec<Vec<u8>> = vec![
        // Oversize LF frame (100 KiB) followed by a good one.
        [vec![b'x'; 100 * 1024], b"\n<13>after oversize\n".to_vec()].concat(),
        // Oversize octet-counted frame.
        [
            format!("{} ", 50_000).into_bytes(),
            vec![b'y'; 50_000],
            b"<13>after counted\n".to_vec(),
        ]
        .concat(),
        // Binary garbage, NULs included.
        (0..20_000).map(|_| rng.gen::<u8>()).collect(),
        // An octet count that cannot be real.
        b"99999999999999 <13>nope".to_vec(),
        // Half a frame, then the connection ends.
        b"300 <13>1 2026-11-23T00:00:00Z half".to_vec(),
        // Only digits and spaces.
        b"12 34 56 78 9".repeat(1000),
        // Invalid UTF-8 inside a valid frame.
        b"<13>1 2026-11-23T00:00:00Z h a - - - \xff\xfe\xfd bytes\n".to_vec(),
    ];
    for bytes in &hostile {
        let mut s = tokio::net::TcpStream::connect(rx.tcp).await.unwrap();
        let _ = s.write_all(bytes).await;
        let _ = s.shutdown().await;
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in [
        vec![],
        vec![0u8; 65_000],
        (0..1500).map(|_| rng.gen::<u8>()).collect(),
        b"\n\n\0".to_vec(),
    ] {
        udp.send_to(&d, rx.udp).unwrap();
    }

    // The receiver still works for a well-behaved sender on both transports.
    let mut good = tokio::net::TcpStream::connect(rx.tcp).await.unwrap();
    good.write_all(b"<13>1 2026-11-23T00:00:00Z good app - - - still alive over tcp\n")
        .await
        .unwrap();
    good.shutdown().await.unwrap();
    udp.send_to(
        b"<13>1 2026-11-23T00:00:00Z good app - - - still alive over udp",
        rx.udp,
    )
    .unwrap();
    let find = |text: &str| {
        let raw = RawLogQuery {
            q: Some(text.into()),
            ..Default::default()
        };
        let q = LogQuery::parse(&raw, Timestamp::now()).unwrap();
        server
            .state
            .accounts
            .store()
            .search_logs(&q, None, 10, u64::MAX)
            .unwrap()
            .entries
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while find("still alive over").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the receiver stopped storing good lines"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        find("after oversize").len(),
        1,
        "the stream resynchronised after an oversize frame"
    );
    let truncated = find("yyyy");
    assert_eq!(truncated.len(), 1);
    assert!(truncated[0].1.event.truncated);
    assert!(truncated[0].1.event.syslog.message.len() <= 4096);
    assert!(
        c.truncated.load(Ordering::SeqCst) >= 3,
        "TCP oversize ×2 and the big datagram"
    );
    assert!(
        c.framing_errors.load(Ordering::SeqCst) >= 2,
        "impossible count and the half frame"
    );
    let bad_utf8 = find("bytes");
    assert!(bad_utf8.iter().any(|(_, l)| l.event.syslog.message_b64.is_some()));

    // The slow connection is still open and harmless; shutdown ends it.
    let slow = slow.await.unwrap();
    rx.stop().await;
    drop(slow);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_outside_the_allowlist_and_over_the_rate_are_counted_not_stored() {
    let server = TestServer::start(Options::default()).await;
    let cfg = SyslogConfig {
        allowed_senders: vec!["10.0.0.0/8".parse().unwrap()],
        ..unlimited()
    };
    let rx = SyslogReceivers::start(&server, cfg).await;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>not allowed", rx.udp).unwrap();
    let mut s = tokio::net::TcpStream::connect(rx.tcp).await.unwrap();
    let _ = s.write_all(b"<13>not allowed either\n").await;
    let c = &server.state.logs.counters;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.not_allowed.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "refusals not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rx.stop().await;
    assert_eq!(server.state.accounts.store().logs_count().unwrap(), 0);

    // Rate limit: 50 per second, 500 sent at once over TCP.
    let rx = SyslogReceivers::start(
        &server,
        SyslogConfig {
            rate_limit_per_sender: 50,
            ..SyslogConfig::default()
        },
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(rx.tcp).await.unwrap();
    let burst: String = (0..500).map(|i| format!("<13>burst {i}\n")).collect();
    s.write_all(burst.as_bytes()).await.unwrap();
    s.shutdown().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.received.load(Ordering::SeqCst) < 500 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rx.stop().await;
    let stored = server.state.accounts.store().logs_count().unwrap();
    let limited = c.rate_limited.load(Ordering::SeqCst);
    assert!((50..=60).contains(&stored), "stored {stored}");
    assert_eq!(stored + limited, 500);
    server.stop().await;
}
