//! Configuration: command-line flags, environment variables and an optional TOML file, in that order
//! of precedence. `ticketgw serve --help` lists every setting with its environment variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use tg_users::{
    external::ExternalOidcConfig,
    ratelimit::{LoginLimits, RegisterLimits},
    recaptcha::RecaptchaConfig,
    UsersConfig,
};

/// Every setting is optional here; defaults apply after the TOML file is merged in.
#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// TOML file with any of these settings (keys are the long flag names with `_`).
    #[arg(long, env = "TICKETGW_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TICKETGW_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// A separate address serving `/metrics` (and `/healthz`), which the main port then no longer serves,
    /// e.g. `0.0.0.0:9090` for Prometheus inside the cluster.
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token that opens `/metrics` on the main port from anywhere (without it and without
    /// METRICS_LISTEN, only callers on this machine may read it).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Directory for the SQLite file and uploads [default: ./data].
    #[arg(long, env = "TICKETGW_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// What this process runs: `all` (every service, in process), or a comma-separated list of
    /// `gateway`, `users`, `events`, `bookings`, `payments`, `notifications`, `admin`, `web`
    /// (microservices; see TICKETGW_<SERVICE>_URL in the README) [default: all].
    #[arg(long, env = "TICKETGW_TARGET")]
    pub target: Option<String>,
    /// `postgres://…` for PostgreSQL, `sqlite:…` for a SQLite file elsewhere; unset = SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Database connection pool size [default: 20].
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    /// Public base URL, used as the token issuer (`iss`) [default: http://<listen>].
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// `text` or `json` [default: text].
    #[arg(long, env = "LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Load demo data (accounts, organizer profile) at start.
    #[arg(long, env = "TICKETGW_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// Lifetime of access tokens in seconds [default: 900].
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECS")]
    pub access_token_ttl_secs: Option<u64>,
    /// Lifetime of refresh tokens in days [default: 30].
    #[arg(long, env = "REFRESH_TOKEN_TTL_DAYS")]
    pub refresh_token_ttl_days: Option<u64>,
    /// A new signing key is created after this many days [default: 30].
    #[arg(long, env = "SIGNING_KEY_ROTATION_DAYS")]
    pub signing_key_rotation_days: Option<u64>,
    /// 32 random bytes (base64) sealing the token signing keys in the database (AES-256-GCM); unset: stored unencrypted.
    #[arg(long, env = "SIGNING_KEYS_SECRET", hide_env_values = true)]
    pub signing_keys_secret: Option<String>,
    /// The secret before the current one, while keys it sealed still verify (rotation; see README).
    #[arg(long, env = "SIGNING_KEYS_SECRET_PREVIOUS", hide_env_values = true)]
    pub signing_keys_secret_previous: Option<String>,
    /// Issuer URL of an external OpenID Connect provider (e.g. Keycloak realm); its tokens are then accepted.
    #[arg(long, env = "OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Audience the external provider's tokens must carry [default: ticketgw].
    #[arg(long, env = "OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// Clock skew tolerated on external tokens, in seconds [default: 30].
    #[arg(long, env = "OIDC_LEEWAY_SECS")]
    pub oidc_leeway_secs: Option<u64>,
    /// Minimum seconds between JWKS refreshes triggered by unknown key ids [default: 30].
    #[arg(long, env = "OIDC_JWKS_MIN_REFRESH_SECS")]
    pub oidc_jwks_min_refresh_secs: Option<u64>,
    /// reCAPTCHA secret; when set, register and login require a `recaptcha_token`.
    #[arg(long, env = "RECAPTCHA_SECRET", hide_env_values = true)]
    pub recaptcha_secret: Option<String>,
    /// reCAPTCHA verification endpoint [default: https://www.google.com/recaptcha/api/siteverify].
    #[arg(long, env = "RECAPTCHA_VERIFY_URL")]
    pub recaptcha_verify_url: Option<String>,
    /// reCAPTCHA site key shown by the web UI's login and register forms (with RECAPTCHA_SECRET).
    #[arg(long, env = "RECAPTCHA_SITE_KEY")]
    pub recaptcha_site_key: Option<String>,
    /// Minimum reCAPTCHA v3 score [default: 0.5].
    #[arg(long, env = "RECAPTCHA_MIN_SCORE")]
    pub recaptcha_min_score: Option<f64>,
    /// Largest banner image accepted, in bytes [default: 5242880].
    #[arg(long, env = "MAX_BANNER_BYTES")]
    pub max_banner_bytes: Option<usize>,
    /// How long a hold waits for payment, in seconds [default: 900].
    #[arg(long, env = "HOLD_TTL_SECS")]
    pub hold_ttl_secs: Option<u64>,
    /// Login attempts per account in a burst [default: 10] ...
    #[arg(long, env = "LOGIN_ACCOUNT_BURST")]
    pub login_account_burst: Option<u32>,
    /// ... then one more every this many seconds [default: 60].
    #[arg(long, env = "LOGIN_ACCOUNT_PERIOD_SECS")]
    pub login_account_period_secs: Option<u64>,
    /// Login attempts per client IP in a burst [default: 30] ...
    #[arg(long, env = "LOGIN_IP_BURST")]
    pub login_ip_burst: Option<u32>,
    /// ... then one more every this many seconds [default: 2].
    #[arg(long, env = "LOGIN_IP_PERIOD_SECS")]
    pub login_ip_period_secs: Option<u64>,
    /// Registrations per client IP (IPv6: per /64) in a burst, then one more every 6 s [default: 10].
    #[arg(long, env = "REGISTER_IP_BURST")]
    pub register_ip_burst: Option<u32>,
    /// RabbitMQ to relay domain events to (amqp://user:pass@host:port/vhost); unset = in-process delivery.
    #[arg(long, env = "AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,
    /// Prefix of the RabbitMQ exchange and queue names [default: ticketgw].
    #[arg(long, env = "AMQP_PREFIX")]
    pub amqp_prefix: Option<String>,
    /// Offer the sandbox payment provider, whose page lets anyone "pay" [default: with --demo, or when
    /// neither KHQR nor Stripe is configured].
    #[arg(long, env = "PAYMENTS_SANDBOX", num_args = 0..=1, default_missing_value = "true")]
    pub payments_sandbox: Option<bool>,
    /// Secret signing the sandbox provider's webhooks [default: random at each start].
    #[arg(long, env = "SANDBOX_WEBHOOK_SECRET", hide_env_values = true)]
    pub sandbox_webhook_secret: Option<String>,
    /// Pending payments and paid but unconfirmed bookings older than this many seconds are
    /// reconciled with the payment provider [default: 120].
    #[arg(long, env = "PAYMENTS_RECONCILE_AFTER_SECS")]
    pub payments_reconcile_after_secs: Option<u64>,
    /// Bakong account receiving KHQR payments (name@bank); unset = no KHQR (demo: ticketgw_demo@devb).
    #[arg(long, env = "KHQR_ACCOUNT_ID")]
    pub khqr_account_id: Option<String>,
    /// Merchant name shown in KHQR codes [default: Ticket Gateway].
    #[arg(long, env = "KHQR_MERCHANT_NAME")]
    pub khqr_merchant_name: Option<String>,
    /// Merchant city in KHQR codes [default: Phnom Penh].
    #[arg(long, env = "KHQR_MERCHANT_CITY")]
    pub khqr_merchant_city: Option<String>,
    /// Bakong Open API [default: https://api-bakong.nbc.gov.kh].
    #[arg(long, env = "BAKONG_API_URL")]
    pub bakong_api_url: Option<String>,
    /// Bakong Open API token.
    #[arg(long, env = "BAKONG_API_TOKEN", hide_env_values = true)]
    pub bakong_api_token: Option<String>,
    /// Stripe secret key; unset = no card payments.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Stripe webhook signing secret (whsec_…).
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
    /// Stripe API [default: https://api.stripe.com].
    #[arg(long, env = "STRIPE_API_URL")]
    pub stripe_api_url: Option<String>,
    /// SMTP server for e-mail notices (smtp://host:port, smtp://…?tls=required, smtps://user:pass@host);
    /// unset = notices only in the in-platform mailbox.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of e-mail notices [default: Ticket Gateway <tickets@localhost>].
    #[arg(long, env = "MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Telegram bot token; unset = no Telegram notices.
    #[arg(long, env = "TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    pub telegram_bot_token: Option<String>,
    /// Telegram Bot API [default: https://api.telegram.org].
    #[arg(long, env = "TELEGRAM_API_URL")]
    pub telegram_api_url: Option<String>,
    /// SMS gateway speaking Twilio's Messages API [default: https://api.twilio.com]; needs SMS_ACCOUNT_SID.
    #[arg(long, env = "SMS_API_URL")]
    pub sms_api_url: Option<String>,
    /// SMS gateway account; unset = no SMS notices.
    #[arg(long, env = "SMS_ACCOUNT_SID")]
    pub sms_account_sid: Option<String>,
    #[arg(long, env = "SMS_AUTH_TOKEN", hide_env_values = true)]
    pub sms_auth_token: Option<String>,
    /// Sender number of SMS notices.
    #[arg(long, env = "SMS_FROM")]
    pub sms_from: Option<String>,
    /// HTTPS and the internal CA (TOML: a `[tls]` table).
    #[command(flatten)]
    pub tls: TlsSettings,
}

/// HTTPS for this process and the CA it trusts on calls to other services (paths to PEM files).
#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// Certificate chain to serve HTTPS with, instead of HTTP (needs TLS_KEY_FILE); re-read when it changes.
    #[arg(long = "tls-cert-file", env = "TLS_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// Private key of TLS_CERT_FILE (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long = "tls-key-file", env = "TLS_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// CA certificate(s) trusted on calls to other services, besides the public roots.
    #[arg(long = "tls-ca-file", env = "TLS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Seconds between checks of the certificate files for a rotation [default: 30].
    #[arg(long = "tls-reload-secs", env = "TLS_RELOAD_SECS")]
    pub reload_secs: Option<u64>,
}

impl TlsSettings {
    pub fn serves_https(&self) -> bool {
        self.cert_file.is_some()
    }

    /// Trust the internal CA, and load the server certificate (watched for rotation) when HTTPS is
    /// configured. Call once at start, before any HTTP client is built.
    pub fn apply(&self) -> anyhow::Result<Option<std::sync::Arc<tg_platform::tls::CertReloader>>> {
        if let Some(ca) = &self.ca_file {
            tg_platform::tls::trust_internal_ca(ca)?;
        }
        let (cert, key) = match (&self.cert_file, &self.key_file) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => anyhow::bail!("TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither"),
        };
        let reloader = tg_platform::tls::CertReloader::load(tg_platform::tls::TlsFiles { cert, key })?;
        reloader.watch(Duration::from_secs(self.reload_secs.unwrap_or(30).max(1)));
        Ok(Some(reloader))
    }
}

/// Fill every unset field of `$a` from `$b`.
macro_rules! fill {
    ($a:ident, $b:ident, $($f:ident),*) => { $( if $a.$f.is_none() { $a.$f = $b.$f; } )* };
}

impl Settings {
    /// Merge in the TOML file named by `--config`, if any. Flags and environment win over the file.
    pub fn with_file(mut self) -> anyhow::Result<Settings> {
        let Some(path) = self.config.clone() else { return Ok(self) };
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let file: Settings = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        fill!(
            self,
            file,
            listen,
            metrics_listen,
            metrics_token,
            data_dir,
            target,
            database_url,
            database_max_connections,
            public_url,
            log_format,
            demo,
            access_token_ttl_secs,
            refresh_token_ttl_days,
            signing_key_rotation_days,
            signing_keys_secret,
            signing_keys_secret_previous,
            oidc_issuer,
            oidc_audience,
            oidc_leeway_secs,
            oidc_jwks_min_refresh_secs,
            recaptcha_secret,
            recaptcha_verify_url,
            recaptcha_site_key,
            recaptcha_min_score,
            login_account_burst,
            login_account_period_secs,
            login_ip_burst,
            login_ip_period_secs,
            register_ip_burst,
            max_banner_bytes,
            hold_ttl_secs,
            amqp_url,
            amqp_prefix,
            payments_sandbox,
            sandbox_webhook_secret,
            payments_reconcile_after_secs,
            khqr_account_id,
            khqr_merchant_name,
            khqr_merchant_city,
            bakong_api_url,
            bakong_api_token,
            stripe_secret_key,
            stripe_webhook_secret,
            stripe_api_url,
            smtp_url,
            mail_from,
            telegram_bot_token,
            telegram_api_url,
            sms_api_url,
            sms_account_sid,
            sms_auth_token,
            sms_from
        );
        let (mut tls, file_tls) = (self.tls, file.tls);
        fill!(tls, file_tls, cert_file, key_file, ca_file, reload_secs);
        self.tls = tls;
        Ok(self)
    }

    /// `PUBLIC_URL`, or this process's own address (https when it serves TLS).
    pub fn public_url(&self, listen: SocketAddr) -> String {
        let scheme = if self.tls.serves_https() { "https" } else { "http" };
        self.public_url.clone().unwrap_or_else(|| format!("{scheme}://{listen}"))
    }
    pub fn listen(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid default"))
    }
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from("./data"))
    }
    pub fn targets(&self) -> anyhow::Result<crate::targets::Targets> {
        crate::targets::Targets::parse(self.target.as_deref().unwrap_or("all"))
    }
    /// How this process logs; `traces`: whether it exports spans (when an OTLP endpoint is set).
    pub fn telemetry(&self, traces: bool) -> tg_platform::telemetry::TelemetrySettings {
        let targets = self.target.clone().unwrap_or_else(|| "all".into());
        let service = if targets == "all" { "ticketgw".to_owned() } else { targets.replace(',', "+") };
        tg_platform::telemetry::TelemetrySettings {
            json: self.log_format.as_deref() == Some("json"),
            service,
            targets,
            traces,
        }
    }
    pub fn messaging(&self) -> tg_messaging::MessagingConfig {
        let d = tg_messaging::MessagingConfig::default();
        tg_messaging::MessagingConfig {
            amqp_url: self.amqp_url.clone(),
            amqp_prefix: self.amqp_prefix.clone().unwrap_or(d.amqp_prefix.clone()),
            ..d
        }
    }
    /// The web UI's settings; `listen` as for [`Settings::users`].
    pub fn web(&self, listen: SocketAddr, payment_providers: Vec<&str>) -> tg_web::WebConfig {
        let public_url = self.users(listen).public_url;
        tg_web::WebConfig {
            secure_cookies: public_url.starts_with("https://"),
            public_url: public_url.trim_end_matches('/').to_owned(),
            recaptcha_site_key: self.recaptcha_site_key.clone().filter(|_| self.recaptcha_secret.is_some()),
            // The sandbox first: where it is offered (demo, development) it is the one to try.
            payment_providers: {
                let mut names: Vec<String> = payment_providers.into_iter().map(str::to_owned).collect();
                names.sort_by_key(|n| (n != "sandbox", n.clone()));
                names
            },
            max_banner_bytes: self.max_banner_bytes(),
        }
    }
    /// The payments service's providers; `listen` as for [`Settings::users`].
    pub fn payments(&self, listen: SocketAddr) -> anyhow::Result<tg_payments::PaymentsConfig> {
        use tg_payments::providers::{khqr::KhqrConfig, stripe::StripeConfig};
        let public_url = self.public_url(listen);
        let demo = self.demo.unwrap_or(false);
        let demo_account = demo.then(|| "ticketgw_demo@devb".to_owned());
        anyhow::ensure!(
            self.stripe_secret_key.is_none() || self.stripe_webhook_secret.as_deref().is_some_and(|s| !s.is_empty()),
            "STRIPE_SECRET_KEY needs STRIPE_WEBHOOK_SECRET: without it Stripe webhooks could not be verified"
        );
        let real_provider = self.khqr_account_id.is_some() || self.stripe_secret_key.is_some();
        Ok(tg_payments::PaymentsConfig {
            sandbox: self.payments_sandbox.unwrap_or(demo || !real_provider),
            sandbox_secret: self
                .sandbox_webhook_secret
                .clone()
                .unwrap_or_else(|| format!("whsec_sandbox_{}", uuid::Uuid::new_v4().simple())),
            khqr: self.khqr_account_id.clone().or(demo_account).map(|account_id| KhqrConfig {
                account_id,
                merchant_name: self.khqr_merchant_name.clone().unwrap_or_else(|| "Ticket Gateway".into()),
                merchant_city: self.khqr_merchant_city.clone().unwrap_or_else(|| "Phnom Penh".into()),
                api_base: self.bakong_api_url.clone().unwrap_or_else(|| "https://api-bakong.nbc.gov.kh".into()),
                api_token: self.bakong_api_token.clone().unwrap_or_default(),
                valid_ms: 15 * 60 * 1000,
            }),
            stripe: self.stripe_secret_key.clone().map(|secret_key| StripeConfig {
                api_base: self.stripe_api_url.clone().unwrap_or_else(|| "https://api.stripe.com".into()),
                secret_key,
                webhook_secret: self.stripe_webhook_secret.clone().unwrap_or_default(),
                return_url: format!("{public_url}/api/v1/payments/{{PAYMENT_ID}}"),
            }),
            reconcile_after: Duration::from_secs(self.payments_reconcile_after_secs.unwrap_or(120).max(1)),
            public_url,
        })
    }
    pub fn notifications(&self, listen: SocketAddr) -> tg_notifications::NotificationsConfig {
        tg_notifications::NotificationsConfig {
            public_url: self.public_url(listen),
            smtp_url: self.smtp_url.clone(),
            mail_from: self.mail_from.clone().unwrap_or_else(|| "Ticket Gateway <tickets@localhost>".into()),
            telegram_bot_token: self.telegram_bot_token.clone(),
            telegram_api_url: self.telegram_api_url.clone().unwrap_or_else(|| "https://api.telegram.org".into()),
            sms: self.sms_account_sid.clone().map(|sid| {
                (
                    self.sms_api_url.clone().unwrap_or_else(|| "https://api.twilio.com".into()),
                    sid,
                    self.sms_auth_token.clone().unwrap_or_default(),
                    self.sms_from.clone().unwrap_or_default(),
                )
            }),
        }
    }
    pub fn bookings(&self) -> tg_bookings::BookingsConfig {
        let d = tg_bookings::BookingsConfig::default();
        tg_bookings::BookingsConfig { hold_ttl: self.hold_ttl_secs.map(Duration::from_secs).unwrap_or(d.hold_ttl), ..d }
    }
    pub fn max_banner_bytes(&self) -> usize {
        self.max_banner_bytes.unwrap_or(5 * 1024 * 1024)
    }
    pub fn max_connections(&self) -> u32 {
        self.database_max_connections.unwrap_or(20).max(1)
    }

    /// The users service's configuration; `listen` is the actual bound address (port 0 resolved).
    /// Who may read `/metrics` on the main port.
    pub fn metrics_access(&self) -> tg_platform::metrics::MetricsAccess {
        tg_platform::metrics::MetricsAccess::from_settings(self.metrics_listen.is_some(), self.metrics_token.as_deref())
    }

    pub fn users(&self, listen: SocketAddr) -> UsersConfig {
        let d = UsersConfig::default();
        let l = LoginLimits::default();
        let secs = Duration::from_secs;
        UsersConfig {
            public_url: self.public_url(listen),
            access_token_ttl: self.access_token_ttl_secs.map(secs).unwrap_or(d.access_token_ttl),
            refresh_token_ttl: self.refresh_token_ttl_days.map(|n| secs(n * 86_400)).unwrap_or(d.refresh_token_ttl),
            key_rotation: self.signing_key_rotation_days.map(|n| secs(n * 86_400)).unwrap_or(d.key_rotation),
            signing_keys_secrets: tg_users::key_seal::SealSecrets {
                current: self.signing_keys_secret.clone(),
                previous: self.signing_keys_secret_previous.clone(),
            },
            external_oidc: self.oidc_issuer.clone().map(|issuer| ExternalOidcConfig {
                issuer,
                audience: self.oidc_audience.clone().unwrap_or_else(|| "ticketgw".into()),
                leeway: secs(self.oidc_leeway_secs.unwrap_or(30)),
                min_jwks_refresh: secs(self.oidc_jwks_min_refresh_secs.unwrap_or(30)),
            }),
            recaptcha: self.recaptcha_secret.clone().map(|secret| RecaptchaConfig {
                secret,
                verify_url: self
                    .recaptcha_verify_url
                    .clone()
                    .unwrap_or_else(|| "https://www.google.com/recaptcha/api/siteverify".into()),
                min_score: self.recaptcha_min_score.unwrap_or(0.5),
            }),
            login_limits: LoginLimits {
                per_account_burst: self.login_account_burst.unwrap_or(l.per_account_burst),
                per_account_period: self.login_account_period_secs.map(secs).unwrap_or(l.per_account_period),
                per_ip_burst: self.login_ip_burst.unwrap_or(l.per_ip_burst),
                per_ip_period: self.login_ip_period_secs.map(secs).unwrap_or(l.per_ip_period),
            },
            register_limits: RegisterLimits {
                per_ip_burst: self.register_ip_burst.unwrap_or(RegisterLimits::default().per_ip_burst),
                ..RegisterLimits::default()
            },
            service_clients: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toml_file_fills_tls_settings_that_flags_and_environment_left_unset() {
        let path = std::env::temp_dir().join(format!("tg-config-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\n[tls]\ncert_file = \"/tls/tls.crt\"\nkey_file = \"/tls/tls.key\"\n",
        )
        .unwrap();
        let flags = Settings {
            config: Some(path.clone()),
            tls: TlsSettings { key_file: Some("/elsewhere/key.pem".into()), ..TlsSettings::default() },
            ..Settings::default()
        };
        let s = flags.with_file().unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(s.tls.cert_file, Some(PathBuf::from("/tls/tls.crt")));
        assert_eq!(s.tls.key_file, Some(PathBuf::from("/elsewhere/key.pem")), "a flag wins over the file");
        assert!(s.tls.serves_https());
        assert_eq!(s.public_url(s.listen()), "https://0.0.0.0:9000");

        let unknown = std::env::temp_dir().join(format!("tg-config-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&unknown, "[tls]\ncert = \"/tls/tls.crt\"\n").unwrap();
        let err = Settings { config: Some(unknown.clone()), ..Settings::default() }.with_file().unwrap_err();
        std::fs::remove_file(&unknown).unwrap();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }
}
