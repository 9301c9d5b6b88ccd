//! Verification of access tokens from an external OpenID Connect provider (e.g. Keycloak), found
//! through discovery and checked against its JWKS: issuer, audience, expiry and an algorithm allow-list.
//! Keys are cached; a token with an unknown `kid` triggers a JWKS refresh, at most once per interval.

use std::{collections::HashMap, time::Duration};

use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tg_platform::auth::{AuthError, Role};
use tokio::sync::Mutex;

#[derive(Clone, Debug)]
pub struct ExternalOidcConfig {
    pub issuer: String,
    pub audience: String,
    /// Clock skew tolerated on `exp`/`nbf`.
    pub leeway: Duration,
    /// Minimum time between two JWKS fetches caused by unknown key ids.
    pub min_jwks_refresh: Duration,
}

/// Algorithms accepted from an external provider. `none` and HMAC are never accepted.
const ALLOWED: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Verified identity from an external token.
#[derive(Debug, Clone)]
pub struct ExternalIdentity {
    pub subject: String,
    pub email: Option<String>,
    /// The provider's `email_verified`; absent counts as not.
    pub email_verified: bool,
    pub name: Option<String>,
    pub roles: Vec<Role>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    email_verified: bool,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    realm_access: Option<RealmAccess>,
}

#[derive(Deserialize)]
struct RealmAccess {
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Default)]
struct Cache {
    jwks_uri: Option<String>,
    keys: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    last_fetch: Option<std::time::Instant>,
}

pub struct ExternalOidc {
    pub config: ExternalOidcConfig,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

impl ExternalOidc {
    pub fn new(config: ExternalOidcConfig) -> Self {
        // The provider may be in the cluster (Keycloak), behind the internal CA.
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tg_platform::tls::client_config()).clone())
            .timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        ExternalOidc { config, http, cache: Mutex::new(Cache::default()) }
    }

    pub async fn verify(&self, token: &str) -> Result<ExternalIdentity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(AuthError::Invalid(format!("algorithm {:?} not allowed", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| AuthError::Invalid("missing kid".into()))?;
        let key = self.key(&kid).await?;
        if key.1.is_some_and(|alg| alg != header.alg) {
            return Err(AuthError::Invalid("algorithm does not match the key".into()));
        }
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.audience]);
        v.leeway = self.config.leeway.as_secs();
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims =
            jsonwebtoken::decode::<Claims>(token, &key.0, &v).map_err(|e| AuthError::Invalid(e.to_string()))?.claims;
        let now = tg_platform::clock::now_ms() / 1000;
        crate::issuer::check_lifetime(claims.iat, claims.exp, now, self.config.leeway.as_secs() as i64)
            .map_err(AuthError::Invalid)?;
        let mut roles: Vec<Role> =
            claims.realm_access.map(|r| r.roles.iter().filter_map(|n| n.parse().ok()).collect()).unwrap_or_default();
        roles.push(Role::User);
        roles.sort();
        roles.dedup();
        Ok(ExternalIdentity {
            subject: claims.sub,
            email: claims.email.map(|e| e.trim().to_lowercase()),
            email_verified: claims.email_verified,
            name: claims.name.or(claims.preferred_username),
            roles,
        })
    }

    async fn key(&self, kid: &str) -> Result<(DecodingKey, Option<Algorithm>), AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(k) = cache.keys.get(kid) {
            return Ok(k.clone());
        }
        let may_fetch = cache.last_fetch.is_none_or(|t| t.elapsed() >= self.config.min_jwks_refresh);
        if !may_fetch {
            return Err(AuthError::Invalid("unknown key id".into()));
        }
        cache.last_fetch = Some(std::time::Instant::now());
        self.refresh(&mut cache).await?;
        cache.keys.get(kid).cloned().ok_or_else(|| AuthError::Invalid("unknown key id".into()))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, AuthError> {
        let unavailable = |e: reqwest::Error| AuthError::Unavailable(format!("identity provider: {e}"));
        let res = self.http.get(url).send().await.and_then(|r| r.error_for_status()).map_err(unavailable)?;
        res.json().await.map_err(unavailable)
    }

    async fn refresh(&self, cache: &mut Cache) -> Result<(), AuthError> {
        if cache.jwks_uri.is_none() {
            #[derive(Deserialize)]
            struct Discovery {
                issuer: String,
                jwks_uri: String,
            }
            let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
            let d: Discovery = self.get_json(&url).await?;
            if d.issuer != self.config.issuer {
                return Err(AuthError::Unavailable(format!(
                    "discovery names issuer {:?}, expected {:?}",
                    d.issuer, self.config.issuer
                )));
            }
            cache.jwks_uri = Some(d.jwks_uri);
        }
        let uri = cache.jwks_uri.clone().unwrap_or_default();
        let set: JwkSet = self.get_json(&uri).await?;
        cache.keys.clear();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else { continue };
            let alg = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
            cache.keys.insert(kid, (key, alg));
        }
        tracing::info!(keys = cache.keys.len(), "loaded external JWKS");
        Ok(())
    }
}

/// `email_verified` as providers send it: a boolean, or (some older ones) the string `"true"`.
fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    Ok(match Flag::deserialize(d)? {
        Flag::Bool(b) => b,
        Flag::Text(t) => t.eq_ignore_ascii_case("true"),
    })
}
