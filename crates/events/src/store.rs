//! SQL of the events service (tables `events_*`). Portable SQL; runs on SQLite and PostgreSQL.

use tg_messaging::OutboxWrite;
use tg_platform::{bus::DomainEvent, clock::now_ms, db::Db, with_db, with_tx};

use crate::document::{Derived, EventDocument};

#[derive(Clone)]
pub struct Store {
    pub db: Db,
}

#[derive(sqlx::FromRow, Clone, Debug)]
pub struct EventRow {
    pub id: String,
    pub slug: String,
    pub organizer_id: String,
    pub status: String,
    pub visibility: String,
    pub start_at: i64,
    pub priority: i64,
    pub popularity: i64,
    pub document: String,
    pub views: i64,
    pub clicks: i64,
    pub share_facebook: i64,
    pub share_telegram: i64,
    pub share_twitter: i64,
    pub rating_sum: i64,
    pub rating_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
}

pub const ROW_COLS: &str = "id, slug, organizer_id, status, visibility, start_at, priority, popularity, document, views, clicks, \
     share_facebook, share_telegram, share_twitter, rating_sum, rating_count, created_at, updated_at, created_by, updated_by";

pub use tg_platform::db::Arg;

/// Run a query built at run time (`$1..$n` placeholders matching `args`) and collect rows.
#[macro_export]
macro_rules! fetch_dynamic {
    ($db:expr, $sql:expr, $args:expr, $row:ty) => {
        tg_platform::with_db!($db, pool => {
            // Not kept as a prepared statement: each search is planned for its actual values, never with a
            // generic plan that ignores how selective they are.
            tg_platform::bind_args!(sqlx::query_as::<_, $row>($sql).persistent(false), $args).fetch_all(pool).await
        })
    };
}

/// Why a write was refused by the database.
#[derive(Debug)]
pub enum WriteError {
    SlugTaken,
    IdTaken,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Db(e)
    }
}

impl Store {
    pub async fn by_key(&self, key: &str) -> Result<Option<EventRow>, sqlx::Error> {
        // An id match wins over a slug match; ids and slugs never collide (checked on write).
        let sql = format!("SELECT {ROW_COLS} FROM events_events WHERE id = $1 OR slug = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1");
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(key).fetch_optional(pool).await)
    }

    /// Insert a validated document (its `id` set) with its tags, and queue `message` with it.
    pub async fn insert(
        &self,
        doc: &EventDocument,
        d: &Derived,
        actor: &str,
        message: Option<&DomainEvent>,
    ) -> Result<(), WriteError> {
        let now = now_ms();
        let json = serde_json::to_string(doc).expect("document serializes");
        let res: Result<(), WriteError> = with_tx!(&self.db, tx => {
            let clash: Option<String> = sqlx::query_scalar(
                "SELECT id FROM events_events WHERE id = $1 OR slug = $1 OR id = $2 OR slug = $2 LIMIT 1")
                .bind(&doc.id).bind(&doc.slug).fetch_optional(&mut *tx).await?;
            if let Some(other) = clash {
                return Err(if other == doc.id { WriteError::IdTaken } else { WriteError::SlugTaken });
            }
            sqlx::query(
                "INSERT INTO events_events (id, slug, organizer_id, status, visibility, priority, category_id, category_name, city,
                    venue_type, start_at, end_at, min_price, max_price, search_text, document, created_at, updated_at, created_by, updated_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $18)")
                .bind(&doc.id).bind(&doc.slug).bind(&doc.organizer.id).bind(&doc.status).bind(&doc.visibility)
                .bind(doc.priority).bind(&doc.category.id).bind(&doc.category.name)
                .bind(doc.venue.city.as_deref().map(str::to_lowercase)).bind(&doc.venue.kind)
                .bind(d.start_ms).bind(d.end_ms).bind(d.min_price).bind(d.max_price).bind(&d.search_text).bind(&json)
                .bind(now).bind(actor)
                .execute(&mut *tx).await.map_err(map_unique)?;
            for tag in &doc.tags {
                sqlx::query("INSERT INTO events_tags (event_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(&doc.id).bind(tag.to_lowercase()).execute(&mut *tx).await?;
            }
            tx.enqueue(message.map(std::slice::from_ref).unwrap_or_default()).await?;
            Ok(())
        });
        res
    }

    /// Replace the document of an existing event (status kept as stored in `doc.status`), and queue
    /// `message` with it.
    pub async fn update(
        &self,
        doc: &EventDocument,
        d: &Derived,
        actor: &str,
        message: Option<&DomainEvent>,
    ) -> Result<(), WriteError> {
        let json = serde_json::to_string(doc).expect("document serializes");
        let now = now_ms();
        let res: Result<(), WriteError> = with_tx!(&self.db, tx => {
            let clash: Option<String> = sqlx::query_scalar(
                "SELECT id FROM events_events WHERE (id = $2 OR slug = $2) AND id <> $1 LIMIT 1")
                .bind(&doc.id).bind(&doc.slug).fetch_optional(&mut *tx).await?;
            if clash.is_some() {
                return Err(WriteError::SlugTaken);
            }
            sqlx::query(
                "UPDATE events_events SET slug = $2, status = $3, visibility = $4, priority = $5, category_id = $6, category_name = $7,
                    city = $8, venue_type = $9, start_at = $10, end_at = $11, min_price = $12, max_price = $13, search_text = $14,
                    document = $15, updated_at = $16, updated_by = $17
                 WHERE id = $1")
                .bind(&doc.id).bind(&doc.slug).bind(&doc.status).bind(&doc.visibility).bind(doc.priority)
                .bind(&doc.category.id).bind(&doc.category.name).bind(doc.venue.city.as_deref().map(str::to_lowercase))
                .bind(&doc.venue.kind).bind(d.start_ms).bind(d.end_ms).bind(d.min_price).bind(d.max_price)
                .bind(&d.search_text).bind(&json).bind(now).bind(actor)
                .execute(&mut *tx).await.map_err(map_unique)?;
            sqlx::query("DELETE FROM events_tags WHERE event_id = $1").bind(&doc.id).execute(&mut *tx).await?;
            for tag in &doc.tags {
                sqlx::query("INSERT INTO events_tags (event_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(&doc.id).bind(tag.to_lowercase()).execute(&mut *tx).await?;
            }
            tx.enqueue(message.map(std::slice::from_ref).unwrap_or_default()).await?;
            Ok(())
        });
        res
    }

    /// Move an event from `from` (one of at most two states) to `to`, queueing `message` if it moved;
    /// false when its status was neither.
    pub async fn transition(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
        actor: &str,
        message: Option<&DomainEvent>,
    ) -> Result<bool, sqlx::Error> {
        let (a, b) = (from.first().copied().unwrap_or(""), from.last().copied().unwrap_or(""));
        with_tx!(&self.db, tx => {
            let n = sqlx::query(
                "UPDATE events_events SET status = $4, updated_at = $5, updated_by = $6 WHERE id = $1 AND (status = $2 OR status = $3)")
                .bind(id).bind(a).bind(b).bind(to).bind(now_ms()).bind(actor)
                .execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                tx.enqueue(message.map(std::slice::from_ref).unwrap_or_default()).await?;
            }
            Ok::<_, sqlx::Error>(n == 1)
        })
    }

    pub async fn by_organizer(
        &self,
        organizer_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EventRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {ROW_COLS} FROM events_events WHERE organizer_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(organizer_id).bind(after).bind(limit).fetch_all(pool).await)
    }

    pub async fn is_invited(&self, event_id: &str, email: &str) -> Result<bool, sqlx::Error> {
        let n: i64 = with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM events_invites WHERE event_id = $1 AND email = $2")
            .bind(event_id).bind(email).fetch_one(pool).await)?;
        Ok(n > 0)
    }

    pub async fn set_invites(&self, event_id: &str, emails: &[String]) -> Result<(), sqlx::Error> {
        with_tx!(&self.db, tx => {
            sqlx::query("DELETE FROM events_invites WHERE event_id = $1").bind(event_id).execute(&mut *tx).await?;
            for email in emails {
                sqlx::query("INSERT INTO events_invites (event_id, email) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(event_id).bind(email).execute(&mut *tx).await?;
            }
            Ok::<(), sqlx::Error>(())
        })
    }

    pub async fn invites(&self, event_id: &str) -> Result<Vec<String>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_scalar("SELECT email FROM events_invites WHERE event_id = $1 ORDER BY email")
            .bind(event_id).fetch_all(pool).await)
    }

    /// Record a rating (one per user; a new one replaces the old) and refresh the event's aggregate.
    pub async fn rate(&self, event_id: &str, user_id: &str, stars: i64) -> Result<(), sqlx::Error> {
        with_tx!(&self.db, tx => {
            sqlx::query(
                "INSERT INTO events_ratings (event_id, user_id, stars, rated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (event_id, user_id) DO UPDATE SET stars = excluded.stars, rated_at = excluded.rated_at")
                .bind(event_id).bind(user_id).bind(stars).bind(now_ms()).execute(&mut *tx).await?;
            sqlx::query(
                "UPDATE events_events SET
                    rating_sum = (SELECT COALESCE(SUM(stars), 0) FROM events_ratings WHERE event_id = $1),
                    rating_count = (SELECT COUNT(*) FROM events_ratings WHERE event_id = $1)
                 WHERE id = $1")
                .bind(event_id).execute(&mut *tx).await?;
            Ok::<(), sqlx::Error>(())
        })
    }

    /// Add counted views, clicks and shares in one statement per event.
    pub async fn add_analytics(&self, event_id: &str, d: &crate::analytics::Delta) -> Result<(), sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query(
            "UPDATE events_events SET views = views + $2, clicks = clicks + $3, share_facebook = share_facebook + $4,
                share_telegram = share_telegram + $5, share_twitter = share_twitter + $6,
                popularity = popularity + $2 + 5 * $3 + 10 * ($4 + $5 + $6)
             WHERE id = $1")
            .bind(event_id).bind(d.views).bind(d.clicks).bind(d.facebook).bind(d.telegram).bind(d.twitter)
            .execute(pool).await.map(|_| ()))
    }

    pub async fn categories(&self, now: i64) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_as(
            "SELECT category_id, MIN(category_name), COUNT(*) FROM events_events
             WHERE status = 'published' AND visibility = 'public' AND end_at >= $1
             GROUP BY category_id ORDER BY COUNT(*) DESC, category_id")
            .bind(now).fetch_all(pool).await)
    }

    pub async fn tags(&self, now: i64) -> Result<Vec<(String, i64)>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_as(
            "SELECT t.tag, COUNT(*) FROM events_tags t JOIN events_events e ON e.id = t.event_id
             WHERE e.status = 'published' AND e.visibility = 'public' AND e.end_at >= $1
             GROUP BY t.tag ORDER BY COUNT(*) DESC, t.tag LIMIT 200")
            .bind(now).fetch_all(pool).await)
    }
}

fn map_unique(e: sqlx::Error) -> WriteError {
    if tg_platform::db::is_unique_violation(&e) {
        WriteError::SlugTaken
    } else {
        WriteError::Db(e)
    }
}
