//! The aggregator: [`Window`] holds one period's counters and sketches; [`Engine`] decodes
//! packets, feeds the live window, the flow table and the DNS reassembler, and closes
//! windows as `now` (packet time) passes period boundaries. Sans-IO: packets and `now` in,
//! summaries out.
//!
//! Plain counters (packets, bytes, protocols, direction, top IPs/ports, geo, DHCP) are exact
//! for every packet. Deep analysis (flows, DNS) is sampled by flow above
//! [`TrafficConfig::deep_sample_above_pps`]; see [`DeepSampler`]. [`Window::merge_from`]
//! combines windows (a range of periods, or several interfaces' engines).

use super::decode::{decode, Decoded, Malformed, IPPROTO_ICMP, IPPROTO_ICMPV6, L3};
use super::decode::{IPPROTO_TCP, IPPROTO_UDP};
use super::dhcp::DhcpStats;
use super::dhcp_clients::DhcpClients;
use super::direction::{DirectionCounts, HostSpec};
use super::dns::{DnsStats, Transport};
use super::dns_xact::{PendingQueries, XactStats};
use super::flows::{FlowKey, FlowLimits, FlowTable};
use super::names::NameTable;
use super::sketch::{hll, hll_merge, PendingSizes, Quantiles, TopN};
use super::tcp_dns::{StreamKey, TcpDnsStreams};
use crate::capture::{PacketTime, RawPacket};
use crate::geo::GeoDb;
use datasketches::hll::HllSketch;
use ipnet::IpNet;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
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
    /// The local networks ("us"): direction in/out/internal/external and DNS transaction
    /// sides are relative to them. Empty: no direction is known.
    pub host_spec: Vec<IpNet>,
    /// Geo/ASN lookups for the top ASN/country/city lists; `None` leaves them empty.
    pub geo: Option<Arc<GeoDb>>,
    /// Above this packet rate (per second of packet time) flows and DNS are sampled by flow.
    pub deep_sample_above_pps: Option<u64>,
    /// A DNS query without a response after this long counts as a timeout.
    pub dns_timeout: Duration,
    /// DNS queries waiting for a response, at most.
    pub max_pending_dns: usize,
    /// Entries of the IP → name table built from DNS answers.
    pub max_names: usize,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        TrafficConfig {
            dns_ports: vec![53],
            period: Some(Duration::from_secs(60)),
            keep_closed: 5,
            flows: FlowLimits::default(),
            max_tcp_dns_streams: 65_536,
            host_spec: Vec::new(),
            geo: None,
            deep_sample_above_pps: None,
            dns_timeout: Duration::from_secs(5),
            max_pending_dns: 65_536,
            max_names: 65_536,
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

    /// Merges the finished seconds of `o` (a second still in progress there is not seen).
    fn merge_from(&mut self, o: &RateSampler) {
        self.per_second.merge_from(&o.per_second);
    }
}

/// Heavy hitters by ASN, country and city of the remote endpoints (labels from
/// [`GeoDb`]); exact counters of lookups.
pub struct GeoTops {
    pub asn_packets: TopN<Arc<str>>,
    pub asn_bytes: TopN<Arc<str>>,
    pub country_packets: TopN<Arc<str>>,
    pub country_bytes: TopN<Arc<str>>,
    pub city_packets: TopN<Arc<str>>,
    pub city_bytes: TopN<Arc<str>>,
    /// Endpoints looked up, and those the databases did not know (no country).
    pub lookups: u64,
    pub unknown: u64,
}

impl Default for GeoTops {
    fn default() -> Self {
        GeoTops {
            asn_packets: TopN::new(TopN::<Arc<str>>::SMALL),
            asn_bytes: TopN::new(TopN::<Arc<str>>::SMALL),
            country_packets: TopN::new(TopN::<Arc<str>>::SMALL),
            country_bytes: TopN::new(TopN::<Arc<str>>::SMALL),
            city_packets: TopN::new(TopN::<Arc<str>>::SMALL),
            city_bytes: TopN::new(TopN::<Arc<str>>::SMALL),
            lookups: 0,
            unknown: 0,
        }
    }
}

impl GeoTops {
    /// Counts `packets` and `bytes` for one endpoint address when it is remote: with a host
    /// spec, outside it; without one, every address (private ones count at home).
    fn count(&mut self, geo: &GeoDb, spec: &HostSpec, ip: IpAddr, packets: u64, bytes: u64) {
        if spec.contains(&ip) {
            return;
        }
        self.lookups += packets;
        let g = geo.lookup(ip);
        if g.country_iso.is_none() {
            self.unknown += packets;
        }
        for (key, p, b) in [
            (&g.asn_key, &mut self.asn_packets, &mut self.asn_bytes),
            (&g.country_iso, &mut self.country_packets, &mut self.country_bytes),
            (&g.city_key, &mut self.city_packets, &mut self.city_bytes),
        ] {
            if let Some(k) = key {
                p.add(k.clone(), packets);
                b.add(k.clone(), bytes);
            }
        }
    }

    fn merge_from(&mut self, o: &GeoTops) {
        self.asn_packets.merge_from(&o.asn_packets);
        self.asn_bytes.merge_from(&o.asn_bytes);
        self.country_packets.merge_from(&o.country_packets);
        self.country_bytes.merge_from(&o.country_bytes);
        self.city_packets.merge_from(&o.city_packets);
        self.city_bytes.merge_from(&o.city_bytes);
        self.lookups += o.lookups;
        self.unknown += o.unknown;
    }
}

/// Exact per-key packet and byte counts since the last flush. The sketches then get one
/// update per key and batch instead of one per packet: the HLLs see each address once, the
/// frequent-items sketches the summed counts (the same result while they are exact, the
/// same error bounds when they are not), geo lookups happen once per address. Bounded:
/// flushed when a map holds [`PendingKeys::MAX_KEYS`] keys, and before a window is read.
#[derive(Default)]
struct PendingKeys {
    src: HashMap<IpAddr, (u64, u64), foldhash::fast::RandomState>,
    dst: HashMap<IpAddr, (u64, u64), foldhash::fast::RandomState>,
    dport: HashMap<u16, (u64, u64), foldhash::fast::RandomState>,
}

impl PendingKeys {
    const MAX_KEYS: usize = 2048;

    fn is_full(&self) -> bool {
        self.src.len() >= Self::MAX_KEYS
            || self.dst.len() >= Self::MAX_KEYS
            || self.dport.len() >= Self::MAX_KEYS
    }
}

/// Deep-analysis sampling (pktvisor's max-deep-sample). When the previous second of packet
/// time carried more than the threshold, the current second keeps only flows whose key
/// hash falls below `threshold / rate` of the hash space.
///
/// By flow hash rather than every k-th packet: a kept flow keeps all its packets, so its
/// counters, TCP state and DNS query↔response pairs stay whole (both directions share the
/// canonical key), and since a lower keep fraction keeps a subset of the flows a higher
/// one keeps, a flow sampled out at a peak was never half-counted before it. The hash is
/// seeded with a constant so the same capture always gives the same sample.
pub struct DeepSampler {
    threshold: Option<u64>,
    hasher: foldhash::fast::FixedState,
    second: Option<u64>,
    count: u64,
    /// Kept fraction in 1/1024ths (1024: everything).
    keep: u64,
}

impl DeepSampler {
    const SCALE: u64 = 1024;

    fn new(threshold: Option<u64>) -> Self {
        DeepSampler {
            threshold,
            hasher: foldhash::fast::FixedState::with_seed(0x6761_7465_7761_7463),
            second: None,
            count: 0,
            keep: Self::SCALE,
        }
    }

    /// The fraction kept now (1.0 without sampling).
    pub fn keep_fraction(&self) -> f64 {
        self.keep as f64 / Self::SCALE as f64
    }

    /// Accounts a packet of time `now` and says whether its flow is analysed.
    fn keep(&mut self, now: PacketTime, key: &FlowKey) -> bool {
        let Some(threshold) = self.threshold else {
            return true;
        };
        let sec = now.as_secs();
        match self.second {
            Some(s) if s == sec => self.count += 1,
            Some(s) if sec < s => self.count += 1,
            Some(s) => {
                // One quiet second in between means the rate is back under any threshold.
                self.keep = if sec == s + 1 && self.count > threshold {
                    (threshold.saturating_mul(Self::SCALE) / self.count).max(1)
                } else {
                    Self::SCALE
                };
                self.second = Some(sec);
                self.count = 1;
            }
            None => {
                self.second = Some(sec);
                self.count = 1;
            }
        }
        self.keep >= Self::SCALE || (self.hasher.hash_one(key) >> 54) < self.keep
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
    /// Packets per direction relative to the host spec (`direction_known` when there is one).
    pub direction: DirectionCounts,
    pub direction_known: bool,
    pub geo: GeoTops,
    pub dhcp: DhcpStats,
    pub dns_xact: XactStats,
    /// Names (from DNS answers) of the addresses in the top lists, at the window's end.
    pub ip_names: Vec<(IpAddr, Arc<str>)>,
    /// IP packets given to flow and DNS analysis, and those sampled out.
    pub deep_packets: u64,
    pub deep_skipped: u64,
    /// The smallest kept fraction during the window (1.0: no sampling).
    pub deep_keep_min: f64,
    pending: PendingKeys,
    /// Sizes not yet in `sizes_wire` (see [`Window::settle`]).
    pending_sizes: PendingSizes,
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
            direction: DirectionCounts::default(),
            direction_known: false,
            geo: GeoTops::default(),
            dhcp: DhcpStats::default(),
            dns_xact: XactStats::default(),
            ip_names: Vec::new(),
            deep_packets: 0,
            deep_skipped: 0,
            deep_keep_min: 1.0,
            pending: PendingKeys::default(),
            pending_sizes: PendingSizes::default(),
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
        self.pending_sizes.add(&mut self.sizes_wire, wire);
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
            let e = self.pending.dport.entry(d.dport).or_default();
            e.0 += 1;
            e.1 += wire;
        } else {
            self.l4_other += 1;
        }
        let e = self.pending.src.entry(d.src).or_default();
        e.0 += 1;
        e.1 += wire;
        let e = self.pending.dst.entry(d.dst).or_default();
        e.0 += 1;
        e.1 += wire;
    }

    /// Feeds the pending per-key counts to the sketches (and the geo tops).
    fn settle(&mut self, geo: Option<&GeoDb>, spec: &HostSpec) {
        self.pending_sizes.flush(&mut self.sizes_wire);
        for (ip, (p, b)) in self.pending.src.drain() {
            self.src_ips.update(ip);
            self.top_src_packets.add(ip, p);
            self.top_src_bytes.add(ip, b);
            if let Some(g) = geo {
                self.geo.count(g, spec, ip, p, b);
            }
        }
        for (ip, (p, b)) in self.pending.dst.drain() {
            self.dst_ips.update(ip);
            self.top_dst_packets.add(ip, p);
            self.top_dst_bytes.add(ip, b);
            if let Some(g) = geo {
                self.geo.count(g, spec, ip, p, b);
            }
        }
        self.dns.settle();
        for (port, (p, b)) in self.pending.dport.drain() {
            self.top_dport_packets.add(port, p);
            self.top_dport_bytes.add(port, b);
        }
    }

    pub fn icmp(&self) -> u64 {
        self.icmpv4 + self.icmpv6
    }

    /// Adds `o` into this window: exact counters add, HLLs unite, KLL and frequent-items
    /// sketches merge, the time range widens. Flow figures add up too, so `flows_distinct`
    /// of merged windows counts a 5-tuple once per window it was seen in.
    pub fn merge_from(&mut self, o: &Window) {
        self.start = match (self.start, o.start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.end = self.end.max(o.end);
        self.packets += o.packets;
        self.bytes_wire += o.bytes_wire;
        self.bytes_captured += o.bytes_captured;
        self.snaplen_truncated += o.snaplen_truncated;
        self.ipv4 += o.ipv4;
        self.ipv6 += o.ipv6;
        self.non_ip += o.non_ip;
        self.malformed_ip += o.malformed_ip;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.icmpv4 += o.icmpv4;
        self.icmpv6 += o.icmpv6;
        self.other += o.other;
        self.l4_tcp += o.l4_tcp;
        self.l4_udp += o.l4_udp;
        self.l4_other += o.l4_other;
        self.fragments += o.fragments;
        self.non_first_fragments += o.non_first_fragments;
        self.vlan_tagged += o.vlan_tagged;
        self.tcp_syn += o.tcp_syn;
        self.tcp_synack += o.tcp_synack;
        self.tcp_rst += o.tcp_rst;
        for (a, b) in self.malformed.iter_mut().zip(o.malformed.iter()) {
            *a += b;
        }
        hll_merge(&mut self.src_ips, &o.src_ips);
        hll_merge(&mut self.dst_ips, &o.dst_ips);
        self.top_src_packets.merge_from(&o.top_src_packets);
        self.top_src_bytes.merge_from(&o.top_src_bytes);
        self.top_dst_packets.merge_from(&o.top_dst_packets);
        self.top_dst_bytes.merge_from(&o.top_dst_bytes);
        self.top_dport_packets.merge_from(&o.top_dport_packets);
        self.top_dport_bytes.merge_from(&o.top_dport_bytes);
        self.sizes_wire.merge_from(&o.sizes_wire);
        self.rate.merge_from(&o.rate);
        self.dns.merge_from(&o.dns);
        self.direction.merge_from(&o.direction);
        self.direction_known |= o.direction_known;
        self.geo.merge_from(&o.geo);
        self.dhcp.merge_from(&o.dhcp);
        self.dns_xact.merge_from(&o.dns_xact);
        for (ip, name) in &o.ip_names {
            if !self.ip_names.iter().any(|(i, _)| i == ip) {
                self.ip_names.push((*ip, name.clone()));
            }
        }
        self.deep_packets += o.deep_packets;
        self.deep_skipped += o.deep_skipped;
        self.deep_keep_min = self.deep_keep_min.min(o.deep_keep_min);
        self.flows_distinct += o.flows_distinct;
        self.flows_created += o.flows_created;
        self.flows_restarted += o.flows_restarted;
        self.flows_expired += o.flows_expired;
        self.flows_evicted += o.flows_evicted;
        self.flows_active = self.flows_active.max(o.flows_active);
        self.flows_distinct_exact &= o.flows_distinct_exact;
    }

    /// One window for a range of windows (periods, or the engines of several interfaces).
    pub fn merged<'a>(windows: impl IntoIterator<Item = &'a Window>) -> Window {
        let mut out = Window::default();
        for w in windows {
            out.merge_from(w);
        }
        out
    }

    /// Labels the addresses of the top lists with names from DNS answers.
    fn label_top_ips(&mut self, names: &NameTable) {
        let now = self.end.unwrap_or_default();
        let mut ips: Vec<IpAddr> = Vec::new();
        for t in [
            &self.top_src_packets,
            &self.top_src_bytes,
            &self.top_dst_packets,
            &self.top_dst_bytes,
        ] {
            for (ip, _) in t.top(10) {
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
        }
        self.ip_names = ips
            .into_iter()
            .filter_map(|ip| names.lookup(&ip, now).map(|n| (ip, n)))
            .collect();
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

/// DHCP clients remembered (a home or office LAN has far fewer).
const DHCP_CLIENTS: usize = 4096;

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
    host_spec: HostSpec,
    pending_dns: PendingQueries,
    names: NameTable,
    dhcp_clients: DhcpClients,
    sampler: DeepSampler,
}

/// Counts one DNS message and feeds the transaction matcher and the name table.
#[allow(clippy::too_many_arguments)]
fn dns_message(
    w: &mut Window,
    pending: &mut PendingQueries,
    names: &mut NameTable,
    spec: &HostSpec,
    msg: &[u8],
    transport: Transport,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    now: PacketTime,
) {
    let Some(h) = w.dns.ingest(msg, transport) else {
        return;
    };
    let qname = w.dns.last_qname();
    pending.observe(&mut w.dns_xact, spec, h.id, h.response, src, dst, qname, now);
    if h.response && h.rcode == 0 && h.ancount > 0 {
        if let Some(q) = qname {
            names.learn(msg, q, now);
        }
    }
}

impl Engine {
    pub fn new(cfg: TrafficConfig) -> Self {
        let flows = FlowTable::new(cfg.flows);
        // DNS over TCP connections are short (resolvers close idle ones within tens of
        // seconds, unbound after 30 s); a minute of silence ends a stream. Bytes that come
        // later start a new one mid-connection, as for a stream first seen mid-way.
        let tcp_dns = TcpDnsStreams::new(cfg.max_tcp_dns_streams, Duration::from_secs(60));
        let host_spec = HostSpec::new(cfg.host_spec.clone());
        let pending_dns = PendingQueries::new(cfg.max_pending_dns, cfg.dns_timeout);
        let names = NameTable::new(cfg.max_names);
        let sampler = DeepSampler::new(cfg.deep_sample_above_pps);
        let mut e = Engine {
            cfg,
            live: Window::default(),
            live_start: None,
            closed: VecDeque::new(),
            flows,
            flow_base: FlowBase::default(),
            tcp_dns,
            host_spec,
            pending_dns,
            names,
            dhcp_clients: DhcpClients::new(DHCP_CLIENTS),
            sampler,
        };
        e.live = e.new_window();
        e
    }

    fn new_window(&self) -> Window {
        Window {
            direction_known: !self.host_spec.is_empty(),
            ..Window::default()
        }
    }

    /// The IP → name table learnt from DNS answers.
    pub fn names(&self) -> &NameTable {
        &self.names
    }

    /// What DHCPv4 clients said about themselves (host name, vendor class, address).
    pub fn dhcp_clients(&self) -> &DhcpClients {
        &self.dhcp_clients
    }

    /// The live (open) window, its sketches up to date.
    pub fn live(&mut self) -> &Window {
        self.settle_live();
        &self.live
    }

    fn settle_live(&mut self) {
        self.live.settle(self.cfg.geo.as_deref(), &self.host_spec);
    }

    /// The kept fraction of deep analysis right now (1.0 without sampling).
    pub fn deep_keep_fraction(&self) -> f64 {
        self.sampler.keep_fraction()
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
        let wire = u64::from(pkt.wire_len);
        if let Some(dir) = self.host_spec.classify(&d.src, &d.dst) {
            self.live.direction.add(dir, wire);
        }
        if self.live.pending.is_full() || self.live.dns.is_full() {
            self.settle_live();
        }
        let (sport, dport) = if d.l4_header { (d.sport, d.dport) } else { (0, 0) };
        if d.l4_header && d.proto == IPPROTO_UDP && DhcpStats::is_dhcp_port(sport, dport) {
            self.live.dhcp.ingest(d.src, sport, dport, d.l4_payload);
            if sport == 67 || sport == 68 {
                self.dhcp_clients.learn(d.l4_payload, now);
            }
        }
        if self.cfg.deep_sample_above_pps.is_some() {
            let (key, _) = FlowKey::new((d.src, sport), (d.dst, dport), d.proto);
            let kept = self.sampler.keep(now, &key);
            self.live.deep_keep_min = self.live.deep_keep_min.min(self.sampler.keep_fraction());
            if !kept {
                self.live.deep_skipped += 1;
                return;
            }
        }
        self.live.deep_packets += 1;
        self.flows.ingest(
            (d.src, sport),
            (d.dst, dport),
            d.proto,
            pkt.wire_len,
            if d.proto == IPPROTO_TCP { d.tcp_flags } else { 0 },
            now,
        );
        if d.l4_header && (self.is_dns_port(d.sport) || self.is_dns_port(d.dport)) {
            let (w, pending, names, spec) = (
                &mut self.live,
                &mut self.pending_dns,
                &mut self.names,
                &self.host_spec,
            );
            let (src, dst) = ((d.src, d.sport), (d.dst, d.dport));
            if d.proto == IPPROTO_UDP {
                let transport = Transport::Udp {
                    incomplete: d.udp_incomplete,
                };
                dns_message(w, pending, names, spec, d.l4_payload, transport, src, dst, now);
            } else {
                self.tcp_dns.ingest(
                    StreamKey::new(src, dst),
                    d.tcp_seq,
                    d.tcp_flags & 0x02 != 0,
                    d.l4_payload,
                    now,
                    &mut |m: &[u8]| dns_message(w, pending, names, spec, m, Transport::Tcp, src, dst, now),
                );
            }
        }
    }

    /// Closes the live window when `now` has passed its end.
    pub fn advance(&mut self, now: PacketTime) {
        // Unanswered DNS queries time out by packet time even when no DNS traffic follows.
        self.pending_dns.expire(&mut self.live.dns_xact, now);
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
        self.settle_live();
        let fresh = self.new_window();
        let mut w = std::mem::replace(&mut self.live, fresh);
        w.rate.flush();
        w.snapshot_flows(&self.flows, &self.flow_base);
        w.label_top_ips(&self.names);
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
        self.settle_live();
        let mut w = self.live;
        w.snapshot_flows(&self.flows, &self.flow_base);
        w.label_top_ips(&self.names);
        w
    }

    pub fn closed(&self) -> impl Iterator<Item = &Window> {
        self.closed.iter()
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
    fn closed_windows_merge_into_the_whole() {
        let mut e = Engine::new(TrafficConfig {
            period: Some(Duration::from_secs(10)),
            keep_closed: 100,
            host_spec: vec!["10.0.0.2/32".parse().unwrap()],
            ..Default::default()
        });
        let bytes = udp_packet(1000, 53);
        for s in 0..95u64 {
            e.ingest(&RawPacket {
                ts: PacketTime::from_secs(1_000 + s),
                wire_len: 60 + (s % 7) as u32,
                data: &bytes,
                link_type: LinkType::RAW,
            });
        }
        let closed: Vec<&Window> = e.closed().collect();
        assert_eq!(closed.len(), 9);
        let mut all = Window::merged(closed);
        let live = e.finish();
        all.merge_from(&live);
        assert_eq!((all.packets, all.udp), (95, 95));
        assert_eq!(all.direction.packets(super::super::direction::Direction::In), 95);
        assert_eq!(all.top_dport_packets.top(1), vec![(53, 95)]);
        assert_eq!(all.sizes_wire.count(), 95);
        assert_eq!(all.start, Some(PacketTime::from_secs(1_000)));
        assert_eq!(all.end, Some(PacketTime::from_secs(1_094)));
        assert_eq!(super::super::sketch::hll_count(&all.src_ips), 1);
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
