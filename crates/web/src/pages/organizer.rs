//! Organizer pages: my events, the event form (every field of the event document), lifecycle,
//! sales dashboard, attendees and the door scanner.

use std::collections::HashMap;

use askama::Template;
use axum::{
    body::{Body, Bytes},
    extract::Path,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};
use tg_bookings::api::{AttendeeList, Sales, Staff};
use tg_events::{api::EventPage, document::EventDocument};

use super::{enc, ok, public::EventCard, render, see_other};
use crate::{
    ctx::{csrf_matches, CsrfForm, Ctx, FieldError, PageResult, Problem},
    format,
};

pub struct MyEvent {
    pub card: EventCard,
    pub id: String,
    pub sold: i64,
    pub capacity: i64,
}

#[derive(Template)]
#[template(path = "organizer_events.html")]
struct MyEvents {
    ctx: Ctx,
    events: Vec<MyEvent>,
    /// The user has no organizer profile yet.
    not_organizer: bool,
}

pub async fn my_events(ctx: Ctx) -> PageResult {
    ctx.require_login()?;
    let page: Result<EventPage, Problem> = ctx.get("/api/v1/me/events?limit=100").await;
    let (events, not_organizer) = match page {
        Ok(page) => (page.items, false),
        Err(p) if p.status == 403 => (Vec::new(), true),
        Err(p) => return Err(ctx.fail(p)),
    };
    let events = events
        .iter()
        .map(|e| MyEvent {
            card: EventCard::new(&ctx, e),
            id: e.id.clone(),
            sold: e.ticketing.tickets_sold,
            capacity: e.ticketing.total_capacity,
        })
        .collect();
    Ok(ok(&MyEvents { ctx, events, not_organizer }))
}

/// One ticket type row of the form, as text.
#[derive(Default, Clone)]
pub struct TypeForm {
    pub id: String,
    pub name: String,
    pub price: String,
    pub currency: String,
    pub quantity: String,
    pub benefits: String,
    pub refundable: bool,
    pub from: String,
    pub until: String,
}

/// The event form's values as text, so a rejected form comes back as typed.
#[derive(Default, Clone)]
pub struct EventForm {
    pub slug: String,
    pub language: String,
    pub visibility: String,
    pub priority: String,
    pub title: String,
    pub summary: String,
    pub description: String,
    pub l10n_title: String,
    pub l10n_summary: String,
    pub l10n_description: String,
    pub category_id: String,
    pub category_name: String,
    pub tags: String,
    pub venue_type: String,
    pub venue_name: String,
    pub venue_address: String,
    pub venue_city: String,
    pub latitude: String,
    pub longitude: String,
    pub online_url: String,
    pub timezone: String,
    pub start: String,
    pub end: String,
    pub booking_start: String,
    pub booking_end: String,
    pub max_per_user: String,
    pub capacity: String,
    pub types: Vec<TypeForm>,
    pub banner: String,
    pub gallery: String,
    pub video: String,
    pub checkin_method: String,
    pub access_control: String,
    pub terms: String,
}

fn opt_text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn opt_num(v: Option<f64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

impl EventForm {
    /// The other language, whose texts go to `localizations`.
    pub fn l10n_lang(&self) -> &'static str {
        if self.language == "km" {
            "en"
        } else {
            "km"
        }
    }

    fn new_event() -> EventForm {
        EventForm {
            language: "en".into(),
            visibility: "public".into(),
            priority: "0".into(),
            venue_type: "physical".into(),
            timezone: "Asia/Phnom_Penh".into(),
            max_per_user: "5".into(),
            checkin_method: "qr_code".into(),
            access_control: "jwt_rbac".into(),
            types: vec![TypeForm { currency: "USD".into(), refundable: true, ..Default::default() }],
            ..Default::default()
        }
    }

    fn from_document(e: &EventDocument) -> EventForm {
        let tz = &e.datetime.timezone;
        let other = if e.language == "km" { "en" } else { "km" };
        let l10n = e.localizations.get(other).cloned().unwrap_or_default();
        EventForm {
            slug: e.slug.clone(),
            language: e.language.clone(),
            visibility: e.visibility.clone(),
            priority: e.priority.to_string(),
            title: e.title.clone(),
            summary: e.summary.clone(),
            description: e.description.clone(),
            l10n_title: opt_text(&l10n.title),
            l10n_summary: opt_text(&l10n.summary),
            l10n_description: opt_text(&l10n.description),
            category_id: e.category.id.clone(),
            category_name: e.category.name.clone(),
            tags: e.tags.join(", "),
            venue_type: e.venue.kind.clone(),
            venue_name: opt_text(&e.venue.name),
            venue_address: opt_text(&e.venue.address),
            venue_city: opt_text(&e.venue.city),
            latitude: opt_num(e.venue.latitude),
            longitude: opt_num(e.venue.longitude),
            online_url: opt_text(&e.venue.online_url),
            timezone: tz.clone(),
            start: format::local_input(&e.datetime.start, tz),
            end: format::local_input(&e.datetime.end, tz),
            booking_start: format::local_input(&e.datetime.booking_start, tz),
            booking_end: format::local_input(&e.datetime.booking_end, tz),
            max_per_user: e.ticketing.max_tickets_per_user.to_string(),
            capacity: e.ticketing.total_capacity.to_string(),
            types: e
                .ticketing
                .types
                .iter()
                .map(|t| TypeForm {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    price: t.price.to_string(),
                    currency: t.currency.clone(),
                    quantity: t.quantity.to_string(),
                    benefits: t.benefits.join("\n"),
                    refundable: t.refundable,
                    from: t.available_from.as_deref().map(|f| format::local_input(f, tz)).unwrap_or_default(),
                    until: t.available_until.as_deref().map(|u| format::local_input(u, tz)).unwrap_or_default(),
                })
                .collect(),
            banner: opt_text(&e.media.banner),
            gallery: e.media.gallery.join("\n"),
            video: opt_text(&e.media.video),
            checkin_method: e.security.checkin_method.clone(),
            access_control: e.security.access_control.clone(),
            terms: opt_text(&e.security.terms_and_conditions),
        }
    }

    fn from_submission(f: &CsrfForm) -> EventForm {
        let s = |name: &str| f.get(name).to_owned();
        let col = |name: &str| f.all(name);
        let (ids, names, prices, currencies, quantities, benefits, refundable, froms, untils) = (
            col("tt_id"),
            col("tt_name"),
            col("tt_price"),
            col("tt_currency"),
            col("tt_quantity"),
            col("tt_benefits"),
            col("tt_refundable"),
            col("tt_from"),
            col("tt_until"),
        );
        let at = |v: &[&str], i: usize| v.get(i).copied().unwrap_or_default().to_owned();
        let types = (0..names.len().max(ids.len()))
            .map(|i| TypeForm {
                id: at(&ids, i),
                name: at(&names, i),
                price: at(&prices, i),
                currency: at(&currencies, i),
                quantity: at(&quantities, i),
                benefits: at(&benefits, i),
                refundable: at(&refundable, i) == "true",
                from: at(&froms, i),
                until: at(&untils, i),
            })
            // A row left blank is not a ticket type.
            .filter(|t| !(t.id.trim().is_empty() && t.name.trim().is_empty() && t.price.trim().is_empty()))
            .collect();
        EventForm {
            slug: s("slug"),
            language: s("language"),
            visibility: s("visibility"),
            priority: s("priority"),
            title: s("title"),
            summary: s("summary"),
            description: s("description"),
            l10n_title: s("l10n_title"),
            l10n_summary: s("l10n_summary"),
            l10n_description: s("l10n_description"),
            category_id: s("category_id"),
            category_name: s("category_name"),
            tags: s("tags"),
            venue_type: s("venue_type"),
            venue_name: s("venue_name"),
            venue_address: s("venue_address"),
            venue_city: s("venue_city"),
            latitude: s("latitude"),
            longitude: s("longitude"),
            online_url: s("online_url"),
            timezone: s("timezone"),
            start: s("start"),
            end: s("end"),
            booking_start: s("booking_start"),
            booking_end: s("booking_end"),
            max_per_user: s("max_per_user"),
            capacity: s("capacity"),
            types,
            banner: s("banner"),
            gallery: s("gallery"),
            video: s("video"),
            checkin_method: s("checkin_method"),
            access_control: s("access_control"),
            terms: s("terms"),
        }
    }

    /// Write the form into `doc` (a new document, or the stored one being edited, so fields the form
    /// does not show are kept). Values that are not even numbers or dates are reported here, named by
    /// the document path the API would use; everything else the API validates.
    fn apply_to(&self, doc: &mut Value, ctx: &Ctx) -> Vec<FieldError> {
        // Several closures below report errors; a RefCell lets them share the list.
        let errors = std::cell::RefCell::new(Vec::new());
        let bad = |field: &str, key: &str| {
            errors.borrow_mut().push(FieldError { field: field.to_owned(), message: ctx.t(key) });
        };
        let text = |v: &str| Value::String(v.trim().to_owned());
        let opt = |v: &str| if v.trim().is_empty() { Value::Null } else { text(v) };
        let lines = |v: &str| {
            Value::Array(v.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| Value::String(l.into())).collect())
        };
        let tz = self.timezone.trim();
        let tz_ok = jiff::tz::TimeZone::get(tz).is_ok();
        if !tz_ok {
            bad("datetime.timezone", "form-bad-timezone");
        }
        let instant = |field: &str, v: &str, required: bool| -> Value {
            if v.trim().is_empty() && !required {
                return Value::Null;
            }
            if !tz_ok {
                // Reported once, on the time zone.
                return Value::Null;
            }
            match format::from_local_input(v, tz) {
                Some(s) => Value::String(s),
                None => {
                    bad(field, "form-bad-datetime");
                    Value::Null
                }
            }
        };
        let start = instant("datetime.start", &self.start, true);
        let end = instant("datetime.end", &self.end, true);
        let booking_start = instant("datetime.booking_start", &self.booking_start, true);
        let booking_end = instant("datetime.booking_end", &self.booking_end, true);
        let mut types = Vec::new();
        for (i, t) in self.types.iter().enumerate() {
            let from = instant(&format!("ticketing.types[{i}].available_from"), &t.from, false);
            let until = instant(&format!("ticketing.types[{i}].available_until"), &t.until, false);
            types.push((t, from, until));
        }
        let duration = match (start.as_str(), end.as_str()) {
            (Some(s), Some(e)) => match (s.parse::<jiff::Timestamp>(), e.parse::<jiff::Timestamp>()) {
                (Ok(s), Ok(e)) => (e.as_second() - s.as_second()) / 60,
                _ => 0,
            },
            _ => 0,
        };
        let number = |field: &str, v: &str| -> Value {
            match v.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => json!(n),
                _ => {
                    bad(field, "form-bad-number");
                    Value::Null
                }
            }
        };
        let integer = |field: &str, v: &str| -> Value {
            match v.trim().parse::<i64>() {
                Ok(n) => json!(n),
                _ => {
                    bad(field, "form-bad-number");
                    Value::Null
                }
            }
        };
        let priority = integer("priority", &self.priority);
        let max_per_user = integer("ticketing.max_tickets_per_user", &self.max_per_user);
        let capacity = integer("ticketing.total_capacity", &self.capacity);
        let coordinate = |field: &str, v: &str| {
            if v.trim().is_empty() {
                return Value::Null;
            }
            number(field, v)
        };
        let type_values: Vec<Value> = types
            .iter()
            .enumerate()
            .map(|(i, (t, from, until))| {
                json!({
                    "id": t.id.trim(),
                    "name": t.name.trim(),
                    "price": number(&format!("ticketing.types[{i}].price"), &t.price),
                    "currency": t.currency.trim().to_uppercase(),
                    "quantity": integer(&format!("ticketing.types[{i}].quantity"), &t.quantity),
                    "benefits": lines(&t.benefits),
                    "refundable": t.refundable,
                    "available_from": from,
                    "available_until": until,
                })
            })
            .collect();
        let other = self.l10n_lang();
        let mut localizations = doc.get("localizations").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
        if let Some(map) = localizations.as_object_mut() {
            map.remove(&self.language);
            if [&self.l10n_title, &self.l10n_summary, &self.l10n_description].iter().all(|v| v.trim().is_empty()) {
                map.remove(other);
            } else {
                map.insert(
                    other.to_owned(),
                    json!({
                        "title": opt(&self.l10n_title), "summary": opt(&self.l10n_summary),
                        "description": opt(&self.l10n_description),
                    }),
                );
            }
        }
        let tags: Vec<Value> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| Value::String(t.to_lowercase()))
            .collect();
        let sold = doc.pointer("/ticketing/tickets_sold").cloned().unwrap_or(json!(0));
        let changes = json!({
            "slug": text(&self.slug),
            "language": text(&self.language),
            "visibility": text(&self.visibility),
            "priority": priority,
            "localizations": localizations,
            "title": text(&self.title),
            "summary": text(&self.summary),
            "description": text(&self.description),
            "category": { "id": text(&self.category_id), "name": text(&self.category_name) },
            "tags": tags,
            "venue": {
                "type": text(&self.venue_type), "name": opt(&self.venue_name), "address": opt(&self.venue_address),
                "city": opt(&self.venue_city), "latitude": coordinate("venue.latitude", &self.latitude),
                "longitude": coordinate("venue.longitude", &self.longitude), "online_url": opt(&self.online_url),
            },
            "datetime": {
                "timezone": tz, "start": start, "end": end, "duration_minutes": duration,
                "booking_start": booking_start, "booking_end": booking_end,
            },
            "ticketing": {
                "max_tickets_per_user": max_per_user, "total_capacity": capacity, "tickets_sold": sold,
                "types": type_values,
            },
            "media": { "banner": opt(&self.banner), "gallery": lines(&self.gallery), "video": opt(&self.video) },
            "security": {
                "checkin_method": text(&self.checkin_method), "access_control": text(&self.access_control),
                "terms_and_conditions": opt(&self.terms),
            },
        });
        if let (Some(doc), Some(changes)) = (doc.as_object_mut(), changes.as_object()) {
            for (k, v) in changes {
                doc.insert(k.clone(), v.clone());
            }
        }
        errors.into_inner()
    }
}

#[derive(Template)]
#[template(path = "event_form.html")]
struct EventFormPage {
    ctx: Ctx,
    /// `None` for a new event.
    event_id: Option<String>,
    form: EventForm,
    problem: Option<Problem>,
    nonce: String,
}

impl EventFormPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.problem.as_ref().and_then(|p| p.field(field))
    }

    fn type_error(&self, i: &usize) -> Option<&str> {
        self.error(&format!("ticketing.types[{i}]"))
    }

    /// Errors the form has no place for (shown at the top).
    fn other_errors(&self) -> Vec<String> {
        let Some(p) = &self.problem else { return Vec::new() };
        if p.errors.is_empty() {
            return vec![p.message()];
        }
        p.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect()
    }
}

fn form_page(ctx: Ctx, event_id: Option<String>, mut form: EventForm, problem: Option<Problem>) -> Response {
    if form.types.is_empty() {
        // Always a row to fill in (and for "add a ticket type" to copy).
        form.types.push(TypeForm { currency: "USD".into(), refundable: true, ..Default::default() });
    }
    let status = problem
        .as_ref()
        .map_or(StatusCode::OK, |p| StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY));
    let page = EventFormPage { ctx, event_id, form, problem, nonce: uuid::Uuid::new_v4().to_string() };
    render(&page, status)
}

pub async fn new_form(ctx: Ctx) -> PageResult {
    ctx.require_login()?;
    Ok(form_page(ctx, None, EventForm::new_event(), None))
}

/// The stored document of an event the user manages (not translated).
async fn managed_document(ctx: &Ctx, id: &str) -> Result<Value, Problem> {
    let doc: Value = ctx.get(&format!("/api/v1/events/{}", enc(id))).await?;
    let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
    // Only managers may see sales; this also stops edits of other organizers' events early.
    let _: Sales = ctx.get(&format!("/api/v1/events/{}/sales", enc(id))).await?;
    Ok(doc)
}

pub async fn edit_form(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    ctx.require_login()?;
    let doc = managed_document(&ctx, &id).await.map_err(|p| ctx.fail(p))?;
    let doc: EventDocument = serde_json::from_value(doc).map_err(|e| ctx.fail(Problem::internal(e)))?;
    let id = doc.id.clone();
    Ok(form_page(ctx, Some(id), EventForm::from_document(&doc), None))
}

async fn save(form: CsrfForm, event_id: Option<String>) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    let fields = EventForm::from_submission(&form);
    let mut doc = match &event_id {
        Some(id) => managed_document(&ctx, id).await.map_err(|p| ctx.fail(p))?,
        None => json!({
            "id": "", "status": "draft", "organizer": { "id": "", "name": "", "contact_email": "" },
            "analytics": { "views": 0, "clicks": 0, "shares": { "facebook": 0, "telegram": 0, "twitter": 0 },
                           "rating": { "average": null, "count": 0 } },
            "audit": { "created_at": "", "updated_at": "", "created_by": "", "updated_by": "" },
        }),
    };
    let local_errors = fields.apply_to(&mut doc, &ctx);
    if !local_errors.is_empty() {
        let problem = Problem { status: 422, errors: local_errors, ..Default::default() };
        return Ok(form_page(ctx, event_id, fields, Some(problem)));
    }
    let saved: Result<EventDocument, Problem> = match &event_id {
        Some(id) => ctx.send(Method::PUT, &format!("/api/v1/events/{}", enc(id)), &doc, None).await,
        None => ctx.send(Method::POST, "/api/v1/events", &doc, None).await,
    };
    match saved {
        Ok(event) => Ok(see_other(&format!("/organizer/events/{}", enc(&event.id)))),
        Err(p) if p.status == 401 || p.status >= 500 => Err(ctx.fail(p)),
        Err(p) => Ok(form_page(ctx, event_id, fields, Some(p))),
    }
}

pub async fn create(form: CsrfForm) -> PageResult {
    save(form, None).await
}

pub async fn update(Path(id): Path<String>, form: CsrfForm) -> PageResult {
    save(form, Some(id)).await
}

pub async fn lifecycle(Path(id): Path<String>, form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    let action = form.get("action");
    if !matches!(action, "publish" | "unpublish" | "cancel" | "complete") {
        return Err(ctx.fail(Problem { status: 400, detail: Some(ctx.t("error-bad-request")), ..Default::default() }));
    }
    let path = format!("/api/v1/events/{}/{action}", enc(&id));
    let _: Value = ctx.send(Method::POST, &path, &json!({}), None).await.map_err(|p| ctx.fail(p))?;
    let back = if form.get("back") == "admin" {
        "/admin/events".to_owned()
    } else {
        format!("/organizer/events/{}", enc(&id))
    };
    Ok(see_other(&back))
}

/// One line of the sales chart: cumulative tickets of a type per day.
pub struct ChartLine {
    pub name: String,
    pub color: &'static str,
    /// SVG polyline points.
    pub points: String,
    pub total: i64,
}

pub struct Chart {
    pub lines: Vec<ChartLine>,
    pub max: i64,
    pub first_day: String,
    pub last_day: String,
}

const COLORS: [&str; 6] = ["#4f46e5", "#0d9488", "#d97706", "#db2777", "#2563eb", "#65a30d"];
const CHART_W: f64 = 600.0;
const CHART_H: f64 = 200.0;

/// Every calendar day from the first to the last day with sales, so days without sales keep the
/// lines flat.
fn calendar(sales: &Sales) -> Vec<String> {
    let dates: Vec<jiff::civil::Date> = sales.daily.iter().filter_map(|d| d.date.parse().ok()).collect();
    let (Some(first), Some(last)) = (dates.iter().min(), dates.iter().max()) else { return Vec::new() };
    first.series(jiff::Span::new().days(1)).take_while(|d| d <= last).map(|d| d.to_string()).collect()
}

/// Cumulative tickets sold per type, day by day, drawn as SVG polylines.
fn chart(sales: &Sales) -> Option<Chart> {
    let days = calendar(sales);
    if days.is_empty() {
        return None;
    }
    let mut per_day: HashMap<(&str, &str), i64> = HashMap::new();
    for d in &sales.daily {
        *per_day.entry((d.date.as_str(), d.ticket_type_id.as_str())).or_default() += d.tickets;
    }
    let cumulative: Vec<(String, Vec<i64>)> = sales
        .types
        .iter()
        .map(|t| {
            let mut total = 0;
            let series = days
                .iter()
                .map(|day| {
                    total += per_day.get(&(day.as_str(), t.ticket_type_id.as_str())).copied().unwrap_or(0);
                    total
                })
                .collect();
            (t.name.clone(), series)
        })
        .collect();
    let max = cumulative.iter().flat_map(|(_, s)| s.iter().copied()).max().unwrap_or(0).max(1);
    let step = if days.len() > 1 { CHART_W / (days.len() - 1) as f64 } else { 0.0 };
    let lines = cumulative
        .into_iter()
        .enumerate()
        .map(|(i, (name, series))| {
            let mut points: Vec<String> = series
                .iter()
                .enumerate()
                .map(|(x, y)| format!("{:.1},{:.1}", x as f64 * step, CHART_H - *y as f64 / max as f64 * CHART_H))
                .collect();
            if points.len() == 1 {
                // One day of sales: draw it as a flat line across.
                points.push(points[0].replacen("0.0,", &format!("{CHART_W:.1},"), 1));
            }
            ChartLine {
                name,
                color: COLORS[i % COLORS.len()],
                points: points.join(" "),
                total: *series.last().unwrap_or(&0),
            }
        })
        .collect();
    Some(Chart { lines, max, first_day: days[0].clone(), last_day: days[days.len() - 1].clone() })
}

pub struct TypeLine {
    pub name: String,
    pub sold: i64,
    pub quantity: i64,
    pub held: i64,
    pub checked_in: i64,
    pub revenue: String,
    /// Sold share of the quantity, 0–100, for the bar.
    pub percent: i64,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    ctx: Ctx,
    event: EventDocument,
    /// Door staff e-mails, one per line.
    staff: String,
    types: Vec<TypeLine>,
    sold: i64,
    revenue: String,
    checked_in: i64,
    chart: Option<Chart>,
    attendees: AttendeeList,
}

impl Dashboard {
    fn scanner_path(&self) -> String {
        format!("/organizer/events/{}/scan", enc(&self.event.id))
    }

    fn banner(&self) -> Option<&str> {
        self.event.media.banner.as_deref().filter(|b| super::public::is_image_url(b))
    }
}

pub async fn dashboard(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    ctx.require_login()?;
    let event: EventDocument = ctx.get(&format!("/api/v1/events/{}", enc(&id))).await.map_err(|p| ctx.fail(p))?;
    let sales: Sales = ctx.get(&format!("/api/v1/events/{}/sales", enc(&event.id))).await.map_err(|p| ctx.fail(p))?;
    let attendees: AttendeeList =
        ctx.get(&format!("/api/v1/events/{}/attendees", enc(&event.id))).await.map_err(|p| ctx.fail(p))?;
    let staff: Staff = ctx.get(&format!("/api/v1/events/{}/staff", enc(&event.id))).await.map_err(|p| ctx.fail(p))?;
    let types = sales
        .types
        .iter()
        .map(|t| TypeLine {
            name: t.name.clone(),
            sold: t.sold,
            quantity: t.quantity,
            held: t.held,
            checked_in: t.checked_in,
            revenue: format::money(t.revenue, &t.currency),
            percent: if t.quantity > 0 { (t.sold * 100 / t.quantity).clamp(0, 100) } else { 0 },
        })
        .collect();
    Ok(ok(&Dashboard {
        revenue: if sales.revenue.is_empty() {
            format::money(0.0, "USD")
        } else {
            sales.revenue.iter().map(|m| format::money(m.amount, &m.currency)).collect::<Vec<_>>().join(" + ")
        },
        sold: sales.sold,
        checked_in: sales.checked_in,
        chart: chart(&sales),
        staff: staff.emails.join("\n"),
        types,
        attendees,
        event,
        ctx,
    }))
}

/// Door staff: the e-mails of people who may scan this event's tickets.
pub async fn set_staff(Path(id): Path<String>, form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    let emails: Vec<&str> = form.get("emails").split([',', '\n']).map(str::trim).filter(|e| !e.is_empty()).collect();
    let path = format!("/api/v1/events/{}/staff", enc(&id));
    let _: Value = ctx.send(Method::PUT, &path, &json!({ "emails": emails }), None).await.map_err(|p| ctx.fail(p))?;
    Ok(see_other(&format!("/organizer/events/{}#staff-h", enc(&id))))
}

/// Pass an API answer (CSV, JSON) through as it came.
fn passthrough(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Response {
    let mut res = (status, body).into_response();
    for name in [header::CONTENT_TYPE, header::CONTENT_DISPOSITION] {
        if let Some(v) = headers.get(&name) {
            res.headers_mut().insert(name, v.clone());
        }
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    res
}

pub async fn attendees_csv(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    ctx.require_login()?;
    let (status, headers, body) = ctx
        .call(Method::GET, &format!("/api/v1/events/{}/attendees.csv", enc(&id)), None, None)
        .await
        .map_err(|p| ctx.fail(p))?;
    if !status.is_success() {
        let mut p: Problem = serde_json::from_slice(&body).unwrap_or_default();
        p.status = status.as_u16();
        return Err(ctx.fail(p));
    }
    let mut res = passthrough(status, &headers, body);
    let name = format!(
        "attachment; filename=\"attendees-{}.csv\"",
        id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "")
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[derive(Template)]
#[template(path = "scanner.html")]
struct Scanner {
    ctx: Ctx,
    event: EventDocument,
}

pub async fn scanner(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    ctx.require_login()?;
    let event: EventDocument =
        ctx.get(&format!("/api/v1/events/{}?lang={}", enc(&id), ctx.lang.code())).await.map_err(|p| ctx.fail(p))?;
    Ok(ok(&Scanner { ctx, event }))
}

/// Script calls (scanner, banner upload) carry the CSRF token in `X-CSRF-Token`: the 403 answer
/// when it is missing or wrong.
fn csrf_refusal(ctx: &Ctx, headers: &HeaderMap) -> Option<Response> {
    let given = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if csrf_matches(&ctx.csrf, given) {
        return None;
    }
    let body = json!({ "status": 403, "code": "csrf", "title": ctx.t("error-csrf") });
    Some((StatusCode::FORBIDDEN, axum::Json(body)).into_response())
}

/// A new banner image, sent by the dashboard's file picker (raw bytes, CSRF token in a header).
/// The sign-in and the token are checked before a byte of the body is read, and at most
/// `MAX_BANNER_BYTES` are read.
pub async fn upload_banner(ctx: Ctx, Path(id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    if let Some(refused) = csrf_refusal(&ctx, &headers) {
        return refused;
    }
    if ctx.me.is_none() {
        let body = json!({ "status": 401, "code": "unauthorized", "title": ctx.t("error-sign-in-first") });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let limit = ctx.max_banner_bytes();
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        let mib = format!("{:.1}", limit as f64 / (1024.0 * 1024.0));
        let body =
            json!({ "status": 413, "code": "payload_too_large", "title": ctx.ta("error-image-too-large", &mib) });
        return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response();
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match ctx.upload(Method::PUT, &format!("/api/v1/events/{}/banner", enc(&id)), body, content_type).await {
        Ok((status, headers, body)) => passthrough(status, &headers, body),
        Err(p) => (StatusCode::INTERNAL_SERVER_ERROR, p.message()).into_response(),
    }
}

/// The scanner's JSON calls: checked like a form (CSRF token in `X-CSRF-Token`), then passed to the
/// API as the signed-in user, whose rights the API checks.
async fn scanner_call(ctx: Ctx, headers: HeaderMap, path: String, body: Bytes) -> Response {
    if let Some(refused) = csrf_refusal(&ctx, &headers) {
        return refused;
    }
    match ctx.call(Method::POST, &path, Some(body.to_vec()), None).await {
        Ok((status, headers, body)) => passthrough(status, &headers, body),
        Err(p) => (StatusCode::INTERNAL_SERVER_ERROR, p.message()).into_response(),
    }
}

pub async fn check_in(ctx: Ctx, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    scanner_call(ctx, headers, format!("/api/v1/events/{}/checkins", enc(&id)), body).await
}

pub async fn check_in_batch(ctx: Ctx, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    scanner_call(ctx, headers, format!("/api/v1/events/{}/checkins/batch", enc(&id)), body).await
}

#[cfg(test)]
mod tests {
    use tg_bookings::api::{DailySalesView, Sales, TypeSalesView};

    use super::chart;

    fn day(date: &str, type_id: &str, tickets: i64) -> DailySalesView {
        DailySalesView { date: date.into(), ticket_type_id: type_id.into(), tickets }
    }

    fn kind(id: &str) -> TypeSalesView {
        TypeSalesView {
            ticket_type_id: id.into(),
            name: id.to_uppercase(),
            currency: "USD".into(),
            quantity: 100,
            sold: 0,
            held: 0,
            revenue: 0.0,
            checked_in: 0,
        }
    }

    #[test]
    fn the_chart_runs_over_every_day_and_lines_stay_flat_on_days_without_sales() {
        let sales = Sales {
            types: vec![kind("vip"), kind("std")],
            sold: 0,
            revenue: vec![],
            checked_in: 0,
            // Across a month end: Jan 30, then nothing until Feb 2.
            daily: vec![day("2027-01-30", "vip", 2), day("2027-01-30", "std", 1), day("2027-02-02", "vip", 2)],
        };
        let chart = chart(&sales).unwrap();
        assert_eq!((chart.first_day.as_str(), chart.last_day.as_str()), ("2027-01-30", "2027-02-02"));
        assert_eq!(chart.max, 4);
        // Four days, 200 px apart; VIP climbs only on the last day, Standard stays at 1 all along.
        assert_eq!(chart.lines[0].points, "0.0,100.0 200.0,100.0 400.0,100.0 600.0,0.0");
        assert_eq!(chart.lines[1].points, "0.0,150.0 200.0,150.0 400.0,150.0 600.0,150.0");
        assert_eq!((chart.lines[0].total, chart.lines[1].total), (4, 1));
        assert!(super::chart(&Sales { daily: vec![], ..sales }).is_none());
    }
}
