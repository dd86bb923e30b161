//! Who may send and how much, sans-IO: the sender allowlist and a per-sender token bucket.
//! The receivers ask [`Admission::admit`] for every message with the receive time.
//!
//! Must not: touch sockets or clocks.

use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;

/// Senders tracked at most; past this, buckets idle for a second or more are forgotten
/// first (a forgotten sender starts with a full bucket, which only errs towards accepting).
const MAX_TRACKED_SENDERS: usize = 4096;

/// Why a message was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotAllowed,
    RateLimited,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: u64,
}

/// The allowlist plus one token bucket per sender: `rate` messages per second, bursts of up
/// to `rate` messages.
#[derive(Debug)]
pub struct Admission {
    allowed: Vec<IpNet>,
    rate: u32,
    buckets: HashMap<IpAddr, Bucket>,
}

/// Maps `::ffff:a.b.c.d` (a v4 sender on a dual-stack socket) to `a.b.c.d`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl Admission {
    /// `rate` 0 means no limit. An empty allowlist allows nobody.
    pub fn new(allowed: Vec<IpNet>, rate: u32) -> Self {
        Admission {
            allowed,
            rate,
            buckets: HashMap::new(),
        }
    }

    pub fn is_allowed(&self, sender: IpAddr) -> bool {
        let sender = canonical(sender);
        self.allowed.iter().any(|n| n.contains(&sender))
    }

    /// Whether a message from `sender` at `now_ms` is accepted.
    pub fn admit(&mut self, sender: IpAddr, now_ms: u64) -> Result<(), Refusal> {
        if !self.is_allowed(sender) {
            return Err(Refusal::NotAllowed);
        }
        self.take(sender, now_ms, 1)
    }

    /// Takes `n` tokens for `sender` (allowlist not checked): a stream admits a whole read's
    /// worth of messages at once.
    pub fn take(&mut self, sender: IpAddr, now_ms: u64, n: u32) -> Result<(), Refusal> {
        if self.rate == 0 {
            return Ok(());
        }
        if self.buckets.len() >= MAX_TRACKED_SENDERS && !self.buckets.contains_key(&sender) {
            self.buckets
                .retain(|_, b| now_ms.saturating_sub(b.last_ms) < 1000);
            if self.buckets.len() >= MAX_TRACKED_SENDERS {
                self.buckets.clear();
            }
        }
        let rate = f64::from(self.rate);
        let b = self.buckets.entry(sender).or_insert(Bucket {
            tokens: rate,
            last_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(b.last_ms) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.last_ms = b.last_ms.max(now_ms);
        if b.tokens >= f64::from(n) {
            b.tokens -= f64::from(n);
            Ok(())
        } else {
            Err(Refusal::RateLimited)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allowlist_uses_cidrs_and_maps_v4_in_v6() {
        let a = Admission::new(vec!["192.168.0.0/16".parse().unwrap()], 0);
        assert!(a.is_allowed(ip("192.168.7.1")));
        assert!(a.is_allowed(ip("::ffff:192.168.7.1")));
        assert!(!a.is_allowed(ip("8.8.8.8")));
        assert!(!Admission::new(vec![], 0).is_allowed(ip("127.0.0.1")));
    }

    #[test]
    fn bucket_allows_rate_per_second_and_refills_with_time() {
        let mut a = Admission::new(vec!["0.0.0.0/0".parse().unwrap()], 10);
        let s = ip("10.0.0.1");
        for _ in 0..10 {
            assert_eq!(a.admit(s, 1_000), Ok(()));
        }
        assert_eq!(a.admit(s, 1_000), Err(Refusal::RateLimited));
        // Another sender has its own bucket.
        assert_eq!(a.admit(ip("10.0.0.2"), 1_000), Ok(()));
        // 500 ms later, 5 tokens are back.
        for _ in 0..5 {
            assert_eq!(a.admit(s, 1_500), Ok(()));
        }
        assert_eq!(a.admit(s, 1_500), Err(Refusal::RateLimited));
        assert_eq!(a.admit(ip("1.2.3.4"), 1_500), Ok(()));
        let mut closed = Admission::new(vec!["10.0.0.0/8".parse().unwrap()], 10);
        assert_eq!(closed.admit(ip("1.2.3.4"), 0), Err(Refusal::NotAllowed));
    }
}
