//! Packet decoding: link layer → outermost IP header → TCP/UDP header, zero-copy, with
//! etherparse's checked slices. Produces a [`Decoded`] view that borrows the packet.
//!
//! The counting rules are those of `../shared/testdata/pcap/README.md`: any number of VLAN
//! tags (0x8100, 0x88a8, 0x9100, 0x9200) and MPLS labels are skipped; Linux SLL/SLL2, BSD
//! NULL/LOOP and raw IP are understood; tunnels are not decapsulated; IP fragments are
//! classified by their protocol number and never reassembled; a non-first fragment has no
//! ports. Never panics and never allocates: every read is length-checked.

use crate::capture::LinkType;
use etherparse::{
    Ethernet2HeaderSlice, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice, SingleVlanHeaderSlice,
    TcpHeaderSlice, UdpHeaderSlice,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_MPLS_UC: u16 = 0x8847;
const ETHERTYPE_MPLS_MC: u16 = 0x8848;
const VLAN_TPIDS: [u16; 4] = [0x8100, 0x88A8, 0x9100, 0x9200];

/// What sits above the link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L3 {
    /// No IP after the link layer (ARP, STP, LLC, unknown link type, short frame).
    #[default]
    NonIp,
    Ipv4,
    Ipv6,
    /// The link layer says IP but the IP header is cut off or invalid.
    MalformedIp,
}

/// Why a packet was not fully decoded; counted per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The link-layer header (Ethernet, VLAN tag, MPLS label, SLL…) is cut off.
    LinkHeader,
    /// The file's link type is not one we decode; the packet counts as non-IP.
    UnsupportedLinkType,
    /// IPv4/IPv6 header cut off or invalid (`malformed_ip`).
    IpHeader,
    /// An IPv6 extension header is cut off.
    Ipv6Extension,
    /// TCP/UDP header cut off in a packet that should hold it.
    L4Header,
}

impl Malformed {
    pub const ALL: [Malformed; 5] = [
        Malformed::LinkHeader,
        Malformed::UnsupportedLinkType,
        Malformed::IpHeader,
        Malformed::Ipv6Extension,
        Malformed::L4Header,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Malformed::LinkHeader => "link_header",
            Malformed::UnsupportedLinkType => "unsupported_linktype",
            Malformed::IpHeader => "ip_header",
            Malformed::Ipv6Extension => "ipv6_extension",
            Malformed::L4Header => "l4_header",
        }
    }
}

/// The decoded view of one packet. `l4_payload` borrows the packet bytes.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    pub l3: L3,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol number of the outermost IP header (IPv6 extensions walked).
    pub proto: u8,
    /// TCP or UDP header present (first or no fragment, header captured).
    pub l4_header: bool,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub tcp_seq: u32,
    /// Bytes after the TCP/UDP header, cut at the IP/UDP length (Ethernet padding removed).
    pub l4_payload: &'a [u8],
    /// UDP datagram not fully present (IP fragment or cut by snaplen).
    pub udp_incomplete: bool,
    pub fragment: bool,
    pub first_fragment: bool,
    pub vlan_tags: u8,
    pub malformed: Option<Malformed>,
}

impl Default for Decoded<'_> {
    fn default() -> Self {
        Decoded {
            l3: L3::NonIp,
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            proto: 0,
            l4_header: false,
            sport: 0,
            dport: 0,
            tcp_flags: 0,
            tcp_seq: 0,
            l4_payload: &[],
            udp_incomplete: false,
            fragment: false,
            first_fragment: true,
            vlan_tags: 0,
            malformed: None,
        }
    }
}

impl Decoded<'_> {
    pub fn is_ip(&self) -> bool {
        matches!(self.l3, L3::Ipv4 | L3::Ipv6)
    }

    pub fn is_tcp_syn(&self) -> bool {
        self.l4_header && self.proto == IPPROTO_TCP && self.tcp_flags & 0x02 != 0
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// True for the link types [`decode`] understands; others count as non-IP.
pub fn is_supported(link: LinkType) -> bool {
    matches!(
        link,
        LinkType::ETHERNET
            | LinkType::LINUX_SLL
            | LinkType::LINUX_SLL2
            | LinkType::NULL
            | LinkType::LOOP
            | LinkType::RAW
            | LinkType::RAW_ALT_12
            | LinkType::RAW_ALT_14
            | LinkType::IPV4
            | LinkType::IPV6
    )
}

/// Decodes one captured record of the given link type.
pub fn decode(link: LinkType, data: &[u8]) -> Decoded<'_> {
    let mut p = Decoded::default();
    match link {
        LinkType::ETHERNET => match Ethernet2HeaderSlice::from_slice(data) {
            Ok(eth) => {
                let et = eth.ether_type().0;
                // <= 1500 is an 802.3 length field: LLC, not IP.
                if et > 1500 {
                    ethertype(&mut p, et, data.get(14..).unwrap_or(&[]));
                }
            }
            Err(_) => p.malformed = Some(Malformed::LinkHeader),
        },
        LinkType::LINUX_SLL => match (be16(data, 14), data.get(16..)) {
            (Some(et), Some(rest)) => ethertype(&mut p, et, rest),
            _ => p.malformed = Some(Malformed::LinkHeader),
        },
        LinkType::LINUX_SLL2 => match (be16(data, 0), data.get(20..)) {
            (Some(et), Some(rest)) => ethertype(&mut p, et, rest),
            _ => p.malformed = Some(Malformed::LinkHeader),
        },
        LinkType::NULL | LinkType::LOOP => match data.get(..4) {
            Some(h) => {
                let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
                let family = if le < 256 {
                    le
                } else {
                    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
                };
                let rest = &data[4..];
                match family {
                    2 => ipv4(&mut p, rest),
                    10 | 24 | 28 | 30 => ipv6(&mut p, rest),
                    _ => {}
                }
            }
            None => p.malformed = Some(Malformed::LinkHeader),
        },
        LinkType::RAW | LinkType::RAW_ALT_12 | LinkType::RAW_ALT_14 => by_version(&mut p, data),
        LinkType::IPV4 => ipv4(&mut p, data),
        LinkType::IPV6 => ipv6(&mut p, data),
        _ => p.malformed = Some(Malformed::UnsupportedLinkType),
    }
    p
}

/// Raw IP: the version nibble decides; anything else is not IP.
fn by_version<'a>(p: &mut Decoded<'a>, d: &'a [u8]) {
    match d.first().map(|b| b >> 4) {
        Some(4) => ipv4(p, d),
        Some(6) => ipv6(p, d),
        _ => {}
    }
}

fn ethertype<'a>(p: &mut Decoded<'a>, mut et: u16, mut d: &'a [u8]) {
    loop {
        if VLAN_TPIDS.contains(&et) {
            match SingleVlanHeaderSlice::from_slice(d) {
                Ok(tag) => {
                    p.vlan_tags = p.vlan_tags.saturating_add(1);
                    et = tag.ether_type().0;
                    d = &d[4..];
                    continue;
                }
                Err(_) => {
                    p.malformed = Some(Malformed::LinkHeader);
                    return;
                }
            }
        }
        match et {
            ETHERTYPE_MPLS_UC | ETHERTYPE_MPLS_MC => {
                loop {
                    let Some(label) = d.get(..4) else {
                        p.malformed = Some(Malformed::LinkHeader);
                        return;
                    };
                    let bottom = label[2] & 1 == 1;
                    d = &d[4..];
                    if bottom {
                        break;
                    }
                }
                return by_version(p, d);
            }
            ETHERTYPE_IPV4 => return ipv4(p, d),
            ETHERTYPE_IPV6 => return ipv6(p, d),
            _ => return,
        }
    }
}

fn ipv4<'a>(p: &mut Decoded<'a>, d: &'a [u8]) {
    let Ok(h) = Ipv4HeaderSlice::from_slice(d) else {
        p.l3 = L3::MalformedIp;
        p.malformed = Some(Malformed::IpHeader);
        return;
    };
    let ihl = h.slice().len();
    let total = usize::from(h.total_len());
    p.l3 = L3::Ipv4;
    p.proto = h.protocol().0;
    p.src = IpAddr::V4(h.source_addr());
    p.dst = IpAddr::V4(h.destination_addr());
    let offset = h.fragments_offset().value();
    p.fragment = h.more_fragments() || offset != 0;
    p.first_fragment = offset == 0;
    // Cut Ethernet padding: the IP total length bounds the payload unless it is bogus.
    let end = if total >= ihl { d.len().min(total) } else { d.len() };
    l4(p, d.get(ihl..end).unwrap_or(&[]));
}

fn ipv6<'a>(p: &mut Decoded<'a>, d: &'a [u8]) {
    let Ok(h) = Ipv6HeaderSlice::from_slice(d) else {
        p.l3 = L3::MalformedIp;
        p.malformed = Some(Malformed::IpHeader);
        return;
    };
    p.l3 = L3::Ipv6;
    p.src = IpAddr::V6(Ipv6Addr::from(h.source()));
    p.dst = IpAddr::V6(Ipv6Addr::from(h.destination()));
    let plen = usize::from(h.payload_length());
    let rest = &d[40..];
    // Payload length 0 is a jumbogram (or a writer's shortcut): take everything.
    let mut body = if plen == 0 {
        rest
    } else {
        &rest[..plen.min(rest.len())]
    };
    let mut nh = h.next_header().0;
    loop {
        match nh {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let (Some(&next), Some(&len)) = (body.first(), body.get(1)) else {
                    return truncated_ext(p, nh);
                };
                if body.len() < 8 {
                    return truncated_ext(p, nh);
                }
                let hlen = (usize::from(len) + 1) * 8;
                nh = next;
                body = body.get(hlen..).unwrap_or(&[]);
            }
            44 => {
                let Ok(f) = Ipv6FragmentHeaderSlice::from_slice(body) else {
                    return truncated_ext(p, nh);
                };
                p.fragment = true;
                p.first_fragment = f.fragment_offset().value() == 0;
                nh = f.next_header().0;
                body = &body[8..];
            }
            // Authentication header: its length is in 4-byte units, minus 2.
            51 => {
                if body.len() < 8 {
                    p.proto = nh;
                    return;
                }
                let hlen = (usize::from(body[1]) + 2) * 4;
                nh = body[0];
                body = body.get(hlen..).unwrap_or(&[]);
            }
            _ => break,
        }
    }
    p.proto = nh;
    l4(p, body);
}

fn truncated_ext(p: &mut Decoded<'_>, nh: u8) {
    p.proto = nh;
    p.malformed = Some(Malformed::Ipv6Extension);
}

fn l4<'a>(p: &mut Decoded<'a>, d: &'a [u8]) {
    if !p.first_fragment {
        return;
    }
    match p.proto {
        IPPROTO_TCP => {
            if d.len() < 20 {
                p.malformed = Some(Malformed::L4Header);
                return;
            }
            let data_offset = match TcpHeaderSlice::from_slice(d) {
                Ok(t) => {
                    p.sport = t.source_port();
                    p.dport = t.destination_port();
                    p.tcp_seq = t.sequence_number();
                    usize::from(t.data_offset()) * 4
                }
                // Options cut by the snaplen or a bogus data offset: the fixed 20 bytes
                // are still there and still tell ports, sequence and flags.
                Err(_) => {
                    p.sport = u16::from_be_bytes([d[0], d[1]]);
                    p.dport = u16::from_be_bytes([d[2], d[3]]);
                    p.tcp_seq = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
                    usize::from(d[12] >> 4) * 4
                }
            };
            p.tcp_flags = d[13];
            p.l4_header = true;
            p.l4_payload = if data_offset >= 20 {
                d.get(data_offset..).unwrap_or(&[])
            } else {
                &[]
            };
        }
        IPPROTO_UDP => {
            let Ok(u) = UdpHeaderSlice::from_slice(d) else {
                p.malformed = Some(Malformed::L4Header);
                return;
            };
            p.sport = u.source_port();
            p.dport = u.destination_port();
            p.l4_header = true;
            let ulen = usize::from(u.length());
            let end = if ulen >= 8 { ulen.min(d.len()) } else { d.len() };
            p.l4_payload = d.get(8..end).unwrap_or(&[]);
            p.udp_incomplete = p.fragment || ulen > d.len();
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn ipv4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let total = 20 + 8 + payload.len();
        let mut v = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        v[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn udp_in_ethernet_with_padding() {
        let mut frame = eth(0x0800, &ipv4_udp(1000, 53, b"abc"));
        frame.extend_from_slice(&[0; 20]); // Ethernet padding
        let d = decode(LinkType::ETHERNET, &frame);
        assert_eq!(d.l3, L3::Ipv4);
        assert_eq!((d.proto, d.sport, d.dport), (17, 1000, 53));
        assert_eq!(d.l4_payload, b"abc");
        assert!(!d.udp_incomplete);
    }

    #[test]
    fn three_vlan_tags_and_mpls_are_skipped() {
        let ip = ipv4_udp(1, 2, b"");
        let mut inner = vec![0, 0, 0x88, 0x47]; // third tag, then MPLS
        inner.extend_from_slice(&[0, 0, 0x00, 0x40]); // MPLS label, not bottom
        inner.extend_from_slice(&[0, 0, 0x01, 0x40]); // bottom of stack
        inner.extend_from_slice(&ip);
        let mut tags = vec![0, 1, 0x91, 0x00, 0, 2, 0x81, 0x00];
        tags.extend_from_slice(&inner);
        let frame = eth(0x88A8, &tags);
        let d = decode(LinkType::ETHERNET, &frame);
        assert_eq!(d.vlan_tags, 3);
        assert_eq!(d.l3, L3::Ipv4);
        assert_eq!(d.dport, 2);
    }

    #[test]
    fn truncated_ip_is_malformed_and_short_ethernet_is_non_ip() {
        let frame = eth(0x0800, &[0x45, 0, 0, 40, 0, 0]);
        assert_eq!(decode(LinkType::ETHERNET, &frame).l3, L3::MalformedIp);
        let d = decode(LinkType::ETHERNET, &[0u8; 8]);
        assert_eq!(d.l3, L3::NonIp);
        assert_eq!(d.malformed, Some(Malformed::LinkHeader));
    }

    #[test]
    fn non_first_fragment_has_no_ports() {
        let mut ip = ipv4_udp(1, 2, b"xxxxxxxx");
        ip[6..8].copy_from_slice(&(0x0010u16).to_be_bytes()); // offset 16*8
        let d = decode(LinkType::RAW, &ip);
        assert_eq!(d.l3, L3::Ipv4);
        assert!(d.fragment && !d.first_fragment && !d.l4_header);
        assert_eq!(d.proto, 17);
    }

    #[test]
    fn ipv6_hop_by_hop_then_icmpv6() {
        let mut v = vec![0x60, 0, 0, 0, 0, 16, 0, 64];
        v.extend_from_slice(&[0; 32]);
        v.extend_from_slice(&[58, 0, 0, 0, 0, 0, 0, 0]); // HBH → ICMPv6
        v.extend_from_slice(&[128, 0, 0, 0, 0, 0, 0, 0]);
        let d = decode(LinkType::RAW, &v);
        assert_eq!((d.l3, d.proto), (L3::Ipv6, 58));
    }

    #[test]
    fn unknown_link_type_is_counted_not_decoded() {
        let d = decode(LinkType(147), &[1, 2, 3]);
        assert_eq!(d.l3, L3::NonIp);
        assert_eq!(d.malformed, Some(Malformed::UnsupportedLinkType));
    }

    /// Random and truncated bytes for every link type: never a panic, and the view never
    /// points outside the input.
    #[test]
    fn random_and_truncated_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9a7e_3a7c);
        let links = [0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147];
        let mut valid = eth(0x8100, &[0, 5, 0x86, 0xDD]);
        let mut v6 = vec![0x60, 0, 0, 0, 0, 40, 0, 64];
        v6.extend_from_slice(&[0xfe; 32]);
        v6.extend_from_slice(&[6, 0, 0, 1, 0, 0, 0, 0]); // HBH → TCP
        v6.extend_from_slice(&[44, 1, 0, 0, 0, 0, 0, 0]); // (bogus second ext)
        v6.extend_from_slice(&[0; 24]);
        valid.extend_from_slice(&v6);
        for _ in 0..20_000 {
            let link = LinkType(links[rng.gen_range(0..links.len())]);
            let len = rng.gen_range(0..96);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            // Bias towards plausible headers so the deeper layers are reached.
            if len > 20 && rng.gen_bool(0.5) {
                buf[12] = 0x08;
                buf[13] = 0x00;
                buf[14] = 0x45;
            }
            let d = decode(link, &buf);
            assert!(d.l4_payload.len() <= buf.len());
        }
        for cut in 0..valid.len() {
            let d = decode(LinkType::ETHERNET, &valid[..cut]);
            assert!(d.l4_payload.len() <= cut);
        }
    }
}
