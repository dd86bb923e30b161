//! Traffic history in the store: the writer thread (closed windows in batches, one write
//! transaction per batch), the hourly roll-up and retention (`now` passed in), and the
//! range reads behind the API.
//!
//! Hours are merged from minutes once the hour is older than `rollup_after`; a minute is
//! marked `rolled_up` when it went into its hour, so a late minute (a replayed file with old
//! timestamps) is added to its hour later instead of being lost. Minutes are deleted after
//! `minute_retention` (always longer than `rollup_after`, so only rolled-up minutes go) and
//! whole hours at a time, so a range read can take hours before the oldest stored minute's
//! hour and minutes after it without counting anything twice.

use super::TrafficHub;
use crate::config::TrafficSettings;
use crate::model::{Timestamp, TrafficSummary};
use crate::store::{Store, StoreError, TimeKey};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const HOUR_MS: u64 = 3_600_000;
const BATCH: usize = 256;
/// How often the roll-up and retention run.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// Minute records read per roll-up pass (about four days of one interface).
const ROLLUP_SCAN: usize = 6_000;

fn floor_hour(ms: u64) -> u64 {
    ms - ms % HOUR_MS
}

/// Receives closed windows until every sender is gone, writing them in batches, and runs
/// the roll-up and retention every minute.
pub fn run_writer(
    rx: Receiver<TrafficSummary>,
    store: &Store,
    settings: &TrafficSettings,
    hub: &TrafficHub,
    stop: &AtomicBool,
    clock: fn() -> Timestamp,
) {
    let mut last_maintenance: Option<Instant> = None;
    loop {
        let mut batch = Vec::new();
        let disconnected = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(s) => {
                batch.push(s);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            match write_minutes(store, &batch) {
                Ok(()) => {
                    hub.summaries_written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    hub.store_errors.fetch_add(1, Ordering::Relaxed);
                    hub.summaries_dropped
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    tracing::warn!(error = %e, windows = batch.len(), "cannot store traffic summaries");
                }
            }
        }
        if disconnected {
            // No capture (anymore): keep applying retention to what is stored until stop.
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if last_maintenance.is_none_or(|t| t.elapsed() >= MAINTENANCE_EVERY) {
            last_maintenance = Some(Instant::now());
            if let Err(e) = maintain(store, settings, clock()) {
                hub.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "traffic roll-up or retention failed");
            }
        }
    }
}

/// Appends closed windows, keyed by their start, in one transaction.
pub fn write_minutes(store: &Store, batch: &[TrafficSummary]) -> Result<(), StoreError> {
    let minutes = store.tables().traffic_minutes;
    store.write(|txn| {
        for s in batch {
            minutes.append(txn, Timestamp(s.start_ms), s)?;
        }
        Ok(())
    })
}

/// What a maintenance pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    pub minutes_rolled: u64,
    pub hours_written: u64,
    pub minutes_pruned: u64,
    pub hours_pruned: u64,
}

/// Rolls minutes older than `rollup_after` into hours, then applies both retentions.
pub fn maintain(store: &Store, s: &TrafficSettings, now: Timestamp) -> Result<Maintenance, StoreError> {
    let mut m = rollup(
        store,
        now.as_millis().saturating_sub(s.rollup_after.as_millis() as u64),
    )?;
    let t = store.tables();
    let minute_cutoff = floor_hour(
        now.as_millis()
            .saturating_sub(s.minute_retention.as_millis() as u64),
    );
    let hour_cutoff = floor_hour(
        now.as_millis()
            .saturating_sub(s.hour_retention.as_millis() as u64),
    );
    m.minutes_pruned = store.prune_before(&t.traffic_minutes, Timestamp(minute_cutoff), 1000)?;
    m.hours_pruned = store.prune_before(&t.traffic_hours, Timestamp(hour_cutoff), 1000)?;
    Ok(m)
}

/// Merges every minute not rolled up yet whose hour ended before `cutoff_ms` into that
/// hour's record.
pub fn rollup(store: &Store, cutoff_ms: u64) -> Result<Maintenance, StoreError> {
    let t = store.tables();
    let end = TimeKey {
        at: Timestamp(floor_hour(cutoff_ms)),
        seq: 0,
    };
    let start = TimeKey {
        at: Timestamp(0),
        seq: 0,
    };
    store.write(|txn| {
        let minutes = t.traffic_minutes.range(txn, &start, &end, ROLLUP_SCAN)?;
        let mut m = Maintenance::default();
        let mut hours: Vec<(u64, TrafficSummary)> = Vec::new();
        for (key, mut minute) in minutes {
            if minute.rolled_up {
                continue;
            }
            let hour = floor_hour(minute.start_ms);
            match hours.last_mut() {
                Some((h, acc)) if *h == hour => acc.merge(&minute),
                _ => {
                    let mut acc = TrafficSummary::default();
                    acc.merge(&minute);
                    hours.push((hour, acc));
                }
            }
            minute.rolled_up = true;
            t.traffic_minutes.put(txn, &key, &minute)?;
            m.minutes_rolled += 1;
        }
        for (hour, add) in hours {
            let key = TimeKey {
                at: Timestamp(hour),
                seq: 0,
            };
            let mut rec = t.traffic_hours.get(txn, &key)?.unwrap_or_default();
            rec.merge(&add);
            rec.start_ms = hour;
            rec.end_ms = hour + HOUR_MS;
            rec.rolled_up = false;
            t.traffic_hours.put(txn, &key, &rec)?;
            m.hours_written += 1;
        }
        Ok(m)
    })
}

/// Stored summaries overlapping `[from_ms, to_ms)`: hours before the hour of the oldest
/// stored minute, minutes from there on. At most `limit` records.
pub fn read_range(
    store: &Store,
    from_ms: u64,
    to_ms: u64,
    limit: usize,
) -> Result<Vec<TrafficSummary>, StoreError> {
    let t = store.tables();
    store.read(|txn| {
        let oldest_minute = t.traffic_minutes.range(
            txn,
            &TimeKey {
                at: Timestamp(0),
                seq: 0,
            },
            &TimeKey {
                at: Timestamp(u64::MAX),
                seq: 0,
            },
            1,
        )?;
        let boundary = oldest_minute
            .first()
            .map(|(k, _)| floor_hour(k.at.as_millis()))
            .unwrap_or(u64::MAX);
        let key = |ms: u64| TimeKey {
            at: Timestamp(ms),
            seq: 0,
        };
        let mut out = Vec::new();
        let hours_to = to_ms.min(boundary);
        if from_ms < hours_to {
            // An hour record starting before `from` still overlaps it.
            let from = floor_hour(from_ms);
            out.extend(
                t.traffic_hours
                    .range(txn, &key(from), &key(hours_to), limit)?
                    .into_iter()
                    .map(|(_, v)| v),
            );
        }
        let minutes_from = from_ms.max(boundary);
        if minutes_from < to_ms && out.len() < limit {
            let rest = limit - out.len();
            out.extend(
                t.traffic_minutes
                    .range(txn, &key(minutes_from), &key(to_ms), rest)?
                    .into_iter()
                    .map(|(_, v)| v),
            );
        }
        Ok(out)
    })
}

/// Stored hours overlapping `[from_ms, to_ms)`, for long charts.
pub fn read_hours(
    store: &Store,
    from_ms: u64,
    to_ms: u64,
    limit: usize,
) -> Result<Vec<TrafficSummary>, StoreError> {
    let t = store.tables();
    let key = |ms: u64| TimeKey {
        at: Timestamp(ms),
        seq: 0,
    };
    store.read(|txn| {
        Ok(t.traffic_hours
            .range(txn, &key(floor_hour(from_ms)), &key(to_ms), limit)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TrafficCounters;

    fn minute(start_ms: u64, source: &str, packets: u64) -> TrafficSummary {
        TrafficSummary {
            start_ms,
            end_ms: start_ms + 60_000,
            source: source.into(),
            windows: 1,
            counters: TrafficCounters {
                packets,
                bytes: packets * 100,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn total(v: &[TrafficSummary]) -> u64 {
        v.iter().map(|s| s.counters.packets).sum()
    }

    #[test]
    fn minutes_roll_up_into_hours_and_expire_without_double_counting() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let settings = TrafficSettings::default(); // rollup 2 h, minutes 2 d, hours 90 d
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS;
        // Three hours of minutes on two interfaces: 1 + 2 packets per minute.
        let mut batch = Vec::new();
        for m in 0..180u64 {
            batch.push(minute(t0 + m * 60_000, "eth0", 1));
            batch.push(minute(t0 + m * 60_000, "eth1", 2));
        }
        write_minutes(&store, &batch).unwrap();
        let all = read_range(&store, t0, t0 + 3 * HOUR_MS, 10_000).unwrap();
        assert_eq!(total(&all), 540);

        // Two and a half hours later only the first hour is older than rollup_after.
        let now = Timestamp(t0 + 3 * HOUR_MS + HOUR_MS / 2);
        let m = maintain(&store, &settings, now).unwrap();
        assert_eq!((m.minutes_rolled, m.hours_written, m.minutes_pruned), (120, 1, 0));
        // Again: nothing new to roll.
        assert_eq!(maintain(&store, &settings, now).unwrap().minutes_rolled, 0);
        let hours = read_hours(&store, t0, t0 + 3 * HOUR_MS, 10).unwrap();
        assert_eq!(hours.len(), 1);
        assert_eq!(
            (
                hours[0].counters.packets,
                hours[0].windows,
                hours[0].source.as_str()
            ),
            (180, 120, "all")
        );
        assert_eq!(
            total(&read_range(&store, t0, t0 + 3 * HOUR_MS, 10_000).unwrap()),
            540
        );

        // A late minute for the rolled hour is added to it on the next pass.
        write_minutes(&store, &[minute(t0 + 5 * 60_000, "eth0", 7)]).unwrap();
        assert_eq!(maintain(&store, &settings, now).unwrap().minutes_rolled, 1);
        assert_eq!(
            read_hours(&store, t0, t0 + HOUR_MS, 10).unwrap()[0]
                .counters
                .packets,
            187
        );

        // Three days on: every minute is rolled, then pruned; the hours answer the range.
        let later = Timestamp(t0 + 3 * 86_400_000);
        let m = maintain(&store, &settings, later).unwrap();
        assert_eq!(
            (m.minutes_rolled, m.minutes_pruned, m.hours_pruned),
            (240, 361, 0)
        );
        let hours = read_range(&store, t0, t0 + 3 * HOUR_MS, 10_000).unwrap();
        assert_eq!((hours.len(), total(&hours)), (3, 547));

        // Past the hour retention everything is gone.
        let m = maintain(&store, &settings, Timestamp(t0 + 91 * 86_400_000)).unwrap();
        assert_eq!(m.hours_pruned, 3);
        assert!(read_range(&store, 0, u64::MAX, 10).unwrap().is_empty());
    }

    #[test]
    fn a_range_uses_hours_before_the_oldest_minute_and_minutes_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS;
        let batch: Vec<_> = (0..120u64).map(|m| minute(t0 + m * 60_000, "eth0", 1)).collect();
        write_minutes(&store, &batch).unwrap();
        rollup(&store, t0 + 2 * HOUR_MS).unwrap();
        // Drop the first hour's minutes as retention would.
        store
            .prune_before(&store.tables().traffic_minutes, Timestamp(t0 + HOUR_MS), 100)
            .unwrap();
        let r = read_range(&store, t0, t0 + 2 * HOUR_MS, 1000).unwrap();
        assert_eq!(total(&r), 120);
        assert_eq!(r.iter().filter(|s| s.windows == 60).count(), 1, "one hour record");
        // A range inside the second hour reads minutes only.
        let r = read_range(&store, t0 + HOUR_MS + 600_000, t0 + HOUR_MS + 1_200_000, 1000).unwrap();
        assert_eq!(total(&r), 10);
    }
}
