//! The inventory in memory and its merge rules. Every source (neighbour table, leases,
//! scans, nmap, Docker, traffic) becomes [`Observation`]s; [`Inventory::observe`] folds each
//! into the host it belongs to:
//!
//! 1. the same MAC is the same host;
//! 2. else the same address is the same host — unless the address now answers from another
//!    MAC, then it moved to a new device;
//! 3. else the same name and the same vendor is the same host (a laptop's second NIC);
//! 4. else it is a new device (a `new-device` event, `is_new` until acknowledged).
//!
//! A host known only by an address (no MAC) that now shows up with a MAC is folded into
//! the host that owns the MAC. People can merge, split and delete hosts. Every change is
//! recorded in [`Changes`] for the shell to write in one transaction.

use super::model::*;
use crate::model::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One service seen on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceObservation {
    pub port: Option<u16>,
    pub proto: Proto,
    pub name: Option<String>,
    pub product: Option<String>,
    pub application: Option<String>,
    pub category: Option<String>,
    pub evidence: Vec<String>,
}

/// What one source saw about one host at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub source: Source,
    pub ip: Option<IpAddr>,
    pub mac: Option<[u8; 6]>,
    pub vendor: Option<String>,
    pub names: Vec<(NameSource, String)>,
    pub services: Vec<ServiceObservation>,
    pub infra: Infra,
    /// The interface's name at the source (Docker network, router port).
    pub label: Option<String>,
    /// Belongs to the host holding this address when no rule finds another (the
    /// router's own addresses on several interfaces are one host).
    pub same_host_as: Option<IpAddr>,
}

impl Observation {
    pub fn new(source: Source) -> Self {
        Observation {
            source,
            ip: None,
            mac: None,
            vendor: None,
            names: Vec::new(),
            services: Vec::new(),
            infra: Infra::default(),
            label: None,
            same_host_as: None,
        }
    }
}

/// What changed since the last [`Inventory::take_changes`], for the store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub upserted: BTreeSet<u64>,
    pub deleted: BTreeSet<u64>,
    pub events: Vec<HostEvent>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty() && self.deleted.is_empty() && self.events.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("no host with id {0}")]
    NoSuchHost(u64),
    #[error("a host cannot be merged into itself")]
    SameHost,
    #[error("host {0} has only one interface; there is nothing to split off")]
    NothingToSplit(u64),
    #[error("host {host} has no interface {index}")]
    NoSuchInterface { host: u64, index: usize },
}

/// All hosts, with indexes by MAC and address.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    hosts: BTreeMap<u64, Host>,
    by_mac: BTreeMap<[u8; 6], u64>,
    by_ip: BTreeMap<IpAddr, u64>,
    next_id: u64,
    changes: Changes,
}

fn is_usable_mac(mac: [u8; 6]) -> bool {
    mac != [0; 6] && mac != [0xff; 6] && mac[0] & 1 == 0
}

impl Inventory {
    /// Rebuilds the inventory from stored hosts.
    pub fn from_hosts(hosts: impl IntoIterator<Item = Host>) -> Inventory {
        let mut inv = Inventory::default();
        for h in hosts {
            inv.next_id = inv.next_id.max(h.id + 1);
            inv.hosts.insert(h.id, h);
        }
        inv.next_id = inv.next_id.max(1);
        let ids: Vec<u64> = inv.hosts.keys().copied().collect();
        for id in ids {
            inv.index(id);
        }
        inv
    }

    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.values()
    }

    pub fn host(&self, id: u64) -> Option<&Host> {
        self.hosts.get(&id)
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn by_ip(&self, ip: IpAddr) -> Option<&Host> {
        self.by_ip.get(&ip).and_then(|id| self.hosts.get(id))
    }

    pub fn by_mac(&self, mac: [u8; 6]) -> Option<&Host> {
        self.by_mac.get(&mac).and_then(|id| self.hosts.get(id))
    }

    /// Hands over what changed and starts a new change set.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    fn index(&mut self, id: u64) {
        let Some(h) = self.hosts.get(&id) else { return };
        for mac in h.macs() {
            self.by_mac.insert(mac, id);
        }
        for ip in h.ips() {
            self.by_ip.insert(ip, id);
        }
    }

    fn unindex(&mut self, id: u64) {
        self.by_mac.retain(|_, v| *v != id);
        self.by_ip.retain(|_, v| *v != id);
    }

    fn event(&mut self, at: Timestamp, host: u64, kind: EventKind, actor: Option<&str>) {
        let label = self.hosts.get(&host).map(Host::label).unwrap_or_default();
        self.changes.events.push(HostEvent {
            at,
            host,
            label,
            kind,
            actor: actor.map(str::to_string),
        });
    }

    /// Folds one observation in; returns the host it went to and whether that host is new.
    /// Observations with neither a usable MAC nor an address are ignored (`None`).
    pub fn observe(&mut self, obs: Observation, now: Timestamp) -> Option<(u64, bool)> {
        let mac = obs.mac.filter(|m| is_usable_mac(*m));
        if mac.is_none() && obs.ip.is_none() {
            return None;
        }
        let by_mac = mac.and_then(|m| self.by_mac.get(&m).copied());
        let mut by_ip = obs.ip.and_then(|ip| self.by_ip.get(&ip).copied());

        // The address answers from a MAC its current host's interface does not have.
        if let (Some(ip), Some(m), Some(owner)) = (obs.ip, mac, by_ip) {
            let owner_mac = self.hosts.get(&owner).and_then(|h| {
                h.interfaces
                    .iter()
                    .find(|i| i.addresses.iter().any(|a| a.ip == ip))
                    .and_then(|i| i.mac)
            });
            match owner_mac {
                Some(om) if om != m => {
                    self.detach_ip(owner, ip);
                    by_ip = None;
                    if let Some(target) = by_mac {
                        self.event(
                            now,
                            target,
                            EventKind::AddressMoved {
                                ip: ip.to_string(),
                                from_host: owner,
                            },
                            None,
                        );
                    }
                }
                // Known only by address until now: the MAC's host and this one are one.
                None if by_mac.is_some_and(|t| t != owner) && self.is_mac_less(owner) => {
                    let target = by_mac.unwrap_or(owner);
                    self.fold(target, owner, now, None, true);
                    by_ip = Some(target);
                }
                _ => {}
            }
        }

        let by_name = if by_mac.is_none() && by_ip.is_none() {
            self.find_by_name_and_vendor(&obs)
        } else {
            None
        };
        let by_hint = obs.same_host_as.and_then(|ip| self.by_ip.get(&ip).copied());
        let (id, created) = match by_mac.or(by_ip).or(by_name).or(by_hint) {
            Some(id) => (id, false),
            None => {
                let id = self.next_id.max(1);
                self.next_id = id + 1;
                self.hosts.insert(
                    id,
                    Host {
                        id,
                        names: BTreeMap::new(),
                        interfaces: Vec::new(),
                        services: Vec::new(),
                        infra: Infra::default(),
                        sources: BTreeSet::new(),
                        first_seen: now,
                        last_seen: now,
                        is_new: true,
                    },
                );
                (id, true)
            }
        };
        if let Some(h) = self.hosts.get_mut(&id) {
            apply(h, &obs, mac, now);
        }
        self.index(id);
        self.changes.upserted.insert(id);
        if created {
            self.event(now, id, EventKind::NewDevice, None);
        }
        Some((id, created))
    }

    fn is_mac_less(&self, id: u64) -> bool {
        self.hosts
            .get(&id)
            .is_some_and(|h| h.interfaces.iter().all(|i| i.mac.is_none()))
    }

    fn find_by_name_and_vendor(&self, obs: &Observation) -> Option<u64> {
        let vendor = obs.vendor.as_deref()?;
        let names: Vec<String> = obs.names.iter().map(|(_, n)| n.to_ascii_lowercase()).collect();
        if names.is_empty() {
            return None;
        }
        self.hosts
            .values()
            .find(|h| {
                h.vendor() == Some(vendor)
                    && h.name().is_some_and(|n| names.contains(&n.to_ascii_lowercase()))
            })
            .map(|h| h.id)
    }

    fn detach_ip(&mut self, id: u64, ip: IpAddr) {
        if let Some(h) = self.hosts.get_mut(&id) {
            for i in &mut h.interfaces {
                i.addresses.retain(|a| a.ip != ip);
            }
            h.interfaces
                .retain(|i| i.mac.is_some() || !i.addresses.is_empty());
            self.by_ip.remove(&ip);
            self.changes.upserted.insert(id);
        }
    }

    /// Moves everything of `from` into `into` and removes `from`.
    fn fold(&mut self, into: u64, from: u64, now: Timestamp, actor: Option<&str>, automatic: bool) {
        let Some(src) = self.hosts.remove(&from) else {
            return;
        };
        self.unindex(from);
        if let Some(dst) = self.hosts.get_mut(&into) {
            for iface in src.interfaces {
                let existing = dst
                    .interfaces
                    .iter_mut()
                    .find(|i| i.mac.is_some() && i.mac == iface.mac);
                match existing {
                    Some(e) => merge_interface(e, iface),
                    None => {
                        // Addresses without a MAC join an interface that already has them.
                        let mut iface = iface;
                        if iface.mac.is_none() {
                            iface.addresses.retain(|a| {
                                !dst.interfaces
                                    .iter()
                                    .any(|i| i.addresses.iter().any(|b| b.ip == a.ip))
                            });
                            if iface.addresses.is_empty() {
                                continue;
                            }
                        }
                        dst.interfaces.push(iface);
                    }
                }
            }
            for s in src.services {
                upsert_service(&mut dst.services, s);
            }
            for (k, v) in src.names {
                dst.names.entry(k).or_insert(v);
            }
            dst.infra = dst.infra.union(src.infra);
            dst.sources.extend(src.sources);
            dst.first_seen = dst.first_seen.min(src.first_seen);
            dst.last_seen = dst.last_seen.max(src.last_seen);
            // A new device folded into a known one is not new.
            dst.is_new = dst.is_new && src.is_new;
        }
        self.index(into);
        self.changes.upserted.insert(into);
        self.changes.upserted.remove(&from);
        self.changes.deleted.insert(from);
        self.event(
            now,
            into,
            EventKind::Merged {
                from_host: from,
                automatic,
            },
            actor,
        );
    }

    /// A person says `from` is the same device as `into`.
    pub fn merge(&mut self, into: u64, from: u64, now: Timestamp, actor: &str) -> Result<(), InventoryError> {
        if into == from {
            return Err(InventoryError::SameHost);
        }
        for id in [into, from] {
            if !self.hosts.contains_key(&id) {
                return Err(InventoryError::NoSuchHost(id));
            }
        }
        self.fold(into, from, now, Some(actor), false);
        Ok(())
    }

    /// A person says interface `index` of `host` is another device; returns the new host.
    pub fn split(
        &mut self,
        host: u64,
        index: usize,
        now: Timestamp,
        actor: &str,
    ) -> Result<u64, InventoryError> {
        let h = self
            .hosts
            .get_mut(&host)
            .ok_or(InventoryError::NoSuchHost(host))?;
        if h.interfaces.len() < 2 {
            return Err(InventoryError::NothingToSplit(host));
        }
        if index >= h.interfaces.len() {
            return Err(InventoryError::NoSuchInterface { host, index });
        }
        let iface = h.interfaces.remove(index);
        let id = self.next_id.max(1);
        self.next_id = id + 1;
        let sources = iface
            .addresses
            .iter()
            .flat_map(|a| a.sources.iter().copied())
            .collect();
        let new = Host {
            id,
            names: BTreeMap::new(),
            first_seen: iface.first_seen,
            last_seen: iface.last_seen,
            interfaces: vec![iface],
            services: Vec::new(),
            infra: Infra::default(),
            sources,
            is_new: false,
        };
        // Services stay: the model does not tie them to addresses.
        self.hosts.insert(id, new);
        self.unindex(host);
        self.index(host);
        self.index(id);
        self.changes.upserted.insert(host);
        self.changes.upserted.insert(id);
        self.event(now, host, EventKind::SplitOff { into_host: id }, Some(actor));
        Ok(id)
    }

    pub fn delete(&mut self, host: u64, now: Timestamp, actor: &str) -> Result<(), InventoryError> {
        if !self.hosts.contains_key(&host) {
            return Err(InventoryError::NoSuchHost(host));
        }
        self.event(now, host, EventKind::Deleted, Some(actor));
        self.hosts.remove(&host);
        self.unindex(host);
        self.changes.upserted.remove(&host);
        self.changes.deleted.insert(host);
        Ok(())
    }

    /// Clears the "new" badge; returns whether it was set.
    pub fn acknowledge(&mut self, host: u64, now: Timestamp, actor: &str) -> Result<bool, InventoryError> {
        let h = self
            .hosts
            .get_mut(&host)
            .ok_or(InventoryError::NoSuchHost(host))?;
        if !h.is_new {
            return Ok(false);
        }
        h.is_new = false;
        self.changes.upserted.insert(host);
        self.event(now, host, EventKind::Acknowledged, Some(actor));
        Ok(true)
    }
}

fn merge_interface(into: &mut Interface, from: Interface) {
    for a in from.addresses {
        match into.addresses.iter_mut().find(|b| b.ip == a.ip) {
            Some(b) => {
                b.first_seen = b.first_seen.min(a.first_seen);
                b.last_seen = b.last_seen.max(a.last_seen);
                b.sources.extend(a.sources);
            }
            None => into.addresses.push(a),
        }
    }
    into.vendor = into.vendor.take().or(from.vendor);
    into.label = into.label.take().or(from.label);
    into.first_seen = into.first_seen.min(from.first_seen);
    into.last_seen = into.last_seen.max(from.last_seen);
}

fn upsert_service(list: &mut Vec<Service>, s: Service) {
    let same = |x: &Service| {
        x.proto == s.proto && x.port == s.port && (x.port.is_some() || x.application == s.application)
    };
    match list.iter_mut().find(|x| same(x)) {
        Some(x) => {
            x.name = s.name.or(x.name.take());
            x.product = s.product.or(x.product.take());
            x.application = s.application.or(x.application.take());
            x.category = s.category.or(x.category.take());
            if !s.evidence.is_empty() {
                x.evidence = s.evidence;
            }
            x.sources.extend(s.sources);
            x.first_seen = x.first_seen.min(s.first_seen);
            x.last_seen = x.last_seen.max(s.last_seen);
        }
        None => {
            list.push(s);
            list.sort_by_key(|x| (x.port.is_none(), x.port, x.proto));
        }
    }
}

fn apply(h: &mut Host, obs: &Observation, mac: Option<[u8; 6]>, now: Timestamp) {
    h.last_seen = h.last_seen.max(now);
    h.sources.insert(obs.source);
    h.infra = h.infra.union(obs.infra);
    for (src, name) in &obs.names {
        let name = name.trim().trim_end_matches('.');
        if !name.is_empty() {
            h.names.insert(*src, name.to_string());
        }
    }
    // The interface: by MAC, else the one holding the address, else a MAC-less one.
    let pos = match mac {
        Some(m) => h.interfaces.iter().position(|i| i.mac == Some(m)),
        None => obs
            .ip
            .and_then(|ip| {
                h.interfaces
                    .iter()
                    .position(|i| i.addresses.iter().any(|a| a.ip == ip))
            })
            .or_else(|| h.interfaces.iter().position(|i| i.mac.is_none())),
    };
    let pos = match pos {
        Some(p) => p,
        None => {
            h.interfaces.push(Interface {
                mac,
                vendor: None,
                label: None,
                addresses: Vec::new(),
                first_seen: now,
                last_seen: now,
            });
            h.interfaces.len() - 1
        }
    };
    // An address seen with this MAC leaves the MAC-less interface it sat on.
    if let (Some(ip), Some(_)) = (obs.ip, mac) {
        for (i, iface) in h.interfaces.iter_mut().enumerate() {
            if i != pos && iface.mac.is_none() {
                iface.addresses.retain(|a| a.ip != ip);
            }
        }
    }
    let iface = &mut h.interfaces[pos];
    iface.last_seen = iface.last_seen.max(now);
    if obs.vendor.is_some() {
        iface.vendor = obs.vendor.clone();
    }
    if obs.label.is_some() {
        iface.label = obs.label.clone();
    }
    if let Some(ip) = obs.ip {
        match iface.addresses.iter_mut().find(|a| a.ip == ip) {
            Some(a) => {
                a.last_seen = a.last_seen.max(now);
                a.sources.insert(obs.source);
            }
            None => iface.addresses.push(Address {
                ip,
                first_seen: now,
                last_seen: now,
                sources: BTreeSet::from([obs.source]),
            }),
        }
    }
    // Interfaces emptied by a move (no MAC, no address) go.
    h.interfaces
        .retain(|i| i.mac.is_some() || !i.addresses.is_empty());
    for s in &obs.services {
        upsert_service(
            &mut h.services,
            Service {
                port: s.port,
                proto: s.proto,
                name: s.name.clone(),
                product: s.product.clone(),
                application: s.application.clone(),
                category: s.category.clone(),
                evidence: s.evidence.clone(),
                sources: BTreeSet::from([obs.source]),
                first_seen: now,
                last_seen: now,
            },
        );
    }
}
