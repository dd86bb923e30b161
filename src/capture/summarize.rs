//! Reads capture files through a [`CaptureSource`] into the traffic [`Engine`]: the I/O
//! shell behind `gatewatch pcap`. Errors inside a file stop that file but keep what was
//! read; an optional capture filter picks the packets; progress goes to a callback (the
//! CLI draws it on a terminal only).

use super::{BpfFilter, CaptureError, CaptureSource, FileSource};
use crate::traffic::decode;
use crate::traffic::report::{FileInfo, InputInfo};
use crate::traffic::{Engine, TrafficConfig, Window};
use std::path::Path;

/// The outcome of reading one or more files.
pub struct FileSummary {
    pub window: Window,
    pub input: InputInfo,
    /// Problems met, in file order; the summary covers everything read before each.
    pub errors: Vec<CaptureError>,
    /// Records that were read but not decoded (unsupported link type), one line per file.
    pub warnings: Vec<String>,
}

/// Reads every file into one window. `progress(bytes_read, file_len)` is called every few
/// thousand packets.
pub fn summarize_files(
    paths: &[&Path],
    cfg: TrafficConfig,
    progress: &mut dyn FnMut(&Path, u64, u64),
) -> FileSummary {
    summarize_files_filtered(paths, cfg, None, progress)
}

/// [`summarize_files`] with a capture filter: only packets it keeps reach the engine (its
/// counters say how many it kept and dropped).
pub fn summarize_files_filtered(
    paths: &[&Path],
    cfg: TrafficConfig,
    mut filter: Option<&mut BpfFilter>,
    progress: &mut dyn FnMut(&Path, u64, u64),
) -> FileSummary {
    let mut engine = Engine::new(cfg);
    let mut input = InputInfo::default();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for path in paths {
        let mut info = FileInfo {
            path: path.display().to_string(),
            size_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            ..Default::default()
        };
        let mut src = match FileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                note_error(&mut info, &e);
                input.files.push(info);
                errors.push(e);
                continue;
            }
        };
        let mut n: u64 = 0;
        let mut unsupported: Option<(u32, u64)> = None;
        let mut unsupported_count: u64 = 0;
        let result = loop {
            match src.next_packet() {
                Ok(Some(pkt)) => {
                    n += 1;
                    if let Some(f) = filter.as_deref_mut() {
                        if !f.matches(&pkt) {
                            continue;
                        }
                    }
                    let link = pkt.link_type;
                    engine.ingest(&pkt);
                    if !decode::is_supported(link) {
                        // The record is not consumed yet: position() is where it starts.
                        unsupported_count += 1;
                        unsupported.get_or_insert((link.0, src.position()));
                    }
                    if n % 65_536 == 0 {
                        let (pos, len) = (src.position(), src.file_len());
                        progress(path, pos, len);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        info.format = Some(src.format().name().to_string());
        info.linktypes = src.link_types().iter().map(|l| l.0).collect();
        if let Some((lt, offset)) = unsupported {
            let w = format!(
                "{}: {unsupported_count} records with unsupported link type {lt} (first at byte \
                 offset {offset}) were counted as non-IP",
                path.display()
            );
            info.warning = Some(w.clone());
            warnings.push(w);
        }
        if let Err(e) = result {
            note_error(&mut info, &e);
            errors.push(e);
        }
        input.files.push(info);
    }
    FileSummary {
        window: engine.finish(),
        input,
        errors,
        warnings,
    }
}

fn note_error(info: &mut FileInfo, e: &CaptureError) {
    info.error = Some(e.to_string());
    match e {
        // As in the reference reader, a record that cannot be framed (cut off, or a block
        // length that does not fit) ends the file: its tail is unread.
        CaptureError::TruncatedTail { offset, .. } | CaptureError::Corrupt { offset, .. } => {
            info.truncated_tail = true;
            info.error_offset = Some(*offset);
        }
        CaptureError::Read { offset, .. } => info.error_offset = Some(*offset),
        CaptureError::NotACapture { .. } => info.error_offset = Some(0),
        CaptureError::Open { .. } | CaptureError::Live { .. } => {}
    }
}
