//! Token estimation for when a provider does not report usage.
//!
//! The estimate is the rule of thumb OpenAI documents for English text: one token per four
//! characters, never fewer tokens than words. Records that carry an estimate say so with
//! `token_source = "estimated"`, so reports never mix the two silently.

/// Estimated token count of `text`.
pub fn estimate(text: &str) -> u32 {
    let chars = text.chars().count();
    if chars == 0 {
        return 0;
    }
    let by_chars = chars.div_ceil(4);
    let words = text.split_whitespace().count();
    by_chars.max(words).max(1) as u32
}

/// Where a record's token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// Reported by the provider (`usage`).
    Usage,
    /// Estimated from the text by [`estimate`].
    Estimated,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_zero() {
        assert_eq!(estimate(""), 0);
    }

    #[test]
    fn four_chars_per_token() {
        // 40 characters of prose: 10 tokens.
        assert_eq!(estimate("The quarterly revenue grew by 12 percent"), 10);
    }

    #[test]
    fn never_fewer_than_words() {
        // 9 one-letter words, 17 characters: 5 by characters, 9 by words.
        assert_eq!(estimate("a b c d e f g h i"), 9);
    }
}
