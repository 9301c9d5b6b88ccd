//! Payments service: a payment for a held booking (amount and currency from the booking, never the
//! client), through a provider; signed webhooks; confirmation of the booking; refunds.
//!
//! Money and bookings meet through messages, so that no step is lost between two services:
//! - a success is stored with `payment.succeeded` in one transaction; this service's own consumer
//!   of that message settles it: confirms the booking (idempotent) or, if the seats are gone,
//!   refunds in full (once);
//! - the bookings service cancels tickets with `booking.cancelled` carrying `refund_cents`; the
//!   consumer records the refund once per message and the provider is asked (retried until done).
//!
//! Every step may be cut short by a crash and is safe to run again (see ARCHITECTURE.md): a
//! webhook is stored, then applied by conditional updates, and a redelivery of a stored event is
//! applied again until its payment has succeeded; a payment stored but not yet started at its provider
//! is started on the next request with its key (providers take our payment id as their
//! idempotency key). Reconciliation ([`PaymentsService::reconcile`]) settles what no message did:
//! pending payments are asked of their provider, unsettled successes are settled.

pub mod api;
mod metrics;
pub mod ports;
pub mod providers;
pub mod store;

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tg_contracts::{BookingCancelled, ContractError, Message, PaymentSucceeded};
use tg_messaging::{Consumer, Poison};
use tg_platform::{
    auth::Principal,
    bus::{Bus, DomainEvent},
    clock::{now_ms, rfc3339},
    db::{Db, ServiceMigrations},
    failpoint::crash_point,
    telemetry::Bounded,
    ApiError, ApiResult,
};
use utoipa::ToSchema;

use crate::{
    metrics::METRICS,
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

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
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

/// Refund reason when a paid booking could not be confirmed.
const NOT_CONFIRMABLE: &str = "booking_not_confirmable";

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
    /// Pending payments and unsettled successes older than this are reconciled.
    pub reconcile_after: Duration,
}

/// The name under which this service's consumer keeps its processed messages.
const CONSUMER: &str = "payments";

pub struct PaymentsService {
    pub(crate) store: Store,
    bus: Bus,
    bookings: Arc<dyn Bookings>,
    providers: HashMap<&'static str, Arc<dyn Provider>>,
    sandbox: Option<Arc<providers::sandbox::Sandbox>>,
    reconcile_after: Duration,
}

impl PaymentsService {
    pub fn new(db: Db, bus: Bus, bookings: Arc<dyn Bookings>, config: PaymentsConfig) -> Arc<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap_or_default();
        let sandbox = config.sandbox.then(|| {
            Arc::new(providers::sandbox::Sandbox {
                public_url: config.public_url,
                secret: config.sandbox_secret,
                db: db.clone(),
            })
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
        let reconcile_after = config.reconcile_after;
        let mut names: Vec<&str> = providers.keys().copied().collect();
        names.sort();
        METRICS.describe(&names);
        Arc::new(PaymentsService { store: Store { db }, bus, bookings, providers, sandbox, reconcile_after })
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
        let booking = self.bookings.booking(booking_id).await.map_err(ApiError::from_anyhow)?;
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
            settled_at: None,
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
            // Stored but never started at the provider (a crash in between): start it now.
            if existing.status == "pending" && existing.provider_ref.is_none() && booking.status == "pending_payment" {
                let row = self.start_at_provider(provider.as_ref(), existing, &booking.description).await?;
                return Ok((view(&row), false));
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
        crash_point("payments.create.inserted");
        if row.status == "pending" && row.provider_ref.is_none() {
            let row = self.start_at_provider(provider.as_ref(), row, &booking.description).await?;
            return Ok((view(&row), created));
        }
        Ok((view(&row), created))
    }

    /// Start a stored payment at its provider and keep what the payer does next. Safe to repeat:
    /// the provider takes our payment id as its idempotency key.
    async fn start_at_provider(
        &self,
        provider: &dyn Provider,
        row: PaymentRow,
        description: &str,
    ) -> ApiResult<PaymentRow> {
        let intent = PaymentIntent {
            payment_id: row.id.clone(),
            booking_id: row.booking_id.clone(),
            amount_cents: row.amount_cents,
            currency: row.currency.clone(),
            description: description.to_owned(),
        };
        let started = match provider.start(&intent).await {
            Ok(s) => s,
            Err(e) => {
                self.store.fail(&row, "failed").await?;
                METRICS.payment(&row.provider, "failed");
                self.bus.committed();
                return Err(provider_error(e));
            }
        };
        crash_point("payments.create.started");
        self.store.set_started(&row.id, &started.provider_ref, &started.next_action).await?;
        self.store.payment(&row.id).await?.ok_or_else(|| ApiError::internal("payment vanished"))
    }

    /// A payment of the caller's (admins see all). A pending payment of a polling provider (KHQR)
    /// is looked up at the provider first.
    pub async fn get(&self, p: &Principal, id: &str) -> ApiResult<PaymentView> {
        let row = self.owned(p, id).await?;
        let polled = self.providers.get(row.provider.as_str()).is_some_and(|p| p.reports_by_polling());
        if row.status == "pending" && polled {
            if let Err(e) = self.poll_one(&row).await {
                tracing::debug!(payment_id = %row.id, error = %Bounded(&e), "poll failed");
            }
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
                METRICS.webhook(provider_name, false);
                self.store.record_webhook(provider_name, None, false, "rejected", &raw).await?;
                return Err(match e {
                    WebhookError::BadSignature | WebhookError::Stale => {
                        ApiError::bad_request("bad_signature", format!("webhook refused: {e}"))
                    }
                    WebhookError::Malformed(m) => ApiError::bad_request("malformed_webhook", m),
                });
            }
        };
        METRICS.webhook(provider_name, true);
        let first = self
            .store
            .record_webhook(provider_name, Some(&event.event_id), true, outcome_name(&event.outcome), &raw)
            .await?;
        crash_point("payments.webhook.recorded");
        let payment = match &event.payment {
            PaymentRef::Ours(id) => self.store.payment(id).await?,
            PaymentRef::Provider(r) => self.store.by_provider_ref(provider_name, r).await?,
        };
        let Some(payment) = payment.filter(|p| p.provider == provider_name) else {
            tracing::warn!(provider = provider_name, event_id = %event.event_id, "webhook for an unknown payment");
            return Ok("unknown_payment");
        };
        // A stored event is applied again while its payment has not succeeded: the first delivery
        // may have been cut short between storing and applying (and reconciliation may have given
        // the payment up meanwhile). Applying is a set of conditional updates, so a second
        // application changes nothing that the first did.
        if !first && !matches!(payment.status.as_str(), "pending" | "failed" | "abandoned") {
            return Ok("duplicate");
        }
        let done = self.apply(&payment, event.outcome).await?;
        crash_point("payments.webhook.applied");
        Ok(done)
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
                    Applied::Succeeded => {
                        METRICS.payment(&payment.provider, "succeeded");
                        "succeeded"
                    }
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
                    METRICS.payment(&payment.provider, status);
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

    /// Ask the provider about a pending payment and apply what it says; `true` when the provider
    /// had news (paid, failed, expired).
    async fn poll_one(&self, row: &PaymentRow) -> anyhow::Result<bool> {
        let (Some(provider), Some(reference)) =
            (self.providers.get(row.provider.as_str()), row.provider_ref.as_deref())
        else {
            return Ok(false);
        };
        let Some(outcome) = provider.poll(reference).await.map_err(|e| anyhow::anyhow!(e))? else {
            return Ok(false);
        };
        let event_id = format!("poll:{reference}:{}", outcome_name(&outcome));
        self.store.record_webhook(&row.provider, Some(&event_id), true, outcome_name(&outcome), "{}").await?;
        self.apply(row, outcome).await.map_err(|e| anyhow::anyhow!("applying a polled outcome: {e}"))?;
        Ok(true)
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
                Ok(provider_ref) => {
                    METRICS.refund(&payment.provider, "succeeded");
                    self.store.refund_done(&refund, &payment, "succeeded", Some(&provider_ref)).await?
                }
                Err(ProviderError::Refused(why)) => {
                    tracing::warn!(refund_id, %why, "refund needs an operator");
                    METRICS.refund(&payment.provider, "manual");
                    self.store.refund_done(&refund, &payment, "manual", None).await?
                }
                Err(e @ ProviderError::Unavailable(_)) => {
                    METRICS.refund(&payment.provider, "retried");
                    anyhow::bail!(e)
                }
            }
            self.bus.committed();
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(refund_id, error = %Bounded(&e), "refund not paid yet; will retry");
        }
    }

    /// Background work: poll pending payments of polling providers (KHQR), retry pending refunds,
    /// reconcile.
    pub async fn run_maintenance(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let every = (self.reconcile_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        let mut reconcile = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    for (name, provider) in &self.providers {
                        if !provider.reports_by_polling() {
                            continue;
                        }
                        if let Ok(pending) = self.store.pending(name, now_ms() - 3_600_000).await {
                            for row in pending {
                                if let Err(e) = self.poll_one(&row).await {
                                    tracing::debug!(payment_id = %row.id, error = %Bounded(&e), "poll failed");
                                }
                            }
                        }
                    }
                    match self.store.pending_refunds().await {
                        Ok(ids) => {
                            for id in ids {
                                self.execute_refund(&id).await;
                            }
                        }
                        Err(e) => tracing::warn!(error = %Bounded(&e), "listing pending refunds failed"),
                    }
                }
                _ = reconcile.tick() => {
                    if let Err(e) = self.reconcile().await {
                        tracing::warn!(error = %Bounded(&e), "reconciliation pass failed; next pass retries");
                    }
                }
            }
        }
    }

    /// One reconciliation pass (safe on several instances at once: every step is idempotent).
    /// - A payment pending longer than `reconcile_after` is asked of its provider: paid, failed or
    ///   expired is applied; still open once its hold is gone, it is closed at the provider, asked
    ///   once more (paid just before?) and otherwise abandoned. Never started at the provider
    ///   (a crash), it is abandoned once its hold is gone.
    /// - A success not settled after `reconcile_after` (its `payment.succeeded` lost or stuck) is
    ///   settled: booking confirmed if the seats are free, else refunded.
    ///
    /// Returns how many payments it changed.
    pub async fn reconcile(&self) -> anyhow::Result<usize> {
        let before = now_ms() - self.reconcile_after.as_millis() as i64;
        let mut changed = 0;
        for row in self.store.stale_pending(before, 100).await? {
            match self.reconcile_pending(&row).await {
                Ok(true) => changed += 1,
                Ok(false) => self.store.touch(&row.id).await?,
                Err(e) => {
                    tracing::warn!(payment_id = %row.id, error = %Bounded(&e), "pending payment not reconciled yet")
                }
            }
        }
        for id in self.store.unsettled(before, 100).await? {
            tracing::warn!(payment_id = %id, "paid but unsettled; settling");
            self.settle(&id).await?;
            changed += 1;
        }
        Ok(changed)
    }

    async fn reconcile_pending(&self, row: &PaymentRow) -> anyhow::Result<bool> {
        if self.poll_one(row).await? {
            return Ok(true);
        }
        let booking = self.bookings.booking(&row.booking_id).await?;
        // The hold is gone (expired, cancelled, or confirmed by another payment) with a margin for
        // a payer who finished at the last second.
        let hold_gone = booking.is_none_or(|b| {
            b.status != "pending_payment" || b.expires_at_ms + self.reconcile_after.as_millis() as i64 <= now_ms()
        });
        if !hold_gone {
            return Ok(false);
        }
        if let (Some(provider), Some(reference)) =
            (self.providers.get(row.provider.as_str()), row.provider_ref.as_deref())
        {
            provider.cancel(reference).await.map_err(|e| anyhow::anyhow!(e))?;
            if self.poll_one(row).await? {
                return Ok(true);
            }
        }
        tracing::info!(payment_id = %row.id, "payment abandoned: its hold is gone and the provider took no money");
        self.store.fail(row, "abandoned").await?;
        self.bus.committed();
        Ok(true)
    }

    /// Settle a successful payment: confirm its booking, or refund it in full when that is no
    /// longer possible. Idempotent, so the consumer of `payment.succeeded` and the reconciliation
    /// sweep may both do it, on any instance: confirming is idempotent and the refund is recorded
    /// once per payment (under the processed id `settle:<payment id>`).
    pub async fn settle(&self, payment_id: &str) -> anyhow::Result<()> {
        let Some(p) = self.store.payment(payment_id).await? else {
            return Err(Poison(format!("payment.succeeded for an unknown payment {payment_id:?}")).into());
        };
        if p.settled_at.is_some() {
            return Ok(());
        }
        // Refunded already because its booking could not be confirmed (it stays so, even if seats
        // were freed since), or no longer a plain success.
        if p.status != "succeeded" || p.refunded_cents > 0 {
            self.store.mark_settled(&p.id).await?;
            return Ok(());
        }
        match self.bookings.confirm(&p.booking_id).await {
            Ok(()) => crash_point("payments.settle.confirmed"),
            Err(ConfirmFailure::CannotConfirm(why)) => {
                tracing::warn!(payment_id = %p.id, %why, "paid booking cannot be confirmed; refunding");
                let key = format!("settle:{}", p.id);
                let tickets = serde_json::json!([]);
                if let Some(refund_id) =
                    self.store.owe_refund(CONSUMER, &key, &p.id, p.amount_cents, NOT_CONFIRMABLE, &tickets).await?
                {
                    self.execute_refund(&refund_id).await;
                }
            }
            Err(ConfirmFailure::Internal(e)) => anyhow::bail!("confirming the booking: {e}"),
        }
        self.store.mark_settled(&p.id).await?;
        Ok(())
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

/// The payments consumer's queue and bindings (declared by relays in other processes too).
pub const SUBSCRIPTION: tg_messaging::Subscription = tg_messaging::Subscription {
    name: CONSUMER,
    bindings: &[PaymentSucceeded::ROUTING_KEY, BookingCancelled::ROUTING_KEY],
};

/// Confirms bookings once paid (refunding when that is no longer possible), and pays back what
/// cancelled tickets were worth.
struct PaymentsConsumer(Arc<PaymentsService>);

#[async_trait::async_trait]
impl Consumer for PaymentsConsumer {
    fn name(&self) -> &'static str {
        CONSUMER
    }

    fn bindings(&self) -> &'static [&'static str] {
        SUBSCRIPTION.bindings
    }

    async fn handle(&self, m: &DomainEvent) -> anyhow::Result<()> {
        let svc = &self.0;
        let poison = |e: ContractError| Poison(e.to_string());
        let refund = match m.routing_key.as_str() {
            PaymentSucceeded::ROUTING_KEY => {
                let PaymentSucceeded(paid) = PaymentSucceeded::from_event(m).map_err(poison)?;
                svc.settle(&paid.payment_id).await?;
                None
            }
            BookingCancelled::ROUTING_KEY => {
                let cancelled = BookingCancelled::from_event(m).map_err(poison)?;
                match svc.store.paid_for(&cancelled.booking.booking_id).await? {
                    Some(p) if cancelled.refund_cents > 0 => Some((
                        p.id,
                        cancelled.refund_cents,
                        "tickets_cancelled",
                        serde_json::json!(cancelled.cancelled_tickets),
                    )),
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
