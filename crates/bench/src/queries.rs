//! The measured query kinds: each is a query string of `GET /api/v1/events` plus the SQL that
//! `tg_events::search::list` runs for it (same shape, same parameters), for match counts and EXPLAIN.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use jiff::Timestamp;
use tg_events::document::parse_instant;

use crate::seed::{WORD_COMMON, WORD_KHMER, WORD_PLAIN, WORD_RARE};

/// A value bound to the SQL (the same values the application binds).
#[derive(Clone, Debug)]
pub enum Arg {
    Int(i64),
    Float(f64),
    Text(String),
}

pub struct Kind {
    pub name: &'static str,
    /// Free-text searches, the subject of the 20 ms target.
    pub search: bool,
    pub params: Vec<(&'static str, String)>,
}

/// Every kind, in the order they are measured. `cursor` is the `next_cursor` of the default listing.
pub fn kinds(now_ms: i64, cursor: &str) -> Vec<Kind> {
    let day = 24 * 3_600_000;
    let at = |ms: i64| Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default();
    let k = |name, search, params: &[(&'static str, &str)]| Kind {
        name,
        search,
        params: params.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    };
    vec![
        k("list (default)", false, &[("limit", "20")]),
        k("list page 2 (cursor)", false, &[("limit", "20"), ("cursor", cursor)]),
        k("category", false, &[("category", "cat-music")]),
        k("city", false, &[("city", "Siem Reap")]),
        k("tag", false, &[("tag", "tag-042")]),
        k("price 50–80", false, &[("price_min", "50"), ("price_max", "80")]),
        k("dates (30 days, in 6 months)", false, &[("from", &at(now_ms + 180 * day)), ("to", &at(now_ms + 210 * day))]),
        k("sort=popularity", false, &[("sort", "popularity")]),
        k("sort=priority", false, &[("sort", "priority")]),
        k("q common word (~1%)", true, &[("q", WORD_COMMON)]),
        k("q rare word (~0.01%)", true, &[("q", WORD_RARE)]),
        k("q Khmer word", true, &[("q", WORD_KHMER)]),
        k(
            "filters + q",
            true,
            &[("category", "cat-music"), ("city", "Phnom Penh"), ("price_max", "100"), ("q", WORD_PLAIN)],
        ),
    ]
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The SQL `search::list` builds for these parameters: (filter SQL after `WHERE`, full SQL, arguments).
/// The full SQL selects the listing's columns with its ORDER BY and LIMIT; the filter is without the cursor.
pub struct Sql {
    pub filter: String,
    pub filter_args: usize,
    pub full: String,
    pub args: Vec<Arg>,
}

pub fn equivalent_sql(params: &[(&str, String)], now_ms: i64) -> anyhow::Result<Sql> {
    let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str());
    let mut args: Vec<Arg> = Vec::new();
    let mut arg = |a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
    let from = match get("from") {
        Some(f) => parse_instant(f).map_err(anyhow::Error::msg)?.max(now_ms),
        None => now_ms,
    };
    let mut w = format!("status = 'published' AND visibility = 'public' AND end_at >= {}", arg(Arg::Int(from)));
    if let Some(to) = get("to") {
        w += &format!(" AND start_at <= {}", arg(Arg::Int(parse_instant(to).map_err(anyhow::Error::msg)?)));
    }
    if let Some(c) = get("category") {
        w += &format!(" AND category_id = {}", arg(Arg::Text(c.to_owned())));
    }
    if let Some(t) = get("tag") {
        w += &format!(" AND id IN (SELECT event_id FROM events_tags WHERE tag = {})", arg(Arg::Text(t.to_lowercase())));
    }
    if let Some(c) = get("city") {
        w += &format!(" AND city = {}", arg(Arg::Text(c.trim().to_lowercase())));
    }
    if let Some(v) = get("venue_type") {
        w += &format!(" AND venue_type = {}", arg(Arg::Text(v.to_owned())));
    }
    for (name, op) in [("price_min", ">="), ("price_max", "<=")] {
        if let Some(p) = get(name) {
            w += &format!(" AND min_price {op} {}", arg(Arg::Float(p.parse()?)));
        }
    }
    if let Some(text) = get("q").map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
        w += &format!(" AND search_text LIKE {} ESCAPE '\\'", arg(Arg::Text(pattern)));
    }
    let filter = w.clone();
    let sort = get("sort").unwrap_or("start");
    if let Some(c) = get("cursor") {
        let cur: serde_json::Value = serde_json::from_slice(&B64.decode(c)?)?;
        let keys: Vec<i64> =
            cur["k"].as_array().map(|a| a.iter().filter_map(|v| v.as_i64()).collect()).unwrap_or_default();
        let id = arg(Arg::Text(cur["id"].as_str().unwrap_or_default().to_owned()));
        w += &match (sort, keys.as_slice()) {
            ("start", [s]) => format!(" AND (start_at, id) > ({}, {id})", arg(Arg::Int(*s))),
            ("priority", [p, s]) => {
                format!(" AND (priority, start_at, id) > ({}, {}, {id})", arg(Arg::Int(*p)), arg(Arg::Int(*s)))
            }
            ("popularity", [p]) => {
                let k = arg(Arg::Int(*p));
                format!(" AND (popularity < {k} OR (popularity = {k} AND id > {id}))")
            }
            _ => anyhow::bail!("cursor does not fit sort {sort}"),
        };
    }
    let order = match sort {
        "priority" => "priority, start_at, id",
        "popularity" => "popularity DESC, id",
        _ => "start_at, id",
    };
    let limit = get("limit").map(str::parse).transpose()?.unwrap_or(20i64);
    let limit = arg(Arg::Int(limit + 1));
    let full =
        format!("SELECT {} FROM events_events WHERE {w} ORDER BY {order} LIMIT {limit}", tg_events::store::ROW_COLS);
    let filter_args = filter.matches('$').count();
    Ok(Sql { filter, filter_args, full, args })
}

/// The SQL type of an argument, for `PREPARE name(types) AS …`.
pub fn sql_type(a: &Arg) -> &'static str {
    match a {
        Arg::Int(_) => "int8",
        Arg::Float(_) => "float8",
        Arg::Text(_) => "text",
    }
}

/// An argument as a SQL literal, for `EXECUTE name(literals)`.
pub fn literal(a: &Arg) -> String {
    match a {
        Arg::Int(v) => v.to_string(),
        Arg::Float(v) => format!("{v:?}"),
        Arg::Text(v) => format!("'{}'", v.replace('\'', "''")),
    }
}
