//! Every store keeps the same contract, checked against the real thing: a local directory, an
//! S3 server (moto) and a GCS emulator (fake-gcs-server), both started by `.ci/run`
//! (`AWS_ENDPOINT_URL`, `STORAGE_EMULATOR_HOST`).

mod support;

use std::sync::Arc;

use bytes::Bytes;
use llmpulse_core::store::{self, Created, Store};
use support::{Scratch, create_bucket, service_url};

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

async fn contract(store: Arc<dyn Store>) {
    let run = format!("t{}", rand_suffix());
    let key = |k: &str| format!("{run}/{k}");
    store
        .put(&key("runs/a/manifest.json"), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    store
        .put(
            &key("records/date=2026-11-25/a.jsonl"),
            Bytes::from_static(b"1\n"),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get(&key("runs/a/manifest.json"))
            .await
            .unwrap()
            .unwrap(),
        "{}"
    );
    assert_eq!(store.get(&key("runs/missing.json")).await.unwrap(), None);
    assert_eq!(
        store.list(&key("runs/")).await.unwrap(),
        vec![key("runs/a/manifest.json")]
    );
    // put replaces.
    store
        .put(
            &key("runs/a/manifest.json"),
            Bytes::from_static(b"{\"v\":2}"),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get(&key("runs/a/manifest.json"))
            .await
            .unwrap()
            .unwrap(),
        "{\"v\":2}"
    );

    // 20 racing create-only writes: exactly one wins, and its bytes are what is stored.
    let claim = key("claims/c/0.json");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, claim) = (store.clone(), claim.clone());
        tasks.push(tokio::spawn(async move {
            (
                i,
                store
                    .create(&claim, Bytes::from(format!("{i}")))
                    .await
                    .unwrap(),
            )
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, created) = t.await.unwrap();
        if created == Created::Won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = store.get(&claim).await.unwrap().unwrap();
    assert_eq!(stored, format!("{}", winners[0]));

    // 8 writers each add 1 to one counter 5 times through read → conditional replace → retry
    // on a lost race: no increment is lost, and a stale version never wins.
    let counter = key("spend/c.json");
    assert_eq!(
        store
            .replace(&counter, Bytes::from_static(b"0"), None)
            .await
            .unwrap(),
        store::Swapped::Won
    );
    let (_, first) = store.get_versioned(&counter).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, counter) = (store.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut lost = 0;
            for _ in 0..5 {
                loop {
                    let now = store.get_versioned(&counter).await.unwrap();
                    let n: u64 = now
                        .as_ref()
                        .map_or(0, |(b, _)| std::str::from_utf8(b).unwrap().parse().unwrap());
                    let next = Bytes::from((n + 1).to_string());
                    match store
                        .replace(&counter, next, now.as_ref().map(|(_, v)| v))
                        .await
                        .unwrap()
                    {
                        store::Swapped::Won => break,
                        store::Swapped::Lost => lost += 1,
                    }
                }
            }
            lost
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.get(&counter).await.unwrap().unwrap(), "40");
    // A write against a version read before the others wrote loses, as does a create-only one.
    for expected in [Some(&first), None] {
        assert_eq!(
            store
                .replace(&counter, Bytes::from_static(b"0"), expected)
                .await
                .unwrap(),
            store::Swapped::Lost
        );
    }
    assert_eq!(store.get(&counter).await.unwrap().unwrap(), "40");
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

#[tokio::test]
async fn local_directory_keeps_the_contract() {
    let dir = Scratch::new("store-local");
    let s = store::open(dir.0.to_str().unwrap(), &env).await.unwrap();
    contract(Arc::from(s)).await;
}

#[tokio::test]
async fn s3_keeps_the_contract() {
    let Some(_) = service_url("AWS_ENDPOINT_URL") else {
        return;
    };
    create_bucket("s3", "contract").await;
    let s = store::open("s3://contract/llmpulse", &env).await.unwrap();
    contract(Arc::from(s)).await;
}

#[tokio::test]
async fn gcs_keeps_the_contract() {
    let Some(_) = service_url("STORAGE_EMULATOR_HOST") else {
        return;
    };
    create_bucket("gs", "contract").await;
    let s = store::open("gs://contract/llmpulse", &env).await.unwrap();
    contract(Arc::from(s)).await;
}

#[tokio::test]
async fn a_missing_bucket_is_a_clear_error() {
    let Some(_) = service_url("AWS_ENDPOINT_URL") else {
        return;
    };
    let s = store::open("s3://no-such-bucket-llmpulse/x", &env)
        .await
        .unwrap();
    let err = s.put("k", Bytes::from_static(b"v")).await.unwrap_err();
    assert_eq!(err.kind, store::StoreErrorKind::NoBucket, "{err}");
    assert!(
        err.to_string()
            .starts_with("s3://no-such-bucket-llmpulse/x:"),
        "{err}"
    );
}
