//! The inventory's records: hosts with their interfaces, addresses and services, the
//! events about them, subnets and scan history. Plain data (serde); the store persists
//! them, [`super::Inventory`] changes them.

use crate::model::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Where a fact about a host came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The kernel's ARP table.
    Arp,
    /// The kernel's IPv6 neighbour (NDP) table.
    Ndp,
    /// A DHCP lease file.
    Dhcp,
    /// An active scan by gatewatch.
    Scan,
    /// An imported nmap XML report.
    Nmap,
    /// The Docker Engine API on this machine.
    Docker,
    /// Packets seen by the traffic engine.
    Traffic,
    /// DNS answers seen by the traffic engine.
    Dns,
    /// The router's own interfaces and configuration.
    Router,
    /// A person (merge, split).
    Manual,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Arp => "arp",
            Source::Ndp => "ndp",
            Source::Dhcp => "dhcp",
            Source::Scan => "scan",
            Source::Nmap => "nmap",
            Source::Docker => "docker",
            Source::Traffic => "traffic",
            Source::Dns => "dns",
            Source::Router => "router",
            Source::Manual => "manual",
        }
    }
}

/// Where a name came from, in order of precedence: the first one a host has is its name
/// (DNS > DHCP > container name > mDNS > NetBIOS > service > none, then the IP is shown).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NameSource {
    Dns,
    Dhcp,
    Docker,
    Mdns,
    Netbios,
    Service,
}

impl NameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::Dns => "dns",
            NameSource::Dhcp => "dhcp",
            NameSource::Docker => "docker",
            NameSource::Mdns => "mdns",
            NameSource::Netbios => "netbios",
            NameSource::Service => "service",
        }
    }
}

/// The role a host plays for the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Infra {
    pub gateway: bool,
    pub dns_server: bool,
    pub dhcp_server: bool,
}

impl Infra {
    pub fn union(self, other: Infra) -> Infra {
        Infra {
            gateway: self.gateway || other.gateway,
            dns_server: self.dns_server || other.dns_server,
            dhcp_server: self.dhcp_server || other.dhcp_server,
        }
    }

    pub fn any(self) -> bool {
        self.gateway || self.dns_server || self.dhcp_server
    }
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub ip: IpAddr,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub sources: BTreeSet<Source>,
}

/// A network interface of a host: one MAC (when known) and its addresses. Addresses whose
/// MAC is unknown (a routed host, an nmap report without MACs) sit on an interface
/// without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub mac: Option<[u8; 6]>,
    pub vendor: Option<String>,
    /// What the source called it: a Docker network, a router port.
    pub label: Option<String>,
    pub addresses: Vec<Address>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// Transport protocol of a service.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// Something a host runs: an open port with what answered on it, and/or a recognised
/// application (a service definition) with the evidence that named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// `None` for applications named only by host-level evidence (mDNS, SSDP).
    pub port: Option<u16>,
    pub proto: Proto,
    /// Protocol name in nmap/IANA style (ssh, http, domain …), when known.
    pub name: Option<String>,
    /// Product and version, e.g. "OpenSSH 9.2p1".
    pub product: Option<String>,
    /// The service definition that matched, e.g. "Home Assistant".
    pub application: Option<String>,
    /// The definition's category (nas, media, …).
    pub category: Option<String>,
    /// Why we believe it: "port 8123 + title 'Home Assistant'".
    pub evidence: Vec<String>,
    pub sources: BTreeSet<Source>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// A device on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub id: u64,
    /// Every name learned, by source; [`Host::name`] picks by precedence.
    pub names: BTreeMap<NameSource, String>,
    pub interfaces: Vec<Interface>,
    pub services: Vec<Service>,
    pub infra: Infra,
    pub sources: BTreeSet<Source>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Set when the host first appears; cleared when someone acknowledges it.
    pub is_new: bool,
}

impl Host {
    /// The best name by precedence (DNS > DHCP > container > mDNS > NetBIOS > service), as
    /// [`crate::discovery::names::best_hostname`] decides for the scanner.
    pub fn name(&self) -> Option<&str> {
        self.names.values().next().map(String::as_str)
    }

    /// The name, else the primary address, else `host N`.
    pub fn label(&self) -> String {
        use crate::discovery::names::{best_hostname, NameSource as N};
        let fallback = self
            .primary_ip()
            .map_or_else(|| format!("host {}", self.id), |ip| ip.to_string());
        let candidates = self.names.iter().map(|(src, name)| {
            let src = match src {
                NameSource::Dns => N::Dns,
                // A container name is what the host's DHCP-assigned name is elsewhere.
                NameSource::Dhcp | NameSource::Docker => N::Dhcp,
                NameSource::Mdns => N::Mdns,
                NameSource::Netbios => N::Netbios,
                NameSource::Service => N::Service,
            };
            (src, name.as_str())
        });
        best_hostname(candidates, &fallback).0
    }

    pub fn ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.interfaces
            .iter()
            .flat_map(|i| i.addresses.iter().map(|a| a.ip))
    }

    /// The address people know the host by: IPv4 first, then routable IPv6, then link-local.
    pub fn primary_ip(&self) -> Option<IpAddr> {
        let rank = |ip: &IpAddr| match ip {
            IpAddr::V4(_) => 0,
            IpAddr::V6(v6) if v6.is_unicast_link_local() => 2,
            IpAddr::V6(_) => 1,
        };
        self.ips().min_by_key(rank)
    }

    pub fn macs(&self) -> impl Iterator<Item = [u8; 6]> + '_ {
        self.interfaces.iter().filter_map(|i| i.mac)
    }

    /// The vendor of the first interface that has one.
    pub fn vendor(&self) -> Option<&str> {
        self.interfaces.iter().find_map(|i| i.vendor.as_deref())
    }
}

/// What happened to a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
/// Stored with postcard, so no internally tagged serde representation (it needs
/// self-describing input).
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A device never seen before.
    NewDevice,
    /// Someone acknowledged the new device.
    Acknowledged,
    /// An address moved here from another host (a new MAC answered for it).
    AddressMoved { ip: String, from_host: u64 },
    /// Another host was folded into this one (automatically or by a person).
    Merged { from_host: u64, automatic: bool },
    /// An interface was split off into a new host.
    SplitOff { into_host: u64 },
    /// The host was deleted.
    Deleted,
}

/// An entry of the event history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEvent {
    pub at: Timestamp,
    pub host: u64,
    /// The host's label when it happened (it may be gone since).
    pub label: String,
    pub kind: EventKind,
    pub actor: Option<String>,
}

/// A network the router knows about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubnetKind {
    Lan,
    Vlan,
    Wan,
    /// The organisational 0.0.0.0/0 for everything beyond the router.
    Internet,
}

impl SubnetKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SubnetKind::Lan => "LAN",
            SubnetKind::Vlan => "VLAN",
            SubnetKind::Wan => "WAN",
            SubnetKind::Internet => "Internet",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subnet {
    pub cidr: ipnet::IpNet,
    pub kind: SubnetKind,
    /// The router interface it is attached to (none for Internet).
    pub interface: Option<String>,
    /// The router's own address on it.
    pub router_ip: Option<IpAddr>,
}

/// How a scan was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ScanOrigin {
    Manual,
    Schedule,
    NmapImport,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ScanState {
    Queued,
    Running,
    Done,
    Cancelled,
    Failed,
}

impl ScanState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ScanState::Queued => "queued",
            ScanState::Running => "running",
            ScanState::Done => "done",
            ScanState::Cancelled => "cancelled",
            ScanState::Failed => "failed",
        }
    }

    pub fn finished(&self) -> bool {
        matches!(self, ScanState::Done | ScanState::Cancelled | ScanState::Failed)
    }
}

/// One scan (or import) in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRecord {
    pub id: u64,
    pub origin: ScanOrigin,
    /// Who asked (user or token name, "schedule", "cli").
    pub requested_by: String,
    /// Targets as given (CIDRs, addresses) or the imported file's name.
    pub targets: Vec<String>,
    /// Port set as given (default, top100, a list).
    pub ports: String,
    pub state: ScanState,
    pub queued_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Addresses probed.
    pub addresses: u64,
    pub hosts_found: u64,
    pub open_ports: u64,
    pub new_hosts: u64,
    /// One line for the history: what was found or why it failed.
    pub summary: String,
}
