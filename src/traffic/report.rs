//! A window as a report: the JSON schema of `gatewatch pcap --json` (see
//! `../shared/testdata/pcap/README.md`; more keys than it asks for) and the readable
//! text summary. Pure formatting, no I/O.

use super::decode::Malformed;
use super::dhcp::{v4_type_name, v6_type_name, DhcpStats};
use super::direction::Direction;
use super::dns::DnsStats;
use super::dns_xact::{XactDirection, XactStats};
use super::sketch::{hll_count, Quantiles, TopN};
use super::window::{GeoTops, Window};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// What the caller knows about the input (files), shown beside the counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputInfo {
    pub files: Vec<FileInfo>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FileInfo {
    pub path: String,
    pub format: Option<String>,
    pub size_bytes: u64,
    pub linktypes: Vec<u32>,
    pub truncated_tail: bool,
    /// Where reading stopped with an error, and why.
    pub error: Option<String>,
    pub error_offset: Option<u64>,
    /// Something read but not understood (e.g. an unsupported link type).
    pub warning: Option<String>,
}

const TOP: usize = 10;
const PERCENTILES: [(&str, f64); 4] = [("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99)];

fn top_json<T: Eq + std::hash::Hash + Clone + Ord + Serialize>(t: &TopN<T>) -> Value {
    let entries: Vec<Value> = t
        .top(TOP)
        .into_iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    json!({"entries": entries, "exact": t.is_exact()})
}

/// Top list of keys shown by their `Display` form (names, labels).
fn top_json_display<T: Eq + std::hash::Hash + Clone + Ord + std::fmt::Display>(t: &TopN<T>) -> Value {
    let entries: Vec<Value> = t
        .top(TOP)
        .into_iter()
        .map(|(k, v)| json!({"key": k.to_string(), "value": v}))
        .collect();
    json!({"entries": entries, "exact": t.is_exact()})
}

fn direction_json(w: &Window) -> Value {
    if !w.direction_known {
        return Value::Null;
    }
    let mut m = Map::new();
    for d in Direction::ALL {
        m.insert(
            d.name().into(),
            json!({"packets": w.direction.packets(d), "bytes": w.direction.bytes(d)}),
        );
    }
    Value::Object(m)
}

fn geo_json(g: &GeoTops) -> Value {
    json!({
        "lookups": g.lookups,
        "unknown": g.unknown,
        "top10_asns_by_packets": top_json_display(&g.asn_packets),
        "top10_asns_by_bytes": top_json_display(&g.asn_bytes),
        "top10_countries_by_packets": top_json_display(&g.country_packets),
        "top10_countries_by_bytes": top_json_display(&g.country_bytes),
        "top10_cities_by_packets": top_json_display(&g.city_packets),
        "top10_cities_by_bytes": top_json_display(&g.city_bytes),
    })
}

fn type_counts(types: &[u64; 256], name: fn(u8) -> String) -> Map<String, Value> {
    (0..=255u8)
        .filter(|t| types[usize::from(*t)] > 0)
        .map(|t| (name(t), json!(types[usize::from(t)])))
        .collect()
}

fn dhcp_json(d: &DhcpStats) -> Value {
    json!({
        "v4": {
            "messages": d.v4_messages,
            "malformed": d.v4_malformed,
            "types": type_counts(&d.v4_types, v4_type_name),
            "top10_clients": top_json(&d.v4_clients),
        },
        "v6": {
            "messages": d.v6_messages,
            "malformed": d.v6_malformed,
            "types": type_counts(&d.v6_types, v6_type_name),
            "top10_clients": top_json(&d.v6_clients),
        },
    })
}

fn xact_json(x: &XactStats) -> Value {
    let mut by_dir = Map::new();
    for d in XactDirection::ALL {
        let i = d as usize;
        by_dir.insert(
            d.name().into(),
            json!({"completed": x.completed[i], "latency_us": quantiles_json(&x.latency_us[i])}),
        );
    }
    let slowest: Vec<Value> = x
        .slowest
        .iter()
        .map(|s| {
            json!({
                "latency_us": s.latency_us,
                "qname": s.qname.as_deref(),
                "client": s.client,
                "server": s.server,
                "query_time_ns": s.at.0,
            })
        })
        .collect();
    json!({
        "completed": x.total(),
        "timeouts": x.timeouts,
        "unmatched_responses": x.unmatched_responses,
        "pending_evicted": x.evicted,
        "by_direction": by_dir,
        "slowest": slowest,
    })
}

fn quantiles_json(q: &Quantiles) -> Value {
    if q.count() == 0 {
        return Value::Null;
    }
    let mut m = Map::new();
    for (name, rank) in PERCENTILES {
        m.insert(name.into(), json!(q.quantile(rank)));
    }
    m.insert("min".into(), json!(q.min()));
    m.insert("max".into(), json!(q.max()));
    m.insert("samples".into(), json!(q.count()));
    Value::Object(m)
}

fn dns_json(d: &DnsStats, ports: &[u16]) -> Value {
    let mut rcode_all = Map::new();
    for (i, n) in d.rcodes.iter().enumerate() {
        if *n > 0 {
            rcode_all.insert(DnsStats::rcode_name(i), json!(n));
        }
    }
    let qtypes: Map<String, Value> = d.qtypes.iter().map(|(t, n)| (t.to_string(), json!(n))).collect();
    json!({
        "ports": ports,
        "messages": d.messages,
        "udp_messages": d.udp_messages,
        "tcp_messages": d.tcp_messages,
        "udp_messages_from_incomplete_datagrams": d.udp_incomplete,
        "udp_datagrams_too_short_for_dns_header": d.too_short,
        "queries": d.queries,
        "responses": d.responses,
        "rcode": {
            "NOERROR": d.rcodes[0],
            "NXDOMAIN": d.rcodes[3],
            "SERVFAIL": d.rcodes[2],
            "REFUSED": d.rcodes[5],
        },
        "rcode_all": rcode_all,
        "nodata": d.nodata,
        "opcode_nonzero": d.opcode_nonzero,
        "question_unparsed": d.question_unparsed,
        "qtype_all_messages": qtypes,
        "distinct_qnames": hll_count(&d.qnames),
        "top10_qnames_all_messages": top_json(&d.top_qnames),
        "top10_qname2": top_json(&d.top_qname2),
        "top10_qname3": top_json(&d.top_qname3),
        "top10_nxdomain_qnames": top_json(&d.top_nxdomain),
        "top10_servfail_qnames": top_json(&d.top_servfail),
        "top10_refused_qnames": top_json(&d.top_refused),
        "top10_nodata_qnames": top_json(&d.top_nodata),
        "top10_qnames_by_response_bytes": top_json(&d.top_response_bytes),
        "query_bytes": d.query_bytes,
        "response_bytes": d.response_bytes,
        "response_query_size_ratio": d.response_query_ratio(),
    })
}

/// The JSON summary of a window.
pub fn to_json(w: &Window, input: &InputInfo, dns_ports: &[u16]) -> Value {
    let first = input.files.first();
    let malformed: Map<String, Value> = Malformed::ALL
        .iter()
        .zip(w.malformed.iter())
        .map(|(m, n)| (m.name().to_string(), json!(n)))
        .collect();
    json!({
        "file": {
            "path": first.map(|f| f.path.clone()),
            "format": first.and_then(|f| f.format.clone()),
            "size_bytes": first.map(|f| f.size_bytes),
            "linktypes": first.map(|f| f.linktypes.clone()),
            "truncated_tail": input.files.iter().any(|f| f.truncated_tail),
            "error": first.and_then(|f| f.error.clone()),
            "error_offset": first.and_then(|f| f.error_offset),
        },
        "files": input.files,
        "time": {
            "first_ns": w.start.map(|t| t.0),
            "last_ns": w.end.map(|t| t.0),
        },
        "packets": w.packets,
        "bytes_wire": w.bytes_wire,
        "bytes_captured": w.bytes_captured,
        "packets_snaplen_truncated": w.snaplen_truncated,
        "ip_version": {
            "ipv4": w.ipv4,
            "ipv6": w.ipv6,
            "non_ip": w.non_ip,
            "malformed_ip": w.malformed_ip,
        },
        "protocol": {
            "tcp": w.tcp,
            "udp": w.udp,
            "icmp": w.icmp(),
            "other": w.other,
            "icmpv4": w.icmpv4,
            "icmpv6": w.icmpv6,
        },
        "protocol_l4_header": {"tcp": w.l4_tcp, "udp": w.l4_udp, "other": w.l4_other},
        "fragments": {
            "ip_fragments": w.fragments,
            "non_first_fragments": w.non_first_fragments,
        },
        "vlan_tagged_packets": w.vlan_tagged,
        "tcp_syn_packets": w.tcp_syn,
        "tcp_synack_packets": w.tcp_synack,
        "tcp_rst_packets": w.tcp_rst,
        "malformed": malformed,
        "cardinality": {
            "src_ips": hll_count(&w.src_ips),
            "dst_ips": hll_count(&w.dst_ips),
        },
        "top10": {
            "src_ips_by_packets": top_json(&w.top_src_packets),
            "src_ips_by_bytes": top_json(&w.top_src_bytes),
            "dst_ips_by_packets": top_json(&w.top_dst_packets),
            "dst_ips_by_bytes": top_json(&w.top_dst_bytes),
            "dst_ports_by_packets": top_json(&w.top_dport_packets),
            "dst_ports_by_bytes": top_json(&w.top_dport_bytes),
        },
        "size_percentiles": {"wire": quantiles_json(&w.sizes_wire)},
        "rate_pps": quantiles_json(&w.rate.per_second),
        "flows": {
            "bidirectional_5tuple": w.flows_distinct,
            "bidirectional_5tuple_exact": w.flows_distinct_exact,
            "records": w.flows_created,
            "restarted_after_idle": w.flows_restarted,
            "expired": w.flows_expired,
            "evicted": w.flows_evicted,
            "active": w.flows_active,
        },
        "dns": dns_json(&w.dns, dns_ports),
        "dns_transactions": xact_json(&w.dns_xact),
        "direction": direction_json(w),
        "geo": geo_json(&w.geo),
        "dhcp": dhcp_json(&w.dhcp),
        "ip_names": w.ip_names.iter().map(|(ip, n)| (ip.to_string(), json!(n.as_ref()))).collect::<Map<String, Value>>(),
        "sampling": {
            "deep_packets": w.deep_packets,
            "deep_skipped": w.deep_skipped,
            "deep_keep_min": w.deep_keep_min,
        },
    })
}

fn table(out: &mut String, title: &str, rows: &[(String, String)]) {
    if rows.is_empty() {
        return;
    }
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let vwidth = rows.iter().map(|(_, v)| v.chars().count()).max().unwrap_or(0);
    let _ = writeln!(out, "\n{title}");
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<width$}  {v:>vwidth$}");
    }
}

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn top_rows<T: Eq + std::hash::Hash + Clone + Ord + ToString>(t: &TopN<T>) -> Vec<(String, String)> {
    t.top(TOP)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Top IPs with their DNS names where known.
fn top_ip_rows(t: &TopN<std::net::IpAddr>, w: &Window) -> Vec<(String, String)> {
    t.top(TOP)
        .into_iter()
        .map(|(ip, v)| {
            let label = match w.ip_names.iter().find(|(i, _)| *i == ip) {
                Some((_, name)) => format!("{ip} ({name})"),
                None => ip.to_string(),
            };
            (label, v.to_string())
        })
        .collect()
}

fn extra_text(out: &mut String, w: &Window) {
    if w.direction_known {
        let rows: Vec<(String, String)> = Direction::ALL
            .iter()
            .map(|d| {
                kv(
                    d.name(),
                    format!(
                        "{} packets, {} bytes",
                        w.direction.packets(*d),
                        w.direction.bytes(*d)
                    ),
                )
            })
            .collect();
        table(out, "Direction (relative to the host spec)", &rows);
    }
    let g = &w.geo;
    if g.lookups > 0 {
        table(out, "Top countries by packets", &top_rows(&g.country_packets));
        table(out, "Top cities by packets", &top_rows(&g.city_packets));
        table(out, "Top ASNs by packets", &top_rows(&g.asn_packets));
        table(out, "Top ASNs by bytes", &top_rows(&g.asn_bytes));
    }
    let h = &w.dhcp;
    if h.v4_messages + h.v4_malformed > 0 {
        let mut rows: Vec<(String, String)> = (0..=255u8)
            .filter(|t| h.v4_types[usize::from(*t)] > 0)
            .map(|t| (v4_type_name(t), h.v4_types[usize::from(t)].to_string()))
            .collect();
        rows.push(kv("malformed", h.v4_malformed));
        table(out, "DHCPv4 messages", &rows);
        table(out, "Top DHCPv4 clients (MAC)", &top_rows(&h.v4_clients));
    }
    if h.v6_messages + h.v6_malformed > 0 {
        let mut rows: Vec<(String, String)> = (0..=255u8)
            .filter(|t| h.v6_types[usize::from(*t)] > 0)
            .map(|t| (v6_type_name(t), h.v6_types[usize::from(t)].to_string()))
            .collect();
        rows.push(kv("malformed", h.v6_malformed));
        table(out, "DHCPv6 messages", &rows);
        table(out, "Top DHCPv6 clients (DUID)", &top_rows(&h.v6_clients));
    }
    if w.deep_skipped > 0 {
        table(
            out,
            "Deep-analysis sampling",
            &[
                kv("packets analysed", w.deep_packets),
                kv("packets sampled out", w.deep_skipped),
                kv("lowest kept fraction", format!("{:.3}", w.deep_keep_min)),
            ],
        );
    }
}

fn dns_extra_text(out: &mut String, d: &DnsStats, x: &XactStats) {
    table(out, "Top qnames (2 labels)", &top_rows(&d.top_qname2));
    table(out, "Top qnames (3 labels)", &top_rows(&d.top_qname3));
    table(out, "Top NXDOMAIN qnames", &top_rows(&d.top_nxdomain));
    table(out, "Top SERVFAIL qnames", &top_rows(&d.top_servfail));
    table(out, "Top REFUSED qnames", &top_rows(&d.top_refused));
    table(out, "Top NODATA qnames", &top_rows(&d.top_nodata));
    table(
        out,
        "Top qnames by response bytes",
        &top_rows(&d.top_response_bytes),
    );
    let mut rows = vec![
        kv("completed", x.total()),
        kv("timeouts", x.timeouts),
        kv("responses without query", x.unmatched_responses),
    ];
    if let Some(r) = d.response_query_ratio() {
        rows.push(kv("response/query bytes", format!("{r:.2}")));
    }
    for dir in XactDirection::ALL {
        let i = dir as usize;
        if x.completed[i] == 0 {
            continue;
        }
        let q = &x.latency_us[i];
        let p = |r: f64| {
            q.quantile(r)
                .map_or("-".to_string(), |v| format!("{:.1} ms", v as f64 / 1000.0))
        };
        rows.push(kv(
            &format!("{} latency p50/p90/p99", dir.name()),
            format!("{} / {} / {} ({})", p(0.5), p(0.9), p(0.99), x.completed[i]),
        ));
    }
    table(out, "DNS transactions", &rows);
    let slow: Vec<(String, String)> = x
        .slowest
        .iter()
        .map(|s| {
            (
                format!(
                    "{} → {} {}",
                    s.client,
                    s.server,
                    s.qname.as_deref().unwrap_or("?")
                ),
                format!("{:.1} ms", s.latency_us as f64 / 1000.0),
            )
        })
        .collect();
    table(out, "Slowest DNS transactions", &slow);
}

/// The readable summary printed without `--json`.
pub fn to_text(w: &Window, input: &InputInfo, dns_ports: &[u16]) -> String {
    let mut out = String::new();
    for f in &input.files {
        let _ = writeln!(
            out,
            "{}: {} ({} bytes){}",
            f.path,
            f.format.as_deref().unwrap_or("unreadable"),
            f.size_bytes,
            if f.truncated_tail { ", truncated tail" } else { "" }
        );
        if let Some(e) = &f.error {
            let _ = writeln!(out, "  error: {e}");
        }
    }
    table(
        &mut out,
        "Packets",
        &[
            kv("packets", w.packets),
            kv("bytes (wire)", w.bytes_wire),
            kv("bytes (captured)", w.bytes_captured),
            kv("IPv4", w.ipv4),
            kv("IPv6", w.ipv6),
            kv("non-IP", w.non_ip),
            kv("malformed IP", w.malformed_ip),
            kv("TCP", w.tcp),
            kv("UDP", w.udp),
            kv("ICMP", w.icmp()),
            kv("other", w.other),
            kv("TCP SYN", w.tcp_syn),
            kv("IP fragments", w.fragments),
            kv("VLAN-tagged", w.vlan_tagged),
            kv("distinct source IPs", hll_count(&w.src_ips)),
            kv("distinct destination IPs", hll_count(&w.dst_ips)),
            kv("flows (bidirectional 5-tuples)", w.flows_distinct),
        ],
    );
    let size: Vec<(String, String)> = PERCENTILES
        .iter()
        .filter_map(|(n, r)| w.sizes_wire.quantile(*r).map(|v| kv(n, v)))
        .collect();
    table(&mut out, "Packet size (wire bytes)", &size);
    for (title, top) in [
        ("Top source IPs by packets", &w.top_src_packets),
        ("Top source IPs by bytes", &w.top_src_bytes),
        ("Top destination IPs by packets", &w.top_dst_packets),
        ("Top destination IPs by bytes", &w.top_dst_bytes),
    ] {
        table(&mut out, title, &top_ip_rows(top, w));
    }
    table(
        &mut out,
        "Top destination ports by packets",
        &top_rows(&w.top_dport_packets),
    );
    let d = &w.dns;
    if d.messages > 0 || d.too_short > 0 {
        let ports: Vec<String> = dns_ports.iter().map(|p| p.to_string()).collect();
        table(
            &mut out,
            &format!("DNS (ports {})", ports.join(",")),
            &[
                kv("messages", d.messages),
                kv("queries", d.queries),
                kv("responses", d.responses),
                kv("NOERROR", d.rcodes[0]),
                kv("NXDOMAIN", d.rcodes[3]),
                kv("SERVFAIL", d.rcodes[2]),
                kv("REFUSED", d.rcodes[5]),
                kv("NODATA", d.nodata),
                kv("distinct qnames", hll_count(&d.qnames)),
            ],
        );
        table(&mut out, "Top qnames", &top_rows(&d.top_qnames));
        dns_extra_text(&mut out, d, &w.dns_xact);
    }
    extra_text(&mut out, w);
    out
}
