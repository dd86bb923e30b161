//! The inventory: what devices are on the network, sans-IO. Sources become observations,
//! observations are merged into hosts by the rules in [`merge`], people merge, split,
//! delete and acknowledge hosts. `now` is always passed in.
//!
//! - [`model`]: hosts, interfaces, addresses, services, events, subnets, scan records.
//! - [`merge`]: the in-memory [`Inventory`] and its consolidation rules.
//! - [`sources`]: neighbour entries, leases, scan reports and router facts → observations;
//!   subnets from the router's interfaces.
//! - [`nmap`]: nmap XML reports → observations.
//! - [`docker`]: Docker Engine API JSON → observations.
//! - [`schedule`]: scan schedules ("every 6h", "daily 03:00") and when they are due.
//!
//! Must not: read files, clocks or sockets, or touch the store (the discovery service in
//! `crate::discovery_service` does).

pub mod docker;
pub mod merge;
pub mod model;
pub mod nmap;
pub mod schedule;
pub mod sources;
#[cfg(test)]
mod tests;

pub use merge::{Changes, Inventory, InventoryError, Observation, ServiceObservation};
pub use model::*;
