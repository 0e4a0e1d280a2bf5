//! The client's TTFT beside the server's own (llama.cpp's `timings.prompt_ms`, in
//! `server_ttft_sec`), against the real `llama-server` in CI with its 4 slots: one call at a time
//! leaves almost nothing outside the server; twelve at once make eight wait for a slot, and the
//! report says that the time passed outside the server's prompt processing.

mod support;

use serde_json::Value;
use support::{Scratch, report_summary, run_records, service_url, target_as};

fn server_timing(dir: &Scratch, url: &str, concurrency: usize) -> (Value, Vec<Value>, String) {
    dir.write(
        "suite.toml",
        "name = \"t\"\n[[questions]]\nid = \"q\"\nindustry = \"retail\"\n\
         question = \"Name three colours.\"\ncontext = []\nkey_facts = []\n",
    );
    let cfg = format!(
        "suite = \"suite.toml\"\nconcurrency = {concurrency}\nrepetitions = 12\n{}",
        target_as(
            "llama",
            "llamacpp",
            url,
            "smollm2",
            "temperature = 0\nmax_tokens = 24\n"
        )
    );
    let rows = run_records(dir, &cfg, &[]);
    assert_eq!(rows.len(), 12);
    for r in &rows {
        assert_eq!(r["success"], true, "{r}");
        let (client, server) = (
            r["ttft_sec"].as_f64().unwrap(),
            r["server_ttft_sec"].as_f64().unwrap(),
        );
        assert!(
            server <= client,
            "server {server} s after the client's {client} s: {r}"
        );
    }
    let summary = report_summary(&dir.0);
    let timing = summary["targets"][0]["server_timing"].clone();
    let md = std::fs::read_to_string(dir.0.join("r/summary.md")).unwrap();
    (timing, rows, md)
}

#[test]
fn calls_waiting_for_a_slot_show_as_time_outside_the_server() {
    let Some(url) = service_url("LLMPULSE_LLAMACPP_URL") else {
        return;
    };
    let alone = Scratch::new("server-timing-1");
    let (one, _, md_one) = server_timing(&alone, &url, 1);
    assert_eq!(one["server_ttft_sec"]["n"], 12, "{one:#}");
    assert_eq!(one["server_ahead"]["k"], 0, "{one:#}");
    // One call at a time on loopback: the rest of the TTFT is HTTP and sampling the token.
    let outside_one = one["outside_server_sec"]["p50"]["value"].as_f64().unwrap();
    assert!(outside_one < 0.05, "{one:#}");
    assert!(!md_one.contains("**Client and server"), "{md_one}");

    let crowd = Scratch::new("server-timing-12");
    let (many, rows, md_many) = server_timing(&crowd, &url, 12);
    let outside_many = many["outside_server_sec"]["p50"]["value"].as_f64().unwrap();
    // Eight of twelve calls waited for one of four slots: the median call waited.
    assert!(
        outside_many > outside_one * 3.0 && outside_many > 0.05,
        "{many:#}"
    );
    let p50_client = {
        let mut t: Vec<f64> = rows
            .iter()
            .map(|r| r["ttft_sec"].as_f64().unwrap())
            .collect();
        t.sort_by(f64::total_cmp);
        (t[5] + t[6]) / 2.0
    };
    let share = many["outside_share"].as_f64().unwrap();
    assert!(
        (share - outside_many / p50_client).abs() < 0.05,
        "{share} {many:#}"
    );
    assert!(
        md_many.contains("**Client and server, `llama`:**")
            && md_many.contains("the server's queue"),
        "{md_many}"
    );
}
