//! The bidirectional 5-tuple flow table: bounded size, counted evictions, idle expiry by
//! `now`. Packets without ports (ICMP, non-first fragments, other protocols) use port 0.
//!
//! `distinct` counts 5-tuples, not flow records: a flow that expired and comes back later in
//! the same window is a new record (`restarted`) but not a new 5-tuple. To know that, the
//! fingerprints of expired keys are remembered until the window is reset, at most as many
//! as the table holds.

use crate::capture::PacketTime;
use foldhash::fast::RandomState;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// A flow's key with its two endpoints in canonical order, so both directions meet.
///
/// Kept as integers (each address as a 128-bit number, ports, protocol and the two address
/// families packed in one word) rather than as `IpAddr`s: the key is hashed and compared
/// for every IP packet, and whole aligned integers are what the hasher reads back, where
/// enum tags and unaligned address bytes made it wait on the stores that built the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    a_addr: u128,
    b_addr: u128,
    /// a's port, b's port << 16, protocol << 32, a is IPv4 << 40, b is IPv4 << 41.
    rest: u64,
}

impl FlowKey {
    /// Returns the key and whether the packet goes from `a` to `b`.
    pub fn new(src: (IpAddr, u16), dst: (IpAddr, u16), proto: u8) -> (FlowKey, bool) {
        // `IpAddr` orders IPv4 before IPv6, and each family by its address as a
        // big-endian number: (is IPv6, number, port) orders endpoints the same way.
        fn rank((ip, port): (IpAddr, u16)) -> (bool, u128, u16) {
            let (bits, v4) = ip_bits(ip);
            (!v4, bits, port)
        }
        let (s, d) = (rank(src), rank(dst));
        let forward = s <= d;
        let (lo, hi) = if forward { (s, d) } else { (d, s) };
        let key = FlowKey {
            a_addr: lo.1,
            b_addr: hi.1,
            rest: u64::from(lo.2)
                | u64::from(hi.2) << 16
                | u64::from(proto) << 32
                | u64::from(!lo.0) << 40
                | u64::from(!hi.0) << 41,
        };
        (key, forward)
    }

    fn endpoint(addr: u128, port: u64, v4: bool) -> (IpAddr, u16) {
        let ip = if v4 {
            IpAddr::V4(Ipv4Addr::from(addr as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(addr))
        };
        (ip, port as u16)
    }

    /// The lower endpoint (address, port).
    pub fn a(&self) -> (IpAddr, u16) {
        Self::endpoint(self.a_addr, self.rest, self.rest >> 40 & 1 == 1)
    }

    /// The higher endpoint (address, port).
    pub fn b(&self) -> (IpAddr, u16) {
        Self::endpoint(self.b_addr, self.rest >> 16, self.rest >> 41 & 1 == 1)
    }

    pub fn proto(&self) -> u8 {
        (self.rest >> 32) as u8
    }
}

/// An address as a number (IPv4 in the low 32 bits) and whether it is IPv4: the form the
/// packed keys (`FlowKey`, `tcp_dns::StreamKey`) hold.
pub(super) fn ip_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), true),
        IpAddr::V6(v6) => (u128::from(v6), false),
    }
}

/// Endpoint `a`, then `b`, then the protocol, each as `IpAddr` and port order.
impl Ord for FlowKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.a(), self.b(), self.proto()).cmp(&(o.a(), o.b(), o.proto()))
    }
}

impl PartialOrd for FlowKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FlowStats {
    pub first_seen: PacketTime,
    pub last_seen: PacketTime,
    pub packets_ab: u64,
    pub packets_ba: u64,
    pub bytes_ab: u64,
    pub bytes_ba: u64,
    /// OR of the TCP flags seen in either direction.
    pub tcp_flags: u8,
}

#[derive(Debug, Clone, Copy)]
pub struct FlowLimits {
    pub max_flows: usize,
    pub idle: Duration,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            max_flows: 262_144,
            idle: Duration::from_secs(120),
        }
    }
}

pub struct FlowTable {
    // foldhash: fast, and randomly seeded per table so crafted flows cannot aim at buckets.
    flows: HashMap<FlowKey, FlowStats, RandomState>,
    expired_keys: HashSet<u64, RandomState>,
    hasher: RandomState,
    limits: FlowLimits,
    last_sweep: PacketTime,
    /// Distinct 5-tuples since the last reset.
    pub distinct: u64,
    /// Records created (a 5-tuple that expired and came back counts again).
    pub created: u64,
    pub restarted: u64,
    pub expired: u64,
    pub evicted: u64,
    /// False once the expired-key memory overflowed and `distinct` may over-count.
    pub distinct_exact: bool,
}

impl FlowTable {
    pub fn new(limits: FlowLimits) -> Self {
        FlowTable {
            flows: HashMap::default(),
            expired_keys: HashSet::default(),
            hasher: Default::default(),
            limits,
            last_sweep: PacketTime::default(),
            distinct: 0,
            created: 0,
            restarted: 0,
            expired: 0,
            evicted: 0,
            distinct_exact: true,
        }
    }

    /// Both endpoint addresses of every active flow (with repeats).
    pub fn endpoints(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.flows.keys().flat_map(|k| [k.a().0, k.b().0])
    }

    pub fn active(&self) -> usize {
        self.flows.len()
    }

    /// Accounts one packet.
    pub fn ingest(
        &mut self,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        proto: u8,
        wire_len: u32,
        tcp_flags: u8,
        now: PacketTime,
    ) {
        self.expire(now);
        let (key, forward) = FlowKey::new(src, dst, proto);
        if self.flows.len() >= self.limits.max_flows && !self.flows.contains_key(&key) {
            self.evict_one();
        }
        let idle = self.limits.idle.as_nanos() as u64;
        let f = match self.flows.entry(key) {
            Entry::Occupied(o) if now.0.saturating_sub(o.get().last_seen.0) > idle => {
                // Idle past the limit but not yet swept: it ended, and this packet starts
                // the 5-tuple's next record, exactly as if the sweep had run.
                self.expired += 1;
                self.created += 1;
                self.restarted += 1;
                let f = o.into_mut();
                *f = FlowStats {
                    first_seen: now,
                    last_seen: now,
                    ..Default::default()
                };
                f
            }
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                self.created += 1;
                if self.expired_keys.remove(&self.hasher.hash_one(key)) {
                    self.restarted += 1;
                } else {
                    self.distinct += 1;
                }
                v.insert(FlowStats {
                    first_seen: now,
                    last_seen: now,
                    ..Default::default()
                })
            }
        };
        f.last_seen = now.max(f.last_seen);
        f.tcp_flags |= tcp_flags;
        if forward {
            f.packets_ab += 1;
            f.bytes_ab += u64::from(wire_len);
        } else {
            f.packets_ba += 1;
            f.bytes_ba += u64::from(wire_len);
        }
    }

    fn remember_expired(&mut self, key: &FlowKey) {
        let max = self.limits.max_flows;
        self.distinct_exact &= remember(&mut self.expired_keys, &self.hasher, max, key);
    }

    /// Drops the least recently seen flow of a small sample (cheap, bounded work).
    fn evict_one(&mut self) {
        let victim = self
            .flows
            .iter()
            .take(16)
            .min_by_key(|(_, f)| f.last_seen)
            .map(|(k, _)| *k);
        if let Some(k) = victim {
            self.flows.remove(&k);
            self.remember_expired(&k);
            self.evicted += 1;
        }
    }

    /// Ends flows idle longer than the limit. Sweeps run every sixteenth of the idle limit
    /// (at least a second) of `now`, so a flow is counted expired at most that late; a
    /// packet of a flow idle past the limit ends it at once (see [`FlowTable::ingest`]).
    pub fn expire(&mut self, now: PacketTime) {
        let every = (self.limits.idle.as_nanos() as u64 / 16).max(PacketTime::NANOS_PER_SEC);
        if now.0 < self.last_sweep.0.saturating_add(every) {
            return;
        }
        self.last_sweep = now;
        let idle = self.limits.idle.as_nanos() as u64;
        let (expired_keys, hasher, max) = (&mut self.expired_keys, &self.hasher, self.limits.max_flows);
        let (mut expired, mut exact) = (0, true);
        self.flows.retain(|k, f| {
            let keep = now.0.saturating_sub(f.last_seen.0) <= idle;
            if !keep {
                expired += 1;
                exact &= remember(expired_keys, hasher, max, k);
            }
            keep
        });
        self.expired += expired;
        self.distinct_exact &= exact;
    }

    /// The `n` largest active flows by bytes (both directions), ties by key.
    pub fn top_by_bytes(&self, n: usize) -> Vec<(FlowKey, FlowStats)> {
        let mut v: Vec<(FlowKey, FlowStats)> = self.flows.iter().map(|(k, f)| (*k, *f)).collect();
        v.sort_by(|x, y| {
            (y.1.bytes_ab + y.1.bytes_ba)
                .cmp(&(x.1.bytes_ab + x.1.bytes_ba))
                .then_with(|| x.0.cmp(&y.0))
        });
        v.truncate(n);
        v
    }
}

/// Keeps the fingerprint of an ended flow's key while there is room (at most `max`);
/// false when there was none.
fn remember(
    expired_keys: &mut HashSet<u64, RandomState>,
    hasher: &RandomState,
    max: usize,
    key: &FlowKey,
) -> bool {
    if expired_keys.len() < max {
        expired_keys.insert(hasher.hash_one(key));
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[test]
    fn both_directions_are_one_flow_and_expiry_does_not_inflate_distinct() {
        let mut t = FlowTable::new(FlowLimits {
            max_flows: 10,
            idle: Duration::from_secs(60),
        });
        let s = PacketTime::from_secs;
        t.ingest((ip(1), 1000), (ip(2), 53), 17, 80, 0, s(1));
        t.ingest((ip(2), 53), (ip(1), 1000), 17, 120, 0, s(2));
        assert_eq!((t.distinct, t.active()), (1, 1));
        t.ingest((ip(1), 1000), (ip(2), 53), 17, 80, 0, s(500));
        assert_eq!((t.distinct, t.created, t.restarted, t.expired), (1, 2, 1, 1));
    }

    #[test]
    fn canonical_order_is_the_order_of_endpoints() {
        let eps: Vec<(IpAddr, u16)> = [
            "10.0.0.1",
            "10.0.0.2",
            "9.255.255.255",
            "::1",
            "::a00:1",
            "fe80::1",
            "2001:db8::1",
        ]
        .iter()
        .flat_map(|a| [(a.parse().unwrap(), 53), (a.parse().unwrap(), 40000)])
        .collect();
        for &x in &eps {
            for &y in &eps {
                let (key, forward) = FlowKey::new(x, y, 17);
                assert_eq!(forward, x <= y, "{x:?} {y:?}");
                assert_eq!(
                    (key.a(), key.b(), key.proto()),
                    if x <= y { (x, y, 17) } else { (y, x, 17) }
                );
            }
        }
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = FlowTable::new(FlowLimits {
            max_flows: 4,
            idle: Duration::from_secs(60),
        });
        for p in 0..10u16 {
            t.ingest((ip(1), p), (ip(2), 80), 6, 60, 0, PacketTime::from_secs(1));
        }
        assert_eq!(t.active(), 4);
        assert_eq!((t.evicted, t.distinct), (6, 10));
    }
}
