//! The one timestamp format in-toto layouts use: `YYYY-MM-DDTHH:MM:SSZ` (UTC, no fractions).

use crate::error::{Error, Result};

/// Seconds since the Unix epoch for a layout `expires` value; rejects anything but the strict form
/// and impossible dates.
pub fn parse_expires(s: &str) -> Result<i64> {
    let bad = || Error::format(format!("expires '{s}' is not of the form YYYY-MM-DDTHH:MM:SSZ"));
    let b = s.as_bytes();
    let at = |i: usize| b.get(i).copied();
    if b.len() != 20
        || at(4) != Some(b'-')
        || at(7) != Some(b'-')
        || at(10) != Some(b'T')
        || at(13) != Some(b':')
        || at(16) != Some(b':')
        || at(19) != Some(b'Z')
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64> {
        let part = s.get(r).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let month_days = usize::try_from(mo - 1).ok().and_then(|i| mdays.get(i)).copied().unwrap_or(0);
    let unreal = |why: String| Error::format(format!("expires '{s}' is not a real date and time: {why}"));
    if !(1..=12).contains(&mo) {
        return Err(unreal(format!("there is no month {mo:02}")));
    }
    if d < 1 || d > month_days {
        return Err(unreal(format!("{y:04}-{mo:02} has days 01 to {month_days}")));
    }
    if h > 23 || mi > 59 || se > 59 {
        return Err(unreal(format!("{h:02}:{mi:02}:{se:02} is not a time of day")));
    }
    Ok(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Civil date (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Format seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

pub fn now_utc() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip_and_strictness() {
        let t = parse_expires("2035-01-01T00:00:00Z").unwrap();
        assert_eq!(t, 2051222400);
        assert_eq!(format_utc(t), "2035-01-01T00:00:00Z");
        assert!(parse_expires("2035-02-30T00:00:00Z").is_err());
        assert!(parse_expires("2035-01-01T00:00:00.5Z").is_err());
        assert!(parse_expires("2035-01-01T00:00:00+00:00").is_err());
        assert_eq!(parse_expires("2024-02-29T12:34:56Z").unwrap() % 86400, 12 * 3600 + 34 * 60 + 56);
    }
}
