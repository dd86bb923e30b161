//! Capture filters (libpcap/tcpdump syntax) applied in user space to packets that did not
//! come through a live handle: `gatewatch pcap -b FILTER`. Each link type met gets its
//! own program, compiled by libpcap for that link type on first use.
//!
//! Owns compiling and running the filter and counting what it kept. Must not read files
//! (the caller feeds [`RawPacket`]s) nor filter live captures (the kernel does that,
//! see `live`).

use super::live::{dlt_from_link_type, LiveError};
use super::{LinkType, RawPacket};

/// A filter expression and its compiled programs, one per link type.
pub struct BpfFilter {
    expression: String,
    programs: Vec<(LinkType, Result<pcap::BpfProgram, String>)>,
    /// Packets the filter kept.
    pub matched: u64,
    /// Packets it dropped, including those of link types it cannot be compiled for.
    pub rejected: u64,
}

impl BpfFilter {
    /// Checks the expression by compiling it for Ethernet, the common case.
    pub fn new(expression: &str) -> Result<BpfFilter, LiveError> {
        let mut f = BpfFilter {
            expression: expression.to_string(),
            programs: Vec::new(),
            matched: 0,
            rejected: 0,
        };
        if let Err(detail) = f.program(LinkType::ETHERNET) {
            return Err(LiveError::BadFilter {
                filter: expression.to_string(),
                detail: detail.clone(),
            });
        }
        Ok(f)
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    fn program(&mut self, link: LinkType) -> &Result<pcap::BpfProgram, String> {
        let i = match self.programs.iter().position(|(l, _)| *l == link) {
            Some(i) => i,
            None => {
                let compiled = compile(&self.expression, link);
                self.programs.push((link, compiled));
                self.programs.len() - 1
            }
        };
        &self.programs[i].1
    }

    /// True when the packet passes. Packets of a link type the expression cannot be
    /// compiled for do not pass (see [`BpfFilter::problems`]).
    pub fn matches(&mut self, pkt: &RawPacket<'_>) -> bool {
        let keep = match self.program(pkt.link_type) {
            Ok(prog) => run(prog, pkt),
            Err(_) => false,
        };
        if keep {
            self.matched += 1;
        } else {
            self.rejected += 1;
        }
        keep
    }

    /// One line per link type the expression could not be compiled for.
    pub fn problems(&self) -> Vec<String> {
        self.programs
            .iter()
            .filter_map(|(l, r)| r.as_ref().err().map(|e| (l, e)))
            .map(|(l, e)| {
                format!(
                    "filter {:?} does not apply to link type {}: {e}; those packets were skipped",
                    self.expression, l.0
                )
            })
            .collect()
    }
}

fn compile(expression: &str, link: LinkType) -> Result<pcap::BpfProgram, String> {
    let dead = pcap::Capture::dead(pcap::Linktype(dlt_from_link_type(link))).map_err(|e| e.to_string())?;
    dead.compile(expression, true).map_err(|e| match e {
        pcap::Error::PcapError(s) => s,
        other => other.to_string(),
    })
}

/// The header libpcap's filter machine reads: `len` is the wire length, so `greater`/`less`
/// work on snaplen-cut records too (the crate's own `BpfProgram::filter` passes the
/// captured length as both).
#[repr(C)]
struct PcapPkthdr {
    ts: libc::timeval,
    caplen: u32,
    len: u32,
}

extern "C" {
    fn pcap_offline_filter(
        prog: *const std::ffi::c_void,
        header: *const PcapPkthdr,
        data: *const u8,
    ) -> libc::c_int;
}

fn run(prog: &pcap::BpfProgram, pkt: &RawPacket<'_>) -> bool {
    let header = PcapPkthdr {
        ts: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        caplen: pkt.data.len() as u32,
        len: pkt.wire_len.max(pkt.data.len() as u32),
    };
    // SAFETY: `BpfProgram` is `#[repr(transparent)]` over libpcap's `struct bpf_program`;
    // header and data are valid for the call and caplen is the data's length.
    unsafe {
        pcap_offline_filter(
            (prog as *const pcap::BpfProgram).cast(),
            &header,
            pkt.data.as_ptr(),
        ) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::PacketTime;

    /// An Ethernet + IPv4 + UDP frame from 10.0.0.1:1000 to 10.0.0.2:`dport`.
    fn udp_frame(dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&1000u16.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }

    fn packet(data: &[u8], link_type: LinkType, wire_len: u32) -> RawPacket<'_> {
        RawPacket {
            ts: PacketTime(0),
            wire_len,
            data,
            link_type,
        }
    }

    #[test]
    fn filters_by_port_per_link_type() {
        let mut f = BpfFilter::new("udp dst port 53").unwrap();
        let dns = udp_frame(53);
        let other = udp_frame(54);
        assert!(f.matches(&packet(&dns, LinkType::ETHERNET, 42)));
        assert!(!f.matches(&packet(&other, LinkType::ETHERNET, 42)));
        // The same IP packet without its Ethernet header, as raw IP.
        assert!(f.matches(&packet(&dns[14..], LinkType::RAW, 28)));
        assert_eq!((f.matched, f.rejected), (2, 1));
        assert!(f.problems().is_empty());
    }

    #[test]
    fn length_tests_use_the_wire_length() {
        let mut f = BpfFilter::new("greater 1000").unwrap();
        let frame = udp_frame(53);
        assert!(f.matches(&packet(&frame, LinkType::ETHERNET, 1500)));
        assert!(!f.matches(&packet(&frame, LinkType::ETHERNET, 42)));
    }

    #[test]
    fn bad_expressions_and_link_types_are_reported() {
        let e = BpfFilter::new("udp port banana").err().expect("must not compile");
        assert!(e.to_string().contains("banana"), "{e}");
        let mut f = BpfFilter::new("ether host 00:11:22:33:44:55").unwrap();
        let frame = udp_frame(53);
        assert!(!f.matches(&packet(&frame[14..], LinkType::RAW, 28)));
        assert_eq!(f.problems().len(), 1, "{:?}", f.problems());
    }
}
