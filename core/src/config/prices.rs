//! A price file shared by many configs (`prices = "prices.toml"`): one table per provider,
//! one row per model, each a [`Price`]. A target's own `price` wins over its row.
//!
//! ```toml
//! [groq."llama-3.3-70b-versatile"]
//! input_per_mtok = 0.59
//! output_per_mtok = 0.79
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::cost::Price;
use crate::suite::line_col;

/// Provider → model → price.
pub type PriceTable = BTreeMap<String, BTreeMap<String, Price>>;

/// Reads the price file at `path`; an error names the file, the line and the row.
pub fn load(path: &Path) -> Result<PriceTable, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: BTreeMap<String, BTreeMap<String, toml::Spanned<Price>>> = toml::from_str(&text)
        .map_err(|e| {
            let line = e.span().map_or(0, |s| line_col(&text, s.start).0);
            format!("{}:{line}: {}", path.display(), e.message().trim())
        })?;
    let mut out = PriceTable::new();
    for (provider, models) in table {
        for (model, price) in models {
            let line = line_col(&text, price.span().start).0;
            price
                .get_ref()
                .check()
                .map_err(|m| format!("{}:{line}: {provider}.\"{model}\".{m}", path.display()))?;
            out.entry(provider.clone())
                .or_default()
                .insert(model, price.into_inner());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!(
            "llmpulse-prices-{name}-{}.toml",
            std::process::id()
        ));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn rows_by_provider_and_model() {
        let p = write(
            "ok",
            "[groq.\"llama-3.3-70b-versatile\"]\ninput_per_mtok = 0.59\noutput_per_mtok = 0.79\n\
             [openrouter.\"meta-llama/llama-3.1-8b-instruct\"]\ninput_per_mtok = 0.02\n\
             output_per_mtok = 0.03\nper_call = 0.0001\n",
        );
        let t = load(&p).unwrap();
        assert_eq!(t["groq"]["llama-3.3-70b-versatile"].output_per_mtok, 0.79);
        assert_eq!(
            t["openrouter"]["meta-llama/llama-3.1-8b-instruct"].per_call,
            Some(0.0001)
        );
    }

    #[test]
    fn a_bad_row_names_the_file_line_and_field() {
        let p = write(
            "bad",
            "[groq.a]\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\n\n\
             [groq.b]\ninput_per_mtok = -2.0\noutput_per_mtok = 1.0\n",
        );
        let e = load(&p).unwrap_err();
        assert!(e.contains(&format!("{}:5", p.display())), "{e}");
        assert!(e.contains("groq.\"b\".input_per_mtok"), "{e}");
        let p = write(
            "typo",
            "[groq.a]\ninput_per_mtok = 1.0\noutput_per_mtk = 1.0\n",
        );
        let e = load(&p).unwrap_err();
        assert!(e.contains(":3") && e.contains("output_per_mtk"), "{e}");
    }
}
