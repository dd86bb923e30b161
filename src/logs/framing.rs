//! RFC 6587 framing of a syslog byte stream (TCP, TLS, stdin), sans-IO: [`Framer::push`]
//! bytes as they arrive, then pull frames with [`Framer::next_frame`] until it says `None`.
//!
//! Octet counting (`MSG-LEN SP MSG`) and non-transparent framing (LF, optionally NUL, as
//! trailer; a CR before the LF is dropped) are detected per frame, as rsyslog and syslog-ng
//! do: a frame that starts with a non-zero digit followed by digits and a space is octet
//! counted, anything else runs to the next trailer. Frames longer than the maximum size are
//! cut to it, flagged `truncated`, and the rest is skipped so the stream resynchronises at
//! the next frame. The buffer never holds more than one maximum frame plus one pushed chunk.
//!
//! Owns no sockets and does not parse the frames; see [`crate::logs::syslog`] for that.

/// Default maximum message size (RFC 5425 asks receivers to take at least 2 KiB; 64 KiB is
/// what rsyslog and syslog-ng allow by default).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// More MSG-LEN digits than this cannot be a real frame (it would be ≥ 1 GB).
const MAX_LEN_DIGITS: usize = 9;

/// Which framings a [`Framer`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingMode {
    /// Per-frame detection of octet counting and trailer framing (the TCP default).
    Auto,
    /// Only `MSG-LEN SP MSG`.
    OctetCounting,
    /// Only trailer-delimited frames (one line per frame, as `parse-log` reads stdin).
    NonTransparent,
}

/// Framer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerConfig {
    pub mode: FramingMode,
    /// Longer frames are truncated to this many octets and flagged.
    pub max_frame_len: usize,
    /// Treat NUL as a trailer as well as LF (OpenWrt logd's `log_trailer_null`).
    pub nul_is_trailer: bool,
    /// Drop empty trailer-delimited frames instead of returning them.
    pub skip_empty: bool,
}

impl FramerConfig {
    /// What a syslog TCP/TLS listener uses.
    pub fn stream() -> Self {
        FramerConfig {
            mode: FramingMode::Auto,
            max_frame_len: DEFAULT_MAX_FRAME,
            nul_is_trailer: true,
            skip_empty: true,
        }
    }

    /// One frame per LF-terminated line, empty lines included: what `parse-log` uses so that
    /// every input line gets exactly one output line.
    pub fn lines() -> Self {
        FramerConfig {
            mode: FramingMode::NonTransparent,
            max_frame_len: DEFAULT_MAX_FRAME,
            nul_is_trailer: false,
            skip_empty: false,
        }
    }
}

impl Default for FramerConfig {
    fn default() -> Self {
        FramerConfig::stream()
    }
}

/// How a frame was delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameMethod {
    OctetCounted,
    Delimited,
}

/// One frame, borrowed from the framer's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub data: &'a [u8],
    pub truncated: bool,
    pub method: FrameMethod,
}

/// A stream-level framing problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The stream cannot be resynchronised; the caller should close the connection. Every
    /// later byte is discarded.
    #[error("octet count with more than {MAX_LEN_DIGITS} digits: cannot resynchronise, closing")]
    LengthTooLong,
    /// Octet-counting only: a frame did not start with `MSG-LEN SP`.
    #[error("expected an octet count (MSG-LEN SP) at the start of a frame")]
    MissingLength,
    /// The stream ended inside an octet-counted frame; the partial frame was dropped.
    #[error("stream ended {missing} octets short of a {declared}-octet frame; dropped")]
    Incomplete { declared: usize, missing: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a frame boundary.
    Start,
    /// Reading the body of an octet-counted frame of `len` octets.
    Octet { len: usize },
    /// Skipping the `remaining` octets of an over-long octet-counted frame.
    SkipOctets { remaining: usize },
    /// Reading a delimited frame; `scanned` octets are known to hold no trailer.
    Line { scanned: usize },
    /// Skipping the rest of an over-long delimited frame up to its trailer.
    SkipLine,
    /// Unrecoverable; everything is discarded.
    Failed,
}

/// The RFC 6587 framer. See the module doc.
#[derive(Debug)]
pub struct Framer {
    config: FramerConfig,
    buf: Vec<u8>,
    pos: usize,
    state: State,
    eof: bool,
    truncated_frames: u64,
}

impl Framer {
    pub fn new(config: FramerConfig) -> Self {
        let config = FramerConfig {
            max_frame_len: config.max_frame_len.max(1),
            ..config
        };
        Framer {
            config,
            buf: Vec::new(),
            pos: 0,
            state: State::Start,
            eof: false,
            truncated_frames: 0,
        }
    }

    pub fn config(&self) -> FramerConfig {
        self.config
    }

    /// Appends received bytes. Call [`Framer::next_frame`] until `None` before pushing more,
    /// so the buffer stays bounded.
    pub fn push(&mut self, data: &[u8]) {
        if self.state == State::Failed {
            return;
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The peer closed the stream: a last unterminated line becomes a frame, an incomplete
    /// octet-counted frame is reported and dropped.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// True after an unrecoverable error: the connection should be closed.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// How many frames were cut to the maximum size so far.
    pub fn truncated_frames(&self) -> u64 {
        self.truncated_frames
    }

    /// Octets held and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next complete frame, a framing error, or `None` when more input is needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, FramingError>> {
        let max = self.config.max_frame_len;
        loop {
            let avail = self.buf.len() - self.pos;
            match self.state {
                State::Failed => {
                    self.buf.clear();
                    self.pos = 0;
                    return None;
                }
                State::Start => {
                    if avail == 0 {
                        return None;
                    }
                    match self.detect_start() {
                        Detect::NeedMore => return None,
                        Detect::Octet { len, header } => {
                            self.pos += header;
                            self.state = State::Octet { len };
                        }
                        Detect::Line => self.state = State::Line { scanned: 0 },
                        Detect::Error(e) => {
                            self.state = State::Failed;
                            return Some(Err(e));
                        }
                    }
                }
                State::Octet { len } => {
                    let want = len.min(max);
                    if avail < want {
                        if self.eof {
                            self.pos = self.buf.len();
                            self.state = State::Start;
                            return Some(Err(FramingError::Incomplete {
                                declared: len,
                                missing: len - avail,
                            }));
                        }
                        return None;
                    }
                    let start = self.pos;
                    self.pos += want;
                    let truncated = len > max;
                    self.state = if truncated {
                        self.truncated_frames += 1;
                        State::SkipOctets { remaining: len - max }
                    } else {
                        State::Start
                    };
                    return Some(Ok(Frame {
                        data: &self.buf[start..start + want],
                        truncated,
                        method: FrameMethod::OctetCounted,
                    }));
                }
                State::SkipOctets { remaining } => {
                    let n = remaining.min(avail);
                    self.pos += n;
                    if n == remaining {
                        self.state = State::Start;
                    } else {
                        self.state = State::SkipOctets {
                            remaining: remaining - n,
                        };
                        return None;
                    }
                }
                State::Line { scanned } => {
                    let limit = avail.min(max + 1);
                    let window = &self.buf[self.pos + scanned..self.pos + limit];
                    if let Some(i) = window.iter().position(|&b| self.is_trailer(b)) {
                        let start = self.pos;
                        let mut end = start + scanned + i;
                        self.pos = end + 1;
                        self.state = State::Start;
                        if end > start && self.buf[end - 1] == b'\r' {
                            end -= 1;
                        }
                        if end == start && self.config.skip_empty {
                            continue;
                        }
                        return Some(Ok(self.delimited(start, end, false)));
                    }
                    if avail > max {
                        let start = self.pos;
                        self.pos += max;
                        self.state = State::SkipLine;
                        self.truncated_frames += 1;
                        return Some(Ok(self.delimited(start, start + max, true)));
                    }
                    if self.eof {
                        let start = self.pos;
                        let mut end = self.buf.len();
                        self.pos = end;
                        self.state = State::Start;
                        if end > start && self.buf[end - 1] == b'\r' {
                            end -= 1;
                        }
                        if end == start && self.config.skip_empty {
                            return None;
                        }
                        return Some(Ok(self.delimited(start, end, false)));
                    }
                    self.state = State::Line { scanned: avail };
                    return None;
                }
                State::SkipLine => {
                    let window = &self.buf[self.pos..];
                    match window.iter().position(|&b| self.is_trailer(b)) {
                        Some(i) => {
                            self.pos += i + 1;
                            self.state = State::Start;
                        }
                        None => {
                            self.pos = self.buf.len();
                            return None;
                        }
                    }
                }
            }
        }
    }

    fn delimited(&self, start: usize, end: usize, truncated: bool) -> Frame<'_> {
        Frame {
            data: &self.buf[start..end],
            truncated,
            method: FrameMethod::Delimited,
        }
    }

    fn is_trailer(&self, b: u8) -> bool {
        b == b'\n' || (b == 0 && self.config.nul_is_trailer)
    }

    /// Decides how the frame at `pos` is delimited.
    fn detect_start(&self) -> Detect {
        let avail = &self.buf[self.pos..];
        let mode = self.config.mode;
        if mode == FramingMode::NonTransparent {
            return Detect::Line;
        }
        let first_is_len = avail.first().is_some_and(|b| (b'1'..=b'9').contains(b));
        if !first_is_len {
            return match mode {
                FramingMode::OctetCounting => Detect::Error(FramingError::MissingLength),
                _ => Detect::Line,
            };
        }
        let digits = avail.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > MAX_LEN_DIGITS {
            return Detect::Error(FramingError::LengthTooLong);
        }
        match avail.get(digits) {
            None if !self.eof => Detect::NeedMore,
            Some(b' ') => {
                let len = avail[..digits]
                    .iter()
                    .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
                Detect::Octet {
                    len,
                    header: digits + 1,
                }
            }
            _ if mode == FramingMode::OctetCounting => Detect::Error(FramingError::MissingLength),
            _ => Detect::Line,
        }
    }
}

enum Detect {
    NeedMore,
    Octet { len: usize, header: usize },
    Line,
    Error(FramingError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` in chunks of `chunk` bytes and collects frames and errors.
    pub(crate) fn run(
        config: FramerConfig,
        stream: &[u8],
        chunk: usize,
    ) -> Vec<Result<(Vec<u8>, bool), FramingError>> {
        let mut framer = Framer::new(config);
        let mut out = Vec::new();
        for part in stream.chunks(chunk.max(1)) {
            framer.push(part);
            while let Some(f) = framer.next_frame() {
                out.push(f.map(|f| (f.data.to_vec(), f.truncated)));
            }
        }
        framer.finish();
        while let Some(f) = framer.next_frame() {
            out.push(f.map(|f| (f.data.to_vec(), f.truncated)));
        }
        out
    }

    fn frames(stream: &[u8]) -> Vec<Vec<u8>> {
        run(FramerConfig::stream(), stream, stream.len())
            .into_iter()
            .filter_map(Result::ok)
            .map(|f| f.0)
            .collect()
    }

    #[test]
    fn octet_then_lf_then_nul() {
        let got = frames(b"5 hello3 abcone\ntwo\0\n\nthree");
        assert_eq!(
            got,
            vec![
                b"hello".to_vec(),
                b"abc".to_vec(),
                b"one".to_vec(),
                b"two".to_vec(),
                b"three".to_vec()
            ]
        );
    }

    #[test]
    fn every_split_gives_the_same_frames() {
        let stream = b"12 <13>1 - - - -x\r\n<14>y\n7 <1>1 -\n\n0 z\n";
        let whole = run(FramerConfig::stream(), stream, stream.len());
        for chunk in 1..stream.len() {
            assert_eq!(run(FramerConfig::stream(), stream, chunk), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn long_lines_are_truncated_and_resync() {
        let config = FramerConfig {
            max_frame_len: 4,
            ..FramerConfig::stream()
        };
        let got = run(config, b"abcdefgh\nij\n9 123456789kl\n", 3);
        let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got,
            vec![
                (b"abcd".to_vec(), true),
                (b"ij".to_vec(), false),
                (b"1234".to_vec(), true),
                (b"kl".to_vec(), false)
            ]
        );
    }

    #[test]
    fn huge_count_fails_the_stream() {
        let got = run(FramerConfig::stream(), b"12345678901 x\nmore\n", 4);
        assert_eq!(got, vec![Err(FramingError::LengthTooLong)]);
    }

    #[test]
    fn lines_mode_keeps_empty_lines_and_digits() {
        let got = run(FramerConfig::lines(), b"122 - -\n\n\0\0\n", 2);
        let got: Vec<_> = got.into_iter().map(|f| f.unwrap().0).collect();
        assert_eq!(got, vec![b"122 - -".to_vec(), b"".to_vec(), b"\0\0".to_vec()]);
    }
}
