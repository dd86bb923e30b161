//! Plain data types shared by every subsystem: accounts, roles, sessions, API tokens,
//! audit entries, parsed log events, traffic summaries and the timestamp they are stamped with.
//!
//! Owns no I/O. The store persists these types; the web layer and the CLI create them.

mod account;
mod log;
mod log_query;
mod traffic;

pub use account::{ApiToken, AuditEntry, Permission, Role, Session, User, BUILTIN_ROLES};
pub use log::{
    split_pri, AuthEvent, AuthOutcome, DhcpEvent, DhcpFormat, Direction, Facility, FirewallAction,
    FirewallEvent, FirewallFormat, LogEvent, SdElement, Severity, SyslogHeader,
};
pub use log_query::{
    HostFilter, IndexTerm, LogQuery, QueryError, RawLogQuery, StoredLog, Transport, MAX_TERM_BYTES,
};
pub use traffic::{
    hll_estimate, hll_to_stored, merge_top, Percentiles, TopEntry, TopLists, TrafficCounters, TrafficSummary,
};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Sans-IO code takes this as `now` instead of reading a
/// clock; only the shells call [`Timestamp::now`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The wall clock. For shells only.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_millis() as u64)
    }

    pub fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    pub fn as_millis(self) -> u64 {
        self.0
    }

    pub fn saturating_add(self, d: std::time::Duration) -> Self {
        Timestamp(self.0.saturating_add(d.as_millis() as u64))
    }

    pub fn saturating_sub(self, d: std::time::Duration) -> Self {
        Timestamp(self.0.saturating_sub(d.as_millis() as u64))
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// RFC 3339 in UTC, second precision, e.g. `2026-11-23T10:35:00Z`.
    pub fn to_rfc3339(self) -> String {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.0);
        humantime::format_rfc3339_seconds(t).to_string()
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}
