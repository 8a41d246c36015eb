//! Datetime macros (`@now`, `@todayStart`, `@month`, …), computed in UTC from
//! a caller-supplied instant with plain integer calendar arithmetic (Howard
//! Hinnant's days/civil algorithms), so no date crate is needed and tests can
//! pin "now". Dates use PocketBase's text format `YYYY-MM-DD HH:MM:SS.mmmZ`.

use std::time::{SystemTime, UNIX_EPOCH};

use super::scope::SqlValue;

const MS_PER_SECOND: i64 = 1000;
const MS_PER_DAY: i64 = 86_400 * MS_PER_SECOND;
/// Days in one 400-year Gregorian cycle.
const DAYS_PER_ERA: i64 = 146_097;
/// Days from 0000-03-01 to 1970-01-01.
const EPOCH_SHIFT_DAYS: i64 = 719_468;

/// The value of macro `name` (with its `@`) at `now_ms`, or `None` if unknown.
pub(crate) fn value(name: &str, now_ms: i64) -> Option<SqlValue> {
    let days = now_ms.div_euclid(MS_PER_DAY);
    let ms_of_day = now_ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let date = |ms: i64| Some(SqlValue::Text(format_millis(ms)));
    let number = |n: i64| Some(SqlValue::Integer(n));
    match name {
        "@now" => date(now_ms),
        "@yesterday" => date(now_ms - MS_PER_DAY),
        "@tomorrow" => date(now_ms + MS_PER_DAY),
        "@todayStart" => date(days * MS_PER_DAY),
        "@todayEnd" => date((days + 1) * MS_PER_DAY - 1),
        "@monthStart" => date(days_from_civil(year, month, 1) * MS_PER_DAY),
        "@monthEnd" => date(days_from_civil(next_year, next_month, 1) * MS_PER_DAY - 1),
        "@yearStart" => date(days_from_civil(year, 1, 1) * MS_PER_DAY),
        "@yearEnd" => date(days_from_civil(year + 1, 1, 1) * MS_PER_DAY - 1),
        "@second" => number(ms_of_day / MS_PER_SECOND % 60),
        "@minute" => number(ms_of_day / (60 * MS_PER_SECOND) % 60),
        "@hour" => number(ms_of_day / (3600 * MS_PER_SECOND)),
        // 1970-01-01 was a Thursday; 0 = Sunday.
        "@weekday" => number((days + 4).rem_euclid(7)),
        "@day" => number(day),
        "@month" => number(month),
        "@year" => number(year),
        _ => None,
    }
}

/// Milliseconds since the Unix epoch (negative before 1970, saturating far out).
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmmZ` in UTC.
pub(crate) fn format_millis(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let of_day = ms.rem_euclid(MS_PER_DAY);
    let (secs, millis) = (of_day / MS_PER_SECOND, of_day % MS_PER_SECOND);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + EPOCH_SHIFT_DAYS;
    let era = z.div_euclid(DAYS_PER_ERA);
    let doe = z.rem_euclid(DAYS_PER_ERA); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day count since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * DAYS_PER_ERA + doe - EPOCH_SHIFT_DAYS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2024-02-29 13:45:30.123 UTC (a Thursday in a leap year).
    const LEAP_DAY_MS: i64 = 1_709_214_330_123;

    fn text(s: &str) -> Option<SqlValue> {
        Some(SqlValue::Text(s.into()))
    }

    #[test]
    fn date_macros_follow_the_calendar() {
        let cases = [
            ("@now", "2024-02-29 13:45:30.123Z"),
            ("@yesterday", "2024-02-28 13:45:30.123Z"),
            ("@tomorrow", "2024-03-01 13:45:30.123Z"),
            ("@todayStart", "2024-02-29 00:00:00.000Z"),
            ("@todayEnd", "2024-02-29 23:59:59.999Z"),
            ("@monthStart", "2024-02-01 00:00:00.000Z"),
            ("@monthEnd", "2024-02-29 23:59:59.999Z"),
            ("@yearStart", "2024-01-01 00:00:00.000Z"),
            ("@yearEnd", "2024-12-31 23:59:59.999Z"),
        ];
        for (name, want) in cases {
            assert_eq!(value(name, LEAP_DAY_MS), text(want), "{name} on a leap day");
        }
    }

    #[test]
    fn number_macros_split_the_instant() {
        let cases = [
            ("@second", 30),
            ("@minute", 45),
            ("@hour", 13),
            ("@weekday", 4),
            ("@day", 29),
            ("@month", 2),
            ("@year", 2024),
        ];
        for (name, want) in cases {
            assert_eq!(
                value(name, LEAP_DAY_MS),
                Some(SqlValue::Integer(want)),
                "{name} on 2024-02-29 13:45:30"
            );
        }
    }

    #[test]
    fn month_end_rolls_over_december_and_short_months() {
        let cases = [
            (
                "2023-12-15 00:00:00.000Z",
                1_702_598_400_000,
                "2023-12-31 23:59:59.999Z",
                "december",
            ),
            (
                "2023-02-10 00:00:00.000Z",
                1_675_987_200_000,
                "2023-02-28 23:59:59.999Z",
                "non-leap february",
            ),
            (
                "2100-02-01 00:00:00.000Z",
                4_105_123_200_000,
                "2100-02-28 23:59:59.999Z",
                "century non-leap",
            ),
        ];
        for (start, ms, want, why) in cases {
            assert_eq!(format_millis(ms), start, "{why}: fixture instant");
            assert_eq!(value("@monthEnd", ms), text(want), "{why}");
        }
    }

    #[test]
    fn instants_before_1970_format_correctly() {
        let cases = [
            (0, "1970-01-01 00:00:00.000Z"),
            (-1, "1969-12-31 23:59:59.999Z"),
            (-86_400_000 * 365, "1969-01-01 00:00:00.000Z"),
            (951_782_400_000, "2000-02-29 00:00:00.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(format_millis(ms), want, "{ms} ms");
        }
        assert_eq!(
            value("@weekday", -1),
            Some(SqlValue::Integer(3)),
            "1969-12-31 was a Wednesday"
        );
    }

    #[test]
    fn civil_dates_round_trip_over_many_days() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "day {days} = {y}-{m}-{d}");
        }
    }

    #[test]
    fn system_times_convert_to_signed_millis() {
        let after = UNIX_EPOCH + Duration::from_millis(1500);
        let before = UNIX_EPOCH - Duration::from_millis(1500);

        assert_eq!(unix_millis(after), 1500);
        assert_eq!(unix_millis(before), -1500);
    }

    #[test]
    fn unknown_macros_have_no_value() {
        assert_eq!(value("@later", 0), None);
        assert_eq!(value("now", 0), None, "the @ is part of the name");
    }
}
