//! When a schedule runs, as instants: its time zone, and its expression
//! parsed for its type (a cron expression, an interval, one instant).
//!
//! The rule for civil times that a zone's daylight-saving change makes
//! ambiguous, for cron and one-time schedules alike:
//! - in a spring-forward **gap** (02:30 on a night that jumps from 02:00 to
//!   03:00) the time runs at the first instant after the gap (03:00), so
//!   it is never skipped;
//! - in a fall-back **fold** (01:30 happening twice) it runs once, at the
//!   first occurrence; [`next_after`] only ever returns instants
//!   after the last run, so the second occurrence never fires.
//!
//! The zone rules come from the IANA database compiled into alyx (jiff's
//! bundle), so a static binary in an empty container knows them without
//! `/usr/share/zoneinfo`, and every host runs the same rules.

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use super::cron::Cron;
use crate::quote::quote;

/// The shortest interval: one run a second.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// An IANA time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone { name: "UTC".into(), tz: TimeZone::UTC }
    }

    /// The zone named `name` (`Europe/Berlin`; any case), from the
    /// compiled-in database.
    pub fn parse(name: &str) -> Result<Zone, String> {
        match jiff::tz::db().get(name.trim()) {
            Ok(tz) => {
                let name = tz.iana_name().unwrap_or(name.trim()).to_string();
                Ok(Zone { name, tz })
            }
            Err(_) => Err(format!(
                "{} is not an IANA time zone (like UTC, Europe/Berlin or America/New_York)",
                quote(name)
            )),
        }
    }

    /// The zone's name as the database spells it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wall-clock time in this zone at `at`.
    fn civil(&self, at: Timestamp) -> DateTime {
        self.tz.to_datetime(at)
    }

    /// The instant of a civil time in this zone: the only one, the first
    /// instant after a gap it falls in, or the first of a fold's two.
    pub fn instant(&self, civil: DateTime) -> Option<Timestamp> {
        match self.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(civil).ok(),
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(civil).ok(),
            AmbiguousOffset::Gap { after, .. } => {
                // Read with the later offset, the civil time is an instant
                // before the gap; the transition that follows it ends the gap.
                let inside = after.to_timestamp(civil).ok()?;
                self.tz.following(inside).next().map(|transition| transition.timestamp())
            }
        }
    }

    /// `at` as RFC 3339 in this zone, with its offset:
    /// `2026-11-26T03:00:00+01:00` (fractions of a second only when there
    /// are some).
    pub fn format(&self, at: Timestamp) -> String {
        // By hand: jiff's strftime would add its whole formatter to the
        // binary for this one pattern.
        let offset = self.tz.to_offset(at).seconds();
        let local = at.to_zoned(self.tz.clone()).datetime();
        let (sign, offset) = if offset < 0 { ('-', -offset) } else { ('+', offset) };
        let fraction = match local.subsec_nanosecond() {
            0 => String::new(),
            nanos => format!(".{nanos:09}").trim_end_matches('0').to_string(),
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{sign}{:02}:{:02}",
            local.year(),
            local.month(),
            local.day(),
            local.hour(),
            local.minute(),
            local.second(),
            offset / 3600,
            offset / 60 % 60
        )
    }
}

/// `at` in UTC with milliseconds, `2026-11-26T02:00:00.000Z`: how the
/// state file and a last run's `started_at` write an instant, like
/// execution records (by `units`: jiff's printer would add its formatter
/// to the binary for this alone).
pub fn utc_millis(at: Timestamp) -> String {
    crate::units::format_rfc3339_millis(std::time::SystemTime::from(at))
}

/// A schedule's expression, parsed for its type.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    Cron(Cron),
    Interval(Duration),
    /// One instant (an RFC 3339 time with an offset, or a civil time read
    /// in the schedule's zone).
    Once(Timestamp),
}

impl When {
    pub fn cron(expression: &str) -> Result<When, String> {
        Cron::parse(expression).map(When::Cron).map_err(|e| format!("{}: {e}", quote(expression)))
    }

    pub fn interval(expression: &str) -> Result<When, String> {
        match crate::units::parse_duration(expression) {
            Ok(every) if every >= MIN_INTERVAL => Ok(When::Interval(every)),
            Ok(_) => Err(format!("{} is shorter than the shortest interval, 1s", quote(expression))),
            Err(_) => Err(format!("{} is not an interval like 30s, 5m or 1h", quote(expression))),
        }
    }

    /// `2026-12-01T09:00:00+01:00` (or `Z`) is that instant; a time without
    /// an offset (`2026-12-01T09:00`, `2026-12-01 09:00:00`) is read in
    /// `zone` by the gap and fold rule.
    pub fn once(expression: &str, zone: &Zone) -> Result<When, String> {
        let text = expression.trim();
        if let Ok(at) = text.parse::<Timestamp>() {
            return Ok(When::Once(at));
        }
        match text.parse::<DateTime>() {
            Ok(civil) => zone.instant(civil).map(When::Once).ok_or_else(|| out_of_range(text)),
            Err(_) => Err(format!(
                "{} is not a date-time (use RFC 3339 like 2026-12-01T09:00:00+01:00, or 2026-12-01T09:00 in the schedule's timezone)",
                quote(text)
            )),
        }
    }
}

/// The first time of `cron` strictly after `after`, in `zone`; `None`
/// when the expression has no more times.
pub fn next_after(cron: &Cron, zone: &Zone, after: Timestamp) -> Option<Timestamp> {
    let second = SignedDuration::from_secs(1);
    // Whole seconds strictly after `after`'s wall time.
    let wall = zone.civil(after);
    let mut from = wall.with().subsec_nanosecond(0).build().ok()?.checked_add(second).ok()?;
    loop {
        let civil = cron.next_from(from)?;
        let at = zone.instant(civil)?;
        // Only in a fold (a civil time already passed once) is `at`
        // not after `after`: its first occurrence has had its run.
        if at > after {
            return Some(at);
        }
        from = civil.checked_add(second).ok()?;
    }
}

fn out_of_range(text: &str) -> String {
    format!("{} is out of range", quote(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// The next `count` runs of `cron` in `zone` after `after`, as RFC 3339
    /// in the zone.
    fn runs(cron: &str, zone_name: &str, after: &str, count: usize) -> Vec<String> {
        let (cron, zone) = (Cron::parse(cron).unwrap(), zone(zone_name));
        let mut at = ts(after);
        let mut out = Vec::new();
        for _ in 0..count {
            at = next_after(&cron, &zone, at).expect("a next run");
            out.push(zone.format(at));
        }
        out
    }

    #[test]
    fn times_are_formatted_as_jiffs_formatter_would() {
        let instants = [
            "2026-11-26T02:00:00Z",
            "2026-03-29T01:00:00.012Z",
            "2026-07-01T12:34:56.000001Z",
            "1999-12-31T23:59:59.5Z",
            "2026-10-04T15:30:00Z",
        ];
        for name in ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"] {
            let zone = zone(name);
            for text in instants {
                let expected =
                    ts(text).to_zoned(zone.tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%.f%:z").to_string();
                assert_eq!(zone.format(ts(text)), expected, "{text} in {name}");
            }
        }
    }

    #[test]
    fn utc_millis_is_utc_with_three_decimals() {
        assert_eq!(utc_millis(ts("2026-11-26T03:00:00+01:00")), "2026-11-26T02:00:00.000Z");
        assert_eq!(utc_millis(ts("2026-11-26T02:00:00.0125Z")), "2026-11-26T02:00:00.012Z");
    }

    #[test]
    fn zones_are_iana_names_from_the_compiled_in_database() {
        assert_eq!(zone("europe/berlin").name(), "Europe/Berlin");
        assert_eq!(zone("UTC").name(), "UTC");
        assert_eq!(zone("Australia/Lord_Howe").name(), "Australia/Lord_Howe");
        assert_eq!(
            Zone::parse("Mars/Olympus").unwrap_err(),
            "\"Mars/Olympus\" is not an IANA time zone (like UTC, Europe/Berlin or America/New_York)"
        );
        assert!(Zone::parse("").is_err());
    }

    #[test]
    fn berlin_spring_forward_runs_gap_times_once_when_the_gap_ends() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST.
        assert_eq!(
            runs("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"]
        );
        // Every quarter hour: the gap's four times and 03:00 are one run.
        assert_eq!(
            runs("*/15 * * * *", "Europe/Berlin", "2026-03-29T00:40:00Z", 3),
            ["2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"]
        );
    }

    #[test]
    fn berlin_fall_back_runs_fold_times_once_at_the_first_occurrence() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:00-02:59 happen twice.
        assert_eq!(
            runs("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
        );
        assert_eq!(
            runs("0,30 * * * *", "Europe/Berlin", "2026-10-24T23:10:00Z", 4),
            [
                "2026-10-25T01:30:00+02:00",
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T03:00:00+01:00"
            ]
        );
        // Started during the second pass: the fold's times have had their run.
        assert_eq!(
            runs("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", 1),
            ["2026-10-26T02:30:00+01:00"]
        );
    }

    #[test]
    fn new_york_transitions() {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT.
        assert_eq!(
            runs("15 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:15:00-04:00"]
        );
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:00-01:59 twice.
        assert_eq!(
            runs("15 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T01:15:00-04:00", "2026-11-02T01:15:00-05:00"]
        );
        // Hourly through the fold: 01:00 runs once, the hour is not doubled.
        assert_eq!(
            runs("@hourly", "America/New_York", "2026-11-01T04:30:00Z", 3),
            ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"]
        );
    }

    #[test]
    fn lord_howe_moves_by_half_an_hour() {
        // 2026-10-04: 02:00 +10:30 becomes 02:30 +11:00.
        assert_eq!(
            runs("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", 2),
            ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"]
        );
        // 2026-04-05: 02:00 +11:00 becomes 01:30 +10:30; 01:30-01:59 twice.
        assert_eq!(
            runs("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z", 2),
            ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"]
        );
        assert_eq!(
            runs("*/20 * * * *", "Australia/Lord_Howe", "2026-04-04T14:30:00Z", 4),
            [
                "2026-04-05T01:40:00+11:00",
                "2026-04-05T02:00:00+10:30",
                "2026-04-05T02:20:00+10:30",
                "2026-04-05T02:40:00+10:30"
            ]
        );
    }

    #[test]
    fn a_civil_time_maps_to_an_instant_by_the_gap_and_fold_rule() {
        let berlin = zone("Europe/Berlin");
        let civil = |text: &str| text.parse::<DateTime>().unwrap();
        assert_eq!(berlin.instant(civil("2026-03-29T02:30")), Some(ts("2026-03-29T01:00:00Z")));
        assert_eq!(berlin.instant(civil("2026-10-25T02:30")), Some(ts("2026-10-25T00:30:00Z")));
        assert_eq!(berlin.instant(civil("2026-07-01T12:00")), Some(ts("2026-07-01T10:00:00Z")));
    }

    #[test]
    fn one_time_takes_an_offset_or_the_schedules_zone() {
        let berlin = zone("Europe/Berlin");
        let once = |text: &str| When::once(text, &berlin);
        assert_eq!(once("2026-12-01T09:00:00+01:00"), Ok(When::Once(ts("2026-12-01T08:00:00Z"))));
        assert_eq!(once("2026-12-01T09:00:00Z"), Ok(When::Once(ts("2026-12-01T09:00:00Z"))));
        assert_eq!(once("2026-12-01T09:00"), Ok(When::Once(ts("2026-12-01T08:00:00Z"))));
        assert_eq!(once("2026-12-01 09:00:00"), Ok(When::Once(ts("2026-12-01T08:00:00Z"))));
        assert_eq!(once("2026-03-29T02:30"), Ok(When::Once(ts("2026-03-29T01:00:00Z"))), "in the gap");
        assert!(once("next tuesday").unwrap_err().starts_with("\"next tuesday\" is not a date-time"));
    }

    #[test]
    fn intervals_are_durations_of_a_second_or_more() {
        assert_eq!(When::interval("30s"), Ok(When::Interval(Duration::from_secs(30))));
        assert_eq!(When::interval("1h"), Ok(When::Interval(Duration::from_secs(3600))));
        assert_eq!(
            When::interval("500ms").unwrap_err(),
            "\"500ms\" is shorter than the shortest interval, 1s"
        );
        assert_eq!(When::interval("often").unwrap_err(), "\"often\" is not an interval like 30s, 5m or 1h");
    }

    #[test]
    fn cron_runs_are_strictly_after_the_last_one_and_in_whole_seconds() {
        let (cron, utc) = (Cron::parse("* * * * * *").unwrap(), Zone::utc());
        assert_eq!(next_after(&cron, &utc, ts("2026-01-01T00:00:00Z")), Some(ts("2026-01-01T00:00:01Z")));
        assert_eq!(next_after(&cron, &utc, ts("2026-01-01T00:00:00.4Z")), Some(ts("2026-01-01T00:00:01Z")));
        assert_eq!(next_after(&cron, &utc, ts("2026-01-01T00:00:00.6Z")), Some(ts("2026-01-01T00:00:01Z")));
    }
}
