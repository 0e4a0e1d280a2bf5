//! End to end: scheduled runs into real stores. One slot claimed by many triggers at once runs
//! exactly once; a store that refuses writes loses nothing; `campaign status` reads it all
//! back; `plan` tells the truth about triggers. S3 (moto) and GCS (fake-gcs-server) are started
//! by `.ci/run`.

mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::{BIN, Scratch, both_stores_with_bucket, create_bucket, ok, service_url};

/// A campaign that is running now: hourly slots from 30 minutes ago, for a day.
fn config(dir: &Scratch, output: &str) -> std::path::PathBuf {
    let start = (chrono::Utc::now() - chrono::Duration::minutes(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let end = (chrono::Utc::now() + chrono::Duration::hours(24))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    dir.write("suite.toml", support::ONE_QUESTION);
    dir.write(
        "config.toml",
        &format!(
            r#"suite = "suite.toml"
output = "{output}"
repetitions = 2
[campaign]
name = "hourly"
start = "{start}"
end = "{end}"
every = "1h"
claim_timeout = "1s"
[[targets]]
name = "fast"
provider = "sim"
model = "fast"
[targets.sim]
ttft_ms = 5
itl_ms = 1
seed = 1
[[targets]]
name = "slow"
provider = "sim"
model = "slow"
[targets.sim]
ttft_ms = 20
itl_ms = 2
seed = 2
"#
        ),
    )
}

fn llmpulse(args: &[&str], dir: &Scratch) -> Output {
    Command::new(BIN)
        .args(args)
        .env("XDG_CACHE_HOME", dir.0.join("cache"))
        .output()
        .unwrap()
}

fn status(cfg: &std::path::Path, dir: &Scratch, from: Option<&str>) -> Value {
    let mut args = vec![
        "campaign",
        "status",
        "--json",
        "--config",
        cfg.to_str().unwrap(),
    ];
    if let Some(f) = from {
        args.extend(["--from", f]);
    }
    let out = llmpulse(&args, dir);
    ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Twenty triggers fire at once for the same slot: one run, nineteen clean exits.
fn one_slot_many_triggers(output: &str, name: &str) {
    let dir = Scratch::new(name);
    let cfg = config(&dir, output);
    let children: Vec<_> = (0..20)
        .map(|_| {
            Command::new(BIN)
                .args(["run", "--slot", "auto", "--quiet", "--config"])
                .arg(&cfg)
                .env("XDG_CACHE_HOME", dir.0.join("cache"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let claimed = outs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stdout).contains("already claimed"))
        .count();
    assert_eq!(claimed, 19, "19 clean 'already claimed' exits");

    let st = status(&cfg, &dir, None);
    assert_eq!(st["slots_due"], 1);
    assert_eq!(st["runs_present"], 1);
    assert_eq!(st["duplicate_slots"], serde_json::json!([]));
    assert_eq!(st["missing_slots"], serde_json::json!([]));
    // 1 question x 2 targets x 2 repetitions
    assert_eq!(st["records_expected"], 4);
    assert_eq!(st["records_present"], 4);
    assert_eq!(st["by_target"]["fast"]["present"], 2);
    assert_eq!(st["by_industry"]["retail"]["present"], 4);
}

#[test]
fn one_slot_runs_once_against_s3() {
    let Some(_) = service_url("AWS_ENDPOINT_URL") else {
        return;
    };
    let bucket = format!("race-{}", std::process::id());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_bucket("s3", &bucket));
    one_slot_many_triggers(&format!("s3://{bucket}/llmpulse"), "race-s3");
}

#[test]
fn one_slot_runs_once_against_gcs() {
    let Some(_) = service_url("STORAGE_EMULATOR_HOST") else {
        return;
    };
    let bucket = format!("race-{}", std::process::id());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_bucket("gs", &bucket));
    one_slot_many_triggers(&format!("gs://{bucket}/llmpulse"), "race-gcs");
}

#[test]
fn one_slot_runs_once_in_a_local_directory() {
    let dir = Scratch::new("race-local");
    let out = dir.0.join("out");
    one_slot_many_triggers(out.to_str().unwrap(), "race-local-2");
}

/// The same run, written to each store, reads back as the same records.
#[test]
fn every_store_holds_the_same_records() {
    if !both_stores_with_bucket("same") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = Scratch::new("same");
    let local = dir.0.join("local");
    let mut sets = Vec::new();
    for output in [local.to_str().unwrap(), "s3://same/p", "gs://same/p"] {
        let cfg = config(&dir, output);
        let out = llmpulse(
            &[
                "run",
                "--quiet",
                "--slot",
                "auto",
                "--config",
                cfg.to_str().unwrap(),
            ],
            &dir,
        );
        assert!(
            out.status.success(),
            "{output}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let st = status(&cfg, &dir, Some(output));
        assert_eq!(st["runs_present"], 1, "{output}");
        assert_eq!(st["records_present"], 4, "{output}");
        // What a reader sees: question, target, repetition, answer, tokens.
        // Without the repetition number: repetitions send identical requests, and which one
        // the simulator answers first depends on arrival order.
        let mut rows: Vec<String> = read_records(output, &rt)
            .iter()
            .map(|r| {
                let f: Vec<&str> = r.splitn(4, ' ').collect();
                format!("{} {} {}", f[0], f[1], f[3])
            })
            .collect();
        rows.sort();
        sets.push(rows);
    }
    assert_eq!(sets[0].len(), 4);
    assert_eq!(sets[0], sets[1], "local and S3");
    assert_eq!(sets[0], sets[2], "local and GCS");
}

fn read_records(location: &str, rt: &tokio::runtime::Runtime) -> Vec<String> {
    rt.block_on(async {
        let env = |k: &str| std::env::var(k).ok();
        let store = llmpulse_core::store::open(location, &env).await.unwrap();
        let mut rows = Vec::new();
        for key in store.list("records/").await.unwrap() {
            if key.ends_with(".jsonl") {
                let bytes = store.get(&key).await.unwrap().unwrap();
                for r in
                    llmpulse_core::record::read_jsonl(&String::from_utf8_lossy(&bytes)).unwrap()
                {
                    rows.push(format!(
                        "{} {} {} {:?} {:?} {:?}",
                        r.question_id,
                        r.target,
                        r.repetition,
                        r.answer,
                        r.response_tokens,
                        r.success
                    ));
                }
            }
        }
        rows.sort();
        rows
    })
}

/// A store that refuses writes keeps the run in the spool; `upload` finishes the job.
#[test]
fn a_refusing_store_loses_no_record() {
    let Some(_) = service_url("AWS_ENDPOINT_URL") else {
        return;
    };
    let dir = Scratch::new("refused");
    let bucket = format!("later-{}", std::process::id());
    let cfg = config(&dir, &format!("s3://{bucket}/x"));
    let spool = dir.0.join("spool");
    // The bucket does not exist yet: every write is refused.
    let out = llmpulse(
        &[
            "run",
            "--quiet",
            "--config",
            cfg.to_str().unwrap(),
            "--spool",
            spool.to_str().unwrap(),
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "the run happened: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NoSuchBucket") || err.contains("does not exist"),
        "{err}"
    );
    assert!(err.contains("llmpulse upload --spool"), "{err}");
    let spooled: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert_eq!(spooled.len(), 1);

    // Once the bucket exists, upload completes the run with a valid manifest.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_bucket("s3", &bucket));
    let up = llmpulse(&["upload", "--spool", spool.to_str().unwrap()], &dir);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(String::from_utf8_lossy(&up.stdout).contains("uploaded"));
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "spool emptied"
    );
    let rows = read_records(&format!("s3://{bucket}/x"), &rt);
    assert_eq!(rows.len(), 4);
    rt.block_on(async {
        let env = |k: &str| std::env::var(k).ok();
        let store = llmpulse_core::store::open(&format!("s3://{bucket}/x"), &env)
            .await
            .unwrap();
        let manifests = store.list("runs/").await.unwrap();
        assert_eq!(manifests.len(), 1);
        let m: Value =
            serde_json::from_slice(&store.get(&manifests[0]).await.unwrap().unwrap()).unwrap();
        // The manifest's checksums match what is stored.
        for f in m["files"].as_array().unwrap() {
            let bytes = store
                .get(f["path"].as_str().unwrap())
                .await
                .unwrap()
                .unwrap();
            use sha2::Digest;
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&bytes)),
                f["sha256"].as_str().unwrap()
            );
        }
    });
}

/// A campaign claimed per origin runs each slot once from every place it is deployed: a second
/// trigger from the same origin is a no-op, another origin runs the slot again, and status counts
/// what each origin owes (`LLMPULSE_ORIGIN` names the vantage point, as a cloud function's region
/// does).
#[test]
fn a_campaign_per_origin_runs_each_slot_once_from_each_origin() {
    let dir = Scratch::new("per-origin");
    let out_dir = dir.0.join("out");
    let cfg = config(&dir, out_dir.to_str().unwrap());
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("every = \"1h\"", "every = \"20m\"\nper_origin = true");
    std::fs::write(&cfg, text).unwrap();
    let run = |origin: &str, slot: &str| {
        let out = Command::new(BIN)
            .args(["run", "--quiet", "--slot", slot, "--config"])
            .arg(&cfg)
            .env("XDG_CACHE_HOME", dir.0.join("cache"))
            .env("LLMPULSE_ORIGIN", origin)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Slots 0 and 1 are due (the campaign started 30 minutes ago, one slot every 20).
    let (eu, us) = ("lambda:eu-west-1", "cloudrun:us-central1:llmpulse");
    run(eu, "auto");
    assert!(
        run(eu, "auto").contains("already claimed"),
        "once per origin"
    );
    run(eu, "0");
    run(us, "auto");
    let st = status(&cfg, &dir, None);
    assert_eq!(st["slots_due"], 2);
    assert_eq!(st["duplicate_slots"], serde_json::json!([]));
    assert_eq!(st["missing_slots"], serde_json::json!([]));
    assert_eq!(
        st["missing_by_origin"],
        serde_json::json!({ "cloudrun:us-central1:llmpulse": [0] })
    );
    // 2 slots x 2 origins x (1 question x 2 targets x 2 repetitions), of which 3 runs are in.
    assert_eq!(st["records_expected"], 16);
    assert_eq!(st["records_present"], 12);
    let origins: std::collections::BTreeSet<String> = support::records(&out_dir)
        .iter()
        .map(|r| r["origin"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(origins.len(), 2, "{origins:?}");
}

/// A claim whose run died is reported, and can be re-run explicitly.
#[test]
fn a_dead_claim_is_found_and_rerun() {
    let dir = Scratch::new("dead");
    let out_dir = dir.0.join("out");
    let cfg = config(&dir, out_dir.to_str().unwrap());
    // A claim for slot 0 by a run that never wrote a manifest.
    let claim = out_dir.join("claims/hourly/0.json");
    std::fs::create_dir_all(claim.parent().unwrap()).unwrap();
    let old = (chrono::Utc::now() - chrono::Duration::minutes(20)).to_rfc3339();
    std::fs::write(
        &claim,
        format!(r#"{{"campaign":"hourly","slot":0,"slot_start":"{old}","run_id":"dead-run","claimed_at":"{old}","origin":"local:gone","llmpulse_version":"0"}}"#),
    )
    .unwrap();
    let st = status(&cfg, &dir, None);
    assert_eq!(st["dead_claims"], serde_json::json!([0]));
    assert_eq!(st["missing_slots"], serde_json::json!([0]));

    let auto = llmpulse(
        &["run", "--slot", "auto", "--config", cfg.to_str().unwrap()],
        &dir,
    );
    assert!(String::from_utf8_lossy(&auto.stdout).contains("already claimed by run dead-run"));
    let rerun = llmpulse(
        &[
            "run",
            "--quiet",
            "--slot",
            "0",
            "--reclaim",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &dir,
    );
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let st = status(&cfg, &dir, None);
    assert_eq!(st["runs_present"], 1);
    assert_eq!(st["dead_claims"], serde_json::json!([]));
}

#[test]
fn plan_counts_the_seed_campaign_and_explains_cron_steps() {
    let dir = Scratch::new("plan");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg = root.join("examples/seed-campaign.toml");
    let out = llmpulse(
        &[
            "plan",
            "--config",
            cfg.to_str().unwrap(),
            "--trigger",
            "*/51 * * * *",
        ],
        &dir,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("14 per 12h (a slot every 51m 25.7s)"),
        "{text}"
    );
    assert!(text.contains("slots: 112"), "{text}");
    assert!(
        text.contains("per run: 20 questions × 4 targets × 1 repetition = 80 records"),
        "{text}"
    );
    assert!(text.contains("expected: 112 runs, 8,960 records"), "{text}");
    assert!(
        text.contains("fires at minutes 0 and 51 of every hour"),
        "{text}"
    );
    assert!(text.contains("48 a day"), "{text}");
    assert!(text.contains("not every 51 minutes"), "{text}");
    assert!(
        text.contains("EventBridge Scheduler  rate(10 minutes)"),
        "{text}"
    );

    // A trigger that leaves slots empty fails the check, and says which.
    let out = llmpulse(
        &[
            "plan",
            "--config",
            cfg.to_str().unwrap(),
            "--trigger",
            "rate(1 hour)",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("16 slots would never run"));
}

/// Three shards of one slot (a Cloud Run Job's tasks, a CI matrix) make one complete run:
/// no record missing or doubled.
#[test]
fn shards_of_a_slot_make_one_complete_run() {
    let dir = Scratch::new("shards");
    let out_dir = dir.0.join("out");
    let cfg = config(&dir, out_dir.to_str().unwrap());
    let shard = |i: u32| {
        let o = llmpulse(
            &[
                "run",
                "--quiet",
                "--slot",
                "auto",
                "--shard",
                &format!("{i}/3"),
                "--config",
                cfg.to_str().unwrap(),
            ],
            &dir,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    shard(0);
    shard(1);
    // Two of three shards: the slot has its run, but the run is not complete.
    let st = status(&cfg, &dir, None);
    assert_eq!(st["incomplete_slots"], serde_json::json!([0]));
    shard(2);
    let st = status(&cfg, &dir, None);
    assert_eq!(st["runs_present"], 1);
    assert_eq!(st["duplicate_slots"], serde_json::json!([]));
    assert_eq!(st["incomplete_slots"], serde_json::json!([]));
    assert_eq!(st["records_present"], 4);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rows = read_records(out_dir.to_str().unwrap(), &rt);
    let mut keys: Vec<String> = rows
        .iter()
        .map(|r| r.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    keys.dedup();
    assert_eq!(
        keys.len(),
        4,
        "every (question, target, repetition) once: {rows:?}"
    );

    // A second run of shard 1 is a clean no-op.
    let again = llmpulse(
        &[
            "run",
            "--slot",
            "auto",
            "--shard",
            "1/3",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &dir,
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("already claimed"));
}
