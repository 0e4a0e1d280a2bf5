//! What an installed `llmpulse-agent` gives besides its commands: a `--version` that names the
//! commit and its stores, shell completions and man pages, and a health check for containers.

use std::process::Command;

const AGENT: &str = env!("CARGO_BIN_EXE_llmpulse-agent");

fn stdout(args: &[&str]) -> String {
    let out = Command::new(AGENT).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_agent_says_its_version_commit_and_stores_and_completes_its_commands() {
    let version = stdout(&["--version"]);
    assert!(version.starts_with("llmpulse-agent 0."), "{version}");
    assert!(version.contains("stores: local, s3, gcs"), "{version}");
    assert!(version.contains("commit "), "{version}");
    let zsh = stdout(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef llmpulse-agent"), "{zsh}");
    for sub in ["discover", "soak", "sweep", "serve"] {
        assert!(zsh.contains(sub), "no {sub} in the zsh completions");
    }
    let dir = std::env::temp_dir().join(format!("llmpulse-agent-man-{}", std::process::id()));
    stdout(&["man", dir.to_str().unwrap()]);
    let soak = std::fs::read_to_string(dir.join("llmpulse-agent-soak.1")).unwrap();
    assert!(
        soak.contains("clock\\-start"),
        "soak's flags are in its page"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn health_exits_1_with_the_reason_when_no_agent_answers() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(AGENT)
        .args([
            "health",
            "--url",
            &format!("http://127.0.0.1:{port}/health"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unhealthy: no answer"), "{err}");
}
