//! Repeating what a user wrote in a message, at most [`MAX_CHARS`]
//! characters of it. A message names the value it refuses, but must never
//! echo a whole file (a manifest, or whatever a link led to) into a log
//! line, `alyx validate` or the API's `last_error`.

/// The most characters of a value that a message repeats.
pub const MAX_CHARS: usize = 80;

/// `text` quoted and escaped as `{:?}` writes it, cut after [`MAX_CHARS`]
/// characters: `"abc…"… (12345 bytes)`.
pub fn quote(text: &str) -> String {
    match cut(text) {
        Some(start) => format!("{start:?}… ({} bytes)", text.len()),
        None => format!("{text:?}"),
    }
}

/// `text` as it is, cut after [`MAX_CHARS`] characters with `…`.
pub fn clip(text: &str) -> String {
    match cut(text) {
        Some(start) => format!("{start}…"),
        None => text.to_string(),
    }
}

/// The first [`MAX_CHARS`] characters, when there are more.
fn cut(text: &str) -> Option<&str> {
    text.char_indices().nth(MAX_CHARS).map(|(end, _)| &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_or_kept_whole() {
        assert_eq!(quote("soon"), "\"soon\"");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        assert_eq!(clip("soon"), "soon");
        let exactly = "x".repeat(MAX_CHARS);
        assert_eq!((quote(&exactly), clip(&exactly)), (format!("{exactly:?}"), exactly.clone()));
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let long = "é".repeat(1000);
        let start = "é".repeat(MAX_CHARS);
        assert_eq!(quote(&long), format!("\"{start}\"… (2000 bytes)"));
        assert_eq!(clip(&long), format!("{start}…"));
    }
}
