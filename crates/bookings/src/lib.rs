//! Bookings service: holds with an expiry that never oversell, confirmation (called by payments),
//! cancellation, tickets with signed QR codes, check-in at the door, attendee lists.
//!
//! It owns the `bookings_*` tables and is the source of truth for sold and held counts. It reads event
//! documents through [`ports::EventCatalog`].

pub mod api;
pub mod checkin;
pub mod hold;
pub mod internal;
mod metrics;
pub mod model;
pub mod ports;
pub mod read_model;
pub mod store;
pub mod tickets;

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock},
    time::Duration,
};

use tg_events::{
    document::{parse_instant, sale_window, EventDocument},
    ports::{BookingsView, TypeCounts},
};
use tg_platform::{
    auth::Principal,
    bus::Bus,
    clock::now_ms,
    db::{Db, ServiceMigrations},
    ApiError, ApiResult,
};
use tokio::sync::{oneshot, Mutex};

use crate::{
    hold::{Batcher, EventSnapshot, HoldError, HoldJob, HoldOutcome, TypeInfo},
    model::{cents, BookingRequest, BookingView},
    ports::{EventCatalog, UserDirectory},
    store::Store,
    tickets::TicketKeys,
};

pub fn migrations() -> ServiceMigrations {
    ServiceMigrations {
        service: "bookings",
        sqlite: sqlx::migrate!("migrations/sqlite"),
        postgres: sqlx::migrate!("migrations/postgres"),
    }
}

#[derive(Clone, Debug)]
pub struct BookingsConfig {
    /// How long a hold waits for payment.
    pub hold_ttl: Duration,
    /// Hold workers; an event's holds always go to the same one.
    pub hold_shards: usize,
}

impl Default for BookingsConfig {
    fn default() -> Self {
        BookingsConfig { hold_ttl: Duration::from_secs(15 * 60), hold_shards: 4 }
    }
}

pub struct BookingsService {
    pub(crate) store: Store,
    pub(crate) bus: Bus,
    pub(crate) events: Arc<dyn EventCatalog>,
    pub(crate) users: Arc<dyn UserDirectory>,
    pub(crate) keys: TicketKeys,
    pub(crate) qr_codes: tickets::QrCache,
    batcher: Batcher,
    /// Bookable events by the key clients use, refreshed every second so edits apply promptly.
    snapshots: Mutex<HashMap<String, (std::time::Instant, Arc<Bookable>)>>,
    on_sale: metrics::OnSale,
    _workers: Vec<tokio::task::JoinHandle<()>>,
}

/// An event as holds see it.
struct Bookable {
    event: EventDocument,
    derived: tg_events::document::Derived,
    snapshot: Arc<EventSnapshot>,
}

/// Why a confirmation was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmError {
    #[error("no such booking")]
    NotFound,
    /// The hold expired and its seats are gone: the payment must be refunded.
    #[error("the hold expired and the seats are no longer available")]
    SeatsGone,
    #[error("the booking was cancelled")]
    Cancelled,
    #[error("{0}")]
    Internal(String),
}

impl BookingsService {
    pub fn new(
        db: Db,
        bus: Bus,
        events: Arc<dyn EventCatalog>,
        users: Arc<dyn UserDirectory>,
        config: BookingsConfig,
    ) -> Arc<Self> {
        LazyLock::force(&metrics::METRICS);
        let (batcher, workers) = Batcher::start(db.clone(), config.hold_ttl.as_millis() as i64, config.hold_shards);
        Arc::new(BookingsService {
            store: Store { db: db.clone() },
            bus,
            events,
            users,
            keys: TicketKeys::new(db),
            qr_codes: tickets::QrCache::default(),
            batcher,
            snapshots: Mutex::default(),
            on_sale: metrics::OnSale::default(),
            _workers: workers,
        })
    }

    /// Expire due holds every second until the task is dropped. Safe to run in several instances.
    /// Also refreshes the stock gauge of the events on sale every five seconds.
    pub async fn run_sweeper(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for round in 0u64.. {
            tick.tick().await;
            if let Err(e) = self.expire_due().await {
                tracing::warn!(error = %e, "expiring holds failed; retrying");
            }
            if round % 5 == 0 {
                match self.store.stock(&self.on_sale.events()).await {
                    Ok(stock) => self.on_sale.report(&stock),
                    Err(e) => tracing::debug!(error = %e, "stock gauge not refreshed"),
                }
            }
        }
    }

    /// Expire every hold whose time is up, returning its seats. Returns how many expired.
    pub async fn expire_due(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        loop {
            let due = self.store.due_holds(now_ms(), 200).await?;
            if due.is_empty() {
                return Ok(n);
            }
            for id in due {
                if self.store.release(&id, store::Release::Expire, None).await?.is_some() {
                    metrics::METRICS.booking("expired");
                    self.bus.committed();
                    n += 1;
                }
            }
        }
    }

    /// The event named `key` (id or slug) with what holds need of it, cached for a second so a flash
    /// sale does not re-read and re-parse the same document for every request.
    async fn bookable(&self, key: &str) -> ApiResult<Option<Arc<Bookable>>> {
        if let Some((at, b)) = self.snapshots.lock().await.get(key) {
            if at.elapsed() < Duration::from_secs(1) {
                return Ok(Some(b.clone()));
            }
        }
        let Some(event) = self.events.event(key).await.map_err(ApiError::from_anyhow)? else { return Ok(None) };
        let derived = event.validate().map_err(|_| ApiError::internal("stored event no longer validates"))?;
        let snapshot = Arc::new(EventSnapshot {
            event_id: event.id.clone(),
            capacity: event.ticketing.total_capacity,
            max_per_user: event.ticketing.max_tickets_per_user,
            types: event
                .ticketing
                .types
                .iter()
                .map(|t| {
                    let info = TypeInfo {
                        quantity: t.quantity,
                        price_cents: cents(t.price),
                        currency: t.currency.clone(),
                        refundable: t.refundable,
                    };
                    (t.id.clone(), info)
                })
                .collect(),
        });
        let b = Arc::new(Bookable { event, derived, snapshot });
        self.snapshots.lock().await.insert(key.to_owned(), (std::time::Instant::now(), b.clone()));
        Ok(Some(b))
    }

    /// Place a hold. `Ok((booking, replayed))`; a replay of the same key and body returns the first booking.
    pub async fn hold(
        &self,
        user_id: &str,
        idempotency_key: &str,
        req: &BookingRequest,
    ) -> ApiResult<(BookingView, bool)> {
        let request_hash = request_hash(req);
        match self.hold_new(user_id, idempotency_key, &request_hash, req).await {
            // A refused request may be the replay of one that succeeded before things changed
            // (window closed, stock sold out): the replay gets the booking. Checked only on refusal,
            // so the hot path costs no extra query.
            Err(refused) => match self.store.by_idempotency_key(user_id, idempotency_key).await? {
                Some((id, hash)) if hash == request_hash => Ok((self.booking_view(&id).await?, true)),
                Some(_) => Err(key_reused()),
                None => Err(refused),
            },
            ok => ok,
        }
    }

    async fn hold_new(
        &self,
        user_id: &str,
        idempotency_key: &str,
        request_hash: &str,
        req: &BookingRequest,
    ) -> ApiResult<(BookingView, bool)> {
        let mut errors = Vec::new();
        if req.items.is_empty() || req.items.len() > 20 {
            errors.push(field("items", "must hold 1 to 20 ticket types"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, item) in req.items.iter().enumerate() {
            if item.quantity < 1 || item.quantity > 1000 {
                errors.push(field(&format!("items[{i}].quantity"), "must be between 1 and 1000"));
            }
            if !seen.insert(item.ticket_type_id.as_str()) {
                errors.push(field(&format!("items[{i}].ticket_type_id"), "appears twice"));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let bookable = self.bookable(&req.event_id).await?;
        let Some(bookable) = bookable.filter(|b| b.event.status == "published" && b.event.visibility != "private")
        else {
            return Err(ApiError::field("event_id", "no published event with this id"));
        };
        let (event, derived) = (&bookable.event, &bookable.derived);
        let now = now_ms();
        let (b_start, b_end) =
            (parse_instant(&event.datetime.booking_start), parse_instant(&event.datetime.booking_end));
        if b_start.is_ok_and(|s| now < s) || b_end.is_ok_and(|e| now > e) {
            return Err(ApiError::conflict("booking_closed", "booking for this event is not open now"));
        }
        let mut currency: Option<&str> = None;
        for (i, item) in req.items.iter().enumerate() {
            let Some(t) = event.ticketing.types.iter().find(|t| t.id == item.ticket_type_id) else {
                return Err(ApiError::field(&format!("items[{i}].ticket_type_id"), "no such ticket type"));
            };
            let (from, until) = sale_window(t, derived);
            if now < from || now > until {
                return Err(ApiError::conflict("not_on_sale", format!("ticket type {:?} is not on sale now", t.id)));
            }
            if currency.is_some_and(|c| c != t.currency) {
                return Err(ApiError::field("items", "all tickets of one booking must have the same currency"));
            }
            currency = Some(&t.currency);
        }
        let snapshot = bookable.snapshot.clone();
        let (reply, answer) = oneshot::channel();
        let job = HoldJob {
            user_id: user_id.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
            request_hash: request_hash.to_owned(),
            event: snapshot,
            items: req.items.iter().map(|i| (i.ticket_type_id.clone(), i.quantity)).collect(),
            reply,
            span: tracing::Span::current(),
        };
        self.batcher.submit(job).await.map_err(hold_error)?;
        match answer.await.map_err(|_| ApiError::internal("hold worker stopped"))? {
            Ok(HoldOutcome::Created(b)) => {
                self.on_sale.saw_hold(&b.event_id);
                self.bus.committed();
                Ok((b, false))
            }
            Ok(HoldOutcome::Replayed(id)) => Ok((self.booking_view(&id).await?, true)),
            Err(e) => Err(hold_error(e)),
        }
    }

    /// Holders of valid tickets of an event (for notices to them).
    pub async fn ticket_holders(&self, event_id: &str) -> Result<Vec<String>, sqlx::Error> {
        self.store.ticket_holders(event_id).await
    }

    /// Valid tickets of a booking with their QR codes: (ticket id, code, type id, QR SVG).
    pub async fn tickets_with_qr(&self, booking_id: &str) -> anyhow::Result<Vec<(String, String, String, String)>> {
        let mut out = Vec::new();
        for id in self.store.valid_tickets_of_booking(booking_id).await? {
            if let Some(t) = self.store.ticket(&id).await? {
                out.push((t.id, t.code, t.type_id, tickets::qr_svg(&t.token)?));
            }
        }
        Ok(out)
    }

    /// The booking, whoever holds it (for other services; handlers check ownership).
    pub async fn find(&self, id: &str) -> Result<Option<BookingView>, sqlx::Error> {
        self.store.booking(id).await
    }

    pub async fn booking_view(&self, id: &str) -> ApiResult<BookingView> {
        self.store.booking(id).await?.ok_or_else(|| ApiError::not_found("booking"))
    }

    /// Turn a paid hold into confirmed tickets. Called by the payments service. Idempotent: confirming
    /// a confirmed booking returns it unchanged. A hold that expired is confirmed only if its seats can
    /// be taken again within the per-user limit; otherwise `SeatsGone`, and the payment is to be refunded.
    pub async fn confirm(&self, booking_id: &str) -> Result<BookingView, ConfirmError> {
        let internal = |e: sqlx::Error| ConfirmError::Internal(e.to_string());
        let Some(before) = self.store.booking(booking_id).await.map_err(internal)? else {
            return Err(ConfirmError::NotFound);
        };
        let event = self.bookable(&before.event_id).await.map_err(|e| ConfirmError::Internal(e.to_string()))?;
        let max_per_user = event.map(|b| b.snapshot.max_per_user).unwrap_or(i64::MAX);
        if before.status == "confirmed" {
            return Ok(before);
        }
        let tickets = self.sign_tickets(&before).await.map_err(|e| ConfirmError::Internal(e.to_string()))?;
        let outcome = self
            .store
            .confirm(booking_id, now_ms(), max_per_user, &before.user_id, &tickets)
            .await
            .map_err(internal)?;
        match outcome {
            store::ConfirmOutcome::Confirmed => {
                tg_platform::failpoint::crash_point("bookings.confirm.committed");
                metrics::METRICS.booking("confirmed");
                metrics::METRICS.tickets_sold.inc_by(tickets.len() as u64);
                self.bus.committed()
            }
            store::ConfirmOutcome::AlreadyConfirmed => {
                return self.booking_view(booking_id).await.map_err(|e| ConfirmError::Internal(e.to_string()))
            }
            store::ConfirmOutcome::Cancelled => return Err(ConfirmError::Cancelled),
            store::ConfirmOutcome::SeatsGone => return Err(ConfirmError::SeatsGone),
        }
        self.booking_view(booking_id).await.map_err(|e| ConfirmError::Internal(e.to_string()))
    }

    /// One signed ticket per seat of `b`, to be stored with its confirmation.
    async fn sign_tickets(&self, b: &BookingView) -> anyhow::Result<Vec<(tickets::TicketClaims, String)>> {
        let mut tickets = Vec::new();
        for item in &b.items {
            for _ in 0..item.quantity {
                let claims = tickets::TicketClaims {
                    tid: uuid::Uuid::now_v7().to_string(),
                    eid: b.event_id.clone(),
                    tt: item.ticket_type_id.clone(),
                    code: self.keys.new_code(),
                    iat: now_ms() / 1000,
                };
                let token = self.keys.sign(&claims).await?;
                tickets.push((claims, token));
            }
        }
        Ok(tickets)
    }

    /// Cancel a booking for its holder: a hold is released; a confirmed booking whose tickets are all
    /// refundable is cancelled and its seats returned (the payments service refunds the money).
    pub async fn cancel(&self, p: &Principal, booking_id: &str) -> ApiResult<BookingView> {
        let b = self.booking_view(booking_id).await?;
        if b.user_id != p.user_id && !p.is_admin() {
            return Err(ApiError::not_found("booking"));
        }
        match b.status.as_str() {
            "pending_payment" => {
                match self.store.release(booking_id, store::Release::CancelHold, Some(&p.user_id)).await? {
                    Some(after) => {
                        metrics::METRICS.booking("cancelled");
                        self.bus.committed();
                        Ok(after)
                    }
                    None => Err(ApiError::conflict("not_cancellable", "the booking changed meanwhile; reload it")),
                }
            }
            "confirmed" => self.refund_tickets(p, booking_id, None).await.map(|(after, _)| after),
            other => {
                Err(ApiError::conflict("not_cancellable", format!("a booking that is {other} cannot be cancelled")))
            }
        }
    }

    /// Cancel tickets of a confirmed booking for a refund (all valid ones when `tickets` is `None`),
    /// returning their seats. Allowed to the holder, the event's organizer and admins, and only for
    /// refundable ticket types. The `booking.cancelled` message carries `refund_cents`, from which
    /// the payments service pays the money back. Returns the booking after and the refund in cents.
    pub async fn refund_tickets(
        &self,
        p: &Principal,
        booking_id: &str,
        tickets: Option<&[String]>,
    ) -> ApiResult<(BookingView, i64)> {
        let b = self.booking_view(booking_id).await?;
        let manages = self.events.manages(p, &b.event_id).await.map_err(ApiError::from_anyhow)?;
        if b.user_id != p.user_id && !manages {
            return Err(ApiError::not_found("booking"));
        }
        let tickets: Vec<String> = match tickets {
            Some([]) => return Err(ApiError::field("tickets", "name at least one ticket")),
            Some(t) if t.len() > 1000 => return Err(ApiError::field("tickets", "at most 1000 tickets at once")),
            Some(t) => {
                let mut unique = t.to_vec();
                unique.sort();
                unique.dedup();
                if unique.len() != t.len() {
                    return Err(ApiError::field("tickets", "a ticket is named twice"));
                }
                unique
            }
            None => self.store.valid_tickets_of_booking(booking_id).await?,
        };
        match self.store.cancel_tickets(booking_id, &tickets, Some(&p.user_id)).await? {
            Ok(cents) => {
                metrics::METRICS.tickets_refunded.inc_by(tickets.len() as u64);
                self.bus.committed();
                Ok((self.booking_view(booking_id).await?, cents))
            }
            Err(store::TicketRefusal::NotConfirmed) => {
                Err(ApiError::conflict("not_cancellable", format!("a booking that is {} cannot be refunded", b.status)))
            }
            Err(store::TicketRefusal::NoSuchTicket(t)) => {
                Err(ApiError::field("tickets", format!("{t:?} is not a valid ticket of this booking")))
            }
            Err(store::TicketRefusal::CheckedIn(t)) => Err(ApiError::conflict(
                "checked_in",
                format!("ticket {t:?} was used at the door and cannot be refunded"),
            )),
            Err(store::TicketRefusal::NotRefundable(t)) => {
                Err(ApiError::conflict("not_refundable", format!("tickets of type {t:?} are not refundable")))
            }
        }
    }

    /// Inventory counters and row counts, for invariant checks in tests and operations.
    pub async fn audit_counts(&self, event_id: &str) -> anyhow::Result<store::CountCheck> {
        Ok(self.store.count_check(event_id).await?)
    }
}

fn field(name: &str, message: &str) -> tg_platform::problem::FieldError {
    tg_platform::problem::FieldError { field: name.into(), message: message.into() }
}

fn key_reused() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request",
    )
}

fn hold_error(e: HoldError) -> ApiError {
    match e {
        HoldError::SoldOut(t) => ApiError::conflict("sold_out", format!("not enough tickets of type {t:?} left")),
        HoldError::CapacityExceeded => ApiError::conflict("capacity_exceeded", "the event is at capacity"),
        HoldError::LimitExceeded { max, already } => ApiError::conflict(
            "max_tickets_per_user",
            format!("at most {max} tickets per person for this event; you already have {already}"),
        ),
        HoldError::KeyReused => key_reused(),
        HoldError::Internal(m) => ApiError::unavailable("hold_failed", m).retry_in(2),
    }
}

/// SHA-256 of the request's canonical JSON: the same key must come with the same request.
fn request_hash(req: &BookingRequest) -> String {
    let json = serde_json::to_vec(req).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &json);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait::async_trait]
impl BookingsView for BookingsService {
    async fn counts(&self, event_id: &str) -> anyhow::Result<HashMap<String, TypeCounts>> {
        Ok(self.store.inventory(event_id).await?)
    }
    async fn sold_totals(&self, event_ids: &[String]) -> anyhow::Result<HashMap<String, i64>> {
        Ok(self.store.sold_totals(event_ids).await?)
    }
    async fn attended(&self, event_id: &str, user_id: &str) -> anyhow::Result<Option<bool>> {
        Ok(Some(self.store.has_ticket(event_id, user_id).await?))
    }
}
