//! `llmpulse generate`: a generator target writes test cases through tool calls, deterministic
//! checks and validator targets keep the good ones (rejected ones go back to the generator with
//! the reasons), and the kept cases become a suite (seed 001). Every generator and validator
//! call is a record, in a run of its own in the output directory.

use std::process::ExitCode;

use anyhow::{Context, bail};
use llmpulse_core::cases::{self, Case, Kind};
use llmpulse_core::config::Config;
use llmpulse_core::manifest::RunMeta;
use llmpulse_core::provider::{CallOutcome, Client};
use llmpulse_core::publish;
use llmpulse_core::record::{AttemptStats, CallContext, Record};
use llmpulse_core::runner::new_run_id;
use llmpulse_core::score::toolcall;
use llmpulse_core::suite::{Message, Prompt, Question};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::args::GenerateArgs;

/// `[generate]` in the config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    generator: String,
    #[serde(default)]
    validators: Vec<String>,
    #[serde(default = "default_count")]
    count: u32,
    #[serde(default = "default_kinds")]
    kinds: Vec<String>,
    #[serde(default = "default_topics")]
    topics: Vec<String>,
    #[serde(default = "default_threshold")]
    threshold: i64,
    #[serde(default = "default_rounds")]
    max_rounds: u32,
}

fn default_count() -> u32 {
    6
}
fn default_kinds() -> Vec<String> {
    vec!["json".into(), "conversation".into()]
}
fn default_topics() -> Vec<String> {
    vec!["retail".into(), "banking".into(), "software".into()]
}
fn default_threshold() -> i64 {
    4
}
fn default_rounds() -> u32 {
    2
}

#[derive(Deserialize)]
struct File {
    generate: Option<Settings>,
}

/// One row of initial/validated/rejected_tests.csv.
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    attempt: u32,
    kind: &'a str,
    topic: &'a str,
    prompt: &'a str,
    golden_response: String,
    test_case: &'a str,
    status: &'a str,
    reasons: &'a str,
}

struct Tally {
    generated: usize,
    invalid: usize,
    rejected: usize,
}

pub fn generate(a: GenerateArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let config = Config::load(&a.config, &env)?;
    let text = std::fs::read_to_string(&a.config)?;
    let file: File =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", a.config.display()))?;
    let Some(s) = file.generate else {
        bail!(
            "{}: no [generate] table (generator, validators, count, kinds, topics)",
            a.config.display()
        );
    };
    let client = |name: &str| -> anyhow::Result<Client> {
        let t = config
            .targets
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .with_context(|| {
                format!(
                    "{}: [generate] names '{name}', which is not a target",
                    a.config.display()
                )
            })?;
        Ok(Client::new(t)?)
    };
    let generator = client(&s.generator)?;
    let validators: Vec<Client> = s
        .validators
        .iter()
        .map(|v| client(v))
        .collect::<Result<_, _>>()?;
    let kinds: Vec<Kind> = s
        .kinds
        .iter()
        .map(|k| match k.as_str() {
            "json" => Ok(Kind::Json),
            "conversation" => Ok(Kind::Conversation),
            o => Err(anyhow::anyhow!(
                "[generate] kinds: '{o}' is not json or conversation"
            )),
        })
        .collect::<Result<_, _>>()?;
    if kinds.is_empty() || s.topics.is_empty() || s.count == 0 {
        bail!("[generate]: count, kinds and topics must not be empty");
    }
    std::fs::create_dir_all(&a.output)?;
    let started = chrono::Utc::now();
    let run_id = new_run_id(started);
    let runtime = tokio::runtime::Runtime::new()?;
    let mut records: Vec<Record> = Vec::new();
    let mut all: Vec<(Case, u32, String, String)> = Vec::new(); // case, attempt, status, reasons
    let mut kept: Vec<Case> = Vec::new();
    let mut tally = Tally {
        generated: 0,
        invalid: 0,
        rejected: 0,
    };
    for i in 0..s.count as usize {
        let kind = kinds[i % kinds.len()];
        let topic = &s.topics[i % s.topics.len()];
        let id = format!("case-{:02}", i + 1);
        let mut reasons = String::new();
        for attempt in 0..=s.max_rounds {
            let ask = generator_prompt(kind, topic, &id, &reasons);
            let (out, stats) = runtime.block_on(generator.call_with_retries(&ask));
            records.push(record(
                &run_id,
                &generator,
                &ask,
                (&out, &stats),
                &id,
                topic,
                "generator",
                attempt,
            ));
            tally.generated += 1;
            let case = match tool_arguments(&out, kind.tool())
                .and_then(|args| cases::parse_case(&args, kind, topic, &id))
            {
                Ok(mut c) => {
                    c.id = id.clone();
                    c
                }
                Err(why) => {
                    tally.invalid += 1;
                    reasons = why.clone();
                    let empty = Case {
                        id: id.clone(),
                        kind,
                        topic: topic.clone(),
                        prompt: String::new(),
                        golden: json!(null),
                        test_case: String::new(),
                    };
                    all.push((empty, attempt, "invalid".into(), why));
                    continue;
                }
            };
            let mut wrong = cases::check(&case);
            if let Some(other) = cases::near_duplicate(&case, &kept) {
                wrong.push(format!("nearly repeats {other}"));
            }
            if !wrong.is_empty() {
                tally.rejected += 1;
                reasons = wrong.join("; ");
                all.push((case, attempt, "rejected".into(), reasons.clone()));
                continue;
            }
            let mut verdicts = Vec::new();
            for v in &validators {
                let ask = validator_prompt(&case);
                let (out, stats) = runtime.block_on(v.call_with_retries(&ask));
                records.push(record(
                    &run_id,
                    v,
                    &ask,
                    (&out, &stats),
                    &id,
                    topic,
                    "validator",
                    attempt,
                ));
                match tool_arguments(&out, "validate_test_case")
                    .and_then(|a| cases::parse_scores(&a))
                {
                    Ok((p, r, _)) if p >= s.threshold && r >= s.threshold => {}
                    Ok((p, r, why)) => verdicts.push(format!(
                        "{}: prompt {p}/5, response {r}/5{}",
                        v.target().name,
                        if why.is_empty() {
                            String::new()
                        } else {
                            format!(" ({why})")
                        }
                    )),
                    Err(e) => verdicts.push(format!("{}: {e}", v.target().name)),
                }
            }
            if verdicts.is_empty() {
                all.push((case.clone(), attempt, "kept".into(), String::new()));
                kept.push(case);
                break;
            }
            tally.rejected += 1;
            reasons = verdicts.join("; ");
            all.push((case, attempt, "rejected".into(), reasons.clone()));
        }
    }

    // The files.
    let write = |name: &str,
                 rows: &mut dyn Iterator<Item = &(Case, u32, String, String)>|
     -> anyhow::Result<()> {
        let mut w = csv::Writer::from_path(a.output.join(name))?;
        for (c, attempt, status, why) in rows {
            w.serialize(Row {
                id: &c.id,
                attempt: *attempt,
                kind: match c.kind {
                    Kind::Json => "json",
                    Kind::Conversation => "conversation",
                },
                topic: &c.topic,
                prompt: &c.prompt,
                golden_response: match &c.golden {
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                },
                test_case: &c.test_case,
                status,
                reasons: why,
            })?;
        }
        w.flush()?;
        Ok(())
    };
    write("initial_tests.csv", &mut all.iter())?;
    write(
        "validated_tests.csv",
        &mut all.iter().filter(|r| r.2 == "kept"),
    )?;
    write(
        "rejected_tests.csv",
        &mut all.iter().filter(|r| r.2 != "kept"),
    )?;
    let suite_path = a.output.join("generated_suite.toml");
    std::fs::write(&suite_path, cases::suite_toml("generated", &kept)?)?;
    let meta = RunMeta {
        run_id: run_id.clone(),
        started_at: started.to_rfc3339(),
        campaign: None,
        slot: None,
        origin: format!("local:{}", crate::run::hostname()),
        config_hash: config.sha256.get(..16).unwrap_or_default().to_string(),
        suite: "generate".into(),
        targets: std::iter::once(s.generator.clone())
            .chain(s.validators.clone())
            .collect(),
        shard: None,
        planned: None,
        host: None,
        rescored_from: None,
        server_metrics: None,
        budget: None,
        pace: None,
    };
    let encoded = publish::encode(&meta, &records, chrono::Utc::now())?;
    publish::write_local(&a.output, &encoded)?;
    println!(
        "{} cases asked of {}: {} generator calls, {} invalid, {} rejected, {} kept",
        s.count,
        s.generator,
        tally.generated,
        tally.invalid,
        tally.rejected,
        kept.len()
    );
    println!(
        "suite: {} (llmpulse run accepts it as it is)",
        suite_path.display()
    );
    println!(
        "files: initial_tests.csv, validated_tests.csv, rejected_tests.csv in {}",
        a.output.display()
    );
    if kept.is_empty() {
        eprintln!("warning: no case was kept; the suite has no questions and will not load");
    }
    Ok(ExitCode::SUCCESS)
}

fn tool_prompt(user: String, tool: serde_json::Value, name: &str) -> Prompt {
    Prompt {
        messages: vec![Message {
            role: "user",
            content: user,
        }],
        schema: None,
        tools: vec![tool],
        tool_choice: Some(json!({"type": "function", "function": {"name": name}})),
    }
}

fn generator_prompt(kind: Kind, topic: &str, id: &str, rejected: &str) -> Prompt {
    let what = match kind {
        Kind::Json => {
            "The prompt asks for facts it states, as a JSON object; golden_response is the exact object a right answer gives."
        }
        Kind::Conversation => {
            "The prompt is a customer's message; golden_response is the ideal reply, in two or three sentences."
        }
    };
    let mut user = format!(
        "Write one test case about {topic} for benchmarking language models, by calling {}. {what} Use the id {id}.",
        kind.tool()
    );
    if !rejected.is_empty() {
        user.push_str(&format!(
            " Your last case was rejected: {rejected}. Write a better one."
        ));
    }
    tool_prompt(user, cases::generator_tool(kind), kind.tool())
}

fn validator_prompt(c: &Case) -> Prompt {
    let user = format!(
        "Score this test case by calling validate_test_case: is the prompt clear and answerable \
         (prompt_quality_score, 0 to 5), and is the golden response right and complete for it \
         (response_quality_score, 0 to 5)? Give reasons.\n\nid: {}\nprompt: {}\ngolden response: {}",
        c.id, c.prompt, c.golden
    );
    tool_prompt(user, cases::validator_tool(), "validate_test_case")
}

/// The arguments of the call to `tool`: native, written in the answer text, or the answer's
/// own JSON object (a model without tool calls answering in JSON).
fn tool_arguments(out: &CallOutcome, tool: &str) -> Result<String, String> {
    if let Some(e) = &out.error {
        return Err(format!("the call failed: {}", e.kind.as_str()));
    }
    let native: Vec<(String, String)> = out
        .tool_calls
        .iter()
        .map(|c| (c.name.clone(), c.arguments.clone()))
        .collect();
    if let Some((_, args)) = native.iter().find(|(n, _)| n == tool) {
        return Ok(args.clone());
    }
    let found = toolcall::detect(&[], &out.answer, &[tool]);
    if let Some(c) = found.calls.iter().find(|c| c.name == tool) {
        return Ok(c.arguments.to_string());
    }
    // A model that cannot call tools may still answer with the fields as a JSON object.
    match llmpulse_core::score::structured::answer_json(&out.answer) {
        Some(v @ serde_json::Value::Object(_)) => Ok(v.to_string()),
        _ => Err(format!(
            "no call to {tool} in the reply, nor its fields as JSON"
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    run_id: &str,
    client: &Client,
    prompt: &Prompt,
    (out, stats): (&CallOutcome, &AttemptStats),
    id: &str,
    topic: &str,
    role: &str,
    attempt: u32,
) -> Record {
    let text = prompt
        .messages
        .last()
        .map(|m| m.content.as_str())
        .unwrap_or_default();
    let question = Question {
        tools: prompt.tools.clone(),
        tool_choice: prompt.tool_choice.clone(),
        ..Question::bare(id, topic, role, text)
    };
    let mut r = Record::from_call(
        &CallContext {
            run_id,
            campaign: None,
            slot: None,
            origin: "generate",
            config_hash: "",
            keep_answers: true,
            target: client.target(),
            question: &question,
            prompt,
            repetition: attempt,
            stats,
            failover_from: None,
            failover_to: None,
            scheduled_at: None,
            slo: None,
            sources: None,
        },
        out,
    );
    r.role = Some(role.to_string());
    r
}
