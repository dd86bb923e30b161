//! Discovery: what the hosts on attached subnets are. Sans-IO pieces only: the scanner and
//! passive sources (later) feed evidence in; nothing here sends packets.
//!
//! - [`identify`]: which probe to send to an open port and what its answer means.
//! - [`oui`]: MAC address → vendor, from the embedded IEEE registry.
//! - [`services`]: service definitions (embedded data) and the matcher that names services.
//! - [`passive`]: neighbour tables and DHCP lease files, parsed without sending anything.
//! - [`ports`]: port sets for scans and port-table names.

pub mod identify;
pub mod oui;
pub mod passive;
pub mod ports;
pub mod services;
