//! A traffic [`Window`] turned into the [`TrafficSummary`] that is shown live and stored.
//! Pure: window in, record out.

use crate::model::{hll_to_stored, Percentiles, TopEntry, TopLists, TrafficCounters, TrafficSummary};
use crate::traffic::direction::Direction;
use crate::traffic::sketch::{Quantiles, TopN};
use crate::traffic::Window;
use std::hash::Hash;

fn top<T: Eq + Hash + Clone + Ord + ToString>(t: &TopN<T>, n: usize) -> Vec<TopEntry> {
    t.top(n)
        .into_iter()
        .map(|(k, value)| TopEntry {
            key: k.to_string(),
            value,
        })
        .collect()
}

fn percentiles(q: &Quantiles) -> Percentiles {
    Percentiles {
        p50: q.quantile(0.5),
        p90: q.quantile(0.9),
        p95: q.quantile(0.95),
        p99: q.quantile(0.99),
        max: q.max(),
        samples: q.count(),
    }
}

/// The summary of `w`, covering `[start_ms, end_ms)`, captured on `source`; `dropped` is
/// what the kernel dropped meanwhile.
pub fn summarize(w: &Window, source: &str, start_ms: u64, end_ms: u64, dropped: u64) -> TrafficSummary {
    let d = &w.dns;
    let keep = TrafficSummary::TOP_KEPT;
    let counters = TrafficCounters {
        packets: w.packets,
        bytes: w.bytes_wire,
        ipv4: w.ipv4,
        ipv6: w.ipv6,
        non_ip: w.non_ip,
        malformed: w.malformed.iter().sum(),
        tcp: w.tcp,
        udp: w.udp,
        icmp: w.icmp(),
        other: w.other,
        tcp_syn: w.tcp_syn,
        tcp_synack: w.tcp_synack,
        tcp_rst: w.tcp_rst,
        fragments: w.fragments,
        vlan_tagged: w.vlan_tagged,
        packets_in: w.direction.packets(Direction::In),
        packets_out: w.direction.packets(Direction::Out),
        bytes_in: w.direction.bytes(Direction::In),
        bytes_out: w.direction.bytes(Direction::Out),
        packets_internal: w.direction.packets(Direction::Internal),
        packets_external: w.direction.packets(Direction::External),
        bytes_internal: w.direction.bytes(Direction::Internal),
        bytes_external: w.direction.bytes(Direction::External),
        dns_messages: d.messages,
        dns_queries: d.queries,
        dns_responses: d.responses,
        dns_noerror: d.rcodes[0],
        dns_nxdomain: d.rcodes[3],
        dns_servfail: d.rcodes[2],
        dns_refused: d.rcodes[5],
        dns_nodata: d.nodata,
        flows_created: w.flows_created,
        flows_expired: w.flows_expired,
        flows_evicted: w.flows_evicted,
        dropped,
    };
    let top = TopLists {
        src_ips_by_bytes: top(&w.top_src_bytes, keep),
        src_ips_by_packets: top(&w.top_src_packets, keep),
        dst_ips_by_bytes: top(&w.top_dst_bytes, keep),
        dst_ips_by_packets: top(&w.top_dst_packets, keep),
        dst_ports_by_packets: top(&w.top_dport_packets, keep),
        dst_ports_by_bytes: top(&w.top_dport_bytes, keep),
        qnames: top(&d.top_qnames, keep),
        countries: top(&w.geo.country_bytes, keep),
        cities: top(&w.geo.city_bytes, keep),
        asns: top(&w.geo.asn_bytes, keep),
    };
    TrafficSummary {
        start_ms,
        end_ms,
        source: source.to_string(),
        windows: 1,
        counters,
        top,
        sizes: percentiles(&w.sizes_wire),
        rate: percentiles(&w.rate.per_second),
        src_ips_hll: hll_to_stored(&w.src_ips),
        dst_ips_hll: hll_to_stored(&w.dst_ips),
        qnames_hll: hll_to_stored(&d.qnames),
        rolled_up: false,
    }
}
