//! Stamps `llmpulse --version` with the git commit it was built from (`LLMPULSE_COMMIT`, else
//! the checkout's HEAD, else "unknown" as in a registry build) and the stores compiled in.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=LLMPULSE_COMMIT");
    let commit = std::env::var("LLMPULSE_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // A new commit changes HEAD's branch file (or HEAD itself, detached).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) {
        // (Only files that exist: a missing one would rerun this script on every build.)
        let branch = git(&["symbolic-ref", "-q", "HEAD"]).map(|b| dir.join(b));
        for f in [
            Some(dir.join("HEAD")),
            branch,
            Some(dir.join("packed-refs")),
        ]
        .into_iter()
        .flatten()
        .filter(|f| f.exists())
        {
            println!("cargo:rerun-if-changed={}", f.display());
        }
    }
    let mut stores = vec!["local"];
    for (feature, store) in [("CARGO_FEATURE_S3", "s3"), ("CARGO_FEATURE_GCS", "gcs")] {
        if std::env::var_os(feature).is_some() {
            stores.push(store);
        }
    }
    println!(
        "cargo:rustc-env=LLMPULSE_LONG_VERSION={} (commit {commit}; stores: {})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        stores.join(", ")
    );
}
