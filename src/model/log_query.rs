//! A received log line as stored ([`StoredLog`]), the index terms it is found by
//! ([`IndexTerm`]), and a search over stored lines ([`LogQuery`]): parsed from the strings a
//! form or the API sends, and matched against one line.
//!
//! Owns no I/O: the store turns index terms into keys and runs the scan; the web layer turns
//! request parameters into a [`RawLogQuery`].

use super::{FirewallAction, LogEvent, Timestamp};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// How a line reached the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// One received line: when and from whom it arrived, and what it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLog {
    /// Receive time (the key's time; the sender's own timestamp is in the header).
    pub received: Timestamp,
    pub sender: IpAddr,
    pub transport: Transport,
    pub event: LogEvent,
}

/// Longest string kept in an index term; longer host or interface names are cut.
pub const MAX_TERM_BYTES: usize = 64;

/// What a stored line can be found by, besides its time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexTerm {
    /// An address the line is about: firewall source/destination, DHCP lease, sshd client.
    Ip(IpAddr),
    /// A firewall source or destination port.
    Port(u16),
    Action(FirewallAction),
    /// Firewall protocol, lower case.
    Protocol(String),
    /// Firewall interface (the matched one, plus in/out), lower case.
    Interface(String),
    /// The header's hostname, lower case.
    Hostname(String),
    /// The address the line came from.
    Sender(IpAddr),
}

fn term_text(s: &str) -> String {
    let mut t = s.to_ascii_lowercase();
    if t.len() > MAX_TERM_BYTES {
        let mut cut = MAX_TERM_BYTES;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
    }
    // NUL ends a string term in the index key.
    if t.contains('\0') {
        t = t.replace('\0', " ");
    }
    t
}

impl StoredLog {
    /// Every index term of this line, deduplicated.
    pub fn index_terms(&self) -> Vec<IndexTerm> {
        let mut terms = vec![IndexTerm::Sender(self.sender)];
        let ev = &self.event;
        if let Some(h) = ev.syslog.hostname.as_deref() {
            terms.push(IndexTerm::Hostname(term_text(h)));
        }
        if let Some(fw) = &ev.firewall {
            terms.extend(fw.src.into_iter().chain(fw.dst).map(IndexTerm::Ip));
            terms.extend(fw.src_port.into_iter().chain(fw.dst_port).map(IndexTerm::Port));
            terms.extend(fw.action.map(IndexTerm::Action));
            terms.extend(fw.protocol.as_deref().map(|p| IndexTerm::Protocol(term_text(p))));
            for name in [&fw.interface, &fw.in_interface, &fw.out_interface]
                .into_iter()
                .flatten()
            {
                terms.push(IndexTerm::Interface(term_text(name)));
            }
        }
        if let Some(ip) = ev.dhcp.as_ref().and_then(|d| d.ip) {
            terms.push(IndexTerm::Ip(ip));
        }
        if let Some(ip) = ev.auth.as_ref().and_then(|a| a.src) {
            terms.push(IndexTerm::Ip(ip));
        }
        terms.sort();
        terms.dedup();
        terms
    }

    /// The addresses the line is about (what `ip=` matches).
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let ev = &self.event;
        let fw = ev.firewall.as_ref();
        fw.and_then(|f| f.src)
            .into_iter()
            .chain(fw.and_then(|f| f.dst))
            .chain(ev.dhcp.as_ref().and_then(|d| d.ip))
            .chain(ev.auth.as_ref().and_then(|a| a.src))
    }
}

/// A search as typed: every field optional, all strings. Empty strings count as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RawLogQuery {
    /// An address or CIDR the line is about (firewall source/destination, DHCP, sshd).
    pub ip: Option<String>,
    /// A firewall source or destination port.
    pub port: Option<String>,
    /// Firewall protocol, e.g. tcp, udp, icmp.
    pub protocol: Option<String>,
    /// pass, block or reject.
    pub action: Option<String>,
    /// Firewall interface, e.g. igb0, eth1, br-lan.
    pub interface: Option<String>,
    /// The sender's hostname (as in the header) or address.
    pub host: Option<String>,
    /// Words that must all appear in the message, hostname or program (case-insensitive).
    pub q: Option<String>,
    /// Received at or after this time: RFC 3339, or a duration back from now like 15m, 24h, 7d.
    pub from: Option<String>,
    /// Received before this time: RFC 3339.
    pub to: Option<String>,
}

/// A validated search. All set fields must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub ip: Option<IpNet>,
    pub port: Option<u16>,
    pub protocol: Option<String>,
    pub action: Option<FirewallAction>,
    pub interface: Option<String>,
    /// Lower-case hostname, or an address matched against the sender.
    pub host: Option<HostFilter>,
    /// Lower-case words, all required.
    pub words: Vec<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFilter {
    Name(String),
    Sender(IpAddr),
}

/// What is wrong with a search parameter: the parameter's name and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct QueryError {
    pub field: &'static str,
    pub message: String,
}

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Parses `3600`, `15m`, `24h`, `7d`, `2w`.
fn parse_ago(s: &str) -> Option<Duration> {
    humantime::parse_duration(s).ok()
}

fn parse_time(field: &'static str, s: &str, now: Timestamp, relative: bool) -> Result<Timestamp, QueryError> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        return Ok(Timestamp(ms));
    }
    if relative {
        if let Some(d) = parse_ago(s) {
            return Ok(now.saturating_sub(d));
        }
    }
    let hint = if relative {
        " or a duration like 15m, 24h, 7d"
    } else {
        ""
    };
    Err(QueryError {
        field,
        message: format!("\"{s}\" is not a time; write RFC 3339 like 2026-11-23T10:00:00Z{hint}"),
    })
}

impl LogQuery {
    /// Validates a typed search; relative times count back from `now`.
    pub fn parse(raw: &RawLogQuery, now: Timestamp) -> Result<LogQuery, QueryError> {
        let err = |field: &'static str, message: String| QueryError { field, message };
        let ip = match set(&raw.ip) {
            None => None,
            Some(s) => Some(
                s.parse::<IpNet>()
                    .map(|n| n.trunc())
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        err(
                            "ip",
                            format!("\"{s}\" is not an address or CIDR, e.g. 192.0.2.7 or 10.0.0.0/8"),
                        )
                    })?,
            ),
        };
        let port = match set(&raw.port) {
            None => None,
            Some(s) => Some(
                s.parse::<u16>()
                    .map_err(|_| err("port", format!("\"{s}\" is not a port (0 to 65535)")))?,
            ),
        };
        let action = match set(&raw.action).map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("pass" | "allow" | "accept") => Some(FirewallAction::Pass),
            Some("block" | "drop" | "deny") => Some(FirewallAction::Block),
            Some("reject") => Some(FirewallAction::Reject),
            Some(other) => return Err(err("action", format!("\"{other}\" is not pass, block or reject"))),
        };
        let host = set(&raw.host).map(|h| match h.parse::<IpAddr>() {
            Ok(ip) => HostFilter::Sender(ip),
            Err(_) => HostFilter::Name(term_text(h)),
        });
        let words = set(&raw.q)
            .map(|q| q.split_whitespace().map(str::to_lowercase).collect())
            .unwrap_or_default();
        let from = set(&raw.from)
            .map(|s| parse_time("from", s, now, true))
            .transpose()?;
        let to = set(&raw.to)
            .map(|s| parse_time("to", s, now, false))
            .transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(err("to", "must be later than from".into()));
            }
        }
        Ok(LogQuery {
            ip,
            port,
            protocol: set(&raw.protocol).map(term_text),
            action,
            interface: set(&raw.interface).map(term_text),
            host,
            words,
            from,
            to,
        })
    }

    /// Whether `log` satisfies every set field (the time range included).
    pub fn matches(&self, log: &StoredLog) -> bool {
        if self.from.is_some_and(|f| log.received < f) || self.to.is_some_and(|t| log.received >= t) {
            return false;
        }
        if let Some(net) = &self.ip {
            if !log.addresses().any(|a| net.contains(&a)) {
                return false;
            }
        }
        let fw = log.event.firewall.as_ref();
        if let Some(p) = self.port {
            if !fw.is_some_and(|f| f.src_port == Some(p) || f.dst_port == Some(p)) {
                return false;
            }
        }
        if let Some(a) = self.action {
            if fw.and_then(|f| f.action) != Some(a) {
                return false;
            }
        }
        if let Some(p) = &self.protocol {
            if !fw
                .and_then(|f| f.protocol.as_deref())
                .is_some_and(|x| x.eq_ignore_ascii_case(p))
            {
                return false;
            }
        }
        if let Some(i) = &self.interface {
            let any = fw.is_some_and(|f| {
                [&f.interface, &f.in_interface, &f.out_interface]
                    .into_iter()
                    .flatten()
                    .any(|n| term_text(n) == *i)
            });
            if !any {
                return false;
            }
        }
        let host_ok = match &self.host {
            None => true,
            Some(HostFilter::Sender(ip)) => log.sender == *ip,
            Some(HostFilter::Name(n)) => log
                .event
                .syslog
                .hostname
                .as_deref()
                .is_some_and(|h| term_text(h) == *n),
        };
        if !host_ok {
            return false;
        }
        if !self.words.is_empty() {
            let h = &log.event.syslog;
            let fields = [
                h.message.as_str(),
                h.hostname.as_deref().unwrap_or(""),
                h.app_name.as_deref().unwrap_or(""),
            ];
            for w in &self.words {
                if !fields.iter().any(|f| contains_ignore_case(f, w)) {
                    return false;
                }
            }
        }
        true
    }

    /// Whether nothing but the time range is set.
    pub fn is_time_only(&self) -> bool {
        self.ip.is_none()
            && self.port.is_none()
            && self.protocol.is_none()
            && self.action.is_none()
            && self.interface.is_none()
            && self.host.is_none()
            && self.words.is_empty()
    }
}

/// `needle` is already lower case.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if needle.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        if n.is_empty() {
            return true;
        }
        h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        haystack.to_lowercase().contains(needle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawLogQuery {
        let s = serde_urlencoded::to_string(pairs).unwrap();
        serde_urlencoded::from_str(&s).unwrap()
    }

    #[test]
    fn parse_reports_the_field() {
        let now = Timestamp::from_secs(1_800_000_000);
        assert_eq!(
            LogQuery::parse(&raw(&[("ip", "10.0.0.300")]), now)
                .unwrap_err()
                .field,
            "ip"
        );
        assert_eq!(
            LogQuery::parse(&raw(&[("port", "70000")]), now)
                .unwrap_err()
                .field,
            "port"
        );
        assert_eq!(
            LogQuery::parse(&raw(&[("action", "maybe")]), now)
                .unwrap_err()
                .field,
            "action"
        );
        assert_eq!(
            LogQuery::parse(&raw(&[("from", "yesterday")]), now)
                .unwrap_err()
                .field,
            "from"
        );
        let q = LogQuery::parse(
            &raw(&[("ip", "10.1.2.3/8"), ("from", "1h"), ("q", "Foo  bar")]),
            now,
        )
        .unwrap();
        assert_eq!(q.ip, Some("10.0.0.0/8".parse().unwrap()));
        assert_eq!(q.from, Some(Timestamp::from_secs(1_800_000_000 - 3600)));
        assert_eq!(q.words, vec!["foo".to_string(), "bar".to_string()]);
        assert!(LogQuery::parse(&raw(&[("ip", ""), ("port", " ")]), now)
            .unwrap()
            .is_time_only());
    }

    #[test]
    fn case_insensitive_contains() {
        assert!(contains_ignore_case("Hello World", "world"));
        assert!(!contains_ignore_case("Hello", "hellos"));
        assert!(contains_ignore_case("Ärger", "ärg"));
    }
}
