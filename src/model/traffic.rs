//! What is kept of a traffic window: [`TrafficSummary`], one stored record per closed
//! window and interface (per minute by default), and the hourly roll-ups merged from them.
//!
//! Exact counters add up exactly when summaries are merged. Cardinalities travel as
//! serialized HLL sketches (DataSketches format) and merge exactly as sketches do. Top lists
//! keep more entries than shown ([`TrafficSummary::TOP_KEPT`]) and merge by adding counts,
//! so a merged top list is exact when every key was in every part's kept list. Packet size
//! percentiles and per-second rate percentiles are materialised values (the quantile sketches
//! of integers have no serialized form in the sketch library); merged ones are count-weighted
//! means, an approximation marked by `windows > 1`.
//!
//! Owns no I/O and no sketch logic beyond calling the sketch library.

use datasketches::hll::{HllSketch, HllType, HllUnion};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One key of a top list with its count (packets or bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopEntry {
    pub key: String,
    pub value: u64,
}

/// Percentiles of a distribution (packet sizes, packets per second).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Percentiles {
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
    pub samples: u64,
}

/// Exact counters of a window; they add up when windows are merged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrafficCounters {
    pub packets: u64,
    pub bytes: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub non_ip: u64,
    pub malformed: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub other: u64,
    pub tcp_syn: u64,
    pub tcp_synack: u64,
    pub tcp_rst: u64,
    pub fragments: u64,
    pub vlan_tagged: u64,
    /// Direction relative to the host spec (0 while the engine does not tell).
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Both ends inside / both outside the host spec.
    pub packets_internal: u64,
    pub packets_external: u64,
    pub bytes_internal: u64,
    pub bytes_external: u64,
    pub dns_messages: u64,
    pub dns_queries: u64,
    pub dns_responses: u64,
    pub dns_noerror: u64,
    pub dns_nxdomain: u64,
    pub dns_servfail: u64,
    pub dns_refused: u64,
    pub dns_nodata: u64,
    pub flows_created: u64,
    pub flows_expired: u64,
    pub flows_evicted: u64,
    /// Packets the kernel or the interface dropped during the window.
    pub dropped: u64,
}

impl TrafficCounters {
    pub fn add(&mut self, o: &TrafficCounters) {
        macro_rules! add {
            ($($f:ident),*) => { $( self.$f = self.$f.saturating_add(o.$f); )* };
        }
        add!(
            packets,
            bytes,
            ipv4,
            ipv6,
            non_ip,
            malformed,
            tcp,
            udp,
            icmp,
            other,
            tcp_syn,
            tcp_synack,
            tcp_rst,
            fragments,
            vlan_tagged,
            packets_in,
            packets_out,
            bytes_in,
            bytes_out,
            dns_messages,
            dns_queries,
            dns_responses,
            dns_noerror,
            dns_nxdomain,
            dns_servfail,
            dns_refused,
            dns_nodata,
            flows_created,
            flows_expired,
            flows_evicted,
            dropped
        );
    }
}

/// The named top lists of a summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopLists {
    pub src_ips_by_bytes: Vec<TopEntry>,
    pub src_ips_by_packets: Vec<TopEntry>,
    pub dst_ips_by_bytes: Vec<TopEntry>,
    pub dst_ips_by_packets: Vec<TopEntry>,
    pub dst_ports_by_packets: Vec<TopEntry>,
    pub dst_ports_by_bytes: Vec<TopEntry>,
    pub qnames: Vec<TopEntry>,
    pub countries: Vec<TopEntry>,
    pub cities: Vec<TopEntry>,
    pub asns: Vec<TopEntry>,
}

impl TopLists {
    fn lists_mut(&mut self) -> [&mut Vec<TopEntry>; 10] {
        [
            &mut self.src_ips_by_bytes,
            &mut self.src_ips_by_packets,
            &mut self.dst_ips_by_bytes,
            &mut self.dst_ips_by_packets,
            &mut self.dst_ports_by_packets,
            &mut self.dst_ports_by_bytes,
            &mut self.qnames,
            &mut self.countries,
            &mut self.cities,
            &mut self.asns,
        ]
    }

    /// Adds `other`'s counts key by key and keeps the `keep` heaviest of each list.
    pub fn merge(&mut self, other: &TopLists, keep: usize) {
        let mut other = other.clone();
        for (mine, theirs) in self.lists_mut().into_iter().zip(other.lists_mut()) {
            merge_top(mine, theirs, keep);
        }
    }

    /// Cuts every list to `n` entries (for display).
    pub fn truncate(&mut self, n: usize) {
        for l in self.lists_mut() {
            l.truncate(n);
        }
    }
}

/// Sums two top lists by key; ordered by count descending, then key ascending.
pub fn merge_top(into: &mut Vec<TopEntry>, from: &[TopEntry], keep: usize) {
    let mut sums: HashMap<String, u64> = HashMap::with_capacity(into.len() + from.len());
    for e in into.drain(..).chain(from.iter().cloned()) {
        *sums.entry(e.key).or_default() += e.value;
    }
    into.extend(sums.into_iter().map(|(key, value)| TopEntry { key, value }));
    into.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.key.cmp(&b.key)));
    into.truncate(keep);
}

/// A stored summary of one window (or of several merged).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficSummary {
    /// Start and end of the period covered, milliseconds since the epoch (packet time).
    pub start_ms: u64,
    pub end_ms: u64,
    /// Interface (or replayed file) name; `"all"` for merged interfaces.
    pub source: String,
    /// Windows merged into this one.
    pub windows: u32,
    pub counters: TrafficCounters,
    pub top: TopLists,
    pub sizes: Percentiles,
    /// Packets per second, sampled each second.
    pub rate: Percentiles,
    /// HLL sketches of the distinct source IPs, destination IPs and DNS names.
    pub src_ips_hll: Vec<u8>,
    pub dst_ips_hll: Vec<u8>,
    pub qnames_hll: Vec<u8>,
    /// Set on a stored minute once it went into its hour's record.
    pub rolled_up: bool,
}

/// lg(K) of stored HLL sketches: 4096 buckets, about 1.6 % error, at most 2 KiB each.
pub const STORED_HLL_LG_K: u8 = 12;

/// A sketch reduced to the stored precision, serialized.
pub fn hll_to_stored(sketch: &HllSketch) -> Vec<u8> {
    match HllUnion::new(STORED_HLL_LG_K) {
        Ok(mut u) => {
            u.update(sketch);
            u.to_sketch(HllType::Hll4).serialize()
        }
        Err(_) => Vec::new(),
    }
}

/// The estimate of a stored sketch (0 for an empty or unreadable one).
pub fn hll_estimate(bytes: &[u8]) -> u64 {
    HllSketch::deserialize(bytes)
        .map(|s| s.estimate().round().max(0.0) as u64)
        .unwrap_or(0)
}

fn hll_merge(into: &mut Vec<u8>, from: &[u8]) {
    let Ok(b) = HllSketch::deserialize(from) else {
        return;
    };
    let Ok(mut u) = HllUnion::new(STORED_HLL_LG_K) else {
        return;
    };
    if let Ok(a) = HllSketch::deserialize(into) {
        u.update(&a);
    }
    u.update(&b);
    *into = u.to_sketch(HllType::Hll4).serialize();
}

fn weighted(a: Option<u64>, wa: u64, b: Option<u64>, wb: u64) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) if wa + wb > 0 => {
            let v = (x as u128 * wa as u128 + y as u128 * wb as u128) / (wa as u128 + wb as u128);
            Some(v as u64)
        }
        (Some(x), _) => Some(x),
        (None, y) => y,
    }
}

impl Percentiles {
    /// Count-weighted means of the two sets of percentiles (an approximation).
    pub fn merge_approx(&mut self, o: &Percentiles) {
        let (wa, wb) = (self.samples, o.samples);
        self.p50 = weighted(self.p50, wa, o.p50, wb);
        self.p90 = weighted(self.p90, wa, o.p90, wb);
        self.p95 = weighted(self.p95, wa, o.p95, wb);
        self.p99 = weighted(self.p99, wa, o.p99, wb);
        self.max = self.max.max(o.max);
        self.samples = wa.saturating_add(wb);
    }
}

impl TrafficSummary {
    /// Entries kept per top list in a stored record: more than shown, so merges stay close.
    pub const TOP_KEPT: usize = 50;

    pub fn distinct_src_ips(&self) -> u64 {
        hll_estimate(&self.src_ips_hll)
    }

    pub fn distinct_dst_ips(&self) -> u64 {
        hll_estimate(&self.dst_ips_hll)
    }

    pub fn distinct_qnames(&self) -> u64 {
        hll_estimate(&self.qnames_hll)
    }

    /// Adds `o` to this summary (another interface, or the next window).
    pub fn merge(&mut self, o: &TrafficSummary) {
        if self.windows == 0 {
            let source = std::mem::take(&mut self.source);
            *self = o.clone();
            if !source.is_empty() && source != o.source {
                self.source = source;
            }
            return;
        }
        self.start_ms = self.start_ms.min(o.start_ms);
        self.end_ms = self.end_ms.max(o.end_ms);
        if self.source != o.source {
            self.source = "all".into();
        }
        self.windows = self.windows.saturating_add(o.windows);
        self.counters.add(&o.counters);
        self.top.merge(&o.top, Self::TOP_KEPT);
        self.sizes.merge_approx(&o.sizes);
        self.rate.merge_approx(&o.rate);
        hll_merge(&mut self.src_ips_hll, &o.src_ips_hll);
        hll_merge(&mut self.dst_ips_hll, &o.dst_ips_hll);
        hll_merge(&mut self.qnames_hll, &o.qnames_hll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(k: &str, v: u64) -> TopEntry {
        TopEntry {
            key: k.into(),
            value: v,
        }
    }

    #[test]
    fn top_lists_merge_by_key_and_order_ties_by_key() {
        let mut a = vec![entry("10.0.0.1", 5), entry("10.0.0.2", 3)];
        merge_top(&mut a, &[entry("10.0.0.2", 4), entry("10.0.0.3", 7)], 2);
        assert_eq!(a, vec![entry("10.0.0.2", 7), entry("10.0.0.3", 7)]);
    }

    #[test]
    fn merged_summaries_add_counters_and_union_cardinalities() {
        let mk = |ips: std::ops::Range<u32>, packets: u64| {
            let mut h = crate::traffic::sketch::hll();
            for i in ips {
                h.update(i);
            }
            TrafficSummary {
                start_ms: 60_000,
                end_ms: 120_000,
                source: "eth0".into(),
                windows: 1,
                counters: TrafficCounters {
                    packets,
                    ..Default::default()
                },
                src_ips_hll: hll_to_stored(&h),
                ..Default::default()
            }
        };
        let mut m = TrafficSummary::default();
        m.merge(&mk(0..100, 10));
        let mut b = mk(50..150, 5);
        b.start_ms = 120_000;
        b.end_ms = 180_000;
        m.merge(&b);
        assert_eq!(m.counters.packets, 15);
        assert_eq!((m.start_ms, m.end_ms, m.windows), (60_000, 180_000, 2));
        assert_eq!(m.distinct_src_ips(), 150);
        assert_eq!(m.source, "eth0");
    }
}
