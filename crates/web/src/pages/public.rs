//! Discovery: home, search with filters (htmx swaps the results), the event page.

use askama::Template;
use axum::{
    extract::{Path, Query},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tg_bookings::api::Availability;
use tg_events::{
    api::CategoryCount,
    document::{EventDocument, TicketType},
};

use super::{enc, ok};
use crate::{
    ctx::{Ctx, PageResult, Problem},
    format,
};

/// A banner we may put in `<img src>`: a web address or a path here (no `javascript:`, no `data:`).
pub fn is_image_url(url: &str) -> bool {
    url.starts_with('/') || url.starts_with("https://") || url.starts_with("http://")
}

/// An event as a card in a list.
pub struct EventCard {
    pub href: String,
    pub title: String,
    pub when: String,
    pub place: String,
    pub price_from: String,
    pub banner: Option<String>,
    pub category: String,
    pub status: String,
}

impl EventCard {
    pub fn new(ctx: &Ctx, e: &EventDocument) -> EventCard {
        let tz = &e.datetime.timezone;
        let cheapest = cheapest_on_offer(&e.ticketing.types, jiff::Timestamp::now());
        let place = match (&e.venue.city, &e.venue.name) {
            (Some(city), Some(name)) => format!("{name}, {city}"),
            (Some(x), None) | (None, Some(x)) => x.clone(),
            (None, None) => ctx.t("venue-online"),
        };
        EventCard {
            href: format!("/events/{}", enc(&e.slug)),
            title: e.title.clone(),
            when: format::datetime(&e.datetime.start, tz, ctx.lang),
            place,
            price_from: cheapest.map_or_else(String::new, |t| {
                if t.price == 0.0 {
                    ctx.t("price-free")
                } else {
                    ctx.ta("price-from", &format::money(t.price, &t.currency))
                }
            }),
            banner: e.media.banner.clone().filter(|b| is_image_url(b)),
            category: e.category.name.clone(),
            status: e.status.clone(),
        }
    }
}

/// The cheapest ticket type still to be had: types whose sale has ended (an early bird, say) are
/// left out unless every sale has ended. Prices compare in dollars, so 20,000 ៛ is cheaper than $25.
fn cheapest_on_offer(types: &[TicketType], now: jiff::Timestamp) -> Option<&TicketType> {
    let in_usd = |t: &TicketType| if t.currency == "KHR" { t.price / format::KHR_PER_USD } else { t.price };
    let ended = |t: &TicketType| {
        t.available_until.as_deref().and_then(|u| u.parse::<jiff::Timestamp>().ok()).is_some_and(|u| u < now)
    };
    let cheapest = |only_open: bool| {
        types.iter().filter(|t| !(only_open && ended(t))).min_by(|a, b| in_usd(a).total_cmp(&in_usd(b)))
    };
    cheapest(true).or_else(|| cheapest(false))
}

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    when: String,
    #[serde(default)]
    price_max: String,
    #[serde(default)]
    venue_type: String,
    #[serde(default)]
    cursor: String,
}

impl SearchQuery {
    /// The API query for these filters; bad values are dropped rather than failing the page.
    fn api_query(&self, ctx: &Ctx) -> String {
        let mut q = vec![format!("lang={}", ctx.lang.code()), "limit=12".to_owned()];
        let mut add = |k: &str, v: &str| {
            if !v.trim().is_empty() {
                q.push(format!("{k}={}", enc(v.trim())));
            }
        };
        add("q", &self.q);
        add("category", &self.category);
        add("city", &self.city);
        add("venue_type", &self.venue_type);
        add("cursor", &self.cursor);
        if self.price_max.trim().parse::<f64>().is_ok_and(|p| p >= 0.0) {
            add("price_max", &self.price_max);
        }
        let now = jiff::Timestamp::now();
        let days = match self.when.as_str() {
            "week" => Some(7),
            "month" => Some(31),
            _ => None,
        };
        if let Some(days) = days {
            add("to", &(now + jiff::SignedDuration::from_hours(24 * days)).to_string());
        }
        q.join("&")
    }

    /// This search's link, for the "more" button.
    fn link_with_cursor(&self, cursor: &str) -> String {
        format!(
            "/events?q={}&category={}&city={}&when={}&price_max={}&venue_type={}&cursor={}",
            enc(&self.q),
            enc(&self.category),
            enc(&self.city),
            enc(&self.when),
            enc(&self.price_max),
            enc(&self.venue_type),
            enc(cursor)
        )
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    ctx: Ctx,
    featured: Vec<EventCard>,
    upcoming: Vec<EventCard>,
    categories: Vec<CategoryCount>,
}

pub async fn home(ctx: Ctx) -> PageResult {
    let lang = ctx.lang.code();
    let featured: tg_events::api::EventPage =
        ctx.get(&format!("/api/v1/events?sort=priority&limit=4&lang={lang}")).await.map_err(|p| ctx.fail(p))?;
    let upcoming: tg_events::api::EventPage =
        ctx.get(&format!("/api/v1/events?sort=start&limit=12&lang={lang}")).await.map_err(|p| ctx.fail(p))?;
    let categories: Vec<CategoryCount> = ctx.get("/api/v1/categories").await.map_err(|p| ctx.fail(p))?;
    let featured = featured.items.iter().filter(|e| e.priority > 0).map(|e| EventCard::new(&ctx, e)).collect();
    let upcoming = upcoming.items.iter().map(|e| EventCard::new(&ctx, e)).collect();
    Ok(ok(&Home { ctx, featured, upcoming, categories }))
}

#[derive(Template)]
#[template(path = "search.html")]
struct Search {
    ctx: Ctx,
    query: SearchQuery,
    results: Vec<EventCard>,
    more: Option<String>,
    categories: Vec<CategoryCount>,
}

/// The whole page also answers htmx, which takes `#results` out of it (`hx-select`).
pub async fn search(ctx: Ctx, Query(query): Query<SearchQuery>) -> PageResult {
    let page: Result<tg_events::api::EventPage, Problem> =
        ctx.get(&format!("/api/v1/events?{}", query.api_query(&ctx))).await;
    let page = match page {
        Ok(page) => page,
        // A stale or hand-made cursor: show the first page instead of an error.
        Err(p) if p.status == 400 || p.status == 422 => {
            tg_events::api::EventPage { items: Vec::new(), next_cursor: None }
        }
        Err(p) => return Err(ctx.fail(p)),
    };
    let results = page.items.iter().map(|e| EventCard::new(&ctx, e)).collect();
    let more = page.next_cursor.map(|c| query.link_with_cursor(&c));
    let categories = ctx.get("/api/v1/categories").await.map_err(|p| ctx.fail(p))?;
    Ok(ok(&Search { ctx, query, results, more, categories }))
}

/// A ticket type as the event page shows it.
pub struct TypeRow {
    pub id: String,
    pub name: String,
    pub price: String,
    pub benefits: Vec<String>,
    pub refundable: bool,
    pub available: i64,
    pub on_sale: bool,
    pub sale_window: String,
}

#[derive(Template)]
#[template(path = "event.html")]
pub struct EventPage {
    pub ctx: Ctx,
    pub event: EventDocument,
    pub when: String,
    pub ends: String,
    pub booking_window: String,
    pub map_url: Option<String>,
    pub types: Vec<TypeRow>,
    pub booking_open: bool,
    pub max_per_user: i64,
    /// Idempotency key of the booking form, so a double submit books once.
    pub nonce: String,
    pub error: Option<String>,
}

impl EventPage {
    pub async fn load(ctx: Ctx, id: &str, error: Option<String>) -> Result<EventPage, Problem> {
        let event: EventDocument = ctx.get(&format!("/api/v1/events/{}?lang={}", enc(id), ctx.lang.code())).await?;
        // None: not sold here (a private event).
        let availability: Option<Availability> =
            match ctx.get(&format!("/api/v1/events/{}/availability", enc(&event.id))).await {
                Ok(a) => Some(a),
                Err(p) if p.status == 404 => None,
                Err(p) => return Err(p),
            };
        let tz = event.datetime.timezone.clone();
        let now = jiff::Timestamp::now();
        let within = |from: Option<&str>, until: Option<&str>| {
            let after = from.and_then(|f| f.parse::<jiff::Timestamp>().ok()).is_none_or(|f| f <= now);
            let before = until.and_then(|u| u.parse::<jiff::Timestamp>().ok()).is_none_or(|u| now <= u);
            after && before
        };
        let booking_open = event.status == "published"
            && availability.is_some()
            && within(Some(&event.datetime.booking_start), Some(&event.datetime.booking_end));
        let availability = availability.unwrap_or(Availability { types: Vec::new(), total_available: 0 });
        let types = event
            .ticketing
            .types
            .iter()
            .map(|t| TypeRow {
                id: t.id.clone(),
                name: t.name.clone(),
                price: format::price(t.price, &t.currency),
                benefits: t.benefits.clone(),
                refundable: t.refundable,
                available: availability.types.iter().find(|a| a.ticket_type_id == t.id).map_or(0, |a| a.available),
                on_sale: booking_open && within(t.available_from.as_deref(), t.available_until.as_deref()),
                sale_window: match (&t.available_from, &t.available_until) {
                    (Some(f), Some(u)) => {
                        format!("{} – {}", format::date(f, &tz, ctx.lang), format::date(u, &tz, ctx.lang))
                    }
                    (None, Some(u)) => ctx.ta("sale-until", &format::date(u, &tz, ctx.lang)),
                    (Some(f), None) => ctx.ta("sale-from", &format::date(f, &tz, ctx.lang)),
                    (None, None) => String::new(),
                },
            })
            .collect();
        let map_url = match (event.venue.latitude, event.venue.longitude) {
            (Some(lat), Some(lon)) => {
                Some(format!("https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}"))
            }
            _ => event.venue.address.as_ref().map(|a| format!("https://www.openstreetmap.org/search?query={}", enc(a))),
        };
        Ok(EventPage {
            when: format::datetime(&event.datetime.start, &tz, ctx.lang),
            ends: format::datetime(&event.datetime.end, &tz, ctx.lang),
            booking_window: format!(
                "{} – {}",
                format::datetime(&event.datetime.booking_start, &tz, ctx.lang),
                format::datetime(&event.datetime.booking_end, &tz, ctx.lang)
            ),
            map_url,
            max_per_user: event.ticketing.max_tickets_per_user,
            types,
            booking_open,
            nonce: uuid::Uuid::new_v4().to_string(),
            error,
            event,
            ctx,
        })
    }

    pub fn banner(&self) -> Option<&str> {
        self.event.media.banner.as_deref().filter(|b| is_image_url(b))
    }

    /// The online event's link: the API gives it only to ticket holders and the organizer.
    pub fn online_link(&self) -> Option<&str> {
        self.event.venue.online_url.as_deref().filter(|u| u.starts_with("https://") || u.starts_with("http://"))
    }
}

pub async fn event_page(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let page = EventPage::load(ctx.clone(), &id, None).await.map_err(|p| ctx.fail(p))?;
    Ok(ok(&page))
}

/// The event for the visitor's calendar (whoever may see the event page may have it).
pub async fn calendar(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let event: EventDocument =
        ctx.get(&format!("/api/v1/events/{}?lang={}", enc(&id), ctx.lang.code())).await.map_err(|p| ctx.fail(p))?;
    let file = event.slug.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "");
    let page = format!("{}/events/{}", ctx.web().config.public_url, enc(&event.slug));
    let mut res = crate::calendar::ics(&event, &page, &ctx.t("venue-online"), jiff::Timestamp::now()).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/calendar; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}.ics\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(res)
}

#[derive(Template)]
#[template(path = "offline.html")]
struct Offline {
    ctx: Ctx,
}

/// What the service worker shows for a page it has not kept.
pub async fn offline(ctx: Ctx) -> Response {
    ok(&Offline { ctx })
}

#[cfg(test)]
mod tests {
    use tg_events::document::TicketType;

    use super::cheapest_on_offer;

    fn kind(id: &str, price: f64, currency: &str, until: Option<&str>) -> TicketType {
        TicketType {
            id: id.into(),
            name: id.into(),
            price,
            currency: currency.into(),
            quantity: 10,
            benefits: vec![],
            refundable: true,
            available_from: None,
            available_until: until.map(Into::into),
        }
    }

    #[test]
    fn the_from_price_skips_sales_that_have_ended() {
        let now: jiff::Timestamp = "2027-03-01T00:00:00Z".parse().unwrap();
        let types = vec![
            kind("early", 10.0, "USD", Some("2027-02-01T00:00:00Z")),
            kind("riel", 82_000.0, "KHR", None),
            kind("standard", 25.0, "USD", Some("2027-04-01T00:00:00+07:00")),
        ];
        // The early bird is over; 82,000 ៛ (about $20) beats $25.
        assert_eq!(cheapest_on_offer(&types, now).map(|t| t.id.as_str()), Some("riel"));
        let later: jiff::Timestamp = "2027-05-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            cheapest_on_offer(&types[..1], later).map(|t| t.id.as_str()),
            Some("early"),
            "all ended: still a price"
        );
        assert!(cheapest_on_offer(&[], now).is_none());
    }
}
