//! Scan schedules, kept simple: `"CIDR every DURATION"` (e.g. `192.168.1.0/24 every 6h`,
//! at least 10 minutes) or `"CIDR daily HH:MM"` (UTC, e.g. `10.0.20.0/24 daily 03:30`).
//! [`Schedule::due`] says whether a scan should start now given when it last started.

use crate::model::Timestamp;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    Every(Duration),
    /// Minutes after midnight UTC.
    Daily(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub target: ipnet::IpNet,
    pub when: When,
}

const MIN_INTERVAL: Duration = Duration::from_secs(600);
const DAY_MS: u64 = 86_400_000;

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let f: Vec<&str> = text.split_whitespace().collect();
        let example = "write e.g. \"192.168.1.0/24 every 6h\" or \"192.168.1.0/24 daily 03:30\"";
        let [target, kind, arg] = f.as_slice() else {
            return Err(format!("\"{text}\" is not a schedule; {example}"));
        };
        let target: ipnet::IpNet = target
            .parse()
            .or_else(|_| target.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| format!("\"{target}\" is not a CIDR; {example}"))?;
        let when = match *kind {
            "every" => {
                let d = humantime::parse_duration(arg).map_err(|e| format!("\"{arg}\": {e}; {example}"))?;
                if d < MIN_INTERVAL {
                    return Err(format!(
                        "\"{arg}\" is too often; scans may repeat every 10m at most"
                    ));
                }
                When::Every(d)
            }
            "daily" => {
                let (h, m) = arg
                    .split_once(':')
                    .and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)))
                    .filter(|(h, m)| *h < 24 && *m < 60)
                    .ok_or_else(|| format!("\"{arg}\" is not a time HH:MM (UTC); {example}"))?;
                When::Daily(h * 60 + m)
            }
            other => return Err(format!("\"{other}\" is neither every nor daily; {example}")),
        };
        Ok(Schedule { target, when })
    }

    /// Whether a scan is due at `now`, given when this schedule last started one. A
    /// schedule that never ran is due at its first slot (at once for `every`).
    pub fn due(&self, last_run: Option<Timestamp>, now: Timestamp) -> bool {
        match self.when {
            When::Every(d) => last_run.is_none_or(|l| now.since(l) >= d),
            When::Daily(minute) => {
                let today_slot = now.as_millis() / DAY_MS * DAY_MS + u64::from(minute) * 60_000;
                let slot = if now.as_millis() >= today_slot {
                    today_slot
                } else {
                    today_slot - DAY_MS
                };
                // Catch up on a missed slot only within an hour of it.
                let recent = now.as_millis() - slot < 3_600_000;
                recent && last_run.is_none_or(|l| l.as_millis() < slot)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let s = Schedule::parse("192.168.1.0/24 every 6h").unwrap();
        assert_eq!(s.when, When::Every(Duration::from_secs(6 * 3600)));
        assert_eq!(
            Schedule::parse("10.0.0.0/24 daily 03:30").unwrap().when,
            When::Daily(210)
        );
        for bad in [
            "",
            "10.0.0.0/24",
            "x every 6h",
            "10.0.0.0/24 every 1m",
            "10.0.0.0/24 daily 25:00",
            "10.0.0.0/24 weekly 1",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_is_due_after_the_interval() {
        let s = Schedule::parse("10.0.0.0/24 every 6h").unwrap();
        let t0 = Timestamp::from_secs(1_800_000_000);
        assert!(s.due(None, t0));
        assert!(!s.due(Some(t0), t0.saturating_add(Duration::from_secs(5 * 3600))));
        assert!(s.due(Some(t0), t0.saturating_add(Duration::from_secs(6 * 3600))));
    }

    #[test]
    fn daily_is_due_once_after_its_slot() {
        let s = Schedule::parse("10.0.0.0/24 daily 03:30").unwrap();
        // 1_800_000_000 s is 2027-01-15T08:00:00Z.
        let midnight = Timestamp(1_800_000_000_000 / DAY_MS * DAY_MS);
        let at = |h: u64, m: u64| midnight.saturating_add(Duration::from_secs(h * 3600 + m * 60));
        assert!(!s.due(None, at(3, 29)));
        assert!(s.due(None, at(3, 30)));
        assert!(s.due(Some(at(3, 29)), at(3, 45)));
        assert!(!s.due(Some(at(3, 31)), at(3, 45)), "already ran in this slot");
        assert!(
            !s.due(None, at(5, 0)),
            "a slot missed by over an hour waits for tomorrow"
        );
    }
}
