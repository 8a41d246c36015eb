//! Content sniffing: the type of an upload comes from its first bytes, never
//! from the client's Content-Type or file name.

/// The MIME type and a matching extension (with dot; may be empty) of `head`.
pub fn sniff(head: &[u8]) -> (String, &'static str) {
    if let Some(kind) = infer::get(head) {
        return (kind.mime_type().to_owned(), ext_for(kind.extension()));
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => Some(t),
        // The head may end inside a multi-byte character.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    let Some(text) = text.filter(|t| !t.contains('\0')) else {
        return ("application/octet-stream".to_owned(), "");
    };
    let start = text
        .trim_start()
        .get(..256)
        .unwrap_or(text.trim_start())
        .to_ascii_lowercase();
    if start.starts_with("<svg") || (start.starts_with("<?xml") && start.contains("<svg")) {
        return ("image/svg+xml".to_owned(), ".svg");
    }
    if start.starts_with("<!doctype html") || start.starts_with("<html") {
        return ("text/html; charset=utf-8".to_owned(), ".html");
    }
    if (start.starts_with('{') || start.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(text).is_ok()
    {
        return ("application/json".to_owned(), ".json");
    }
    ("text/plain; charset=utf-8".to_owned(), ".txt")
}

fn ext_for(ext: &str) -> &'static str {
    match ext {
        "png" => ".png",
        "jpg" => ".jpg",
        "gif" => ".gif",
        "webp" => ".webp",
        "pdf" => ".pdf",
        "zip" => ".zip",
        "gz" => ".gz",
        "mp4" => ".mp4",
        "mp3" => ".mp3",
        "wav" => ".wav",
        "webm" => ".webm",
        "bmp" => ".bmp",
        "ico" => ".ico",
        "avif" => ".avif",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_content() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
        ];
        assert_eq!(sniff(&png), ("image/png".to_owned(), ".png"));
        assert_eq!(sniff(b"hello").0, "text/plain; charset=utf-8");
        assert_eq!(sniff(b"{\"a\":1}").0, "application/json");
        assert_eq!(sniff(&[0, 1, 2, 3]).0, "application/octet-stream");
    }
}
