//! Bookings: holds, idempotency, limits, expiry, confirmation, cancellation, tickets and check-in,
//! and the never-oversell invariant under real concurrency and random operation sequences.

use std::sync::Arc;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tg_bookings::{model::BookingRequest, model::ItemRequest, BookingsService, ConfirmError};

use crate::{
    events::{demo_organizer, event_doc},
    helpers::{assert_problem, next_event, spawn_app, spawn_with, TestApp},
};

fn iso(offset_days: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * offset_days);
    t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// An event on sale now: `vip` (refundable) has `vip` tickets, `standard` (not refundable) 100.
pub fn bookable_doc(n: usize, vip: i64) -> Value {
    let mut d = event_doc(n);
    d["datetime"]["booking_start"] = json!(iso(-1));
    d["datetime"]["booking_end"] = json!(iso(30));
    d["datetime"]["start"] = json!(iso(40));
    d["datetime"]["end"] = json!(iso(41));
    d["ticketing"]["types"] = json!([
        {"id": "vip", "name": "VIP", "price": 100.0, "currency": "USD", "quantity": vip, "benefits": [], "refundable": true,
         "available_from": iso(-1), "available_until": iso(30)},
        {"id": "standard", "name": "Standard", "price": 25.5, "currency": "USD", "quantity": 100, "benefits": [], "refundable": false,
         "available_from": null, "available_until": null},
        {"id": "later", "name": "Later", "price": 10.0, "currency": "USD", "quantity": 100, "benefits": [], "refundable": true,
         "available_from": iso(10), "available_until": iso(20)},
        {"id": "riel", "name": "Riel", "price": 40000.0, "currency": "KHR", "quantity": 100, "benefits": [], "refundable": true,
         "available_from": null, "available_until": null}
    ]);
    d["ticketing"]["total_capacity"] = json!(vip + 300);
    d
}

/// An organizer's bookable event `evt-t{n}`; returns the organizer's token.
pub(crate) async fn bookable_event(app: &TestApp, n: usize, vip: i64) -> String {
    let (_, organizer) = demo_organizer(app).await;
    let res = app.post("/api/v1/events", Some(&organizer), &bookable_doc(n, vip)).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    organizer
}

pub(crate) async fn book(app: &TestApp, token: &str, key: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/bookings"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub(crate) fn items(event: &str, list: &[(&str, i64)]) -> Value {
    json!({"event_id": event, "items": list.iter().map(|(t, q)| json!({"ticket_type_id": t, "quantity": q})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn hold_pay_ticket_and_scan() {
    let app = spawn_app().await;
    let organizer = bookable_event(&app, 1, 10).await;
    let (user_id, buyer) = app.user_with(&[]).await;
    let mut bus = app.app.bus.subscribe();

    let body = items("test-event-1", &[("vip", 2), ("standard", 1)]);
    let res = book(&app, &buyer, "k-1", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let held: Value = res.json().await.unwrap();
    assert_eq!(held["status"], "pending_payment");
    assert_eq!(held["event_id"], "evt-t1", "slug resolved to the id");
    assert_eq!(held["total_amount"], 225.5);
    assert_eq!(held["currency"], "USD");
    assert_eq!(held["user_id"], user_id.as_str());
    next_event(&mut bus, "booking.held").await;

    // Same key, same body: the same booking. Same key, other body: refused.
    let res = book(&app, &buyer, "k-1", &body).await;
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.json::<Value>().await.unwrap()["id"], held["id"]);
    let other = items("test-event-1", &[("vip", 1)]);
    assert_problem(book(&app, &buyer, "k-1", &other).await, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
        .await;
    let res = app.post("/api/v1/bookings", Some(&buyer), &body).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "idempotency_key_required").await;

    // Someone else cannot see it.
    let (_, stranger) = app.user_with(&[]).await;
    let id = held["id"].as_str().unwrap();
    assert_problem(
        app.get(&format!("/api/v1/bookings/{id}"), Some(&stranger)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.post(&format!("/api/v1/bookings/{id}/cancel"), Some(&stranger), &json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Payment confirms it (the payments service calls this).
    let confirmed = app.app.bookings.confirm(id).await.unwrap();
    assert_eq!(confirmed.status, "confirmed");
    assert_eq!(app.app.bookings.confirm(id).await.unwrap().status, "confirmed", "confirming twice changes nothing");
    next_event(&mut bus, "booking.confirmed").await;
    let event: Value = app.get("/api/v1/events/evt-t1", None).await.json().await.unwrap();
    assert_eq!(event["ticketing"]["tickets_sold"], 3);

    let tickets: Value = app.get("/api/v1/me/tickets", Some(&buyer)).await.json().await.unwrap();
    let tickets = tickets["items"].as_array().unwrap().clone();
    assert_eq!(tickets.len(), 3);
    let codes: std::collections::HashSet<&str> = tickets.iter().map(|t| t["code"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), 3, "codes are unique");
    assert!(app.get("/api/v1/me/tickets", Some(&stranger)).await.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .is_empty());
    let qr_path = tickets[0]["qr_svg"].as_str().unwrap();
    let qr = app.get(qr_path, Some(&buyer)).await;
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().starts_with("<?xml"));
    assert_eq!(app.get(qr_path, Some(&stranger)).await.status(), StatusCode::NOT_FOUND);

    // The token verifies offline with the event's published key.
    let jwks: Value = app.get("/api/v1/events/evt-t1/ticket-keys", None).await.json().await.unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    let token = tickets[0]["token"].as_str().unwrap();
    let claims =
        jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &v).unwrap().claims;
    assert_eq!(claims["tid"], tickets[0]["id"]);
    assert_eq!(claims["eid"], "evt-t1");

    // At the door.
    let scan = |token: &str, nonce: &str, gate: &str, who: &str| {
        let (app, body) = (&app, json!({"token": token, "nonce": nonce, "gate": gate}));
        let who = who.to_owned();
        async move { app.post("/api/v1/events/evt-t1/checkins", Some(&who), &body).await }
    };
    let first: Value = scan(token, "n1", "A", &organizer).await.json().await.unwrap();
    assert_eq!(first["result"], "valid");
    let msg = next_event(&mut bus, "ticket.checked_in").await;
    assert_eq!(msg.payload["gate"], "A");
    // A retry with the same nonce gets the same answer; a new scan of the same ticket does not.
    let retry: Value = scan(token, "n1", "A", &organizer).await.json().await.unwrap();
    assert_eq!(retry, first);
    let again: Value = scan(token, "n2", "B", &organizer).await.json().await.unwrap();
    assert_eq!(again["result"], "already_checked_in");
    assert_eq!(again["first_gate"], "A");
    assert!(again["first_checked_in_at"].is_string());
    // Forged: payload changed, signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged_claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    forged_claims["tid"] = tickets[1]["id"].clone();
    let forged = format!("{}.{}.{}", parts[0], B64.encode(forged_claims.to_string()), parts[2]);
    assert_eq!(scan(&forged, "n3", "A", &organizer).await.json::<Value>().await.unwrap()["result"], "forged");
    assert_eq!(scan("garbage", "n4", "A", &organizer).await.json::<Value>().await.unwrap()["result"], "forged");
    // Only the organizer, admins and door staff scan.
    assert_problem(scan(token, "n5", "A", &buyer).await, StatusCode::FORBIDDEN, "forbidden").await;
    let mut bus = app.app.bus.subscribe();
    app.register("door@example.com", "correct horse battery", "Door").await;
    let verification = crate::helpers::account_mail(&mut bus, "verify_email").await;
    let door =
        app.login("door@example.com", "correct horse battery").await["access_token"].as_str().unwrap().to_owned();
    assert_problem(
        scan(tickets[1]["token"].as_str().unwrap(), "n6", "B", &door).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let res = app
        .send(Method::PUT, "/api/v1/events/evt-t1/staff", Some(&organizer), &json!({"emails": ["Door@example.com"]}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Appointed by address, but the address is not proven yet: whoever registered it first gains nothing.
    assert_problem(
        scan(tickets[1]["token"].as_str().unwrap(), "n6", "B", &door).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let link = crate::helpers::link_token(&verification);
    assert_eq!(
        app.post("/api/v1/auth/verify-email", None, &json!({"token": link})).await.status(),
        StatusCode::NO_CONTENT
    );
    let door =
        app.login("door@example.com", "correct horse battery").await["access_token"].as_str().unwrap().to_owned();
    // A ticket whose QR will not scan is let in by its printed code, typed as it comes.
    let code = tickets[1]["code"].as_str().unwrap();
    let typed = format!(" {}-{} ", code[..5].to_lowercase(), &code[5..]);
    let by_code = |code: &str, nonce: &str| {
        let (app, door, body) = (&app, door.clone(), json!({"code": code, "nonce": nonce}));
        async move { app.post("/api/v1/events/evt-t1/checkins", Some(&door), &body).await }
    };
    let res: Value = by_code(&typed, "n6").await.json().await.unwrap();
    assert_eq!((res["result"].as_str(), res["code"].as_str()), (Some("valid"), Some(code)));
    assert_eq!(res["ticket_id"], tickets[1]["id"]);
    let res: Value = by_code(code, "n7").await.json().await.unwrap();
    assert_eq!(res["result"], "already_checked_in");
    assert_eq!(by_code("ZZZZZ-ZZZZZ", "n8").await.json::<Value>().await.unwrap()["result"], "unknown_code");
    assert_problem(by_code("'; --", "n9").await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // At another event of the same organizer, this event's ticket is refused and nothing of it is told.
    let res = app.post("/api/v1/events", Some(&organizer), &bookable_doc(2, 10)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let elsewhere = |body: Value| {
        let (app, organizer) = (&app, organizer.clone());
        async move { app.post("/api/v1/events/evt-t2/checkins", Some(&organizer), &body).await }
    };
    let res: Value = elsewhere(json!({"token": token, "nonce": "x1"})).await.json().await.unwrap();
    assert_eq!(
        res,
        json!({"result": "wrong_event", "ticket_id": null, "ticket_type_id": null, "code": null,
        "first_checked_in_at": null, "first_gate": null})
    );
    let res: Value = elsewhere(json!({"code": code, "nonce": "x2"})).await.json().await.unwrap();
    assert_eq!(res["result"], "unknown_code", "codes are looked up among this event's tickets only");
    // Token and code together, or neither, is refused; so is a batch with one such scan, and none of it counts.
    for body in [json!({"nonce": "n10"}), json!({"nonce": "n10", "code": code, "token": token})] {
        let res = app.post("/api/v1/events/evt-t1/checkins", Some(&door), &body).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    let bad_batch = json!({"scans": [{"token": tickets[2]["token"], "nonce": "bad-1"}, {"nonce": "bad-2"}]});
    let res = app.post("/api/v1/events/evt-t1/checkins/batch", Some(&door), &bad_batch).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // A nonce used at another event refuses the batch too (x1 was evt-t2's).
    let reused = json!({"scans": [{"token": tickets[2]["token"], "nonce": "bad-3"}, {"token": token, "nonce": "x1"}]});
    let res = app.post("/api/v1/events/evt-t1/checkins/batch", Some(&door), &reused).await;
    assert_problem(res, StatusCode::CONFLICT, "nonce_reused").await;
    // Neither batch applied its valid first scan: the ticket is still unscanned (the upload below finds it so).
    // Offline scans uploaded later, with their own times.
    let batch = json!({"scans": [
        {"token": tickets[2]["token"], "nonce": "off-1", "gate": "C", "scanned_at": iso(0)},
        {"token": tickets[2]["token"], "nonce": "off-2", "gate": "C"}
    ]});
    let res: Value = app.post("/api/v1/events/evt-t1/checkins/batch", Some(&door), &batch).await.json().await.unwrap();
    assert_eq!(res["results"][0]["result"], "valid");
    assert_eq!(res["results"][1]["result"], "already_checked_in");

    // Attendee list and CSV.
    let list: Value = app.get("/api/v1/events/evt-t1/attendees", Some(&organizer)).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    assert_eq!(list["checked_in"], 3);
    assert_problem(app.get("/api/v1/events/evt-t1/attendees", Some(&buyer)).await, StatusCode::FORBIDDEN, "forbidden")
        .await;
    let csv = app.get("/api/v1/events/evt-t1/attendees.csv", Some(&organizer)).await;
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.starts_with("ticket_id,code,ticket_type,name,email,status,checked_in_at,gate"));
}

#[tokio::test]
async fn refused_holds_name_the_reason_and_change_nothing() {
    let app = spawn_app().await;
    let organizer = bookable_event(&app, 1, 3).await;
    let (_, buyer) = app.user_with(&[]).await;
    let cases = [
        (items("evt-t1", &[("nope", 1)]), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (items("evt-t1", &[("vip", 0)]), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (items("evt-t1", &[]), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (items("evt-t1", &[("vip", 1), ("vip", 1)]), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (items("evt-t1", &[("vip", 1), ("riel", 1)]), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (items("no-such-event", &[("vip", 1)]), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (items("evt-t1", &[("later", 1)]), StatusCode::CONFLICT, "not_on_sale"),
        (items("evt-t1", &[("vip", 4)]), StatusCode::CONFLICT, "sold_out"),
        (items("evt-t1", &[("standard", 6)]), StatusCode::CONFLICT, "max_tickets_per_user"),
    ];
    for (i, (body, status, code)) in cases.into_iter().enumerate() {
        assert_problem(book(&app, &buyer, &format!("bad-{i}"), &body).await, status, code).await;
    }
    // A draft, and an event whose booking has not opened, cannot be booked.
    let mut draft = bookable_doc(2, 5);
    draft["status"] = json!("draft");
    app.post("/api/v1/events", Some(&organizer), &draft).await;
    assert_problem(
        book(&app, &buyer, "d", &items("evt-t2", &[("vip", 1)])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let mut later = bookable_doc(3, 5);
    later["datetime"]["booking_start"] = json!(iso(5));
    later["ticketing"]["types"][0]["available_from"] = json!(iso(5));
    later["ticketing"]["types"][2]["available_from"] = json!(iso(10));
    assert_eq!(app.post("/api/v1/events", Some(&organizer), &later).await.status(), StatusCode::CREATED);
    assert_problem(
        book(&app, &buyer, "l", &items("evt-t3", &[("standard", 1)])).await,
        StatusCode::CONFLICT,
        "booking_closed",
    )
    .await;

    let counts = app.app.bookings.audit_counts("evt-t1").await.unwrap();
    assert!(counts.types.iter().all(|t| t.2 == 0 && t.3 == 0), "nothing held: {counts:?}");

    // The per-user limit counts held and confirmed tickets: 3 + 2 = 5 is fine, one more is not.
    assert_eq!(book(&app, &buyer, "a", &items("evt-t1", &[("standard", 3)])).await.status(), StatusCode::CREATED);
    let b: Value = book(&app, &buyer, "b", &items("evt-t1", &[("vip", 2)])).await.json().await.unwrap();
    app.app.bookings.confirm(b["id"].as_str().unwrap()).await.unwrap();
    assert_problem(
        book(&app, &buyer, "c", &items("evt-t1", &[("standard", 1)])).await,
        StatusCode::CONFLICT,
        "max_tickets_per_user",
    )
    .await;
}

#[tokio::test]
async fn holds_expire_and_late_payments_are_rechecked() {
    let app = spawn_with(|s| s.hold_ttl_secs = Some(1)).await;
    bookable_event(&app, 1, 2).await;
    let (_, a) = app.user_with(&[]).await;
    let (_, b) = app.user_with(&[]).await;
    let mut bus = app.app.bus.subscribe();
    let hold_a: Value = book(&app, &a, "a", &items("evt-t1", &[("vip", 2)])).await.json().await.unwrap();
    assert_problem(book(&app, &b, "b", &items("evt-t1", &[("vip", 1)])).await, StatusCode::CONFLICT, "sold_out").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.app.bookings.expire_due().await.unwrap();
    let expired = app.app.bookings.booking_view(hold_a["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(expired.status, "expired");
    let message = next_event(&mut bus, "booking.expired").await;
    assert_eq!(message.payload["booking_id"], hold_a["id"]);
    assert_eq!(message.payload["status"], "expired");

    // The seats are back: B holds one. A pays late for two; only one is left, so A is refused.
    let hold_b: Value = book(&app, &b, "b2", &items("evt-t1", &[("vip", 1)])).await.json().await.unwrap();
    let late = app.app.bookings.confirm(hold_a["id"].as_str().unwrap()).await;
    assert_eq!(late.unwrap_err(), ConfirmError::SeatsGone);
    let c = app.app.bookings.audit_counts("evt-t1").await.unwrap();
    let vip = c.types.iter().find(|t| t.0 == "vip").unwrap();
    assert_eq!((vip.2, vip.3), (0, 1), "sold 0, held 1 (B's)");

    // B's hold expires unswept; B pays late and seats are free, so B is confirmed after all.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let ok = app.app.bookings.confirm(hold_b["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(ok.status, "confirmed");
    let c = app.app.bookings.audit_counts("evt-t1").await.unwrap();
    let vip = c.types.iter().find(|t| t.0 == "vip").unwrap();
    assert_eq!((vip.2, vip.3, vip.4, vip.5), (1, 0, 1, 0));
    assert_eq!(c.user_count_mismatches, 0);
}

#[tokio::test]
async fn cancellation_rules() {
    let app = spawn_app().await;
    bookable_event(&app, 1, 5).await;
    let (_, buyer) = app.user_with(&[]).await;
    let id_of = |v: &Value| v["id"].as_str().unwrap().to_owned();

    let hold: Value = book(&app, &buyer, "h", &items("evt-t1", &[("vip", 2)])).await.json().await.unwrap();
    let res: Value = app
        .post(&format!("/api/v1/bookings/{}/cancel", id_of(&hold)), Some(&buyer), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["status"], "cancelled");
    assert_problem(
        app.post(&format!("/api/v1/bookings/{}/cancel", id_of(&hold)), Some(&buyer), &json!({})).await,
        StatusCode::CONFLICT,
        "not_cancellable",
    )
    .await;

    let refundable: Value = book(&app, &buyer, "r", &items("evt-t1", &[("vip", 2)])).await.json().await.unwrap();
    app.app.bookings.confirm(&id_of(&refundable)).await.unwrap();
    let res = app.post(&format!("/api/v1/bookings/{}/cancel", id_of(&refundable)), Some(&buyer), &json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tickets: Value = app.get("/api/v1/me/tickets", Some(&buyer)).await.json().await.unwrap();
    assert!(tickets["items"].as_array().unwrap().iter().all(|t| t["status"] == "cancelled"));

    let fixed: Value = book(&app, &buyer, "f", &items("evt-t1", &[("standard", 1)])).await.json().await.unwrap();
    app.app.bookings.confirm(&id_of(&fixed)).await.unwrap();
    assert_problem(
        app.post(&format!("/api/v1/bookings/{}/cancel", id_of(&fixed)), Some(&buyer), &json!({})).await,
        StatusCode::CONFLICT,
        "not_refundable",
    )
    .await;
    // A cancelled booking cannot be paid any more.
    assert_eq!(app.app.bookings.confirm(&id_of(&hold)).await.unwrap_err(), ConfirmError::Cancelled);

    let c = app.app.bookings.audit_counts("evt-t1").await.unwrap();
    for t in &c.types {
        assert_eq!((t.2, t.3), (t.4, t.5), "counters equal rows for {}", t.0);
    }
    let vip = c.types.iter().find(|t| t.0 == "vip").unwrap();
    assert_eq!((vip.2, vip.3), (0, 0), "all VIP seats returned");
    // Ratings are for attendees: the buyer with a valid ticket may rate; a stranger may not.
    let (_, stranger) = app.user_with(&[]).await;
    let stars = json!({"stars": 4});
    let res = app.send(Method::PUT, "/api/v1/events/evt-t1/rating", Some(&buyer), &stars).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.send(Method::PUT, "/api/v1/events/evt-t1/rating", Some(&stranger), &stars).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

fn request(event: &str, ticket_type: &str, quantity: i64) -> BookingRequest {
    BookingRequest { event_id: event.into(), items: vec![ItemRequest { ticket_type_id: ticket_type.into(), quantity }] }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_buyers_never_oversell() {
    let app = spawn_with(|s| s.database_max_connections = Some(20)).await;
    bookable_event(&app, 1, 50).await;
    let svc: Arc<BookingsService> = app.app.bookings.clone();
    // 300 buyers at once for 50 VIP seats, one each.
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.hold(&format!("buyer-{i}"), "k", &request("evt-t1", "vip", 1)).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code, "sold_out", "{e}"),
        }
    }
    assert_eq!(ok, 50, "exactly the stock is held");

    // One greedy user firing 40 parallel requests of 2 (limit 5) ends with at most 5 tickets.
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.hold("greedy", &format!("g{i}"), &request("evt-t1", "standard", 2)).await })
        })
        .collect();
    let granted = futures_count(tasks).await;
    assert_eq!(granted, 2, "two holds of 2 fit under 5, a third does not");

    let c = svc.audit_counts("evt-t1").await.unwrap();
    for (t, quantity, sold, held, rows_sold, rows_held) in &c.types {
        assert!(sold + held <= *quantity, "{t} oversold");
        assert_eq!((*sold, *held), (*rows_sold, *rows_held), "{t}: counters equal rows");
    }
    assert!(c.totals.1 + c.totals.2 <= c.totals.0);
    assert_eq!(c.user_count_mismatches, 0);
    assert_eq!(c.max_per_user, 4);
}

async fn futures_count(
    tasks: Vec<tokio::task::JoinHandle<tg_platform::ApiResult<(tg_bookings::model::BookingView, bool)>>>,
) -> usize {
    let mut n = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => n += 1,
            Err(e) => assert_eq!(e.code, "max_tickets_per_user", "{e}"),
        }
    }
    n
}

#[derive(Debug, Clone)]
enum Op {
    Hold {
        user: u8,
        vip: bool,
        quantity: i64,
    },
    Confirm(usize),
    Cancel(usize),
    /// The hold's time runs out and the sweeper runs.
    Expire(usize),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0u8..4, any::<bool>(), 1i64..=3).prop_map(|(user, vip, quantity)| Op::Hold { user, vip, quantity }),
        2 => (0usize..16).prop_map(Op::Confirm),
        1 => (0usize..16).prop_map(Op::Cancel),
        1 => (0usize..16).prop_map(Op::Expire),
    ]
}

/// Random sequences of hold / confirm / cancel / expire (confirmations of expired holds included)
/// keep `sold + held ≤ quantity`, the per-user limit, and the counters equal to the booking rows.
#[test]
fn random_operation_sequences_keep_the_invariants() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = rt.block_on(async {
        let app = spawn_app().await;
        demo_organizer(&app).await;
        app
    });
    let organizer_user = rt.block_on(app.app.users.seed_demo()).unwrap();
    let organizer = tg_platform::auth::Principal::user(
        organizer_user,
        vec![tg_platform::auth::Role::User, tg_platform::auth::Role::Organizer],
    );
    let case = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    runner
        .run(&proptest::collection::vec(op(), 1..30), |ops| {
            let n = 1000 + case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            rt.block_on(run_ops(&app, &organizer, n, &ops));
            Ok(())
        })
        .unwrap();
}

async fn run_ops(app: &TestApp, organizer: &tg_platform::auth::Principal, n: usize, ops: &[Op]) {
    let mut doc = bookable_doc(n, 4);
    doc["ticketing"]["types"] = json!([doc["ticketing"]["types"][0].clone(), doc["ticketing"]["types"][1].clone()]);
    doc["ticketing"]["types"][1]["quantity"] = json!(6);
    doc["ticketing"]["total_capacity"] = json!(10);
    let event = app.app.events.create(organizer, serde_json::from_value(doc).unwrap()).await.unwrap();
    let svc = &app.app.bookings;
    let mut bookings: Vec<String> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Hold { user, vip, quantity } => {
                let req = request(&event.id, if *vip { "vip" } else { "standard" }, *quantity);
                if let Ok((b, _)) = svc.hold(&format!("u{user}"), &format!("op{i}"), &req).await {
                    bookings.push(b.id);
                }
            }
            Op::Confirm(k) if !bookings.is_empty() => {
                let _ = svc.confirm(&bookings[k % bookings.len()]).await;
            }
            Op::Cancel(k) if !bookings.is_empty() => {
                let id = &bookings[k % bookings.len()];
                let owner = svc.booking_view(id).await.unwrap().user_id;
                let p = tg_platform::auth::Principal::user(owner, vec![]);
                let _ = svc.cancel(&p, id).await;
            }
            Op::Expire(k) if !bookings.is_empty() => {
                let id = bookings[k % bookings.len()].clone();
                tg_platform::with_db!(&app.app.db, pool => sqlx::query(
                    "UPDATE bookings_bookings SET expires_at = 0 WHERE id = $1 AND status = 'pending_payment'")
                    .bind(&id).execute(pool).await.map(|_| ()))
                .unwrap();
                svc.expire_due().await.unwrap();
            }
            _ => {}
        }
        let c = svc.audit_counts(&event.id).await.unwrap();
        for (t, quantity, sold, held, rows_sold, rows_held) in &c.types {
            assert!(sold + held <= *quantity, "after {op:?}: {t} oversold in {c:?}");
            assert_eq!((sold, held), (rows_sold, rows_held), "after {op:?}: {t} counters differ from rows");
        }
        let (capacity, sold, held) = c.totals;
        assert!(sold + held <= capacity);
        assert_eq!(sold, c.types.iter().map(|t| t.2).sum::<i64>());
        assert_eq!(held, c.types.iter().map(|t| t.3).sum::<i64>());
        assert_eq!(c.user_count_mismatches, 0, "after {op:?}");
        assert!(c.max_per_user <= 5, "after {op:?}: a user holds more than the limit");
    }
}

#[tokio::test]
async fn only_ticket_holders_and_the_organizer_see_an_online_events_link() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    let mut doc = bookable_doc(5, 10);
    doc["venue"]["type"] = json!("hybrid");
    doc["venue"]["online_url"] = json!("https://stream.example.com/room-5");
    assert_eq!(app.post("/api/v1/events", Some(&organizer), &doc).await.status(), StatusCode::CREATED);
    let link = |token: Option<String>| {
        let app = &app;
        async move {
            let doc: Value = app.get("/api/v1/events/evt-t5", token.as_deref()).await.json().await.unwrap();
            doc["venue"]["online_url"].clone()
        }
    };
    let (_, buyer) = app.user_with(&[]).await;
    assert_eq!(link(None).await, Value::Null);
    assert_eq!(link(Some(buyer.clone())).await, Value::Null, "signed in, but no ticket");
    let listed: Value = app.get("/api/v1/events", Some(&organizer)).await.json().await.unwrap();
    let listed = listed["items"].as_array().unwrap();
    assert!(listed.iter().any(|e| e["id"] == "evt-t5") && listed.iter().all(|e| e["venue"]["online_url"].is_null()));
    assert_eq!(link(Some(organizer.clone())).await, "https://stream.example.com/room-5");

    let hold: Value = book(&app, &buyer, "o1", &items("evt-t5", &[("vip", 1)])).await.json().await.unwrap();
    assert_eq!(link(Some(buyer.clone())).await, Value::Null, "a hold is not a ticket");
    app.app.bookings.confirm(hold["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(link(Some(buyer.clone())).await, "https://stream.example.com/room-5");
    let tickets: Value = app.get("/api/v1/me/tickets", Some(&buyer)).await.json().await.unwrap();
    let qr = tickets["items"][0]["qr_svg"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&qr, Some(&buyer)).await.status(), StatusCode::OK);

    // Cancelled (and refunded): the link and the QR code are gone again.
    let cancel = format!("/api/v1/bookings/{}/cancel", hold["id"].as_str().unwrap());
    assert_eq!(app.post(&cancel, Some(&buyer), &json!({})).await.status(), StatusCode::OK);
    assert_eq!(link(Some(buyer.clone())).await, Value::Null);
    assert_eq!(app.get(&qr, Some(&buyer)).await.status(), StatusCode::NOT_FOUND);
}
