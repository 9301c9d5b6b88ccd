//! Server-side reCAPTCHA verification (Google's `siteverify` protocol) for register and login.

use std::{net::IpAddr, time::Duration};

use serde::Deserialize;
use tg_platform::ApiError;

#[derive(Clone, Debug)]
pub struct RecaptchaConfig {
    pub secret: String,
    /// `https://www.google.com/recaptcha/api/siteverify` in production.
    pub verify_url: String,
    /// reCAPTCHA v3 score below which the request is refused (v2 answers carry no score and pass on `success`).
    pub min_score: f64,
}

#[derive(Deserialize)]
struct SiteVerify {
    success: bool,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

pub struct Recaptcha {
    config: RecaptchaConfig,
    http: reqwest::Client,
}

impl Recaptcha {
    pub fn new(config: RecaptchaConfig) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("HTTP client");
        Recaptcha { config, http }
    }

    /// Check a client's token for `action` (`register` or `login`).
    pub async fn verify(&self, token: Option<&str>, action: &str, ip: IpAddr) -> Result<(), ApiError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::bad_request("recaptcha_required", "recaptcha_token is required"))?;
        let ip = ip.to_string();
        let form = [("secret", self.config.secret.as_str()), ("response", token), ("remoteip", ip.as_str())];
        let res = self.http.post(&self.config.verify_url).form(&form).send().await.and_then(|r| r.error_for_status());
        let answer: SiteVerify = match res {
            Ok(r) => r.json().await.map_err(|e| {
                ApiError::unavailable("recaptcha_unavailable", format!("reCAPTCHA answer unreadable: {e}"))
            })?,
            Err(e) => {
                tracing::warn!(error = %e, "reCAPTCHA verification unreachable");
                return Err(ApiError::unavailable(
                    "recaptcha_unavailable",
                    "reCAPTCHA verification is unavailable, try again",
                ));
            }
        };
        let action_ok = answer.action.as_deref().is_none_or(|a| a == action);
        let score_ok = answer.score.is_none_or(|s| s >= self.config.min_score);
        if answer.success && action_ok && score_ok {
            Ok(())
        } else {
            tracing::info!(errors = ?answer.error_codes, score = ?answer.score, "reCAPTCHA refused");
            Err(ApiError::bad_request("recaptcha_failed", "reCAPTCHA verification failed"))
        }
    }
}
