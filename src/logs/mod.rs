//! The sans-IO logs core: frame a byte stream, parse each frame's syslog header, then let the
//! vendor parsers read the message. A receiver (UDP datagram or TCP/TLS stream) and
//! `gatewatch parse-log` run the same path:
//!
//! ```text
//! bytes ─► framing::Framer ─► Frame ─► parse_frame(frame, ctx, format) ─► LogEvent
//!                                          │ syslog::parse_header (syslog_loose + fixes)
//!                                          └ filterlog / netfilter / dhcp / sshd
//! ```
//!
//! Modules: [`framing`] (RFC 6587), [`syslog`] (RFC 5424/3164 headers), [`timestamp`]
//! (year/zone rules), [`filterlog`] (pfSense/OPNsense), [`netfilter`] (iptables, nftables,
//! OpenWrt fw3/fw4, UniFi), [`dhcp`] (dnsmasq, ISC dhcpd), [`sshd`]. No sockets, clocks or
//! store here: the caller passes the receive time in a [`ParseContext`].

pub mod dhcp;
pub mod filterlog;
pub mod framing;
pub mod netfilter;
pub mod sshd;
pub mod stats;
pub mod syslog;
pub mod timestamp;

pub use framing::{Frame, Framer, FramerConfig, FramingError, FramingMode};
pub use syslog::{HeaderFormat, SyslogError};
pub use timestamp::{ParseContext, YearRule};

use crate::model::LogEvent;
use std::io::Write;

/// What the lines are: `auto` detects everything; the others force the header syntax or the
/// message parser (the header is still read with auto-detection then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    Auto,
    Rfc5424,
    Rfc3164,
    Filterlog,
    Netfilter,
    Dnsmasq,
    IscDhcpd,
    Sshd,
}

impl LineFormat {
    pub const NAMES: &'static str = "auto, rfc5424, rfc3164, filterlog, netfilter, dnsmasq, isc-dhcpd, sshd";

    fn header_format(self) -> HeaderFormat {
        match self {
            LineFormat::Rfc5424 => HeaderFormat::Rfc5424,
            LineFormat::Rfc3164 => HeaderFormat::Rfc3164,
            _ => HeaderFormat::Auto,
        }
    }
}

impl std::str::FromStr for LineFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => LineFormat::Auto,
            "rfc5424" => LineFormat::Rfc5424,
            "rfc3164" | "bsd" => LineFormat::Rfc3164,
            "filterlog" | "pfsense" | "opnsense" => LineFormat::Filterlog,
            "netfilter" | "iptables" | "nftables" | "openwrt" | "unifi" => LineFormat::Netfilter,
            "dnsmasq" => LineFormat::Dnsmasq,
            "isc-dhcpd" | "dhcpd" => LineFormat::IscDhcpd,
            "sshd" => LineFormat::Sshd,
            other => {
                return Err(format!(
                    "unknown log format {other:?}; use one of: {}",
                    Self::NAMES
                ))
            }
        })
    }
}

/// Why a frame produced no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Syslog(#[from] SyslogError),
}

/// Parses one frame into an event. Never panics.
pub fn parse_frame(
    frame: &Frame<'_>,
    ctx: &ParseContext,
    format: LineFormat,
) -> Result<LogEvent, ParseError> {
    let mut ev = parse_bytes(frame.data, ctx, format)?;
    ev.truncated = frame.truncated;
    Ok(ev)
}

/// Parses one message (a UDP datagram, or a frame's bytes) into an event. Never panics.
pub fn parse_bytes(bytes: &[u8], ctx: &ParseContext, format: LineFormat) -> Result<LogEvent, ParseError> {
    let syslog = syslog::parse_header(bytes, ctx, format.header_format())?;
    let mut ev = LogEvent {
        syslog,
        firewall: None,
        dhcp: None,
        auth: None,
        truncated: false,
    };
    let msg = ev.syslog.message.as_str();
    let app = ev.syslog.app_name.as_deref().unwrap_or("");
    match format {
        LineFormat::Filterlog => ev.firewall = filterlog::parse(msg),
        LineFormat::Netfilter => ev.firewall = netfilter::parse(msg),
        LineFormat::Dnsmasq => ev.dhcp = dhcp::parse_dnsmasq(msg),
        LineFormat::IscDhcpd => ev.dhcp = dhcp::parse_isc(msg),
        LineFormat::Sshd => ev.auth = sshd::parse(msg),
        LineFormat::Auto | LineFormat::Rfc5424 | LineFormat::Rfc3164 => match app {
            "filterlog" => ev.firewall = filterlog::parse(msg),
            "dnsmasq-dhcp" | "dnsmasq" => ev.dhcp = dhcp::parse_dnsmasq(msg),
            "dhcpd" => ev.dhcp = dhcp::parse_isc(msg),
            "sshd" | "sshd-session" => ev.auth = sshd::parse(msg),
            // A netfilter record is logged by the kernel, or relayed without a tag.
            "kernel" | "" if netfilter::looks_like(msg) => ev.firewall = netfilter::parse(msg),
            _ => {}
        },
    }
    Ok(ev)
}

/// Writes one `parse-log` output line: the event as JSON, or `{"error": "…"}`.
pub fn write_json_line(out: &mut impl Write, result: &Result<LogEvent, ParseError>) -> std::io::Result<()> {
    match result {
        Ok(ev) => serde_json::to_writer(&mut *out, ev)?,
        Err(e) => serde_json::to_writer(&mut *out, &serde_json::json!({ "error": e.to_string() }))?,
    }
    out.write_all(b"\n")
}

/// Reads lines from `input`, parses each one, writes one JSON line per input line. Lines
/// longer than the maximum message size are truncated (and flagged), never buffered whole.
pub fn parse_lines(
    input: &mut impl std::io::Read,
    out: &mut impl Write,
    ctx: &ParseContext,
    format: LineFormat,
) -> std::io::Result<()> {
    let mut framer = Framer::new(FramerConfig::lines());
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        framer.push(&chunk[..n]);
        drain(&mut framer, out, ctx, format)?;
    }
    framer.finish();
    drain(&mut framer, out, ctx, format)?;
    out.flush()
}

fn drain(
    framer: &mut Framer,
    out: &mut impl Write,
    ctx: &ParseContext,
    format: LineFormat,
) -> std::io::Result<()> {
    while let Some(frame) = framer.next_frame() {
        // Line framing has no stream-level errors; a frame is always returned.
        if let Ok(frame) = frame {
            write_json_line(out, &parse_frame(&frame, ctx, format))?;
        }
    }
    Ok(())
}
