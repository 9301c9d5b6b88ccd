//! Holds: the part that must never oversell, and must be fast.
//!
//! Concurrent hold requests are queued per event shard and taken in batches: one transaction locks
//! the event's inventory rows once (`SELECT … FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite),
//! decides every request of the batch in order against the locked counts, writes all accepted holds,
//! and commits. Every 201 is answered after that commit, so it is durable; many holds share one row
//! lock and one fsync instead of queueing one by one on the hot row.
//! The guarded counters (`sold + held ≤ quantity`, `≤ capacity`, per-user limits) are only ever
//! changed inside such transactions, so correctness does not depend on the batching itself.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use tg_platform::{
    bind_args,
    clock::{now_ms, rfc3339},
    db::{Arg, Db},
    with_tx,
};

use statements::BatchStatements;
use tracing::Instrument;

use crate::metrics::METRICS;
use tg_messaging::OutboxWrite;
use tokio::sync::{mpsc, oneshot};

use crate::model::{from_cents, BookingFacts, BookingView, ItemView};

mod statements;

/// What a hold needs to know of an event, taken from its document.
#[derive(Debug)]
pub struct EventSnapshot {
    pub event_id: String,
    pub capacity: i64,
    pub max_per_user: i64,
    pub types: HashMap<String, TypeInfo>,
}

#[derive(Debug, Clone)]
pub struct TypeInfo {
    pub quantity: i64,
    pub price_cents: i64,
    pub currency: String,
    pub refundable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HoldError {
    SoldOut(String),
    CapacityExceeded,
    LimitExceeded { max: i64, already: i64 },
    KeyReused,
    Internal(String),
}

pub struct HoldJob {
    pub user_id: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub event: Arc<EventSnapshot>,
    /// (ticket type id, quantity), type ids unique.
    pub items: Vec<(String, i64)>,
    pub reply: oneshot::Sender<Result<HoldOutcome, HoldError>>,
    /// The request's span: the batch deciding this job is traced as its child.
    pub span: tracing::Span,
}

#[derive(Debug, Clone)]
pub enum HoldOutcome {
    Created(BookingView),
    /// The idempotency key was used before with the same request: that booking.
    Replayed(String),
}

/// Largest batch one transaction takes.
const MAX_BATCH: usize = 512;

/// Queues hold jobs to a fixed set of workers; an event always goes to the same worker, so its
/// batches never contend with each other inside one process.
#[derive(Clone)]
pub struct Batcher {
    shards: Arc<Vec<mpsc::Sender<HoldJob>>>,
}

impl Batcher {
    pub fn start(db: Db, hold_ttl_ms: i64, shards: usize) -> (Batcher, Vec<tokio::task::JoinHandle<()>>) {
        let mut senders = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..shards.max(1) {
            let (tx, rx) = mpsc::channel(4096);
            senders.push(tx);
            tasks.push(tokio::spawn(worker(db.clone(), hold_ttl_ms, rx)));
        }
        (Batcher { shards: Arc::new(senders) }, tasks)
    }

    pub async fn submit(&self, job: HoldJob) -> Result<(), HoldError> {
        let shard = fxhash(&job.event.event_id) % self.shards.len();
        self.shards[shard].send(job).await.map_err(|_| HoldError::Internal("hold queue closed".into()))
    }
}

fn fxhash(s: &str) -> usize {
    s.bytes().fold(0usize, |h, b| h.rotate_left(5) ^ b as usize).wrapping_mul(0x517c_c1b7_2722_0a95)
}

async fn worker(db: Db, hold_ttl_ms: i64, mut rx: mpsc::Receiver<HoldJob>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // One transaction per event snapshot: jobs decided together must see the same ticket types
        // (an edit between two requests gives them different snapshots).
        let mut by_event: HashMap<(String, usize), Vec<HoldJob>> = HashMap::new();
        for job in batch {
            let key = (job.event.event_id.clone(), Arc::as_ptr(&job.event) as usize);
            by_event.entry(key).or_default().push(job);
        }
        for (_, jobs) in by_event {
            process_batch(&db, hold_ttl_ms, jobs).await;
        }
    }
}

/// Decision for one job of a batch.
enum Decision {
    Accept {
        booking_id: String,
        amount: i64,
        currency: String,
    },
    Replay(String),
    /// Same key as an earlier job of this batch, same request: answer as that job.
    SameAs(usize),
    Reject(HoldError),
}

async fn process_batch(db: &Db, hold_ttl_ms: i64, jobs: Vec<HoldJob>) {
    let event = jobs[0].event.clone();
    let now = now_ms();
    let started = std::time::Instant::now();
    // A batch serves many requests; its span joins the first one's trace (the others' spans have
    // the batch's size and time in their own latency).
    let span =
        tracing::info_span!(parent: &jobs[0].span, "hold_batch", requests = jobs.len(), event_id = %event.event_id);
    let res = decide_and_write(db, &event, &jobs, now, hold_ttl_ms).instrument(span).await;
    METRICS.batch_seconds.observe(started.elapsed().as_secs_f64());
    METRICS.batch_requests.observe(jobs.len() as f64);
    match res {
        Ok(decisions) => {
            tg_platform::failpoint::crash_point("bookings.hold.committed");
            let mut outcomes: Vec<Result<HoldOutcome, HoldError>> = Vec::with_capacity(jobs.len());
            for (i, d) in decisions.iter().enumerate() {
                let job = &jobs[i];
                let out = match d {
                    Decision::Accept { booking_id, amount, currency } => Ok(HoldOutcome::Created(BookingView {
                        id: booking_id.clone(),
                        event_id: event.event_id.clone(),
                        user_id: job.user_id.clone(),
                        status: "pending_payment".into(),
                        items: job
                            .items
                            .iter()
                            .map(|(t, q)| {
                                let info = &event.types[t];
                                ItemView {
                                    ticket_type_id: t.clone(),
                                    quantity: *q,
                                    unit_price: from_cents(info.price_cents),
                                    refundable: info.refundable,
                                }
                            })
                            .collect(),
                        total_amount: from_cents(*amount),
                        currency: currency.clone(),
                        expires_at: rfc3339(now + hold_ttl_ms),
                        created_at: rfc3339(now),
                    })),
                    Decision::Replay(id) => Ok(HoldOutcome::Replayed(id.clone())),
                    Decision::SameAs(j) => outcomes[*j].clone().map(|o| match o {
                        HoldOutcome::Created(b) => HoldOutcome::Replayed(b.id),
                        r => r,
                    }),
                    Decision::Reject(e) => Err(e.clone()),
                };
                outcomes.push(out);
            }
            for (job, out) in jobs.into_iter().zip(outcomes) {
                METRICS.hold(out.as_ref().map(|o| matches!(o, HoldOutcome::Replayed(_))));
                let _ = job.reply.send(out);
            }
        }
        Err(e) => {
            tracing::error!(error = %tg_platform::telemetry::Bounded(&e), event_id = %event.event_id, "hold batch failed");
            for job in jobs {
                let error = HoldError::Internal("hold could not be stored".into());
                METRICS.hold(Err(&error));
                let _ = job.reply.send(Err(error));
            }
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct InvRow {
    type_id: String,
    sold: i64,
    held: i64,
}

/// A booking row that already carries one of the batch's idempotency keys.
#[derive(sqlx::FromRow)]
pub(crate) struct UsedKey {
    id: String,
    user_id: String,
    idempotency_key: String,
    request_hash: String,
}

async fn decide_and_write(
    db: &Db,
    event: &EventSnapshot,
    jobs: &[HoldJob],
    now: i64,
    hold_ttl_ms: i64,
) -> Result<Vec<Decision>, sqlx::Error> {
    let lock = db.for_update();
    let mut type_ids: Vec<&String> = event.types.keys().collect();
    type_ids.sort();

    // Inventory rows exist from the first hold on.
    let mut args = vec![Arg::Text(event.event_id.clone())];
    for t in &type_ids {
        args.push(Arg::Text((*t).clone()));
        args.push(Arg::Int(event.types[*t].quantity));
    }
    let ensure_inventory = format!(
        "INSERT INTO bookings_inventory (event_id, type_id, quantity) VALUES {} ON CONFLICT DO NOTHING",
        (0..type_ids.len()).map(|i| format!("($1, ${}, ${})", 2 + 2 * i, 3 + 2 * i)).collect::<Vec<_>>().join(", ")
    );
    let inventory_sql =
        format!("SELECT type_id, sold, held FROM bookings_inventory WHERE event_id = $1 ORDER BY type_id{lock}");
    let totals_sql = format!("SELECT sold, held FROM bookings_event_totals WHERE event_id = $1{lock}");

    let mut users: Vec<&str> = jobs.iter().map(|j| j.user_id.as_str()).collect();
    users.sort();
    users.dedup();
    let keys: Vec<(&str, &str)> = jobs.iter().map(|j| (j.user_id.as_str(), j.idempotency_key.as_str())).collect();

    with_tx!(db, tx => {
        bind_args!(sqlx::query(&ensure_inventory), &args).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO bookings_event_totals (event_id, capacity) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&event.event_id).bind(event.capacity).execute(&mut *tx).await?;
        let inventory: Vec<InvRow> = sqlx::query_as(&inventory_sql).bind(&event.event_id).fetch_all(&mut *tx).await?;
        let (total_sold, total_held): (i64, i64) =
            sqlx::query_as(&totals_sql).bind(&event.event_id).fetch_one(&mut *tx).await?;
        let counts = tx.lock_user_counts(&event.event_id, &users).await?;
        let used = tx.used_keys(&keys).await?;

        let decisions = decide(event, jobs, &inventory, total_sold + total_held, &counts, &used);
        let writes = BatchWrites::of(event, jobs, &decisions, now, hold_ttl_ms);
        if !writes.bookings.is_empty() {
            for (type_id, n) in &writes.per_type {
                sqlx::query(
                    "UPDATE bookings_inventory SET held = held + $3, quantity = $4 WHERE event_id = $1 AND type_id = $2",
                )
                .bind(&event.event_id).bind(type_id).bind(n).bind(event.types[type_id].quantity)
                .execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE bookings_event_totals SET held = held + $2, capacity = $3 WHERE event_id = $1")
                .bind(&event.event_id).bind(writes.total).bind(event.capacity)
                .execute(&mut *tx).await?;
            tx.insert_holds(&writes).await?;
            tx.enqueue(&writes.messages()).await?;
        }
        Ok::<_, sqlx::Error>(decisions)
    })
}

/// Decide each job in arrival order against the locked counts. Pure: no I/O.
fn decide(
    event: &EventSnapshot,
    jobs: &[HoldJob],
    inventory: &[InvRow],
    taken_total: i64,
    counts: &[(String, i64)],
    used: &[UsedKey],
) -> Vec<Decision> {
    let mut taken: HashMap<&str, i64> = inventory.iter().map(|r| (r.type_id.as_str(), r.sold + r.held)).collect();
    let mut taken_total = taken_total;
    let mut per_user: HashMap<&str, i64> = counts.iter().map(|(u, n)| (u.as_str(), *n)).collect();
    let mut seen_keys: HashMap<(&str, &str), usize> = HashMap::new();
    let mut decisions = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let key = (job.user_id.as_str(), job.idempotency_key.as_str());
        if let Some(u) = used.iter().find(|u| u.user_id == key.0 && u.idempotency_key == key.1) {
            decisions.push(if u.request_hash == job.request_hash {
                Decision::Replay(u.id.clone())
            } else {
                Decision::Reject(HoldError::KeyReused)
            });
            continue;
        }
        if let Some(&j) = seen_keys.get(&key) {
            decisions.push(if jobs[j].request_hash == job.request_hash {
                Decision::SameAs(j)
            } else {
                Decision::Reject(HoldError::KeyReused)
            });
            continue;
        }
        seen_keys.insert(key, i);
        let wanted: i64 = job.items.iter().map(|(_, q)| q).sum();
        let already = per_user.get(job.user_id.as_str()).copied().unwrap_or(0);
        if already + wanted > event.max_per_user {
            decisions.push(Decision::Reject(HoldError::LimitExceeded { max: event.max_per_user, already }));
            continue;
        }
        let sold_out = job.items.iter().find(|(t, q)| {
            let have = taken.get(t.as_str()).copied().unwrap_or(0);
            have + q > event.types[t].quantity
        });
        if let Some((t, _)) = sold_out {
            decisions.push(Decision::Reject(HoldError::SoldOut(t.clone())));
            continue;
        }
        if taken_total + wanted > event.capacity {
            decisions.push(Decision::Reject(HoldError::CapacityExceeded));
            continue;
        }
        for (t, q) in &job.items {
            *taken.entry(t.as_str()).or_default() += q;
        }
        taken_total += wanted;
        *per_user.entry(job.user_id.as_str()).or_default() += wanted;
        let amount = job.items.iter().map(|(t, q)| event.types[t].price_cents * q).sum();
        let currency = job.items.first().map(|(t, _)| event.types[t].currency.clone()).unwrap_or_default();
        decisions.push(Decision::Accept { booking_id: uuid::Uuid::now_v7().to_string(), amount, currency });
    }
    decisions
}

/// The accepted holds of a batch, column by column, ready for multi-row inserts.
#[derive(Default)]
pub(crate) struct BatchWrites {
    event_id: String,
    now: i64,
    expires_at: i64,
    /// (type id, tickets added), sorted by type id: the lock order.
    per_type: Vec<(String, i64)>,
    total: i64,
    /// (user id, tickets added), sorted by user id.
    per_user: Vec<(String, i64)>,
    bookings: Vec<NewBooking>,
    items: Vec<NewItem>,
}

pub(crate) struct NewBooking {
    id: String,
    user_id: String,
    amount_cents: i64,
    currency: String,
    idempotency_key: String,
    request_hash: String,
    audit_id: String,
}

pub(crate) struct NewItem {
    booking_id: String,
    type_id: String,
    quantity: i64,
    unit_price_cents: i64,
    refundable: bool,
}

impl BatchWrites {
    /// `booking.held` for every accepted hold.
    fn messages(&self) -> Vec<tg_platform::bus::DomainEvent> {
        self.bookings
            .iter()
            .map(|b| {
                let items = self.items.iter().filter(|i| i.booking_id == b.id);
                BookingFacts {
                    id: b.id.clone(),
                    event_id: self.event_id.clone(),
                    user_id: b.user_id.clone(),
                    amount_cents: b.amount_cents,
                    currency: b.currency.clone(),
                    items: items.map(|i| (i.type_id.clone(), i.quantity)).collect(),
                }
                .held()
            })
            .collect()
    }

    fn of(event: &EventSnapshot, jobs: &[HoldJob], decisions: &[Decision], now: i64, hold_ttl_ms: i64) -> Self {
        let mut per_type: BTreeMap<&str, i64> = BTreeMap::new();
        let mut per_user: BTreeMap<&str, i64> = BTreeMap::new();
        let mut w =
            BatchWrites { event_id: event.event_id.clone(), now, expires_at: now + hold_ttl_ms, ..Default::default() };
        for (job, d) in jobs.iter().zip(decisions) {
            let Decision::Accept { booking_id, amount, currency } = d else { continue };
            *per_user.entry(job.user_id.as_str()).or_default() += job.items.iter().map(|(_, q)| q).sum::<i64>();
            w.bookings.push(NewBooking {
                id: booking_id.clone(),
                user_id: job.user_id.clone(),
                amount_cents: *amount,
                currency: currency.clone(),
                idempotency_key: job.idempotency_key.clone(),
                request_hash: job.request_hash.clone(),
                audit_id: uuid::Uuid::now_v7().to_string(),
            });
            for (t, q) in &job.items {
                *per_type.entry(t.as_str()).or_default() += q;
                let info = &event.types[t];
                w.items.push(NewItem {
                    booking_id: booking_id.clone(),
                    type_id: t.clone(),
                    quantity: *q,
                    unit_price_cents: info.price_cents,
                    refundable: info.refundable,
                });
            }
        }
        w.total = per_type.values().sum();
        w.per_type = per_type.into_iter().map(|(t, n)| (t.to_owned(), n)).collect();
        w.per_user = per_user.into_iter().map(|(u, n)| (u.to_owned(), n)).collect();
        w
    }
}
