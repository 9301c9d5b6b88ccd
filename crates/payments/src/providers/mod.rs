//! Payment providers: how a payment starts, how its webhooks are verified and read, how money goes back.

pub mod khqr;
pub mod sandbox;
pub mod signature;
pub mod stripe;

use axum::http::HeaderMap;
use serde_json::Value;

/// What the service knows of a payment when it talks to a provider.
#[derive(Clone, Debug)]
pub struct PaymentIntent {
    pub payment_id: String,
    pub booking_id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub description: String,
}

/// What the payer does next.
#[derive(Clone, Debug)]
pub struct Started {
    /// The provider's id for this payment (session id, KHQR md5, …).
    pub provider_ref: String,
    /// Shown to the client as `next_action`.
    pub next_action: Value,
}

/// A verified webhook, read.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEvent {
    /// The provider's event id: a second delivery of it changes nothing.
    pub event_id: String,
    /// Our payment id, or the provider's reference to it.
    pub payment: PaymentRef,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PaymentRef {
    Ours(String),
    Provider(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Paid; the provider's reference for refunds (payment intent, transaction hash).
    Succeeded {
        amount_cents: i64,
        currency: String,
        reference: Option<String>,
    },
    Failed,
    Abandoned,
    /// An event we do not act on.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("signature missing or invalid")]
    BadSignature,
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error("malformed webhook: {0}")]
    Malformed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    Refused(String),
    #[error("payment provider unreachable: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Currencies this provider takes (upper case).
    fn currencies(&self) -> &'static [&'static str];
    async fn start(&self, intent: &PaymentIntent) -> Result<Started, ProviderError>;
    /// Verify and read a webhook from its raw body; `now` in Unix seconds.
    fn webhook(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<WebhookEvent, WebhookError>;
    /// Ask the provider about a payment: what became of it, or `None` while it is still open.
    /// Polling providers (KHQR) are asked this way instead of webhooks; every provider is asked
    /// when reconciling a payment left pending.
    async fn poll(&self, provider_ref: &str) -> Result<Option<Outcome>, ProviderError>;
    /// Whether its payments are learned of only by asking ([`Provider::poll`]), not by webhooks:
    /// then a pending payment is asked about while its payer waits, not only when reconciling.
    fn reports_by_polling(&self) -> bool {
        false
    }
    /// Close a payment that is no longer wanted (its hold is gone), so that it can no longer be
    /// paid; afterwards [`Provider::poll`] tells whether it was paid just before.
    async fn cancel(&self, _provider_ref: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Return `amount_cents` of a payment; the provider's refund id. `refund_id` is ours: retries of
    /// one refund carry the same, so the provider pays it once.
    async fn refund(
        &self,
        refund_id: &str,
        reference: &str,
        amount_cents: i64,
        currency: &str,
    ) -> Result<String, ProviderError>;
}
