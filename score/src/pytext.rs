//! Text the way Python sees it, so the metrics match their reference implementations
//! (sacreBLEU, jiwer) exactly: Python's whitespace (`str.isspace`, which also counts the
//! information separators U+001C–U+001F), `split()`, `strip()` and `rstrip()`.

/// Whether Python's `str.isspace()` holds for `c`.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.split()`: runs of whitespace separate words; no empty words.
pub fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|w| !w.is_empty())
}

/// Python's `s.strip()`.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Python's `s.rstrip()`.
pub fn rstrip(s: &str) -> &str {
    s.trim_end_matches(is_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_as_python_has_it() {
        assert!(is_space('\u{1f}') && is_space('\u{3000}') && is_space('\u{85}'));
        assert!(
            !is_space('\u{200b}'),
            "a zero-width space is not whitespace in Python"
        );
        assert_eq!(split(" a\u{1c}b\tc  ").collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(strip("\u{a0} x \n"), "x");
        assert_eq!(rstrip(" x \n"), " x");
    }
}
