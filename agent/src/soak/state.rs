//! What survives a restart: `state.json` in the soak's directory, rewritten atomically before
//! each segment starts (with the segment's calls) and after it is stored. Calls are pure
//! functions of the seed and their index ([`super::scenario`]), so the state only needs indexes.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::scenario::Scenario;
use super::stats::{Profiles, SoakStats, write_atomic};

/// One call of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub index: u64,
    pub scenario: Scenario,
}

/// How a segment's calls are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// One call at a time, paced by the pause.
    Paced,
    /// Every call at once (a concurrent-load burst).
    Burst,
    /// Sent to the failing probe target, answered by the model as its fallback.
    Failover,
}

/// The calls of one run, written down before it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub run_id: String,
    /// The model's target name.
    pub model: String,
    pub kind: SegmentKind,
    pub night: bool,
    pub calls: Vec<Call>,
}

/// The soak's state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakState {
    pub name: String,
    pub seed: u64,
    pub started_at: DateTime<Utc>,
    /// When the soak ends (from `duration` or `until` at its first start).
    pub ends_at: Option<DateTime<Utc>>,
    /// The index of the next call to draw.
    pub next_call: u64,
    /// The rotation going on (the model is `models[rotation % models.len()]`).
    pub rotation: u64,
    /// Calls left before the next rotation.
    pub rotation_left: u32,
    /// A drawn call that could not join the last segment (another kind); it opens the next.
    pub pending: Option<Call>,
    /// The segment going on; on a restart, its calls without a record are asked again.
    pub in_flight: Option<Segment>,
    pub stats: SoakStats,
    /// This soak's own profiles (those of earlier soaks of the host are in `base_profiles`).
    pub profiles: Profiles,
    pub base_profiles: Profiles,
    pub rewrites: u64,
    pub finished: bool,
}

impl SoakState {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// The state in `dir`, if a soak of that name left one.
    pub fn load(dir: &Path) -> Result<Option<SoakState>, String> {
        let path = Self::path(dir);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("{}: not a soak state: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(&Self::path(dir), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reads_back_as_written() {
        let dir = std::env::temp_dir().join(format!("llmpulse-soak-state-{}", std::process::id()));
        let s = SoakState {
            name: "n".into(),
            seed: 3,
            started_at: Utc::now(),
            ends_at: None,
            next_call: 12,
            rotation: 2,
            rotation_left: 4,
            pending: Some(Call {
                index: 11,
                scenario: Scenario::ConcurrentLoad,
            }),
            in_flight: Some(Segment {
                run_id: "r".into(),
                model: "a".into(),
                kind: SegmentKind::Paced,
                night: false,
                calls: vec![Call {
                    index: 10,
                    scenario: Scenario::Streaming,
                }],
            }),
            stats: SoakStats::default(),
            profiles: Profiles::default(),
            base_profiles: Profiles::default(),
            rewrites: 0,
            finished: false,
        };
        s.save(&dir).unwrap();
        assert_eq!(SoakState::load(&dir).unwrap(), Some(s));
        std::fs::write(SoakState::path(&dir), "{").unwrap();
        assert!(SoakState::load(&dir).unwrap_err().contains("state.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
