//! The syslog oracle (`shared/testdata/syslog`) through the real library: every row of
//! cases.jsonl compared field by field the way `shared/tools/grade_syslog.py` compares
//! `parse-log` output, malformed.jsonl's reject / accept-raw expectations, framing.jsonl
//! through the real framer (whole and split at every byte), and random input that must
//! never panic. Expected values come from the files only.

use base64::Engine as _;
use gatewatch::logs::{self, Framer, FramerConfig, LineFormat, ParseContext};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::Value;
use std::path::PathBuf;

fn testdata(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        root.join("../shared/testdata/syslog").join(name),
        PathBuf::from("/work/shared/testdata/syslog").join(name),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| panic!("testdata {name} not found beside the crate (../shared/testdata/syslog)"))
}

fn rows(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(testdata(name)).expect("read testdata");
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("testdata row is JSON"))
        .collect();
    assert!(!rows.is_empty(), "{name} has no rows");
    rows
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("valid base64 in testdata")
}

/// The row's bytes, as the grader builds them (`raw_b64` first, then `raw`, then `raw_gen`).
fn raw_bytes(r: &Value) -> Option<Vec<u8>> {
    if let Some(s) = r.get("raw_b64").and_then(Value::as_str) {
        return Some(b64(s));
    }
    if let Some(s) = r.get("raw").and_then(Value::as_str) {
        return Some(s.as_bytes().to_vec());
    }
    let g = r.get("raw_gen")?;
    let mut out = g["prefix"].as_str()?.as_bytes().to_vec();
    let unit = g["repeat"].as_str()?.as_bytes();
    for _ in 0..g["count"].as_u64()? {
        out.extend_from_slice(unit);
    }
    out.extend_from_slice(g["suffix"].as_str().unwrap_or("").as_bytes());
    Some(out)
}

/// Python's `str()` of a JSON value, as the grader compares firewall and DHCP fields.
fn py_str(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "None".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "True" } else { "False" }.into(),
        Some(other) => other.to_string(),
    }
}

fn ctx() -> ParseContext {
    ParseContext::with_year(2026)
}

/// Runs bytes through the same path as `parse-log`: line framing, then the parser.
fn parse_as_line(bytes: &[u8]) -> Value {
    let mut input = bytes.to_vec();
    input.push(b'\n');
    let mut out = Vec::new();
    logs::parse_lines(&mut input.as_slice(), &mut out, &ctx(), LineFormat::Auto).expect("parse_lines");
    let text = String::from_utf8(out).expect("JSON output is UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one output line per input line");
    serde_json::from_str(lines[0]).expect("output is JSON")
}

/// A datagram (UDP) carries embedded LF as data; the grader skips such rows, we do not.
fn parse_as_datagram(bytes: &[u8]) -> Value {
    match logs::parse_bytes(bytes, &ctx(), LineFormat::Auto) {
        Ok(ev) => serde_json::to_value(&ev).expect("event serialises"),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    }
}

fn parse_row(bytes: &[u8]) -> Value {
    let line_safe = !bytes.contains(&b'\n') && !bytes.contains(&b'\r');
    if line_safe {
        parse_as_line(bytes)
    } else {
        parse_as_datagram(bytes)
    }
}

#[test]
fn every_case_matches_the_oracle() {
    let rows = rows("cases.jsonl");
    let mut checks = 0;
    let mut fails = Vec::new();
    let mut check = |id: &str, what: &str, ok: bool, detail: String| {
        checks += 1;
        if !ok {
            fails.push(format!("{id}: {what}: {detail}"));
        }
    };
    for r in &rows {
        let id = r["id"].as_str().unwrap_or("?");
        let bytes = raw_bytes(r).expect("case has raw bytes");
        let got = parse_row(&bytes);
        let sl = got.get("syslog").cloned().unwrap_or(Value::Null);
        let exp = &r["expected"];
        if r.get("soft").and_then(Value::as_bool) == Some(true) {
            let has = |v: &Value| {
                v.get("message")
                    .and_then(Value::as_str)
                    .is_some_and(|m| !m.is_empty())
            };
            let ok = got.get("error").is_none() && has(&sl) == has(exp);
            check(id, "soft: parsed, message kept", ok, format!("{got}"));
            continue;
        }
        for k in [
            "facility", "severity", "hostname", "app_name", "procid", "msgid", "message",
        ] {
            if let Some(e) = exp.get(k) {
                let g = sl.get(k).unwrap_or(&Value::Null);
                check(
                    id,
                    &format!("syslog.{k}"),
                    g == e,
                    format!("got {g}, expected {e}"),
                );
            }
        }
        if let Some(e) = exp.get("timestamp_utc").and_then(Value::as_str) {
            let g = sl
                .get("timestamp_utc")
                .and_then(Value::as_str)
                .or_else(|| sl.get("timestamp").and_then(Value::as_str))
                .unwrap_or("")
                .replace("+00:00", "Z");
            let ok = g.get(..19).is_some() && g.get(..19) == e.get(..19);
            check(id, "syslog.timestamp", ok, format!("got {g}, expected {e}"));
        }
        if let Some(fw) = r.get("firewall").filter(|v| v.is_object()) {
            let gf = got.get("firewall").cloned().unwrap_or(Value::Null);
            for k in [
                "action",
                "direction",
                "interface",
                "ip_version",
                "protocol",
                "src",
                "dst",
                "src_port",
                "dst_port",
            ] {
                if fw.get(k).is_some_and(|v| !v.is_null()) {
                    let (g, e) = (py_str(gf.get(k)).to_lowercase(), py_str(fw.get(k)).to_lowercase());
                    check(
                        id,
                        &format!("firewall.{k}"),
                        g == e,
                        format!("got {g}, expected {e}"),
                    );
                }
            }
        }
        if let Some(dh) = r.get("dhcp").filter(|v| v.is_object()) {
            let gd = got.get("dhcp").cloned().unwrap_or(Value::Null);
            for k in ["event", "ip", "mac", "hostname"] {
                if dh.get(k).is_some_and(|v| !v.is_null()) {
                    let (g, e) = (py_str(gd.get(k)).to_lowercase(), py_str(dh.get(k)).to_lowercase());
                    check(id, &format!("dhcp.{k}"), g == e, format!("got {g}, expected {e}"));
                }
            }
        }
    }
    assert!(checks > rows.len(), "ran {checks} checks on {} rows", rows.len());
    assert!(
        fails.is_empty(),
        "{} of {checks} checks fail:\n{}",
        fails.len(),
        fails.join("\n")
    );
}

#[test]
fn malformed_inputs_are_rejected_or_kept_raw() {
    let rows = rows("malformed.jsonl");
    let mut fails = Vec::new();
    for r in &rows {
        let id = r["id"].as_str().unwrap_or("?");
        let Some(bytes) = raw_bytes(r) else {
            fails.push(format!("{id}: no raw bytes"));
            continue;
        };
        let got = if bytes.len() >= 70_000 {
            // Too long for a line the grader sends; through the framer as parse-log reads it.
            parse_as_line(&bytes)
        } else {
            parse_row(&bytes)
        };
        let sl = got.get("syslog").cloned().unwrap_or(Value::Null);
        let behaviour = r["expected_behaviour"].as_str().unwrap_or("");
        let why = r["why"].as_str().unwrap_or("");
        let ok = match behaviour {
            // m030's own note allows "dropped or truncated": truncation (flagged) is our policy.
            "reject" if why.contains("dropped or truncated") => {
                got.get("error").is_some() || got.get("truncated") == Some(&Value::Bool(true))
            }
            "reject" => got.get("error").is_some(),
            _ => got.get("error").is_none() && sl.get("message").is_some_and(Value::is_string),
        };
        if !ok {
            fails.push(format!("{id}: {behaviour}: got {got}"));
            continue;
        }
        let Some(expect) = r.get("expect").and_then(Value::as_object) else {
            continue;
        };
        let message = sl.get("message").and_then(Value::as_str).unwrap_or("");
        for (k, e) in expect {
            let ok = match k.as_str() {
                "pri" | "pri_present" | "message" | "app_name" | "hostname" => sl.get(k) == Some(e),
                "timestamp" => sl.get("timestamp").is_none_or(Value::is_null) == e.is_null(),
                "message_contains" => e.as_str().is_some_and(|s| message.contains(s)),
                "message_prefix" => e.as_str().is_some_and(|s| message.starts_with(s)),
                "message_b64_exact" => sl
                    .get("message_b64")
                    .and_then(Value::as_str)
                    .is_some_and(|m| bytes.ends_with(&b64(m))),
                "firewall" => {
                    let fw = &got["firewall"];
                    fw.is_null()
                        || (fw["partial"] == Value::Bool(true)
                            && fw["action"] == "block"
                            && fw["direction"] == "in"
                            && fw["src"].is_null())
                }
                "dhcp" => {
                    let d = &got["dhcp"];
                    d.is_null() || (d["event"] == "DHCPACK" && d["ip"].is_null() && d["mac"].is_null())
                }
                key if key.starts_with("firewall.") => {
                    let g = &got["firewall"][&key["firewall.".len()..]];
                    match e.as_str() {
                        // "null or verbatim string, never a parsed IP"
                        Some(s) if s.starts_with("null or") => g.is_null(),
                        _ => g == e,
                    }
                }
                // Receiver- or strict-parser-level expectations: no per-line field to compare.
                "events" | "events_udp" | "strict_rfc5424_valid" | "truncation_allowed" => true,
                _ => {
                    fails.push(format!("{id}: unknown expectation {k}"));
                    true
                }
            };
            if !ok {
                fails.push(format!("{id}: expect.{k} = {e}, got {got}"));
            }
        }
    }
    assert!(
        fails.is_empty(),
        "{} malformed rows fail:\n{}",
        fails.len(),
        fails.join("\n")
    );
}

/// Feeds `stream` in chunks; returns (frame, truncated) pairs and the number of errors.
fn frame_stream(stream: &[u8], chunk: usize) -> (Vec<(Vec<u8>, bool)>, usize) {
    let mut framer = Framer::new(FramerConfig::stream());
    let (mut frames, mut errors) = (Vec::new(), 0);
    let mut take = |framer: &mut Framer| {
        while let Some(f) = framer.next_frame() {
            match f {
                Ok(f) => frames.push((f.data.to_vec(), f.truncated)),
                Err(_) => errors += 1,
            }
        }
    };
    for part in stream.chunks(chunk.max(1)) {
        framer.push(part);
        take(&mut framer);
        assert!(framer.buffered() <= 2 * FramerConfig::stream().max_frame_len + chunk);
    }
    framer.finish();
    take(&mut framer);
    (frames, errors)
}

#[test]
fn framing_rows_through_the_real_framer() {
    let rows = rows("framing.jsonl");
    for r in &rows {
        let id = r["id"].as_str().unwrap_or("?");
        let stream = b64(r["stream_b64"].as_str().expect("stream_b64"));
        let expected: Vec<&str> = r["expected_frames"]
            .as_array()
            .expect("expected_frames")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let chunk = r
            .get("deliver_in_chunks_of")
            .and_then(Value::as_u64)
            .map_or(stream.len(), |c| c as usize);
        let (frames, errors) = frame_stream(&stream, chunk);
        let texts: Vec<String> = frames
            .iter()
            .map(|f| String::from_utf8_lossy(&f.0).into_owned())
            .collect();
        let exact = texts.iter().map(String::as_str).eq(expected.iter().copied());
        let placeholder = |s: &str| s.starts_with('(') || s.starts_with("...");
        let ok = match r["expected_behaviour"].as_str().unwrap_or("") {
            "accept" => exact,
            "accept-or-reject-second" => {
                exact
                    || (texts.len() == 1
                        && expected.first().copied() == texts.first().map(String::as_str)
                        && errors > 0)
            }
            "reject" => texts.is_empty(),
            "reject-or-accept-raw" => texts.len() <= 1,
            "accept-raw" => {
                // Concrete frames must appear in place; placeholders stand for whatever the
                // resync policy yields (a truncated frame, a garbage frame, or nothing).
                let firsts_ok = expected
                    .iter()
                    .take_while(|e| !placeholder(e))
                    .enumerate()
                    .all(|(i, e)| texts.get(i).map(String::as_str) == Some(*e));
                let last_ok = match expected.last() {
                    Some(e) if !placeholder(e) && expected.first().is_some_and(|f| placeholder(f)) => {
                        texts.last().map(String::as_str) == Some(*e)
                            && frames[..frames.len() - 1].iter().all(|f| f.1)
                    }
                    _ => true,
                };
                firsts_ok && last_ok
            }
            other => panic!("{id}: unknown expected_behaviour {other}"),
        };
        assert!(ok, "{id}: got {texts:?} ({errors} errors), expected {expected:?}");
        // Any split of the stream must give the same frames.
        assert_eq!(
            frame_stream(&stream, 1),
            (frames, errors),
            "{id}: byte-by-byte feeding differs"
        );
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x6761_7465);
    let seeds: Vec<Vec<u8>> = rows("cases.jsonl").iter().filter_map(raw_bytes).collect();
    assert!(!seeds.is_empty());
    let formats = [
        LineFormat::Auto,
        LineFormat::Rfc5424,
        LineFormat::Rfc3164,
        LineFormat::Filterlog,
        LineFormat::Netfilter,
        LineFormat::Dnsmasq,
        LineFormat::IscDhcpd,
        LineFormat::Sshd,
    ];
    let alphabet = b"<>[]=\" :-,.0123456789TZ+\\\n\r\0\xef\xbb\xbfaAINOUTSRCDHCP";
    for i in 0..20_000 {
        let mut line = if i % 3 == 0 {
            (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect::<Vec<u8>>()
        } else {
            seeds[rng.gen_range(0..seeds.len())].clone()
        };
        for _ in 0..rng.gen_range(0..6) {
            let pos = rng.gen_range(0..=line.len());
            match rng.gen_range(0..4) {
                0 if !line.is_empty() => {
                    let p = pos.min(line.len() - 1);
                    line[p] = alphabet[rng.gen_range(0..alphabet.len())];
                }
                1 => line.insert(pos, alphabet[rng.gen_range(0..alphabet.len())]),
                2 => line.truncate(pos),
                _ => {
                    let tail = line[pos..].to_vec();
                    line.extend_from_slice(&tail);
                }
            }
        }
        let format = formats[i % formats.len()];
        let _ = logs::parse_bytes(&line, &ctx(), format);
        let mut framer = Framer::new(FramerConfig::stream());
        for part in line.chunks(rng.gen_range(1..16)) {
            framer.push(part);
            while let Some(f) = framer.next_frame() {
                if let Ok(f) = f {
                    let _ = logs::parse_frame(&f, &ctx(), format);
                }
            }
        }
        framer.finish();
        while framer.next_frame().is_some() {}
    }
}
