//! The built-in sandbox: a hosted pay page (served by the payments API) where a tester succeeds,
//! fails or abandons a payment. The page's buttons produce webhooks signed like Stripe's with the
//! sandbox secret, which go through the same verification and handling as any provider's.

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tg_platform::{clock::now_ms, db::Db, with_db};

use super::{
    signature, Outcome, PaymentIntent, PaymentRef, Provider, ProviderError, Started, WebhookError, WebhookEvent,
};

/// Header carrying the sandbox's signature.
pub const SIGNATURE_HEADER: &str = "sandbox-signature";

pub struct Sandbox {
    pub public_url: String,
    pub secret: String,
    /// Where the sandbox keeps its own books (`payments_sandbox_ledger`), as a real provider would.
    pub db: Db,
}

/// The sandbox's reference to our payment `payment_id`.
fn reference(payment_id: &str) -> String {
    format!("sbx_{payment_id}")
}

/// The sandbox's webhook body.
#[derive(Debug, Serialize, Deserialize)]
pub struct SandboxEvent {
    pub id: String,
    /// `payment.succeeded`, `payment.failed` or `payment.abandoned`.
    #[serde(rename = "type")]
    pub kind: String,
    pub payment_id: String,
    pub amount_cents: i64,
    pub currency: String,
}

impl Sandbox {
    /// CSRF token of the pay page's form: an HMAC of the payment id under the sandbox secret.
    pub fn csrf_token(&self, payment_id: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.secret.as_bytes());
        signature::to_hex(ring::hmac::sign(&key, format!("csrf:{payment_id}").as_bytes()).as_ref())
    }

    /// Whether `token` is the form's token for `payment_id` (compared in constant time).
    pub fn csrf_ok(&self, payment_id: &str, token: &str) -> bool {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.secret.as_bytes());
        signature::from_hex(token)
            .is_some_and(|tag| ring::hmac::verify(&key, format!("csrf:{payment_id}").as_bytes(), &tag).is_ok())
    }

    /// The tester's choice on the pay page (`succeeded`, `failed`, `abandoned`), entered in the
    /// sandbox's books before its webhook goes out. The first choice stands: the one returned.
    pub async fn decide(
        &self,
        payment_id: &str,
        outcome: &str,
        amount_cents: i64,
        currency: &str,
    ) -> Result<String, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query(
            "INSERT INTO payments_sandbox_ledger (payment_id, outcome, amount_cents, currency, decided_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
            .bind(payment_id).bind(outcome).bind(amount_cents).bind(currency).bind(now_ms())
            .execute(pool).await.map(|_| ()))?;
        with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT outcome FROM payments_sandbox_ledger WHERE payment_id = $1")
            .bind(payment_id).fetch_one(pool).await)
    }

    /// A signed webhook for `payment_id` (as the pay page's buttons send): (header value, body).
    pub fn webhook_for(
        &self,
        kind: &str,
        payment_id: &str,
        amount_cents: i64,
        currency: &str,
        now: i64,
    ) -> (String, Vec<u8>) {
        let event = SandboxEvent {
            id: format!("sbx_evt_{}", uuid::Uuid::now_v7().simple()),
            kind: kind.to_owned(),
            payment_id: payment_id.to_owned(),
            amount_cents,
            currency: currency.to_owned(),
        };
        let body = serde_json::to_vec(&event).expect("serializable");
        (signature::sign(&self.secret, now, &body), body)
    }
}

#[async_trait::async_trait]
impl Provider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn currencies(&self) -> &'static [&'static str] {
        &["USD", "KHR"]
    }

    async fn start(&self, intent: &PaymentIntent) -> Result<Started, ProviderError> {
        let url = format!("{}/pay/sandbox/{}", self.public_url.trim_end_matches('/'), intent.payment_id);
        Ok(Started {
            provider_ref: reference(&intent.payment_id),
            next_action: serde_json::json!({"type": "redirect", "url": url}),
        })
    }

    fn webhook(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<WebhookEvent, WebhookError> {
        let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).ok_or(WebhookError::BadSignature)?;
        signature::verify(header, &self.secret, body, now)?;
        let e: SandboxEvent = serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let outcome = match e.kind.as_str() {
            "payment.succeeded" => Outcome::Succeeded {
                amount_cents: e.amount_cents,
                currency: e.currency.clone(),
                reference: Some(format!("sbx_pay_{}", e.payment_id)),
            },
            "payment.failed" => Outcome::Failed,
            "payment.abandoned" => Outcome::Abandoned,
            _ => Outcome::Ignored,
        };
        Ok(WebhookEvent { event_id: e.id, payment: PaymentRef::Ours(e.payment_id), outcome })
    }

    async fn poll(&self, provider_ref: &str) -> Result<Option<Outcome>, ProviderError> {
        let Some(payment_id) = provider_ref.strip_prefix("sbx_") else { return Ok(None) };
        let row: Option<(String, i64, String)> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT outcome, amount_cents, currency FROM payments_sandbox_ledger WHERE payment_id = $1")
            .bind(payment_id).fetch_optional(pool).await)
        .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Ok(row.map(|(outcome, amount_cents, currency)| match outcome.as_str() {
            "succeeded" => {
                Outcome::Succeeded { amount_cents, currency, reference: Some(format!("sbx_pay_{payment_id}")) }
            }
            "failed" => Outcome::Failed,
            _ => Outcome::Abandoned,
        }))
    }

    /// Closing a sandbox payment enters "abandoned" in its books unless the tester chose first.
    async fn cancel(&self, provider_ref: &str) -> Result<(), ProviderError> {
        let Some(payment_id) = provider_ref.strip_prefix("sbx_") else { return Ok(()) };
        self.decide(payment_id, "abandoned", 0, "").await.map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn refund(
        &self,
        _refund_id: &str,
        _reference: &str,
        _amount_cents: i64,
        _currency: &str,
    ) -> Result<String, ProviderError> {
        Ok(format!("sbx_re_{}", uuid::Uuid::now_v7().simple()))
    }
}
