//! Amazon S3 (and S3-compatible servers) as a store, through `aws-sdk-s3`. Credentials and
//! region come from the AWS default chain (environment, profile, instance or task role);
//! `LLMPULSE_S3_REGION` names the bucket's region where it is not the process's own (a Lambda
//! in one region writing to a bucket in another); `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`
//! point it at another server, path-style.
//! Create-only writes send `If-None-Match: *`: 412 means the object exists; 409 means a
//! concurrent conditional write is in flight, and is retried.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::{Created, Store, StoreError, StoreErrorKind, Swapped, Version, join};

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    pub async fn new(
        bucket: String,
        prefix: String,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let mut b = aws_sdk_s3::config::Builder::from(&sdk);
        if let Some(region) = env("LLMPULSE_S3_REGION").filter(|r| !r.is_empty()) {
            b = b.region(Region::new(region));
        } else if sdk.region().is_none() {
            b = b.region(Region::new("us-east-1"));
        }
        if let Some(url) = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")) {
            b = b.endpoint_url(url).force_path_style(true);
        }
        S3Store {
            client: Client::from_conf(b.build()),
            bucket,
            prefix,
        }
    }

    fn error<E>(&self, e: SdkError<E, HttpResponse>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let message = DisplayErrorContext(&e).to_string();
        let kind = match &e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => StoreErrorKind::Unavailable,
            SdkError::ServiceError(se) => match (status(&e), se.err().code()) {
                (_, Some("SlowDown" | "ServiceUnavailable" | "InternalError")) => {
                    StoreErrorKind::Unavailable
                }
                (_, Some("NoSuchBucket")) => StoreErrorKind::NoBucket,
                (Some(401 | 403), _) => StoreErrorKind::Denied,
                (Some(429 | 500..=599), _) => StoreErrorKind::Unavailable,
                _ => StoreErrorKind::Other,
            },
            SdkError::ResponseError(_) => StoreErrorKind::Unavailable,
            _ => StoreErrorKind::Other,
        };
        StoreError::new(kind, &self.describe(), message)
    }
}

/// The HTTP status of a service error, if the SDK got that far.
fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    match e {
        SdkError::ServiceError(se) => Some(se.raw().status().as_u16()),
        SdkError::ResponseError(re) => Some(re.raw().status().as_u16()),
        _ => None,
    }
}

impl Store for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn put<'a>(&'a self, key: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(join(&self.prefix, key))
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| self.error(e))?;
            Ok(())
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        Box::pin(async move {
            let mut conflicts = 0;
            loop {
                let sent = self
                    .client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(join(&self.prefix, key))
                    .if_none_match("*")
                    .body(ByteStream::from(bytes.clone()))
                    .send()
                    .await;
                match sent {
                    Ok(_) => return Ok(Created::Won),
                    Err(e) => match status(&e) {
                        Some(412) => return Ok(Created::Exists),
                        // Another conditional write to this key is in flight: ask again.
                        Some(409) if conflicts < 10 => {
                            conflicts += 1;
                            tokio::time::sleep(Duration::from_millis(50 * conflicts)).await;
                        }
                        _ => return Err(self.error(e)),
                    },
                }
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
                .get_object()
                .bucket(&self.bucket)
                .key(join(&self.prefix, key))
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => {
                    return Ok(None);
                }
                Err(e) => return Err(self.error(e)),
            };
            let version = Version(resp.e_tag().unwrap_or_default().to_string());
            let data = resp.body.collect().await.map_err(|e| {
                StoreError::new(StoreErrorKind::Unavailable, &self.describe(), e.to_string())
            })?;
            Ok(Some((data.into_bytes(), version)))
        })
    }

    fn replace<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
        expected: Option<&'a Version>,
    ) -> BoxFuture<'a, Result<Swapped, StoreError>> {
        Box::pin(async move {
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(join(&self.prefix, key))
                .body(ByteStream::from(bytes));
            let put = match expected {
                Some(v) => put.if_match(&v.0),
                None => put.if_none_match("*"),
            };
            match put.send().await {
                Ok(_) => Ok(Swapped::Won),
                // 412: changed since; 404: gone since; 409: another conditional write in flight.
                Err(e) if matches!(status(&e), Some(412 | 404 | 409)) => Ok(Swapped::Lost),
                Err(e) => Err(self.error(e)),
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
            let mut keys = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&full)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(|e| self.error(e))?;
                for o in page.contents() {
                    if let Some(k) = o.key()
                        && k.len() >= strip
                    {
                        keys.push(k[strip..].to_string());
                    }
                }
                token = page.next_continuation_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            keys.sort();
            Ok(keys)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::S3Store;

    /// A function in one region writes to the bucket of another: `LLMPULSE_S3_REGION` names the
    /// bucket's region for its requests (signed for and sent to that region).
    #[tokio::test]
    async fn the_buckets_region_can_differ_from_the_processs() {
        let env = |name: &str| (name == "LLMPULSE_S3_REGION").then(|| "ap-south-1".to_string());
        let store = S3Store::new("b".into(), "p".into(), &env).await;
        assert_eq!(
            store.client.config().region().map(|r| r.as_ref()),
            Some("ap-south-1")
        );
    }
}
