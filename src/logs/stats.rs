//! Facets and a pass/block time series over a set of stored lines, sans-IO: feed lines to
//! [`StatsBuilder::add`] (the store's scan does), then [`StatsBuilder::finish`].
//!
//! Must not: read the store or clocks; the caller chooses the lines and the time range.

use crate::model::{FirewallAction, StoredLog, Timestamp};
use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;

/// One bucket of the time series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// Bucket start, milliseconds since the Unix epoch.
    pub at: u64,
    pub pass: u64,
    /// Blocked and rejected.
    pub block: u64,
    /// Lines that are not firewall decisions.
    pub other: u64,
}

/// A value and how many lines had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Count {
    pub value: String,
    pub count: u64,
}

/// Blocked lines whose source is in one country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CountryCount {
    /// ISO 3166-1 alpha-2 code; absent when the geo database does not know the address.
    pub iso: Option<String>,
    /// English name ("Unknown" when the database does not know the address).
    pub name: String,
    pub count: u64,
}

/// Where a public address is: (ISO code, English name), `None` when the database does not
/// know it. The web layer passes a lookup in the configured geo database.
pub type CountryOf<'a> = &'a dyn Fn(IpAddr) -> Option<(String, String)>;

/// What the facets and chart show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogStats {
    /// Lines counted.
    pub total: u64,
    pub pass: u64,
    /// Blocked and rejected.
    pub block: u64,
    /// Firewall lines, passed or blocked.
    pub firewall: u64,
    pub top_blocked_sources: Vec<Count>,
    pub top_blocked_ports: Vec<Count>,
    /// Firewall lines by interface.
    pub by_interface: Vec<Count>,
    /// Lines by sending host (hostname, else address).
    pub by_host: Vec<Count>,
    /// Blocked lines by source country (local and private sources left out); absent when
    /// no geo database is configured.
    pub by_country: Option<Vec<CountryCount>>,
    pub series: Vec<SeriesPoint>,
    /// Bucket width of `series`, milliseconds.
    pub bucket_ms: u64,
    /// The scan stopped at its limit: older lines in the range were not counted.
    pub scan_limited: bool,
}

/// Accumulates [`LogStats`] over lines in `[from, to)`.
#[derive(Debug)]
pub struct StatsBuilder {
    from: u64,
    bucket_ms: u64,
    series: Vec<SeriesPoint>,
    total: u64,
    pass: u64,
    block: u64,
    firewall: u64,
    sources: HashMap<IpAddr, u64>,
    ports: HashMap<u16, u64>,
    interfaces: HashMap<String, u64>,
    hosts: HashMap<String, u64>,
}

impl StatsBuilder {
    /// `buckets` series points covering `[from, to)` (at least one millisecond each).
    pub fn new(from: Timestamp, to: Timestamp, buckets: usize) -> Self {
        let buckets = buckets.max(1);
        let span = to.0.saturating_sub(from.0).max(1);
        let bucket_ms = span.div_ceil(buckets as u64).max(1);
        let series = (0..buckets as u64)
            .map(|i| SeriesPoint {
                at: from.0 + i * bucket_ms,
                pass: 0,
                block: 0,
                other: 0,
            })
            .collect();
        StatsBuilder {
            from: from.0,
            bucket_ms,
            series,
            total: 0,
            pass: 0,
            block: 0,
            firewall: 0,
            sources: HashMap::new(),
            ports: HashMap::new(),
            interfaces: HashMap::new(),
            hosts: HashMap::new(),
        }
    }

    pub fn add(&mut self, log: &StoredLog) {
        self.total += 1;
        let host = match &log.event.syslog.hostname {
            Some(h) => h.clone(),
            None => log.sender.to_string(),
        };
        *self.hosts.entry(host).or_default() += 1;
        let bucket = log
            .received
            .0
            .checked_sub(self.from)
            .map(|d| (d / self.bucket_ms) as usize)
            .and_then(|i| self.series.get_mut(i));
        let Some(fw) = &log.event.firewall else {
            if let Some(b) = bucket {
                b.other += 1;
            }
            return;
        };
        self.firewall += 1;
        if let Some(i) = fw.interface.as_deref() {
            *self.interfaces.entry(i.to_string()).or_default() += 1;
        }
        match fw.action {
            Some(FirewallAction::Pass) => {
                self.pass += 1;
                if let Some(b) = bucket {
                    b.pass += 1;
                }
            }
            Some(FirewallAction::Block | FirewallAction::Reject) => {
                self.block += 1;
                if let Some(b) = bucket {
                    b.block += 1;
                }
                if let Some(src) = fw.src {
                    *self.sources.entry(src).or_default() += 1;
                }
                if let Some(p) = fw.dst_port {
                    *self.ports.entry(p).or_default() += 1;
                }
            }
            None => {
                if let Some(b) = bucket {
                    b.other += 1;
                }
            }
        }
    }

    /// The result with the `top` most frequent values of each facet; the country facet when
    /// `country_of` is given.
    pub fn finish(self, top: usize, scan_limited: bool, country_of: Option<CountryOf<'_>>) -> LogStats {
        let by_country = country_of.map(|f| countries(&self.sources, f, top));
        LogStats {
            total: self.total,
            pass: self.pass,
            block: self.block,
            firewall: self.firewall,
            top_blocked_sources: top_n(self.sources, top),
            top_blocked_ports: top_n(self.ports, top),
            by_interface: top_n(self.interfaces, top),
            by_host: top_n(self.hosts, top),
            by_country,
            series: self.series,
            bucket_ms: self.bucket_ms,
            scan_limited,
        }
    }
}

/// Blocked sources summed by country, most frequent first (ties by name).
fn countries(sources: &HashMap<IpAddr, u64>, country_of: CountryOf<'_>, top: usize) -> Vec<CountryCount> {
    let mut by: HashMap<Option<String>, CountryCount> = HashMap::new();
    for (ip, n) in sources {
        if crate::geo::is_local(ip) || ip.is_multicast() {
            continue;
        }
        let (iso, name) = match country_of(*ip) {
            Some((iso, name)) => (Some(iso), name),
            None => (None, "Unknown".to_string()),
        };
        by.entry(iso.clone())
            .or_insert(CountryCount { iso, name, count: 0 })
            .count += n;
    }
    let mut v: Vec<CountryCount> = by.into_values().collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v.truncate(top);
    v
}

/// Most frequent first; ties by value so the order is stable.
fn top_n<K: ToString + Ord>(map: HashMap<K, u64>, n: usize) -> Vec<Count> {
    let mut v: Vec<(K, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter()
        .take(n)
        .map(|(k, count)| Count {
            value: k.to_string(),
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{parse_bytes, LineFormat, ParseContext};
    use crate::model::Transport;

    fn line(raw: &str, at: u64) -> StoredLog {
        let event = parse_bytes(raw.as_bytes(), &ParseContext::with_year(2026), LineFormat::Auto).unwrap();
        StoredLog {
            received: Timestamp(at),
            sender: "192.0.2.1".parse().unwrap(),
            transport: Transport::Udp,
            event,
        }
    }

    #[test]
    fn counts_blocks_by_source_port_and_bucket() {
        // Real pfSense filterlog lines from shared/testdata/syslog/cases.jsonl (c0001, c0003).
        let block = "<134>Jul  3 19:10:30 filterlog[72237]: 146,,,1535324496,igb1.12,match,block,in,4,0x0,,63,12617,0,DF,6,tcp,60,10.170.12.50,1.1.1.1,49724,853,0,S,1891286705,,64240,,mss;sackOK;TS;nop;wscale";
        let pass = "<134>Jul  3 19:10:30 filterlog[72237]: 176,,,1520797901,igb1.27,match,pass,in,4,0xb8,,64,58355,0,none,17,udp,76,10.170.27.27,216.229.4.66,123,123,56";
        let mut b = StatsBuilder::new(Timestamp(0), Timestamp(100), 10);
        b.add(&line(block, 5));
        b.add(&line(block, 15));
        b.add(&line(pass, 15));
        b.add(&line("<13>plain text", 99));
        let s = b.finish(5, false, None);
        assert_eq!((s.total, s.pass, s.block, s.firewall), (4, 1, 2, 3));
        assert_eq!(s.top_blocked_sources[0].value, "10.170.12.50");
        assert_eq!(s.top_blocked_sources[0].count, 2);
        assert_eq!(s.top_blocked_ports[0].value, "853");
        assert_eq!(s.series[0].block, 1);
        assert_eq!((s.series[1].block, s.series[1].pass), (1, 1));
        assert_eq!(s.series[9].other, 1);
        assert_eq!(s.by_interface[0].value, "igb1.12");
    }
}
