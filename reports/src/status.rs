//! Campaign status: what a campaign should have produced by now against what its store holds —
//! the seed's success criteria (runs per window, records, every target and industry covered),
//! computed from manifests, claims and records.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use llmpulse_core::job;
use llmpulse_core::layout;
use llmpulse_core::manifest::Manifest;
use llmpulse_core::record::read_jsonl;
use llmpulse_core::schedule::{Campaign, Claim};
use llmpulse_core::store::{Store, StoreError};

/// Expected against present, for one target or industry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub expected: u64,
    pub present: u64,
    pub successes: u64,
}

/// A campaign's state in a store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignStatus {
    pub campaign: String,
    pub location: String,
    pub as_of: DateTime<Utc>,
    pub slots_total: u64,
    /// Slots that have started by `as_of`.
    pub slots_due: u64,
    /// Slots with a run (a manifest).
    pub runs_present: u64,
    pub missing_slots: Vec<u64>,
    /// A campaign claimed per origin (`per_origin`): the origins that ran any of its slots, and
    /// the due slots each has not run (a slot nobody ran is in `missing_slots` too).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub missing_by_origin: BTreeMap<String, Vec<u64>>,
    /// Slots whose run started more than a quarter of a slot after the slot did.
    pub late_slots: Vec<u64>,
    /// Slots with more than one run (per origin, for a campaign claimed per origin): should
    /// never happen, claims are create-only.
    pub duplicate_slots: Vec<u64>,
    /// Sharded slots some of whose shards have no manifest yet.
    pub incomplete_slots: Vec<u64>,
    /// Claims whose run died: older than the claim timeout, no manifest.
    pub dead_claims: Vec<u64>,
    pub records_expected: u64,
    pub records_present: u64,
    pub by_target: BTreeMap<String, Tally>,
    pub by_industry: BTreeMap<String, Tally>,
    /// The campaign's budget and its account in the store; absent without a budget or spend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetStatus>,
}

/// A campaign's money: its limits, its stored account, and the slots its budget stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BudgetStatus {
    pub budget_usd: Option<f64>,
    pub daily_budget_usd: Option<f64>,
    /// `spend/{campaign}.json`: what settled calls cost, and on the last day it counted.
    pub spent_usd: f64,
    pub spent_calls: u64,
    pub spent_by_day: BTreeMap<String, f64>,
    /// Slots whose run (a shard of it) refused calls for budget, and the calls refused.
    pub stopped_slots: Vec<u64>,
    pub skipped_calls: u64,
    /// Why the first refusal happened, per stopped slot.
    pub why: BTreeMap<u64, String>,
}

/// Reads the campaign's account at `spend/{campaign}.json` (none yet: `None`).
async fn account(
    campaign: &Campaign,
    store: &dyn Store,
) -> Result<Option<llmpulse_core::budget::Spend>, StoreError> {
    let key = llmpulse_core::budget::spend_key(&campaign.name);
    Ok(store
        .get(&key)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// The runs of `campaign` at `store`, by slot (a slot may have several: shards, duplicates).
async fn campaign_runs(
    campaign: &Campaign,
    store: &dyn Store,
) -> Result<HashMap<u64, Vec<Manifest>>, StoreError> {
    let mut runs: HashMap<u64, Vec<Manifest>> = HashMap::new();
    for key in store.list(layout::RUNS_PREFIX).await? {
        if !layout::is_manifest_key(&key) {
            continue;
        }
        let Some(bytes) = store.get(&key).await? else {
            continue;
        };
        let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) else {
            tracing::warn!(%key, "unreadable manifest skipped");
            continue;
        };
        if m.campaign.as_deref() == Some(campaign.name.as_str())
            && let Some(slot) = m.slot
        {
            runs.entry(slot).or_default().push(m);
        }
    }

    Ok(runs)
}

/// Slots whose claim is older than the campaign's `claim_timeout` and whose run wrote nothing.
async fn dead_claims(
    campaign: &Campaign,
    store: &dyn Store,
    runs: &HashMap<u64, Vec<Manifest>>,
    as_of: DateTime<Utc>,
) -> Result<Vec<u64>, StoreError> {
    let mut dead = Vec::new();
    for key in store.list(&layout::claims_prefix(&campaign.name)).await? {
        let Some(bytes) = store.get(&key).await? else {
            continue;
        };
        let Ok(claim) = serde_json::from_slice::<Claim>(&bytes) else {
            continue;
        };
        if !runs.contains_key(&claim.slot) && job::dead(campaign, store, &claim, as_of).await? {
            dead.push(claim.slot);
        }
    }
    dead.sort_unstable();
    Ok(dead)
}

/// Reads a campaign's manifests, claims and records from `store` and compares them with what
/// the campaign should have produced by `as_of`. `per_industry_per_target` maps each industry to
/// the records one run makes for one target (its questions × repetitions).
pub async fn campaign_status(
    campaign: &Campaign,
    store: &dyn Store,
    targets: &[String],
    per_industry_per_target: &BTreeMap<String, u64>,
    as_of: DateTime<Utc>,
) -> Result<CampaignStatus, StoreError> {
    let slots: Vec<_> = campaign.slots().filter(|s| s.start <= as_of).collect();
    let runs = campaign_runs(campaign, store).await?;
    // Per origin, every origin that ran a slot owes every due slot; otherwise one run per slot.
    let vantages: Vec<String> = if campaign.per_origin {
        let mut v: Vec<String> = runs.values().flatten().map(|m| m.origin.clone()).collect();
        v.sort_unstable();
        v.dedup();
        v
    } else {
        Vec::new()
    };
    // Runs owed by now: the due slots, once per origin that runs them.
    let due = slots.len() as u64 * vantages.len().max(1) as u64;

    let per_target: u64 = per_industry_per_target.values().sum();
    let mut by_target: BTreeMap<String, Tally> = targets
        .iter()
        .map(|t| {
            (
                t.clone(),
                Tally {
                    expected: per_target * due,
                    ..Tally::default()
                },
            )
        })
        .collect();
    let mut by_industry: BTreeMap<String, Tally> = per_industry_per_target
        .iter()
        .map(|(i, n)| {
            (
                i.clone(),
                Tally {
                    expected: n * targets.len() as u64 * due,
                    ..Tally::default()
                },
            )
        })
        .collect();
    let mut missing = Vec::new();
    let mut missing_by_origin: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut late = Vec::new();
    let mut duplicates = Vec::new();
    let mut incomplete = Vec::new();
    let mut records_present = 0;
    let mut budget = BudgetStatus {
        budget_usd: campaign.budget_usd,
        daily_budget_usd: campaign.daily_budget_usd,
        ..BudgetStatus::default()
    };
    let quarter = chrono::Duration::from_std(campaign.interval() / 4).unwrap_or_default();
    // The runs each slot owes: one, or one per origin.
    let mut groups: Vec<(u64, Vec<&Manifest>)> = Vec::new();
    for slot in &slots {
        let Some(ms) = runs.get(&slot.index) else {
            missing.push(slot.index);
            for v in &vantages {
                missing_by_origin
                    .entry(v.clone())
                    .or_default()
                    .push(slot.index);
            }
            continue;
        };
        if vantages.is_empty() {
            groups.push((slot.index, ms.iter().collect()));
        }
        for v in &vantages {
            let mine: Vec<&Manifest> = ms.iter().filter(|m| &m.origin == v).collect();
            if mine.is_empty() {
                missing_by_origin
                    .entry(v.clone())
                    .or_default()
                    .push(slot.index);
            } else {
                groups.push((slot.index, mine));
            }
        }
    }
    let starts: HashMap<u64, DateTime<Utc>> = slots.iter().map(|s| (s.index, s.start)).collect();
    for (index, ms) in groups {
        let slot_start = starts[&index];
        // One run per slot (per origin); a sharded run has one manifest per shard.
        let run_id = &ms[0].run_id;
        if ms.iter().any(|m| &m.run_id != run_id) {
            duplicates.push(index);
        }
        let parts: Vec<&Manifest> = ms.iter().copied().filter(|m| &m.run_id == run_id).collect();
        if let Some(shard) = parts[0].shard {
            let mut have: Vec<u32> = parts
                .iter()
                .filter_map(|m| m.shard.map(|s| s.index))
                .collect();
            have.sort_unstable();
            have.dedup();
            if have.len() < shard.count as usize {
                incomplete.push(index);
            }
        }
        let first_start = parts
            .iter()
            .filter_map(|m| DateTime::parse_from_rfc3339(&m.started_at).ok())
            .map(|d| d.with_timezone(&Utc))
            .min();
        if first_start.is_some_and(|started| started - slot_start > quarter) {
            late.push(index);
        }
        for m in &parts {
            if let Some(b) = &m.budget {
                budget.skipped_calls += b.skipped_calls;
                if let Some(why) = &b.stopped {
                    budget.why.entry(index).or_insert_with(|| why.clone());
                }
            }
        }
        if budget.why.contains_key(&index) {
            budget.stopped_slots.push(index);
        }
        for m in &parts {
            records_present += m.records as u64;
            for f in m.files.iter().filter(|f| layout::is_records_jsonl(&f.path)) {
                let Some(bytes) = store.get(&f.path).await? else {
                    continue;
                };
                let Ok(records) = read_jsonl(&String::from_utf8_lossy(&bytes)) else {
                    continue;
                };
                for r in records {
                    for (tally, key) in
                        [(&mut by_target, &r.target), (&mut by_industry, &r.industry)]
                    {
                        let t = tally.entry(key.clone()).or_default();
                        t.present += 1;
                        t.successes += u64::from(r.success);
                    }
                }
            }
        }
    }

    for list in [
        &mut duplicates,
        &mut incomplete,
        &mut late,
        &mut budget.stopped_slots,
    ] {
        list.sort_unstable();
        list.dedup();
    }

    let dead = dead_claims(campaign, store, &runs, as_of).await?;
    let stored = account(campaign, store).await?;
    if let Some(a) = &stored {
        budget.spent_usd = a.spent_usd;
        budget.spent_calls = a.calls;
        budget.spent_by_day = a.days.clone();
    }
    let has_budget = campaign.budget_usd.is_some()
        || campaign.daily_budget_usd.is_some()
        || stored.is_some()
        || budget.skipped_calls > 0;

    Ok(CampaignStatus {
        campaign: campaign.name.clone(),
        location: store.describe(),
        as_of,
        slots_total: campaign.slot_count(),
        slots_due: slots.len() as u64,
        runs_present: slots.iter().filter(|s| runs.contains_key(&s.index)).count() as u64,
        missing_slots: missing,
        missing_by_origin,
        late_slots: late,
        duplicate_slots: duplicates,
        incomplete_slots: incomplete,
        dead_claims: dead,
        records_expected: per_target * targets.len() as u64 * due,
        records_present,
        by_target,
        by_industry,
        budget: has_budget.then_some(budget),
    })
}
