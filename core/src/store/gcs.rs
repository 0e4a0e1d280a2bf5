//! Google Cloud Storage as a store, through the official `google-cloud-storage` client.
//! Credentials come from Application Default Credentials (environment, gcloud, metadata
//! server, workload identity). `STORAGE_EMULATOR_HOST`, which that client does not read by
//! itself, points it at an emulator with anonymous credentials.
//!
//! Every write is a single-shot multipart upload with its CRC32C in the metadata part (the
//! emulator stores a trailing checksum part as if it were data). Create-only writes set
//! `ifGenerationMatch=0` on it (the emulator ignores the condition on simple and resumable
//! uploads); 412 means the object exists. Listing uses the JSON API's `objects.list` (the client's listing is gRPC only).

use bytes::Bytes;
use futures_util::future::BoxFuture;
use google_cloud_auth::credentials::{CacheableResource, Credentials};
use google_cloud_storage::client::Storage;
use serde::Deserialize;

use super::{Created, Store, StoreError, StoreErrorKind, Swapped, Version, join};

pub struct GcsStore {
    client: Storage,
    bucket: String,
    prefix: String,
    /// `https://storage.googleapis.com` or the emulator's URL.
    endpoint: String,
    /// `None` for the emulator (anonymous).
    credentials: Option<Credentials>,
    http: reqwest::Client,
}

impl GcsStore {
    pub async fn new(
        bucket: String,
        prefix: String,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Self, StoreError> {
        let where_ = format!("gs://{bucket}/{prefix}");
        let fail = |m: String| StoreError::new(StoreErrorKind::Other, &where_, m);
        let emulator = env("STORAGE_EMULATOR_HOST")
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.contains("://") {
                    h.trim_end_matches('/').to_string()
                } else {
                    format!("http://{h}")
                }
            });
        let (client, endpoint, credentials) = match emulator {
            Some(url) => {
                let anonymous = google_cloud_auth::credentials::anonymous::Builder::new().build();
                let client = Storage::builder()
                    .with_endpoint(url.clone())
                    .with_credentials(anonymous)
                    .build()
                    .await
                    .map_err(|e| fail(format!("cannot build the GCS client: {e}")))?;
                (client, url, None)
            }
            None => {
                let creds = google_cloud_auth::credentials::Builder::default()
                    .build()
                    .map_err(|e| fail(format!("no Google credentials: {e}")))?;
                let client = Storage::builder()
                    .with_credentials(creds.clone())
                    .build()
                    .await
                    .map_err(|e| fail(format!("cannot build the GCS client: {e}")))?;
                (
                    client,
                    "https://storage.googleapis.com".to_string(),
                    Some(creds),
                )
            }
        };
        Ok(GcsStore {
            client,
            bucket,
            prefix,
            endpoint,
            credentials,
            http: {
                crate::provider::http::install_crypto();
                reqwest::Client::new()
            },
        })
    }

    fn bucket_path(&self) -> String {
        format!("projects/_/buckets/{}", self.bucket)
    }

    fn error(&self, e: &google_cloud_storage::Error) -> StoreError {
        let kind = match e.http_status_code() {
            Some(401 | 403) => StoreErrorKind::Denied,
            Some(404) => StoreErrorKind::NoBucket,
            Some(429 | 500..=599) => StoreErrorKind::Unavailable,
            _ if e.is_connect() || e.is_timeout() || e.is_io() || e.is_transport() => {
                StoreErrorKind::Unavailable
            }
            _ => StoreErrorKind::Other,
        };
        StoreError::new(kind, &self.describe(), e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListPage {
    #[serde(default)]
    items: Vec<ListItem>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct ListItem {
    name: String,
}

impl Store for GcsStore {
    fn describe(&self) -> String {
        format!("gs://{}/{}", self.bucket, self.prefix)
    }

    fn put<'a>(&'a self, key: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let crc = crc32c::crc32c(&bytes);
            self.client
                .write_object(self.bucket_path(), join(&self.prefix, key), bytes)
                .with_known_crc32c(crc)
                .send_unbuffered()
                .await
                .map_err(|e| self.error(&e))?;
            Ok(())
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        Box::pin(async move {
            let crc = crc32c::crc32c(&bytes);
            let sent = self
                .client
                .write_object(self.bucket_path(), join(&self.prefix, key), bytes)
                .with_known_crc32c(crc)
                .set_if_generation_match(0)
                .send_unbuffered()
                .await;
            match sent {
                Ok(_) => Ok(Created::Won),
                Err(e) if e.http_status_code() == Some(412) => Ok(Created::Exists),
                Err(e) => Err(self.error(&e)),
            }
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>> {
        Box::pin(async move { Ok(self.get_versioned(key).await?.map(|(b, _)| b)) })
    }

    fn get_versioned<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Bytes, Version)>, StoreError>> {
        Box::pin(async move {
            let resp = self
                .client
                .read_object(self.bucket_path(), join(&self.prefix, key))
                .send()
                .await;
            let mut resp = match resp {
                Ok(r) => r,
                Err(e) if e.http_status_code() == Some(404) => return Ok(None),
                Err(e) => return Err(self.error(&e)),
            };
            let version = Version(resp.object().generation.to_string());
            let mut data = Vec::new();
            while let Some(chunk) = resp.next().await {
                data.extend_from_slice(&chunk.map_err(|e| self.error(&e))?);
            }
            Ok(Some((Bytes::from(data), version)))
        })
    }

    fn replace<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
        expected: Option<&'a Version>,
    ) -> BoxFuture<'a, Result<Swapped, StoreError>> {
        Box::pin(async move {
            let generation = match expected {
                Some(v) => v.0.parse::<i64>().map_err(|_| {
                    StoreError::new(
                        StoreErrorKind::Invalid,
                        &self.describe(),
                        format!("'{}' is not a GCS generation", v.0),
                    )
                })?,
                None => 0,
            };
            let crc = crc32c::crc32c(&bytes);
            let sent = self
                .client
                .write_object(self.bucket_path(), join(&self.prefix, key), bytes)
                .with_known_crc32c(crc)
                .set_if_generation_match(generation)
                .send_unbuffered()
                .await;
            match sent {
                Ok(_) => Ok(Swapped::Won),
                Err(e) if e.http_status_code() == Some(412) => Ok(Swapped::Lost),
                Err(e) => Err(self.error(&e)),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let full = join(&self.prefix, prefix);
            let strip = if self.prefix.is_empty() {
                0
            } else {
                self.prefix.len() + 1
            };
            let unavailable =
                |m: String| StoreError::new(StoreErrorKind::Unavailable, &self.describe(), m);
            let url = format!("{}/storage/v1/b/{}/o", self.endpoint, self.bucket);
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut req = self.http.get(&url).query(&[("prefix", full.as_str())]);
                if let Some(t) = &token {
                    req = req.query(&[("pageToken", t.as_str())]);
                }
                if let Some(creds) = &self.credentials {
                    match creds.headers(http::Extensions::new()).await {
                        Ok(CacheableResource::New { data, .. }) => req = req.headers(data),
                        Ok(CacheableResource::NotModified) => {}
                        Err(e) => {
                            return Err(StoreError::new(
                                StoreErrorKind::Denied,
                                &self.describe(),
                                format!("no Google credentials: {e}"),
                            ));
                        }
                    }
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| unavailable(e.without_url().to_string()))?;
                let status = resp.status().as_u16();
                if status != 200 {
                    let kind = match status {
                        401 | 403 => StoreErrorKind::Denied,
                        404 => StoreErrorKind::NoBucket,
                        429 | 500..=599 => StoreErrorKind::Unavailable,
                        _ => StoreErrorKind::Other,
                    };
                    let body = resp.text().await.unwrap_or_default();
                    return Err(StoreError::new(
                        kind,
                        &self.describe(),
                        format!("listing failed with HTTP {status}: {}", body.trim()),
                    ));
                }
                let page: ListPage = resp
                    .json()
                    .await
                    .map_err(|e| unavailable(format!("bad listing: {e}")))?;
                keys.extend(
                    page.items
                        .into_iter()
                        .filter(|i| i.name.len() >= strip)
                        .map(|i| i.name[strip..].to_string()),
                );
                token = page.next_page_token;
                if token.is_none() {
                    break;
                }
            }
            keys.sort();
            Ok(keys)
        })
    }
}
