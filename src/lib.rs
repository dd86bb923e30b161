//! gatewatch: network visibility that runs on the router itself.
//!
//! Module map:
//! - [`config`]: TOML file + `GATEWATCH_*` env + flags → validated [`config::Config`].
//! - [`model`]: plain data types (accounts, roles, sessions, tokens, audit entries, time).
//! - [`store`]: the only module that touches LMDB: typed tables, migrations, backup/restore,
//!   retention.
//! - [`accounts`]: sans-IO account logic: password hashing, sessions, lockout, tokens, roles.
//! - [`web`]: HTTPS server, login/session/CSRF/RBAC, pages (maud), JSON API, metrics.
//! - [`logging`]: tracing to stderr or the local syslog.
//! - [`app`]: wires the subsystems together and owns shutdown.
//! - [`cli`]: the command-line interface (argh) and its exit codes; `main.rs` only calls it.

pub mod accounts;
pub mod app;
pub mod cli;
pub mod config;
pub mod logging;
pub mod model;
pub mod store;
pub mod web;
