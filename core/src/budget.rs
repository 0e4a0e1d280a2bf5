//! Spending limits that hold under concurrency and across machines. Before a call is made it
//! reserves its worst case ([`crate::cost::Price::worst_case`]); a reservation that would pass
//! a limit is refused and the call is recorded as `skipped_budget`, never sent; after the call
//! the reservation is settled at what the call cost. A run's own cap (`max_cost_usd`) is kept
//! in memory; a campaign's (`[campaign] budget_usd`, `daily_budget_usd`) lives in its store as
//! `spend/{campaign}.json`, changed only by conditional replaces retried on conflict, so every
//! shard, slot and machine shares one account. Since every call holds its worst case while it
//! runs, writers together pass a budget only by what calls cost above their worst case (a
//! prompt longer in tokens than estimated).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{Store, Swapped};

/// A campaign's account, as stored at `spend/{campaign}.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub campaign: String,
    /// Raised by every write: two writes never leave the same bytes (the store's version of
    /// the object is what a conditional replace compares).
    pub revision: u64,
    /// What settled calls cost, USD.
    pub spent_usd: f64,
    /// Settled calls.
    pub calls: u64,
    /// Spent per UTC day (`2026-12-03`).
    #[serde(default)]
    pub days: BTreeMap<String, f64>,
    /// Reservations of calls in flight, by writer and number; each lapses at `until` (its
    /// writer died) and is then dropped by the next writer.
    #[serde(default)]
    pub holds: BTreeMap<String, SpendHold>,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendHold {
    pub usd: f64,
    pub day: String,
    pub until: DateTime<Utc>,
}

impl Spend {
    fn held(&self) -> f64 {
        self.holds.values().map(|h| h.usd).sum()
    }

    fn held_on(&self, day: &str) -> f64 {
        self.holds
            .values()
            .filter(|h| h.day == day)
            .map(|h| h.usd)
            .sum()
    }
}

/// The limits a campaign's account keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CampaignLimits {
    pub total_usd: Option<f64>,
    pub daily_usd: Option<f64>,
}

/// The store key of a campaign's account.
pub fn spend_key(campaign: &str) -> String {
    format!("spend/{campaign}.json")
}

/// A campaign's shared account in its store.
pub struct Account {
    store: Arc<dyn Store>,
    campaign: String,
    limits: CampaignLimits,
    /// This writer's name in `holds`: the run, its shard and a random part.
    writer: String,
    /// One read–modify–write at a time from this process (others still race, and lose).
    turn: tokio::sync::Mutex<u64>,
    /// The account as last read or written, for the manifest.
    last: Mutex<Option<Spend>>,
}

impl Account {
    pub fn new(
        store: Arc<dyn Store>,
        campaign: &str,
        limits: CampaignLimits,
        writer: &str,
    ) -> Account {
        Account {
            store,
            campaign: campaign.to_string(),
            limits,
            writer: format!("{writer}-{:08x}", rand::random::<u32>()),
            turn: tokio::sync::Mutex::new(0),
            last: Mutex::new(None),
        }
    }

    /// Reads the account, lets `change` edit it (or refuse), and writes it back only if nobody
    /// wrote in between; retried on a lost race.
    async fn update<T>(
        &self,
        mut change: impl FnMut(&mut Spend, DateTime<Utc>) -> Result<T, String>,
    ) -> Result<T, String> {
        let key = spend_key(&self.campaign);
        let mut lost = 0u32;
        loop {
            let now = Utc::now();
            let read = self
                .store
                .get_versioned(&key)
                .await
                .map_err(|e| format!("cannot read the campaign's spend: {e}"))?;
            let (mut spend, version) = match read {
                Some((bytes, v)) => (
                    serde_json::from_slice::<Spend>(&bytes)
                        .map_err(|e| format!("{key} in {}: {e}", self.store.describe()))?,
                    Some(v),
                ),
                None => (
                    Spend {
                        campaign: self.campaign.clone(),
                        ..Spend::default()
                    },
                    None,
                ),
            };
            spend.holds.retain(|_, h| h.until > now);
            let out = change(&mut spend, now);
            let Ok(out) = out else {
                *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(spend);
                return out;
            };
            spend.revision += 1;
            spend.updated_at = now.to_rfc3339();
            let bytes = Bytes::from(serde_json::to_vec_pretty(&spend).unwrap_or_default());
            match self
                .store
                .replace(&key, bytes, version.as_ref())
                .await
                .map_err(|e| format!("cannot write the campaign's spend: {e}"))?
            {
                Swapped::Won => {
                    *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(spend);
                    return Ok(out);
                }
                Swapped::Lost => {
                    lost += 1;
                    if lost >= 200 {
                        return Err(format!("{key}: lost the race to write it 200 times"));
                    }
                    let ms = rand::random::<u64>() % (10 * u64::from(lost.min(20)) + 1);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
            }
        }
    }

    async fn reserve(&self, usd: f64, ttl: Duration) -> Result<String, String> {
        let mut n = self.turn.lock().await;
        *n += 1;
        let id = format!("{}-{}", self.writer, *n);
        let limits = self.limits;
        let result = self
            .update(|spend, now| {
                let day = now.format("%Y-%m-%d").to_string();
                if let Some(total) = limits.total_usd {
                    let committed = spend.spent_usd + spend.held();
                    if committed + usd > total {
                        return Err(format!(
                            "campaign budget ${total} reached: ${:.6} spent and ${:.6} held by calls in flight, this call may cost ${usd:.6}",
                            spend.spent_usd,
                            spend.held()
                        ));
                    }
                }
                if let Some(daily) = limits.daily_usd {
                    let today = spend.days.get(&day).copied().unwrap_or(0.0);
                    if today + spend.held_on(&day) + usd > daily {
                        return Err(format!(
                            "campaign daily budget ${daily} reached for {day}: ${today:.6} spent, this call may cost ${usd:.6}"
                        ));
                    }
                }
                let until = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
                spend.holds.insert(id.clone(), SpendHold { usd, day, until });
                Ok(())
            })
            .await;
        result.map(|()| id)
    }

    async fn settle(&self, id: &str, actual: f64) -> Result<(), String> {
        let _turn = self.turn.lock().await;
        self.update(|spend, now| {
            let day = spend
                .holds
                .remove(id)
                .map_or_else(|| now.format("%Y-%m-%d").to_string(), |h| h.day);
            spend.spent_usd += actual;
            spend.calls += 1;
            *spend.days.entry(day).or_insert(0.0) += actual;
            Ok(())
        })
        .await
    }
}

/// A reservation, to be settled once its call has ended.
#[derive(Debug)]
pub struct Hold {
    usd: f64,
    account: Option<String>,
}

/// The limits one run keeps: its own cap and, for a campaign slot, the campaign's account.
pub struct Budget {
    run_cap: Option<f64>,
    account: Option<Account>,
    tally: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    spent: f64,
    held: f64,
    settled: u64,
    refused: u64,
    /// The first refusal's reason.
    stopped: Option<String>,
}

/// What a run's budget did, for its manifest (`budget`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// `max_cost_usd` for the run.
    #[serde(default)]
    pub run_cap_usd: Option<f64>,
    /// What this run's calls cost, USD.
    pub spent_usd: f64,
    /// Calls not made because a limit would have been passed.
    pub skipped_calls: u64,
    /// Why the first of those was refused; null when none was.
    #[serde(default)]
    pub stopped: Option<String>,
    #[serde(default)]
    pub campaign_budget_usd: Option<f64>,
    #[serde(default)]
    pub campaign_daily_budget_usd: Option<f64>,
    /// The campaign's account as this run last saw it.
    #[serde(default)]
    pub campaign_spent_usd: Option<f64>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("run_cap", &self.run_cap)
            .field("campaign", &self.account.as_ref().map(|a| &a.campaign))
            .finish_non_exhaustive()
    }
}

impl Budget {
    /// A run's budget, or `None` when it has no limit at all.
    pub fn new(run_cap: Option<f64>, account: Option<Account>) -> Option<Arc<Budget>> {
        (run_cap.is_some() || account.is_some()).then(|| {
            Arc::new(Budget {
                run_cap,
                account,
                tally: Mutex::new(Tally::default()),
            })
        })
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `worst` USD for a call that may run for `ttl`, or says why not.
    pub async fn reserve(&self, worst: f64, ttl: Duration) -> Result<Hold, String> {
        let refuse = |why: String| {
            let mut t = self.tally();
            t.refused += 1;
            t.stopped.get_or_insert(why.clone());
            why
        };
        {
            let mut t = self.tally();
            if let Some(cap) = self.run_cap
                && t.spent + t.held + worst > cap
            {
                let why = format!(
                    "run budget ${cap} reached: ${:.6} spent and ${:.6} held by calls in flight, this call may cost ${worst:.6}",
                    t.spent, t.held
                );
                drop(t);
                return Err(refuse(why));
            }
            t.held += worst;
        }
        let account = match &self.account {
            Some(a) => match a.reserve(worst, ttl).await {
                Ok(id) => Some(id),
                Err(why) => {
                    self.tally().held -= worst;
                    return Err(refuse(why));
                }
            },
            None => None,
        };
        Ok(Hold {
            usd: worst,
            account,
        })
    }

    /// Settles `hold` at what its call cost.
    pub async fn settle(&self, hold: Hold, actual: f64) {
        {
            let mut t = self.tally();
            t.held -= hold.usd;
            t.spent += actual;
            t.settled += 1;
        }
        if let (Some(a), Some(id)) = (&self.account, &hold.account)
            && let Err(e) = a.settle(id, actual).await
        {
            // The hold lapses at its time; the spend is missing from the account.
            tracing::error!(error = %e, usd = actual, "a call's cost is not in the campaign's spend");
        }
    }

    /// What the budget did so far.
    pub fn report(&self) -> BudgetReport {
        let t = self.tally();
        let last = self.account.as_ref().and_then(|a| {
            a.last
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|s| s.spent_usd)
        });
        BudgetReport {
            run_cap_usd: self.run_cap,
            spent_usd: t.spent,
            skipped_calls: t.refused,
            stopped: t.stopped.clone(),
            campaign_budget_usd: self.account.as_ref().and_then(|a| a.limits.total_usd),
            campaign_daily_budget_usd: self.account.as_ref().and_then(|a| a.limits.daily_usd),
            campaign_spent_usd: last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_run_cap_refuses_the_call_that_could_pass_it() {
        block(async {
            let b = Budget::new(Some(0.010), None).unwrap();
            let ttl = Duration::from_secs(60);
            let h1 = b.reserve(0.004, ttl).await.unwrap();
            let h2 = b.reserve(0.004, ttl).await.unwrap();
            // 0.008 held: a third worst case of 0.004 could reach 0.012.
            let e = b.reserve(0.004, ttl).await.unwrap_err();
            assert!(e.starts_with("run budget $0.01 reached"), "{e}");
            // Settled below their worst case, the two leave room for a third.
            b.settle(h1, 0.001).await;
            b.settle(h2, 0.001).await;
            let h3 = b.reserve(0.004, ttl).await.unwrap();
            b.settle(h3, 0.004).await;
            let r = b.report();
            assert!((r.spent_usd - 0.006).abs() < 1e-12);
            assert_eq!(r.skipped_calls, 1);
            assert!(r.stopped.unwrap().contains("$0.01"));
        });
    }

    #[test]
    fn a_campaign_account_keeps_total_and_day_across_writers() {
        block(async {
            let dir = std::env::temp_dir().join(format!("llmpulse-budget-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let store: Arc<dyn Store> = Arc::new(crate::store::local::LocalStore::new(dir.clone()));
            let limits = CampaignLimits {
                total_usd: Some(1.0),
                daily_usd: Some(0.5),
            };
            let a = Budget::new(None, Some(Account::new(store.clone(), "c", limits, "a"))).unwrap();
            let b = Budget::new(None, Some(Account::new(store.clone(), "c", limits, "b"))).unwrap();
            let ttl = Duration::from_secs(60);
            let ha = a.reserve(0.3, ttl).await.unwrap();
            // Writer b sees a's hold: 0.3 held + 0.3 would pass the day's 0.5.
            let e = b.reserve(0.3, ttl).await.unwrap_err();
            assert!(e.starts_with("campaign daily budget $0.5 reached"), "{e}");
            a.settle(ha, 0.1).await;
            let hb = b.reserve(0.3, ttl).await.unwrap();
            b.settle(hb, 0.2).await;
            let bytes = block_on_get(&*store, "spend/c.json").await;
            let spend: Spend = serde_json::from_slice(&bytes).unwrap();
            assert!((spend.spent_usd - 0.3).abs() < 1e-12);
            assert_eq!(spend.calls, 2);
            assert!(spend.holds.is_empty());
            assert_eq!(spend.days.len(), 1);
            assert_eq!(b.report().campaign_spent_usd, Some(spend.spent_usd));
        });
    }

    async fn block_on_get(store: &dyn Store, key: &str) -> Bytes {
        store.get(key).await.unwrap().unwrap()
    }

    #[test]
    fn a_dead_writers_hold_lapses() {
        block(async {
            let dir =
                std::env::temp_dir().join(format!("llmpulse-budget-lapse-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let store: Arc<dyn Store> = Arc::new(crate::store::local::LocalStore::new(dir));
            let limits = CampaignLimits {
                total_usd: Some(1.0),
                daily_usd: None,
            };
            let dead =
                Budget::new(None, Some(Account::new(store.clone(), "c", limits, "dead"))).unwrap();
            // Held for 0 s: its writer never settles it.
            let _never = dead.reserve(0.9, Duration::ZERO).await.unwrap();
            let live = Budget::new(None, Some(Account::new(store, "c", limits, "live"))).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(live.reserve(0.9, Duration::from_secs(60)).await.is_ok());
        });
    }
}
