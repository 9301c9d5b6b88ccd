//! The event document: exactly the shape of `shared/fixtures/event-tech-conference-2025.json`,
//! and its validation. Server-owned parts (`audit`, `analytics`, `ticketing.tickets_sold`) are accepted
//! on input and replaced by the server.

use std::collections::{BTreeMap, HashSet};

use jiff::{tz::TimeZone, Timestamp};
use serde::{Deserialize, Serialize};
use tg_platform::problem::FieldError;
use utoipa::ToSchema;

use crate::currencies::{is_iso4217, minor_unit_digits};

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventDocument {
    /// Client may choose it on creation (`evt-001`); generated when empty.
    #[serde(default)]
    pub id: String,
    pub slug: String,
    /// `draft`, `published`, `cancelled` or `completed`.
    pub status: String,
    /// `public`, `unlisted` (direct link only) or `private` (invited users only).
    pub visibility: String,
    pub priority: i64,
    pub language: String,
    #[serde(default)]
    pub localizations: BTreeMap<String, Localization>,
    pub title: String,
    pub summary: String,
    pub description: String,
    pub category: Category,
    #[serde(default)]
    pub tags: Vec<String>,
    pub venue: Venue,
    pub datetime: EventTimes,
    pub ticketing: Ticketing,
    #[serde(default)]
    pub media: Media,
    /// Filled from the organizer's profile when omitted.
    #[serde(default)]
    pub organizer: Organizer,
    #[serde(default)]
    pub analytics: Analytics,
    #[serde(default)]
    pub audit: Audit,
    pub security: Security,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Localization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Venue {
    /// `physical`, `online` or `hybrid`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub online_url: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventTimes {
    /// IANA time zone, e.g. `Asia/Phnom_Penh`.
    pub timezone: String,
    /// RFC 3339 with offset.
    pub start: String,
    pub end: String,
    pub duration_minutes: i64,
    pub booking_start: String,
    pub booking_end: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ticketing {
    pub max_tickets_per_user: i64,
    pub total_capacity: i64,
    /// Server-owned: confirmed tickets across all types.
    #[serde(default)]
    pub tickets_sold: i64,
    pub types: Vec<TicketType>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TicketType {
    pub id: String,
    pub name: String,
    pub price: f64,
    /// ISO 4217, e.g. `USD`, `KHR`.
    pub currency: String,
    pub quantity: i64,
    #[serde(default)]
    pub benefits: Vec<String>,
    pub refundable: bool,
    pub available_from: Option<String>,
    pub available_until: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Media {
    pub banner: Option<String>,
    #[serde(default)]
    pub gallery: Vec<String>,
    pub video: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Organizer {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub logo: Option<String>,
    #[serde(default)]
    pub contact_email: String,
    pub contact_phone: Option<String>,
    pub website: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Default)]
pub struct Analytics {
    pub views: i64,
    pub clicks: i64,
    pub shares: Shares,
    pub rating: Rating,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Default)]
pub struct Shares {
    pub facebook: i64,
    pub telegram: i64,
    pub twitter: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Default)]
pub struct Rating {
    pub average: Option<f64>,
    pub count: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Default)]
pub struct Audit {
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
    pub updated_by: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// `qr_code` or `manual`.
    pub checkin_method: String,
    pub access_control: String,
    pub terms_and_conditions: Option<String>,
}

pub const STATUSES: [&str; 4] = ["draft", "published", "cancelled", "completed"];
pub const VISIBILITIES: [&str; 3] = ["public", "unlisted", "private"];
pub const VENUE_TYPES: [&str; 3] = ["physical", "online", "hybrid"];

/// Instants of a valid document, in Unix milliseconds, and other derived values.
#[derive(Clone, Debug)]
pub struct Derived {
    pub start_ms: i64,
    pub end_ms: i64,
    pub booking_start_ms: i64,
    pub booking_end_ms: i64,
    pub min_price: f64,
    pub max_price: f64,
    pub search_text: String,
}

/// A ticket type's sale window, in Unix milliseconds (defaults to the booking window).
pub fn sale_window(t: &TicketType, d: &Derived) -> (i64, i64) {
    let from = t.available_from.as_deref().and_then(|s| parse_instant(s).ok()).unwrap_or(d.booking_start_ms);
    let until = t.available_until.as_deref().and_then(|s| parse_instant(s).ok()).unwrap_or(d.booking_end_ms);
    (from, until)
}

pub fn parse_instant(s: &str) -> Result<i64, String> {
    s.parse::<Timestamp>().map(|t| t.as_millisecond()).map_err(|_| "must be an RFC 3339 date-time with offset".into())
}

struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }
    fn text(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let n = value.trim().chars().count();
        if n < min || n > max {
            self.add(field, format!("must be {min} to {max} characters"));
        } else if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
            self.add(field, "must not contain control characters");
        }
    }
    /// [`Errors::text`] for a one-line field (a title, a name): no line breaks or tabs either, which
    /// would break headers, CSV rows and notices built from it.
    fn line(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let before = self.0.len();
        self.text(field, value, min, max);
        if self.0.len() == before && value.chars().any(char::is_control) {
            self.add(field, "must be one line, without control characters");
        }
    }
    fn url(&mut self, field: &str, value: Option<&str>) {
        if let Some(v) = value {
            if !is_http_url(v) {
                self.add(field, "must be an absolute http(s) URL");
            }
        }
    }
    fn instant(&mut self, field: &str, value: &str) -> Option<i64> {
        match parse_instant(value) {
            Ok(ms) => Some(ms),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }
}

pub fn is_http_url(v: &str) -> bool {
    v.len() <= 2048 && url::Url::parse(v).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

pub fn is_valid_slug(s: &str) -> bool {
    (3..=100).contains(&s.len())
        && s.split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

fn is_valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Most seats an event or a ticket type may have, and most tickets one buyer may be allowed.
pub const MAX_CAPACITY: i64 = 10_000_000;

/// Whether `price` is a whole number of `currency`'s minor unit. Amounts are kept in hundredths, so
/// currencies with three decimals are held to two.
fn whole_minor_units(price: f64, currency: &str) -> bool {
    let scaled = price * 10f64.powi(minor_unit_digits(currency).into());
    (scaled - scaled.round()).abs() < 1e-6
}

fn is_language(s: &str) -> bool {
    (2..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
}

impl EventDocument {
    /// Check every rule; on success return the derived values. All problems are reported at once,
    /// each naming its field by JSON path.
    pub fn validate(&self) -> Result<Derived, Vec<FieldError>> {
        let mut e = Errors(Vec::new());
        if !self.id.is_empty() && !is_valid_id(&self.id) {
            e.add("id", "must be 1 to 64 letters, digits, '-' or '_'");
        }
        if !is_valid_slug(&self.slug) {
            e.add("slug", "must be 3 to 100 lower-case letters or digits in groups joined by single '-'");
        }
        if !STATUSES.contains(&self.status.as_str()) {
            e.add("status", format!("must be one of {}", STATUSES.join(", ")));
        }
        if !VISIBILITIES.contains(&self.visibility.as_str()) {
            e.add("visibility", format!("must be one of {}", VISIBILITIES.join(", ")));
        }
        if !(0..=1000).contains(&self.priority) {
            e.add("priority", "must be between 0 and 1000");
        }
        if !is_language(&self.language) {
            e.add("language", "must be a language code like \"en\" or \"km\"");
        }
        for (lang, l) in &self.localizations {
            if !is_language(lang) {
                e.add(format!("localizations.{lang}"), "key must be a language code like \"km\"");
            }
            if let Some(t) = &l.title {
                e.line(&format!("localizations.{lang}.title"), t, 1, 200);
            }
            if let Some(t) = &l.summary {
                e.text(&format!("localizations.{lang}.summary"), t, 0, 500);
            }
            if let Some(t) = &l.description {
                e.text(&format!("localizations.{lang}.description"), t, 0, 20_000);
            }
        }
        e.line("title", &self.title, 1, 200);
        e.text("summary", &self.summary, 0, 500);
        e.text("description", &self.description, 0, 20_000);
        if !is_valid_id(&self.category.id) {
            e.add("category.id", "must be 1 to 64 letters, digits, '-' or '_'");
        }
        e.line("category.name", &self.category.name, 1, 100);
        if self.tags.len() > 20 {
            e.add("tags", "at most 20 tags");
        }
        let mut seen = HashSet::new();
        for (i, tag) in self.tags.iter().enumerate() {
            e.line(&format!("tags[{i}]"), tag, 1, 50);
            if !seen.insert(tag.to_lowercase()) {
                e.add(format!("tags[{i}]"), "duplicate tag");
            }
        }

        let v = &self.venue;
        if !VENUE_TYPES.contains(&v.kind.as_str()) {
            e.add("venue.type", format!("must be one of {}", VENUE_TYPES.join(", ")));
        }
        if matches!(v.kind.as_str(), "physical" | "hybrid") {
            if v.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
                e.add("venue.name", "is required for a physical venue");
            }
            if v.city.as_deref().is_none_or(|n| n.trim().is_empty()) {
                e.add("venue.city", "is required for a physical venue");
            }
        }
        for (field, value) in [("venue.name", &v.name), ("venue.address", &v.address), ("venue.city", &v.city)] {
            if let Some(value) = value.as_deref().filter(|s| !s.trim().is_empty()) {
                e.line(field, value, 1, 300);
            }
        }
        if matches!(v.kind.as_str(), "online" | "hybrid") && v.online_url.is_none() {
            e.add("venue.online_url", "is required for an online venue");
        }
        e.url("venue.online_url", v.online_url.as_deref());
        if v.latitude.is_some_and(|l| !(-90.0..=90.0).contains(&l)) {
            e.add("venue.latitude", "must be between -90 and 90");
        }
        if v.longitude.is_some_and(|l| !(-180.0..=180.0).contains(&l)) {
            e.add("venue.longitude", "must be between -180 and 180");
        }
        if v.latitude.is_some() != v.longitude.is_some() {
            e.add("venue.latitude", "latitude and longitude go together");
        }

        let dt = &self.datetime;
        if TimeZone::get(&dt.timezone).is_err() {
            e.add("datetime.timezone", "must be an IANA time zone like Asia/Phnom_Penh");
        }
        let start = e.instant("datetime.start", &dt.start);
        let end = e.instant("datetime.end", &dt.end);
        let b_start = e.instant("datetime.booking_start", &dt.booking_start);
        let b_end = e.instant("datetime.booking_end", &dt.booking_end);
        if let (Some(s), Some(en)) = (start, end) {
            if s >= en {
                e.add("datetime.end", "must be after datetime.start");
            }
        }
        if dt.duration_minutes <= 0 {
            e.add("datetime.duration_minutes", "must be positive");
        }
        if let (Some(bs), Some(be)) = (b_start, b_end) {
            if bs >= be {
                e.add("datetime.booking_end", "must be after datetime.booking_start");
            }
        }
        if let (Some(be), Some(en)) = (b_end, end) {
            if be > en {
                e.add("datetime.booking_end", "must not be after datetime.end");
            }
        }

        let t = &self.ticketing;
        if !(1..=MAX_CAPACITY).contains(&t.max_tickets_per_user) {
            e.add("ticketing.max_tickets_per_user", format!("must be between 1 and {MAX_CAPACITY}"));
        }
        if !(0..=MAX_CAPACITY).contains(&t.total_capacity) {
            e.add("ticketing.total_capacity", format!("must be between 0 and {MAX_CAPACITY}"));
        }
        if t.types.is_empty() {
            e.add("ticketing.types", "at least one ticket type is required");
        }
        if t.types.len() > 50 {
            e.add("ticketing.types", "at most 50 ticket types");
        }
        let mut ids = HashSet::new();
        let mut sum: i64 = 0;
        for (i, tt) in t.types.iter().enumerate() {
            let p = |f: &str| format!("ticketing.types[{i}].{f}");
            if !is_valid_id(&tt.id) {
                e.add(p("id"), "must be 1 to 64 letters, digits, '-' or '_'");
            } else if !ids.insert(tt.id.as_str()) {
                e.add(p("id"), "duplicate ticket type id");
            }
            e.line(&p("name"), &tt.name, 1, 100);
            if !tt.price.is_finite() || tt.price < 0.0 || tt.price > 1_000_000_000.0 {
                e.add(p("price"), "must be a non-negative amount");
            } else if is_iso4217(&tt.currency) && !whole_minor_units(tt.price, &tt.currency) {
                let unit = if minor_unit_digits(&tt.currency) == 0 { "1" } else { "0.01" };
                e.add(p("price"), format!("must be a whole number of {unit} {}", tt.currency));
            }
            if !is_iso4217(&tt.currency) {
                e.add(p("currency"), "must be an ISO 4217 currency code like USD or KHR");
            }
            if !(0..=MAX_CAPACITY).contains(&tt.quantity) {
                e.add(p("quantity"), format!("must be between 0 and {MAX_CAPACITY}"));
            }
            sum = sum.saturating_add(tt.quantity.max(0));
            for (j, b) in tt.benefits.iter().enumerate() {
                e.line(&format!("ticketing.types[{i}].benefits[{j}]"), b, 1, 200);
            }
            let from = tt.available_from.as_deref().and_then(|s| e.instant(&p("available_from"), s));
            let until = tt.available_until.as_deref().and_then(|s| e.instant(&p("available_until"), s));
            if let (Some(f), Some(u)) = (from, until) {
                if f >= u {
                    e.add(p("available_until"), "must be after available_from");
                }
            }
            if let (Some(f), Some(bs)) = (from, b_start) {
                if f < bs {
                    e.add(p("available_from"), "must not be before datetime.booking_start");
                }
            }
            if let (Some(u), Some(be)) = (until, b_end) {
                if u > be {
                    e.add(p("available_until"), "must not be after datetime.booking_end");
                }
            }
        }
        if sum > t.total_capacity {
            e.add(
                "ticketing.types",
                format!("quantities add up to {sum}, more than total_capacity {}", t.total_capacity),
            );
        }

        e.url("media.banner", self.media.banner.as_deref());
        e.url("media.video", self.media.video.as_deref());
        if self.media.gallery.len() > 30 {
            e.add("media.gallery", "at most 30 images");
        }
        for (i, g) in self.media.gallery.iter().enumerate() {
            e.url(&format!("media.gallery[{i}]"), Some(g));
        }
        e.url("organizer.logo", self.organizer.logo.as_deref());
        e.url("organizer.website", self.organizer.website.as_deref());
        if !matches!(self.security.checkin_method.as_str(), "qr_code" | "manual") {
            e.add("security.checkin_method", "must be qr_code or manual");
        }
        e.text("security.access_control", &self.security.access_control, 1, 50);
        e.url("security.terms_and_conditions", self.security.terms_and_conditions.as_deref());

        if !e.0.is_empty() {
            return Err(e.0);
        }
        let prices = t.types.iter().map(|t| t.price);
        let mut search = vec![self.title.as_str(), self.summary.as_str(), self.description.as_str()];
        for l in self.localizations.values() {
            search.extend([l.title.as_deref(), l.summary.as_deref(), l.description.as_deref()].into_iter().flatten());
        }
        Ok(Derived {
            start_ms: start.unwrap_or_default(),
            end_ms: end.unwrap_or_default(),
            booking_start_ms: b_start.unwrap_or_default(),
            booking_end_ms: b_end.unwrap_or_default(),
            min_price: prices.clone().fold(f64::INFINITY, f64::min),
            max_price: prices.fold(0.0, f64::max),
            search_text: search.join("\n").to_lowercase(),
        })
    }

    /// Title, summary and description in `lang` where the event has them, else the default language.
    pub fn localize(&mut self, lang: &str) -> bool {
        let Some(l) = self.localizations.get(lang).cloned() else { return false };
        if let Some(t) = l.title {
            self.title = t;
        }
        if let Some(s) = l.summary {
            self.summary = s;
        }
        if let Some(d) = l.description {
            self.description = d;
        }
        true
    }
}
