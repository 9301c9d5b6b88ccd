//! Verifying the built-in issuer's tokens in a process that does not run the users service (the
//! gateway, and every service when they run apart): the users service's public keys from its JWKS,
//! then the same checks as the issuer itself (signature, `iss`, `aud`, `exp`). A token of another
//! issuer (an external OpenID Connect provider) is the users service's to judge, since it maps
//! external identities to local accounts: it is asked (`GET /api/v1/me` with that token), and the
//! answer is kept for a minute.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tg_platform::{
    auth::{AuthError, Principal, TokenVerifier},
    clock::now_ms,
};
use tokio::sync::RwLock;

use crate::{
    issuer::{decode_claims, AccessClaims},
    token_cache::{digest, TokenCache},
};

/// Unknown key ids refetch the key set at most this often, so made-up ids cannot turn into load.
const MIN_REFRESH: Duration = Duration::from_secs(10);
/// How long the users service's answer about an external token is kept (never past the token's `exp`).
const EXTERNAL_TTL: Duration = Duration::from_secs(60);
/// The key set is fetched again this often, so keys the issuer retired stop verifying here too.
const KEYS_MAX_AGE: Duration = Duration::from_secs(300);

/// The token's `exp` (Unix seconds), read without checking anything.
fn peek_exp(token: &str) -> Option<i64> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    serde_json::from_slice::<serde_json::Value>(&payload).ok()?.get("exp")?.as_i64()
}

pub struct RemoteVerifier {
    issuer: String,
    jwks_url: String,
    me_url: String,
    /// The external OpenID Connect issuer the users service accepts (`OIDC_ISSUER`), if any.
    external_issuer: Option<String>,
    http: reqwest::Client,
    /// The users service's answers about external tokens: the caller, or why not.
    external: TokenCache<Result<Principal, String>>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    verified: TokenCache<AccessClaims>,
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
    /// answers (its JWKS is at `/.well-known/jwks.json`); `external_issuer`: the external provider
    /// whose tokens the users service maps to accounts (`OIDC_ISSUER`).
    pub fn new(issuer: &str, users_url: &str, external_issuer: Option<&str>) -> RemoteVerifier {
        RemoteVerifier {
            external_issuer: external_issuer.map(|i| i.trim_end_matches('/').to_owned()),
            issuer: issuer.trim_end_matches('/').to_owned(),
            jwks_url: format!("{}/.well-known/jwks.json", users_url.trim_end_matches('/')),
            me_url: format!("{}/api/v1/me", users_url.trim_end_matches('/')),
            external: TokenCache::default(),
            http: reqwest::Client::builder()
                .use_preconfigured_tls((*tg_platform::tls::client_config()).clone())
                .timeout(Duration::from_secs(5))
                .build()
                .expect("TLS backend initialises"),
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

    /// Ask the users service who holds this external token.
    async fn introspect(&self, token: &str, digest: [u8; 32]) -> Result<Principal, AuthError> {
        let exp = peek_exp(token).ok_or_else(|| AuthError::Invalid("no exp".into()))?;
        if exp <= now_ms() / 1000 {
            return Err(AuthError::Invalid("expired".into()));
        }
        if let Some(answer) = self.external.get(&digest) {
            return answer.map_err(AuthError::Invalid);
        }
        let unavailable = |e: reqwest::Error| AuthError::Unavailable(format!("users service: {e}"));
        let res = self.http.get(&self.me_url).bearer_auth(token).send().await.map_err(unavailable)?;
        let answer = match res.status() {
            s if s.is_success() => {
                let me: crate::model::UserView = res.json().await.map_err(unavailable)?;
                Ok(Principal {
                    user_id: me.id,
                    email: me.email,
                    email_verified: me.email_verified,
                    session_id: None,
                    display_name: Some(me.display_name),
                    roles: me.roles,
                    service: None,
                    token: None,
                })
            }
            s if s.is_client_error() => Err("token refused by the users service".to_owned()),
            s => return Err(AuthError::Unavailable(format!("users service answered {s}"))),
        };
        let until = exp.min(now_ms() / 1000 + EXTERNAL_TTL.as_secs() as i64);
        self.external.insert(digest, until, answer.clone());
        answer.map_err(AuthError::Invalid)
    }

    async fn verify_signed(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let invalid = |e: String| AuthError::Invalid(e);
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("unexpected algorithm".into()));
        }
        let kid = header.kid.ok_or_else(|| invalid("missing kid".into()))?;
        let stale = self.last_fetch.lock().await.is_none_or(|t| t.elapsed() > KEYS_MAX_AGE);
        if stale || !self.keys.read().await.contains_key(&kid) {
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
        let digest = digest(token);
        if let Some(claims) = self.verified.get(&digest) {
            return Ok(claims.into());
        }
        let iss = crate::peek_issuer(token).ok_or_else(|| AuthError::Invalid("malformed token".into()))?;
        if iss != self.issuer {
            if self.external_issuer.as_deref() == Some(iss.trim_end_matches('/')) {
                return self.introspect(token, digest).await;
            }
            return Err(AuthError::Invalid("unknown issuer".into()));
        }
        let claims = self.verify_signed(token).await?;
        self.verified.insert(digest, claims.exp, claims.clone());
        Ok(claims.into())
    }
}
