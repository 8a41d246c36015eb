//! The stored form of a log entry's `id` and `created`, built on the log
//! writer from the microsecond stamp a request hands over. Requests only
//! read the clock; the writer formats, caching the part of the timestamp
//! that changes once a second, and writes both into stack buffers that are
//! bound as text (no allocation per row).

use rand::Rng;

/// Characters of a PocketBase id.
const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Length of a log id: [`TIME_DIGITS`] of time, then random characters.
pub const ID_LEN: usize = 15;
/// Base-36 digits of microseconds since the epoch (36^11 µs ≈ 4 million years).
const TIME_DIGITS: usize = 11;
/// 36^4: the random tail is one number below this, written in base 36.
const TAIL_SPACE: u32 = 36 * 36 * 36 * 36;

/// A 15-character `[a-z0-9]` id (PocketBase's format) that sorts by time:
/// `micros` in base 36, then random characters. Log ids then append at the
/// right edge of the primary-key index instead of landing on random pages.
pub fn ordered_id(micros: i64, rng: &mut impl Rng) -> [u8; ID_LEN] {
    let mut id = [b'0'; ID_LEN];
    let mut time = u64::try_from(micros).unwrap_or(0);
    for slot in id[..TIME_DIGITS].iter_mut().rev() {
        *slot = DIGITS[(time % 36) as usize];
        time /= 36;
    }
    let mut tail = rng.random_range(0..TAIL_SPACE);
    for slot in id[TIME_DIGITS..].iter_mut().rev() {
        *slot = DIGITS[(tail % 36) as usize];
        tail /= 36;
    }
    id
}

/// Length of `YYYY-MM-DD HH:MM:SS.mmmZ`.
const CREATED_LEN: usize = 24;
/// Length of the `YYYY-MM-DD HH:MM:SS` head shared by a whole second.
const SECOND_LEN: usize = 19;

/// Formats `created` in the wire format of [`crate::clock::format`],
/// remembering the last second's head.
#[derive(Default)]
pub struct CreatedText {
    second: Option<i64>,
    text: [u8; CREATED_LEN],
}

impl CreatedText {
    /// `micros` since the epoch as `YYYY-MM-DD HH:MM:SS.mmmZ` (UTC). Times
    /// the fixed width cannot hold (years past 9999) go through
    /// [`crate::clock::format`].
    pub fn format(&mut self, micros: i64) -> std::borrow::Cow<'_, str> {
        let second = micros.div_euclid(1_000_000);
        if self.second != Some(second) {
            let Some(head) = chrono::DateTime::from_timestamp(second, 0)
                .map(crate::clock::format)
                .filter(|t| t.len() == CREATED_LEN)
            else {
                self.second = None;
                let at = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
                return crate::clock::format(at).into();
            };
            self.text.copy_from_slice(head.as_bytes());
            self.second = Some(second);
        }
        let millis = micros.rem_euclid(1_000_000) / 1000;
        self.text[SECOND_LEN + 1] = b'0' + (millis / 100) as u8;
        self.text[SECOND_LEN + 2] = b'0' + (millis / 10 % 10) as u8;
        self.text[SECOND_LEN + 3] = b'0' + (millis % 10) as u8;
        // Only ASCII digits were written over ASCII text.
        std::str::from_utf8(&self.text).unwrap_or_default().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_have_pocketbases_shape_and_sort_by_time() {
        let mut rng = rand::rng();
        let first = ordered_id(1_765_000_000_000_000, &mut rng);
        let second = ordered_id(1_765_000_000_000_001, &mut rng);
        assert!(
            first
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert!(first < second, "{first:?} < {second:?}");
    }

    #[test]
    fn created_text_matches_the_clock_format_across_seconds() {
        let mut created = CreatedText::default();
        for micros in [
            0,
            1_765_000_000_000_000,
            1_765_000_000_999_999,
            1_765_000_001_000_000,
            1_765_000_001_042_000,
            1_765_000_000_500_000, // back in time: the head is rebuilt
            -1_500_000,
            253_402_300_800_000_000, // year 10000: the slow path
        ] {
            let at = chrono::DateTime::from_timestamp_micros(micros).expect("in range");
            assert_eq!(created.format(micros), crate::clock::format(at), "{micros}");
        }
    }
}
