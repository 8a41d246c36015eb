//! Timestamps in PocketBase's wire format (`YYYY-MM-DD HH:MM:SS.mmmZ`, UTC)
//! and the lenient-but-lossless parsing of user-supplied dates.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// The wire format of every stored and returned datetime.
pub const DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.3fZ";

/// The current time as a wire-format string.
pub fn now() -> String {
    format(Utc::now())
}

/// Formats a UTC instant in the wire format. Written out by hand for years
/// 0-9999 (every request stamps at least one time, and chrono re-reads the
/// format string on each call); chrono formats the rest.
pub fn format(at: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    if !(0..=9999).contains(&at.year()) {
        return at.format(DATETIME_FORMAT).to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        // A leap second shows as 59.999…, never as a fourth millisecond digit.
        at.timestamp_subsec_millis().min(999)
    )
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    Utc::now().timestamp()
}

/// Parses the date forms PocketBase accepts: `2024-01-02`, `2024-01-02 03:04:05[.mmm][Z]`,
/// and RFC 3339 with `T` and any offset. Returns the canonical UTC string, or `None`
/// when the text is not a date (the caller turns that into a field error).
pub fn parse_date(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
        return Some(format(dt.with_timezone(&Utc)));
    }
    let spaced = raw.replacen('T', " ", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&spaced.replacen(' ', "T", 1)) {
        return Some(format(dt.with_timezone(&Utc)));
    }
    let naive = spaced.trim_end_matches('Z');
    for pattern in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(naive, pattern) {
            return Some(format(n.and_utc()));
        }
    }
    NaiveDate::parse_from_str(naive, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| format(n.and_utc()))
}

/// RFC 3339 form, for logs and HTTP headers that want it.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_format_matches_chronos() {
        for secs in [
            0_i64,
            1,
            951_782_400,
            1_700_000_000,
            4_102_444_799,
            -62_135_596_800,
        ] {
            for nanos in [0_u32, 1_000_000, 999_999_999, 123_456_789] {
                let at = DateTime::from_timestamp(secs, nanos).expect("in range");
                assert_eq!(
                    format(at),
                    at.format(DATETIME_FORMAT).to_string(),
                    "{secs}.{nanos}"
                );
            }
        }
    }

    #[test]
    fn accepted_date_forms_normalise_to_utc_milliseconds() {
        for (input, expected) in [
            ("2024-01-02", "2024-01-02 00:00:00.000Z"),
            ("2024-01-02 03:04:05", "2024-01-02 03:04:05.000Z"),
            ("2024-01-02 03:04:05.123Z", "2024-01-02 03:04:05.123Z"),
            ("2024-01-02T03:04:05Z", "2024-01-02 03:04:05.000Z"),
            (
                "2024-01-02T03:04:05.123456+02:00",
                "2024-01-02 01:04:05.123Z",
            ),
        ] {
            assert_eq!(
                parse_date(input).as_deref(),
                Some(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn text_that_is_not_a_date_is_rejected() {
        for input in ["", "yesterday", "2024-13-01", "2024-01-02 25:00:00", "12"] {
            assert_eq!(parse_date(input), None, "input {input:?}");
        }
    }
}
