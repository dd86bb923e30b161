//! Discovery: what the hosts on attached subnets are. Sans-IO pieces only: the scanner and
//! passive sources (later) feed evidence in; nothing here sends packets.
//!
//! - [`identify`]: which probe to send to an open port and what its answer means.
//! - [`oui`]: MAC address → vendor, from the embedded IEEE registry.
//! - [`services`]: service definitions (embedded data) and the matcher that names services.
//! - [`passive`]: neighbour tables and DHCP lease files, parsed without sending anything.
//! - [`ports`]: port sets for scans and port-table names.
//! - [`udp`], [`mdns`], [`ssdp`]: UDP probe payloads and what their answers say.
//! - [`x509`]: names in a TLS server's certificate; [`ber`]: the DER reader under it and SNMP.
//! - [`ping`]: ICMP echo and ARP packets for liveness sweeps.
//! - [`names`]: which of a host's names to show (DNS > DHCP > mDNS > NetBIOS > service > IP).
//! - [`device_kind`]: iPhone / Android / Windows / macOS / Linux / IoT from host name, DHCP
//!   vendor class and MAC vendor.

pub mod ber;
pub mod device_kind;
pub mod identify;
pub mod mdns;
pub mod names;
pub mod oui;
pub mod passive;
pub mod ping;
pub mod ports;
pub mod services;
pub mod ssdp;
pub mod udp;
pub mod x509;
