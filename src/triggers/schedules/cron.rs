//! Cron expressions: parsing, and the next civil date-time that matches.
//!
//! Five fields (minute hour day-of-month month weekday), or six with
//! seconds first; each a `*`, a number, a name (`JAN`-`DEC`, `SUN`-`SAT`,
//! any case), a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (from `a` to
//! the end), or a comma list of these. Weekday 0 and 7 are Sunday. The
//! descriptors `@yearly @annually @monthly @weekly @daily @midnight @hourly`
//! stand for their five fields.
//!
//! Days follow Vixie cron, which most crontabs assume: when both the
//! day-of-month and the weekday are restricted (neither starts with `*`), a
//! day matches if either does (`0 0 1 * MON`: the 1st, and every Monday);
//! otherwise both must.
//!
//! Only civil times here (a calendar and a clock, no zone): which instant a
//! civil time is, across daylight-saving gaps and folds, is `when.rs`'s job.
//! The search jumps field by field (a month, a day, an hour at a time), so
//! even a yearly expression is found in a few dozen steps.

use std::fmt;

use jiff::civil::{Date, DateTime};

/// A parsed cron expression: the allowed values of each field as bit sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    /// Bits 1 to 31.
    days: u64,
    /// Bits 1 to 12.
    months: u64,
    /// Bits 0 (Sunday) to 6.
    weekdays: u64,
    /// Both day fields are restricted: a day matches if either does.
    either_day: bool,
}

/// Why an expression is not a cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CronError {
    /// Not 5 or 6 fields.
    FieldCount(usize),
    /// An `@` word that is not one of the descriptors.
    UnknownDescriptor(String),
    /// One field is wrong.
    Field { field: &'static str, text: String, why: FieldError },
    /// Valid fields, but no date ever has them (`0 0 31 2 *`).
    NeverMatches,
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FieldError {
    Empty,
    NotANumber(String),
    OutOfRange { value: u32, min: u32, max: u32 },
    Backwards { from: u32, to: u32 },
    ZeroStep,
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CronError::FieldCount(n) => write!(
                f,
                "has {n} fields; a cron expression has 5 (minute hour day month weekday) or 6 (seconds first)"
            ),
            CronError::UnknownDescriptor(word) => write!(
                f,
                "{} is not a descriptor (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)",
                crate::quote::quote(word)
            ),
            CronError::Field { field, text, why } => {
                write!(f, "the {field} field {}: {why}", crate::quote::quote(text))
            }
            CronError::NeverMatches => write!(f, "no date has this day and month; it would never run"),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::Empty => write!(f, "an empty item"),
            FieldError::NotANumber(item) => {
                write!(f, "{} is not a number or a name", crate::quote::quote(item))
            }
            FieldError::OutOfRange { value, min, max } => write!(f, "{value} is outside {min}-{max}"),
            FieldError::Backwards { from, to } => write!(f, "the range {from}-{to} goes backwards"),
            FieldError::ZeroStep => write!(f, "a step of 0"),
        }
    }
}

/// One field's name, bounds and names.
struct Spec {
    field: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: Spec = Spec { field: "second", min: 0, max: 59, names: &[] };
const MINUTE: Spec = Spec { field: "minute", min: 0, max: 59, names: &[] };
const HOUR: Spec = Spec { field: "hour", min: 0, max: 23, names: &[] };
const DAY: Spec = Spec { field: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: Spec = Spec {
    field: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
/// 0-7, 7 being Sunday again; names from `SUN` = 0.
const WEEKDAY: Spec =
    Spec { field: "weekday", min: 0, max: 7, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] };

/// How far ahead [`Cron::next_from`] looks: every day-and-month that
/// parsing accepts occurs within 9 years (a 29 February can be 8 apart).
const SEARCH_YEARS: i16 = 9;

impl Cron {
    pub(super) fn parse(expression: &str) -> Result<Cron, CronError> {
        let text = expression.trim();
        let expanded = match text.strip_prefix('@') {
            Some(word) => descriptor(word)?.to_string(),
            None => text.to_string(),
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => return Err(CronError::FieldCount(n)),
        };
        let cron = Cron {
            seconds: parse_field(seconds, &SECOND)?,
            minutes: parse_field(rest[0], &MINUTE)?,
            hours: parse_field(rest[1], &HOUR)?,
            days: parse_field(rest[2], &DAY)?,
            months: parse_field(rest[3], &MONTH)?,
            weekdays: fold_sunday(parse_field(rest[4], &WEEKDAY)?),
            either_day: !rest[2].starts_with('*') && !rest[4].starts_with('*'),
        };
        if !cron.some_day_exists() {
            return Err(CronError::NeverMatches);
        }
        Ok(cron)
    }

    /// The first civil time at or after `start` (whole seconds) that
    /// matches; `None` when none does within [`SEARCH_YEARS`] (or before
    /// the year 9999).
    pub fn next_from(&self, start: DateTime) -> Option<DateTime> {
        let last_year = start.year().saturating_add(SEARCH_YEARS).min(9999);
        let mut t = Civil::of(start);
        while t.year <= last_year {
            if let Some(found) = self.step(&mut t) {
                return Some(found);
            }
        }
        None
    }

    /// One step of the search: the match at `t`, or `t` moved past what
    /// cannot match (the smallest field that fails, the smaller ones reset).
    fn step(&self, t: &mut Civil) -> Option<DateTime> {
        match next_bit(self.months, t.month) {
            None => return t.next_year(),
            Some(month) if month != t.month => return t.set_month(month),
            Some(_) => {}
        }
        if t.day > days_in_month(t.year, t.month) {
            return t.set_month(t.month + 1);
        }
        if !self.day_matches(t.year, t.month, t.day) {
            return t.next_day();
        }
        match next_bit(self.hours, t.hour) {
            None => return t.next_day(),
            Some(hour) if hour != t.hour => return t.set_hour(hour),
            Some(_) => {}
        }
        match next_bit(self.minutes, t.minute) {
            None => return t.set_hour(t.hour + 1),
            Some(minute) if minute != t.minute => return t.set_minute(minute),
            Some(_) => {}
        }
        match next_bit(self.seconds, t.second) {
            None => t.set_minute(t.minute + 1),
            Some(second) => DateTime::new(
                t.year,
                t.month as i8,
                t.day as i8,
                t.hour as i8,
                t.minute as i8,
                second as i8,
                0,
            )
            .ok(),
        }
    }

    fn day_matches(&self, year: i16, month: u32, day: u32) -> bool {
        let by_date = bit(self.days, day);
        let weekday = Date::new(year, month as i8, day as i8)
            .map(|d| d.weekday().to_sunday_zero_offset() as u32)
            .unwrap_or(0);
        let by_weekday = bit(self.weekdays, weekday);
        if self.either_day { by_date || by_weekday } else { by_date && by_weekday }
    }

    /// Whether some allowed month has some allowed day (29 February
    /// counts); with a weekday to match as well, every month has one.
    fn some_day_exists(&self) -> bool {
        if self.either_day {
            return true;
        }
        (1..=12u32)
            .filter(|m| bit(self.months, *m))
            .any(|m| (1..=days_in_month(2000, m)).any(|d| bit(self.days, d)))
    }
}

/// The fields a descriptor stands for.
fn descriptor(word: &str) -> Result<&'static str, CronError> {
    Ok(match word.to_ascii_lowercase().as_str() {
        "yearly" | "annually" => "0 0 1 1 *",
        "monthly" => "0 0 1 * *",
        "weekly" => "0 0 * * 0",
        "daily" | "midnight" => "0 0 * * *",
        "hourly" => "0 * * * *",
        _ => return Err(CronError::UnknownDescriptor(format!("@{word}"))),
    })
}

/// A field's allowed values as bits: a comma list of items.
fn parse_field(text: &str, spec: &Spec) -> Result<u64, CronError> {
    let wrong = |why| CronError::Field { field: spec.field, text: text.to_string(), why };
    text.split(',').try_fold(0u64, |bits, item| Ok(bits | parse_item(item, spec).map_err(wrong)?))
}

/// `*`, `n`, `a-b`, each with an optional `/step`.
fn parse_item(item: &str, spec: &Spec) -> Result<u64, FieldError> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(number(step, 0, u32::MAX)?)),
        None => (item, None),
    };
    if step == Some(0) {
        return Err(FieldError::ZeroStep);
    }
    let (from, to) = match range.split_once('-') {
        _ if range == "*" => (spec.min, spec.max),
        Some((a, b)) => (value(a, spec)?, value(b, spec)?),
        // `a/n` runs from a to the end; a lone `a` is just a.
        None => {
            let from = value(range, spec)?;
            (from, if step.is_some() { spec.max } else { from })
        }
    };
    if from > to {
        return Err(FieldError::Backwards { from, to });
    }
    let step = step.unwrap_or(1) as usize;
    Ok((from..=to).step_by(step).fold(0, |bits, v| bits | 1 << v))
}

/// A value of the field: a number in its range, or one of its names.
fn value(text: &str, spec: &Spec) -> Result<u32, FieldError> {
    let upper = text.to_ascii_uppercase();
    match spec.names.iter().position(|name| *name == upper) {
        // Names count from the field's first value (JAN = 1, SUN = 0).
        Some(i) => Ok(i as u32 + spec.min),
        None => number(text, spec.min, spec.max),
    }
}

fn number(text: &str, min: u32, max: u32) -> Result<u32, FieldError> {
    if text.is_empty() {
        return Err(FieldError::Empty);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::NotANumber(text.to_string()));
    }
    match text.parse::<u32>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        Ok(value) => Err(FieldError::OutOfRange { value, min, max }),
        Err(_) => Err(FieldError::OutOfRange { value: u32::MAX, min, max }),
    }
}

/// Weekday 7 is Sunday, bit 0.
fn fold_sunday(bits: u64) -> u64 {
    (bits | (bits >> 7 & 1)) & 0x7f
}

fn bit(bits: u64, value: u32) -> bool {
    value < 64 && bits >> value & 1 == 1
}

/// The smallest allowed value at or above `from`.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let above = bits >> from << from;
    (above != 0).then(|| above.trailing_zeros())
}

fn days_in_month(year: i16, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// A civil time being searched: fields may run one past their end (hour
/// 24, month 13), which the next step carries into the field above.
struct Civil {
    year: i16,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Civil {
    fn of(t: DateTime) -> Civil {
        Civil {
            year: t.year(),
            month: t.month() as u32,
            day: t.day() as u32,
            hour: t.hour() as u32,
            minute: t.minute() as u32,
            second: t.second() as u32,
        }
    }

    /// Each setter moves forward to the start of the new value and returns
    /// `None`, so the search goes on from there.
    fn next_year(&mut self) -> Option<DateTime> {
        self.year += 1;
        self.set_month(1)
    }

    fn set_month(&mut self, month: u32) -> Option<DateTime> {
        (self.month, self.day) = (month, 1);
        self.set_hour(0)
    }

    fn next_day(&mut self) -> Option<DateTime> {
        self.day += 1;
        self.set_hour(0)
    }

    fn set_hour(&mut self, hour: u32) -> Option<DateTime> {
        if hour > 23 {
            return self.next_day();
        }
        self.hour = hour;
        self.set_minute(0)
    }

    fn set_minute(&mut self, minute: u32) -> Option<DateTime> {
        if minute > 59 {
            return self.set_hour(self.hour + 1);
        }
        (self.minute, self.second) = (minute, 0);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[track_caller]
    fn cron(text: &str) -> Cron {
        Cron::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[track_caller]
    fn error(text: &str) -> String {
        Cron::parse(text).unwrap_err().to_string()
    }

    /// The next `count` matches from `start`, each searched from one second
    /// after the last.
    fn matches(text: &str, start: DateTime, count: usize) -> Vec<String> {
        let cron = cron(text);
        let mut from = start;
        let mut out = Vec::new();
        for _ in 0..count {
            let Some(found) = cron.next_from(from) else { break };
            out.push(found.strftime("%Y-%m-%d %a %H:%M:%S").to_string());
            from = found + jiff::SignedDuration::from_secs(1);
        }
        out
    }

    fn at(y: i16, m: i8, d: i8, h: i8, mi: i8) -> DateTime {
        date(y, m, d).at(h, mi, 0, 0)
    }

    #[test]
    fn five_fields_run_at_second_zero() {
        assert_eq!(
            matches("30 3 * * *", at(2026, 11, 26, 3, 30), 3),
            ["2026-11-26 Thu 03:30:00", "2026-11-27 Fri 03:30:00", "2026-11-28 Sat 03:30:00"]
        );
        assert_eq!(
            matches("*/20 * * * *", at(2026, 11, 26, 23, 41), 2),
            ["2026-11-27 Fri 00:00:00", "2026-11-27 Fri 00:20:00"]
        );
    }

    #[test]
    fn six_fields_put_seconds_first() {
        assert_eq!(
            matches("*/15 0 12 * * *", at(2026, 1, 1, 12, 0), 5),
            [
                "2026-01-01 Thu 12:00:00",
                "2026-01-01 Thu 12:00:15",
                "2026-01-01 Thu 12:00:30",
                "2026-01-01 Thu 12:00:45",
                "2026-01-02 Fri 12:00:00"
            ]
        );
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        assert_eq!(
            matches("0 9-17/4,20 * * mon-fri", at(2026, 11, 27, 10, 0), 5),
            [
                "2026-11-27 Fri 13:00:00",
                "2026-11-27 Fri 17:00:00",
                "2026-11-27 Fri 20:00:00",
                "2026-11-30 Mon 09:00:00",
                "2026-11-30 Mon 13:00:00"
            ]
        );
        assert_eq!(
            matches("0 0 1 Jan,JUL *", at(2026, 2, 1, 0, 0), 2),
            ["2026-07-01 Wed 00:00:00", "2027-01-01 Fri 00:00:00"]
        );
        assert_eq!(
            matches("0 0 * * 5/1", at(2026, 11, 26, 0, 0), 2),
            ["2026-11-27 Fri 00:00:00", "2026-11-28 Sat 00:00:00"]
        );
    }

    #[test]
    fn weekday_seven_is_sunday() {
        assert_eq!(cron("0 0 * * 7"), cron("0 0 * * SUN"));
        assert_eq!(cron("0 0 * * 5-7"), cron("0 0 * * 0,5,6"));
        assert_eq!(matches("0 0 * * 7", at(2026, 11, 26, 0, 0), 1), ["2026-11-29 Sun 00:00:00"]);
    }

    #[test]
    fn restricted_day_and_weekday_match_either_else_both() {
        // The 13th, and every Friday.
        assert_eq!(
            matches("0 0 13 * FRI", at(2026, 11, 1, 0, 0), 4),
            [
                "2026-11-06 Fri 00:00:00",
                "2026-11-13 Fri 00:00:00",
                "2026-11-20 Fri 00:00:00",
                "2026-11-27 Fri 00:00:00"
            ]
        );
        assert_eq!(
            matches("0 0 13 * FRI", at(2026, 12, 1, 0, 0), 2),
            ["2026-12-04 Fri 00:00:00", "2026-12-11 Fri 00:00:00"]
        );
        // `*/2` starts with `*`: odd days that are Mondays.
        assert_eq!(
            matches("0 0 */2 * MON", at(2026, 11, 1, 0, 0), 2),
            ["2026-11-09 Mon 00:00:00", "2026-11-23 Mon 00:00:00"]
        );
    }

    #[test]
    fn descriptors_stand_for_their_fields() {
        for (descriptor, fields) in [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
            ("@HOURLY", "0 * * * *"),
        ] {
            assert_eq!(cron(descriptor), cron(fields), "{descriptor}");
        }
    }

    #[test]
    fn rare_dates_are_found_and_impossible_ones_refused() {
        assert_eq!(matches("0 0 29 2 *", at(2097, 3, 1, 0, 0), 1), ["2104-02-29 Fri 00:00:00"]);
        assert_eq!(
            matches("0 0 31 * *", at(2026, 4, 1, 0, 0), 2),
            ["2026-05-31 Sun 00:00:00", "2026-07-31 Fri 00:00:00"]
        );
        assert_eq!(error("0 0 30 2 *"), "no date has this day and month; it would never run");
        assert_eq!(error("0 0 31 4,6 *"), "no date has this day and month; it would never run");
        assert!(Cron::parse("0 0 30 2 MON").is_ok(), "either day: every Monday in February");
    }

    #[test]
    fn mistakes_name_the_field_and_the_fix() {
        assert_eq!(
            error("* * *"),
            "has 3 fields; a cron expression has 5 (minute hour day month weekday) or 6 (seconds first)"
        );
        assert_eq!(error("60 * * * *"), "the minute field \"60\": 60 is outside 0-59");
        assert_eq!(error("0 24 * * *"), "the hour field \"24\": 24 is outside 0-23");
        assert_eq!(error("0 0 0 * *"), "the day-of-month field \"0\": 0 is outside 1-31");
        assert_eq!(error("0 0 * 13 *"), "the month field \"13\": 13 is outside 1-12");
        assert_eq!(error("0 0 * * 8"), "the weekday field \"8\": 8 is outside 0-7");
        assert_eq!(error("0 0 * * FRI-MON"), "the weekday field \"FRI-MON\": the range 5-1 goes backwards");
        assert_eq!(error("*/0 * * * *"), "the minute field \"*/0\": a step of 0");
        assert_eq!(error("1,,2 * * * *"), "the minute field \"1,,2\": an empty item");
        assert_eq!(error("x * * * *"), "the minute field \"x\": \"x\" is not a number or a name");
        assert_eq!(
            error("0 0 * JANUARY *"),
            "the month field \"JANUARY\": \"JANUARY\" is not a number or a name"
        );
        assert!(error("@reboot").starts_with("\"@reboot\" is not a descriptor"));
        assert!(error("-1 * * * *").contains("minute field"));
    }

    #[test]
    fn the_search_ends_at_year_9999() {
        assert_eq!(cron("0 0 1 1 *").next_from(at(9999, 6, 1, 0, 0)), None);
    }
}
