//! DNS transactions: a query matched with its response by message id, client and server
//! address and port, within a timeout (pktvisor's xact). [`PendingQueries`] lives in the
//! engine across windows (bounded, counted evictions and timeouts); [`XactStats`] is the
//! per-window result: completed transactions split by direction (the router as server —
//! the query went to a host-spec address — or as client, or neither), latency quantiles
//! (KLL, microseconds) and the slowest transactions. Sans-IO: `now` is packet time.

use super::direction::HostSpec;
use super::sketch::Quantiles;
use crate::capture::PacketTime;
use foldhash::fast::RandomState;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct XactKey {
    id: u16,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
}

/// A query waiting for its response. Its name is not kept: the response repeats the
/// question, so a transaction's name is taken from there (no allocation per query).
struct Pending {
    at: PacketTime,
}

/// Which side of the transaction the router (host spec) is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XactDirection {
    /// Someone asked the router (the server address is local).
    RouterServer,
    /// The router (or a local host) asked an outside server.
    RouterClient,
    /// Neither, or no host spec.
    Other,
}

impl XactDirection {
    pub const ALL: [XactDirection; 3] = [
        XactDirection::RouterServer,
        XactDirection::RouterClient,
        XactDirection::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            XactDirection::RouterServer => "router_server",
            XactDirection::RouterClient => "router_client",
            XactDirection::Other => "other",
        }
    }

    fn of(spec: &HostSpec, client: &IpAddr, server: &IpAddr) -> XactDirection {
        if spec.contains(server) {
            XactDirection::RouterServer
        } else if spec.contains(client) {
            XactDirection::RouterClient
        } else {
            XactDirection::Other
        }
    }
}

/// One slow transaction, for the "slowest" list.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowXact {
    pub latency_us: u64,
    pub qname: Option<Arc<str>>,
    pub client: IpAddr,
    pub server: IpAddr,
    pub at: PacketTime,
}

/// Per-window transaction figures.
pub struct XactStats {
    pub completed: [u64; 3],
    pub latency_us: [Quantiles; 3],
    pub timeouts: u64,
    /// Responses without a pending query (query before the window, lost, or sampled out).
    pub unmatched_responses: u64,
    /// Pending queries dropped because the table was full.
    pub evicted: u64,
    /// The slowest transactions, slowest first, at most [`XactStats::SLOWEST`].
    pub slowest: Vec<SlowXact>,
}

impl Default for XactStats {
    fn default() -> Self {
        XactStats {
            completed: [0; 3],
            latency_us: std::array::from_fn(|_| Quantiles::new(Quantiles::COARSE)),
            timeouts: 0,
            unmatched_responses: 0,
            evicted: 0,
            slowest: Vec::new(),
        }
    }
}

impl XactStats {
    pub const SLOWEST: usize = 10;

    fn is_slow_enough(&self, latency_us: u64) -> bool {
        self.slowest.len() < Self::SLOWEST || self.slowest.last().is_some_and(|l| l.latency_us < latency_us)
    }

    fn record_slow(&mut self, x: SlowXact) {
        if !self.is_slow_enough(x.latency_us) {
            return;
        }
        let at = self.slowest.partition_point(|s| s.latency_us >= x.latency_us);
        self.slowest.insert(at, x);
        self.slowest.truncate(Self::SLOWEST);
    }

    pub fn merge_from(&mut self, o: &XactStats) {
        for i in 0..3 {
            self.completed[i] += o.completed[i];
            self.latency_us[i].merge_from(&o.latency_us[i]);
        }
        self.timeouts += o.timeouts;
        self.unmatched_responses += o.unmatched_responses;
        self.evicted += o.evicted;
        for s in &o.slowest {
            self.record_slow(s.clone());
        }
    }

    pub fn total(&self) -> u64 {
        self.completed.iter().sum()
    }
}

/// Queries waiting for their response.
pub struct PendingQueries {
    map: HashMap<XactKey, Pending, RandomState>,
    max: usize,
    timeout: Duration,
    last_sweep: PacketTime,
}

impl PendingQueries {
    pub fn new(max: usize, timeout: Duration) -> Self {
        PendingQueries {
            map: HashMap::default(),
            max: max.max(1),
            timeout,
            last_sweep: PacketTime::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Accounts a DNS message sent from `src` to `dst`; `qname` is its first question.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        stats: &mut XactStats,
        spec: &HostSpec,
        id: u16,
        response: bool,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        qname: Option<&str>,
        now: PacketTime,
    ) {
        self.expire(stats, now);
        if !response {
            let key = XactKey {
                id,
                client: src,
                server: dst,
            };
            if self.map.len() >= self.max && !self.map.contains_key(&key) {
                // The oldest of a small sample: bounded work per packet.
                if let Some(k) = self
                    .map
                    .iter()
                    .take(16)
                    .min_by_key(|(_, p)| p.at)
                    .map(|(k, _)| *k)
                {
                    self.map.remove(&k);
                    stats.evicted += 1;
                }
            }
            self.map.insert(key, Pending { at: now });
            return;
        }
        let key = XactKey {
            id,
            client: dst,
            server: src,
        };
        let Some(q) = self.map.remove(&key) else {
            stats.unmatched_responses += 1;
            return;
        };
        let latency_us = now.0.saturating_sub(q.at.0) / 1_000;
        let dir = XactDirection::of(spec, &dst.0, &src.0) as usize;
        stats.completed[dir] += 1;
        stats.latency_us[dir].add(latency_us);
        if !stats.is_slow_enough(latency_us) {
            return;
        }
        stats.record_slow(SlowXact {
            latency_us,
            qname: qname.map(Arc::from),
            client: dst.0,
            server: src.0,
            at: q.at,
        });
    }

    /// Counts queries older than the timeout as timed out (one sweep per second of `now`).
    pub fn expire(&mut self, stats: &mut XactStats, now: PacketTime) {
        if now.0 < self.last_sweep.0.saturating_add(PacketTime::NANOS_PER_SEC) {
            return;
        }
        self.last_sweep = now;
        let timeout = self.timeout.as_nanos() as u64;
        let before = self.map.len();
        self.map.retain(|_, p| now.0.saturating_sub(p.at.0) <= timeout);
        stats.timeouts += (before - self.map.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_id_and_endpoints_and_times_out() {
        let spec = HostSpec::new(vec!["192.168.0.0/24".parse().unwrap()]);
        let mut p = PendingQueries::new(100, Duration::from_secs(5));
        let mut st = XactStats::default();
        let lan = ("192.168.0.10".parse().unwrap(), 40000);
        let router = ("192.168.0.1".parse().unwrap(), 53);
        let google = ("8.8.8.8".parse().unwrap(), 53);
        let ms = |m: u64| PacketTime(1_000_000_000_000 + m * 1_000_000);
        p.observe(&mut st, &spec, 7, false, lan, router, Some("a.example"), ms(0));
        // Same id from another port: a different transaction.
        p.observe(
            &mut st,
            &spec,
            7,
            true,
            router,
            ("192.168.0.10".parse().unwrap(), 40001),
            None,
            ms(1),
        );
        p.observe(&mut st, &spec, 7, true, router, lan, None, ms(3));
        p.observe(&mut st, &spec, 9, false, router, google, Some("b.example"), ms(4));
        p.observe(&mut st, &spec, 9, true, google, router, Some("b.example"), ms(24));
        p.observe(
            &mut st,
            &spec,
            11,
            false,
            router,
            google,
            Some("slow.example"),
            ms(30),
        );
        p.observe(&mut st, &spec, 12, false, lan, google, None, ms(7_000));
        assert_eq!(st.completed, [1, 1, 0]);
        assert_eq!((st.timeouts, st.unmatched_responses), (1, 1));
        assert_eq!(st.latency_us[0].quantile(0.5), Some(3_000));
        assert_eq!(st.slowest[0].latency_us, 20_000);
        assert_eq!(st.slowest[0].qname.as_deref(), Some("b.example"));
        assert_eq!(p.len(), 1);
    }
}
