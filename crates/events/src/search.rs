//! Discovery: published public events with filters, sorting and keyset (cursor) pagination; and the
//! admins' moderation list of every event, whatever its status or visibility.
//!
//! The cursor carries the sort key of the last row seen plus its id, so pages neither repeat nor skip
//! rows while the data stays put, and no page costs more than an index range scan.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use serde::{Deserialize, Serialize};
use tg_platform::ApiError;
use utoipa::IntoParams;

use crate::{
    document::{parse_instant, STATUSES, VENUE_TYPES, VISIBILITIES},
    store::{Arg, EventRow, Store, ROW_COLS},
};

#[derive(Deserialize, IntoParams, Default, Debug)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Category id.
    pub category: Option<String>,
    pub tag: Option<String>,
    /// City (case-insensitive).
    pub city: Option<String>,
    /// Events still running at or after this instant (RFC 3339); default now.
    pub from: Option<String>,
    /// Events starting at or before this instant (RFC 3339).
    pub to: Option<String>,
    /// Lowest ticket price at least this.
    pub price_min: Option<f64>,
    /// Lowest ticket price at most this.
    pub price_max: Option<f64>,
    /// `physical`, `online` or `hybrid`.
    pub venue_type: Option<String>,
    /// Free text over title, summary and description in every language.
    pub q: Option<String>,
    /// `start` (default), `priority` or `popularity`.
    #[param(inline, value_type = Option<SortName>)]
    pub sort: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Language of title/summary/description (`en`, `km`); else `Accept-Language`.
    pub lang: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sort {
    Start,
    Priority,
    Popularity,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    /// Sort keys of the last row: start, or (priority, start), or popularity.
    k: Vec<i64>,
    id: String,
}

pub struct Page {
    pub rows: Vec<EventRow>,
    pub next_cursor: Option<String>,
}

fn encode_cursor(k: Vec<i64>, id: &str) -> String {
    B64.encode(serde_json::to_vec(&Cursor { k, id: id.to_owned() }).unwrap_or_default())
}

/// The orders of the listing (the schema's enum of `sort`, which is parsed as text).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum SortName {
    Start,
    Priority,
    Popularity,
}

/// A cursor this listing gave out, with `keys` sort keys.
fn decode_cursor(c: &str, keys: usize) -> Result<Cursor, ApiError> {
    B64.decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok())
        .filter(|c| c.k.len() == keys)
        .ok_or_else(|| ApiError::field("cursor", "is not a cursor from this listing"))
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The text filter shared by both listings: at most 100 characters, matched as a substring.
fn text_pattern(q: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(text) = q.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    if text.chars().count() > 100 {
        return Err(ApiError::field("q", "must be at most 100 characters"));
    }
    Ok(Some(format!("%{}%", escape_like(&text.to_lowercase()))))
}

pub async fn list(store: &Store, q: &ListQuery, now: i64) -> Result<Page, ApiError> {
    let sort = match q.sort.as_deref().unwrap_or("start") {
        "start" => Sort::Start,
        "priority" => Sort::Priority,
        "popularity" => Sort::Popularity,
        _ => return Err(ApiError::field("sort", "must be start, priority or popularity")),
    };
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 100"));
    }
    let mut args: Vec<Arg> = Vec::new();
    let mut arg = |a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
    let from = match &q.from {
        Some(f) => parse_instant(f).map_err(|m| ApiError::field("from", m))?.max(now),
        None => now,
    };
    let mut sql = format!(
        "SELECT {ROW_COLS} FROM events_events WHERE status = 'published' AND visibility = 'public' AND end_at >= {}",
        arg(Arg::Int(from))
    );
    if let Some(to) = &q.to {
        let to = parse_instant(to).map_err(|m| ApiError::field("to", m))?;
        sql += &format!(" AND start_at <= {}", arg(Arg::Int(to)));
    }
    if let Some(c) = q.category.as_deref().filter(|s| !s.is_empty()) {
        sql += &format!(" AND category_id = {}", arg(Arg::Text(c.to_owned())));
    }
    if let Some(t) = q.tag.as_deref().filter(|s| !s.is_empty()) {
        sql +=
            &format!(" AND id IN (SELECT event_id FROM events_tags WHERE tag = {})", arg(Arg::Text(t.to_lowercase())));
    }
    if let Some(c) = q.city.as_deref().filter(|s| !s.is_empty()) {
        sql += &format!(" AND city = {}", arg(Arg::Text(c.trim().to_lowercase())));
    }
    if let Some(v) = q.venue_type.as_deref() {
        if !VENUE_TYPES.contains(&v) {
            return Err(ApiError::field("venue_type", "must be physical, online or hybrid"));
        }
        sql += &format!(" AND venue_type = {}", arg(Arg::Text(v.to_owned())));
    }
    for (name, value) in [("price_min", q.price_min), ("price_max", q.price_max)] {
        if let Some(p) = value {
            if !p.is_finite() || p < 0.0 {
                return Err(ApiError::field(name, "must be a non-negative number"));
            }
            let op = if name == "price_min" { ">=" } else { "<=" };
            sql += &format!(" AND min_price {op} {}", arg(Arg::Float(p)));
        }
    }
    if let Some(pattern) = text_pattern(q.q.as_deref())? {
        sql += &format!(" AND search_text LIKE {} ESCAPE '\\'", arg(Arg::Text(pattern)));
    }
    if let Some(c) = &q.cursor {
        let cur = decode_cursor(c, if sort == Sort::Priority { 2 } else { 1 })?;
        let id = arg(Arg::Text(cur.id));
        sql += &match sort {
            Sort::Start => format!(" AND (start_at, id) > ({}, {id})", arg(Arg::Int(cur.k[0]))),
            Sort::Priority => {
                format!(
                    " AND (priority, start_at, id) > ({}, {}, {id})",
                    arg(Arg::Int(cur.k[0])),
                    arg(Arg::Int(cur.k[1]))
                )
            }
            Sort::Popularity => {
                let k = arg(Arg::Int(cur.k[0]));
                format!(" AND (popularity < {k} OR (popularity = {k} AND id > {id}))")
            }
        };
    }
    sql += match sort {
        Sort::Start => " ORDER BY start_at, id",
        Sort::Priority => " ORDER BY priority, start_at, id",
        Sort::Popularity => " ORDER BY popularity DESC, id",
    };
    sql += &format!(" LIMIT {}", arg(Arg::Int(limit + 1)));

    let mut rows: Vec<EventRow> = crate::fetch_dynamic!(&store.db, &sql, &args, EventRow)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => {
            let k = match sort {
                Sort::Start => vec![last.start_at],
                Sort::Priority => vec![last.priority, last.start_at],
                Sort::Popularity => vec![last.popularity],
            };
            Some(encode_cursor(k, &last.id))
        }
        _ => None,
    };
    Ok(Page { rows, next_cursor })
}

#[derive(Deserialize, IntoParams, Default, Debug)]
#[into_params(parameter_in = Query)]
pub struct ModerationQuery {
    /// `draft`, `published`, `cancelled` or `completed`; default all.
    pub status: Option<String>,
    /// `public`, `unlisted` or `private`; default all.
    pub visibility: Option<String>,
    /// Free text over title, summary and description in every language.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Language of title/summary/description (`en`, `km`); else `Accept-Language`.
    pub lang: Option<String>,
}

/// Every event, most recently changed first, for admins to review.
pub async fn moderation(store: &Store, q: &ModerationQuery) -> Result<Page, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 100"));
    }
    let mut args: Vec<Arg> = Vec::new();
    let mut arg = |a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
    let mut sql = format!("SELECT {ROW_COLS} FROM events_events WHERE 1 = 1");
    for (name, value, allowed) in
        [("status", &q.status, &STATUSES[..]), ("visibility", &q.visibility, &VISIBILITIES[..])]
    {
        let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else { continue };
        if !allowed.contains(&value) {
            return Err(ApiError::field(name, format!("must be one of {}", allowed.join(", "))));
        }
        sql += &format!(" AND {name} = {}", arg(Arg::Text(value.to_owned())));
    }
    if let Some(pattern) = text_pattern(q.q.as_deref())? {
        sql += &format!(" AND search_text LIKE {} ESCAPE '\\'", arg(Arg::Text(pattern)));
    }
    if let Some(c) = &q.cursor {
        let cur = decode_cursor(c, 1)?;
        let id = arg(Arg::Text(cur.id));
        let k = arg(Arg::Int(cur.k[0]));
        sql += &format!(" AND (updated_at < {k} OR (updated_at = {k} AND id < {id}))");
    }
    sql += &format!(" ORDER BY updated_at DESC, id DESC LIMIT {}", arg(Arg::Int(limit + 1)));
    let mut rows: Vec<EventRow> = crate::fetch_dynamic!(&store.db, &sql, &args, EventRow)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(encode_cursor(vec![last.updated_at], &last.id)),
        _ => None,
    };
    Ok(Page { rows, next_cursor })
}
