//! Login lockout: after `threshold` failures within `window`, an account or a source address
//! is locked for `duration`. Sans-IO: every call takes `now`. Memory is bounded.

use crate::model::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// What a failure counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LockKey {
    Account(String),
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Timestamp,
    locked_until: Option<Timestamp>,
}

/// Tracks failed logins per account and per address.
#[derive(Debug)]
pub struct Lockout {
    threshold: u32,
    duration: Duration,
    entries: HashMap<LockKey, Failures>,
}

/// Keys kept at most; past this, expired entries are dropped, then the oldest.
const MAX_ENTRIES: usize = 10_000;

impl Lockout {
    pub fn new(threshold: u32, duration: Duration) -> Self {
        Lockout {
            threshold: threshold.max(1),
            duration,
            entries: HashMap::new(),
        }
    }

    /// Time left on the lock of `key`, if it is locked at `now`.
    pub fn locked_for(&self, key: &LockKey, now: Timestamp) -> Option<Duration> {
        let until = self.entries.get(key)?.locked_until?;
        (until > now).then(|| until.since(now))
    }

    /// Counts a failure; returns true when this failure locks the key.
    pub fn record_failure(&mut self, key: LockKey, now: Timestamp) -> bool {
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&key) {
            self.evict(now);
        }
        let window = self.duration;
        let entry = self.entries.entry(key).or_insert(Failures {
            count: 0,
            first: now,
            locked_until: None,
        });
        // Failures older than one lockout period no longer count, and an expired lock restarts.
        let expired_lock = entry.locked_until.is_some_and(|u| u <= now);
        if expired_lock || now.since(entry.first) > window {
            *entry = Failures {
                count: 0,
                first: now,
                locked_until: None,
            };
        }
        entry.count += 1;
        if entry.count >= self.threshold && entry.locked_until.is_none() {
            entry.locked_until = Some(now.saturating_add(self.duration));
            return true;
        }
        false
    }

    /// A successful login clears the account's failures (not the address's: one good
    /// password must not reset an address that is guessing other accounts).
    pub fn record_success(&mut self, key: &LockKey) {
        self.entries.remove(key);
    }

    /// Number of keys locked at `now`, for metrics.
    pub fn locked_count(&self, now: Timestamp) -> usize {
        self.entries
            .values()
            .filter(|f| f.locked_until.is_some_and(|u| u > now))
            .count()
    }

    fn evict(&mut self, now: Timestamp) {
        let window = self.duration;
        self.entries.retain(|_, f| match f.locked_until {
            Some(u) => u > now,
            None => now.since(f.first) <= window,
        });
        while self.entries.len() >= MAX_ENTRIES {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, f)| f.first)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    #[test]
    fn locks_after_threshold_and_unlocks_after_duration() {
        let mut l = Lockout::new(5, Duration::from_secs(15 * 60));
        let key = LockKey::Account("alice".into());
        let t0 = Timestamp(1_000_000);
        for i in 0..4 {
            assert!(!l.record_failure(key.clone(), Timestamp(t0.0 + i)));
            assert_eq!(l.locked_for(&key, Timestamp(t0.0 + i)), None);
        }
        assert!(l.record_failure(key.clone(), Timestamp(t0.0 + 5)));
        let left = l.locked_for(&key, Timestamp(t0.0 + 5)).unwrap();
        assert_eq!(left, Duration::from_secs(15 * 60));
        assert!(l.locked_for(&key, Timestamp(t0.0 + 14 * MIN)).is_some());
        assert_eq!(l.locked_for(&key, Timestamp(t0.0 + 5 + 15 * MIN)), None);
        // After the lock expires, one failure does not lock again.
        assert!(!l.record_failure(key.clone(), Timestamp(t0.0 + 16 * MIN)));
        assert_eq!(l.locked_for(&key, Timestamp(t0.0 + 16 * MIN)), None);
    }

    #[test]
    fn keys_are_independent_and_success_clears() {
        let mut l = Lockout::new(2, Duration::from_secs(60));
        let a = LockKey::Account("a".into());
        let ip = LockKey::Addr("127.0.0.9".parse().unwrap());
        let now = Timestamp(10);
        l.record_failure(a.clone(), now);
        l.record_success(&a);
        assert!(!l.record_failure(a.clone(), now));
        assert!(!l.record_failure(ip.clone(), now));
        assert!(l.record_failure(ip.clone(), now));
        assert!(l.locked_for(&a, now).is_none());
        assert!(l.locked_for(&ip, now).is_some());
    }

    #[test]
    fn slow_failures_outside_window_do_not_accumulate() {
        let mut l = Lockout::new(3, Duration::from_secs(60));
        let k = LockKey::Account("x".into());
        for i in 0..10 {
            assert!(!l.record_failure(k.clone(), Timestamp(i * 61_000)));
        }
    }

    #[test]
    fn memory_is_bounded() {
        let mut l = Lockout::new(5, Duration::from_secs(60));
        for i in 0..(MAX_ENTRIES as u32 + 500) {
            l.record_failure(LockKey::Addr(IpAddr::from(i.to_be_bytes())), Timestamp(1));
        }
        assert!(l.entries.len() <= MAX_ENTRIES);
    }
}
