//! The built-in token issuer: Ed25519-signed access tokens (EdDSA JWTs) with rotating keys,
//! published as JWKS, and opaque refresh tokens stored as SHA-256 hashes.

use std::{sync::Arc, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::{
    rand::{SecureRandom, SystemRandom},
    signature::{Ed25519KeyPair, KeyPair},
};
use serde::{Deserialize, Serialize};
use tg_platform::{auth::Role, clock::now_ms};
use tokio::sync::RwLock;

use crate::{
    key_seal::KeySeal,
    store::{KeyRow, Store},
    token_cache::{digest, TokenCache},
};

/// Audience of access tokens minted by the built-in issuer.
pub const AUDIENCE: &str = "ticketgw";
/// Audience of service tokens (client-credentials grant): accepted only by internal routes.
pub const SERVICE_AUDIENCE: &str = "ticketgw-internal";
/// The one scope a service token carries.
pub const INTERNAL_SCOPE: &str = "internal";
/// Lifetime of a service token.
pub const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// OIDC's `email_verified`: the owner of `email` proved it.
    #[serde(default)]
    pub email_verified: bool,
    /// OIDC's `sid`: the sign-in session (refresh-token family) the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub roles: Vec<Role>,
    /// Space-separated scopes; service tokens carry `internal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl AccessClaims {
    /// The service client id, when this is a service token for internal routes.
    pub fn service(&self) -> Option<&str> {
        let internal = self.scope.as_deref().is_some_and(|s| s.split(' ').any(|s| s == INTERNAL_SCOPE));
        (self.aud == SERVICE_AUDIENCE && internal).then(|| self.sub.strip_prefix("service:")).flatten()
    }
}

/// Who an access token speaks for.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub name: &'a str,
    pub roles: &'a [Role],
    /// The sign-in session (refresh-token family) it is issued in.
    pub session: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// A user without address or session (tests, tools).
    pub fn user(user_id: &'a str, name: &'a str, roles: &'a [Role]) -> Subject<'a> {
        Subject { user_id, email: None, email_verified: false, name, roles, session: None }
    }
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
}

struct VerifyKey {
    kid: String,
    public_b64url: String,
    decoding: DecodingKey,
}

struct KeySet {
    signing: SigningKey,
    verify: Vec<VerifyKey>,
}

pub struct Issuer {
    pub issuer: String,
    pub access_ttl: Duration,
    rotation: Duration,
    store: Store,
    seal: KeySeal,
    keys: RwLock<Arc<KeySet>>,
    last_reload: tokio::sync::Mutex<Option<std::time::Instant>>,
    rng: SystemRandom,
    /// Tokens whose signature was checked, until they expire.
    verified: TokenCache<AccessClaims>,
}

impl Issuer {
    /// Load the current keys, creating the first one (or a fresh one when the newest is due for rotation).
    /// The private keys are stored sealed by `seal` (see [`KeySeal`]).
    pub async fn start(
        store: Store,
        issuer: String,
        access_ttl: Duration,
        rotation: Duration,
        seal: KeySeal,
    ) -> anyhow::Result<Arc<Issuer>> {
        anyhow::ensure!(
            access_ttl <= MAX_TOKEN_LIFETIME,
            "ACCESS_TOKEN_TTL_SECS must be at most {} (24 hours): longer tokens are refused",
            MAX_TOKEN_LIFETIME.as_secs()
        );
        let rng = SystemRandom::new();
        if seal.seals() {
            seal_plain_keys(&store, &seal).await?;
        }
        let keys = load_or_rotate(&store, &rng, &seal, rotation, access_ttl).await?;
        Ok(Arc::new(Issuer {
            issuer,
            access_ttl,
            rotation,
            store,
            seal,
            keys: RwLock::new(Arc::new(keys)),
            last_reload: Default::default(),
            rng,
            verified: Default::default(),
        }))
    }

    /// Rotate when the signing key is older than the rotation period. Run periodically; safe in several
    /// instances at once: they add one key between them, and tokens signed by any verify on all (see
    /// [`load_or_rotate`]).
    pub async fn rotate_if_due(&self) -> anyhow::Result<()> {
        let reload = load_or_rotate(&self.store, &self.rng, &self.seal, self.rotation, self.access_ttl).await?;
        *self.last_reload.lock().await = Some(std::time::Instant::now());
        *self.keys.write().await = Arc::new(reload);
        Ok(())
    }

    pub async fn mint_access(&self, who: &Subject<'_>) -> anyhow::Result<String> {
        let now = now_ms() / 1000;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: who.user_id.to_owned(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            email: who.email.map(str::to_owned),
            email_verified: who.email.is_some() && who.email_verified,
            sid: who.session.map(str::to_owned),
            name: Some(who.name.to_owned()),
            roles: who.roles.to_vec(),
            scope: None,
        };
        self.sign(&claims).await
    }

    /// A short-lived token for a registered service client, bound to the internal audience and scope.
    pub async fn mint_service(&self, client_id: &str) -> anyhow::Result<String> {
        let now = now_ms() / 1000;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: format!("service:{client_id}"),
            aud: SERVICE_AUDIENCE.into(),
            iat: now,
            exp: now + SERVICE_TOKEN_TTL.as_secs() as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            email: None,
            email_verified: false,
            sid: None,
            name: None,
            roles: Vec::new(),
            scope: Some(INTERNAL_SCOPE.into()),
        };
        self.sign(&claims).await
    }

    async fn sign(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let keys = self.keys.read().await.clone();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.signing.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &keys.signing.encoding)?)
    }

    /// Verify a token of this issuer: signature by a published key, `iss`, `aud`, `exp`.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, String> {
        let digest = digest(token);
        if let Some(claims) = self.verified.get(&digest) {
            return Ok(claims);
        }
        let claims = self.verify_signed(token).await?;
        self.verified.insert(digest, claims.exp, claims.clone());
        Ok(claims)
    }

    async fn verify_signed(&self, token: &str) -> Result<AccessClaims, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        if header.alg != Algorithm::EdDSA {
            return Err("unexpected algorithm".into());
        }
        let kid = header.kid.ok_or("missing kid")?;
        let keys = self.keys.read().await.clone();
        let key = match keys.verify.iter().find(|k| k.kid == kid) {
            Some(k) => k,
            None => {
                // Another instance may have rotated; reload from the shared store, at most every 10 s
                // so that tokens with made-up key ids cannot turn into database load.
                drop(keys);
                let recently = self.last_reload.lock().await.is_some_and(|t| t.elapsed() < Duration::from_secs(10));
                if recently {
                    return Err("unknown key id".into());
                }
                self.rotate_if_due().await.map_err(|e| e.to_string())?;
                let keys = self.keys.read().await.clone();
                return match keys.verify.iter().find(|k| k.kid == kid) {
                    Some(k) => self.decode(token, &k.decoding),
                    None => Err("unknown key id".into()),
                };
            }
        };
        self.decode(token, &key.decoding)
    }

    fn decode(&self, token: &str, key: &DecodingKey) -> Result<AccessClaims, String> {
        decode_claims(token, key, &self.issuer)
    }

    /// Public keys as a JWK Set.
    pub async fn jwks(&self) -> serde_json::Value {
        let keys = self.keys.read().await.clone();
        let keys: Vec<_> = keys
            .verify
            .iter()
            .map(|k| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": k.kid, "x": k.public_b64url}))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// A fresh opaque token (refresh token, account link) and the hash under which it is stored.
    pub fn new_opaque_token(&self) -> (String, String) {
        let mut bytes = [0u8; 32];
        self.rng.fill(&mut bytes).expect("system RNG");
        let token = B64URL.encode(bytes);
        let hash = hash_opaque_token(&token);
        (token, hash)
    }
}

pub fn hash_opaque_token(token: &str) -> String {
    B64URL.encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()))
}

/// How often every instance reloads the keys (and rotates when due): its maintenance pass.
pub const KEYS_RELOAD_EVERY: Duration = Duration::from_secs(300);

/// A new key signs only once it is this old: by then every instance has reloaded the keys at least
/// once since it was made, so each verifies its tokens and publishes it in its JWKS (which verifiers
/// of other processes read) before the first token signed with it exists.
const SIGN_AFTER: Duration = Duration::from_secs(KEYS_RELOAD_EVERY.as_secs() + 60);

/// How much longer than rotation + access TTL a key verifies: the rotation is noticed up to a pass
/// late, and each instance moves to the new key at its first pass after [`SIGN_AFTER`], so the old
/// key signs tokens that long past its rotation period, which must verify everywhere until they expire.
const VERIFY_MARGIN: Duration = Duration::from_secs(2 * KEYS_RELOAD_EVERY.as_secs() + SIGN_AFTER.as_secs() + 240);

/// Seal the keys stored before a secret was set, so that no private key stays readable at rest.
async fn seal_plain_keys(store: &Store, seal: &KeySeal) -> anyhow::Result<()> {
    for key in store.signing_keys(0).await?.into_iter().filter(|k| !KeySeal::is_sealed(&k.private_pkcs8)) {
        let sealed = seal.seal(&key.kid, &seal.open(&key.kid, &key.private_pkcs8)?)?;
        if store.replace_signing_key_secret(&key.kid, &key.private_pkcs8, &sealed).await? {
            tracing::info!(kid = %key.kid, "sealed a token signing key stored before SIGNING_KEYS_SECRET was set");
        }
    }
    Ok(())
}

/// Keys younger than rotation + access TTL (+ margin) verify (a token signed just before rotation stays
/// valid); the newest that is at least [`SIGN_AFTER`] old signs (a store's very first key at once).
/// Creates a key when none is younger than the rotation period, unless another instance did so
/// first: the check is repeated under a lock, so instances rotating at once add one key.
async fn load_or_rotate(
    store: &Store,
    rng: &SystemRandom,
    seal: &KeySeal,
    rotation: Duration,
    access_ttl: Duration,
) -> anyhow::Result<KeySet> {
    let now = now_ms();
    let verify_since = now - (rotation + access_ttl + VERIFY_MARGIN).as_millis() as i64;
    let fresh_since = now - rotation.as_millis() as i64;
    let mut rows = store.signing_keys(verify_since).await?;
    if rows.first().is_none_or(|k| k.created_at <= fresh_since) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(rng).map_err(|_| anyhow::anyhow!("generating Ed25519 key"))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("parsing new key"))?;
        let kid = format!("k-{}", uuid::Uuid::now_v7().simple());
        let row = KeyRow {
            private_pkcs8: seal.seal(&kid, pkcs8.as_ref())?,
            kid,
            public_key: B64URL.encode(pair.public_key().as_ref()),
            created_at: now,
        };
        if store.insert_signing_key_unless_fresh(&row, fresh_since).await? {
            tracing::info!(kid = %row.kid, "created new token signing key");
        }
        rows = store.signing_keys(verify_since).await?;
    }
    let signer = rows
        .iter()
        .find(|k| now - k.created_at >= SIGN_AFTER.as_millis() as i64)
        .or(rows.first())
        .ok_or_else(|| anyhow::anyhow!("no token signing key"))?;
    let private = seal.open(&signer.kid, &signer.private_pkcs8)?;
    let signing = SigningKey { kid: signer.kid.clone(), encoding: EncodingKey::from_ed_der(&private) };
    let verify = rows
        .iter()
        .map(|r| {
            Ok(VerifyKey {
                kid: r.kid.clone(),
                decoding: DecodingKey::from_ed_components(&r.public_key)?,
                public_b64url: r.public_key.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(KeySet { signing, verify })
}

/// Check a token of the built-in issuer against one of its keys: signature, `iss`, `aud` (users or
/// services), `exp`. Shared by the issuer and by [`crate::remote::RemoteVerifier`].
pub(crate) fn decode_claims(token: &str, key: &DecodingKey, issuer: &str) -> Result<AccessClaims, String> {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&[issuer]);
    v.set_audience(&[AUDIENCE, SERVICE_AUDIENCE]);
    // Our own tokens: every instance shares the clock source closely enough; no extra leeway.
    v.leeway = 0;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &v).map(|d| d.claims).map_err(|e| e.to_string())?;
    check_lifetime(claims.iat, claims.exp, now_ms() / 1000, 0)?;
    Ok(claims)
}

/// Longest lifetime (`exp - iat`) of an access token taken, ours or an outside provider's: a token
/// minted for years is refused, whatever signed it.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A token issued `iat` and expiring `exp` (Unix seconds) may be used `now`: not issued in the
/// future (beyond `leeway` seconds of skew), and living at most [`MAX_TOKEN_LIFETIME`].
pub(crate) fn check_lifetime(iat: i64, exp: i64, now: i64, leeway: i64) -> Result<(), String> {
    if iat > now + leeway {
        return Err("token issued in the future".into());
    }
    if exp - iat > MAX_TOKEN_LIFETIME.as_secs() as i64 {
        return Err(format!("token lifetime over {} hours", MAX_TOKEN_LIFETIME.as_secs() / 3600));
    }
    Ok(())
}

impl From<AccessClaims> for tg_platform::auth::Principal {
    fn from(c: AccessClaims) -> Self {
        let service = c.service().map(str::to_owned);
        tg_platform::auth::Principal {
            user_id: c.sub,
            email: c.email,
            email_verified: c.email_verified,
            session_id: c.sid,
            display_name: c.name,
            roles: c.roles,
            service,
            token: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> Store {
        let db = tg_platform::db::Db::connect(Some("sqlite::memory:"), std::path::Path::new("."), 1).await.unwrap();
        db.migrate(vec![crate::migrations()]).await.unwrap();
        Store { db }
    }

    #[tokio::test]
    async fn rotation_adds_a_key_and_old_tokens_still_verify() {
        let store = store().await;
        let ttl = Duration::from_secs(60);
        // A rotation period of zero makes every rotation check create a new key.
        let issuer = Issuer::start(store.clone(), "https://tg.test".into(), ttl, Duration::ZERO, KeySeal::plain())
            .await
            .unwrap();
        let before = issuer.mint_access(&Subject::user("u1", "U", &[Role::User])).await.unwrap();
        issuer.rotate_if_due().await.unwrap();
        let after = issuer.mint_access(&Subject::user("u1", "U", &[Role::User])).await.unwrap();
        let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
        assert_ne!(kid(&before), kid(&after), "new tokens are signed with the new key");
        let jwks = issuer.jwks().await;
        let published: Vec<&str> =
            jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert!(published.contains(&kid(&before).as_str()) && published.contains(&kid(&after).as_str()));
        assert_eq!(issuer.verify(&before).await.unwrap().sub, "u1");
        assert_eq!(issuer.verify(&after).await.unwrap().sub, "u1");

        // A second instance on the same store signs with the newest key and trusts both.
        let other = Issuer::start(store, "https://tg.test".into(), ttl, Duration::from_secs(3600), KeySeal::plain())
            .await
            .unwrap();
        assert!(other.verify(&before).await.is_ok());
        assert!(other.verify(&after).await.is_ok());
    }

    #[tokio::test]
    async fn tokens_not_yet_valid_issued_ahead_or_living_too_long_are_refused() {
        let issuer = Issuer::start(
            store().await,
            "https://tg.test".into(),
            Duration::from_secs(900),
            Duration::from_secs(3600),
            KeySeal::plain(),
        )
        .await
        .unwrap();
        let now = now_ms() / 1000;
        let sign = |extra: serde_json::Value| {
            let issuer = issuer.clone();
            async move {
                let mut claims = serde_json::json!({
                    "iss": "https://tg.test", "sub": "u1", "aud": AUDIENCE, "iat": now, "exp": now + 600,
                    "jti": "j", "roles": ["user"],
                });
                claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
                let keys = issuer.keys.read().await.clone();
                let mut header = Header::new(Algorithm::EdDSA);
                header.kid = Some(keys.signing.kid.clone());
                jsonwebtoken::encode(&header, &claims, &keys.signing.encoding).unwrap()
            }
        };
        assert!(issuer.verify(&sign(serde_json::json!({})).await).await.is_ok(), "a plain token passes");
        let refused = [
            serde_json::json!({"nbf": now + 300}),
            serde_json::json!({"iat": now + 300, "exp": now + 900}),
            serde_json::json!({"iat": now - 60, "exp": now + 30 * 24 * 3600}),
        ];
        for extra in refused {
            assert!(issuer.verify(&sign(extra.clone()).await).await.is_err(), "{extra} was accepted");
        }
    }
}
