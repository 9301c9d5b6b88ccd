//! Verifying the built-in issuer's tokens in a process that does not run the users service (the
//! gateway, and every service when they run apart): the users service's public keys from its JWKS,
//! then the same checks as the issuer itself (signature, `iss`, `aud`, `exp`).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tg_platform::{
    auth::{AuthError, Principal, TokenVerifier},
    clock::now_ms,
};
use tokio::sync::RwLock;

use crate::issuer::{decode_claims, AccessClaims};

/// Unknown key ids refetch the key set at most this often, so made-up ids cannot turn into load.
const MIN_REFRESH: Duration = Duration::from_secs(10);
/// Most verified tokens remembered (as in the issuer).
const VERIFIED_CACHE_SIZE: usize = 100_000;

pub struct RemoteVerifier {
    issuer: String,
    jwks_url: String,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    verified: Mutex<HashMap<[u8; 32], AccessClaims>>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: String,
    #[serde(default)]
    crv: String,
    x: String,
}

impl RemoteVerifier {
    /// `issuer`: the tokens' `iss` (the platform's public URL); `users_url`: where the users service
    /// answers (its JWKS is at `/.well-known/jwks.json`).
    pub fn new(issuer: &str, users_url: &str) -> RemoteVerifier {
        RemoteVerifier {
            issuer: issuer.trim_end_matches('/').to_owned(),
            jwks_url: format!("{}/.well-known/jwks.json", users_url.trim_end_matches('/')),
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("TLS backend initialises"),
            keys: RwLock::default(),
            last_fetch: Default::default(),
            verified: Default::default(),
        }
    }

    async fn refresh(&self) -> Result<(), AuthError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < MIN_REFRESH) {
            return Ok(());
        }
        let unavailable = |e: reqwest::Error| AuthError::Unavailable(format!("users service JWKS: {e}"));
        let jwks: Jwks = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let mut keys = HashMap::new();
        for k in jwks.keys.into_iter().filter(|k| k.crv == "Ed25519") {
            if let Ok(key) = DecodingKey::from_ed_components(&k.x) {
                keys.insert(k.kid, key);
            }
        }
        *self.keys.write().await = keys;
        *last = Some(Instant::now());
        Ok(())
    }

    async fn verify_signed(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let invalid = |e: String| AuthError::Invalid(e);
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("unexpected algorithm".into()));
        }
        let kid = header.kid.ok_or_else(|| invalid("missing kid".into()))?;
        if !self.keys.read().await.contains_key(&kid) {
            self.refresh().await?;
        }
        let keys = self.keys.read().await;
        let key = keys.get(&kid).ok_or_else(|| invalid("unknown key id".into()))?;
        decode_claims(token, key, &self.issuer).map_err(invalid)
    }
}

#[async_trait::async_trait]
impl TokenVerifier for RemoteVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let digest: [u8; 32] = digest.as_ref().try_into().expect("SHA-256 is 32 bytes");
        let now = now_ms() / 1000;
        if let Some(c) = self.verified.lock().expect("cache lock").get(&digest).filter(|c| c.exp > now) {
            return Ok(c.clone().into());
        }
        let claims = self.verify_signed(token).await?;
        let mut cache = self.verified.lock().expect("cache lock");
        if cache.len() >= VERIFIED_CACHE_SIZE {
            cache.retain(|_, c| c.exp > now);
            if cache.len() >= VERIFIED_CACHE_SIZE {
                cache.clear();
            }
        }
        cache.insert(digest, claims.clone());
        Ok(claims.into())
    }
}
