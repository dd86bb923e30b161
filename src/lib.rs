//! gatewatch: network visibility that runs on the router itself.
//!
//! Module map:
//! - [`config`]: TOML file + `GATEWATCH_*` env + flags → validated [`config::Config`].
//! - [`model`]: plain data types (accounts, roles, sessions, tokens, audit entries, time).
//! - [`store`]: the only module that touches LMDB: typed tables, migrations, backup/restore,
//!   retention.
//! - [`accounts`]: sans-IO account logic: password hashing, sessions, lockout, tokens, roles.
//! - [`web`]: HTTPS server, login/session/CSRF/RBAC, pages (maud), JSON API, metrics.
//! - [`capture`]: capture sources behind one trait: pcap/pcapng files (live libpcap later).
//! - [`traffic`]: sans-IO packet decode, windows, sketches, flow table, DNS statistics.
//! - [`logs`]: sans-IO syslog framing (RFC 6587) and parsing (RFC 5424/3164 via syslog_loose),
//!   firewall/DHCP/sshd message parsers; the receivers and `parse-log` share it.
//! - [`discovery`]: what hosts are: MAC vendors (embedded IEEE registry), later services.
//! - [`inventory`]: sans-IO hosts/interfaces/services model, merge rules, nmap and Docker
//!   parsers, scan schedules.
//! - [`discovery_service`]: the server's discovery task: passive polling, Docker, scans
//!   (queue, progress, cancel, history) and the inventory's persistence.
//! - [`scan`]: active scans (TCP liveness and ports, probes, neighbour MACs, reverse DNS).
//! - [`logging`]: tracing to stderr or the local syslog.
//! - [`app`]: wires the subsystems together and owns shutdown.
//! - [`cli`]: the command-line interface (argh) and its exit codes; `main.rs` only calls it.

pub mod accounts;
pub mod app;
pub mod capture;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod discovery_service;
pub mod inventory;
pub mod logging;
pub mod logs;
pub mod model;
pub mod scan;
pub mod store;
pub mod traffic;
pub mod web;
