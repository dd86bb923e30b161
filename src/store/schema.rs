//! This store's tables: their names, key and value types, the record versions of the
//! model types, and the `meta` table's values.
//!
//! Must not: hold logic beyond opening the tables — reading and writing is [`super::Table`],
//! versions between releases are `migrate`.

use heed::types::Bytes;

use super::table::{RawDb, Record, Table, TimeKey};
use crate::inventory::{Host, HostEvent, ScanRecord};
use crate::model::{ApiToken, AuditEntry, Role, Session, StoredLog, TrafficSummary, User};

impl Record for User {
    /// 2: `created_at` in millis and `last_login` (schema v2).
    const VERSION: u8 = 2;
}
impl Record for Role {
    const VERSION: u8 = 1;
}
impl Record for Session {
    const VERSION: u8 = 1;
}
impl Record for ApiToken {
    const VERSION: u8 = 1;
}
impl Record for AuditEntry {
    const VERSION: u8 = 1;
}
impl Record for StoredLog {
    const VERSION: u8 = 1;
}

/// The value of a `log_index` entry: a posting list of event keys, written and read raw by
/// `store::logs`, never through [`Table::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Postings;

impl Record for Postings {
    const VERSION: u8 = 1;
}

impl Record for TrafficSummary {
    const VERSION: u8 = 1;
}

impl Record for Host {
    const VERSION: u8 = 1;
}
impl Record for HostEvent {
    const VERSION: u8 = 1;
}
impl Record for ScanRecord {
    const VERSION: u8 = 1;
}
/// Index values: a host id.
impl Record for u64 {
    const VERSION: u8 = 1;
}

/// Values of the `meta` table. The encoding of `U64` under [`super::SCHEMA_VERSION_KEY`] is
/// frozen: every gatewatch version must be able to read it to refuse or migrate a store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MetaValue {
    U64(u64),
    Text(String),
}

impl Record for MetaValue {
    const VERSION: u8 = 1;
}

pub(crate) const META: &str = "meta";
pub(crate) const USERS: &str = "users";
pub(crate) const ROLES: &str = "roles";
pub(crate) const SESSIONS: &str = "sessions";
pub(crate) const API_TOKENS: &str = "api_tokens";
pub(crate) const AUDIT: &str = "audit";
pub(crate) const HOSTS: &str = "hosts";
pub(crate) const HOST_MACS: &str = "host_macs";
pub(crate) const HOST_IPS: &str = "host_ips";
pub(crate) const HOST_EVENTS: &str = "host_events";
pub(crate) const SCANS: &str = "scans";
pub(crate) const TRAFFIC_MINUTES: &str = "traffic_minutes";
pub(crate) const TRAFFIC_HOURS: &str = "traffic_hours";
pub(crate) const LOG_EVENTS: &str = "log_events";
pub(crate) const LOG_INDEX: &str = "log_index";

/// Every table of the store. Table handles are `Copy` and only usable inside
/// [`super::Store::read`] / [`super::Store::write`] of the store they came from (heed
/// panics on a transaction of another store — a programming error, not an input one).
#[derive(Debug)]
pub struct Tables {
    pub meta: Table<String, MetaValue>,
    pub users: Table<String, User>,
    pub roles: Table<String, Role>,
    /// Key: SHA-256 of the session cookie.
    pub sessions: Table<[u8; 32], Session>,
    /// Key: the token's public id.
    pub api_tokens: Table<String, ApiToken>,
    pub audit: Table<TimeKey, AuditEntry>,
    /// Key: host id. Services live inside their host's record.
    pub hosts: Table<u64, Host>,
    /// Key: MAC as `aa:bb:cc:dd:ee:ff`; value: host id.
    pub host_macs: Table<String, u64>,
    /// Key: address as text; value: host id.
    pub host_ips: Table<String, u64>,
    pub host_events: Table<TimeKey, HostEvent>,
    /// Key: scan id (increasing, so the history is in start order).
    pub scans: Table<u64, ScanRecord>,
    /// One summary per closed window and interface; key time: the window's start.
    pub traffic_minutes: Table<TimeKey, TrafficSummary>,
    /// Minutes rolled up per hour (all interfaces merged); key time: the hour's start.
    pub traffic_hours: Table<TimeKey, TrafficSummary>,
    /// Received syslog lines by receive time.
    pub log_events: Table<TimeKey, StoredLog>,
    /// `[kind][term][first event key]` → event keys; see `store::logs`.
    pub log_index: Table<Vec<u8>, Postings>,
}

impl Tables {
    /// Opens every table, creating missing ones.
    pub(crate) fn create(env: &heed::Env<heed::WithoutTls>, wtxn: &mut heed::RwTxn) -> heed::Result<Tables> {
        let mut db = |name: &'static str| env.create_database::<Bytes, Bytes>(wtxn, Some(name));
        Ok(Tables {
            meta: Table::new(db(META)?, META),
            users: Table::new(db(USERS)?, USERS),
            roles: Table::new(db(ROLES)?, ROLES),
            sessions: Table::new(db(SESSIONS)?, SESSIONS),
            api_tokens: Table::new(db(API_TOKENS)?, API_TOKENS),
            audit: Table::new(db(AUDIT)?, AUDIT),
            hosts: Table::new(db(HOSTS)?, HOSTS),
            host_macs: Table::new(db(HOST_MACS)?, HOST_MACS),
            host_ips: Table::new(db(HOST_IPS)?, HOST_IPS),
            host_events: Table::new(db(HOST_EVENTS)?, HOST_EVENTS),
            scans: Table::new(db(SCANS)?, SCANS),
            traffic_minutes: Table::new(db(TRAFFIC_MINUTES)?, TRAFFIC_MINUTES),
            traffic_hours: Table::new(db(TRAFFIC_HOURS)?, TRAFFIC_HOURS),
            log_events: Table::new(db(LOG_EVENTS)?, LOG_EVENTS),
            log_index: Table::new(db(LOG_INDEX)?, LOG_INDEX),
        })
    }

    /// (name, raw database) of every table, for stats and emptiness checks.
    pub(crate) fn raw_all(&self) -> [(&'static str, RawDb); 15] {
        [
            (self.meta.name(), self.meta.raw()),
            (self.users.name(), self.users.raw()),
            (self.roles.name(), self.roles.raw()),
            (self.sessions.name(), self.sessions.raw()),
            (self.api_tokens.name(), self.api_tokens.raw()),
            (self.audit.name(), self.audit.raw()),
            (self.hosts.name(), self.hosts.raw()),
            (self.host_macs.name(), self.host_macs.raw()),
            (self.host_ips.name(), self.host_ips.raw()),
            (self.host_events.name(), self.host_events.raw()),
            (self.scans.name(), self.scans.raw()),
            (self.traffic_minutes.name(), self.traffic_minutes.raw()),
            (self.traffic_hours.name(), self.traffic_hours.raw()),
            (self.log_events.name(), self.log_events.raw()),
            (self.log_index.name(), self.log_index.raw()),
        ]
    }
}
