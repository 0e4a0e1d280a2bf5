//! Who may trigger a run on Cloud Run: callers with a Google-signed OIDC ID token (Cloud
//! Scheduler's `oidcToken`) whose signature checks out against Google's published keys, whose
//! issuer is Google, whose audience is this service, which has not expired, and — when
//! configured — whose email is the allowed service account. Anything else is a 401.
//!
//! The key source is configurable (`LLMPULSE_OIDC_JWKS_URL`) so tests serve their own keys.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::RwLock;

/// Google's keys for ID tokens.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// Keys are fetched again at most this often when a token names an unknown key.
const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// The claims llmpulse checks.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token's key is unknown")]
    UnknownKey,
    #[error("the caller {0} is not allowed")]
    Forbidden(String),
    #[error("cannot fetch the signing keys: {0}")]
    Keys(String),
}

/// Checks ID tokens.
pub struct Verifier {
    jwks_url: String,
    audience: String,
    allowed_email: Option<String>,
    http: reqwest::Client,
    keys: RwLock<(HashMap<String, DecodingKey>, Option<Instant>)>,
}

impl Verifier {
    /// `LLMPULSE_OIDC_AUDIENCE` (required: the service URL the scheduler's token is minted for),
    /// `LLMPULSE_OIDC_EMAIL` (optional: the only caller allowed), `LLMPULSE_OIDC_JWKS_URL`.
    pub fn from_env(env: &HashMap<String, String>) -> Result<Verifier, String> {
        let audience = env
            .get("LLMPULSE_OIDC_AUDIENCE")
            .filter(|a| !a.is_empty())
            .cloned()
            .ok_or("LLMPULSE_OIDC_AUDIENCE is not set: the service accepts only authenticated callers, so it must know its audience (its URL)")?;
        Ok(Verifier {
            jwks_url: env
                .get("LLMPULSE_OIDC_JWKS_URL")
                .cloned()
                .unwrap_or_else(|| GOOGLE_JWKS_URL.into()),
            audience,
            allowed_email: env
                .get("LLMPULSE_OIDC_EMAIL")
                .filter(|e| !e.is_empty())
                .cloned(),
            http: {
                llmpulse_core::provider::http::install_crypto();
                reqwest::Client::new()
            },
            keys: RwLock::new((HashMap::new(), None)),
        })
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let Some(k) = self.keys.read().await.0.get(kid) {
            return Ok(k.clone());
        }
        let mut keys = self.keys.write().await;
        if let Some(k) = keys.0.get(kid) {
            return Ok(k.clone());
        }
        if keys.1.is_some_and(|at| at.elapsed() < REFRESH_EVERY) {
            return Err(AuthError::UnknownKey);
        }
        let set: JwkSet = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Keys(e.without_url().to_string()))?
            .json()
            .await
            .map_err(|e| AuthError::Keys(e.to_string()))?;
        keys.0.clear();
        for jwk in &set.keys {
            if let (Some(id), Ok(k)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
                keys.0.insert(id.clone(), k);
            }
        }
        keys.1 = Some(Instant::now());
        keys.0.get(kid).cloned().ok_or(AuthError::UnknownKey)
    }

    /// Checks an `Authorization` header value.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<Claims, AuthError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not RS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("no key id".into()))?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[&self.audience]);
        v.set_issuer(&GOOGLE_ISSUERS);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = decode::<Claims>(token, &key, &v)
            .map_err(|e| AuthError::Invalid(e.to_string()))?
            .claims;
        if let Some(allowed) = &self.allowed_email {
            let ok = claims.email.as_deref() == Some(allowed.as_str())
                && claims.email_verified == Some(true);
            if !ok {
                return Err(AuthError::Forbidden(
                    claims
                        .email
                        .clone()
                        .unwrap_or_else(|| "without an email".into()),
                ));
            }
        }
        Ok(claims)
    }
}
