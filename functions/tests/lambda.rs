//! End to end: the Lambda function under cargo-lambda's local Lambda runtime APIs (`cargo lambda
//! watch --only-lambda-apis`, from PyPI's cargo-lambda; `.ci/run` sets LLMPULSE_CARGO_LAMBDA to
//! it). An EventBridge Scheduler payload runs the due slot into the local S3 server; a second,
//! identical invocation (Lambda delivers at least once) finds the slot claimed.

#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{create_bucket, free_port, service_url};

const LAMBDA: &str = env!("CARGO_BIN_EXE_lambda");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

#[test]
fn scheduled_invocations_run_each_slot_once_into_s3() {
    let Some(cargo_lambda) = service_url("LLMPULSE_CARGO_LAMBDA") else {
        return;
    };
    let Some(_) = service_url("AWS_ENDPOINT_URL") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = format!("lambda-{}", std::process::id());
    rt.block_on(create_bucket("s3", &bucket));

    let start = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let end = (chrono::Utc::now() + chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // The provider keys live in Secrets Manager (here: the S3 server's twin, moto): the function
    // reads them at start. This one is a model name, so the test can see it arrived.
    let secret = format!("llmpulse-test/{}", std::process::id());
    rt.block_on(async {
        let url = std::env::var("AWS_ENDPOINT_URL").unwrap();
        let r = support::http()
            .post(url)
            .header("x-amz-target", "secretsmanager.CreateSecret")
            // moto routes a request by the service its credential scope names.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
            )
            .header("content-type", "application/x-amz-json-1.1")
            .body(json!({"Name": secret, "SecretString": "{\"LLMPULSE_TEST_MODEL\": \"from-the-secret\"}"}).to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    });
    // The config is passed inline, as an environment variable can carry it.
    let config = format!(
        "suite = \"builtin:rag-retail-finance\"\noutput = \"s3://{bucket}/llmpulse\"\nconcurrency = 16\n\
         [campaign]\nname = \"lambda\"\nstart = \"{start}\"\nend = \"{end}\"\nevery = \"30m\"\n\
         [[targets]]\nname = \"sim\"\nprovider = \"sim\"\nmodel = \"${{LLMPULSE_TEST_MODEL}}\"\n[targets.sim]\nttft_ms = 5\nitl_ms = 1\n"
    );

    let port = free_port();
    let _apis = Killed(
        Command::new(&cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port);
    let _function = Killed(
        Command::new(LAMBDA)
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("LLMPULSE_CONFIG", &config)
            .env("LLMPULSE_SECRET_ID", &secret)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let invoke = |payload: &Value| -> Value {
        rt.block_on(async {
            support::http()
                .post(format!(
                    "http://127.0.0.1:{port}/2015-03-31/functions/_/invocations"
                ))
                .json(payload)
                .timeout(Duration::from_secs(120))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    };
    // EventBridge Scheduler sends the schedule's input as it is.
    let first = invoke(&json!({"slot": "auto"}));
    assert_eq!(first["outcome"], "ran", "{first}");
    assert_eq!(first["records"], 20);
    assert!(
        first["location"]
            .as_str()
            .unwrap()
            .starts_with(&format!("s3://{bucket}/llmpulse/runs/"))
    );
    // At-least-once delivery: the same event again does nothing.
    let second = invoke(&json!({"slot": "auto"}));
    assert_eq!(second["outcome"], "already_claimed", "{second}");
    assert_eq!(second["run_id"], first["run_id"]);
    // The classic scheduled-event envelope works too.
    let classic = invoke(
        &json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
    );
    assert_eq!(classic["outcome"], "already_claimed", "{classic}");

    // The run is in S3, with every record from the Lambda's region.
    rt.block_on(async {
        let env = |k: &str| std::env::var(k).ok();
        let store = llmpulse_core::store::open(&format!("s3://{bucket}/llmpulse"), &env)
            .await
            .unwrap();
        assert_eq!(store.list("runs/").await.unwrap().len(), 1);
        let files = store.list("records/").await.unwrap();
        let jsonl = files.iter().find(|k| k.ends_with(".jsonl")).unwrap();
        let text = String::from_utf8(store.get(jsonl).await.unwrap().unwrap().to_vec()).unwrap();
        assert_eq!(text.lines().count(), 20);
        assert!(text.lines().all(|l| l.contains("\"origin\":\"lambda:")));
        assert!(
            text.lines()
                .all(|l| l.contains("\"llm_model\":\"from-the-secret\""))
        );
    });
}
