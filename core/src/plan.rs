//! What a run will ask: every (question × target × repetition) as a [`PlannedCall`], in an
//! order that spreads each target over the run, and the [`Shard`] of them a process takes.

use serde::{Deserialize, Serialize};

/// Shard `index` of `count` (0-based): planned call `j` belongs to shard `j mod count`, so
/// every shard gets an even share of every target and question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `i/n` (0 ≤ i < n).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not a shard: write INDEX/COUNT, e.g. 0/3"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("'{s}': bad shard index"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("'{s}': bad shard count"))?;
        if count == 0 || index >= count {
            return Err(format!("'{s}': the index must be from 0 to count − 1"));
        }
        Ok(Shard { index, count })
    }
}

/// One planned call: indexes into the run's targets and questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedCall {
    pub target: usize,
    pub question: usize,
    pub repetition: u32,
}

/// Every call of a run for the given target indexes, repetition-major and targets interleaved,
/// so that each target is asked evenly over the run's duration rather than one after another.
pub fn plan(targets: &[usize], questions: usize, repetitions: u32) -> Vec<PlannedCall> {
    let mut calls = Vec::with_capacity(targets.len() * questions * repetitions as usize);
    for repetition in 0..repetitions {
        for question in 0..questions {
            for &target in targets {
                calls.push(PlannedCall {
                    target,
                    question,
                    repetition,
                });
            }
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_every_combination_once_targets_interleaved() {
        let calls = plan(&[0, 1, 2], 2, 2);
        assert_eq!(calls.len(), 12);
        assert_eq!(
            calls[..3].iter().map(|c| c.target).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let mut seen: Vec<_> = calls
            .iter()
            .map(|c| (c.target, c.question, c.repetition))
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 12);
    }

    #[test]
    fn shards_split_the_plan_evenly_and_completely() {
        let calls = plan(&[0, 1, 2, 3], 20, 1);
        let mut seen = Vec::new();
        for index in 0..3 {
            let shard = Shard { index, count: 3 };
            let mine: Vec<_> = calls
                .iter()
                .enumerate()
                .filter(|(j, _)| *j as u32 % shard.count == shard.index)
                .map(|(_, c)| (c.target, c.question, c.repetition))
                .collect();
            assert!((26..=27).contains(&mine.len()));
            seen.extend(mine);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 80);
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("1").is_err());
    }
}
