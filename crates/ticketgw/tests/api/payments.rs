//! Payments: the sandbox pay page and its signed webhooks, KHQR payloads checked with the National
//! Bank of Cambodia's SDK and confirmed by polling a server speaking Bakong's API, a Stripe-style
//! checkout against a server speaking Stripe's wire format, late payments and refunds.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode as AxumStatus},
    routing::post,
    Json, Router,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tg_payments::providers::signature;

use crate::{
    bookings::{book, bookable_event, items},
    helpers::{assert_problem, next_event, serve, spawn_app, spawn_with, TestApp},
};

async fn pay(app: &TestApp, token: &str, key: &str, booking_id: &str, provider: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/payments"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"booking_id": booking_id, "provider": provider}))
        .send()
        .await
        .unwrap()
}

/// A buyer with a hold of `list` on `evt-t1`: (token, booking).
async fn buyer_with_hold(app: &TestApp, list: &[(&str, i64)]) -> (String, Value) {
    let (_, token) = app.user_with(&[]).await;
    let res = book(app, &token, &uuid::Uuid::new_v4().to_string(), &items("evt-t1", list)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    (token, res.json().await.unwrap())
}

async fn booking_status(app: &TestApp, id: &str) -> String {
    app.app.bookings.find(id).await.unwrap().unwrap().status
}

async fn payment(app: &TestApp, token: &str, id: &str) -> Value {
    let res = app.get(&format!("/api/v1/payments/{id}"), Some(token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The pay page's form: (csrf token).
async fn sandbox_page(app: &TestApp, url: &str) -> String {
    let res = app.http.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("Pay successfully"), "{html}");
    let start = html.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    html[start..start + 64].to_owned()
}

#[tokio::test]
async fn sandbox_payment_confirms_the_booking_and_webhooks_are_verified_once() {
    let app = spawn_app().await;
    bookable_event(&app, 1, 10).await;
    let (buyer, hold) = buyer_with_hold(&app, &[("vip", 2)]).await;
    let booking_id = hold["id"].as_str().unwrap();
    let mut bus = app.app.bus.subscribe();

    // Amount and currency come from the booking; the same key replays the same payment.
    let res = pay(&app, &buyer, "p-1", booking_id, "sandbox").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let started: Value = res.json().await.unwrap();
    assert_eq!((started["amount"].as_f64(), started["currency"].as_str()), (Some(200.0), Some("USD")));
    assert_eq!(started["status"], "pending");
    let replay = pay(&app, &buyer, "p-1", booking_id, "sandbox").await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], started["id"]);
    let (_, stranger) = app.user_with(&[]).await;
    assert_problem(
        pay(&app, &stranger, "p-2", booking_id, "sandbox").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_problem(
        pay(&app, &buyer, "p-3", booking_id, "paypal").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // The hosted page: a wrong CSRF token is refused; "Pay successfully" confirms the booking.
    let url = started["next_action"]["url"].as_str().unwrap();
    let csrf = sandbox_page(&app, url).await;
    let forged = app.http.post(url).form(&[("action", "succeed"), ("csrf", &"0".repeat(64))]).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let res = app.http.post(url).form(&[("action", "succeed"), ("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let paid = next_event(&mut bus, "payment.succeeded").await;
    assert_eq!(paid.payload["booking_id"], booking_id);
    next_event(&mut bus, "booking.confirmed").await;
    assert_eq!(booking_status(&app, booking_id).await, "confirmed");
    let tickets: Value = app.get("/api/v1/me/tickets", Some(&buyer)).await.json().await.unwrap();
    assert_eq!(tickets["items"].as_array().map(Vec::len), Some(2), "{tickets}");
    let pid = started["id"].as_str().unwrap();
    assert_eq!(payment(&app, &buyer, pid).await["status"], "succeeded");
    assert_problem(pay(&app, &buyer, "p-4", booking_id, "sandbox").await, StatusCode::CONFLICT, "not_payable").await;
    assert_problem(
        app.get(&format!("/api/v1/payments/{pid}"), Some(&stranger)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Webhooks: a replay changes nothing; a bad signature or an old timestamp is refused; all stored.
    let now = jiff::Timestamp::now().as_second();
    let (sig, body) =
        app.app.payments.sandbox().expect("sandbox offered").webhook_for("payment.failed", pid, 20000, "USD", now);
    let send = |sig: String, body: Vec<u8>| {
        app.http.post(app.url("/api/v1/payments/webhooks/sandbox")).header("sandbox-signature", sig).body(body).send()
    };
    let first: Value = send(sig.clone(), body.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(first["result"], "unchanged", "a failure after success changes nothing");
    let again: Value = send(sig.clone(), body.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(again["result"], "duplicate");
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_problem(send(sig.clone(), tampered).await.unwrap(), StatusCode::BAD_REQUEST, "bad_signature").await;
    let (old_sig, old_body) = app.app.payments.sandbox().expect("sandbox offered").webhook_for(
        "payment.succeeded",
        pid,
        20000,
        "USD",
        now - 600,
    );
    assert_problem(send(old_sig, old_body).await.unwrap(), StatusCode::BAD_REQUEST, "bad_signature").await;
    let stored: Vec<(bool, String)> = tg_platform::with_db!(&app.app.db, pool => sqlx::query_as(
        "SELECT verified, outcome FROM payments_webhooks ORDER BY received_at").fetch_all(pool).await)
    .unwrap();
    assert_eq!(stored.iter().filter(|(v, _)| !v).count(), 2, "{stored:?}");
    assert_eq!(stored.iter().filter(|(v, _)| *v).count(), 2, "{stored:?}");
    assert_eq!(booking_status(&app, booking_id).await, "confirmed");
}

#[tokio::test]
async fn a_second_successful_payment_of_a_booking_is_refunded_in_full() {
    let app = spawn_app().await;
    bookable_event(&app, 1, 10).await;
    let (buyer, hold) = buyer_with_hold(&app, &[("vip", 1)]).await;
    let booking = hold["id"].as_str().unwrap();
    let first: Value = pay(&app, &buyer, "twice-1", booking, "sandbox").await.json().await.unwrap();
    let second: Value = pay(&app, &buyer, "twice-2", booking, "sandbox").await.json().await.unwrap();
    assert_ne!(first["id"], second["id"]);
    for p in [&first, &second] {
        let res = app.sandbox_reports("payment.succeeded", p["id"].as_str().unwrap(), 10000).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(payment(&app, &buyer, first["id"].as_str().unwrap()).await["status"], "succeeded");
    let pid2 = second["id"].as_str().unwrap().to_owned();
    eventually("the duplicate's refund", || async { payment(&app, &buyer, &pid2).await["status"] == "refunded" }).await;
    let refunds: Vec<(String, String)> = tg_platform::with_db!(&app.app.db, pool => sqlx::query_as(
        "SELECT reason, status FROM payments_refunds WHERE payment_id = $1").bind(&pid2).fetch_all(pool).await)
    .unwrap();
    assert_eq!(refunds, vec![("duplicate_payment".to_owned(), "succeeded".to_owned())]);
    let id = booking.to_owned();
    eventually("confirmation", || async { booking_status(&app, &id).await == "confirmed" }).await;

    // NUL in text is bad input, not a server error.
    assert_problem(pay(&app, &buyer, "nul", "\u{0}", "sandbox").await, StatusCode::BAD_REQUEST, "nul_character").await;
    // In a path: PostgreSQL refuses it (400); SQLite simply finds nothing (404). Never a 500.
    let status = app.get("/api/v1/payments/%00", Some(&buyer)).await.status();
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{status}");
}

#[tokio::test]
async fn a_late_payment_whose_seats_are_gone_is_refunded() {
    let app = spawn_with(|s| s.hold_ttl_secs = Some(1)).await;
    bookable_event(&app, 1, 2).await;
    let (a, hold_a) = buyer_with_hold(&app, &[("vip", 2)]).await;
    let res: Value = pay(&app, &a, "late", hold_a["id"].as_str().unwrap(), "sandbox").await.json().await.unwrap();
    let pid = res["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.app.bookings.expire_due().await.unwrap();
    let (_, hold_b) = buyer_with_hold(&app, &[("vip", 1)]).await;
    let mut bus = app.app.bus.subscribe();

    // A pays after all: the money comes back, B keeps the seat.
    let res = app.sandbox_reports("payment.succeeded", &pid, 20000).await;
    assert_eq!(res.status(), StatusCode::OK);
    let refunded = next_event(&mut bus, "payment.refunded").await;
    assert_eq!(refunded.payload["payment_id"], pid.as_str());
    assert_eq!(refunded.payload["refund_cents"], 20000);
    assert_eq!(payment(&app, &a, &pid).await["status"], "refunded");
    assert_eq!(booking_status(&app, hold_a["id"].as_str().unwrap()).await, "expired");
    assert_eq!(booking_status(&app, hold_b["id"].as_str().unwrap()).await, "pending_payment");
    let c = app.app.bookings.audit_counts("evt-t1").await.unwrap();
    let vip = c.types.iter().find(|t| t.0 == "vip").unwrap();
    assert_eq!((vip.2, vip.3), (0, 1));
}

/// Pay `hold` in the sandbox and wait for the confirmation; the payment id.
pub(crate) async fn paid(app: &TestApp, token: &str, hold: &Value) -> String {
    let res: Value = pay(app, token, &uuid::Uuid::new_v4().to_string(), hold["id"].as_str().unwrap(), "sandbox")
        .await
        .json()
        .await
        .unwrap();
    let pid = res["id"].as_str().unwrap().to_owned();
    let cents = res["amount"].as_f64().map(|a| (a * 100.0).round() as i64).unwrap();
    app.sandbox_reports("payment.succeeded", &pid, cents).await;
    let id = hold["id"].as_str().unwrap().to_owned();
    eventually("confirmation", || async { booking_status(app, &id).await == "confirmed" }).await;
    pid
}

#[tokio::test]
async fn refunds_per_ticket_and_in_full_release_the_seats() {
    let app = spawn_app().await;
    let organizer = bookable_event(&app, 1, 10).await;
    let (buyer, hold) = buyer_with_hold(&app, &[("vip", 3)]).await;
    let pid = paid(&app, &buyer, &hold).await;
    let tickets: Value = app.get("/api/v1/me/tickets", Some(&buyer)).await.json().await.unwrap();
    let first = tickets["items"][0]["id"].as_str().unwrap().to_owned();
    let sold = |app: &TestApp| {
        let app = app.app.bookings.clone();
        async move { app.audit_counts("evt-t1").await.unwrap().types.iter().find(|t| t.0 == "vip").unwrap().2 }
    };
    assert_eq!(sold(&app).await, 3);

    // The holder finds the booking's payment; nobody else sees it.
    let (_, stranger) = app.user_with(&[]).await;
    let by_booking = format!("/api/v1/payments?booking_id={}", hold["id"].as_str().unwrap());
    let mine: Value = app.get(&by_booking, Some(&buyer)).await.json().await.unwrap();
    assert_eq!(mine["items"][0]["id"], pid.as_str());
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let theirs: Value = app.get(&by_booking, Some(&stranger)).await.json().await.unwrap();
    assert_eq!(theirs["items"], json!([]));
    assert!(app.get("/api/v1/payments", Some(&buyer)).await.status().is_client_error(), "booking_id is required");

    // Strangers cannot refund; the holder refunds one ticket: its seat is free and 100 goes back.
    let url = format!("/api/v1/payments/{pid}/refund");
    assert_problem(app.post(&url, Some(&stranger), &json!({})).await, StatusCode::NOT_FOUND, "not_found").await;
    let (_, other_organizer) = app.user_with(&[tg_platform::auth::Role::Organizer]).await;
    assert_problem(app.post(&url, Some(&other_organizer), &json!({})).await, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.post(&url, Some(&buyer), &json!({"tickets": [first]})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap()["refund_amount"], 100.0);
    assert_eq!(sold(&app).await, 2);
    eventually("partial refund", || async { payment(&app, &buyer, &pid).await["refunded_amount"] == 100.0 }).await;
    assert_eq!(payment(&app, &buyer, &pid).await["status"], "partially_refunded");
    assert_problem(
        app.post(&url, Some(&buyer), &json!({"tickets": [first]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let second = tickets["items"][1]["id"].as_str().unwrap().to_owned();
    let twice = app.post(&url, Some(&buyer), &json!({"tickets": [second, second]})).await;
    assert_problem(twice, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(sold(&app).await, 2, "a refused request changes nothing");

    // A ticket used at the door is not refundable.
    let token = tickets["items"][1]["token"].as_str().unwrap();
    let scan =
        app.post("/api/v1/events/evt-t1/checkins", Some(&organizer), &json!({"token": token, "nonce": "door-1"})).await;
    assert_eq!(scan.json::<Value>().await.unwrap()["result"], "valid");
    assert_problem(
        app.post(&url, Some(&buyer), &json!({"tickets": [second]})).await,
        StatusCode::CONFLICT,
        "checked_in",
    )
    .await;

    // The organizer refunds the rest: only the ticket not used at the door can go back.
    assert_problem(app.post(&url, Some(&organizer), &json!({})).await, StatusCode::CONFLICT, "checked_in").await;
    let third = tickets["items"][2]["id"].as_str().unwrap().to_owned();
    let res = app.post(&url, Some(&organizer), &json!({"tickets": [third]})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap()["refund_amount"], 100.0);
    eventually("second refund", || async { payment(&app, &buyer, &pid).await["refunded_amount"] == 200.0 }).await;
    assert_eq!(sold(&app).await, 1);
    assert_eq!(booking_status(&app, hold["id"].as_str().unwrap()).await, "confirmed");
    // The refund is recorded at once and paid by the provider a moment later.
    let refunds = || async {
        let rows: Vec<(i64, String)> = tg_platform::with_db!(&app.app.db, pool => sqlx::query_as(
            "SELECT amount_cents, status FROM payments_refunds ORDER BY created_at").fetch_all(pool).await)
        .unwrap();
        rows
    };
    eventually("both refunds paid", || async { refunds().await.iter().all(|(_, s)| s == "succeeded") }).await;
    assert_eq!(refunds().await, vec![(10000, "succeeded".to_owned()), (10000, "succeeded".to_owned())]);

    // A whole booking refunded: cancelled, every seat back.
    let (buyer3, hold3) = buyer_with_hold(&app, &[("vip", 2)]).await;
    let pid3 = paid(&app, &buyer3, &hold3).await;
    let res = app.post(&format!("/api/v1/payments/{pid3}/refund"), Some(&buyer3), &json!({})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["refund_amount"], 200.0);
    eventually("full refund", || async { payment(&app, &buyer3, &pid3).await["status"] == "refunded" }).await;
    assert_eq!(sold(&app).await, 1);
    assert_eq!(booking_status(&app, hold3["id"].as_str().unwrap()).await, "cancelled");

    // Non-refundable tickets stay sold.
    let (buyer2, hold2) = buyer_with_hold(&app, &[("standard", 1)]).await;
    let pid2 = paid(&app, &buyer2, &hold2).await;
    let url2 = format!("/api/v1/payments/{pid2}/refund");
    assert_problem(app.post(&url2, Some(&stranger), &json!({})).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_problem(
        app.post(&format!("/api/v1/payments/{pid2}/refund"), Some(&buyer2), &json!({})).await,
        StatusCode::CONFLICT,
        "not_refundable",
    )
    .await;
}

/// Runs the National Bank of Cambodia's SDK on a payload: its JSON verdict.
fn khqr_verdict(payload: &str) -> Option<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/khqr");
    if !dir.join("node_modules/bakong-khqr").exists() {
        // CI installs it (`npm ci` in .ci/run) and sets TG_REQUIRE_KHQR_SDK.
        assert!(std::env::var_os("TG_REQUIRE_KHQR_SDK").is_none(), "bakong-khqr is not installed in {}", dir.display());
        eprintln!("SKIPPED: run `npm ci` in tests/khqr to check KHQR payloads with bakong-khqr");
        return None;
    }
    let out =
        std::process::Command::new("node").arg("verify.js").arg(payload).current_dir(&dir).output().expect("node");
    Some(serde_json::from_slice(&out.stdout).expect("verify.js prints JSON"))
}

/// A server speaking Bakong's `check_transaction_by_md5`; it knows the transactions put in `paid`.
#[derive(Clone, Default)]
struct FakeBakong {
    paid: Arc<Mutex<Vec<(String, f64, String)>>>,
    calls: Arc<Mutex<u32>>,
}

async fn bakong_check(
    State(b): State<FakeBakong>,
    headers: HeaderMap,
    Json(req): Json<Value>,
) -> (AxumStatus, Json<Value>) {
    *b.calls.lock().unwrap() += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer bakong-test-token") {
        return (
            AxumStatus::UNAUTHORIZED,
            Json(json!({"responseCode": 1, "responseMessage": "Unauthorized", "errorCode": 6, "data": null})),
        );
    }
    let md5 = req["md5"].as_str().unwrap_or_default();
    let found = b.paid.lock().unwrap().iter().find(|(m, _, _)| m == md5).cloned();
    let body = match found {
        Some((_, amount, currency)) => {
            json!({"responseCode": 0, "responseMessage": "Getting transaction successfully.", "errorCode": null,
            "data": {"hash": format!("hash-{md5}"), "fromAccountId": "payer@aclb", "toAccountId": "ticketgw@devb", "currency": currency,
                     "amount": amount, "description": "", "createdDateMs": 1, "acknowledgedDateMs": 2}})
        }
        None => {
            json!({"responseCode": 1, "responseMessage": "Transaction could not be found. Please check and try again.", "errorCode": 1, "data": null})
        }
    };
    (AxumStatus::OK, Json(body))
}

#[tokio::test]
async fn khqr_codes_pass_the_bakong_sdk_and_polling_confirms() {
    let bakong = FakeBakong::default();
    let base =
        serve(Router::new().route("/v1/check_transaction_by_md5", post(bakong_check)).with_state(bakong.clone())).await;
    let app = spawn_with(|s| {
        s.khqr_account_id = Some("ticketgw@devb".into());
        s.bakong_api_url = Some(base.clone());
        s.bakong_api_token = Some("bakong-test-token".into());
    })
    .await;
    bookable_event(&app, 1, 10).await;

    for (list, currency, amount) in [(vec![("standard", 2)], "USD", 51.0), (vec![("riel", 1)], "KHR", 40000.0)] {
        let (buyer, hold) = buyer_with_hold(&app, &list).await;
        let res = pay(&app, &buyer, "k", hold["id"].as_str().unwrap(), "khqr").await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let started: Value = res.json().await.unwrap();
        let action = &started["next_action"];
        assert_eq!(action["type"], "khqr");
        assert!(action["qr_svg"].as_str().unwrap().starts_with("<?xml"));
        let qr = action["qr"].as_str().unwrap();
        if let Some(verdict) = khqr_verdict(qr) {
            assert_eq!(verdict["valid"], true, "{verdict}");
            let d = &verdict["decoded"];
            assert_eq!(d["bakongAccountID"], "ticketgw@devb");
            assert_eq!(d["transactionCurrency"], if currency == "USD" { "840" } else { "116" });
            assert_eq!(d["transactionAmount"].as_str().and_then(|a| a.parse::<f64>().ok()), Some(amount), "{d}");
            let mut broken = qr.to_owned();
            broken.replace_range(qr.len() - 4.., "0000");
            assert_eq!(khqr_verdict(&broken).unwrap()["valid"], false);
        }

        // Not paid yet: still pending. Paid at the bank: the next look confirms the booking.
        let pid = started["id"].as_str().unwrap();
        assert_eq!(payment(&app, &buyer, pid).await["status"], "pending");
        let md5 = action["md5"].as_str().unwrap().to_owned();
        bakong.paid.lock().unwrap().push((md5, amount, currency.to_owned()));
        assert_eq!(payment(&app, &buyer, pid).await["status"], "succeeded");
        let id = hold["id"].as_str().unwrap().to_owned();
        eventually("KHQR confirmation", || async { booking_status(&app, &id).await == "confirmed" }).await;
    }
    assert!(*bakong.calls.lock().unwrap() >= 4);
}

/// A form as sent: (name, value) pairs.
type Form = Vec<(String, String)>;

/// A server speaking Stripe's Checkout Sessions and Refunds API; it records (path, form) of each call
/// and keeps its sessions (`cs_test_1`, `cs_test_2`, …) so that they can be looked up and expired.
#[derive(Clone, Default)]
struct FakeStripe {
    requests: Arc<Mutex<Vec<(String, Form)>>>,
    sessions: Arc<Mutex<Vec<Value>>>,
}

impl FakeStripe {
    /// The payer completes session `n` (1-based) at Stripe; no webhook is sent.
    fn pay(&self, n: usize) {
        let mut sessions = self.sessions.lock().unwrap();
        let s = &mut sessions[n - 1];
        s["status"] = json!("complete");
        s["payment_status"] = json!("paid");
        s["payment_intent"] = json!(format!("pi_test_{n}"));
    }
}

async fn stripe_call(
    State(s): State<FakeStripe>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> (AxumStatus, Json<Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk_test_ticketgw") {
        return (
            AxumStatus::UNAUTHORIZED,
            Json(json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}})),
        );
    }
    let form: Form = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    s.requests.lock().unwrap().push((uri.path().to_owned(), form.clone()));
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let mut sessions = s.sessions.lock().unwrap();
    let path = uri.path();
    if let Some(id) = path.strip_prefix("/v1/checkout/sessions/") {
        let (id, expire) = match id.strip_suffix("/expire") {
            Some(id) => (id, true),
            None => (id, false),
        };
        let Some(session) = sessions.iter_mut().find(|s| s["id"] == id) else {
            return (AxumStatus::NOT_FOUND, Json(json!({"error": {"message": "No such checkout.session"}})));
        };
        if expire {
            if session["status"] != "open" {
                return (
                    AxumStatus::BAD_REQUEST,
                    Json(json!({"error": {"message": "Only Checkout Sessions with a status of open can be expired."}})),
                );
            }
            session["status"] = json!("expired");
        }
        return (AxumStatus::OK, Json(session.clone()));
    }
    match path {
        "/v1/checkout/sessions" => {
            let id = format!("cs_test_{}", sessions.len() + 1);
            let session = json!({"id": id, "object": "checkout.session",
                "url": format!("https://checkout.stripe.test/c/pay/{id}"), "status": "open", "payment_status": "unpaid",
                "amount_total": get("line_items[0][price_data][unit_amount]").parse::<i64>().unwrap_or(0),
                "currency": get("line_items[0][price_data][currency]"), "payment_intent": null,
                "metadata": {"payment_id": get("metadata[payment_id]")}});
            sessions.push(session.clone());
            (AxumStatus::OK, Json(session))
        }
        "/v1/refunds" => (
            AxumStatus::OK,
            Json(json!({"id": "re_test_1", "object": "refund", "status": "succeeded",
            "amount": get("amount").parse::<i64>().unwrap_or(0), "payment_intent": get("payment_intent")})),
        ),
        _ => (
            AxumStatus::NOT_FOUND,
            Json(json!({"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}})),
        ),
    }
}

#[tokio::test]
async fn stripe_checkout_signed_webhooks_and_refunds() {
    let stripe = FakeStripe::default();
    let base = serve(Router::new().fallback(stripe_call).with_state(stripe.clone())).await;
    let app = spawn_with(|s| {
        s.stripe_secret_key = Some("sk_test_ticketgw".into());
        s.stripe_webhook_secret = Some("whsec_test_ticketgw".into());
        s.stripe_api_url = Some(base.clone());
    })
    .await;
    bookable_event(&app, 1, 10).await;
    let (buyer, hold) = buyer_with_hold(&app, &[("vip", 1)]).await;
    let res = pay(&app, &buyer, "s", hold["id"].as_str().unwrap(), "stripe").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let started: Value = res.json().await.unwrap();
    assert_eq!(started["next_action"]["url"], "https://checkout.stripe.test/c/pay/cs_test_1");
    // With a real provider configured, the sandbox (where anyone may "pay") is not offered.
    let (other, other_hold) = buyer_with_hold(&app, &[("vip", 1)]).await;
    assert_problem(
        pay(&app, &other, "sbx", other_hold["id"].as_str().unwrap(), "sandbox").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(app.http.get(app.url("/pay/sandbox/anything")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let pid = started["id"].as_str().unwrap();
    {
        let sent = stripe.requests.lock().unwrap();
        let form = &sent[0].1;
        assert!(form.contains(&("line_items[0][price_data][unit_amount]".into(), "10000".into())), "{form:?}");
        assert!(form.contains(&("line_items[0][price_data][currency]".into(), "usd".into())));
        assert!(form.contains(&("metadata[payment_id]".into(), pid.to_owned())));
    }

    // Stripe's event, signed the way Stripe signs; a wrong secret is refused.
    let event = json!({"id": "evt_test_1", "object": "event", "type": "checkout.session.completed", "created": 1,
        "data": {"object": {"id": "cs_test_1", "object": "checkout.session", "payment_status": "paid", "status": "complete",
            "amount_total": 10000, "currency": "usd", "metadata": {"payment_id": pid}, "payment_intent": "pi_test_1"}}})
    .to_string();
    let now = jiff::Timestamp::now().as_second();
    let send = |sig: String| {
        app.http
            .post(app.url("/api/v1/payments/webhooks/stripe"))
            .header("stripe-signature", sig)
            .body(event.clone())
            .send()
    };
    let bad = send(signature::sign("whsec_wrong", now, event.as_bytes())).await.unwrap();
    assert_problem(bad, StatusCode::BAD_REQUEST, "bad_signature").await;
    let ok = send(signature::sign("whsec_test_ticketgw", now, event.as_bytes())).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let id = hold["id"].as_str().unwrap().to_owned();
    eventually("card confirmation", || async { booking_status(&app, &id).await == "confirmed" }).await;

    // A refund goes to Stripe against the payment intent.
    let res = app.post(&format!("/api/v1/payments/{pid}/refund"), Some(&buyer), &json!({})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    eventually("card refund", || async { payment(&app, &buyer, pid).await["status"] == "refunded" }).await;
    // Recorded at once, sent to Stripe a moment later.
    eventually("the refund at Stripe", || async {
        stripe.requests.lock().unwrap().last().is_some_and(|(path, _)| path == "/v1/refunds")
    })
    .await;
    let sent = stripe.requests.lock().unwrap();
    let (path, form) = sent.last().unwrap();
    assert_eq!(path, "/v1/refunds");
    assert!(
        form.contains(&("payment_intent".into(), "pi_test_1".into()))
            && form.contains(&("amount".into(), "10000".into())),
        "{form:?}"
    );
}

#[test]
fn provider_settings_are_safe_by_default() {
    use ticketgw::config::Settings;
    let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    // Stripe without its webhook secret would accept forged webhooks: refused at start.
    let s = Settings { stripe_secret_key: Some("sk_live_x".into()), ..Default::default() };
    assert!(s.payments(listen).is_err());
    // A real provider switches the sandbox off unless asked for; embedded defaults and the demo have it.
    let s = Settings {
        stripe_secret_key: Some("sk_live_x".into()),
        stripe_webhook_secret: Some("whsec_x".into()),
        ..Default::default()
    };
    assert!(!s.payments(listen).unwrap().sandbox);
    assert!(Settings::default().payments(listen).unwrap().sandbox);
    let demo = Settings { demo: Some(true), ..Default::default() }.payments(listen).unwrap();
    assert!(demo.sandbox && demo.khqr.is_some());
    let explicit = Settings { khqr_account_id: Some("a@b".into()), payments_sandbox: Some(true), ..Default::default() };
    assert!(explicit.payments(listen).unwrap().sandbox);
}

/// Reconciliation settles what no webhook or message did: a Stripe session paid without its
/// webhook arriving, a session left open after its hold is gone (expired at Stripe, abandoned here),
/// and a success whose `payment.succeeded` was lost.
#[tokio::test]
async fn reconciliation_asks_the_provider_and_settles_what_no_message_did() {
    let stripe = FakeStripe::default();
    let base = serve(Router::new().fallback(stripe_call).with_state(stripe.clone())).await;
    let app = spawn_with(|s| {
        s.stripe_secret_key = Some("sk_test_ticketgw".into());
        s.stripe_webhook_secret = Some("whsec_test_ticketgw".into());
        s.stripe_api_url = Some(base.clone());
        s.payments_reconcile_after_secs = Some(1);
    })
    .await;
    bookable_event(&app, 1, 10).await;

    // Paid at Stripe; its webhook never comes. Before the threshold nothing is asked.
    let (buyer, hold) = buyer_with_hold(&app, &[("vip", 1)]).await;
    let booking = hold["id"].as_str().unwrap();
    let started: Value = pay(&app, &buyer, "a", booking, "stripe").await.json().await.unwrap();
    stripe.pay(1);
    eventually("the booking confirmed by reconciliation", || async {
        booking_status(&app, booking).await == "confirmed"
    })
    .await;
    let paid = payment(&app, &buyer, started["id"].as_str().unwrap()).await;
    assert_eq!(paid["status"], "succeeded");
    assert!(stripe.requests.lock().unwrap().iter().any(|(p, _)| p == "/v1/checkout/sessions/cs_test_1"));

    // Open at Stripe while the hold is cancelled: expired at Stripe, abandoned here.
    let (buyer2, hold2) = buyer_with_hold(&app, &[("vip", 1)]).await;
    let booking2 = hold2["id"].as_str().unwrap();
    let started2: Value = pay(&app, &buyer2, "b", booking2, "stripe").await.json().await.unwrap();
    let res = app.post(&format!("/api/v1/bookings/{booking2}/cancel"), Some(&buyer2), &json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let pid2 = started2["id"].as_str().unwrap().to_owned();
    eventually("the open payment abandoned", || async { payment(&app, &buyer2, &pid2).await["status"] == "abandoned" })
        .await;
    assert_eq!(stripe.sessions.lock().unwrap()[1]["status"], "expired");

    // A success stored without its message (as when it was lost): settled by the sweep.
    let (buyer3, hold3) = buyer_with_hold(&app, &[("vip", 1)]).await;
    let booking3 = hold3["id"].as_str().unwrap();
    let started3: Value = pay(&app, &buyer3, "c", booking3, "stripe").await.json().await.unwrap();
    tg_platform::with_db!(&app.app.db, pool => sqlx::query(
        "UPDATE payments_payments SET status = 'succeeded', charge_ref = 'pi_lost' WHERE id = $1")
        .bind(started3["id"].as_str().unwrap()).execute(pool).await.map(|_| ()))
    .unwrap();
    eventually("the lost success settled", || async { booking_status(&app, booking3).await == "confirmed" }).await;

    // The confirmation's notice follows through the outbox and the notifications consumer.
    eventually("every invariant holds", || async {
        ticketgw::invariants::check(&app.app.db, true).await.unwrap().is_empty()
    })
    .await;
}

/// Two instances on one database reconcile the same stuck payments at once: each booking is
/// confirmed once (no second set of tickets) or refunded once (one refund row), never both.
#[tokio::test]
async fn two_instances_reconciling_at_once_settle_each_payment_once() {
    let (settings, _dir) = crate::helpers::fresh_settings().await;
    let configure = |s: &mut ticketgw::config::Settings| {
        *s = settings.clone();
        s.payments_reconcile_after_secs = Some(1);
        s.sandbox_webhook_secret = Some("whsec_shared".into());
    };
    let a = spawn_with(configure).await;
    let b = spawn_with(configure).await;
    bookable_event(&a, 1, 20).await;

    let mut bookings = Vec::new();
    for i in 0..8 {
        let (buyer, hold) = buyer_with_hold(&a, &[("vip", 2)]).await;
        let booking = hold["id"].as_str().unwrap().to_owned();
        let started: Value = pay(&a, &buyer, "k", &booking, "sandbox").await.json().await.unwrap();
        let pid = started["id"].as_str().unwrap().to_owned();
        match i % 4 {
            // Paid at the sandbox, its webhook lost.
            0 => assert_eq!(
                a.app.payments.sandbox().unwrap().decide(&pid, "succeeded", 20000, "USD").await.unwrap(),
                "succeeded"
            ),
            // Succeeded here, its payment.succeeded lost.
            1 => {
                tg_platform::with_db!(&a.app.db, pool => sqlx::query(
                    "UPDATE payments_payments SET status = 'succeeded', charge_ref = 'sbx' WHERE id = $1")
                    .bind(&pid).execute(pool).await.map(|_| ()))
                .unwrap();
            }
            // Both, but the booking was cancelled meanwhile: the money goes back.
            _ => {
                let res = a.post(&format!("/api/v1/bookings/{booking}/cancel"), Some(&buyer), &json!({})).await;
                assert_eq!(res.status(), StatusCode::OK);
                a.app.payments.sandbox().unwrap().decide(&pid, "succeeded", 20000, "USD").await.unwrap();
            }
        }
        bookings.push((booking, pid, i % 4 < 2));
    }
    // Both instances' background passes run; drive a few more passes of each at the same moment.
    for _ in 0..5 {
        let (ra, rb) = tokio::join!(a.app.payments.reconcile(), b.app.payments.reconcile());
        ra.unwrap();
        rb.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for (booking, pid, confirmable) in &bookings {
        let (booking, pid) = (booking.clone(), pid.clone());
        let want = if *confirmable { "confirmed" } else { "cancelled" };
        eventually("settled", || async { booking_status(&a, &booking).await == want }).await;
        let refunds: i64 = tg_platform::with_db!(&a.app.db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM payments_refunds WHERE payment_id = $1").bind(&pid).fetch_one(pool).await)
        .unwrap();
        assert_eq!(refunds, if *confirmable { 0 } else { 1 }, "payment {pid}");
    }
    let tickets: i64 = tg_platform::with_db!(&a.app.db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM bookings_tickets").fetch_one(pool).await)
    .unwrap();
    assert_eq!(tickets, 4 * 2, "two tickets per confirmed booking, never a second set");
    eventually("every invariant", || async { ticketgw::invariants::check(&a.app.db, true).await.unwrap().is_empty() })
        .await;
}
