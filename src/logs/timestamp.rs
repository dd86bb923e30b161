//! Timestamp rules for syslog headers: the reference year for year-less BSD dates, the
//! default zone, and the timestamp shapes `syslog_loose` does not take (RFC 3339 without a
//! zone or with a space, OpenWrt `logread` ctime, impossible BSD dates to skip).
//!
//! Takes a reference, never reads the clock.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// How a year-less timestamp (`Jul  3 19:10:30`) gets its year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearRule {
    /// Always this year (reproducible output: `parse-log --year`).
    Fixed(i32),
    /// The receive time's year, or the year before when the date would be more than a day
    /// in the future (a December line received on January 1st).
    ReceivedAt(DateTime<Utc>),
}

/// What the parsers need to know that the line does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseContext {
    pub year: YearRule,
    /// Zone of timestamps that carry none (BSD dates, zone-less RFC 3339).
    pub default_offset: FixedOffset,
}

impl ParseContext {
    /// Year-less dates in `year`, zone-less ones in UTC.
    pub fn with_year(year: i32) -> Self {
        ParseContext {
            year: YearRule::Fixed(year),
            default_offset: utc(),
        }
    }

    /// Year-less dates relative to the receive time, zone-less ones in UTC.
    pub fn received_at(now: DateTime<Utc>) -> Self {
        ParseContext {
            year: YearRule::ReceivedAt(now),
            default_offset: utc(),
        }
    }

    /// The year for a year-less `month day hh:mm:ss`.
    pub fn year_for(&self, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> i32 {
        match self.year {
            YearRule::Fixed(y) => y,
            YearRule::ReceivedAt(now) => {
                let y = now.year();
                let candidate = NaiveDate::from_ymd_opt(y, month, day)
                    .and_then(|d| d.and_hms_opt(hour, minute, second))
                    .and_then(|t| self.default_offset.from_local_datetime(&t).earliest());
                match candidate {
                    Some(t) if t.with_timezone(&Utc) > now + Duration::days(1) => y - 1,
                    _ => y,
                }
            }
        }
    }

    fn naive_in_default_zone(&self, t: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
        self.default_offset.from_local_datetime(&t).earliest()
    }
}

pub fn utc() -> FixedOffset {
    chrono::Offset::fix(&Utc)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn month_number(s: &str) -> Option<u32> {
    let lower = s.to_ascii_lowercase();
    MONTHS.iter().position(|m| *m == lower).map(|i| i as u32 + 1)
}

/// A timestamp found at the start of a header by [`leading_timestamp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leading<'a> {
    /// `None` when the text has a timestamp's shape but is not a real date.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// The text after the timestamp and the spaces that follow it.
    pub rest: &'a str,
    /// True for OpenWrt `logread` lines (`Fri Nov  6 10:10:08 2020 daemon.info …`).
    pub logread: bool,
}

/// Recognises what `syslog_loose` leaves unparsed: RFC 3339 with a space or without a zone,
/// `logread` ctime dates, and BSD-shaped dates that are impossible (`Feb 30 25:61:61`).
pub fn leading_timestamp<'a>(s: &'a str, ctx: &ParseContext) -> Option<Leading<'a>> {
    iso(s, ctx).or_else(|| ctime(s, ctx)).or_else(|| bsd_shape(s))
}

fn skip_spaces(s: &str) -> &str {
    s.trim_start_matches(' ')
}

/// `YYYY-MM-DD[T ]hh:mm:ss[.frac][zone]`.
fn iso<'a>(s: &'a str, ctx: &ParseContext) -> Option<Leading<'a>> {
    let b = s.as_bytes();
    let date_shape = b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':';
    if !date_shape {
        return None;
    }
    // The token ends at the first space after the time part.
    let end = s[11..].find(' ').map_or(s.len(), |i| i + 11);
    let token = s.get(..end)?;
    let rest = skip_spaces(&s[end..]);
    let timestamp = DateTime::parse_from_rfc3339(token).ok().or_else(|| {
        let t = token.replacen(['t', ' '], "T", 1);
        NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .and_then(|n| ctx.naive_in_default_zone(n))
    });
    Some(Leading {
        timestamp,
        rest,
        logread: false,
    })
}

/// Splits off the next space-delimited word (after leading spaces).
fn word(s: &str) -> (&str, &str) {
    let s = skip_spaces(s);
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn hms(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split(':');
    let h = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let sec = it.next()?.parse().ok()?;
    if it.next().is_some() || s.len() != 8 {
        return None;
    }
    Some((h, m, sec))
}

/// `Www Mmm dd hh:mm:ss yyyy` followed by `facility.level` (OpenWrt `logread`).
fn ctime<'a>(s: &'a str, ctx: &ParseContext) -> Option<Leading<'a>> {
    let (wd, r) = word(s);
    if !WEEKDAYS.contains(&wd.to_ascii_lowercase().as_str()) {
        return None;
    }
    let (mon, r) = word(r);
    let month = month_number(mon)?;
    let (day, r) = word(r);
    let day: u32 = day.parse().ok()?;
    let (time, r) = word(r);
    let (h, m, sec) = hms(time)?;
    let (year, r) = word(r);
    let year: i32 = year.parse().ok()?;
    let timestamp = NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(h, m, sec))
        .and_then(|t| ctx.naive_in_default_zone(t));
    Some(Leading {
        timestamp,
        rest: skip_spaces(r),
        logread: true,
    })
}

/// `Mmm dd hh:mm:ss` whose numbers are not a date `syslog_loose` accepts: skipped, no time.
fn bsd_shape(s: &str) -> Option<Leading<'_>> {
    let (mon, r) = word(s);
    month_number(mon)?;
    let (day, r) = word(r);
    if day.is_empty() || day.len() > 2 || !day.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (time, r) = word(r);
    let t = time.strip_suffix(':').unwrap_or(time);
    let shape = t.len() == 8
        && t.bytes().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape {
        return None;
    }
    Some(Leading {
        timestamp: None,
        rest: skip_spaces(r),
        logread: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_rule_received_at_rolls_back_for_future_dates() {
        let now = Utc.with_ymd_and_hms(2027, 1, 1, 0, 10, 0).unwrap();
        let ctx = ParseContext::received_at(now);
        assert_eq!(ctx.year_for(12, 31, 23, 59, 0), 2026);
        assert_eq!(ctx.year_for(1, 1, 0, 5, 0), 2027);
        assert_eq!(ParseContext::with_year(2026).year_for(12, 31, 0, 0, 0), 2026);
    }

    #[test]
    fn shapes_syslog_loose_leaves() {
        let ctx = ParseContext::with_year(2026);
        let l = leading_timestamp("2006-11-10T10:43:21.15600000000 bzorp x", &ctx).unwrap();
        assert_eq!(l.timestamp.unwrap().to_rfc3339(), "2006-11-10T10:43:21.156+00:00");
        assert_eq!(l.rest, "bzorp x");
        let l = leading_timestamp("2006-10-29 02:00:00.156+01:00", &ctx).unwrap();
        assert_eq!(l.timestamp.unwrap().to_rfc3339(), "2006-10-29T02:00:00.156+01:00");
        let l = leading_timestamp("Fri Nov  6 10:10:08 2020 daemon.info x[1]: y", &ctx).unwrap();
        assert!(l.logread);
        assert_eq!(l.rest, "daemon.info x[1]: y");
        let l = leading_timestamp("Feb 30 25:61:61 host app: m", &ctx).unwrap();
        assert_eq!((l.timestamp, l.rest), (None, "host app: m"));
        assert_eq!(leading_timestamp("complete and utter gobbledegook", &ctx), None);
    }
}
