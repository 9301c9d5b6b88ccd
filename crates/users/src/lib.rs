//! Users service: accounts, the built-in token issuer, verification of external OIDC tokens,
//! roles, organizer applications and profiles.
//!
//! Other services talk to it only through [`UsersService`]'s public methods (and the
//! [`TokenVerifier`] it implements); its tables (`users_*`) are its own.

pub mod account;
pub mod api;
pub mod external;
pub mod internal;
pub mod issuer;
pub mod key_seal;
pub mod model;
pub mod password;
pub mod ratelimit;
pub mod recaptcha;
pub mod remote;
pub mod store;
mod token_cache;

use std::{sync::Arc, time::Duration};

use base64::Engine;
use tg_platform::{
    auth::{AuthError, Principal, Role, TokenVerifier},
    bus::Bus,
    db::{is_unique_violation, Db, ServiceMigrations},
};

use crate::{
    external::{ExternalOidc, ExternalOidcConfig},
    issuer::Issuer,
    key_seal::{KeySeal, SealSecrets},
    model::{Email, OrganizerProfile, Password, UserView},
    ratelimit::{LoginLimiter, LoginLimits, RegisterLimiter, RegisterLimits},
    recaptcha::{Recaptcha, RecaptchaConfig},
    store::{AccountRow, Store},
};

pub fn migrations() -> ServiceMigrations {
    ServiceMigrations {
        service: "users",
        sqlite: sqlx::migrate!("migrations/sqlite"),
        postgres: sqlx::migrate!("migrations/postgres"),
    }
}

#[derive(Clone, Debug)]
pub struct UsersConfig {
    /// Public base URL; the built-in issuer's `iss`.
    pub public_url: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub key_rotation: Duration,
    pub external_oidc: Option<ExternalOidcConfig>,
    pub recaptcha: Option<RecaptchaConfig>,
    pub login_limits: LoginLimits,
    pub register_limits: RegisterLimits,
    /// Services that may get a service token with the client-credentials grant.
    pub service_clients: Vec<ServiceClient>,
    /// Secrets sealing the token signing keys at rest (see [`key_seal`]).
    pub signing_keys_secrets: SealSecrets,
}

/// A registered service client: its id and secret (client-credentials grant).
#[derive(Clone)]
pub struct ServiceClient {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceClient({}, <secret>)", self.id)
    }
}

impl Default for UsersConfig {
    fn default() -> Self {
        UsersConfig {
            public_url: "http://127.0.0.1:8080".into(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            key_rotation: Duration::from_secs(30 * 24 * 3600),
            external_oidc: None,
            recaptcha: None,
            login_limits: LoginLimits::default(),
            register_limits: RegisterLimits::default(),
            service_clients: Vec::new(),
            signing_keys_secrets: SealSecrets::default(),
        }
    }
}

pub struct UsersService {
    pub(crate) store: Store,
    pub(crate) issuer: Arc<Issuer>,
    pub(crate) external: Option<ExternalOidc>,
    pub(crate) recaptcha: Option<Recaptcha>,
    pub(crate) limiter: LoginLimiter,
    pub(crate) register_limiter: RegisterLimiter,
    pub(crate) bus: Bus,
    pub(crate) config: UsersConfig,
}

/// Why creating an account failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email: {0}")]
    Email(String),
    #[error("password: {0}")]
    Password(String),
    #[error("display_name: {0}")]
    DisplayName(String),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl UsersService {
    pub async fn start(db: Db, bus: Bus, config: UsersConfig) -> anyhow::Result<Arc<UsersService>> {
        let store = Store { db };
        let public_url = config.public_url.trim_end_matches('/').to_owned();
        let secrets = &config.signing_keys_secrets;
        let seal = KeySeal::new(secrets.current.as_deref(), secrets.previous.as_deref())?;
        if !seal.seals() && matches!(store.db, tg_platform::db::Db::Postgres(_)) {
            tracing::warn!(
                "token signing keys are stored unencrypted: set SIGNING_KEYS_SECRET (32 random bytes, base64)"
            );
        }
        let issuer =
            Issuer::start(store.clone(), public_url, config.access_token_ttl, config.key_rotation, seal).await?;
        let svc = Arc::new(UsersService {
            store,
            issuer,
            external: config.external_oidc.clone().map(ExternalOidc::new),
            recaptcha: config.recaptcha.clone().map(Recaptcha::new),
            limiter: LoginLimiter::new(config.login_limits),
            register_limiter: RegisterLimiter::new(config.register_limits),
            bus,
            config,
        });
        Ok(svc)
    }

    /// Background upkeep: key rotation and pruning of rate-limit buckets. Runs until the task is dropped.
    pub async fn run_maintenance(self: Arc<Self>) {
        let mut tick = tokio::time::interval(issuer::KEYS_RELOAD_EVERY);
        loop {
            tick.tick().await;
            self.limiter.prune();
            self.register_limiter.prune();
            if let Err(e) = self.issuer.rotate_if_due().await {
                tracing::warn!(error = %e, "signing key rotation failed");
            }
        }
    }

    /// Create a local account whose address counts as verified (CLI `user create`, demo data: an
    /// operator vouches for it). People registering themselves go through [`UsersService::register`].
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        roles: &[Role],
    ) -> Result<UserView, CreateUserError> {
        let email = Email::parse(email).map_err(CreateUserError::Email)?;
        let password = Password::parse(password).map_err(CreateUserError::Password)?;
        let display_name = model::parse_display_name(display_name).map_err(CreateUserError::DisplayName)?;
        let hash = password::hash(&password).await?;
        match self.store.create_account(email.as_str(), &display_name, &hash, roles, None).await {
            Ok(row) => {
                self.bus.committed();
                Ok(self.view(row).await.map_err(anyhow::Error::from)?)
            }
            Err(e) if is_unique_violation(&e) => Err(CreateUserError::EmailTaken),
            Err(e) => Err(CreateUserError::Other(e.into())),
        }
    }

    /// The user as the API shows them; `None` when no such user.
    pub async fn user(&self, user_id: &str) -> Result<Option<UserView>, sqlx::Error> {
        match self.store.account_by_id(user_id).await? {
            Some(row) => Ok(Some(self.view(row).await?)),
            None => Ok(None),
        }
    }

    /// Organizer profile of a user, if they are an organizer.
    pub async fn organizer_of(&self, user_id: &str) -> Result<Option<OrganizerProfile>, sqlx::Error> {
        self.store.organizer_by_user(user_id).await
    }

    /// Whether `secret` is the registered secret of service client `id` (compared in constant time).
    pub fn service_client_valid(&self, id: &str, secret: &str) -> bool {
        use subtle::ConstantTimeEq;
        let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
        let given = digest(secret);
        self.config
            .service_clients
            .iter()
            .any(|c| c.id == id && !c.secret.is_empty() && bool::from(digest(&c.secret).as_ref().ct_eq(given.as_ref())))
    }

    /// A service token for this process's own calls (when the users service runs here).
    pub async fn mint_service_token(&self, client_id: &str) -> anyhow::Result<String> {
        self.issuer.mint_service(client_id).await
    }

    pub async fn organizer(&self, organizer_id: &str) -> Result<Option<OrganizerProfile>, sqlx::Error> {
        self.store.organizer_by_id(organizer_id).await
    }

    pub(crate) async fn view(&self, row: AccountRow) -> Result<UserView, sqlx::Error> {
        let roles = self.store.roles(&row.id).await?;
        let organizer_id = self.store.organizer_by_user(&row.id).await?.map(|o| o.id);
        Ok(UserView {
            id: row.id,
            email_verified: row.email.is_some() && row.email_verified_at.is_some(),
            email: row.email,
            display_name: row.display_name,
            language: row.language,
            roles,
            organizer_id,
            identity_provider: row.external_issuer.unwrap_or_else(|| "local".into()),
            created_at: tg_platform::clock::rfc3339(row.created_at),
        })
    }

    /// OpenID discovery document of the built-in issuer.
    pub fn discovery(&self) -> serde_json::Value {
        let iss = &self.issuer.issuer;
        serde_json::json!({
            "issuer": iss,
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "token_endpoint": format!("{iss}/api/v1/auth/login"),
            "grant_types_supported": ["password", "refresh_token"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "token_endpoint_auth_methods_supported": ["none"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "email", "name", "roles"],
        })
    }
}

/// Issuer named in an unverified token, used only to pick which verifier checks it.
pub(crate) fn peek_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    serde_json::from_slice::<Iss>(&bytes).ok().map(|i| i.iss)
}

#[async_trait::async_trait]
impl TokenVerifier for UsersService {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let iss = peek_issuer(token).ok_or_else(|| AuthError::Invalid("malformed token".into()))?;
        if iss == self.issuer.issuer {
            let c = self.issuer.verify(token).await.map_err(AuthError::Invalid)?;
            return Ok(c.into());
        }
        match &self.external {
            Some(ext) if iss == ext.config.issuer => {
                let id = ext.verify(token).await?;
                let name = id.name.clone().or_else(|| id.email.clone()).unwrap_or_else(|| id.subject.clone());
                let user_id = self
                    .store
                    .upsert_external(&ext.config.issuer, &id.subject, id.email.as_deref(), id.email_verified, &name)
                    .await
                    .map_err(|e| AuthError::Unavailable(format!("user store: {e}")))?;
                Ok(Principal {
                    user_id,
                    email_verified: id.email.is_some() && id.email_verified,
                    session_id: None,
                    email: id.email,
                    display_name: Some(name),
                    roles: id.roles,
                    service: None,
                    token: None,
                })
            }
            _ => Err(AuthError::Invalid("unknown issuer".into())),
        }
    }
}

/// Organizer profile id of the demo organizer: the fixture event's `organizer.id`.
pub const DEMO_ORGANIZER_ID: &str = "org-009";

/// Demo accounts loaded by `ticketgw demo` / `serve --demo`: (email, password, role).
pub const DEMO_ACCOUNTS: [(&str, &str, Role); 3] = [
    ("admin@example.com", "ticketgw-demo-admin", Role::Admin),
    ("organizer@example.com", "ticketgw-demo-organizer", Role::Organizer),
    ("attendee@example.com", "ticketgw-demo-attendee", Role::User),
];

impl UsersService {
    /// Create the demo accounts (skipping those that exist) and give the demo organizer the
    /// fixture's organizer profile. Returns the id of the demo organizer's user.
    pub async fn seed_demo(&self) -> anyhow::Result<String> {
        for (email, password, role) in DEMO_ACCOUNTS {
            let name = match role {
                Role::Admin => "Demo Admin",
                Role::Organizer => "Demo Organizer",
                Role::User => "Demo Attendee",
            };
            let extra: &[Role] = if role == Role::User { &[] } else { &[role] };
            match self.create_user(email, password, name, extra).await {
                Ok(_) | Err(CreateUserError::EmailTaken) => {}
                Err(e) => return Err(anyhow::anyhow!("creating demo account {email}: {e}")),
            }
        }
        let admin = self.store.account_by_email(DEMO_ACCOUNTS[0].0).await?.expect("demo admin exists");
        let organizer = self.store.account_by_email(DEMO_ACCOUNTS[1].0).await?.expect("demo organizer exists");
        if self.store.organizer_by_user(&organizer.id).await?.is_none() {
            let profile = store::ProfileInput {
                name: "Cambodia Tech Association".into(),
                logo: Some("https://cdn.ticketgateway.io/orgs/org-009/logo.png".into()),
                contact_email: "info@techcambodia.org".into(),
                contact_phone: Some("+85512345678".into()),
                website: Some("https://techcambodia.org".into()),
            };
            let app = match self.store.insert_application(&organizer.id, &profile, Some("demo data")).await {
                Ok(app) => app,
                Err(e) if is_unique_violation(&e) => {
                    self.store.latest_application(&organizer.id).await?.expect("pending application exists")
                }
                Err(e) => return Err(e.into()),
            };
            self.store.decide_application(&app.id, true, &admin.id, Some("demo data"), Some(DEMO_ORGANIZER_ID)).await?;
        }
        Ok(organizer.id)
    }
}
