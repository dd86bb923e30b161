//! The UDP receiver (RFC 5426): one message per datagram. On Linux the socket reports the
//! kernel's receive-queue overflows with every datagram (SO_RXQ_OVFL), so datagrams lost
//! before we could read them are counted, not silent.
//!
//! Must not: parse (it calls [`super::Ingest::parse_into`]) or write to the store.

use super::{Ingest, LogBatch};
use crate::model::Transport;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// Datagrams read per wake-up before the batch is queued.
const DATAGRAMS_PER_BATCH: usize = 512;

/// Binds `addr` with a receive buffer of `recv_buffer` bytes (the kernel may cap it) and
/// overflow reporting switched on where the OS has it.
pub fn bind(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_nonblocking(true)?;
    let _ = sock.set_recv_buffer_size(recv_buffer);
    enable_overflow_count(&sock);
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn enable_overflow_count(sock: &Socket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid fd and a pointer to a c_int of the given size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn enable_overflow_count(_sock: &Socket) {}

/// One datagram: its length, whether it was longer than the buffer, the sender, and the
/// kernel's cumulative overflow count if it came with one.
struct Datagram {
    len: usize,
    truncated: bool,
    from: Option<IpAddr>,
    overflows: Option<u32>,
}

#[cfg(unix)]
fn recv_one(sock: &UdpSocket, buf: &mut [u8]) -> std::io::Result<Datagram> {
    use std::os::fd::AsRawFd;
    // SAFETY: every pointer handed to recvmsg points into locals that outlive the call, with
    // their true lengths; the control buffer is u64-aligned as cmsg headers need.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, 0);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let from = socket2::SockAddr::new(addr, msg.msg_namelen)
            .as_socket()
            .map(|a| a.ip());
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let overflows = {
            let mut found = None;
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL {
                    found = Some(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>()));
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
            found
        };
        // No SO_RXQ_OVFL elsewhere (FreeBSD): losses are not counted per datagram.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let overflows = None;
        Ok(Datagram {
            len: n as usize,
            truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
            from,
            overflows,
        })
    }
}

/// Adds the growth of the kernel's cumulative drop count (it wraps at u32) to the counter.
fn note_drops(c: &super::SyslogCounters, last: &mut u32, now: u32) {
    let new = now.wrapping_sub(*last);
    if new > 0 && new < u32::MAX / 2 {
        c.udp_overflows.fetch_add(u64::from(new), Relaxed);
        *last = now;
    }
}

/// The socket's drop count (SO_MEMINFO's SK_MEMINFO_DROPS: the counter SO_RXQ_OVFL reports).
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc64"))
))]
fn socket_drops(sock: &UdpSocket) -> Option<u32> {
    use std::os::fd::AsRawFd;
    const SO_MEMINFO: libc::c_int = 55;
    let mut info = [0u32; 9];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: a valid fd and a buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize >= std::mem::size_of_val(&info)).then_some(info[libc::SK_MEMINFO_DROPS as usize])
}

#[cfg(not(all(
    target_os = "linux",
    not(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc64"))
)))]
fn socket_drops(_sock: &UdpSocket) -> Option<u32> {
    None
}

/// Receives until `shutdown`.
pub async fn run(sock: UdpSocket, ingest: Ingest, shutdown: CancellationToken) {
    let c = &ingest.hub.counters;
    // One byte over the limit tells a datagram of exactly the limit from a longer one.
    let mut buf = vec![0u8; ingest.max_message_size + 1];
    let mut last_overflows: u32 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = sock.readable() => if r.is_err() { return },
        }
        let now = (ingest.clock)();
        let ctx = super::context_at(now);
        let mut batch = LogBatch::new(&ingest.hub);
        for _ in 0..DATAGRAMS_PER_BATCH {
            let d = match sock.try_io(Interest::READABLE, || recv_one(&sock, &mut buf)) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // ICMP errors and the like: nothing to read, go on.
                Err(_) => continue,
            };
            if let Some(o) = d.overflows {
                note_drops(c, &mut last_overflows, o);
            }
            c.received.fetch_add(1, Relaxed);
            let Some(from) = d.from else { continue };
            let admitted = ingest.admission.lock().map(|mut a| a.admit(from, now.0));
            match admitted {
                Ok(Ok(())) => {}
                Ok(Err(super::admission::Refusal::NotAllowed)) => {
                    c.not_allowed.fetch_add(1, Relaxed);
                    continue;
                }
                _ => {
                    c.rate_limited.fetch_add(1, Relaxed);
                    continue;
                }
            }
            let truncated = d.truncated || d.len > ingest.max_message_size;
            let len = d.len.min(ingest.max_message_size);
            // Many senders end a datagram with a newline (or NUL) as if it were a stream.
            let data = buf[..len].trim_ascii_end();
            let data = data.strip_suffix(b"\0").unwrap_or(data);
            ingest.parse_into(&mut batch, data, truncated, from, Transport::Udp, now, &ctx);
        }
        // Drops after the last datagram read would otherwise wait for the next datagram's
        // SO_RXQ_OVFL; the socket's drop counter has them now.
        if let Some(o) = socket_drops(&sock) {
            note_drops(c, &mut last_overflows, o);
        }
        if !ingest.enqueue(batch).await {
            return;
        }
    }
}
