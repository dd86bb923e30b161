//! Live capture with libpcap: [`LiveSource`] opens one interface with [`LiveOptions`] and
//! implements [`CaptureSource`]; [`threads`] runs one OS thread per interface and hands
//! packet batches to whoever owns the traffic engine.
//!
//! Owns the libpcap handle, its options, the wait for packets (non-blocking reads plus
//! `poll(2)` on the selectable descriptor: libpcap's blocking read on Linux does not return
//! on its timeout when no packet comes, so a stop flag would never be seen) and the
//! translation of libpcap's errors into messages that say what to do. Must not decode
//! packets nor keep traffic statistics (that is `traffic`).

pub mod threads;

use super::interfaces;
use super::{CaptureError, CaptureSource, LinkType, PacketTime, RawPacket, SourceStats};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// How an interface is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    /// Bytes kept of each packet. 65 535 holds the largest IP packet: smaller values cut
    /// GRO-merged TCP segments (DNS over TCP is reassembled from them) and big DNS answers.
    /// The kernel copies only what arrived, so a large snaplen costs no ring space with
    /// TPACKET_V3 (Linux) or BPF (FreeBSD); in immediate mode Linux libpcap uses fixed-size
    /// TPACKET_V2 frames, sized from the smaller of snaplen and the interface MTU.
    pub snaplen: u32,
    /// Put the interface in promiscuous mode. Off: a router sees its own traffic anyway.
    pub promiscuous: bool,
    /// Kernel capture buffer in bytes (the ring packets wait in until read).
    pub buffer_size: u32,
    /// Deliver each packet at once instead of per filled block (lower latency, more wake-ups).
    pub immediate_mode: bool,
    /// A libpcap filter expression run in the kernel, e.g. `not port 22`.
    pub bpf_filter: Option<String>,
    /// Longest wait in [`CaptureSource::next_packet`] before it returns `Ok(None)` (idle).
    pub poll_interval: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: 65_535,
            promiscuous: false,
            buffer_size: 4 << 20,
            immediate_mode: false,
            bpf_filter: None,
            poll_interval: Duration::from_millis(200),
        }
    }
}

/// Why an interface could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "cannot capture on {iface}: permission denied ({detail}). {}",
        permission_hint()
    )]
    PermissionDenied { iface: String, detail: String },
    #[error("no interface named {iface:?}; available: {}", list_or_none(.available))]
    NoSuchInterface { iface: String, available: Vec<String> },
    #[error("invalid capture filter {filter:?}: {detail}")]
    BadFilter { filter: String, detail: String },
    #[error("cannot capture on {iface}: {detail}")]
    Open { iface: String, detail: String },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none found".into()
    } else {
        names.join(", ")
    }
}

/// What a user without capture rights can do about it, for this OS.
pub fn permission_hint() -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/path/to/gatewatch".into());
    if cfg!(any(
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "macos"
    )) {
        format!(
            "Run gatewatch as root, or let its user read the BPF devices: add a devfs rule such \
             as `add path 'bpf*' mode 0660 group network` to /etc/devfs.rules (with \
             devfs_system_ruleset in rc.conf), restart devfs, and add the user to that group \
             ({exe})"
        )
    } else {
        format!(
            "Run gatewatch as root, or give the binary the capture capabilities: \
             setcap cap_net_raw,cap_net_admin=eip {exe}"
        )
    }
}

/// An open live capture on one interface.
pub struct LiveSource {
    iface: String,
    capture: pcap::Capture<pcap::Active>,
    fd: RawFd,
    link_type: LinkType,
    poll_interval: Duration,
    /// libpcap had nothing buffered at the last read: wait on the descriptor first.
    drained: bool,
    captured_bytes: u64,
    finished: bool,
}

impl LiveSource {
    /// Opens `iface` (an interface name, or `any` on Linux) and starts capturing.
    pub fn open(iface: &str, opts: &LiveOptions) -> Result<LiveSource, LiveError> {
        let open_err = |e: pcap::Error| classify_open_error(iface, e);
        let inactive = pcap::Capture::from_device(iface).map_err(open_err)?;
        // The libpcap read timeout bounds how long packets wait in a partly filled block
        // (TPACKET_V3) or buffer (BPF) before poll(2) reports them.
        let timeout_ms = opts
            .poll_interval
            .min(Duration::from_millis(100))
            .as_millis()
            .max(1);
        let capture = inactive
            .snaplen(i32::try_from(opts.snaplen).unwrap_or(i32::MAX))
            .promisc(opts.promiscuous)
            .buffer_size(i32::try_from(opts.buffer_size).unwrap_or(i32::MAX))
            .immediate_mode(opts.immediate_mode)
            .timeout(timeout_ms as i32)
            .open()
            .map_err(open_err)?;
        let mut capture = capture.setnonblock().map_err(open_err)?;
        if let Some(filter) = opts.bpf_filter.as_deref().filter(|f| !f.trim().is_empty()) {
            capture.filter(filter, true).map_err(|e| LiveError::BadFilter {
                filter: filter.to_string(),
                detail: pcap_detail(&e),
            })?;
        }
        let link_type = link_type_from_dlt(capture.get_datalink().0);
        let fd = capture.as_raw_fd();
        Ok(LiveSource {
            iface: iface.to_string(),
            capture,
            fd,
            link_type,
            poll_interval: opts.poll_interval,
            drained: false,
            captured_bytes: 0,
            finished: false,
        })
    }

    pub fn interface(&self) -> &str {
        &self.iface
    }

    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// Waits until the descriptor is readable or the poll interval passes. A signal that
    /// interrupts the wait counts as "nothing yet": the caller looks at its stop flag.
    fn wait_readable(&self) -> Result<bool, CaptureError> {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = self.poll_interval.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd, and its count is 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(self.read_error(format!("poll: {e}")));
        }
        // POLLERR/POLLHUP also count as readable: the read that follows reports why.
        Ok(rc > 0)
    }

    fn read_error(&self, detail: String) -> CaptureError {
        CaptureError::Live {
            iface: self.iface.clone(),
            detail,
        }
    }
}

impl CaptureSource for LiveSource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        if self.drained {
            if !self.wait_readable()? {
                return Ok(None);
            }
            self.drained = false;
        }
        // A read that finds nothing returns at once as idle and the next call waits: one
        // extra idle report per burst, and no borrow of the handle held across the wait.
        match self.capture.next_packet() {
            Ok(p) => {
                // time_t and suseconds_t are 32 bits on some targets the cross builds make.
                #[allow(clippy::useless_conversion)]
                let ts = timeval_nanos(i64::from(p.header.ts.tv_sec), i64::from(p.header.ts.tv_usec));
                self.captured_bytes += p.data.len() as u64;
                Ok(Some(RawPacket {
                    ts: PacketTime(ts),
                    wire_len: p.header.len,
                    data: p.data,
                    link_type: self.link_type,
                }))
            }
            Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => {
                self.drained = true;
                Ok(None)
            }
            Err(e) => {
                self.finished = true;
                let detail = pcap_detail(&e);
                Err(CaptureError::Live {
                    iface: self.iface.clone(),
                    detail,
                })
            }
        }
    }

    fn position(&self) -> u64 {
        self.captured_bytes
    }

    fn is_live(&self) -> bool {
        true
    }

    fn stats(&mut self) -> SourceStats {
        match self.capture.stats() {
            Ok(s) => SourceStats {
                received: u64::from(s.received),
                dropped_kernel: u64::from(s.dropped),
                dropped_interface: u64::from(s.if_dropped),
            },
            Err(_) => SourceStats::default(),
        }
    }
}

fn timeval_nanos(sec: i64, usec: i64) -> u64 {
    (sec.max(0) as u64)
        .saturating_mul(PacketTime::NANOS_PER_SEC)
        .saturating_add(usec.clamp(0, 999_999) as u64 * 1_000)
}

/// libpcap's text without the crate's "libpcap error: " prefix.
fn pcap_detail(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sorts libpcap's activation failures into what the user can act on. libpcap reports
/// `PCAP_ERROR_PERM_DENIED` and `PCAP_ERROR_NO_SUCH_DEVICE` through its error text only
/// (the crate keeps the text, not the code), so the text is matched.
fn classify_open_error(iface: &str, e: pcap::Error) -> LiveError {
    let detail = pcap_detail(&e);
    let lower = detail.to_ascii_lowercase();
    if lower.contains("permission")
        || lower.contains("not permitted")
        || lower.contains("cap_net_raw")
        || lower.contains("eacces")
    {
        return LiveError::PermissionDenied {
            iface: iface.to_string(),
            detail,
        };
    }
    let listed = interfaces::list_interfaces().unwrap_or_default();
    let known = listed.iter().any(|i| i.name == iface);
    if !known && (lower.contains("no such device") || lower.contains("doesn't exist") || !listed.is_empty()) {
        return LiveError::NoSuchInterface {
            iface: iface.to_string(),
            available: listed.into_iter().map(|i| i.name).collect(),
        };
    }
    LiveError::Open {
        iface: iface.to_string(),
        detail,
    }
}

/// libpcap's `DLT_*` (what a live handle reports) → the `LINKTYPE_*` the decoder speaks.
/// They differ only for raw IP (`DLT_RAW` is 12, or 14 on OpenBSD; `LINKTYPE_RAW` is 101).
pub fn link_type_from_dlt(dlt: i32) -> LinkType {
    match dlt {
        12 | 14 => LinkType::RAW,
        other => LinkType(other.max(0) as u32),
    }
}

/// The reverse, for compiling a filter for a file's link type with libpcap.
pub fn dlt_from_link_type(link: LinkType) -> i32 {
    match link {
        LinkType::RAW | LinkType::RAW_ALT_14 => 12,
        other => other.0 as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlt_and_linktype_map_raw_ip_both_ways() {
        assert_eq!(link_type_from_dlt(12), LinkType::RAW);
        assert_eq!(link_type_from_dlt(14), LinkType::RAW);
        assert_eq!(link_type_from_dlt(1), LinkType::ETHERNET);
        assert_eq!(link_type_from_dlt(113), LinkType::LINUX_SLL);
        assert_eq!(link_type_from_dlt(276), LinkType::LINUX_SLL2);
        assert_eq!(link_type_from_dlt(0), LinkType::NULL);
        assert_eq!(dlt_from_link_type(LinkType::RAW), 12);
        assert_eq!(dlt_from_link_type(LinkType::LOOP), 108);
    }

    #[test]
    fn a_source_can_move_to_its_capture_thread() {
        fn send<T: Send>() {}
        send::<LiveSource>();
    }

    #[test]
    fn timevals_become_nanoseconds() {
        assert_eq!(timeval_nanos(2, 500_000), 2_500_000_000);
        assert_eq!(timeval_nanos(-1, 5), 5_000);
    }

    #[test]
    fn permission_errors_say_what_to_do() {
        let e = classify_open_error(
            "eth0",
            pcap::Error::PcapError(
                "Attempt to create packet socket failed - CAP_NET_RAW may be required".into(),
            ),
        );
        let msg = e.to_string();
        assert!(matches!(e, LiveError::PermissionDenied { .. }), "{msg}");
        assert!(msg.contains("root"), "{msg}");
        assert!(
            msg.contains("setcap cap_net_raw,cap_net_admin=eip") || msg.contains("devfs"),
            "{msg}"
        );
    }
}
