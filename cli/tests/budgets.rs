//! What calls cost and budgets that hold: `llmpulse run` against the simulator as a real HTTP
//! server that reports usage, with prices on the targets; and three shards of one campaign
//! slot racing for one budget kept in a local S3 (moto, started by `.ci/run`).

mod support;

use std::process::Command;

use serde_json::Value;
use support::{BIN, Scratch, Sim, f, ok, records, run_with, target};

/// $1,000 per million input tokens and $2,000 per million output: a call of a few hundred
/// tokens costs cents, so a budget of a dollar ends a run of 80 calls.
const PRICE: &str =
    "max_tokens = 20\nprice = { input_per_mtok = 1000.0, output_per_mtok = 2000.0 }";

/// A record's cost by hand: its tokens at [`PRICE`].
fn by_hand(r: &Value) -> f64 {
    f(&r["prompt_tokens"]) * 1000.0 / 1e6 + f(&r["response_tokens"]) * 2000.0 / 1e6
}

fn manifests(out: &std::path::Path) -> Vec<Value> {
    support::walk(out)
        .into_iter()
        .filter(|p| p.ends_with("manifest.json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn every_call_costs_its_tokens_at_the_price_or_what_the_provider_said() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "20"]);
    // A second simulator that says what each call cost, as OpenRouter does ($5 per M tokens).
    let billing = Sim::start(&[
        "--ttft-ms",
        "5",
        "--itl-ms",
        "1",
        "--output-tokens",
        "20",
        "--cost-per-mtok",
        "5",
    ]);
    let dir = Scratch::new("cost-per-call");
    let cfg = format!(
        "suite = \"suite.toml\"\nrepetitions = 3\n{}{}{}",
        target("priced", &sim.base_url, PRICE),
        target("billed", &billing.base_url, PRICE),
        target("free", &sim.base_url, "max_tokens = 20"),
    );
    ok(&run_with(&dir, &cfg, &[], &[]));
    let rows = records(&dir.0.join("out"));
    assert_eq!(rows.len(), 9);
    for r in &rows {
        assert_eq!(r["success"], true, "{r:#}");
        match r["target"].as_str().unwrap() {
            "priced" => {
                assert_eq!(r["cost_source"], "price_table");
                assert!((f(&r["cost_usd"]) - by_hand(r)).abs() < 1e-12, "{r:#}");
            }
            "billed" => {
                // The provider's figure wins over the price table.
                assert_eq!(r["cost_source"], "provider");
                let said = (f(&r["prompt_tokens"]) + f(&r["response_tokens"])) * 5.0 / 1e6;
                assert!((f(&r["cost_usd"]) - said).abs() < 1e-12, "{r:#}");
            }
            _ => assert!(
                r["cost_usd"].is_null() && r["cost_source"].is_null(),
                "{r:#}"
            ),
        }
    }
}

#[test]
fn a_run_stops_at_its_budget() {
    let sim = Sim::start(&["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "20"]);
    let dir = Scratch::new("run-budget");
    let cfg = format!(
        "suite = \"suite.toml\"\nrepetitions = 80\nconcurrency = 4\n{}",
        target("priced", &sim.base_url, PRICE)
    );
    let cap = 1.0;
    let out = run_with(&dir, &cfg, &[], &["--max-cost-usd", "1.0"]);
    ok(&out);
    let rows = records(&dir.0.join("out"));
    assert_eq!(
        rows.len(),
        80,
        "every planned call is a record, made or not"
    );
    let (made, skipped): (Vec<&Value>, Vec<&Value>) = rows
        .iter()
        .partition(|r| r["error_kind"] != "skipped_budget");
    assert!(
        !skipped.is_empty() && made.len() > 10,
        "{} made",
        made.len()
    );
    for r in &skipped {
        assert_eq!(r["success"], false);
        assert_eq!(r["attempts"], 0, "a skipped call was never sent: {r:#}");
        let why = r["error_message"].as_str().unwrap();
        assert!(why.contains("run budget $1 reached"), "{why}");
    }
    let spent: f64 = made.iter().map(|r| f(&r["cost_usd"])).sum();
    // The worst case of one call: the prompt estimate and a quarter more, plus 16, and all of
    // max_tokens; calls hold it while they run, so the spend stays under the cap.
    let worst = made.iter().map(|r| by_hand(r)).fold(0.0, f64::max) * 2.0;
    assert!(spent <= cap, "spent ${spent} of ${cap}");
    assert!(
        spent > cap - 5.0 * worst,
        "stopped early: ${spent} of ${cap}"
    );
    let m = &manifests(&dir.0.join("out"))[0];
    let b = &m["budget"];
    assert_eq!(b["run_cap_usd"], 1.0);
    assert_eq!(b["skipped_calls"], skipped.len());
    assert!((f(&b["spent_usd"]) - spent).abs() < 1e-9, "{b:#}");
    assert!(
        b["stopped"]
            .as_str()
            .unwrap()
            .starts_with("run budget $1 reached")
    );
}

#[test]
fn three_shards_share_one_campaign_budget_in_s3() {
    let Some(_) = support::service_url("AWS_ENDPOINT_URL") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(support::create_bucket("s3", "budgets"));
    let sim = Sim::start(&["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "20"]);
    let dir = Scratch::new("campaign-budget");
    dir.write("suite.toml", support::ONE_QUESTION);
    // A campaign of its own each time: the account of an earlier test run stays in the bucket.
    let campaign = format!("budget-race-{}", std::process::id());
    let budget = 1.5;
    let cfg = dir.write(
        "config.toml",
        &format!(
            "suite = \"suite.toml\"\nrepetitions = 60\nconcurrency = 3\n\
             output = \"s3://budgets/llmpulse\"\n\
             [campaign]\nname = \"{campaign}\"\nstart = \"2026-01-01T00:00:00Z\"\n\
             end = \"2027-01-01T00:00:00Z\"\nevery = \"1h\"\nbudget_usd = {budget}\n{}",
            target("priced", &sim.base_url, PRICE)
        ),
    );
    let shards: Vec<_> = (0..3)
        .map(|i| {
            Command::new(BIN)
                .args([
                    "run",
                    "--quiet",
                    "--slot",
                    "0",
                    "--shard",
                    &format!("{i}/3"),
                    "--config",
                ])
                .arg(&cfg)
                .env("XDG_CACHE_HOME", dir.0.join(format!("cache{i}")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for s in shards {
        ok(&s.wait_with_output().unwrap());
    }
    let (spend, rows) = rt.block_on(async {
        let env = |k: &str| std::env::var(k).ok();
        let store = llmpulse_core::store::open("s3://budgets/llmpulse", &env)
            .await
            .unwrap();
        let spend: Value = serde_json::from_slice(
            &store
                .get(&format!("spend/{campaign}.json"))
                .await
                .unwrap()
                .expect("the campaign's spend is stored"),
        )
        .unwrap();
        let mut rows = Vec::new();
        for key in store.list("records/").await.unwrap() {
            if !key.ends_with(".jsonl") {
                continue;
            }
            let text = store.get(&key).await.unwrap().unwrap();
            for line in std::str::from_utf8(&text).unwrap().lines() {
                let r: Value = serde_json::from_str(line).unwrap();
                if r["campaign"] == campaign.as_str() {
                    rows.push(r);
                }
            }
        }
        (spend, rows)
    });
    assert_eq!(rows.len(), 60, "the three shards' records");
    let made: Vec<&Value> = rows
        .iter()
        .filter(|r| r["error_kind"] != "skipped_budget")
        .collect();
    let skipped = rows.len() - made.len();
    assert!(
        skipped > 0 && made.len() > 10,
        "{} made, {skipped} skipped",
        made.len()
    );
    let spent = f(&spend["spent_usd"]);
    let worst = made.iter().map(|r| by_hand(r)).fold(0.0, f64::max) * 2.0;
    assert!(spent <= budget + 3.0 * worst, "spent ${spent} of ${budget}");
    // The account is the sum of the records' costs, and nothing is left held.
    let records_cost: f64 = made.iter().map(|r| f(&r["cost_usd"])).sum();
    assert!(
        (records_cost - spent).abs() < 1e-9,
        "records ${records_cost}, account ${spent}"
    );
    assert_eq!(spend["calls"], made.len());
    assert_eq!(spend["holds"], serde_json::json!({}));
    // `campaign status` reads the same account, and names the slot the budget stopped.
    let status = support::campaign_status(&cfg);
    let b = &status["budget"];
    assert!((f(&b["spent_usd"]) - spent).abs() < 1e-12, "{b:#}");
    assert_eq!(b["stopped_slots"], serde_json::json!([0]), "{b:#}");
    assert_eq!(b["skipped_calls"], skipped, "{b:#}");
}

/// Whether a record's answer counts as correct, by the report's rule: the expected answer
/// where the question has one, else a quality score of 0.7 or more, else every key fact covered.
fn correct(r: &Value) -> Option<bool> {
    if r["success"] != true {
        return None;
    }
    if let Some(b) = r["answer_correct"].as_bool() {
        return Some(b);
    }
    if let Some(q) = r["quality_score"].as_f64() {
        return Some(q >= 0.7);
    }
    r["coverage_score"].as_f64().map(|c| c >= 1.0 - 1e-9)
}

#[test]
fn report_and_select_weigh_what_each_answer_cost() {
    let sim = Sim::start(&["--ttft-ms", "2", "--itl-ms", "1", "--output-tokens", "20"]);
    let dir = Scratch::new("cost-report");
    // The same server at two prices (ten times apart), and once with no price.
    let cfg = format!(
        "suite = \"suite.toml\"\nrepetitions = 12\nconcurrency = 4\n{}{}{}",
        target("cheap", &sim.base_url, PRICE),
        target(
            "dear",
            &sim.base_url,
            "max_tokens = 20\nprice = { input_per_mtok = 10000.0, output_per_mtok = 20000.0 }"
        ),
        target("unpriced", &sim.base_url, "max_tokens = 20"),
    );
    ok(&run_with(&dir, &cfg, &[], &[]));
    let rows = records(&dir.0.join("out"));
    let summary = support::report_summary(&dir.0);

    let mut total = 0.0;
    for name in ["cheap", "dear"] {
        let mine: Vec<&Value> = rows.iter().filter(|r| r["target"] == name).collect();
        let spent: f64 = mine.iter().map(|r| f(&r["cost_usd"])).sum();
        total += spent;
        // By hand: what the graded calls cost over their correct answers.
        let graded: Vec<&&Value> = mine
            .iter()
            .filter(|r| correct(r).is_some() || r["success"] == false)
            .collect();
        let right = graded.iter().filter(|r| correct(r) == Some(true)).count();
        let graded_cost: f64 = graded.iter().map(|r| f(&r["cost_usd"])).sum();
        let t = summary["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == name)
            .unwrap();
        let c = &t["cost"];
        assert_eq!(c["priced_calls"], mine.len(), "{c:#}");
        assert!((f(&c["spent_usd"]) - spent).abs() < 1e-12, "{c:#}");
        let per_call = spent / mine.len() as f64;
        assert!((f(&c["per_call_usd"]["mean"]) - per_call).abs() < 1e-12);
        assert!((f(&c["per_1k_calls_usd"]) - per_call * 1000.0).abs() < 1e-9);
        let out_tokens: f64 = mine.iter().map(|r| f(&r["response_tokens"])).sum();
        assert!((f(&c["per_1m_output_tokens_usd"]) - spent / out_tokens * 1e6).abs() < 1e-6);
        assert_eq!(c["graded_calls"], graded.len());
        assert_eq!(c["correct_answers"], right);
        assert!(
            right > 0,
            "the simulator's answers cover the key fact: {c:#}"
        );
        let per_correct = graded_cost / right as f64;
        let e = &c["per_correct_answer_usd"];
        assert!((f(&e["value"]) - per_correct).abs() < 1e-12, "{e:#}");
        assert!(
            f(&e["lo"]) <= per_correct && per_correct <= f(&e["hi"]),
            "{e:#}"
        );
    }
    // Nothing priced: no cost figures, rather than a cost of zero.
    let unpriced = summary["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "unpriced")
        .unwrap();
    assert!(unpriced["cost"].is_null(), "{unpriced:#}");
    assert!((f(&summary["spend"]["total_usd"]) - total).abs() < 1e-12);
    let md = std::fs::read_to_string(dir.0.join("r/summary.md")).unwrap();
    assert!(md.contains("## Cost"), "{md}");
    let page = std::fs::read_to_string(dir.0.join("r/index.html")).unwrap();
    assert!(
        page.contains("id=\"cost-quality\""),
        "the cost–quality chart is drawn"
    );

    let select = |args: &[&str]| {
        let out = Command::new(BIN)
            .current_dir(&dir.0)
            .args(["select", "--from", "out", "--min-calls", "5"])
            .args(args)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    // The same answers for a tenth of the price: cheap is the most correct answers per dollar.
    let (code, v) = select(&["--task", "cost_efficiency"]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["recommended_config"]["target"], "cheap", "{v:#}");
    let why = v["why"].to_string();
    assert!(why.contains("per correct answer"), "{why}");
    let excluded = v["excluded"].to_string();
    assert!(
        excluded.contains("unpriced"),
        "no cost, no efficiency: {excluded}"
    );
    // A limit between the two prices leaves only cheap, per call and per 1,000 calls alike.
    let dear_call = summary["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "dear")
        .map(|t| f(&t["cost"]["per_call_usd"]["mean"]))
        .unwrap();
    for (flag, value) in [
        ("--max-cost-per-call", dear_call / 3.0),
        ("--max-cost-per-1k", dear_call / 3.0 * 1000.0),
    ] {
        let value = value.to_string();
        let (code, v) = select(&["--task", "rag_coverage", flag, &value]);
        assert_eq!(code, Some(0), "{flag}: {v:#}");
        assert_eq!(v["recommended_config"]["target"], "cheap", "{flag}: {v:#}");
        let excluded = v["excluded"].to_string();
        assert!(
            excluded.contains("dear") && excluded.contains("above the $"),
            "{flag}: {excluded}"
        );
        assert!(
            excluded.contains("no cost known"),
            "an unpriced target is left out under a cost limit: {excluded}"
        );
    }
}
