//! Which discovered models a config measures: the seed's "every model under 15 GB", without
//! embedding-only models, narrowed by `--include` / `--exclude` patterns. A model left out keeps
//! the reason, so `discover --json` can say why.

use super::{Discovery, Model};

/// What to keep.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Leave out models whose file is larger (bytes). Models of unknown size stay.
    pub max_size_bytes: Option<u64>,
    /// Keep only models matching one of these (`*` matches anything; case-insensitive).
    pub include: Vec<String>,
    /// Leave out models matching one of these.
    pub exclude: Vec<String>,
}

impl Filter {
    /// Why `m` is left out, or `None` to keep it.
    pub fn reason(&self, m: &Model) -> Option<String> {
        if m.embedding_only() {
            return Some("an embedding model: nothing to chat with".into());
        }
        if let (Some(max), Some(size)) = (self.max_size_bytes, m.size_bytes)
            && size > max
        {
            return Some(format!(
                "{:.1} GB is over --max-size-gb {:.1}",
                size as f64 / 1e9,
                max as f64 / 1e9
            ));
        }
        if !self.include.is_empty() && !self.include.iter().any(|p| matches(p, &m.name)) {
            return Some(format!(
                "matches no --include ({})",
                self.include.join(", ")
            ));
        }
        if let Some(p) = self.exclude.iter().find(|p| matches(p, &m.name)) {
            return Some(format!("matches --exclude {p}"));
        }
        None
    }

    /// Marks every model left out with its reason.
    pub fn apply(&self, d: &mut Discovery) {
        for s in &mut d.servers {
            for m in &mut s.models {
                m.excluded = self.reason(m);
            }
        }
    }
}

/// A glob with `*` only, case-insensitive, over the whole name.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.to_lowercase(), name.to_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == n;
    }
    let mut rest = n.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, gb: f64, caps: &[&str]) -> Model {
        Model {
            name: name.into(),
            size_bytes: Some((gb * 1e9) as u64),
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            ..Model::default()
        }
    }

    #[test]
    fn every_model_under_15_gb_but_embeddings() {
        let f = Filter {
            max_size_bytes: Some(15_000_000_000),
            ..Filter::default()
        };
        assert_eq!(f.reason(&model("qwen3:8b", 5.2, &["completion"])), None);
        let big = f
            .reason(&model("llama3.3:70b", 42.5, &["completion"]))
            .unwrap();
        assert!(big.contains("42.5 GB is over --max-size-gb 15.0"), "{big}");
        assert!(
            f.reason(&model("nomic-embed", 0.3, &["embedding"]))
                .is_some()
        );
        let unknown = Model {
            size_bytes: None,
            ..model("mystery", 0.0, &[])
        };
        assert_eq!(
            f.reason(&unknown),
            None,
            "a size nobody reports is no reason"
        );
    }

    #[test]
    fn patterns() {
        assert!(matches("qwen*", "Qwen3:8B"));
        assert!(matches("*:8b", "qwen3:8b"));
        assert!(matches("*gemma*", "google/gemma-3-4b"));
        assert!(!matches("gemma*", "google/gemma-3-4b"));
        assert!(matches("exact", "EXACT"));
        let f = Filter {
            include: vec!["qwen*".into()],
            exclude: vec!["*coder*".into()],
            ..Filter::default()
        };
        assert_eq!(f.reason(&model("qwen3:8b", 5.0, &[])), None);
        assert!(f.reason(&model("qwen2.5-coder:7b", 5.0, &[])).is_some());
        assert!(f.reason(&model("llama3:8b", 5.0, &[])).is_some());
    }
}
