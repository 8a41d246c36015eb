//! The hand-over between requests and the log writer: entries packed into
//! one text buffer plus a list of small fixed rows, behind a mutex held only
//! for a copy. The writer swaps the whole buffer for an empty one it kept
//! from the previous round, so logging a request allocates nothing in the
//! steady state and no entry is freed on a thread other than its own.

use std::sync::{Mutex, MutexGuard};

/// One queued entry; its texts are in [`Pending::texts`], message then data.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub level: i64,
    /// When it happened, microseconds since the Unix epoch.
    pub at_micros: i64,
    message_len: usize,
    data_len: usize,
}

/// Entries waiting to be written, in arrival order.
#[derive(Default)]
pub struct Pending {
    texts: String,
    rows: Vec<Row>,
}

impl Pending {
    /// Appends one entry.
    pub fn push(&mut self, level: i64, at_micros: i64, message: &str, data: &str) {
        self.texts.push_str(message);
        self.texts.push_str(data);
        self.rows.push(Row {
            level,
            at_micros,
            message_len: message.len(),
            data_len: data.len(),
        });
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Each entry with its message and data, in arrival order.
    pub fn entries(&self) -> impl Iterator<Item = (Row, &str, &str)> {
        let mut at = 0;
        self.rows.iter().map(move |row| {
            let message_end = at + row.message_len;
            let data_end = message_end + row.data_len;
            // Offsets are the lengths pushed, so they fall on char boundaries.
            let message = self.texts.get(at..message_end).unwrap_or_default();
            let data = self.texts.get(message_end..data_end).unwrap_or_default();
            at = data_end;
            (*row, message, data)
        })
    }

    /// Empties the buffer for reuse, giving back memory a burst of large
    /// entries left behind.
    pub fn clear(&mut self) {
        self.texts.clear();
        self.rows.clear();
        self.texts.shrink_to(KEPT_TEXT_BYTES);
    }
}

/// Text capacity a reused buffer keeps (a few busy flush intervals' worth).
const KEPT_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// The shared buffer.
#[derive(Default)]
pub struct Queue(Mutex<Pending>);

impl Queue {
    /// The buffer, even after a panic elsewhere poisoned the lock (the data
    /// is plain text and counts, consistent after every push).
    pub fn lock(&self) -> MutexGuard<'_, Pending> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts `spare` in place and returns what was queued.
    pub fn swap(&self, spare: Pending) -> Pending {
        std::mem::replace(&mut *self.lock(), spare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_entries_come_back_in_order_with_their_texts() {
        let queue = Queue::default();
        queue.lock().push(0, 1, "GET /a", "{\"a\":1}");
        queue.lock().push(8, 2, "", "{}");
        queue.lock().push(0, 3, "POST /ü", "{\"ü\":\"é\"}");

        let taken = queue.swap(Pending::default());
        let entries: Vec<_> = taken
            .entries()
            .map(|(row, m, d)| (row.level, row.at_micros, m.to_owned(), d.to_owned()))
            .collect();

        assert_eq!(
            entries,
            vec![
                (0, 1, "GET /a".to_owned(), "{\"a\":1}".to_owned()),
                (8, 2, String::new(), "{}".to_owned()),
                (0, 3, "POST /ü".to_owned(), "{\"ü\":\"é\"}".to_owned()),
            ]
        );
        assert!(queue.lock().is_empty(), "the swap left an empty buffer");
    }
}
