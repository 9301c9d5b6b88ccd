//! Booking, paying and tickets.

use std::collections::BTreeMap;

use askama::Template;
use axum::{extract::Path, http::Method};
use serde_json::json;
use tg_bookings::{
    api::{BookingList, TicketList},
    model::{BookingView, TicketView},
};
use tg_events::document::EventDocument;
use tg_payments::{api::PaymentList, PaymentView};

use super::{enc, ok, public::EventPage, render, see_other};
use crate::{
    ctx::{CsrfForm, Ctx, PageResult, Problem},
    format,
};

pub async fn book(Path(id): Path<String>, form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    let mut items = Vec::new();
    for (name, value) in form.fields() {
        let Some(type_id) = name.strip_prefix("qty_") else { continue };
        let quantity: i64 = value.trim().parse().unwrap_or(0);
        if quantity > 0 {
            items.push(json!({ "ticket_type_id": type_id, "quantity": quantity }));
        }
    }
    let problem = if items.is_empty() {
        Problem { status: 422, detail: Some(ctx.t("book-choose-tickets")), ..Default::default() }
    } else {
        let body = json!({ "event_id": form.get("event_id"), "items": items });
        let key = format!("web-{}", form.get("nonce"));
        match ctx.send::<BookingView>(Method::POST, "/api/v1/bookings", &body, Some(&key)).await {
            Ok(booking) => return Ok(see_other(&format!("/bookings/{}", enc(&booking.id)))),
            Err(p) if p.status == 401 || p.status >= 500 => return Err(ctx.fail(p)),
            Err(p) => p,
        }
    };
    // Show the event again with what went wrong next to the tickets.
    let status =
        axum::http::StatusCode::from_u16(problem.status).unwrap_or(axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    let message = problem.errors.first().map(|e| e.message.clone()).unwrap_or_else(|| problem.message());
    let page = EventPage::load(ctx.clone(), &id, Some(message)).await.map_err(|p| ctx.fail(p))?;
    Ok(render(&page, status))
}

pub struct ItemRow {
    pub name: String,
    pub quantity: i64,
    pub subtotal: String,
}

/// A ticket of a confirmed booking, as offered for refund.
pub struct TicketRow {
    pub id: String,
    pub code: String,
    pub type_name: String,
    pub price: String,
    /// Why it is not offered for refund (a text key); empty when it is: valid, not yet scanned at
    /// the door, and of a refundable type.
    pub why_not: &'static str,
}

impl TicketRow {
    pub fn refundable(&self) -> bool {
        self.why_not.is_empty()
    }
}

#[derive(Template)]
#[template(path = "booking.html")]
struct BookingPage {
    ctx: Ctx,
    booking: BookingView,
    event: EventDocument,
    items: Vec<ItemRow>,
    tickets: Vec<TicketRow>,
    total: String,
    refunded: Option<String>,
    providers: Vec<String>,
    all_refundable: bool,
    nonce: String,
    refund_error: Option<String>,
}

impl BookingPage {
    fn any_refundable(&self) -> bool {
        self.tickets.iter().any(TicketRow::refundable)
    }

    async fn load(ctx: Ctx, id: &str, refund_error: Option<String>) -> Result<BookingPage, Problem> {
        let (booking, event) = own_booking(&ctx, id).await?;
        let item = |type_id: &str| booking.items.iter().find(|i| i.ticket_type_id == type_id);
        let items = booking
            .items
            .iter()
            .map(|i| ItemRow {
                name: type_name(&event, &i.ticket_type_id),
                quantity: i.quantity,
                subtotal: format::money(i.unit_price * i.quantity as f64, &booking.currency),
            })
            .collect();
        let (mut tickets, mut refunded) = (Vec::new(), None);
        if booking.status == "confirmed" || booking.status == "cancelled" {
            let mine: TicketList = ctx.get("/api/v1/me/tickets").await?;
            tickets = mine
                .items
                .into_iter()
                .filter(|t| t.booking_id == booking.id)
                .map(|t| {
                    let why_not = if t.status != "valid" {
                        "cancelled"
                    } else if t.checked_in_at.is_some() {
                        "checked-in"
                    } else if !item(&t.ticket_type_id).is_some_and(|i| i.refundable) {
                        "ticket-not-refundable"
                    } else {
                        ""
                    };
                    TicketRow {
                        why_not,
                        type_name: type_name(&event, &t.ticket_type_id),
                        price: item(&t.ticket_type_id)
                            .map(|i| format::money(i.unit_price, &booking.currency))
                            .unwrap_or_default(),
                        id: t.id,
                        code: t.code,
                    }
                })
                .collect();
            let payments: PaymentList = ctx.get(&format!("/api/v1/payments?booking_id={}", enc(&booking.id))).await?;
            // All refunds of the booking (a duplicate payment refunded in full counts too), per currency.
            let mut per_currency: BTreeMap<&str, f64> = BTreeMap::new();
            for p in payments.items.iter().filter(|p| p.refunded_amount > 0.0) {
                *per_currency.entry(p.currency.as_str()).or_default() += p.refunded_amount;
            }
            refunded = (!per_currency.is_empty())
                .then(|| per_currency.iter().map(|(c, a)| format::money(*a, c)).collect::<Vec<_>>().join(" + "));
        }
        Ok(BookingPage {
            total: format::money(booking.total_amount, &booking.currency),
            all_refundable: booking.items.iter().all(|i| i.refundable),
            items,
            tickets,
            refunded,
            providers: ctx.web().config.payment_providers.clone(),
            nonce: uuid::Uuid::new_v4().to_string(),
            refund_error,
            booking,
            event,
            ctx,
        })
    }
}

async fn own_booking(ctx: &Ctx, id: &str) -> Result<(BookingView, EventDocument), Problem> {
    let booking: BookingView = ctx.get(&format!("/api/v1/bookings/{}", enc(id))).await?;
    let event: EventDocument =
        ctx.get(&format!("/api/v1/events/{}?lang={}", enc(&booking.event_id), ctx.lang.code())).await?;
    Ok((booking, event))
}

fn type_name(event: &EventDocument, type_id: &str) -> String {
    event.ticketing.types.iter().find(|t| t.id == type_id).map_or_else(|| type_id.to_owned(), |t| t.name.clone())
}

pub async fn booking(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    ctx.require_login()?;
    let page = BookingPage::load(ctx.clone(), &id, None).await.map_err(|p| ctx.fail(p))?;
    Ok(ok(&page))
}

/// Refund the chosen tickets of a confirmed booking through its payment; the booking page then
/// shows them cancelled and the amount refunded. Refused choices come back next to the list.
pub async fn refund(Path(id): Path<String>, form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    // Someone else's booking is not found, before anything else is looked at.
    own_booking(&ctx, &id).await.map_err(|p| ctx.fail(p))?;
    let chosen: Vec<&str> = form.all("ticket");
    let problem = if chosen.is_empty() {
        Problem { status: 422, detail: Some(ctx.t("refund-choose-tickets")), ..Default::default() }
    } else {
        let payments: PaymentList =
            ctx.get(&format!("/api/v1/payments?booking_id={}", enc(&id))).await.map_err(|p| ctx.fail(p))?;
        let paid = payments.items.iter().find(|p| matches!(p.status.as_str(), "succeeded" | "partially_refunded"));
        match paid {
            None => Problem { status: 409, detail: Some(ctx.t("refund-not-paid")), ..Default::default() },
            Some(payment) => {
                let path = format!("/api/v1/payments/{}/refund", enc(&payment.id));
                match ctx.send::<serde_json::Value>(Method::POST, &path, &json!({ "tickets": chosen }), None).await {
                    Ok(_) => return Ok(see_other(&format!("/bookings/{}", enc(&id)))),
                    Err(p) if p.status == 401 || p.status == 404 || p.status >= 500 => return Err(ctx.fail(p)),
                    Err(p) => p,
                }
            }
        }
    };
    let status = axum::http::StatusCode::from_u16(problem.status).unwrap_or(axum::http::StatusCode::CONFLICT);
    let page = BookingPage::load(ctx.clone(), &id, Some(problem.message())).await.map_err(|p| ctx.fail(p))?;
    Ok(render(&page, status))
}

pub async fn pay(Path(id): Path<String>, form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    let provider = form.get("provider");
    let key = format!("web-{}-{provider}", form.get("nonce"));
    let body = json!({ "booking_id": id, "provider": provider });
    let payment: PaymentView =
        ctx.send(Method::POST, "/api/v1/payments", &body, Some(&key)).await.map_err(|p| ctx.fail(p))?;
    match payment.next_action.get("type").and_then(|t| t.as_str()) {
        Some("redirect") => {
            let url = payment.next_action.get("url").and_then(|u| u.as_str()).unwrap_or("/");
            Ok(see_other(url))
        }
        _ => Ok(see_other(&format!("/payments/{}", enc(&payment.id)))),
    }
}

pub async fn cancel(Path(id): Path<String>, form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    ctx.require_login()?;
    let _: BookingView = ctx
        .send(Method::POST, &format!("/api/v1/bookings/{}/cancel", enc(&id)), &json!({}), None)
        .await
        .map_err(|p| ctx.fail(p))?;
    Ok(see_other(&format!("/bookings/{}", enc(&id))))
}

#[derive(Template)]
#[template(path = "payment.html")]
struct PaymentPage {
    ctx: Ctx,
    payment: PaymentView,
    amount: String,
    qr_svg: Option<String>,
}

pub async fn payment(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    ctx.require_login()?;
    let payment: PaymentView = ctx.get(&format!("/api/v1/payments/{}", enc(&id))).await.map_err(|p| ctx.fail(p))?;
    // The QR code is an SVG our own payments service drew; it holds no user text.
    let qr_svg = payment.next_action.get("qr_svg").and_then(|q| q.as_str()).map(str::to_owned);
    Ok(ok(&PaymentPage { amount: format::money(payment.amount, &payment.currency), qr_svg, payment, ctx }))
}

pub struct TicketCard {
    pub ticket: TicketView,
    pub type_name: String,
    /// Inline SVG, so the ticket shows offline once the page was opened.
    pub qr_svg: Option<String>,
}

pub struct EventTickets {
    pub title: String,
    pub href: String,
    pub when: String,
    pub place: String,
    pub tickets: Vec<TicketCard>,
}

#[derive(Template)]
#[template(path = "tickets.html")]
struct TicketsPage {
    ctx: Ctx,
    events: Vec<EventTickets>,
    bookings: Vec<BookingView>,
}

pub async fn tickets(ctx: Ctx) -> PageResult {
    ctx.require_login()?;
    let tickets: TicketList = ctx.get("/api/v1/me/tickets").await.map_err(|p| ctx.fail(p))?;
    let bookings: BookingList = ctx.get("/api/v1/me/bookings").await.map_err(|p| ctx.fail(p))?;
    let mut by_event: BTreeMap<String, Vec<TicketView>> = BTreeMap::new();
    for t in tickets.items {
        by_event.entry(t.event_id.clone()).or_default().push(t);
    }
    let mut events = Vec::new();
    for (event_id, tickets) in by_event {
        let event: Result<EventDocument, Problem> =
            ctx.get(&format!("/api/v1/events/{}?lang={}", enc(&event_id), ctx.lang.code())).await;
        let Ok(event) = event else { continue };
        let mut cards = Vec::new();
        for ticket in tickets {
            let qr_svg = if ticket.status == "valid" {
                let (status, _, body) = ctx
                    .call(Method::GET, &format!("/api/v1/me/tickets/{}/qr.svg", enc(&ticket.id)), None, None)
                    .await
                    .map_err(|p| ctx.fail(p))?;
                status.is_success().then(|| String::from_utf8_lossy(&body).into_owned())
            } else {
                None
            };
            cards.push(TicketCard { type_name: type_name(&event, &ticket.ticket_type_id), ticket, qr_svg });
        }
        events.push(EventTickets {
            title: event.title.clone(),
            href: format!("/events/{}", enc(&event.slug)),
            when: format::datetime(&event.datetime.start, &event.datetime.timezone, ctx.lang),
            place: event.venue.name.clone().or(event.venue.city.clone()).unwrap_or_default(),
            tickets: cards,
        });
    }
    let bookings = bookings.items.into_iter().filter(|b| b.status == "pending_payment").collect();
    Ok(ok(&TicketsPage { ctx, events, bookings }))
}
