//! Parsing of the human units used on the command line and in manifests:
//! durations (`500ms`, `2s`, `1m`, a bare number is milliseconds) and byte
//! sizes (`64MiB`, `256mb`, `17 pages`, a bare number is bytes).

use std::time::Duration;

use crate::quote::quote;

/// One Wasm page.
pub const PAGE: u64 = 64 * 1024;

/// Parses `250ms`, `2s`, `1.5s`, `3m`, `1h` or a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.'));
    let (number, unit) = t.split_at(split.unwrap_or(t.len()));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {} (expected e.g. 500ms, 2s, 1m)", quote(text)))?;
    let millis = match unit.trim() {
        "" | "ms" => 1.0,
        "us" | "µs" => 0.001,
        "s" | "sec" => 1_000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        other => {
            return Err(format!(
                "invalid duration unit {} in {} (use ms, s, m or h)",
                quote(other),
                quote(text)
            ));
        }
    };
    let total = value * millis;
    if !total.is_finite() || total > 1e15 {
        return Err(format!("duration {} is too large", quote(text)));
    }
    Ok(Duration::from_micros((total * 1000.0).round() as u64))
}

/// Parses `64MiB`, `256mb`, `1g`, `100KB`, `17pages`/`17 pages` or bare bytes.
/// Decimal and binary prefixes are both read as powers of 1024, as users of
/// the reference design wrote `256mb` meaning MiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit());
    let (number, unit) = t.split_at(split.unwrap_or(t.len()));
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {} (expected e.g. 64MiB, 256mb, 17pages)", quote(text)))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "page" | "pages" => PAGE,
        other => {
            return Err(format!(
                "invalid size unit {} in {} (use b, kb, mb, gb or pages)",
                quote(other),
                quote(text)
            ));
        }
    };
    value.checked_mul(factor).ok_or_else(|| format!("size {} is too large", quote(text)))
}

/// Parses a memory cap given as pages (a bare number, like the Extism CLI's
/// `--memory-max`) or as a size with a unit.
pub fn parse_pages_or_size(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(pages) => pages.checked_mul(PAGE).ok_or_else(|| format!("{} pages is too large", quote(text))),
        Err(_) => parse_size(text),
    }
}

/// Milliseconds with microsecond precision, as every `duration_ms` in the
/// API shows a duration.
pub fn millis(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// Formats a byte count for messages: `64 MiB`, `1536 KiB`, `17 B`.
pub fn format_size(bytes: u64) -> String {
    for (unit, factor) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{} {unit}", bytes / factor);
        }
    }
    format!("{bytes} B")
}

/// Formats a time as RFC 3339 in UTC with seconds: `2026-11-24T01:02:03Z`.
pub fn format_rfc3339(time: std::time::SystemTime) -> String {
    let secs = time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// RFC 3339 in UTC with milliseconds: `2026-11-24T01:02:03.045Z` (log
/// lines and execution records).
pub fn format_rfc3339_millis(time: std::time::SystemTime) -> String {
    let millis = time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_millis());
    let seconds = format_rfc3339(time);
    format!("{}.{millis:03}Z", seconds.trim_end_matches('Z'))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's published algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_millis(30)));
        assert_eq!(parse_duration(" 1m "), Ok(Duration::from_secs(60)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").unwrap_err().contains("unit"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("256mb"), Ok(256 << 20));
        assert_eq!(parse_size("17pages"), Ok(17 * PAGE));
        assert_eq!(parse_size("17 pages"), Ok(17 * PAGE));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999gb").unwrap_err().contains("too large"));
    }

    #[test]
    fn pages_or_size() {
        assert_eq!(parse_pages_or_size("2"), Ok(2 * PAGE));
        assert_eq!(parse_pages_or_size("1MiB"), Ok(1 << 20));
    }

    #[test]
    fn times_format_as_rfc3339() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_795_741_323);
        assert_eq!(format_rfc3339(t), "2026-11-27T01:02:03Z");
        assert_eq!(format_rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = std::time::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_rfc3339(leap), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339_millis(t + Duration::from_micros(45_900)), "2026-11-27T01:02:03.045Z");
    }

    #[test]
    fn sizes_format_readably() {
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(1536 << 10), "1536 KiB");
        assert_eq!(format_size(17), "17 B");
    }
}
