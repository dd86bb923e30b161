//! The server's discovery service (the I/O shell around [`crate::inventory`]): keeps the
//! inventory in memory, loads it from and writes it to the store, polls the passive
//! sources, asks Docker, and runs scans (queue, concurrency limit, progress, cancel,
//! history). Web handlers and the CLI call it; it never scans unless asked.
//!
//! - [`passive`]: the polling loop (neighbour table, leases, Docker, router facts) and the
//!   hook the traffic engine feeds.
//! - [`scans`]: starting, running, cancelling and recording scans; schedules.
//! - [`docker`]: a minimal Docker Engine API client over the unix socket.
//! - [`ifaddrs`]: the router's own interface addresses (getifaddrs).

pub mod docker;
pub mod ifaddrs;
pub mod passive;
pub mod scans;

use crate::config::DiscoveryConfig;
use crate::inventory::{
    nmap, Changes, Host, HostEvent, Inventory, InventoryError, Observation, ScanOrigin, ScanRecord,
    ScanState, Subnet,
};
use crate::model::Timestamp;
use crate::store::{MetaValue, Store, StoreError, Table, TimeKey, Txn, WriteTxn};
use portable_atomic::AtomicU64;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("{0}")]
    BadImport(#[from] nmap::NmapError),
    #[error("{0}")]
    BadScan(String),
    #[error("no scan with id {0}")]
    NoSuchScan(u64),
}

/// Counts from the last passive poll, for the hosts page.
#[derive(Debug, Clone, Default)]
pub struct PassiveStatus {
    pub last_poll: Option<Timestamp>,
    /// (source, entries read), e.g. ("/proc/net/arp", 12).
    pub read: Vec<(String, usize)>,
    /// Problems worth showing (unreadable file, Docker refused), one line each.
    pub problems: Vec<String>,
}

/// The discovery service. Share it as `Arc<Discovery>`.
pub struct Discovery {
    store: Arc<Store>,
    pub config: DiscoveryConfig,
    inventory: Mutex<Inventory>,
    subnets: Mutex<Vec<Subnet>>,
    passive_status: Mutex<PassiveStatus>,
    scans: scans::Scans,
    traffic_tx: mpsc::Sender<Observation>,
    traffic_rx: Mutex<Option<mpsc::Receiver<Observation>>>,
    /// The store's inventory generation this process last loaded or wrote; another
    /// process (`gatewatch import nmap` beside a running server) bumps it.
    generation: AtomicU64,
    /// Where `now` comes from (tests inject theirs).
    clock: Clock,
    pub shutdown: CancellationToken,
}

/// The wall clock, or a test's.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Key in the `meta` table: bumped by every inventory write.
const GENERATION_KEY: &str = "inventory_generation";

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many observations the traffic hook buffers before it drops (and counts) more.
const TRAFFIC_QUEUE: usize = 4096;

impl Discovery {
    /// Loads the inventory and scan history. Scans a previous process left running are
    /// marked failed (they cannot go on).
    pub fn open(
        store: Arc<Store>,
        config: DiscoveryConfig,
        shutdown: CancellationToken,
        clock: Clock,
    ) -> Result<Arc<Discovery>, DiscoveryError> {
        let now = clock();
        let t = store.tables();
        let hosts = store.read(|txn| t.hosts.iter(txn))?;
        let inventory = Inventory::from_hosts(hosts.into_iter().map(|(_, h)| h));
        let interrupted: Vec<ScanRecord> = store.read(|txn| {
            Ok(t.scans
                .iter(txn)?
                .into_iter()
                .map(|(_, s)| s)
                .filter(|s| !s.state.finished())
                .collect())
        })?;
        store.write(|txn| {
            for s in &interrupted {
                let mut s = s.clone();
                s.state = ScanState::Failed;
                s.finished_at = Some(now);
                s.summary = "interrupted: gatewatch stopped while it ran".into();
                t.scans.put(txn, &s.id, &s)?;
            }
            Ok(())
        })?;
        let last_scan =
            store.read(|txn| Ok(t.scans.iter_rev_page(txn, None, 1)?.first().map(|(k, _)| *k)))?;
        let generation = store.read(|txn| read_generation(txn, &t.meta))?;
        let (traffic_tx, traffic_rx) = mpsc::channel(TRAFFIC_QUEUE);
        Ok(Arc::new(Discovery {
            scans: scans::Scans::new(config.max_concurrent_scans, last_scan.unwrap_or(0) + 1),
            store,
            config,
            inventory: Mutex::new(inventory),
            subnets: Mutex::new(Vec::new()),
            passive_status: Mutex::new(PassiveStatus::default()),
            traffic_tx,
            traffic_rx: Mutex::new(Some(traffic_rx)),
            generation: AtomicU64::new(generation),
            clock,
            shutdown,
        }))
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// The inventory, reloaded first when another process wrote to the store.
    fn inventory(&self) -> MutexGuard<'_, Inventory> {
        let mut inv = lock(&self.inventory);
        let t = self.store.tables();
        let stored = self.store.read(|txn| read_generation(txn, &t.meta));
        if let Ok(g) = stored {
            if g != self.generation.load(Ordering::SeqCst) {
                if let Ok(hosts) = self.store.read(|txn| t.hosts.iter(txn)) {
                    *inv = Inventory::from_hosts(hosts.into_iter().map(|(_, h)| h));
                    self.generation.store(g, Ordering::SeqCst);
                    tracing::info!(
                        generation = g,
                        "inventory reloaded after a write by another process"
                    );
                }
            }
        }
        inv
    }

    /// Folds observations in and writes what changed in one transaction; returns how
    /// many hosts were new.
    pub fn observe_batch(&self, batch: Vec<Observation>, now: Timestamp) -> Result<usize, DiscoveryError> {
        let mut inv = self.inventory();
        let mut new = 0;
        for o in batch {
            if let Some((_, true)) = inv.observe(o, now) {
                new += 1;
            }
        }
        self.persist(&mut inv)?;
        Ok(new)
    }

    /// Writes the inventory's pending changes. On a store error the changes are lost
    /// from the store but kept in memory; the next successful write of those hosts
    /// repairs it.
    fn persist(&self, inv: &mut Inventory) -> Result<(), DiscoveryError> {
        let changes: Changes = inv.take_changes();
        if changes.is_empty() {
            return Ok(());
        }
        let hosts: Vec<Host> = changes
            .upserted
            .iter()
            .filter_map(|id| inv.host(*id).cloned())
            .collect();
        let touched: BTreeSet<u64> = changes.upserted.union(&changes.deleted).copied().collect();
        let t = self.store.tables();
        let generation = self.store.write(|txn| {
            let generation = read_generation(txn, &t.meta)? + 1;
            t.meta
                .put(txn, &GENERATION_KEY.to_string(), &MetaValue::U64(generation))?;
            drop_index_entries(txn, &t.host_macs, &touched)?;
            drop_index_entries(txn, &t.host_ips, &touched)?;
            for id in &changes.deleted {
                t.hosts.delete(txn, id)?;
            }
            for h in &hosts {
                t.hosts.put(txn, &h.id, h)?;
                for mac in h.macs() {
                    let key = crate::discovery::oui::Mac(mac).to_string();
                    t.host_macs.put(txn, &key, &h.id)?;
                }
                for ip in h.ips() {
                    t.host_ips.put(txn, &ip.to_string(), &h.id)?;
                }
            }
            for e in &changes.events {
                t.host_events.append(txn, e.at, e)?;
            }
            Ok(generation)
        })?;
        self.generation.store(generation, Ordering::SeqCst);
        Ok(())
    }

    pub fn hosts(&self) -> Vec<Host> {
        self.inventory().hosts().cloned().collect()
    }

    pub fn host(&self, id: u64) -> Option<Host> {
        self.inventory().host(id).cloned()
    }

    pub fn host_by_ip(&self, ip: std::net::IpAddr) -> Option<Host> {
        self.inventory().by_ip(ip).cloned()
    }

    pub fn counts(&self) -> (usize, usize) {
        let inv = self.inventory();
        (inv.len(), inv.hosts().filter(|h| h.is_new).count())
    }

    /// Events, newest first; of one host when `host` is given.
    pub fn events(&self, host: Option<u64>, limit: usize) -> Result<Vec<HostEvent>, DiscoveryError> {
        let t = self.store.tables();
        let mut out = Vec::new();
        let mut before: Option<TimeKey> = None;
        loop {
            let page = self
                .store
                .read(|txn| t.host_events.iter_rev_page(txn, before.as_ref(), 500))?;
            let n = page.len();
            for (k, e) in page {
                before = Some(k);
                if host.is_none_or(|h| h == e.host) {
                    out.push(e);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            if n < 500 {
                return Ok(out);
            }
        }
    }

    pub fn merge(&self, into: u64, from: &[u64], now: Timestamp, actor: &str) -> Result<(), DiscoveryError> {
        let mut inv = self.inventory();
        for f in from {
            inv.merge(into, *f, now, actor)?;
        }
        self.persist(&mut inv)
    }

    pub fn split(
        &self,
        host: u64,
        interface: usize,
        now: Timestamp,
        actor: &str,
    ) -> Result<u64, DiscoveryError> {
        let mut inv = self.inventory();
        let id = inv.split(host, interface, now, actor)?;
        self.persist(&mut inv)?;
        Ok(id)
    }

    pub fn delete(&self, ids: &[u64], now: Timestamp, actor: &str) -> Result<(), DiscoveryError> {
        let mut inv = self.inventory();
        for id in ids {
            inv.delete(*id, now, actor)?;
        }
        self.persist(&mut inv)
    }

    pub fn acknowledge(&self, ids: &[u64], now: Timestamp, actor: &str) -> Result<usize, DiscoveryError> {
        let mut inv = self.inventory();
        let mut n = 0;
        for id in ids {
            n += usize::from(inv.acknowledge(*id, now, actor)?);
        }
        self.persist(&mut inv)?;
        Ok(n)
    }

    pub fn subnets(&self) -> Vec<Subnet> {
        let s = lock(&self.subnets).clone();
        if s.is_empty() {
            crate::inventory::sources::subnets(&[], None)
        } else {
            s
        }
    }

    pub fn passive_status(&self) -> PassiveStatus {
        lock(&self.passive_status).clone()
    }

    /// The hook for the traffic engine: hosts it sees on the wire (address + MAC,
    /// [`crate::inventory::Source::Traffic`]) and names from DNS answers
    /// ([`crate::inventory::Source::Dns`] with a [`crate::inventory::NameSource::Dns`] name).
    /// Non-blocking; when the queue is full the observation is dropped (the next packet
    /// of that host brings it again). The passive loop folds them in each poll.
    pub fn traffic_sink(&self) -> mpsc::Sender<Observation> {
        self.traffic_tx.clone()
    }

    /// Imports an nmap XML report; nothing is stored when it does not parse.
    pub fn import_nmap(
        &self,
        xml: &str,
        file_name: &str,
        who: &str,
        now: Timestamp,
    ) -> Result<ScanRecord, DiscoveryError> {
        let report = nmap::parse(xml)?;
        let hosts_found = report.hosts.len() as u64;
        let new = self.observe_batch(report.hosts, now)?;
        let id = self.scans.next_id();
        let record = ScanRecord {
            id,
            origin: ScanOrigin::NmapImport,
            requested_by: who.to_string(),
            targets: vec![file_name.to_string()],
            ports: report.args.clone(),
            state: ScanState::Done,
            queued_at: now,
            started_at: Some(now),
            finished_at: Some(now),
            addresses: hosts_found,
            hosts_found,
            open_ports: report.open_ports as u64,
            new_hosts: new as u64,
            summary: format!(
                "imported {hosts_found} hosts and {} open ports from nmap ({new} new)",
                report.open_ports
            ),
        };
        self.save_scan(&record)?;
        Ok(record)
    }

    fn save_scan(&self, record: &ScanRecord) -> Result<(), DiscoveryError> {
        let t = self.store.tables();
        self.store.write(|txn| t.scans.put(txn, &record.id, record))?;
        Ok(())
    }

    /// The scan history, newest first.
    pub fn scan_history(&self, limit: usize) -> Result<Vec<ScanRecord>, DiscoveryError> {
        let t = self.store.tables();
        let page = self.store.read(|txn| t.scans.iter_rev_page(txn, None, limit))?;
        Ok(page.into_iter().map(|(_, s)| s).collect())
    }

    pub fn scan(&self, id: u64) -> Result<ScanRecord, DiscoveryError> {
        let t = self.store.tables();
        self.store
            .read(|txn| t.scans.get(txn, &id))?
            .ok_or(DiscoveryError::NoSuchScan(id))
    }
}

fn read_generation(txn: &impl Txn, meta: &Table<String, MetaValue>) -> Result<u64, StoreError> {
    Ok(match meta.get(txn, &GENERATION_KEY.to_string())? {
        Some(MetaValue::U64(g)) => g,
        _ => 0,
    })
}

fn drop_index_entries(
    txn: &mut WriteTxn<'_>,
    table: &Table<String, u64>,
    ids: &BTreeSet<u64>,
) -> Result<(), StoreError> {
    let stale: Vec<String> = table
        .iter(txn)?
        .into_iter()
        .filter(|(_, id)| ids.contains(id))
        .map(|(k, _)| k)
        .collect();
    for k in stale {
        table.delete(txn, &k)?;
    }
    Ok(())
}

/// Hosts grouped by the subnet holding one of their addresses (Internet for the rest).
pub fn hosts_per_subnet(subnets: &[Subnet], hosts: &[Host]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for h in hosts {
        let cidr = subnets
            .iter()
            .filter(|s| h.ips().any(|ip| s.cidr.contains(&ip)))
            .max_by_key(|s| s.cidr.prefix_len())
            .map(|s| s.cidr.to_string());
        if let Some(c) = cidr {
            *out.entry(c).or_insert(0) += 1;
        }
    }
    out
}
