//! Capture sources: where packets come from. One trait, [`CaptureSource`], with a file
//! implementation for pcap and pcapng ([`FileSource`]) and a live libpcap one
//! ([`LiveSource`], run one thread per interface by [`live::threads`]); the machine's
//! interfaces ([`interfaces`]) and capture filters for files ([`BpfFilter`]).
//!
//! Owns reading records and their metadata (timestamp, wire length, link type). Must not
//! decode packets (that is `traffic::decode`) nor keep statistics beyond its own read
//! position.

mod bpf;
mod file;
pub mod interfaces;
pub mod live;
mod replay;
mod summarize;

pub use bpf::BpfFilter;
pub use file::{FileFormat, FileSource};
pub use live::{LiveError, LiveOptions, LiveSource};
pub use replay::ReplaySource;
pub use summarize::{summarize_files, summarize_files_filtered, FileSummary};

use std::path::PathBuf;

/// Nanoseconds since the Unix epoch, as stamped by the capture (not by our clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PacketTime(pub u64);

impl PacketTime {
    pub const NANOS_PER_SEC: u64 = 1_000_000_000;

    pub fn from_secs(secs: u64) -> Self {
        PacketTime(secs.saturating_mul(Self::NANOS_PER_SEC))
    }

    pub fn as_secs(self) -> u64 {
        self.0 / Self::NANOS_PER_SEC
    }

    /// Milliseconds, for the rest of the program's [`crate::model::Timestamp`].
    pub fn to_timestamp(self) -> crate::model::Timestamp {
        crate::model::Timestamp(self.0 / 1_000_000)
    }
}

/// A libpcap `LINKTYPE_*` value (the link-layer header type of a record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// OpenBSD/other raw IP aliases used by some writers.
    pub const RAW_ALT_12: LinkType = LinkType(12);
    pub const RAW_ALT_14: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured record. `data` is borrowed from the source until the next call.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    pub ts: PacketTime,
    /// Length on the wire (pcap `orig_len`).
    pub wire_len: u32,
    /// The captured bytes (may be shorter than `wire_len` when a snaplen cut them).
    pub data: &'a [u8],
    pub link_type: LinkType,
}

/// Why a source stopped or could not start. Every variant that concerns the file's
/// content carries the byte offset where the problem starts.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path} at byte offset {offset}: {source}")]
    Read {
        path: PathBuf,
        offset: u64,
        source: std::io::Error,
    },
    #[error("{path} is not a pcap or pcapng file (byte offset 0: {what})")]
    NotACapture { path: PathBuf, what: String },
    #[error(
        "{path}: the file ends inside a record at byte offset {offset} ({trailing} trailing bytes); \
         the records before it were read"
    )]
    TruncatedTail {
        path: PathBuf,
        offset: u64,
        trailing: u64,
    },
    #[error("{path}: corrupt {what} at byte offset {offset}; the records before it were read")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    /// A live capture failed while reading (e.g. its interface went away).
    #[error("capture on {iface} stopped: {detail}")]
    Live { iface: String, detail: String },
}

impl CaptureError {
    /// True when the data before the problem was read normally, so a summary of it is valid.
    pub fn keeps_summary(&self) -> bool {
        matches!(
            self,
            CaptureError::TruncatedTail { .. } | CaptureError::Corrupt { .. }
        )
    }
}

/// What a source counts about itself. Files count nothing; live captures report the
/// kernel's and the interface's drops from libpcap's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceStats {
    /// Packets the capture received (libpcap `ps_recv`), when the source knows.
    pub received: u64,
    /// Packets dropped because the capture buffer was full (`ps_drop`).
    pub dropped_kernel: u64,
    /// Packets dropped by the interface or its driver (`ps_ifdrop`).
    pub dropped_interface: u64,
}

/// Anything that yields packets: a file or a live interface.
pub trait CaptureSource {
    /// The next record. For a file, `Ok(None)` is the end. A live source returns `Ok(None)`
    /// when nothing is waiting, without waiting if its buffer just ran dry and otherwise
    /// after at most its poll interval (a few hundred milliseconds), so that its thread can
    /// look at its stop flag and advance windows by the clock; see
    /// [`CaptureSource::is_live`]. After an error the source is finished and returns
    /// `Ok(None)`.
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError>;

    /// Byte offset of the record returned last (before the first call: bytes read so far).
    /// Live sources return the bytes captured so far.
    fn position(&self) -> u64;

    /// True for live captures, where `Ok(None)` means "idle", not "end".
    fn is_live(&self) -> bool {
        false
    }

    /// Capture statistics (kernel drops for live sources).
    fn stats(&mut self) -> SourceStats {
        SourceStats::default()
    }
}
