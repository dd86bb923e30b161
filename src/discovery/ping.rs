//! Liveness packets (sans-IO): ICMP/ICMPv6 echo requests and replies, Ethernet ARP
//! requests and replies. The scanner's liveness sweep (`scan::liveness`) sends these
//! through sockets and libpcap; here is only what the bytes are.

use super::oui::Mac;
use std::net::Ipv4Addr;

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request (`v6`: ICMPv6 type 128, whose checksum the kernel fills in; IPv4: type
/// 8 with the checksum computed here).
pub fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend(id.to_be_bytes());
    p.extend(seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// (id, seq) of an echo reply. Raw IPv4 sockets deliver the IP header too: pass
/// `with_ip_header` to skip it.
pub fn parse_echo_reply(v6: bool, with_ip_header: bool, data: &[u8]) -> Option<(u16, u16)> {
    let icmp = if with_ip_header {
        let ihl = (*data.first()? & 0x0f) as usize * 4;
        if *data.first()? >> 4 != 4 || ihl < 20 {
            return None;
        }
        data.get(ihl..)?
    } else {
        data
    };
    let reply_type = if v6 { 129 } else { 0 };
    if icmp.len() < 8 || icmp[0] != reply_type || icmp[1] != 0 {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

/// A broadcast Ethernet frame asking who has `target`.
pub fn arp_request(src_mac: Mac, src_ip: Ipv4Addr, target: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&src_mac.0);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01]);
    f[22..28].copy_from_slice(&src_mac.0);
    f[28..32].copy_from_slice(&src_ip.octets());
    // target hardware address stays zero
    f[38..42].copy_from_slice(&target.octets());
    f
}

/// Sender address and MAC of an ARP reply (Ethernet/IPv4) in an Ethernet frame.
pub fn parse_arp_reply(frame: &[u8]) -> Option<(Ipv4Addr, Mac)> {
    let arp = frame.get(14..42)?;
    if frame.get(12..14)? != [0x08, 0x06] || arp[0..8] != [0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02] {
        return None;
    }
    let mac = Mac(arp[8..14].try_into().ok()?);
    let ip = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
    Some((ip, mac))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::udp::fixture;

    #[test]
    fn echo_request_equals_what_linux_ping_sent() {
        // zeek's icmp_5-pings trace: id 0x04ca, seq 1, Linux ping's 56-byte payload.
        let real = fixture("icmp-echo-request.linux.hex");
        assert_eq!(echo_request(false, 0x04ca, 1, &real[8..]), real);
        let v6 = echo_request(true, 7, 9, b"x");
        assert_eq!(v6[..8], [128, 0, 0, 0, 0, 7, 0, 9]);
    }

    #[test]
    fn echo_reply_from_a_real_host() {
        let reply = fixture("icmp-echo-reply.ipv4.hex");
        assert_eq!(parse_echo_reply(false, true, &reply), Some((0x04ca, 1)));
        assert_eq!(parse_echo_reply(false, false, &reply[20..]), Some((0x04ca, 1)));
        assert_eq!(
            parse_echo_reply(true, false, &reply[20..]),
            None,
            "not an ICMPv6 reply"
        );
        let request = fixture("icmp-echo-request.linux.hex");
        assert_eq!(
            parse_echo_reply(false, false, &request),
            None,
            "a request is no reply"
        );
        assert_eq!(parse_echo_reply(false, true, &reply[..24]), None);
    }

    #[test]
    fn arp_request_equals_nmaps_and_reads_a_real_reply() {
        let nmap = fixture("arp-request.nmap.hex");
        let gw = Mac([0x4c, 0x5e, 0x0c, 0xc8, 0x01, 0x01]);
        let req = arp_request(gw, Ipv4Addr::new(10, 200, 1, 1), Ipv4Addr::new(10, 200, 1, 10));
        assert_eq!(req[..], nmap[..]);
        let (ip, mac) = parse_arp_reply(&fixture("arp-reply.synology.hex")).unwrap();
        assert_eq!(ip, Ipv4Addr::new(10, 200, 1, 10));
        assert_eq!(mac.to_string(), "00:11:32:04:7d:e0");
        assert_eq!(parse_arp_reply(&nmap), None, "a request is no reply");
        assert_eq!(parse_arp_reply(&nmap[..30]), None);
    }
}
