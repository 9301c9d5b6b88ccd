//! A Stripe-style card provider: a Checkout Session per payment (the payer goes to its `url`),
//! `checkout.session.*` webhooks signed with `Stripe-Signature`, refunds through `/v1/refunds`.
//! The base URL is configurable, so tests run it against a local server speaking Stripe's format.

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{
    signature, Outcome, PaymentIntent, PaymentRef, Provider, ProviderError, Started, WebhookError, WebhookEvent,
};

#[derive(Clone, Debug)]
pub struct StripeConfig {
    pub api_base: String,
    pub secret_key: String,
    pub webhook_secret: String,
    /// Where Checkout sends the payer back (`{PAYMENT_ID}` is replaced).
    pub return_url: String,
}

pub struct Stripe {
    pub config: StripeConfig,
    pub http: reqwest::Client,
}

#[derive(Deserialize)]
struct Session {
    id: String,
    url: Option<String>,
}

#[derive(Deserialize)]
struct StripeError {
    error: StripeErrorBody,
}

#[derive(Deserialize)]
struct StripeErrorBody {
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: serde_json::Value,
}

/// What a Checkout Session's state says of its payment; `None` while it is open.
fn session_outcome(session: &serde_json::Value) -> Option<Outcome> {
    match (session["status"].as_str(), session["payment_status"].as_str()) {
        (Some("complete"), Some("paid" | "no_payment_required")) => Some(Outcome::Succeeded {
            amount_cents: session["amount_total"].as_i64().unwrap_or(-1),
            currency: session["currency"].as_str().unwrap_or_default().to_uppercase(),
            reference: session["payment_intent"].as_str().map(str::to_owned),
        }),
        (Some("expired"), _) => Some(Outcome::Abandoned),
        _ => None,
    }
}

impl Stripe {
    async fn get(&self, path: &str) -> Result<serde_json::Value, ProviderError> {
        let url = format!("{}{path}", self.config.api_base.trim_end_matches('/'));
        let res = self
            .http
            .get(url)
            .bearer_auth(&self.config.secret_key)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Self::read(res).await
    }

    async fn read(res: reqwest::Response) -> Result<serde_json::Value, ProviderError> {
        let status = res.status();
        let body = res.bytes().await.map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(ProviderError::Unavailable(format!("Stripe answered {status}")));
        }
        if !status.is_success() {
            let msg = serde_json::from_slice::<StripeError>(&body).map(|e| e.error.message).unwrap_or_default();
            return Err(ProviderError::Refused(format!("Stripe refused ({status}): {msg}")));
        }
        serde_json::from_slice(&body).map_err(|e| ProviderError::Unavailable(format!("unreadable answer: {e}")))
    }

    async fn post_form(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &[(String, String)],
    ) -> Result<serde_json::Value, ProviderError> {
        let url = format!("{}{path}", self.config.api_base.trim_end_matches('/'));
        let res = self
            .http
            .post(url)
            .bearer_auth(&self.config.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Self::read(res).await
    }
}

#[async_trait::async_trait]
impl Provider for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn currencies(&self) -> &'static [&'static str] {
        &["USD"]
    }

    async fn start(&self, intent: &PaymentIntent) -> Result<Started, ProviderError> {
        let back = self.config.return_url.replace("{PAYMENT_ID}", &intent.payment_id);
        let form: Vec<(String, String)> = [
            ("mode", "payment".to_owned()),
            ("line_items[0][price_data][currency]", intent.currency.to_lowercase()),
            ("line_items[0][price_data][unit_amount]", intent.amount_cents.to_string()),
            ("line_items[0][price_data][product_data][name]", intent.description.clone()),
            ("line_items[0][quantity]", "1".to_owned()),
            ("success_url", back.clone()),
            ("cancel_url", back),
            ("client_reference_id", intent.booking_id.clone()),
            ("metadata[payment_id]", intent.payment_id.clone()),
            ("metadata[booking_id]", intent.booking_id.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let session: Session =
            serde_json::from_value(self.post_form("/v1/checkout/sessions", &intent.payment_id, &form).await?)
                .map_err(|e| ProviderError::Unavailable(format!("unreadable session: {e}")))?;
        let url = session.url.ok_or_else(|| ProviderError::Unavailable("session without url".into()))?;
        Ok(Started { provider_ref: session.id, next_action: serde_json::json!({"type": "redirect", "url": url}) })
    }

    fn webhook(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<WebhookEvent, WebhookError> {
        let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).ok_or(WebhookError::BadSignature)?;
        signature::verify(header, &self.config.webhook_secret, body, now)?;
        let event: Event = serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let session = &event.data.object;
        let payment = match session["metadata"]["payment_id"].as_str() {
            Some(id) => PaymentRef::Ours(id.to_owned()),
            None => PaymentRef::Provider(session["id"].as_str().unwrap_or_default().to_owned()),
        };
        let outcome = match event.kind.as_str() {
            "checkout.session.completed" | "checkout.session.async_payment_succeeded"
                if session["payment_status"] == "paid" =>
            {
                session_outcome(&serde_json::json!({
                    "status": "complete", "payment_status": "paid", "amount_total": session["amount_total"],
                    "currency": session["currency"], "payment_intent": session["payment_intent"],
                }))
                .unwrap_or(Outcome::Ignored)
            }
            "checkout.session.async_payment_failed" => Outcome::Failed,
            "checkout.session.expired" => Outcome::Abandoned,
            _ => Outcome::Ignored,
        };
        Ok(WebhookEvent { event_id: event.id, payment, outcome })
    }

    /// `GET /v1/checkout/sessions/{id}`: complete and paid, expired, or still open.
    async fn poll(&self, session_id: &str) -> Result<Option<Outcome>, ProviderError> {
        let session = self.get(&format!("/v1/checkout/sessions/{}", urlencode(session_id))).await?;
        Ok(session_outcome(&session))
    }

    /// `POST /v1/checkout/sessions/{id}/expire`; a session that is no longer open is left as it is.
    async fn cancel(&self, session_id: &str) -> Result<(), ProviderError> {
        let path = format!("/v1/checkout/sessions/{}/expire", urlencode(session_id));
        match self.post_form(&path, &format!("expire-{session_id}"), &[]).await {
            Ok(_) | Err(ProviderError::Refused(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn refund(
        &self,
        refund_id: &str,
        reference: &str,
        amount_cents: i64,
        _currency: &str,
    ) -> Result<String, ProviderError> {
        let form = vec![
            ("payment_intent".to_owned(), reference.to_owned()),
            ("amount".to_owned(), amount_cents.to_string()),
            ("reason".to_owned(), "requested_by_customer".to_owned()),
        ];
        let refund = self.post_form("/v1/refunds", refund_id, &form).await?;
        match refund["status"].as_str() {
            Some("succeeded" | "pending") => Ok(refund["id"].as_str().unwrap_or_default().to_owned()),
            other => Err(ProviderError::Refused(format!("refund status {other:?}"))),
        }
    }
}

/// A path segment from a provider's id (ids are `[A-Za-z0-9_]`, but never trust them raw).
fn urlencode(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
