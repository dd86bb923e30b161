//! UDP probes with real payloads and what their answers say (sans-IO): DNS (`version.bind`),
//! NTP (a mode 3 client packet), SNMP (v1 GET of sysDescr.0 and sysName.0 with community
//! `public`) and NetBIOS (a node status request). mDNS and SSDP, which take several
//! exchanges, live in [`super::mdns`] and [`super::ssdp`]. The scanner sends
//! [`UdpProbe::payload`] to the probe's port and hands any datagram that comes back from
//! that address to [`UdpProbe::parse`].

use super::ber::{self, Reader};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::BinDecodable;
use serde::Serialize;

/// A single-datagram UDP probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpProbe {
    Dns,
    Ntp,
    Snmp,
    NetbiosStatus,
}

impl UdpProbe {
    pub const ALL: [UdpProbe; 4] = [
        UdpProbe::Dns,
        UdpProbe::Ntp,
        UdpProbe::Snmp,
        UdpProbe::NetbiosStatus,
    ];

    pub fn port(self) -> u16 {
        match self {
            UdpProbe::Dns => 53,
            UdpProbe::Ntp => 123,
            UdpProbe::Snmp => 161,
            UdpProbe::NetbiosStatus => 137,
        }
    }

    /// nmap/IANA service name of the port.
    pub fn service(self) -> &'static str {
        match self {
            UdpProbe::Dns => "domain",
            UdpProbe::Ntp => "ntp",
            UdpProbe::Snmp => "snmp",
            UdpProbe::NetbiosStatus => "netbios-ns",
        }
    }

    /// The datagram to send; `id` ties the answer to the question where the protocol has
    /// an id field.
    pub fn payload(self, id: u16) -> Vec<u8> {
        match self {
            UdpProbe::Dns => dns_version_query(id),
            UdpProbe::Ntp => ntp_client_request(),
            UdpProbe::Snmp => snmp_get(0, "public", id as u32, &[SYS_DESCR, SYS_NAME]),
            UdpProbe::NetbiosStatus => netbios_status_request(id),
        }
    }

    /// What an answer says; `None` when it is not an answer to this probe.
    pub fn parse(self, id: u16, data: &[u8]) -> Option<UdpAnswer> {
        match self {
            UdpProbe::Dns => parse_dns_version(id, data).map(UdpAnswer::Dns),
            UdpProbe::Ntp => parse_ntp(data).map(UdpAnswer::Ntp),
            UdpProbe::Snmp => parse_snmp(data).map(UdpAnswer::Snmp),
            UdpProbe::NetbiosStatus => parse_netbios_status(id, data).map(UdpAnswer::Netbios),
        }
    }
}

/// A parsed answer to a [`UdpProbe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpAnswer {
    Dns(DnsInfo),
    Ntp(NtpInfo),
    Snmp(SnmpInfo),
    Netbios(NetbiosInfo),
}

/// A DNS server's answer to `version.bind` (CHAOS TXT).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DnsInfo {
    /// The version string, when the server tells (dnsmasq: "dnsmasq-2.90").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_bind: Option<String>,
    /// Response code name: NoError, Refused, NotImp, …
    pub rcode: String,
}

/// An NTP server's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NtpInfo {
    pub version: u8,
    pub stratum: u8,
    /// Reference id: a clock name at stratum 1 ("GPS"), an IPv4 address below.
    pub reference: String,
}

/// An SNMP agent's system description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SnmpInfo {
    pub community: String,
    #[serde(rename = "sysDescr", skip_serializing_if = "Option::is_none")]
    pub sys_descr: Option<String>,
    #[serde(rename = "sysName", skip_serializing_if = "Option::is_none")]
    pub sys_name: Option<String>,
}

/// What a NetBIOS node status answer names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetbiosInfo {
    /// The machine name (the unique `<00>` name).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workgroup: Option<String>,
    /// The adapter address the node reports (all zeros from Samba: then `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// `version.bind` TXT in class CHAOS, recursion desired (as `dig` and nmap send it).
pub fn dns_version_query(id: u16) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true);
    let name = Name::from_ascii("version.bind.").expect("a valid constant name");
    let mut q = Query::query(name, RecordType::TXT);
    q.set_query_class(DNSClass::CH);
    m.add_query(q);
    m.to_vec().unwrap_or_default()
}

/// Any DNS response with our id counts (a refusal still proves a DNS server).
pub fn parse_dns_version(id: u16, data: &[u8]) -> Option<DnsInfo> {
    let m = Message::from_bytes(data).ok()?;
    if m.id() != id || m.message_type() != MessageType::Response {
        return None;
    }
    let version_bind = m.answers().iter().find_map(|r| match r.data() {
        RData::TXT(txt) => Some(
            txt.txt_data()
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<String>(),
        ),
        _ => None,
    });
    Some(DnsInfo {
        version_bind,
        rcode: format!("{:?}", m.response_code()),
    })
}

/// A 48-byte NTPv4 client request (mode 3), all timestamps zero: servers answer it and it
/// reveals nothing about our clock.
pub fn ntp_client_request() -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = (4 << 3) | 3; // LI 0, version 4, mode 3 (client)
    p
}

/// A server (mode 4) or symmetric-passive (mode 2) answer.
pub fn parse_ntp(data: &[u8]) -> Option<NtpInfo> {
    if data.len() < 48 {
        return None;
    }
    let mode = data[0] & 0x07;
    let version = (data[0] >> 3) & 0x07;
    if !(mode == 4 || mode == 2) || !(1..=4).contains(&version) {
        return None;
    }
    let stratum = data[1];
    let refid = &data[12..16];
    let reference = if stratum <= 1 {
        refid
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| if b.is_ascii_graphic() { *b as char } else { '.' })
            .collect()
    } else {
        std::net::Ipv4Addr::new(refid[0], refid[1], refid[2], refid[3]).to_string()
    };
    Some(NtpInfo {
        version,
        stratum,
        reference,
    })
}

const SYS_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
const SYS_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 5, 0];

/// An SNMP GetRequest for `oids` (version 0 = v1, 1 = v2c).
pub fn snmp_get(version: u8, community: &str, request_id: u32, oids: &[&[u32]]) -> Vec<u8> {
    let varbinds: Vec<u8> = oids
        .iter()
        .flat_map(|oid| {
            let mut vb = ber::tlv(0x06, &ber::encode_oid(oid));
            vb.extend([0x05, 0x00]);
            ber::tlv(0x30, &vb)
        })
        .collect();
    let id = request_id.to_be_bytes();
    let skip = id.iter().take(3).take_while(|b| **b == 0).count();
    let mut id_bytes = id[skip..].to_vec();
    if id_bytes[0] & 0x80 != 0 {
        id_bytes.insert(0, 0);
    }
    let mut pdu = ber::tlv(0x02, &id_bytes);
    pdu.extend([0x02, 0x01, 0x00, 0x02, 0x01, 0x00]); // error-status, error-index
    pdu.extend(ber::tlv(0x30, &varbinds));
    let mut msg = ber::tlv(0x02, &[version]);
    msg.extend(ber::tlv(0x04, community.as_bytes()));
    msg.extend(ber::tlv(0xa0, &pdu));
    ber::tlv(0x30, &msg)
}

/// A GetResponse: the community it came back with and the system group values in it.
pub fn parse_snmp(data: &[u8]) -> Option<SnmpInfo> {
    let msg = Reader::new(data).expect(0x30)?;
    let mut r = msg.reader();
    r.expect(0x02)?; // version
    let community = String::from_utf8_lossy(r.expect(0x04)?.value).into_owned();
    let pdu = r.expect(0xa2)?; // GetResponse
    let mut p = pdu.reader();
    p.expect(0x02)?; // request id
    let error = p.expect(0x02)?.as_u64()?;
    p.expect(0x02)?;
    let mut info = SnmpInfo {
        community,
        ..Default::default()
    };
    if error != 0 {
        return Some(info); // an agent that answers, just not to these names
    }
    let mut list = p.expect(0x30)?.reader();
    while let Some(vb) = list.next_tlv() {
        let mut v = vb.reader();
        let oid = ber::oid_to_string(v.expect(0x06)?.value)?;
        let value = v.next_tlv()?;
        if value.tag != 0x04 {
            continue; // noSuchObject and friends
        }
        let text = String::from_utf8_lossy(value.value).trim().to_string();
        match oid.as_str() {
            "1.3.6.1.2.1.1.1.0" => info.sys_descr = Some(text),
            "1.3.6.1.2.1.1.5.0" => info.sys_name = Some(text),
            _ => {}
        }
    }
    Some(info)
}

/// NetBIOS node status request (NBSTAT) for the wildcard name `*`.
pub fn netbios_status_request(id: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(50);
    p.extend(id.to_be_bytes());
    p.extend([0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    p.push(0x20);
    // First-level encoding of "*" followed by 15 NULs: each nibble + 'A'.
    let mut name = [0u8; 16];
    name[0] = b'*';
    for b in name {
        p.push(b'A' + (b >> 4));
        p.push(b'A' + (b & 0x0f));
    }
    p.push(0x00);
    p.extend([0x00, 0x21, 0x00, 0x01]); // NBSTAT, IN
    p
}

/// A node status response: the unique `<00>` name is the machine, the group `<00>` name
/// its workgroup.
pub fn parse_netbios_status(id: u16, data: &[u8]) -> Option<NetbiosInfo> {
    if data.len() < 12 || u16::from_be_bytes([data[0], data[1]]) != id || data[2] & 0x80 == 0 {
        return None;
    }
    // Header, then the question name (length-prefixed labels; usually one 32-byte label).
    let mut at = 12;
    loop {
        let len = *data.get(at)? as usize;
        if len & 0xc0 == 0xc0 {
            at += 2;
            break;
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    // type, class, ttl, rdlength
    let rtype = u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]);
    if rtype != 0x21 {
        return None;
    }
    at += 10;
    let count = *data.get(at)? as usize;
    at += 1;
    let mut info = NetbiosInfo::default();
    for i in 0..count {
        let entry = data.get(at + i * 18..at + i * 18 + 18)?;
        let name = String::from_utf8_lossy(&entry[..15]).trim_end().to_string();
        let suffix = entry[15];
        let group = entry[16] & 0x80 != 0;
        match (suffix, group) {
            (0x00, false) if info.name.is_empty() => info.name = name,
            (0x00, true) if info.workgroup.is_none() => info.workgroup = Some(name),
            _ => {}
        }
    }
    let mac = data.get(at + count * 18..at + count * 18 + 6);
    info.mac = mac
        .filter(|m| m.iter().any(|b| *b != 0))
        .map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"));
    (!info.name.is_empty()).then_some(info)
}

#[cfg(test)]
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/udp")
        .join(name);
    let hex = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex fixture"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Requests: our builders must produce what nmap's NSE scripts sent (same id), byte for
    // byte. Answers: real daemons' bytes (dnsmasq, svc.py's agent, Samba nmbd, an NTP
    // server in zeek's traces); see tests/fixtures/udp/make-fixtures.sh.

    #[test]
    fn dns_version_bind_matches_nmap_and_reads_dnsmasq() {
        assert_eq!(dns_version_query(0x7777), fixture("dns-version-bind.query.hex"));
        let answer = fixture("dns-version-bind.dnsmasq.hex");
        let info = parse_dns_version(0x7777, &answer).unwrap();
        assert_eq!(info.version_bind.as_deref(), Some("dnsmasq-2.90"));
        assert_eq!(info.rcode, "NoError");
        assert_eq!(parse_dns_version(0x1234, &answer), None, "another query's answer");
        assert_eq!(
            parse_dns_version(0x7777, &fixture("dns-version-bind.query.hex")),
            None
        );
        assert_eq!(parse_dns_version(0x7777, &answer[..20]), None);
    }

    #[test]
    fn ntp_request_and_a_real_server_answer() {
        let ours = ntp_client_request();
        let real_client = fixture("ntp.client.hex");
        assert_eq!(ours.len(), real_client.len());
        assert_eq!(
            ours[0] & 0x3f,
            real_client[0] & 0x3f,
            "version 4, mode 3 like a real client"
        );
        let info = parse_ntp(&fixture("ntp.server.hex")).unwrap();
        assert_eq!((info.version, info.stratum), (4, 2));
        assert_eq!(info.reference, "192.43.244.18");
        assert_eq!(parse_ntp(&real_client), None, "a client packet is not an answer");
        assert_eq!(parse_ntp(&[0x24; 47]), None);
    }

    #[test]
    fn snmp_get_matches_nmap_and_reads_real_agents() {
        let nmap = fixture("snmp-sysdescr.query.hex");
        let id = u16::from_be_bytes([nmap[17], nmap[18]]) as u32;
        assert_eq!(snmp_get(0, "public", id, &[SYS_DESCR]), nmap);
        let printer = parse_snmp(&fixture("snmp-sysdescr.printer.hex")).unwrap();
        assert_eq!(printer.community, "public");
        assert_eq!(
            printer.sys_descr.as_deref(),
            Some("HP ETHERNET MULTI-ENVIRONMENT,ROM none,JETDIRECT,JD153,EEPROM JSI23500045")
        );
        let cisco = parse_snmp(&fixture("snmp-sysdescr.core-switch.hex")).unwrap();
        assert!(cisco.sys_descr.unwrap().starts_with("Cisco IOS Software, C2960"));
        assert_eq!(parse_snmp(&nmap), None, "a request is not a response");
        let whole = fixture("snmp-sysdescr.printer.hex");
        for cut in 0..whole.len() {
            assert_eq!(parse_snmp(&whole[..cut]), None, "truncated at {cut}");
        }
    }

    #[test]
    fn netbios_status_matches_nmap_and_reads_nmbd() {
        let nmap = fixture("nbstat.query.hex");
        assert_eq!(
            netbios_status_request(u16::from_be_bytes([nmap[0], nmap[1]])),
            nmap
        );
        let answer = fixture("nbstat.nmbd.hex");
        let id = u16::from_be_bytes([answer[0], answer[1]]);
        let info = parse_netbios_status(id, &answer).unwrap();
        assert_eq!(info.name, "LABNAS");
        assert_eq!(info.workgroup.as_deref(), Some("HOMELAB"));
        assert_eq!(info.mac, None, "Samba reports an all-zero MAC");
        assert_eq!(parse_netbios_status(id.wrapping_add(1), &answer), None);
        for cut in 0..answer.len() - 6 {
            let _ = parse_netbios_status(id, &answer[..cut]); // must not panic
        }
    }

    #[test]
    fn probes_know_their_ports() {
        let ports: Vec<u16> = UdpProbe::ALL.iter().map(|p| p.port()).collect();
        assert_eq!(ports, [53, 123, 161, 137]);
        let id = 0x4242;
        let dns = UdpProbe::Dns.payload(id);
        assert!(
            UdpProbe::Dns.parse(id, &dns).is_none(),
            "our own query is no answer"
        );
    }
}
