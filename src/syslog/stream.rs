//! TCP and TLS receivers: accept, check the sender against the allowlist, then frame the
//! byte stream (RFC 6587, octet counting and LF framing detected per frame) and parse each
//! frame. One task per connection; a bounded number of connections; a connection that
//! sends nothing for [`IDLE_TIMEOUT`] (or never finishes its TLS handshake) is closed.
//!
//! Must not: parse (it calls [`super::Ingest::parse_into`]) or write to the store.

use super::{Ingest, LogBatch};
use crate::logs::{Framer, FramerConfig, FramingError};
use crate::model::Transport;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Open connections per listener; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 512;
/// A connection silent this long is closed (senders reconnect when they have news).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Time to finish a TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const READ_CHUNK: usize = 256 * 1024;

/// Accepts until `shutdown`, then waits for open connections to hand in what they framed.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ingest: Ingest,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        // Reap finished connection tasks so the set does not grow.
        while conns.try_join_next().is_some() {}
        let (sock, peer) = match accepted {
            Ok(x) => x,
            // Out of descriptors and the like: wait a moment instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let sender = super::admission::canonical(peer.ip());
        let allowed = ingest
            .admission
            .lock()
            .map(|a| a.is_allowed(sender))
            .unwrap_or(false);
        if !allowed {
            ingest.hub.counters.not_allowed.fetch_add(1, Relaxed);
            continue;
        }
        let _ = sock.set_nodelay(true);
        let ingest = ingest.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let _permit = permit;
            let c = &ingest.hub.counters;
            c.connections.fetch_add(1, Relaxed);
            match tls {
                None => serve(sock, sender, Transport::Tcp, &ingest, &shutdown).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
                        Ok(Ok(stream)) => serve(stream, sender, Transport::Tls, &ingest, &shutdown).await,
                        _ => {
                            c.tls_failures.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
            c.connections.fetch_sub(1, Relaxed);
        });
    }
    while conns.join_next().await.is_some() {}
}

/// Reads one connection to its end (or idle timeout, or shutdown).
pub async fn serve<S: AsyncRead + Unpin>(
    mut stream: S,
    sender: IpAddr,
    transport: Transport,
    ingest: &Ingest,
    shutdown: &CancellationToken,
) {
    let c = &ingest.hub.counters;
    let mut framer = Framer::new(FramerConfig {
        max_frame_len: ingest.max_message_size,
        ..FramerConfig::stream()
    });
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut open = true;
    while open {
        let n = tokio::select! {
            _ = shutdown.cancelled() => 0,
            r = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut chunk)) => match r {
                Ok(Ok(n)) => n,
                // Idle, reset, or a TLS error: the connection is over.
                _ => 0,
            },
        };
        if n == 0 {
            framer.finish();
            open = false;
        } else {
            framer.push(&chunk[..n]);
        }
        let now = (ingest.clock)();
        let ctx = super::context_at(now);
        let mut batch = LogBatch::new(&ingest.hub);
        batch.encoded.reserve(n + n / 2, n / 128);
        let mut fatal = false;
        let mut received = 0u64;
        while let Some(frame) = framer.next_frame() {
            match frame {
                Ok(frame) => {
                    received += 1;
                    // (The sender passed the allowlist when it connected.)
                    if !ingest.unlimited {
                        let admitted = ingest.admission.lock().map(|mut a| a.take(sender, now.0, 1));
                        if !matches!(admitted, Ok(Ok(()))) {
                            c.rate_limited.fetch_add(1, Relaxed);
                            continue;
                        }
                    }
                    ingest.parse_into(
                        &mut batch,
                        frame.data,
                        frame.truncated,
                        sender,
                        transport,
                        now,
                        &ctx,
                    );
                }
                Err(e) => {
                    c.framing_errors.fetch_add(1, Relaxed);
                    if e == FramingError::LengthTooLong {
                        fatal = true;
                    }
                }
            }
        }
        c.received.fetch_add(received, Relaxed);
        if !ingest.enqueue(batch).await {
            return;
        }
        if fatal {
            return;
        }
    }
}
