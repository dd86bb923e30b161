//! The aggregator: [`Window`] holds one period's counters and sketches; [`Engine`] decodes
//! packets, feeds the live window, the flow table and the DNS reassembler, and closes
//! windows as `now` (packet time) passes period boundaries. Sans-IO: packets and `now` in,
//! summaries out.

use super::decode::{decode, Decoded, Malformed, IPPROTO_ICMP, IPPROTO_ICMPV6, L3};
use super::decode::{IPPROTO_TCP, IPPROTO_UDP};
use super::dns::{DnsStats, Transport};
use super::flows::{FlowLimits, FlowTable};
use super::sketch::{hll, Quantiles, TopN};
use super::tcp_dns::{StreamKey, TcpDnsStreams};
use crate::capture::{PacketTime, RawPacket};
use datasketches::hll::HllSketch;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

/// What the engine is asked to do.
#[derive(Debug, Clone)]
pub struct TrafficConfig {
    /// UDP/TCP ports treated as DNS (either side).
    pub dns_ports: Vec<u16>,
    /// Window length; `None` keeps one window for everything (pcap summaries).
    pub period: Option<Duration>,
    /// Closed windows kept.
    pub keep_closed: usize,
    pub flows: FlowLimits,
    pub max_tcp_dns_streams: usize,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        TrafficConfig {
            dns_ports: vec![53],
            period: Some(Duration::from_secs(60)),
            keep_closed: 5,
            flows: FlowLimits::default(),
            max_tcp_dns_streams: 65_536,
        }
    }
}

/// Packets per second, sampled per second of packet time (quiet seconds count as 0, up to
/// a minute of them per gap so that a clock jump cannot flood the sketch).
pub struct RateSampler {
    current: Option<u64>,
    count: u64,
    pub per_second: Quantiles,
}

impl RateSampler {
    const MAX_ZERO_FILL: u64 = 60;

    fn new() -> Self {
        RateSampler {
            current: None,
            count: 0,
            per_second: Quantiles::new(Quantiles::COARSE),
        }
    }

    fn tick(&mut self, now: PacketTime) {
        let sec = now.as_secs();
        match self.current {
            Some(cur) if sec == cur => self.count += 1,
            Some(cur) if sec > cur => {
                self.per_second.add(self.count);
                for _ in 0..(sec - cur - 1).min(Self::MAX_ZERO_FILL) {
                    self.per_second.add(0);
                }
                self.current = Some(sec);
                self.count = 1;
            }
            // Time went backwards (merged captures): count it in the current second.
            Some(_) => self.count += 1,
            None => {
                self.current = Some(sec);
                self.count = 1;
            }
        }
    }

    /// Flushes the second in progress (at the end of a window or file).
    fn flush(&mut self) {
        if self.current.take().is_some() {
            self.per_second.add(self.count);
            self.count = 0;
        }
    }
}

/// One period's aggregates.
pub struct Window {
    pub start: Option<PacketTime>,
    pub end: Option<PacketTime>,
    pub packets: u64,
    pub bytes_wire: u64,
    pub bytes_captured: u64,
    pub snaplen_truncated: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub non_ip: u64,
    pub malformed_ip: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub other: u64,
    pub l4_tcp: u64,
    pub l4_udp: u64,
    pub l4_other: u64,
    pub fragments: u64,
    pub non_first_fragments: u64,
    pub vlan_tagged: u64,
    pub tcp_syn: u64,
    pub tcp_synack: u64,
    pub tcp_rst: u64,
    pub malformed: [u64; Malformed::ALL.len()],
    pub src_ips: HllSketch,
    pub dst_ips: HllSketch,
    pub top_src_packets: TopN<IpAddr>,
    pub top_src_bytes: TopN<IpAddr>,
    pub top_dst_packets: TopN<IpAddr>,
    pub top_dst_bytes: TopN<IpAddr>,
    pub top_dport_packets: TopN<u16>,
    pub top_dport_bytes: TopN<u16>,
    pub sizes_wire: Quantiles,
    pub rate: RateSampler,
    pub dns: DnsStats,
    /// Flow-table figures at the time the window closed (or now, for the live one).
    pub flows_distinct: u64,
    pub flows_created: u64,
    pub flows_restarted: u64,
    pub flows_expired: u64,
    pub flows_evicted: u64,
    pub flows_active: u64,
    pub flows_distinct_exact: bool,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            start: None,
            end: None,
            packets: 0,
            bytes_wire: 0,
            bytes_captured: 0,
            snaplen_truncated: 0,
            ipv4: 0,
            ipv6: 0,
            non_ip: 0,
            malformed_ip: 0,
            tcp: 0,
            udp: 0,
            icmpv4: 0,
            icmpv6: 0,
            other: 0,
            l4_tcp: 0,
            l4_udp: 0,
            l4_other: 0,
            fragments: 0,
            non_first_fragments: 0,
            vlan_tagged: 0,
            tcp_syn: 0,
            tcp_synack: 0,
            tcp_rst: 0,
            malformed: [0; Malformed::ALL.len()],
            src_ips: hll(),
            dst_ips: hll(),
            top_src_packets: TopN::new(TopN::<IpAddr>::LARGE),
            top_src_bytes: TopN::new(TopN::<IpAddr>::LARGE),
            top_dst_packets: TopN::new(TopN::<IpAddr>::LARGE),
            top_dst_bytes: TopN::new(TopN::<IpAddr>::LARGE),
            top_dport_packets: TopN::new(TopN::<u16>::SMALL),
            top_dport_bytes: TopN::new(TopN::<u16>::SMALL),
            sizes_wire: Quantiles::new(Quantiles::FINE),
            rate: RateSampler::new(),
            dns: DnsStats::default(),
            flows_distinct: 0,
            flows_created: 0,
            flows_restarted: 0,
            flows_expired: 0,
            flows_evicted: 0,
            flows_active: 0,
            flows_distinct_exact: true,
        }
    }
}

impl Window {
    /// Packet-level counters (everything except flows and DNS).
    fn count(&mut self, pkt: &RawPacket<'_>, d: &Decoded<'_>) {
        let wire = u64::from(pkt.wire_len);
        self.start = Some(self.start.map_or(pkt.ts, |s| s.min(pkt.ts)));
        self.end = Some(self.end.map_or(pkt.ts, |e| e.max(pkt.ts)));
        self.packets += 1;
        self.bytes_wire += wire;
        self.bytes_captured += pkt.data.len() as u64;
        if (pkt.data.len() as u64) < wire {
            self.snaplen_truncated += 1;
        }
        self.sizes_wire.add(wire);
        self.rate.tick(pkt.ts);
        if d.vlan_tags > 0 {
            self.vlan_tagged += 1;
        }
        if let Some(m) = d.malformed {
            if let Some(i) = Malformed::ALL.iter().position(|x| *x == m) {
                self.malformed[i] += 1;
            }
        }
        match d.l3 {
            L3::NonIp => {
                self.non_ip += 1;
                return;
            }
            L3::MalformedIp => {
                self.malformed_ip += 1;
                return;
            }
            L3::Ipv4 => self.ipv4 += 1,
            L3::Ipv6 => self.ipv6 += 1,
        }
        match d.proto {
            IPPROTO_TCP => self.tcp += 1,
            IPPROTO_UDP => self.udp += 1,
            IPPROTO_ICMP => self.icmpv4 += 1,
            IPPROTO_ICMPV6 => self.icmpv6 += 1,
            _ => self.other += 1,
        }
        if d.fragment {
            self.fragments += 1;
        }
        if !d.first_fragment {
            self.non_first_fragments += 1;
        }
        if d.l4_header {
            if d.proto == IPPROTO_TCP {
                self.l4_tcp += 1;
                let f = d.tcp_flags;
                if f & 0x02 != 0 {
                    self.tcp_syn += 1;
                    if f & 0x10 != 0 {
                        self.tcp_synack += 1;
                    }
                }
                if f & 0x04 != 0 {
                    self.tcp_rst += 1;
                }
            } else {
                self.l4_udp += 1;
            }
            self.top_dport_packets.add(d.dport, 1);
            self.top_dport_bytes.add(d.dport, wire);
        } else {
            self.l4_other += 1;
        }
        self.src_ips.update(d.src);
        self.dst_ips.update(d.dst);
        self.top_src_packets.add(d.src, 1);
        self.top_src_bytes.add(d.src, wire);
        self.top_dst_packets.add(d.dst, 1);
        self.top_dst_bytes.add(d.dst, wire);
    }

    pub fn icmp(&self) -> u64 {
        self.icmpv4 + self.icmpv6
    }

    fn snapshot_flows(&mut self, t: &FlowTable, base: &FlowBase) {
        self.flows_distinct = t.distinct - base.distinct;
        self.flows_created = t.created - base.created;
        self.flows_restarted = t.restarted - base.restarted;
        self.flows_expired = t.expired - base.expired;
        self.flows_evicted = t.evicted - base.evicted;
        self.flows_active = t.active() as u64;
        self.flows_distinct_exact = t.distinct_exact;
    }
}

/// Flow-table counters when the live window opened (windows report differences).
#[derive(Default, Clone, Copy)]
struct FlowBase {
    distinct: u64,
    created: u64,
    restarted: u64,
    expired: u64,
    evicted: u64,
}

/// Decodes packets and keeps the live window, the closed ones, the flow table and the TCP
/// DNS streams.
pub struct Engine {
    cfg: TrafficConfig,
    live: Window,
    live_start: Option<PacketTime>,
    closed: VecDeque<Window>,
    flows: FlowTable,
    flow_base: FlowBase,
    tcp_dns: TcpDnsStreams,
}

impl Engine {
    pub fn new(cfg: TrafficConfig) -> Self {
        let flows = FlowTable::new(cfg.flows);
        let tcp_dns = TcpDnsStreams::new(cfg.max_tcp_dns_streams, Duration::from_secs(300));
        Engine {
            cfg,
            live: Window::default(),
            live_start: None,
            closed: VecDeque::new(),
            flows,
            flow_base: FlowBase::default(),
            tcp_dns,
        }
    }

    fn is_dns_port(&self, port: u16) -> bool {
        self.cfg.dns_ports.contains(&port)
    }

    /// Accounts one packet; its timestamp is `now`.
    pub fn ingest(&mut self, pkt: &RawPacket<'_>) {
        let now = pkt.ts;
        self.advance(now);
        let d = decode(pkt.link_type, pkt.data);
        self.live.count(pkt, &d);
        if !d.is_ip() {
            return;
        }
        let (sport, dport) = if d.l4_header { (d.sport, d.dport) } else { (0, 0) };
        self.flows.ingest(
            (d.src, sport),
            (d.dst, dport),
            d.proto,
            pkt.wire_len,
            if d.proto == IPPROTO_TCP { d.tcp_flags } else { 0 },
            now,
        );
        if d.l4_header && (self.is_dns_port(d.sport) || self.is_dns_port(d.dport)) {
            let dns = &mut self.live.dns;
            if d.proto == IPPROTO_UDP {
                dns.ingest(
                    d.l4_payload,
                    Transport::Udp {
                        incomplete: d.udp_incomplete,
                    },
                );
            } else {
                let key = StreamKey {
                    src: d.src,
                    sport: d.sport,
                    dst: d.dst,
                    dport: d.dport,
                };
                self.tcp_dns.ingest(
                    key,
                    d.tcp_seq,
                    d.tcp_flags & 0x02 != 0,
                    d.l4_payload,
                    now,
                    &mut |m: &[u8]| dns.ingest(m, Transport::Tcp),
                );
            }
        }
    }

    /// Closes the live window when `now` has passed its end.
    pub fn advance(&mut self, now: PacketTime) {
        let Some(period) = self.cfg.period else {
            return;
        };
        let period = period.as_nanos() as u64;
        let start = *self
            .live_start
            .get_or_insert(PacketTime(now.0 - now.0 % period.max(1)));
        if now.0 >= start.0.saturating_add(period) {
            self.close_live();
            self.live_start = Some(PacketTime(now.0 - now.0 % period.max(1)));
        }
    }

    fn close_live(&mut self) {
        self.flows.expire(self.live.end.unwrap_or_default());
        let mut w = std::mem::take(&mut self.live);
        w.rate.flush();
        w.snapshot_flows(&self.flows, &self.flow_base);
        self.flow_base = FlowBase {
            distinct: self.flows.distinct,
            created: self.flows.created,
            restarted: self.flows.restarted,
            expired: self.flows.expired,
            evicted: self.flows.evicted,
        };
        self.closed.push_back(w);
        while self.closed.len() > self.cfg.keep_closed {
            self.closed.pop_front();
        }
    }

    /// Ends the input: closes the second in progress and returns the live window with the
    /// flow figures filled in (for a pcap summary, the whole file).
    pub fn finish(mut self) -> Window {
        self.live.rate.flush();
        let mut w = self.live;
        w.snapshot_flows(&self.flows, &self.flow_base);
        w
    }

    pub fn closed(&self) -> impl Iterator<Item = &Window> {
        self.closed.iter()
    }

    /// The window in progress.
    pub fn live(&self) -> &Window {
        &self.live
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;

    fn udp_packet(sport: u16, dport: u16) -> Vec<u8> {
        let mut v = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&[0, 8, 0, 0]);
        v
    }

    #[test]
    fn windows_close_by_packet_time_not_by_clock() {
        let mut e = Engine::new(TrafficConfig {
            period: Some(Duration::from_secs(60)),
            ..Default::default()
        });
        let bytes = udp_packet(1000, 80);
        for s in [0u64, 10, 59, 61, 200] {
            e.ingest(&RawPacket {
                ts: PacketTime::from_secs(1_700_000_000 - 1_700_000_000 % 60 + s),
                wire_len: 60,
                data: &bytes,
                link_type: LinkType::RAW,
            });
        }
        let counts: Vec<u64> = e.closed().map(|w| w.packets).collect();
        assert_eq!(counts, vec![3, 1]);
        assert_eq!(e.closed().next().map(|w| w.flows_distinct), Some(1));
        let live = e.finish();
        assert_eq!(live.packets, 1);
    }

    #[test]
    fn one_window_for_a_file() {
        let mut e = Engine::new(TrafficConfig {
            period: None,
            ..Default::default()
        });
        let bytes = udp_packet(5353, 53);
        for s in 0..5u64 {
            e.ingest(&RawPacket {
                ts: PacketTime::from_secs(s * 1000),
                wire_len: 60 + s as u32,
                data: &bytes,
                link_type: LinkType::RAW,
            });
        }
        let w = e.finish();
        assert_eq!((w.packets, w.udp, w.l4_udp, w.flows_distinct), (5, 5, 5, 1));
        assert_eq!(w.sizes_wire.quantile(0.5), Some(62));
        assert_eq!(w.top_dport_packets.top(1), vec![(53, 5)]);
        assert_eq!(w.dns.too_short, 5);
    }
}
