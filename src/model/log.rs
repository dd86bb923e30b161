//! One received log line after parsing: the syslog header, plus what the firewall, DHCP and
//! sshd parsers understood of its message.
//!
//! Field names and meanings follow `shared/testdata/syslog/README.md`, so the JSON of a
//! [`LogEvent`] is exactly what `gatewatch parse-log` prints. Every field is always
//! serialised (no `skip_serializing_if`) so the same types round-trip through postcard in the
//! store. Owns no parsing and no I/O.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A parsed log line. `firewall`, `dhcp` and `auth` are set when the message was recognised
/// by one of the vendor parsers; an unknown line is a plain syslog event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    pub syslog: SyslogHeader,
    pub firewall: Option<FirewallEvent>,
    pub dhcp: Option<DhcpEvent>,
    pub auth: Option<AuthEvent>,
    /// The frame was longer than the maximum message size and was cut.
    pub truncated: bool,
}

/// RFC 5424 / RFC 3164 header fields. A missing or invalid PRI is 13 (user.notice) with
/// `pri_present: false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyslogHeader {
    pub pri: u8,
    pub pri_present: bool,
    pub facility: Facility,
    pub severity: Severity,
    /// RFC 5424 VERSION; `None` for RFC 3164 and unframed text.
    pub version: Option<u32>,
    /// As sent (with its offset); a zone-less timestamp is in the parser's default zone.
    #[serde(serialize_with = "rfc3339::serialize")]
    pub timestamp: Option<DateTime<FixedOffset>>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub timestamp_utc: Option<DateTime<Utc>>,
    pub hostname: Option<String>,
    pub app_name: Option<String>,
    pub procid: Option<String>,
    pub msgid: Option<String>,
    pub structured_data: Vec<SdElement>,
    /// The message text; bytes that are not UTF-8 are replaced with U+FFFD.
    pub message: String,
    /// Base64 of the exact message octets, only when they were not valid UTF-8.
    pub message_b64: Option<String>,
    /// An RFC 5424 BOM started the message and was stripped.
    pub bom: bool,
    /// Structured data was present but malformed; it was kept verbatim in `message`.
    pub sd_invalid: bool,
    /// A `facility.level` word some senders (UniFi, busybox) put after the hostname.
    pub embedded_facility_level: Option<String>,
}

/// Timestamps serialised exactly as chrono's own `Serialize` does (RFC 3339, `AutoSi`
/// fractions, `Z` for UTC), but as one string: chrono hands serde a `Display` value, which
/// postcard formats twice (once to count) one character at a time — a tenth of the ingest
/// CPU. The bytes are the same, so stored values and `parse-log` JSON do not change.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, TimeZone};
    use serde::Serializer;

    pub fn serialize<Tz: TimeZone, S: Serializer>(
        value: &Option<DateTime<Tz>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(t) => s.serialize_some(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => s.serialize_none(),
        }
    }
}

/// One RFC 5424 SD-ELEMENT; values are unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdElement {
    pub id: String,
    pub params: Vec<(String, String)>,
}

/// Syslog facility (RFC 5424 table 1, Linux names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Ntp,
    Audit,
    Alert,
    Clockd,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

const FACILITIES: [Facility; 24] = [
    Facility::Kern,
    Facility::User,
    Facility::Mail,
    Facility::Daemon,
    Facility::Auth,
    Facility::Syslog,
    Facility::Lpr,
    Facility::News,
    Facility::Uucp,
    Facility::Cron,
    Facility::Authpriv,
    Facility::Ftp,
    Facility::Ntp,
    Facility::Audit,
    Facility::Alert,
    Facility::Clockd,
    Facility::Local0,
    Facility::Local1,
    Facility::Local2,
    Facility::Local3,
    Facility::Local4,
    Facility::Local5,
    Facility::Local6,
    Facility::Local7,
];

const FACILITY_NAMES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "audit", "alert", "clockd", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7",
];

impl Facility {
    pub fn from_code(code: u8) -> Option<Facility> {
        FACILITIES.get(usize::from(code)).copied()
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        FACILITY_NAMES[self as usize]
    }

    /// Accepts the names above plus the common aliases `security` (auth) and `kernel`.
    pub fn from_name(name: &str) -> Option<Facility> {
        match name {
            "security" => return Some(Facility::Auth),
            "kernel" => return Some(Facility::Kern),
            _ => {}
        }
        FACILITY_NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| FACILITIES.get(i).copied())
    }
}

/// Syslog severity (RFC 5424 table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Emerg,
    Alert,
    Crit,
    Err,
    Warning,
    Notice,
    Info,
    Debug,
}

const SEVERITIES: [Severity; 8] = [
    Severity::Emerg,
    Severity::Alert,
    Severity::Crit,
    Severity::Err,
    Severity::Warning,
    Severity::Notice,
    Severity::Info,
    Severity::Debug,
];

const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

impl Severity {
    pub fn from_code(code: u8) -> Option<Severity> {
        SEVERITIES.get(usize::from(code)).copied()
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        SEVERITY_NAMES[self as usize]
    }

    /// Accepts the names above plus the aliases `panic`, `error`, `warn` used by logread and
    /// busybox.
    pub fn from_name(name: &str) -> Option<Severity> {
        match name {
            "panic" => return Some(Severity::Emerg),
            "error" => return Some(Severity::Err),
            "warn" => return Some(Severity::Warning),
            _ => {}
        }
        SEVERITY_NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| SEVERITIES.get(i).copied())
    }
}

/// Splits a PRI value (0..=191) into facility and severity.
pub fn split_pri(pri: u8) -> Option<(Facility, Severity)> {
    Some((Facility::from_code(pri >> 3)?, Severity::from_code(pri & 7)?))
}

/// What the firewall decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallAction {
    Pass,
    Block,
    Reject,
}

impl FirewallAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FirewallAction::Pass => "pass",
            FirewallAction::Block => "block",
            FirewallAction::Reject => "reject",
        }
    }
}

/// Which way the packet was going, relative to the firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
    Forward,
}

/// Which parser produced a [`FirewallEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FirewallFormat {
    /// pfSense / OPNsense `filterlog` CSV.
    #[serde(rename = "pfsense-filterlog")]
    Filterlog,
    /// Linux netfilter `LOG`/`NFLOG` text (iptables, nftables `log`, OpenWrt fw3/fw4, UniFi).
    #[serde(rename = "netfilter-log")]
    Netfilter,
    /// The tail of a netfilter record whose start was cut off by the sender.
    #[serde(rename = "netfilter-log-fragment")]
    NetfilterFragment,
}

/// A firewall log record. Fields the line did not carry, or carried in a form that does not
/// parse (an impossible IP, a port over 65535), are `None`, never guessed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirewallEvent {
    pub vendor_format: FirewallFormat,
    pub action: Option<FirewallAction>,
    pub direction: Option<Direction>,
    /// The interface the rule matched on: the input interface, else the output one.
    pub interface: Option<String>,
    pub in_interface: Option<String>,
    pub out_interface: Option<String>,
    pub ip_version: Option<u8>,
    /// Lower-case protocol name (`tcp`, `udp`, `icmp`, `icmpv6`, `igmp`, `carp`, …).
    pub protocol: Option<String>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub rule: Option<String>,
    pub ruleset: Option<String>,
    /// pfSense/OPNsense rule tracker id.
    pub tracker: Option<String>,
    /// pfSense/OPNsense reason (`match`, `bad-offset`, …).
    pub reason: Option<String>,
    /// netfilter log prefix, as written.
    pub prefix: Option<String>,
    /// IP total length (IPv4) or payload length (IPv6), as logged.
    pub length: Option<u32>,
    pub tcp_flags: Option<Vec<String>>,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: Option<u8>,
    pub mac: Option<String>,
    /// The ICMP/ICMPv6 fields that follow the addresses, verbatim.
    pub icmp_detail: Option<Vec<String>>,
    /// The record was cut short; only some fields are present.
    pub partial: bool,
}

impl FirewallEvent {
    pub fn new(vendor_format: FirewallFormat) -> Self {
        FirewallEvent {
            vendor_format,
            action: None,
            direction: None,
            interface: None,
            in_interface: None,
            out_interface: None,
            ip_version: None,
            protocol: None,
            src: None,
            dst: None,
            src_port: None,
            dst_port: None,
            rule: None,
            ruleset: None,
            tracker: None,
            reason: None,
            prefix: None,
            length: None,
            tcp_flags: None,
            ttl: None,
            mac: None,
            icmp_detail: None,
            partial: false,
        }
    }
}

/// Which DHCP server wrote a [`DhcpEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DhcpFormat {
    #[serde(rename = "dnsmasq")]
    Dnsmasq,
    #[serde(rename = "isc-dhcpd")]
    IscDhcpd,
}

/// A DHCP server transaction line (`DHCPACK`, `DHCPOFFER`, …): feeds passive discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpEvent {
    pub vendor_format: DhcpFormat,
    /// The message type as logged, e.g. `DHCPACK`.
    pub event: String,
    pub interface: Option<String>,
    pub ip: Option<IpAddr>,
    /// Lower-case `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    pub hostname: Option<String>,
}

/// What an sshd authentication line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthOutcome {
    /// `Failed password|publickey|… for [invalid user] U from IP port P`.
    Failed,
    /// `Invalid user U from IP port P`.
    InvalidUser,
    /// `maximum authentication attempts exceeded for U from IP port P`.
    TooManyAttempts,
    /// pam_unix `authentication failure; … rhost=IP user=U`.
    PamFailure,
    /// `Accepted password|publickey for U from IP port P`.
    Accepted,
}

/// An sshd authentication event (failures feed brute-force views; `Accepted` is kept for
/// context).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthEvent {
    pub vendor_format: String,
    pub outcome: AuthOutcome,
    /// `password`, `publickey`, `keyboard-interactive/pam`, … when logged.
    pub method: Option<String>,
    pub user: Option<String>,
    pub invalid_user: bool,
    pub src: Option<IpAddr>,
    pub src_port: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_serialise_as_chronos_own_impl() {
        #[derive(Serialize)]
        struct Ours(#[serde(serialize_with = "rfc3339::serialize")] Option<DateTime<FixedOffset>>);
        let texts = [
            "2026-11-23T19:20:20Z",
            "2003-10-11T22:14:15.003-07:00",
            "2016-01-15T01:00:43.123456+05:45",
            "1985-04-12T23:20:50.52+00:00",
            "2016-12-31T23:59:60.5Z",
            "2026-02-05T17:32:18.000000001+14:00",
        ];
        for t in texts {
            let dt = DateTime::parse_from_rfc3339(t).unwrap();
            for v in [Some(dt), None] {
                let chrono = postcard::to_allocvec(&v).unwrap();
                assert_eq!(postcard::to_allocvec(&Ours(v)).unwrap(), chrono, "{t}");
                assert_eq!(
                    serde_json::to_string(&Ours(v)).unwrap(),
                    serde_json::to_string(&v).unwrap()
                );
            }
        }
    }

    #[test]
    fn pri_splits_into_names() {
        let (f, s) = split_pri(134).unwrap();
        assert_eq!((f.as_str(), s.as_str()), ("local0", "info"));
        let (f, s) = split_pri(13).unwrap();
        assert_eq!((f.as_str(), s.as_str()), ("user", "notice"));
        assert_eq!(split_pri(192), None);
        assert_eq!(Facility::from_name("daemon"), Some(Facility::Daemon));
        assert_eq!(Severity::from_name("warn"), Some(Severity::Warning));
        assert_eq!(serde_json::to_string(&Facility::Local7).unwrap(), "\"local7\"");
    }

    #[test]
    fn events_round_trip_through_postcard() {
        let ts = DateTime::parse_from_rfc3339("2006-10-29T01:59:59.156+01:00").unwrap();
        let mut fw = FirewallEvent::new(FirewallFormat::Netfilter);
        fw.src = "fe80::1".parse().ok();
        fw.tcp_flags = Some(vec!["SYN".into()]);
        let ev = LogEvent {
            syslog: SyslogHeader {
                pri: 7,
                pri_present: true,
                facility: Facility::Kern,
                severity: Severity::Debug,
                version: Some(1),
                timestamp: Some(ts),
                timestamp_utc: Some(ts.with_timezone(&Utc)),
                hostname: Some("h".into()),
                app_name: None,
                procid: None,
                msgid: None,
                structured_data: vec![SdElement {
                    id: "a@1".into(),
                    params: vec![("k".into(), "v".into())],
                }],
                message: "m".into(),
                message_b64: None,
                bom: true,
                sd_invalid: false,
                embedded_facility_level: None,
            },
            firewall: Some(fw),
            dhcp: None,
            auth: None,
            truncated: false,
        };
        let bytes = postcard::to_allocvec(&ev).unwrap();
        assert_eq!(postcard::from_bytes::<LogEvent>(&bytes).unwrap(), ev);
    }
}
