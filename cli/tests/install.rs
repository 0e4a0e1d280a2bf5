//! What an installed `llmpulse` gives besides its commands: a `--version` that names the commit
//! and the stores built in, shell completions that cover every subcommand, and man pages.

mod support;

use std::process::Command;

use support::{BIN, Scratch, ok};

#[test]
fn the_version_names_the_commit_it_was_built_from_and_its_stores() {
    let said = ok(&Command::new(BIN).arg("--version").output().unwrap());
    assert!(said.starts_with("llmpulse 0."), "{said}");
    assert!(said.contains("stores: local"), "{said}");
    // Built from this checkout: its HEAD (CI runs on a clone; a tarball build says unknown).
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let expected = if head.is_empty() { "unknown" } else { &head };
    assert!(said.contains(&format!("commit {expected}")), "{said}");
}

#[test]
fn bash_completions_parse_and_offer_every_subcommand() {
    let script = ok(&Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap());
    for sub in ["run", "report", "watch", "select", "completions"] {
        assert!(script.contains(sub), "no {sub} in the script");
    }
    assert!(
        script.contains("--prompts-file"),
        "run's flags are completed"
    );
    // bash reads it without a syntax error, and it registers a completion for llmpulse.
    let dir = Scratch::new("completions");
    let path = dir.0.join("llmpulse.bash");
    std::fs::write(&path, &script).unwrap();
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p llmpulse", path.display()))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let fish = Command::new(BIN)
        .args(["completions", "fish"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&fish.stdout).contains("complete -c llmpulse"));
}

#[test]
fn man_pages_are_written_for_the_command_and_each_subcommand() {
    let dir = Scratch::new("man");
    ok(&Command::new(BIN)
        .arg("man")
        .arg(dir.0.join("man1"))
        .output()
        .unwrap());
    let run = std::fs::read_to_string(dir.0.join("man1/llmpulse-run.1")).unwrap();
    assert!(run.contains(".TH llmpulse-run 1"), "{run}");
    assert!(
        run.contains("prompts\\-file"),
        "run's flags are in its page"
    );
    for page in [
        "llmpulse.1",
        "llmpulse-watch.1",
        "llmpulse-campaign-status.1",
    ] {
        assert!(dir.0.join("man1").join(page).exists(), "no {page}");
    }
}
