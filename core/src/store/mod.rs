//! Where runs are kept: one [`Store`] trait over a local directory, S3 and GCS, addressed as
//! `DIR`, `s3://bucket/prefix` or `gs://bucket/prefix`. Keys are relative to the prefix and use
//! `/`. Besides plain writes, a store offers a create-only write ([`Store::create`]): the
//! building block of exactly-once scheduled runs (claims).

#[cfg(feature = "gcs")]
pub mod gcs;
pub mod local;
#[cfg(feature = "s3")]
pub mod s3;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;

/// A parsed output location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
    Gcs { bucket: String, prefix: String },
}

impl Location {
    /// Parses `s3://bucket/prefix`, `gs://bucket/prefix` or a directory path.
    pub fn parse(s: &str) -> Result<Location, StoreError> {
        let cloud = |rest: &str, scheme: &str| -> Result<(String, String), StoreError> {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::new(
                    StoreErrorKind::Invalid,
                    s,
                    format!("no bucket in '{s}': write {scheme}://BUCKET/PREFIX"),
                ));
            }
            Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
        };
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = cloud(rest, "s3")?;
            Ok(Location::S3 { bucket, prefix })
        } else if let Some(rest) = s.strip_prefix("gs://") {
            let (bucket, prefix) = cloud(rest, "gs")?;
            Ok(Location::Gcs { bucket, prefix })
        } else if s.contains("://") {
            Err(StoreError::new(
                StoreErrorKind::Invalid,
                s,
                format!("'{s}' is not a location: use a directory, s3://… or gs://…"),
            ))
        } else {
            Ok(Location::Local(PathBuf::from(s)))
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Gcs { bucket, prefix } => write!(f, "gs://{bucket}/{prefix}"),
        }
    }
}

/// The outcome of a create-only write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The object did not exist; it does now, with our bytes.
    Won,
    /// Someone else's object was already there; nothing was written.
    Exists,
}

/// An object's version, for a conditional replace: S3's ETag, GCS's generation, a local
/// file's content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub String);

/// The outcome of a conditional replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swapped {
    /// The object was still as read; it holds our bytes now.
    Won,
    /// Someone else wrote it since (or created it first); nothing was written.
    Lost,
}

/// What kind of failure a store reported, so callers can decide to retry or spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Not reachable, throttled, or a server error: worth retrying, then spooling.
    Unavailable,
    /// Credentials refused.
    Denied,
    /// The bucket does not exist.
    NoBucket,
    /// A bad location or key.
    Invalid,
    /// Anything else.
    Other,
}

/// A store failure, naming the location.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{location}: {message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub location: String,
    pub message: String,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, location: &str, message: String) -> Self {
        StoreError {
            kind,
            location: location.to_string(),
            message,
        }
    }

    /// Whether trying again later may help.
    pub fn retryable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }
}

/// Object storage as llmpulse uses it.
pub trait Store: Send + Sync {
    /// The location, for messages: `results`, `s3://bucket/prefix`.
    fn describe(&self) -> String;
    /// Writes `bytes` at `key`, replacing what was there.
    fn put<'a>(&'a self, key: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Writes the file at `file` to `key`, replacing what was there. The default reads it into
    /// memory; a store that can copy a file in pieces does so.
    fn put_file<'a>(
        &'a self,
        key: &'a str,
        file: &'a std::path::Path,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let bytes = std::fs::read(file).map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Other,
                    &self.describe(),
                    format!("cannot read {}: {e}", file.display()),
                )
            })?;
            self.put(key, Bytes::from(bytes)).await
        })
    }
    /// Writes `bytes` at `key` only if nothing is there yet (S3 `If-None-Match: *`, GCS
    /// `ifGenerationMatch=0`, local `link`).
    fn create<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<Created, StoreError>>;
    /// The bytes at `key`, or `None` when there is no such object.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>>;
    /// The bytes at `key` and their version, or `None` when there is no such object.
    fn get_versioned<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Bytes, Version)>, StoreError>>;
    /// Writes `bytes` at `key` only if the object is still at `expected` (S3 `If-Match`, GCS
    /// `ifGenerationMatch`, local: under a lock), or with `None` only if there is none yet. A
    /// read–modify–write loop over this keeps one account for many writers.
    fn replace<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
        expected: Option<&'a Version>,
    ) -> BoxFuture<'a, Result<Swapped, StoreError>>;
    /// Every key that starts with `prefix`, sorted.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>>;
}

/// Opens the store at `location`. Cloud credentials come from each cloud's default chain;
/// `env` is asked for endpoint overrides (`AWS_ENDPOINT_URL`, `STORAGE_EMULATOR_HOST`).
#[cfg_attr(not(any(feature = "s3", feature = "gcs")), allow(unused_variables))]
pub async fn open(
    location: &str,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Box<dyn Store>, StoreError> {
    Ok(match Location::parse(location)? {
        Location::Local(dir) => Box::new(local::LocalStore::new(dir)),
        #[cfg(feature = "s3")]
        Location::S3 { bucket, prefix } => Box::new(s3::S3Store::new(bucket, prefix, env).await),
        #[cfg(feature = "gcs")]
        Location::Gcs { bucket, prefix } => {
            Box::new(gcs::GcsStore::new(bucket, prefix, env).await?)
        }
        #[allow(unreachable_patterns)]
        other => return Err(not_built(&other)),
    })
}

/// The error for a store this build was compiled without.
#[allow(dead_code)]
fn not_built(location: &Location) -> StoreError {
    let feature = match location {
        Location::S3 { .. } => "s3",
        _ => "gcs",
    };
    StoreError::new(
        StoreErrorKind::Invalid,
        &location.to_string(),
        format!(
            "this build of llmpulse has no {feature} store: build it with `--features {feature}` \
             (release builds and `cargo install --path cli` have every store)"
        ),
    )
}

/// Joins a prefix and a key.
#[cfg(any(feature = "s3", feature = "gcs"))]
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}

/// Runs `op` up to `attempts` times while it fails with a retryable error, backing off
/// exponentially from `first_wait`.
pub async fn with_retries<T, F, Fut>(
    attempts: u32,
    first_wait: Duration,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut wait = first_wait;
    let mut n = 1;
    loop {
        match op().await {
            Err(e) if e.retryable() && n < attempts => {
                tracing::warn!(attempt = n, error = %e, "store write failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
                n += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://b/llm/pulse/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "llm/pulse".into()
            }
        );
        assert_eq!(
            Location::parse("gs://b").unwrap(),
            Location::Gcs {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse("results").unwrap(),
            Location::Local("results".into())
        );
        assert!(Location::parse("s3:///x").is_err());
        assert!(Location::parse("ftp://x").is_err());
    }
}
