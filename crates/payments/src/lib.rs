//! Payments service: a payment for a held booking (amount and currency from the booking, never the
//! client), through a provider; signed webhooks; confirmation of the booking; refunds.
//!
//! Money and bookings meet through messages, so that no step is lost between two services:
//! - a success is stored with `payment.succeeded` in one transaction; this service's own consumer
//!   of that message confirms the booking (idempotent) and, if the seats are gone, refunds;
//! - the bookings service cancels tickets with `booking.cancelled` carrying `refund_cents`; the
//!   consumer records the refund once per message and the provider is asked (retried until done).

pub mod api;
pub mod ports;
pub mod providers;
pub mod store;

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::http::HeaderMap;
use serde::Serialize;
use tg_messaging::Consumer;
use tg_platform::{
    auth::Principal,
    bus::{Bus, DomainEvent},
    clock::{now_ms, rfc3339},
    db::{Db, ServiceMigrations},
    ApiError, ApiResult,
};
use utoipa::ToSchema;

use crate::{
    ports::{Bookings, ConfirmFailure},
    providers::{Outcome, PaymentIntent, PaymentRef, Provider, ProviderError, WebhookError},
    store::{Applied, PaymentRow, Store},
};

pub fn migrations() -> ServiceMigrations {
    ServiceMigrations {
        service: "payments",
        sqlite: sqlx::migrate!("migrations/sqlite"),
        postgres: sqlx::migrate!("migrations/postgres"),
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: String,
    pub booking_id: String,
    pub provider: String,
    /// `pending`, `succeeded`, `failed`, `abandoned`, `partially_refunded` or `refunded`.
    pub status: String,
    pub amount: f64,
    pub currency: String,
    pub refunded_amount: f64,
    /// What the payer does next: `{"type": "redirect", "url"}` or `{"type": "khqr", "qr", "md5", "qr_svg", "expires_at"}`.
    #[schema(value_type = Object)]
    pub next_action: serde_json::Value,
    pub created_at: String,
}

fn view(p: &PaymentRow) -> PaymentView {
    PaymentView {
        id: p.id.clone(),
        booking_id: p.booking_id.clone(),
        provider: p.provider.clone(),
        status: p.status.clone(),
        amount: p.amount_cents as f64 / 100.0,
        currency: p.currency.clone(),
        refunded_amount: p.refunded_cents as f64 / 100.0,
        next_action: if p.status == "pending" {
            serde_json::from_str(&p.next_action).unwrap_or_default()
        } else {
            serde_json::json!({})
        },
        created_at: rfc3339(p.created_at),
    }
}

#[derive(Clone, Debug)]
pub struct PaymentsConfig {
    pub public_url: String,
    /// Offer the sandbox: anyone may "pay" on its page, so it is for demos and tests only.
    pub sandbox: bool,
    pub sandbox_secret: String,
    pub khqr: Option<providers::khqr::KhqrConfig>,
    pub stripe: Option<providers::stripe::StripeConfig>,
}

/// The name under which this service's consumer keeps its processed messages.
const CONSUMER: &str = "payments";

pub struct PaymentsService {
    pub(crate) store: Store,
    bus: Bus,
    bookings: Arc<dyn Bookings>,
    providers: HashMap<&'static str, Arc<dyn Provider>>,
    sandbox: Option<Arc<providers::sandbox::Sandbox>>,
}

impl PaymentsService {
    pub fn new(db: Db, bus: Bus, bookings: Arc<dyn Bookings>, config: PaymentsConfig) -> Arc<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap_or_default();
        let sandbox = config.sandbox.then(|| {
            Arc::new(providers::sandbox::Sandbox { public_url: config.public_url, secret: config.sandbox_secret })
        });
        let mut providers: HashMap<&'static str, Arc<dyn Provider>> = HashMap::new();
        if let Some(sandbox) = &sandbox {
            providers.insert(sandbox.name(), sandbox.clone());
        }
        if let Some(config) = config.khqr {
            providers.insert("khqr", Arc::new(providers::khqr::Khqr { config, http: http.clone() }));
        }
        if let Some(config) = config.stripe {
            providers.insert("stripe", Arc::new(providers::stripe::Stripe { config, http }));
        }
        Arc::new(PaymentsService { store: Store { db }, bus, bookings, providers, sandbox })
    }

    /// The sandbox provider, when offered.
    pub fn sandbox(&self) -> Option<&providers::sandbox::Sandbox> {
        self.sandbox.as_deref()
    }

    /// Provider names on offer.
    pub fn provider_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.providers.keys().copied().collect();
        names.sort();
        names
    }

    /// Start paying a held booking. `(payment, created)`; a replayed idempotency key returns the
    /// payment it created.
    pub async fn create(
        &self,
        p: &Principal,
        booking_id: &str,
        provider_name: &str,
        idempotency_key: &str,
    ) -> ApiResult<(PaymentView, bool)> {
        let Some(provider) = self.providers.get(provider_name).cloned() else {
            let offered = self.provider_names().join(", ");
            return Err(ApiError::field("provider", format!("unknown provider; available: {offered}")));
        };
        let booking = self.bookings.booking(booking_id).await.map_err(ApiError::internal)?;
        let Some(booking) = booking.filter(|b| b.user_id == p.user_id) else {
            return Err(ApiError::field("booking_id", "no such booking of yours"));
        };
        let row = PaymentRow {
            id: format!("pay_{}", uuid::Uuid::now_v7().simple()),
            booking_id: booking.id.clone(),
            user_id: p.user_id.clone(),
            provider: provider_name.to_owned(),
            amount_cents: booking.amount_cents,
            currency: booking.currency.clone(),
            status: "pending".into(),
            refunded_cents: 0,
            provider_ref: None,
            charge_ref: None,
            next_action: "{}".into(),
            idempotency_key: idempotency_key.to_owned(),
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        // A replay answers with what the first request created, before any state check.
        let existing = self.store.by_idempotency_key(&p.user_id, idempotency_key).await?;
        if let Some(existing) = existing {
            if existing.booking_id != booking.id || existing.provider != provider_name {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for another payment",
                ));
            }
            return Ok((view(&existing), false));
        }
        if booking.status != "pending_payment" || booking.expires_at_ms <= now_ms() {
            return Err(ApiError::conflict(
                "not_payable",
                format!("a booking that is {} cannot be paid", booking.status),
            ));
        }
        if !provider.currencies().contains(&booking.currency.as_str()) {
            return Err(ApiError::field("provider", format!("{provider_name} does not take {}", booking.currency)));
        }
        if self.store.paid_for(&booking.id).await?.is_some() {
            return Err(ApiError::conflict("already_paid", "this booking is paid already"));
        }
        let (row, created) = self.store.insert(&row).await?;
        if !created {
            return Ok((view(&row), false));
        }
        let intent = PaymentIntent {
            payment_id: row.id.clone(),
            booking_id: booking.id.clone(),
            amount_cents: row.amount_cents,
            currency: row.currency.clone(),
            description: booking.description.clone(),
        };
        let started = match provider.start(&intent).await {
            Ok(s) => s,
            Err(e) => {
                self.store.fail(&row, "failed").await?;
                self.bus.committed();
                return Err(provider_error(e));
            }
        };
        self.store.set_started(&row.id, &started.provider_ref, &started.next_action).await?;
        let row = self.store.payment(&row.id).await?.ok_or_else(|| ApiError::internal("payment vanished"))?;
        Ok((view(&row), true))
    }

    /// A payment of the caller's (admins see all). A pending payment of a polling provider (KHQR)
    /// is looked up at the provider first.
    pub async fn get(&self, p: &Principal, id: &str) -> ApiResult<PaymentView> {
        let row = self.owned(p, id).await?;
        if row.status == "pending" {
            self.poll_one(&row).await;
            let row = self.store.payment(id).await?.ok_or_else(|| ApiError::not_found("payment"))?;
            return Ok(view(&row));
        }
        Ok(view(&row))
    }

    /// The caller's payments for one booking (every payment of it, for admins), newest first.
    pub async fn of_booking(&self, p: &Principal, booking_id: &str) -> ApiResult<Vec<PaymentView>> {
        let rows = self.store.of_booking(booking_id).await?;
        Ok(rows.iter().filter(|r| r.user_id == p.user_id || p.is_admin()).map(view).collect())
    }

    async fn owned(&self, p: &Principal, id: &str) -> ApiResult<PaymentRow> {
        match self.store.payment(id).await? {
            Some(row) if row.user_id == p.user_id || p.is_admin() => Ok(row),
            _ => Err(ApiError::not_found("payment")),
        }
    }

    /// Ask for a refund: cancels the tickets (all, or those named) in the bookings service, which
    /// checks who may and which tickets are refundable; the money follows through messages.
    /// Returns the refund in the payment's currency.
    pub async fn request_refund(&self, p: &Principal, payment_id: &str, tickets: Option<&[String]>) -> ApiResult<f64> {
        let row = match self.store.payment(payment_id).await? {
            // Besides the payer and admins only organizers may ask (the bookings service then checks
            // that they manage the event); anyone else learns nothing, not even that it exists.
            Some(row) if row.user_id == p.user_id || p.is_admin() || p.has_role(tg_platform::auth::Role::Organizer) => {
                row
            }
            _ => return Err(ApiError::not_found("payment")),
        };
        if !matches!(row.status.as_str(), "succeeded" | "partially_refunded") {
            return Err(ApiError::conflict(
                "not_refundable",
                format!("a payment that is {} cannot be refunded", row.status),
            ));
        }
        let cents = self.bookings.refund_tickets(p, &row.booking_id, tickets).await?;
        Ok(cents as f64 / 100.0)
    }

    /// Handle a webhook of `provider_name`: verify it, store it, act on it once.
    pub async fn webhook(&self, provider_name: &str, headers: &HeaderMap, body: &[u8]) -> ApiResult<&'static str> {
        let Some(provider) = self.providers.get(provider_name).cloned() else {
            return Err(ApiError::not_found("payment provider"));
        };
        // Stored as evidence; bounded and without NUL (PostgreSQL text cannot hold it).
        let raw: String = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).replace('\0', "\u{FFFD}");
        let event = match provider.webhook(headers, body, now_ms() / 1000) {
            Ok(e) => e,
            Err(e) => {
                self.store.record_webhook(provider_name, None, false, "rejected", &raw).await?;
                return Err(match e {
                    WebhookError::BadSignature | WebhookError::Stale => {
                        ApiError::bad_request("bad_signature", format!("webhook refused: {e}"))
                    }
                    WebhookError::Malformed(m) => ApiError::bad_request("malformed_webhook", m),
                });
            }
        };
        if !self
            .store
            .record_webhook(provider_name, Some(&event.event_id), true, outcome_name(&event.outcome), &raw)
            .await?
        {
            return Ok("duplicate");
        }
        let payment = match &event.payment {
            PaymentRef::Ours(id) => self.store.payment(id).await?,
            PaymentRef::Provider(r) => self.store.by_provider_ref(provider_name, r).await?,
        };
        let Some(payment) = payment.filter(|p| p.provider == provider_name) else {
            tracing::warn!(provider = provider_name, event_id = %event.event_id, "webhook for an unknown payment");
            self.store.forget_webhook(provider_name, &event.event_id).await?;
            return Ok("unknown_payment");
        };
        // Acted on once: if acting fails, the event is forgotten so that the provider's retry counts.
        match self.apply(&payment, event.outcome).await {
            Ok(done) => Ok(done),
            Err(e) => {
                self.store.forget_webhook(provider_name, &event.event_id).await?;
                Err(e)
            }
        }
    }

    async fn apply(&self, payment: &PaymentRow, outcome: Outcome) -> ApiResult<&'static str> {
        let done = match outcome {
            Outcome::Succeeded { amount_cents, currency, reference } => {
                // KHQR asks for whole riel (rounded up), so a KHR payment may exceed by less than one riel.
                let rounded_up = payment.currency == "KHR" && (0..100).contains(&(amount_cents - payment.amount_cents));
                if (amount_cents != payment.amount_cents && !rounded_up)
                    || !currency.eq_ignore_ascii_case(&payment.currency)
                {
                    tracing::error!(payment_id = %payment.id, amount_cents, %currency, "paid amount differs from the payment; not confirmed");
                    return Ok("amount_mismatch");
                }
                match self.store.succeed(payment, reference.as_deref()).await? {
                    Applied::Succeeded => "succeeded",
                    Applied::AlreadyDone => "unchanged",
                    Applied::Duplicate(refund_id) => {
                        self.execute_refund(&refund_id).await;
                        "duplicate_refunded"
                    }
                }
            }
            Outcome::Failed | Outcome::Abandoned => {
                let status = if outcome == Outcome::Failed { "failed" } else { "abandoned" };
                if self.store.fail(payment, status).await? {
                    status
                } else {
                    "unchanged"
                }
            }
            Outcome::Ignored => "ignored",
        };
        self.bus.committed();
        Ok(done)
    }

    /// Ask a polling provider about a pending payment and apply what it says.
    async fn poll_one(&self, row: &PaymentRow) {
        let (Some(provider), Some(reference)) =
            (self.providers.get(row.provider.as_str()), row.provider_ref.as_deref())
        else {
            return;
        };
        match provider.poll(reference).await {
            Ok(Some(outcome)) => {
                let event_id = format!("poll:{reference}");
                match self
                    .store
                    .record_webhook(&row.provider, Some(&event_id), true, outcome_name(&outcome), "{}")
                    .await
                {
                    Ok(true) => {
                        if let Err(e) = self.apply(row, outcome).await {
                            tracing::warn!(payment_id = %row.id, error = %e, "applying a polled status failed");
                            let _ = self.store.forget_webhook(&row.provider, &event_id).await;
                        }
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "storing a polled status failed"),
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(payment_id = %row.id, error = %e, "poll failed"),
        }
    }

    /// Ask the provider to pay a recorded refund back; left pending (retried) when it cannot now.
    pub async fn execute_refund(&self, refund_id: &str) {
        let result: anyhow::Result<()> = async {
            let Some(refund) = self.store.refund(refund_id).await? else { return Ok(()) };
            if refund.status != "pending" {
                return Ok(());
            }
            let payment = self.store.payment(&refund.payment_id).await?.ok_or_else(|| anyhow::anyhow!("no payment"))?;
            let provider =
                self.providers.get(payment.provider.as_str()).ok_or_else(|| anyhow::anyhow!("provider gone"))?;
            let reference = payment.charge_ref.clone().unwrap_or_default();
            match provider.refund(&refund.id, &reference, refund.amount_cents, &payment.currency).await {
                Ok(provider_ref) => self.store.refund_done(&refund, &payment, "succeeded", Some(&provider_ref)).await?,
                Err(ProviderError::Refused(why)) => {
                    tracing::warn!(refund_id, %why, "refund needs an operator");
                    self.store.refund_done(&refund, &payment, "manual", None).await?
                }
                Err(e @ ProviderError::Unavailable(_)) => anyhow::bail!(e),
            }
            self.bus.committed();
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(refund_id, error = %format!("{e:#}"), "refund not paid yet; will retry");
        }
    }

    /// Background work: poll pending KHQR payments, retry pending refunds.
    pub async fn run_maintenance(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            if self.providers.contains_key("khqr") {
                if let Ok(pending) = self.store.pending("khqr", now_ms() - 3_600_000).await {
                    for row in pending {
                        self.poll_one(&row).await;
                    }
                }
            }
            match self.store.pending_refunds().await {
                Ok(ids) => {
                    for id in ids {
                        self.execute_refund(&id).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "listing pending refunds failed"),
            }
        }
    }

    /// This service's consumer of domain events.
    pub fn consumer(self: &Arc<Self>) -> Arc<dyn Consumer> {
        Arc::new(PaymentsConsumer(self.clone()))
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Succeeded { .. } => "succeeded",
        Outcome::Failed => "failed",
        Outcome::Abandoned => "abandoned",
        Outcome::Ignored => "ignored",
    }
}

fn provider_error(e: ProviderError) -> ApiError {
    match e {
        ProviderError::Refused(m) => ApiError::conflict("provider_refused", m),
        ProviderError::Unavailable(m) => ApiError::unavailable("provider_unavailable", m),
    }
}

/// Confirms bookings once paid (refunding when that is no longer possible), and pays back what
/// cancelled tickets were worth.
struct PaymentsConsumer(Arc<PaymentsService>);

#[async_trait::async_trait]
impl Consumer for PaymentsConsumer {
    fn name(&self) -> &'static str {
        CONSUMER
    }

    fn bindings(&self) -> &'static [&'static str] {
        &["payment.succeeded", "booking.cancelled"]
    }

    async fn handle(&self, m: &DomainEvent) -> anyhow::Result<()> {
        let svc = &self.0;
        let text = |k: &str| m.payload[k].as_str().unwrap_or_default().to_owned();
        let refund = match m.routing_key.as_str() {
            // A payment refunded because its booking could not be confirmed stays so, even if this
            // message comes again after seats were freed.
            "payment.succeeded"
                if svc.store.payment(&text("payment_id")).await?.is_some_and(|p| p.refunded_cents > 0) =>
            {
                None
            }
            "payment.succeeded" => match svc.bookings.confirm(&text("booking_id")).await {
                Ok(()) => None,
                Err(ConfirmFailure::CannotConfirm(why)) => {
                    tracing::warn!(payment_id = %text("payment_id"), %why, "paid booking cannot be confirmed; refunding");
                    let amount = m.payload["amount_cents"].as_i64().unwrap_or(0);
                    Some((text("payment_id"), amount, "booking_not_confirmable", serde_json::json!([])))
                }
                Err(ConfirmFailure::Internal(e)) => anyhow::bail!("confirming the booking: {e}"),
            },
            "booking.cancelled" => {
                let cents = m.payload["refund_cents"].as_i64().unwrap_or(0);
                match svc.store.paid_for(&text("booking_id")).await? {
                    Some(p) if cents > 0 => {
                        Some((p.id, cents, "tickets_cancelled", m.payload["cancelled_tickets"].clone()))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((payment_id, amount, reason, tickets)) = refund {
            if let Some(refund_id) =
                svc.store.owe_refund(CONSUMER, &m.id, &payment_id, amount, reason, &tickets).await?
            {
                svc.execute_refund(&refund_id).await;
            }
        }
        Ok(())
    }
}
