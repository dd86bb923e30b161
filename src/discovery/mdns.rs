//! mDNS / DNS-SD (sans-IO): the queries a scanner sends to a host's port 5353 from an
//! ordinary port (a "legacy unicast" query, answered by unicast to that port) and what the
//! answers say. First `_services._dns-sd._udp.local` PTR lists the service types; then a
//! PTR query per type returns instances with their SRV (port, host name), TXT and A/AAAA.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::BinDecodable;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The DNS-SD meta-query name: "which service types are there?"
pub const SERVICES_META: &str = "_services._dns-sd._udp.local.";

/// One advertised service instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MdnsService {
    /// Service type with `.local`: `_ipp._tcp.local`.
    #[serde(rename = "type")]
    pub service_type: String,
    /// Instance name without the type: `HP LaserJet Pro M404dn`.
    pub instance: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub txt: BTreeMap<String, String>,
    /// `<instance>.<type>` in presentation form, to find the instance's SRV and TXT.
    #[serde(skip)]
    full_name: String,
}

impl MdnsService {
    /// A type the host lists but whose instances did not answer.
    pub fn of_type(service_type: &str) -> MdnsService {
        MdnsService {
            service_type: service_type.to_string(),
            ..Default::default()
        }
    }
}

/// What a host's mDNS responder said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MdnsInfo {
    /// The host name its SRV records point at (`printer.local`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub services: Vec<MdnsService>,
    /// Addresses its A/AAAA records give (IPv6 addresses of the host are found this way).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
}

/// A PTR query for `name` (a type, or [`SERVICES_META`]).
pub fn ptr_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(false);
    if let Ok(name) = Name::from_ascii(name) {
        m.add_query(Query::query(name, RecordType::PTR));
    }
    m.to_vec().unwrap_or_default()
}

fn text(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_string()
}

/// Service types listed in an answer to the meta-query (`_ipp._tcp.local`).
pub fn parse_service_types(data: &[u8]) -> Vec<String> {
    let Ok(m) = Message::from_bytes(data) else {
        return Vec::new();
    };
    if m.message_type() != MessageType::Response {
        return Vec::new();
    }
    let mut out: Vec<String> = m
        .answers()
        .iter()
        .chain(m.additionals())
        .filter(|r| text(r.name()).eq_ignore_ascii_case(SERVICES_META.trim_end_matches('.')))
        .filter_map(|r| match r.data() {
            RData::PTR(ptr) => Some(text(&ptr.0)),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Folds one answer (to a per-type PTR query, or an unsolicited announcement) into `info`.
pub fn merge_answer(info: &mut MdnsInfo, data: &[u8]) {
    let Ok(m) = Message::from_bytes(data) else {
        return;
    };
    if m.message_type() != MessageType::Response {
        return;
    }
    let records: Vec<_> = m.answers().iter().chain(m.additionals()).collect();
    // Instances first (PTR type → instance), then their SRV/TXT by instance name.
    for r in &records {
        let RData::PTR(ptr) = r.data() else { continue };
        let owner = text(r.name());
        if !owner.starts_with('_') || owner.eq_ignore_ascii_case(SERVICES_META.trim_end_matches('.')) {
            continue;
        }
        let full = text(&ptr.0);
        // The instance is the first label, taken raw: it may hold spaces, dots, '@'.
        let Some(label) = ptr.0.iter().next() else {
            continue;
        };
        let instance = String::from_utf8_lossy(label).into_owned();
        if !info
            .services
            .iter()
            .any(|s| s.service_type.eq_ignore_ascii_case(&owner) && s.instance == instance)
        {
            info.services.push(MdnsService {
                service_type: owner.clone(),
                instance,
                full_name: full,
                ..Default::default()
            });
        }
    }
    for r in &records {
        let owner = text(r.name());
        let service = info
            .services
            .iter_mut()
            .find(|s| !s.full_name.is_empty() && owner.eq_ignore_ascii_case(&s.full_name));
        match (r.data(), service) {
            (RData::SRV(srv), Some(s)) => {
                s.port = Some(srv.port());
                info.hostname.get_or_insert_with(|| text(srv.target()));
            }
            (RData::TXT(txt), Some(s)) => {
                for entry in txt.txt_data() {
                    let entry = String::from_utf8_lossy(entry);
                    if entry.is_empty() {
                        continue;
                    }
                    let (k, v) = entry.split_once('=').unwrap_or((&entry, ""));
                    s.txt.insert(k.to_string(), v.to_string());
                }
            }
            (RData::A(a), _) => push_addr(info, IpAddr::V4(a.0)),
            (RData::AAAA(a), _) => push_addr(info, IpAddr::V6(a.0)),
            _ => {}
        }
    }
}

fn push_addr(info: &mut MdnsInfo, ip: IpAddr) {
    if !info.addresses.contains(&ip) {
        info.addresses.push(ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::udp::fixture;

    #[test]
    fn meta_query_matches_nmap() {
        assert_eq!(ptr_query(0, SERVICES_META), fixture("mdns-services.query.hex"));
    }

    #[test]
    fn service_types_from_a_real_responder() {
        let types = parse_service_types(&fixture("mdns-services.appletv.hex"));
        assert_eq!(types, ["_airplay._tcp.local", "_raop._tcp.local"]);
        assert!(parse_service_types(&fixture("mdns-services.query.hex")).is_empty());
        assert!(parse_service_types(b"\x00\x01garbage").is_empty());
    }

    #[test]
    fn instances_with_srv_txt_and_address() {
        let mut info = MdnsInfo::default();
        merge_answer(&mut info, &fixture("mdns-googlecast.chromecast.hex"));
        assert_eq!(info.hostname.as_deref(), Some("chromecast.local"));
        assert_eq!(info.addresses, ["10.200.1.160".parse::<IpAddr>().unwrap()]);
        let s = &info.services[0];
        assert_eq!(
            (s.service_type.as_str(), s.instance.as_str(), s.port),
            ("_googlecast._tcp.local", "Chromecast-5460090a1b2c", Some(8009))
        );
        assert_eq!(s.txt.get("fn").map(String::as_str), Some("Bedroom TV"));
        assert_eq!(s.txt.get("md").map(String::as_str), Some("Chromecast"));

        merge_answer(&mut info, &fixture("mdns-http.nas.hex"));
        let nas = info
            .services
            .iter()
            .find(|s| s.service_type == "_http._tcp.local")
            .unwrap();
        assert_eq!((nas.instance.as_str(), nas.port), ("nas", Some(5000)));
        assert_eq!(nas.txt.get("model").map(String::as_str), Some("DS920+"));
        merge_answer(&mut info, &fixture("mdns-airplay.appletv.hex"));
        let tv = info
            .services
            .iter()
            .find(|s| s.service_type == "_airplay._tcp.local")
            .unwrap();
        assert_eq!((tv.instance.as_str(), tv.port), ("Living Room", Some(7000)));
        assert_eq!(
            tv.txt.get("deviceid").map(String::as_str),
            Some("28:FF:3C:11:22:33")
        );
        // Truncated answers add nothing and do not panic.
        let whole = fixture("mdns-http.nas.hex");
        for cut in 0..whole.len() {
            merge_answer(&mut MdnsInfo::default(), &whole[..cut]);
        }
    }
}
