//! Events service: the event catalog (create, edit, publish, unpublish, cancel, complete), discovery with
//! filters and cursor pagination, localizations, analytics, ratings, invitations and banner uploads.
//!
//! It owns the `events_*` tables. It asks the users service for organizer profiles and the bookings
//! service for ticket counts only through the interfaces in [`ports`].

pub mod analytics;
pub mod api;
pub mod currencies;
pub mod document;
pub mod internal;
pub mod ports;
pub mod search;
pub mod store;

use std::{path::PathBuf, sync::Arc, time::Duration};

use jiff::{tz::TimeZone, Timestamp};
use tg_contracts::{Event, EventCancelled, EventPublished, EventUpdated, Message};
use tg_platform::{
    auth::{Principal, Role},
    bus::{Bus, DomainEvent},
    db::{Db, ServiceMigrations},
    ApiError, ApiResult,
};

use crate::{
    analytics::Counter,
    document::{Analytics, Audit, EventDocument, Rating, Shares},
    ports::{BookingsView, OrganizerDirectory},
    store::{EventRow, Store, WriteError},
};

pub fn migrations() -> ServiceMigrations {
    ServiceMigrations {
        service: "events",
        sqlite: sqlx::migrate!("migrations/sqlite"),
        postgres: sqlx::migrate!("migrations/postgres"),
    }
}

#[derive(Clone, Debug)]
pub struct EventsConfig {
    /// Base URL under which uploaded media are served.
    pub public_url: String,
    /// Where uploaded banners are stored.
    pub uploads_dir: PathBuf,
    /// Largest accepted banner, in bytes.
    pub max_banner_bytes: usize,
}

pub struct EventsService {
    pub(crate) store: Store,
    pub(crate) bus: Bus,
    pub(crate) organizers: Arc<dyn OrganizerDirectory>,
    pub(crate) bookings: Arc<dyn BookingsView>,
    pub(crate) counter: Counter,
    pub(crate) config: EventsConfig,
}

/// Lifecycle actions and the states they start from.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    Publish,
    Unpublish,
    Cancel,
    Complete,
}

impl Action {
    /// (from statuses, to status, the message that tells of it).
    fn rule(self) -> (&'static [&'static str], &'static str, fn(Event) -> DomainEvent) {
        match self {
            Action::Publish => (&["draft"], "published", |e| EventPublished(e).to_event()),
            Action::Unpublish => (&["published"], "draft", |e| EventUpdated(e).to_event()),
            Action::Cancel => (&["draft", "published"], "cancelled", |e| EventCancelled(e).to_event()),
            Action::Complete => (&["published"], "completed", |e| EventUpdated(e).to_event()),
        }
    }
}

impl EventsService {
    pub fn new(
        db: Db,
        bus: Bus,
        organizers: Arc<dyn OrganizerDirectory>,
        bookings: Arc<dyn BookingsView>,
        config: EventsConfig,
    ) -> Arc<Self> {
        Arc::new(EventsService { store: Store { db }, bus, organizers, bookings, counter: Counter::default(), config })
    }

    /// Write counted analytics every couple of seconds until the task is dropped.
    pub async fn run_maintenance(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            self.flush_analytics().await;
        }
    }

    /// Write all counted views, clicks and shares now.
    pub async fn flush_analytics(&self) {
        for (id, delta) in self.counter.drain() {
            if let Err(e) = self.store.add_analytics(&id, &delta).await {
                tracing::warn!(error = %e, event_id = %id, "analytics flush failed; will retry");
                self.counter.restore(&id, delta);
            }
        }
    }

    /// The caller's organizer id, when they may act as an organizer.
    async fn organizer_id_of(&self, p: &Principal) -> ApiResult<Option<String>> {
        if !p.has_role(Role::Organizer) && !p.is_admin() {
            return Ok(None);
        }
        Ok(self.organizers.organizer_of_user(&p.user_id).await.map_err(ApiError::from_anyhow)?.map(|o| o.id))
    }

    /// Whether the caller may manage (edit, publish, see drafts of) this event.
    pub(crate) async fn can_manage(&self, p: &Principal, row: &EventRow) -> ApiResult<bool> {
        if p.is_admin() {
            return Ok(true);
        }
        Ok(self.organizer_id_of(p).await?.is_some_and(|id| id == row.organizer_id))
    }

    /// Whether the caller may see this event by direct link.
    pub(crate) async fn can_see(&self, p: Option<&Principal>, row: &EventRow) -> ApiResult<bool> {
        if let Some(p) = p {
            if self.can_manage(p, row).await? {
                return Ok(true);
            }
        }
        if row.status == "draft" {
            return Ok(false);
        }
        match row.visibility.as_str() {
            // Invites name addresses: only their proven owners are let in.
            "private" => match p.and_then(Principal::verified_email) {
                Some(email) => Ok(self.store.is_invited(&row.id, email).await?),
                None => Ok(false),
            },
            _ => Ok(true),
        }
    }

    /// Hides an online event's link (`venue.online_url`) from all but the event's managers and holders
    /// of a valid ticket: the link is what the tickets buy.
    pub(crate) async fn hide_online_link(
        &self,
        p: Option<&Principal>,
        row: &EventRow,
        doc: &mut EventDocument,
    ) -> ApiResult<()> {
        let Some(p) = p.filter(|_| doc.venue.online_url.is_some()) else {
            doc.venue.online_url = None;
            return Ok(());
        };
        let holder = self.bookings.attended(&row.id, &p.user_id).await.map_err(ApiError::from_anyhow)? == Some(true);
        if !holder && !self.can_manage(p, row).await? {
            doc.venue.online_url = None;
        }
        Ok(())
    }

    /// The full document of a stored event, with server-owned fields filled in.
    pub(crate) async fn document(&self, row: &EventRow) -> ApiResult<EventDocument> {
        let sold = self.bookings.sold_totals(std::slice::from_ref(&row.id)).await.map_err(ApiError::from_anyhow)?;
        Ok(to_document(row, sold.get(&row.id).copied().unwrap_or(0)))
    }

    pub(crate) async fn documents(&self, rows: &[EventRow]) -> ApiResult<Vec<EventDocument>> {
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let sold = self.bookings.sold_totals(&ids).await.map_err(ApiError::from_anyhow)?;
        Ok(rows.iter().map(|r| to_document(r, sold.get(&r.id).copied().unwrap_or(0))).collect())
    }

    /// Create an event from a client's document.
    pub async fn create(&self, p: &Principal, mut doc: EventDocument) -> ApiResult<EventDocument> {
        let own_org = self.organizer_id_of(p).await?;
        if !p.is_admin() && own_org.is_none() {
            return Err(ApiError::forbidden("only organizers with an approved profile can create events"));
        }
        // Organizers create for themselves; admins may name any existing organizer.
        let org_id = if p.is_admin() && !doc.organizer.id.is_empty() {
            doc.organizer.id.clone()
        } else {
            own_org.unwrap_or_default()
        };
        if org_id.is_empty() {
            return Err(ApiError::field("organizer.id", "an admin must name the organizer the event belongs to"));
        }
        if !doc.organizer.id.is_empty() && doc.organizer.id != org_id {
            return Err(ApiError::field("organizer.id", "must be your own organizer profile"));
        }
        let profile = self.organizers.organizer(&org_id).await.map_err(ApiError::from_anyhow)?;
        let Some(profile) = profile else { return Err(ApiError::field("organizer.id", "no such organizer")) };
        // What an event shows of its organizer is the organizer's own profile, never the client's copy.
        doc.organizer = profile;
        if !matches!(doc.status.as_str(), "draft" | "published") {
            return Err(ApiError::field("status", "a new event is draft or published"));
        }
        let derived = doc.validate().map_err(ApiError::validation)?;
        if doc.id.is_empty() {
            doc.id = format!("evt-{}", uuid::Uuid::now_v7().simple());
        }
        doc.analytics = Analytics::default();
        doc.audit = Audit::default();
        doc.ticketing.tickets_sold = 0;
        let message = (doc.status == "published").then(|| EventPublished(facts(&doc)).to_event());
        self.store.insert(&doc, &derived, &p.user_id, message.as_ref()).await.map_err(write_error)?;
        self.bus.committed();
        let row = self.store.by_key(&doc.id).await?.ok_or_else(|| ApiError::internal("event vanished after insert"))?;
        self.document(&row).await
    }

    /// Replace an event's document. Status is changed only by the lifecycle actions.
    pub async fn replace(&self, p: &Principal, id: &str, mut doc: EventDocument) -> ApiResult<EventDocument> {
        let row = self.managed_row(p, id).await?;
        if !doc.id.is_empty() && doc.id != row.id {
            return Err(ApiError::field("id", "does not match the event being edited"));
        }
        doc.id = row.id.clone();
        doc.status = row.status.clone();
        if matches!(row.status.as_str(), "cancelled" | "completed") {
            return Err(ApiError::conflict("event_closed", format!("a {} event cannot be edited", row.status)));
        }
        let current: EventDocument = serde_json::from_str(&row.document).map_err(ApiError::internal)?;
        if doc.organizer.id.is_empty() {
            doc.organizer.id = current.organizer.id.clone();
        }
        if doc.organizer.id != current.organizer.id {
            return Err(ApiError::field("organizer.id", "an event cannot change organizer"));
        }
        // The organizer block is the profile as it is now (the client's copy is ignored).
        doc.organizer = match self.organizers.organizer(&current.organizer.id).await.map_err(ApiError::from_anyhow)? {
            Some(profile) => profile,
            None => current.organizer.clone(),
        };
        let derived = doc.validate().map_err(ApiError::validation)?;
        self.check_inventory_kept(&row.id, &doc).await?;
        doc.analytics = Analytics::default();
        doc.audit = Audit::default();
        let message = (row.status == "published").then(|| EventUpdated(facts(&doc)).to_event());
        self.store.update(&doc, &derived, &p.user_id, message.as_ref()).await.map_err(write_error)?;
        self.bus.committed();
        let row = self.store.by_key(&row.id).await?.ok_or_else(|| ApiError::not_found("event"))?;
        self.document(&row).await
    }

    /// A ticket type's quantity may not drop below what is sold or held, and such a type may not vanish.
    async fn check_inventory_kept(&self, event_id: &str, doc: &EventDocument) -> ApiResult<()> {
        let counts = self.bookings.counts(event_id).await.map_err(ApiError::from_anyhow)?;
        let mut errors = Vec::new();
        let mut taken_total = 0;
        for (type_id, c) in &counts {
            let taken = c.sold + c.held;
            taken_total += taken;
            match doc.ticketing.types.iter().position(|t| &t.id == type_id) {
                Some(i) if doc.ticketing.types[i].quantity < taken => errors.push(tg_platform::problem::FieldError {
                    field: format!("ticketing.types[{i}].quantity"),
                    message: format!("{taken} tickets of this type are already sold or held"),
                }),
                None if taken > 0 => errors.push(tg_platform::problem::FieldError {
                    field: "ticketing.types".into(),
                    message: format!("ticket type {type_id:?} has {taken} tickets sold or held and cannot be removed"),
                }),
                _ => {}
            }
        }
        if doc.ticketing.total_capacity < taken_total {
            errors.push(tg_platform::problem::FieldError {
                field: "ticketing.total_capacity".into(),
                message: format!("{taken_total} tickets are already sold or held"),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }

    pub async fn act(&self, p: &Principal, id: &str, action: Action) -> ApiResult<EventDocument> {
        let row = self.managed_row(p, id).await?;
        let (from, to, tell) = action.rule();
        let mut moved: EventDocument = serde_json::from_str(&row.document).map_err(ApiError::internal)?;
        moved.status = to.to_owned();
        let message = Some(tell(facts(&moved)));
        if !self.store.transition(&row.id, from, to, &p.user_id, message.as_ref()).await? {
            return Err(ApiError::conflict(
                "invalid_transition",
                format!("cannot {action:?} an event that is {}", row.status).to_lowercase(),
            ));
        }
        let row = self.store.by_key(&row.id).await?.ok_or_else(|| ApiError::not_found("event"))?;
        self.bus.committed();
        self.document(&row).await
    }

    /// The event `key` (id or slug) if the caller may manage it; 404 when they may not even see it.
    pub(crate) async fn managed_row(&self, p: &Principal, key: &str) -> ApiResult<EventRow> {
        let row = self.store.by_key(key).await?.ok_or_else(|| ApiError::not_found("event"))?;
        if self.can_manage(p, &row).await? {
            Ok(row)
        } else if self.can_see(Some(p), &row).await? {
            Err(ApiError::forbidden("only the event's organizer or an admin may do this"))
        } else {
            Err(ApiError::not_found("event"))
        }
    }

    /// Whether the caller manages the event `key` (its organizer, or an admin); false when no such event.
    pub async fn manages(&self, p: &Principal, key: &str) -> anyhow::Result<bool> {
        let Some(row) = self.store.by_key(key).await? else { return Ok(false) };
        self.can_manage(p, &row).await.map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Public read access for other services (bookings): the stored document, whatever its status.
    pub async fn event(&self, key: &str) -> anyhow::Result<Option<EventDocument>> {
        let Some(row) = self.store.by_key(key).await? else { return Ok(None) };
        self.document(&row).await.map(Some).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

fn write_error(e: WriteError) -> ApiError {
    match e {
        WriteError::SlugTaken => ApiError {
            errors: vec![tg_platform::problem::FieldError { field: "slug".into(), message: "is already taken".into() }],
            ..ApiError::conflict("slug_taken", "slug: is already taken")
        },
        WriteError::IdTaken => ApiError {
            errors: vec![tg_platform::problem::FieldError { field: "id".into(), message: "is already taken".into() }],
            ..ApiError::conflict("id_taken", "id: is already taken")
        },
        WriteError::Db(e) => e.into(),
    }
}

/// Stored row → API document: status, analytics and audit come from the row, `tickets_sold` from bookings.
pub(crate) fn to_document(row: &EventRow, tickets_sold: i64) -> EventDocument {
    let mut doc: EventDocument = serde_json::from_str(&row.document).expect("stored documents are valid");
    doc.status = row.status.clone();
    doc.ticketing.tickets_sold = tickets_sold;
    doc.analytics = Analytics {
        views: row.views,
        clicks: row.clicks,
        shares: Shares { facebook: row.share_facebook, telegram: row.share_telegram, twitter: row.share_twitter },
        rating: Rating {
            average: (row.rating_count > 0)
                .then(|| (row.rating_sum as f64 / row.rating_count as f64 * 100.0).round() / 100.0),
            count: row.rating_count,
        },
    };
    let tz = TimeZone::get(&doc.datetime.timezone).unwrap_or(TimeZone::UTC);
    doc.audit = Audit {
        created_at: local_time(row.created_at, &tz),
        updated_at: local_time(row.updated_at, &tz),
        created_by: row.created_by.clone(),
        updated_by: row.updated_by.clone(),
    };
    doc
}

/// RFC 3339 in the event's time zone, like the fixture's `2025-07-20T12:00:00+07:00`.
fn local_time(ms: i64, tz: &TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

/// What the domain events about `doc` say of it (queued in the outbox with the change).
fn facts(doc: &EventDocument) -> Event {
    Event {
        event_id: doc.id.clone(),
        slug: doc.slug.clone(),
        status: doc.status.clone(),
        title: doc.title.clone(),
        organizer_id: doc.organizer.id.clone(),
        start: doc.datetime.start.clone(),
    }
}
