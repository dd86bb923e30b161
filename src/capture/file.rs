//! pcap and pcapng files, read as a stream with `pcap-parser` (pure Rust, zero-copy blocks,
//! bounded buffer). A record cut off by the end of the file ends the stream with
//! [`CaptureError::TruncatedTail`]; everything before it has been returned.

use super::{CaptureError, CaptureSource, LinkType, PacketTime, RawPacket};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{PcapBlockOwned, PcapError};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Read buffer; grows (up to [`MAX_BUFFER`]) only for records larger than this.
const INITIAL_BUFFER: usize = 1 << 20;
/// The largest record we accept; beyond it the file is treated as corrupt.
const MAX_BUFFER: usize = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Pcap,
    PcapNg,
}

impl FileFormat {
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Pcap => "pcap",
            FileFormat::PcapNg => "pcapng",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: LinkType,
    /// Timestamp units per second.
    units_per_sec: u64,
    offset_secs: i64,
}

/// Where the packet found by [`FileSource::advance`] lies in the reader's buffer.
#[derive(Debug, Clone, Copy)]
struct Found {
    block_len: usize,
    start: usize,
    len: usize,
    ts: PacketTime,
    wire_len: u32,
    link_type: LinkType,
}

/// A pcap or pcapng file as a [`CaptureSource`].
pub struct FileSource {
    path: PathBuf,
    reader: Box<dyn PcapReaderIterator + Send>,
    format: FileFormat,
    /// Legacy pcap: link type and fraction unit from the global header.
    legacy_link: LinkType,
    legacy_nanos: bool,
    /// Legacy pcap in the standard record layout: `Some(big_endian)`, for
    /// [`FileSource::legacy_record`].
    legacy_layout: Option<bool>,
    interfaces: Vec<Interface>,
    /// Bytes of the block returned last, consumed at the next call.
    pending: usize,
    offset: u64,
    file_len: u64,
    done: bool,
    capacity: usize,
    link_types: Vec<LinkType>,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let reader = match pcap_parser::create_reader(INITIAL_BUFFER, file) {
            Ok(r) => r,
            Err(PcapError::Eof) => {
                return Err(CaptureError::NotACapture {
                    path: path.to_path_buf(),
                    what: "the file is empty".into(),
                })
            }
            Err(PcapError::Incomplete(_)) | Err(PcapError::UnexpectedEof) => {
                return Err(CaptureError::TruncatedTail {
                    path: path.to_path_buf(),
                    offset: 0,
                    trailing: file_len,
                })
            }
            Err(PcapError::ReadError) => {
                return Err(CaptureError::Read {
                    path: path.to_path_buf(),
                    offset: 0,
                    source: std::io::Error::other("read failed"),
                })
            }
            Err(_) => {
                return Err(CaptureError::NotACapture {
                    path: path.to_path_buf(),
                    what: "unknown magic number".into(),
                })
            }
        };
        Ok(FileSource {
            path: path.to_path_buf(),
            reader,
            format: FileFormat::Pcap,
            legacy_link: LinkType::ETHERNET,
            legacy_nanos: false,
            legacy_layout: None,
            interfaces: Vec::new(),
            pending: 0,
            offset: 0,
            file_len,
            done: false,
            capacity: INITIAL_BUFFER,
            link_types: Vec::new(),
        })
    }

    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Link types declared by the file so far (global header or interface blocks).
    pub fn link_types(&self) -> &[LinkType] {
        &self.link_types
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    fn note_link_type(&mut self, lt: LinkType) {
        if !self.link_types.contains(&lt) {
            self.link_types.push(lt);
        }
    }

    fn consume(&mut self, n: usize) {
        self.reader.consume(n);
        self.offset += n as u64;
    }

    fn truncated(&mut self) -> CaptureError {
        self.done = true;
        CaptureError::TruncatedTail {
            path: self.path.clone(),
            offset: self.offset,
            trailing: self.file_len.saturating_sub(self.offset),
        }
    }

    fn corrupt(&mut self, what: &str) -> CaptureError {
        self.done = true;
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset: self.offset,
            what: what.into(),
        }
    }

    /// The next legacy pcap record when it lies whole in the buffer: the 16-byte record
    /// header read in place, without a trip through pcap-parser's block types (the same
    /// fields its `parse_pcap_frame` reads). Anything else (the buffer needs a refill, the
    /// file ends, a record larger than the buffer) is left to [`FileSource::advance`].
    fn legacy_record(&self, big_endian: bool) -> Option<Found> {
        let data = self.reader.data();
        let h: &[u8; 16] = data.get(..16)?.try_into().ok()?;
        let word = |at: usize| {
            let b = [h[at], h[at + 1], h[at + 2], h[at + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let len = word(8) as usize;
        if data.len() - 16 < len {
            return None;
        }
        let frac = u64::from(word(4));
        let nanos = if self.legacy_nanos { frac } else { frac * 1000 };
        Some(Found {
            block_len: 16 + len,
            start: 16,
            len,
            ts: PacketTime(u64::from(word(0)) * PacketTime::NANOS_PER_SEC + nanos),
            wire_len: word(12),
            link_type: self.legacy_link,
        })
    }

    /// Reads blocks until a packet is found; metadata blocks are applied and consumed.
    fn advance(&mut self) -> Result<Option<Found>, CaptureError> {
        if let Some(found) = self.legacy_layout.and_then(|be| self.legacy_record(be)) {
            return Ok(Some(found));
        }
        loop {
            let base = self.reader.data().as_ptr() as usize;
            // Each arm copies out what it needs so the borrow of the reader ends here.
            enum Step {
                Packet(Found),
                Skip(usize),
                Header(usize, LinkType, bool, Option<bool>),
                Section(usize),
                Iface(usize, Interface),
                Refill,
                Eof,
                Truncated,
                TooSmall,
                Bad(&'static str),
            }
            let step = match self.reader.next() {
                Ok((n, PcapBlockOwned::LegacyHeader(h))) => Step::Header(
                    n,
                    LinkType((h.network.0 as u32) & 0x0FFF_FFFF),
                    h.is_nanosecond_precision(),
                    (!h.is_modified_format()).then(|| h.is_bigendian()),
                ),
                Ok((n, PcapBlockOwned::Legacy(b))) => {
                    let frac = u64::from(b.ts_usec);
                    let nanos = if self.legacy_nanos { frac } else { frac * 1000 };
                    Step::Packet(Found {
                        block_len: n,
                        start: (b.data.as_ptr() as usize).wrapping_sub(base),
                        len: b.data.len(),
                        ts: PacketTime(u64::from(b.ts_sec) * PacketTime::NANOS_PER_SEC + nanos),
                        wire_len: b.origlen,
                        link_type: self.legacy_link,
                    })
                }
                Ok((n, PcapBlockOwned::NG(Block::SectionHeader(_)))) => Step::Section(n),
                Ok((n, PcapBlockOwned::NG(Block::InterfaceDescription(idb)))) => Step::Iface(
                    n,
                    Interface {
                        link_type: LinkType((idb.linktype.0 as u32) & 0xFFFF),
                        units_per_sec: idb.ts_resolution().unwrap_or(1_000_000),
                        offset_secs: idb.ts_offset(),
                    },
                ),
                Ok((n, PcapBlockOwned::NG(Block::EnhancedPacket(epb)))) => {
                    let iface = self.interfaces.get(epb.if_id as usize).copied();
                    let data = epb.packet_data();
                    let raw_ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    Step::Packet(Found {
                        block_len: n,
                        start: (data.as_ptr() as usize).wrapping_sub(base),
                        len: data.len(),
                        ts: iface.map(|i| ng_time(raw_ts, i)).unwrap_or_default(),
                        wire_len: epb.origlen,
                        link_type: iface.map(|i| i.link_type).unwrap_or(LinkType(u32::MAX)),
                    })
                }
                Ok((n, PcapBlockOwned::NG(Block::SimplePacket(spb)))) => {
                    let iface = self.interfaces.first().copied();
                    let data = spb.packet_data();
                    Step::Packet(Found {
                        block_len: n,
                        start: (data.as_ptr() as usize).wrapping_sub(base),
                        len: data.len(),
                        ts: PacketTime::default(),
                        wire_len: spb.origlen,
                        link_type: iface.map(|i| i.link_type).unwrap_or(LinkType(u32::MAX)),
                    })
                }
                Ok((n, PcapBlockOwned::NG(_))) => Step::Skip(n),
                Err(PcapError::Eof) => Step::Eof,
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::UnexpectedEof) => Step::Truncated,
                Err(PcapError::BufferTooSmall) => Step::TooSmall,
                Err(PcapError::ReadError) => Step::Bad("read error"),
                Err(_) => Step::Bad("block"),
            };
            match step {
                Step::Packet(found) => return Ok(Some(found)),
                Step::Skip(n) => self.consume(n),
                Step::Header(n, lt, nanos, layout) => {
                    self.format = FileFormat::Pcap;
                    self.legacy_link = lt;
                    self.legacy_nanos = nanos;
                    self.legacy_layout = layout;
                    self.note_link_type(lt);
                    self.consume(n);
                }
                Step::Section(n) => {
                    self.format = FileFormat::PcapNg;
                    self.interfaces.clear();
                    self.consume(n);
                }
                Step::Iface(n, iface) => {
                    self.note_link_type(iface.link_type);
                    self.interfaces.push(iface);
                    self.consume(n);
                }
                Step::Refill => self.refill()?,
                Step::Eof => {
                    self.done = true;
                    return Ok(None);
                }
                Step::Truncated => return Err(self.truncated()),
                Step::TooSmall => {
                    // A record larger than the buffer: grow, unless the file cannot hold it.
                    let remaining = self.file_len.saturating_sub(self.offset);
                    if remaining < self.capacity as u64 {
                        return Err(self.truncated());
                    }
                    let want = (self.capacity * 2).min(MAX_BUFFER);
                    if self.capacity >= MAX_BUFFER || !self.reader.grow(want) {
                        return Err(self.corrupt("record length (larger than 64 MiB)"));
                    }
                    self.capacity = want;
                    self.refill()?;
                }
                Step::Bad(what) => {
                    if self.file_len.saturating_sub(self.offset) < 12 {
                        return Err(self.truncated());
                    }
                    return Err(self.corrupt(what));
                }
            }
        }
    }

    fn refill(&mut self) -> Result<(), CaptureError> {
        self.reader.refill().map_err(|_| {
            self.done = true;
            CaptureError::Read {
                path: self.path.clone(),
                offset: self.offset,
                source: std::io::Error::other("read failed"),
            }
        })
    }
}

fn ng_time(raw: u64, iface: Interface) -> PacketTime {
    let upsec = iface.units_per_sec.max(1);
    let secs = raw / upsec;
    let frac = raw % upsec;
    let nanos = (u128::from(frac) * 1_000_000_000 / u128::from(upsec)) as u64;
    let secs = (secs as i64).saturating_add(iface.offset_secs).max(0) as u64;
    PacketTime(
        secs.saturating_mul(PacketTime::NANOS_PER_SEC)
            .saturating_add(nanos),
    )
}

impl CaptureSource for FileSource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.pending > 0 {
            let n = self.pending;
            self.pending = 0;
            self.consume(n);
        }
        if self.done {
            return Ok(None);
        }
        let Some(found) = self.advance()? else {
            return Ok(None);
        };
        self.pending = found.block_len;
        let data = self
            .reader
            .data()
            .get(found.start..found.start.saturating_add(found.len))
            .unwrap_or(&[]);
        Ok(Some(RawPacket {
            ts: found.ts,
            wire_len: found.wire_len,
            data,
            link_type: found.link_type,
        }))
    }

    fn position(&self) -> u64 {
        self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pcap_bytes(records: &[(&[u8], u32)]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        for (i, (data, orig)) in records.iter().enumerate() {
            v.extend_from_slice(&(i as u32 + 100).to_le_bytes());
            v.extend_from_slice(&500u32.to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&orig.to_le_bytes());
            v.extend_from_slice(data);
        }
        v
    }

    fn write_tmp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn reads_records_and_reports_truncated_tail_with_offset() {
        let mut bytes = pcap_bytes(&[(&[1, 2, 3], 60), (&[4, 5], 70)]);
        bytes.extend_from_slice(&[0; 10]); // half a record header
        let f = write_tmp(&bytes);
        let mut src = FileSource::open(f.path()).unwrap();
        let p = src.next_packet().unwrap().unwrap();
        assert_eq!((p.data, p.wire_len), (&[1u8, 2, 3][..], 60));
        assert_eq!(p.ts, PacketTime(100 * PacketTime::NANOS_PER_SEC + 500_000));
        assert_eq!(p.link_type, LinkType::ETHERNET);
        let p = src.next_packet().unwrap().unwrap();
        assert_eq!(p.data, &[4u8, 5][..]);
        match src.next_packet() {
            Err(CaptureError::TruncatedTail { offset, trailing, .. }) => {
                assert_eq!(offset, 24 + 19 + 18);
                assert_eq!(trailing, 10);
            }
            other => panic!("expected truncated tail, got {other:?}"),
        }
        assert!(src.next_packet().unwrap().is_none());
    }

    #[test]
    fn garbage_and_empty_files_are_not_captures() {
        let f = write_tmp(b"this is not a capture file at all");
        assert!(matches!(
            FileSource::open(f.path()),
            Err(CaptureError::NotACapture { .. })
        ));
        let f = write_tmp(b"");
        assert!(matches!(
            FileSource::open(f.path()),
            Err(CaptureError::NotACapture { .. })
        ));
    }

    #[test]
    fn header_only_file_has_no_packets() {
        let f = write_tmp(&pcap_bytes(&[]));
        let mut src = FileSource::open(f.path()).unwrap();
        assert!(src.next_packet().unwrap().is_none());
    }

    #[test]
    fn huge_record_length_is_a_truncated_tail_not_an_allocation() {
        let mut bytes = pcap_bytes(&[(&[1, 2, 3], 3)]);
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        bytes.extend_from_slice(&[0; 100]);
        let f = write_tmp(&bytes);
        let mut src = FileSource::open(f.path()).unwrap();
        assert!(src.next_packet().unwrap().is_some());
        assert!(matches!(
            src.next_packet(),
            Err(CaptureError::TruncatedTail { .. })
        ));
    }

    /// Every prefix and some corrupted copies of a real capture: the reader stops with an
    /// error or the end, never panics, and never returns more packets than the file has.
    #[test]
    fn prefixes_and_corruptions_of_a_real_file_never_panic() {
        use rand::{Rng, SeedableRng};
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/pcap/fixtures/zeek__pcapng-multi-interface.pcapng");
        let Ok(bytes) = std::fs::read(&fixture) else {
            panic!("fixture {} is missing", fixture.display());
        };
        let count = |b: &[u8]| -> usize {
            let f = write_tmp(b);
            let Ok(mut src) = FileSource::open(f.path()) else {
                return 0;
            };
            let mut n = 0;
            while let Ok(Some(p)) = src.next_packet() {
                let _ = crate::traffic::decode::decode(p.link_type, p.data);
                n += 1;
            }
            n
        };
        let full = count(&bytes);
        assert_eq!(full, 6);
        for cut in (0..bytes.len()).step_by(7) {
            assert!(count(&bytes[..cut]) <= full);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.gen();
            }
            count(&b);
        }
    }
}
