//! gatewatch: network visibility that runs on the router itself.
//!
//! Module map:
//! - [`config`]: TOML file + `GATEWATCH_*` env + flags → validated [`config::Config`].
//! - [`model`]: plain data types (accounts, roles, sessions, tokens, audit entries, time).
//! - [`store`]: the only module that touches LMDB: typed tables, migrations, backup/restore,
//!   retention.
//! - [`accounts`]: sans-IO account logic: password hashing, sessions, lockout, tokens, roles.
//! - [`web`]: HTTPS server, login/session/CSRF/RBAC, pages (maud), JSON API, metrics.
//! - [`capture`]: capture sources behind one trait: live libpcap, pcap/pcapng files, replay.
//! - [`traffic`]: sans-IO packet decode, windows, sketches, flow table, DNS statistics.
//! - [`geo`]: Geo/ASN lookups (MaxMind DB files) with a bounded cache; home location for
//!   private addresses.
//! - [`sensor`]: runs the traffic engine on capture threads, shares live state with the web,
//!   stores per-minute summaries rolled up per hour.
//! - [`top`]: `gatewatch top`, the terminal view of live traffic (API, interface or file).
//! - [`logs`]: sans-IO syslog framing (RFC 6587) and parsing (RFC 5424/3164 via syslog_loose),
//!   firewall/DHCP/sshd message parsers; the receivers and `parse-log` share it.
//! - [`syslog`]: the UDP/TCP/TLS receivers, sender allowlist and rate limit, and the batch
//!   writer that stores received lines (with retention) and feeds the live tail.
//! - [`discovery`]: what hosts are: MAC vendors (embedded IEEE registry), later services.
//! - [`inventory`]: sans-IO hosts/interfaces/services model, merge rules, nmap and Docker
//!   parsers, scan schedules.
//! - [`discovery_service`]: the server's discovery task: passive polling, Docker, scans
//!   (queue, progress, cancel, history) and the inventory's persistence.
//! - [`scan`]: active scans (TCP liveness and ports, probes, neighbour MACs, reverse DNS).
//! - [`logging`]: tracing to stderr or the local syslog.
//! - [`embedded`]: inflates the gzip-compressed data build.rs embeds.
//! - [`app`]: wires the subsystems together and owns shutdown.
//! - [`cli`]: the command-line interface (argh) and its exit codes; `main.rs` only calls it.

pub mod accounts;
pub mod app;
pub mod capture;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod discovery_service;
pub mod embedded;
pub mod geo;
pub mod inventory;
pub mod logging;
pub mod logs;
pub mod model;
pub mod scan;
pub mod sensor;
pub mod store;
pub mod syslog;
pub mod top;
pub mod traffic;
pub mod web;
