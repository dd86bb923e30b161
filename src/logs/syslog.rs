//! Syslog header parsing (RFC 5424 and RFC 3164 as real devices send it) on top of the
//! `syslog_loose` crate, sans-IO: one frame in, one [`SyslogHeader`] out.
//!
//! Policy (`shared/testdata/syslog/README.md`): a missing or invalid PRI becomes 13 with
//! `pri_present: false`; a year-less date takes its year from the [`ParseContext`]; a
//! zone-less one is in the context's default zone (UTC); a BOM starting an RFC 5424 MSG is
//! stripped; bytes that are not UTF-8 are replaced but the message is kept (the exact octets
//! go to `message_b64`); trailing NUL/CR/LF are dropped; an empty frame is an error.
//!
//! Where `syslog_loose` is wrong for real senders we post-process, and only there:
//! - PRI is validated here (1–3 digits, no leading zero, ≤ 191) before `syslog_loose` sees
//!   the line, which would take `<013>` or `<999>`.
//! - RFC 3164: `syslog_loose` finds the timestamp and where the header starts, but its
//!   host/tag guess is replaced ([`split_host_tag`]): it takes a hostless `netifd: …` for a
//!   hostname, the first message word for a tag (`10.0.0.99 Use the BFG!`), a UniFi
//!   `facility.level` word for the tag, and `[prefix]` message starts for structured data.
//! - RFC 5424: SD-PARAM values are unescaped here (`\"`, `\\`, `\]` only; the crate also
//!   turns `\n` into a newline); a BOM is stripped; a header `syslog_loose` rejects
//!   (impossible timestamp, bad SD) falls back to [`lenient_5424`] so its fields are kept.
//! - Timestamps `syslog_loose` cannot read (RFC 3339 without zone or with a space,
//!   OpenWrt `logread` ctime, impossible BSD dates) are handled by [`super::timestamp`].

use super::timestamp::{leading_timestamp, ParseContext};
use crate::model::{split_pri, Facility, SdElement, Severity, SyslogHeader};
use base64::Engine as _;
use chrono::{DateTime, FixedOffset, Utc};
use std::borrow::Cow;
use syslog_loose::{ProcId, Variant};

/// Which header syntax to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderFormat {
    /// RFC 5424 when the line has a VERSION after the PRI, else RFC 3164 / free text.
    Auto,
    Rfc5424,
    Rfc3164,
}

/// Why a frame yields no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyslogError {
    #[error("empty frame")]
    Empty,
}

/// Header fields borrowed from the (lossy-decoded) frame, before they are owned.
#[derive(Debug, Default, PartialEq)]
struct Fields<'a> {
    version: Option<u32>,
    timestamp: Option<DateTime<FixedOffset>>,
    hostname: Option<&'a str>,
    app_name: Option<&'a str>,
    procid: Option<Cow<'a, str>>,
    msgid: Option<&'a str>,
    structured_data: Vec<SdElement>,
    message: &'a str,
    bom: bool,
    sd_invalid: bool,
    embedded_facility_level: Option<&'a str>,
    /// `facility.level` of an OpenWrt `logread` line, used when there is no PRI.
    logread_pri: Option<u8>,
}

/// Parses one frame's syslog header. Never panics; the only error is an empty frame.
pub fn parse_header(
    frame: &[u8],
    ctx: &ParseContext,
    format: HeaderFormat,
) -> Result<SyslogHeader, SyslogError> {
    let bytes = trim_trailer(frame);
    if bytes.is_empty() {
        return Err(SyslogError::Empty);
    }
    // (`from_utf8` first: it is much faster than the lossy decoder on valid text.)
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let (pri, rest) = split_leading_pri(&text);
    let is_5424 = match format {
        HeaderFormat::Rfc5424 => true,
        HeaderFormat::Rfc3164 => false,
        HeaderFormat::Auto => pri.is_some() && looks_like_5424(rest),
    };
    let mut f = if is_5424 {
        parse_5424(rest, ctx)
    } else {
        parse_3164(rest, ctx)
    };
    if pri.is_none() && f.timestamp.is_none() && f.app_name.is_none() && f.hostname.is_none() && !is_5424 {
        // Nothing recognised: the whole text is the message, untouched.
        f.message = &text;
    }
    let (pri_value, pri_present) = match (pri, f.logread_pri) {
        (Some(p), _) => (p, true),
        (None, Some(p)) => (p, false),
        (None, None) => (13, false),
    };
    let (facility, severity) = split_pri(pri_value).unwrap_or((Facility::User, Severity::Notice));
    let message_b64 = match &text {
        Cow::Borrowed(_) => None,
        Cow::Owned(_) => {
            let raw = raw_slice(bytes, &text, f.message);
            std::str::from_utf8(raw)
                .is_err()
                .then(|| base64::engine::general_purpose::STANDARD.encode(raw))
        }
    };
    Ok(SyslogHeader {
        pri: pri_value,
        pri_present,
        facility,
        severity,
        version: f.version,
        timestamp: f.timestamp,
        timestamp_utc: f.timestamp.map(|t| t.with_timezone(&Utc)),
        hostname: f.hostname.map(str::to_owned),
        app_name: f.app_name.map(str::to_owned),
        procid: f.procid.map(Cow::into_owned),
        msgid: f.msgid.map(str::to_owned),
        structured_data: f.structured_data,
        message: f.message.to_owned(),
        message_b64,
        bom: f.bom,
        sd_invalid: f.sd_invalid,
        embedded_facility_level: f.embedded_facility_level.map(str::to_owned),
    })
}

/// Drops the trailer bytes senders leave on a frame (NUL from OpenWrt logd, CR/LF).
fn trim_trailer(frame: &[u8]) -> &[u8] {
    let end = frame
        .iter()
        .rposition(|b| !matches!(b, 0 | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    &frame[..end]
}

/// A valid `<PRI>` and the text after it; anything else is "no PRI" and the whole text.
fn split_leading_pri(text: &str) -> (Option<u8>, &str) {
    let Some(inner) = text.strip_prefix('<') else {
        return (None, text);
    };
    let Some(close) = inner.find('>') else {
        return (None, text);
    };
    let digits = &inner[..close];
    let valid = (1..=3).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u16>() {
        Ok(v) if valid && v <= 191 => (Some(v as u8), &inner[close + 1..]),
        _ => (None, text),
    }
}

/// `VERSION SP` with VERSION = NONZERO-DIGIT 0*2DIGIT.
fn looks_like_5424(rest: &str) -> bool {
    let b = rest.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    (1..=3).contains(&digits) && b[0] != b'0' && b.get(digits) == Some(&b' ')
}

fn parse_5424<'a>(rest: &'a str, ctx: &ParseContext) -> Fields<'a> {
    let mut f = plain_5424(rest).unwrap_or_else(|| loose_5424(rest, ctx));
    if let Some(m) = f.message.strip_prefix('\u{feff}') {
        f.message = m;
        f.bom = true;
    }
    f
}

/// The common RFC 5424 shape read by hand: VERSION, an RFC 3339 or nil TIMESTAMP, four
/// printable-ASCII header fields, nil STRUCTURED-DATA, the message. For such a line it gives
/// exactly what [`loose_5424`] gives (a test compares the two on every fixture and on
/// variants of them) at a fraction of the cost; anything else is `None` and goes that way.
fn plain_5424(rest: &str) -> Option<Fields<'_>> {
    fn nil(v: &str) -> Option<&str> {
        (v != "-").then_some(v)
    }
    // (As `syslog_loose`: the line is trimmed, fields are separated by spaces or tabs, `-`
    // is nil, a lone `:` ends the header, a hostname ending in `:` is not a hostname, and a
    // numeric PROCID is read as a number.)
    let s = rest.trim();
    let (version, s) = header_field(s)?;
    if !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version = version.parse().ok()?;
    let (stamp, s) = s.split_once(' ')?;
    let timestamp = match stamp {
        "-" => None,
        _ if stamp.starts_with('-') => return None,
        _ => Some(DateTime::parse_from_rfc3339(stamp).ok()?),
    };
    let s = s.trim_start_matches([' ', '\t']);
    let (hostname, s) = header_field(s)?;
    if hostname.ends_with(':') {
        return None;
    }
    let (app_name, s) = header_field(s)?;
    let (procid, s) = header_field(s)?;
    let (msgid, s) = header_field(s)?;
    let message = s.strip_prefix('-')?.trim_start_matches([' ', '\t']);
    Some(Fields {
        version: Some(version),
        timestamp,
        hostname: nil(hostname),
        app_name: nil(app_name),
        procid: nil(procid).map(|p| match p.parse::<i32>() {
            Ok(n) => Cow::Owned(n.to_string()),
            Err(_) => Cow::Borrowed(p),
        }),
        msgid: nil(msgid),
        message,
        ..Fields::default()
    })
}

/// A header field of printable ASCII other than a lone `:`, then at least one space or tab;
/// the field and what follows the separator.
fn header_field(s: &str) -> Option<(&str, &str)> {
    let end = s.bytes().position(|b| !b.is_ascii_graphic())?;
    let (field, tail) = s.split_at(end);
    if field.is_empty() || field == ":" || !tail.starts_with([' ', '\t']) {
        return None;
    }
    Some((field, tail.trim_start_matches([' ', '\t'])))
}

/// RFC 5424 through `syslog_loose`, and [`lenient_5424`] where that fails.
fn loose_5424<'a>(rest: &'a str, ctx: &ParseContext) -> Fields<'a> {
    let year = |_| 0;
    let parsed = syslog_loose::parse_message_with_year_exact_tz(
        rest,
        year,
        Some(ctx.default_offset),
        Variant::RFC5424,
    );
    match parsed {
        Ok(m) => {
            let version = match m.protocol {
                syslog_loose::Protocol::RFC5424(v) => Some(v),
                syslog_loose::Protocol::RFC3164 => None,
            };
            Fields {
                version,
                timestamp: m.timestamp,
                hostname: m.hostname,
                app_name: m.appname,
                procid: m.procid.map(|p| match p {
                    ProcId::PID(n) => Cow::Owned(n.to_string()),
                    ProcId::Name(s) => Cow::Borrowed(s),
                }),
                msgid: m.msgid,
                structured_data: m
                    .structured_data
                    .iter()
                    .map(|e| SdElement {
                        id: e.id.to_owned(),
                        params: e
                            .params
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), unescape_sd(v)))
                            .collect(),
                    })
                    .collect(),
                message: m.msg,
                ..Fields::default()
            }
        }
        Err(_) => lenient_5424(rest, ctx),
    }
}
/// RFC 5424 unescaping of a PARAM-VALUE: `\"`, `\\` and `\]`; other backslashes are kept.
fn unescape_sd(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if matches!(n, '"' | '\\' | ']') {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// Field-by-field RFC 5424 for headers `syslog_loose` rejects: whatever is well-formed is
/// kept, an impossible timestamp becomes `None`, malformed SD stays in the message.
fn lenient_5424<'a>(rest: &'a str, ctx: &ParseContext) -> Fields<'a> {
    let mut f = Fields::default();
    let mut s = rest;
    let nil = |t: Option<&'a str>| t.filter(|t| !t.is_empty() && *t != "-");
    f.version = next(&mut s).and_then(|v| v.parse().ok());
    f.timestamp = nil(next(&mut s)).and_then(|t| {
        leading_timestamp(t, ctx)
            .and_then(|l| l.timestamp)
            .or_else(|| DateTime::parse_from_rfc3339(t).ok())
    });
    f.hostname = nil(next(&mut s));
    f.app_name = nil(next(&mut s));
    f.procid = nil(next(&mut s)).map(Cow::Borrowed);
    f.msgid = nil(next(&mut s));
    if let Some(tail) = s.strip_prefix('-') {
        f.message = tail.strip_prefix(' ').unwrap_or(tail);
    } else if s.starts_with('[') {
        match parse_sd(s) {
            Some((sd, tail)) => {
                f.structured_data = sd;
                f.message = tail.strip_prefix(' ').unwrap_or(tail);
            }
            None => {
                f.sd_invalid = true;
                f.message = s;
            }
        }
    } else {
        f.sd_invalid = !s.is_empty();
        f.message = s;
    }
    f
}

/// The next single-space-delimited header field.
fn next<'a>(s: &mut &'a str) -> Option<&'a str> {
    if s.is_empty() {
        return None;
    }
    let (tok, tail) = match s.find(' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (*s, ""),
    };
    *s = tail;
    Some(tok)
}

/// Strict SD-ELEMENTs at the start of `s`; `None` if they are malformed.
fn parse_sd(mut s: &str) -> Option<(Vec<SdElement>, &str)> {
    let mut out = Vec::new();
    while let Some(body) = s.strip_prefix('[') {
        let id_end = body.find([' ', ']', '=', '"'])?;
        if id_end == 0 {
            return None;
        }
        let mut el = SdElement {
            id: body[..id_end].to_owned(),
            params: Vec::new(),
        };
        let mut r = &body[id_end..];
        loop {
            if let Some(after) = r.strip_prefix(']') {
                s = after;
                break;
            }
            r = r.strip_prefix(' ')?;
            let eq = r.find('=')?;
            let name = &r[..eq];
            if name.is_empty() || name.contains([' ', ']', '"']) {
                return None;
            }
            r = r[eq + 1..].strip_prefix('"')?;
            let mut end = None;
            let mut escaped = false;
            for (i, c) in r.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end?;
            el.params.push((name.to_owned(), unescape_sd(&r[..end])));
            r = &r[end + 1..];
        }
        out.push(el);
    }
    Some((out, s))
}

fn parse_3164<'a>(rest: &'a str, ctx: &ParseContext) -> Fields<'a> {
    let s = rest.trim_start_matches(' ');
    let mut f = Fields::default();
    let c = *ctx;
    let year = move |(mon, day, h, mi, sec)| c.year_for(mon, day, h, mi, sec);
    let loose =
        syslog_loose::parse_message_with_year_exact_tz(s, year, Some(ctx.default_offset), Variant::RFC3164);
    let header = match loose {
        Ok(m) => {
            f.timestamp = m.timestamp;
            // The header starts at the first field syslog_loose found after the timestamp.
            let starts = [m.hostname, m.appname, Some(m.msg)];
            let start = starts.iter().flatten().filter_map(|p| offset_in(s, p)).min();
            Some(start.map_or("", |i| &s[i..]))
        }
        Err(_) => None,
    };
    let (header, has_time, logread) = match header {
        Some(h) => (h, true, false),
        None => match leading_timestamp(s, ctx) {
            Some(l) => {
                f.timestamp = l.timestamp;
                (l.rest, true, l.logread)
            }
            None => (s, false, false),
        },
    };
    let mut header = header;
    if logread {
        let (word, tail) = split_word(header);
        if let Some(p) = facility_level(word) {
            f.logread_pri = Some(p);
            header = tail.trim_start_matches(' ');
        }
    }
    split_host_tag(header, has_time && !logread, &mut f);
    f
}

/// Byte offset of `part` inside `whole`, if it is a sub-slice of it.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len() && whole.is_char_boundary(start)).then_some(start)
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// `daemon.info` → its PRI value.
fn facility_level(word: &str) -> Option<u8> {
    let (fac, lvl) = word.split_once('.')?;
    let f = Facility::from_name(fac)?;
    let s = Severity::from_name(lvl)?;
    Some(f.code() * 8 + s.code())
}

/// `app:`, `app[pid]:` or `app[pid]` → (app, pid).
fn tag_shape(word: &str) -> Option<(&str, Option<&str>)> {
    let (core, colon) = match word.strip_suffix(':') {
        Some(c) => (c, true),
        None => (word, false),
    };
    if let Some(open) = core.strip_suffix(']').and_then(|c| c.rfind('[')) {
        let name = &core[..open];
        let pid = &core[open + 1..core.len() - 1];
        if !name.is_empty() && !pid.is_empty() {
            return Some((name, Some(pid)));
        }
    }
    (colon && !core.is_empty() && !core.contains('=')).then_some((core, None))
}

/// RFC 3164 `HOSTNAME TAG: MSG` resolution. A hostname is only taken after a timestamp;
/// a word is a tag when it ends with `:` or is `name[pid]`; a lone last word after the
/// hostname is the tag of an empty message.
fn split_host_tag<'a>(header: &'a str, expect_host: bool, f: &mut Fields<'a>) {
    let (first, tail) = split_word(header);
    if first.is_empty() {
        f.message = header.trim_start_matches(' ');
        return;
    }
    if let Some((app, pid)) = tag_shape(first) {
        set_tag(f, app, pid, tail);
        return;
    }
    if !expect_host {
        f.message = header;
        return;
    }
    f.hostname = Some(first);
    let mut rest = tail.trim_start_matches([' ', '\t']);
    let (mut word, mut after) = split_word(rest);
    if facility_level(word).is_some() {
        f.embedded_facility_level = Some(word);
        rest = after.trim_start_matches([' ', '\t']);
        (word, after) = split_word(rest);
    }
    if let Some((app, pid)) = tag_shape(word) {
        set_tag(f, app, pid, after);
    } else if !word.is_empty() && after.trim().is_empty() {
        f.app_name = Some(word);
        f.message = "";
    } else {
        f.message = rest;
    }
}

fn set_tag<'a>(f: &mut Fields<'a>, app: &'a str, pid: Option<&'a str>, after: &'a str) {
    f.app_name = Some(app);
    f.procid = pid.map(Cow::Borrowed);
    f.message = after.strip_prefix([' ', '\t']).unwrap_or(after);
}

/// The octets of `frame` that `part` (a slice of `text`, the lossy decoding of `frame`)
/// came from.
fn raw_slice<'b>(frame: &'b [u8], text: &str, part: &str) -> &'b [u8] {
    let Some(start) = offset_in(text, part) else {
        return frame;
    };
    let (a, b) = (
        lossy_to_raw(frame, start),
        lossy_to_raw(frame, start + part.len()),
    );
    frame.get(a..b).unwrap_or(frame)
}

/// Maps a byte offset in the lossy decoding back to an offset in the original octets.
fn lossy_to_raw(frame: &[u8], lossy_pos: usize) -> usize {
    let (mut lossy, mut raw) = (0usize, 0usize);
    for chunk in frame.utf8_chunks() {
        let v = chunk.valid().len();
        if lossy_pos <= lossy + v {
            return raw + (lossy_pos - lossy);
        }
        lossy += v;
        raw += v;
        if !chunk.invalid().is_empty() {
            lossy += '\u{fffd}'.len_utf8();
            raw += chunk.invalid().len();
        }
    }
    frame.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-read RFC 5424 shape agrees with `syslog_loose` wherever it answers: on every
    /// line of the shared fixtures (cases and malformed) and on variants of a plain line in
    /// each field (separators, nil and odd values, timestamps, SD, message edges).
    #[test]
    fn plain_5424_gives_what_syslog_loose_gives() {
        let ctx = ParseContext::with_year(2026);
        let mut rests: Vec<String> = Vec::new();
        for file in ["cases.jsonl", "malformed.jsonl"] {
            let path = format!("../shared/testdata/syslog/{file}");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            for line in text.lines() {
                let row: serde_json::Value = serde_json::from_str(line).unwrap();
                let raw = match (row["raw"].as_str(), row["raw_b64"].as_str()) {
                    (Some(r), _) => r.as_bytes().to_vec(),
                    (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
                    _ => continue,
                };
                let text = String::from_utf8_lossy(trim_trailer(&raw)).into_owned();
                rests.push(split_leading_pri(&text).1.to_owned());
                rests.push(text);
            }
        }
        let base = [
            "1",
            "2026-11-23T10:00:00.123+01:00",
            "gw.lan",
            "sshd",
            "4242",
            "ID7",
            "-",
            "hello world",
        ];
        let variants: [&[&str]; 8] = [
            &["1", "0", "12", "01", "1x", "+1", "", "<13>1"],
            &[
                "-",
                "-x",
                "2026-11-23T10:00:00Z",
                "2026-11-23T10:00:00.123456789-05:30",
                "2026-13-01T00:00:00Z",
                "2026-11-23 10:00:00Z",
                "2026-11-23T10:00:00",
                "2026-11-23T10:00:60Z",
                "	-",
                "",
            ],
            &[
                "-",
                "host:",
                ":",
                "h:o:s:t",
                "2001:db8::1",
                "hôst",
                "h\x01",
                "",
                "a	b",
            ],
            &["-", "app:", ":", "app[1]", "", "ap p"],
            &["-", "0123", "+5", "-5", "2147483648", "abc", "12ab", "0", ":"],
            &["-", "ID:", ":", "", "é"],
            &["-", "--", "-x", "[a b=\"c\"]", "[a]", "- ", "-\t", "", "[x"],
            &["", " trailing  ", "\u{feff}bom", "é", "\t", "a\tb", " lead", ":"],
        ];
        let join = |f: &[&str]| {
            let head = f[..7].join(" ");
            if f[7].is_empty() {
                head
            } else {
                format!("{head} {}", f[7])
            }
        };
        rests.push(join(&base));
        for (place, values) in variants.iter().enumerate() {
            for v in *values {
                let mut f = base;
                f[place] = v;
                rests.push(join(&f));
                // Also with tabs and double spaces between the header fields.
                rests.push(join(&f).replacen(' ', "\t", 3));
                rests.push(join(&f).replacen(' ', "  ", 5));
            }
        }
        let mut answered = 0;
        for rest in &rests {
            let Some(fast) = plain_5424(rest) else { continue };
            answered += 1;
            let loose = loose_5424(rest, &ctx);
            assert_eq!(fast, loose, "{rest:?}");
            let offset = |f: &Fields| f.timestamp.map(|t| t.offset().local_minus_utc());
            assert_eq!(offset(&fast), offset(&loose), "{rest:?}");
        }
        assert!(
            answered >= 40,
            "the plain path answered only {answered} of {} lines",
            rests.len()
        );
    }

    fn p(line: &str) -> SyslogHeader {
        parse_header(
            line.as_bytes(),
            &ParseContext::with_year(2026),
            HeaderFormat::Auto,
        )
        .unwrap()
    }

    #[test]
    fn bsd_hostless_tag_and_hostname_forms() {
        let h = p("<29>Apr 11 02:38:40 netifd: wan (2702): udhcpc: renew");
        assert_eq!((h.hostname, h.app_name.as_deref()), (None, Some("netifd")));
        assert_eq!(h.message, "wan (2702): udhcpc: renew");
        let h = p("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!");
        assert_eq!((h.hostname.as_deref(), h.app_name), (Some("10.0.0.99"), None));
        assert_eq!(h.message, "Use the BFG!");
        let h = p("May  5 20:46:46 gw user.info kernel:  TTL=126");
        assert_eq!(h.embedded_facility_level.as_deref(), Some("user.info"));
        assert_eq!(
            (h.pri, h.pri_present, h.message.as_str()),
            (13, false, " TTL=126")
        );
        assert_eq!(h.timestamp_utc.unwrap().to_rfc3339(), "2026-05-05T20:46:46+00:00");
    }

    #[test]
    fn rfc5424_sd_bom_and_fallback() {
        let h = p("<29>2 2016-01-15T01:00:43Z h S p - [meta escape=\"\\]\\\"\\\\\"] m");
        assert_eq!(h.structured_data[0].params[0].1, "]\"\\");
        assert_eq!(h.message, "m");
        let h = p("<1>1 - - - - - - \u{feff}x");
        assert!(h.bom);
        assert_eq!(h.message, "x");
        let h = p("<34>1 2003-13-45T99:99:99Z host app - - - impossible date");
        assert_eq!(
            (h.pri, h.timestamp, h.hostname.as_deref()),
            (34, None, Some("host"))
        );
        assert_eq!(h.message, "impossible date");
    }

    #[test]
    fn pri_policy_and_raw_text() {
        for line in [
            "<013>Oct 11 22:14:15 host app: x",
            "<999>1 - - - - - -",
            "<-1>test",
            "<13",
        ] {
            let h = p(line);
            assert_eq!((h.pri, h.pri_present), (13, false), "{line}");
        }
        assert_eq!(p(" ").message, " ");
        assert_eq!(p("<34>").message, "");
        assert!(parse_header(b"\0\0\n", &ParseContext::with_year(2026), HeaderFormat::Auto).is_err());
        let h = parse_header(
            b"<13>Oct 11 22:14:15 host app: \xff ok",
            &ParseContext::with_year(2026),
            HeaderFormat::Auto,
        )
        .unwrap();
        assert_eq!(h.message, "\u{fffd} ok");
        assert_eq!(h.message_b64.as_deref(), Some("/yBvaw=="));
    }
}
