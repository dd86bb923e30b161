//! [`ReplaySource`]: a capture file played back as if it were an interface, for demos and
//! tests. Timestamps are moved so the file starts now (the history then lands inside the
//! retention, and windows line up with the clock); the gaps between records are kept. At
//! "realtime" pace records come when they are due, at "fast" pace as fast as they are read.
//! Looping shifts each pass's timestamps past the previous pass, so time never runs
//! backwards.
//!
//! Owns reading and pacing; must not decode packets.

use super::{CaptureError, CaptureSource, FileSource, PacketTime, RawPacket};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct ReplaySource {
    path: PathBuf,
    file: FileSource,
    realtime: bool,
    looped: bool,
    poll: Duration,
    /// Added to every timestamp of the current pass.
    shift: i128,
    /// First timestamp of the file, last timestamp returned (both before shifting).
    first: Option<u64>,
    last: u64,
    passes: u64,
    /// A record read but not due yet (realtime): its bytes and metadata.
    pending: Option<(PacketTime, u32, super::LinkType, Vec<u8>)>,
    out: Vec<u8>,
}

fn wall_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl ReplaySource {
    pub fn open(path: &Path, realtime: bool, looped: bool, poll: Duration) -> Result<Self, CaptureError> {
        Ok(ReplaySource {
            path: path.to_path_buf(),
            file: FileSource::open(path)?,
            realtime,
            looped,
            poll: poll.max(Duration::from_millis(10)),
            shift: 0,
            first: None,
            last: 0,
            passes: 0,
            pending: None,
            out: Vec::new(),
        })
    }

    /// Times the file has been started over.
    pub fn passes(&self) -> u64 {
        self.passes
    }

    fn shifted(&self, ts: PacketTime) -> PacketTime {
        PacketTime((ts.0 as i128 + self.shift).max(0) as u64)
    }

    /// Reads the next record into `pending`; `false` at the end of the (last) pass.
    fn fill(&mut self) -> Result<bool, CaptureError> {
        if self.pending.is_some() {
            return Ok(true);
        }
        loop {
            match self.file.next_packet()? {
                Some(p) => {
                    let first = *self.first.get_or_insert(p.ts.0);
                    if self.passes == 0 && self.shift == 0 {
                        self.shift = wall_nanos() as i128 - first as i128;
                    }
                    self.last = self.last.max(p.ts.0);
                    self.pending = Some((p.ts, p.wire_len, p.link_type, p.data.to_vec()));
                    return Ok(true);
                }
                None if self.looped && self.first.is_some() => {
                    let first = self.first.unwrap_or_default();
                    // The next pass starts one second after this one ended.
                    let span = self.last.saturating_sub(first) + PacketTime::NANOS_PER_SEC;
                    self.shift += span as i128;
                    self.passes += 1;
                    self.file = FileSource::open(&self.path)?;
                }
                None => return Ok(false),
            }
        }
    }
}

impl CaptureSource for ReplaySource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if !self.fill()? {
            return Ok(None);
        }
        let Some((ts, ..)) = &self.pending else {
            return Ok(None);
        };
        let due = self.shifted(*ts);
        if self.realtime {
            let now = wall_nanos();
            if due.0 > now {
                let wait = Duration::from_nanos(due.0 - now);
                if wait > self.poll {
                    std::thread::sleep(self.poll);
                    return Ok(None);
                }
                std::thread::sleep(wait);
            }
        }
        let Some((_, wire_len, link_type, data)) = self.pending.take() else {
            return Ok(None);
        };
        self.out = data;
        Ok(Some(RawPacket {
            ts: due,
            wire_len,
            data: &self.out,
            link_type,
        }))
    }

    fn position(&self) -> u64 {
        self.file.position()
    }

    /// Realtime replays behave like an interface: `Ok(None)` means "nothing due yet".
    fn is_live(&self) -> bool {
        self.realtime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/pcap/fixtures");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("fixtures dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
            .collect();
        files.sort();
        assert!(!files.is_empty());
        files.remove(0)
    }

    fn count_and_times(src: &mut dyn CaptureSource, max: usize) -> (usize, Vec<u64>) {
        let mut times = Vec::new();
        while times.len() < max {
            match src.next_packet().unwrap() {
                Some(p) => times.push(p.ts.0),
                None => break,
            }
        }
        (times.len(), times)
    }

    #[test]
    fn fast_replay_yields_the_file_and_looping_moves_time_forward() {
        let path = fixture();
        let mut plain = FileSource::open(&path).unwrap();
        let (n, file_times) = count_and_times(&mut plain, usize::MAX);
        assert!(n > 0);
        let mut once = ReplaySource::open(&path, false, false, Duration::from_millis(50)).unwrap();
        let before = wall_nanos();
        let (m, times) = count_and_times(&mut once, usize::MAX);
        assert_eq!(m, n);
        assert!(
            times[0] >= before && times[0] <= wall_nanos(),
            "the file starts now"
        );
        let gaps = |t: &[u64]| {
            t.windows(2)
                .map(|w| w[1] as i128 - w[0] as i128)
                .collect::<Vec<_>>()
        };
        assert_eq!(gaps(&times), gaps(&file_times), "gaps between records are kept");
        let mut looped = ReplaySource::open(&path, false, true, Duration::from_millis(50)).unwrap();
        let (k, times) = count_and_times(&mut looped, 2 * n + 1);
        assert_eq!(k, 2 * n + 1);
        assert_eq!(looped.passes(), 2);
        let end_of_first = times[..n].iter().max().copied().unwrap();
        assert!(times[n..].iter().all(|t| *t > end_of_first));
    }

    #[test]
    fn realtime_replay_moves_timestamps_to_now() {
        let path = fixture();
        let mut src = ReplaySource::open(&path, true, false, Duration::from_millis(20)).unwrap();
        let before = wall_nanos();
        let first = loop {
            if let Some(p) = src.next_packet().unwrap() {
                break p.ts.0;
            }
        };
        assert!(first >= before && first <= wall_nanos(), "{first} vs {before}");
        assert!(src.is_live());
    }
}
