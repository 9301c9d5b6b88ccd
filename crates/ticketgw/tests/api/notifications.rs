//! Notifications: register → book → pay → confirmation e-mail with the tickets' QR codes received by a
//! real SMTP server (aiosmtpd), Khmer templates for Khmer users, Telegram and SMS through local servers
//! speaking those APIs (with a retry), the in-platform mailbox and the delivery log.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, http::StatusCode as AxumStatus, routing::post, Json, Router};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tg_platform::auth::Role;

use crate::{
    bookings::{book, bookable_event, items},
    helpers::{assert_problem, serve, spawn_with, TestApp},
};

/// aiosmtpd writing each message it receives into a directory; killed on drop.
pub(crate) struct SmtpSink {
    child: Child,
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn start_smtp_sink() -> Option<SmtpSink> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp");
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        // CI creates it (.ci/run) and sets TG_REQUIRE_SMTP_SINK.
        assert!(std::env::var_os("TG_REQUIRE_SMTP_SINK").is_none(), "no aiosmtpd venv in {}", root.display());
        eprintln!("SKIPPED: create tests/smtp/.venv with aiosmtpd to test e-mail against a real SMTP server");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("tg-mail-{}", uuid::Uuid::new_v4().simple()));
    let mut child = Command::new(python)
        .arg(root.join("sink.py"))
        .args(["--port", &port.to_string(), "--outdir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start aiosmtpd");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("READY"), "sink said {line:?}");
    Some(SmtpSink { child, port, dir })
}

pub(crate) fn mails(dir: &PathBuf) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect()
        })
        .unwrap_or_default();
    names.sort();
    names.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

/// A form as sent: (name, value) pairs.
type Form = Vec<(String, String)>;

/// Local stand-ins for Telegram and Twilio: they record what they were sent; Telegram fails once.
#[derive(Clone, Default)]
struct Outside {
    telegram: Arc<Mutex<Vec<Value>>>,
    sms: Arc<Mutex<Vec<Form>>>,
    telegram_failed_once: Arc<Mutex<bool>>,
}

async fn telegram_send(State(o): State<Outside>, Json(body): Json<Value>) -> (AxumStatus, Json<Value>) {
    let mut failed = o.telegram_failed_once.lock().unwrap();
    if !*failed {
        *failed = true;
        return (AxumStatus::BAD_GATEWAY, Json(json!({"ok": false, "error_code": 502, "description": "Bad Gateway"})));
    }
    o.telegram.lock().unwrap().push(body);
    (AxumStatus::OK, Json(json!({"ok": true, "result": {"message_id": 1, "chat": {"id": 1}, "date": 0, "text": ""}})))
}

async fn twilio_send(State(o): State<Outside>, body: String) -> (AxumStatus, Json<Value>) {
    let form: Form = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    o.sms.lock().unwrap().push(form);
    (AxumStatus::CREATED, Json(json!({"sid": "SM1", "status": "queued"})))
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn register(app: &TestApp, email: &str) -> String {
    let res = app.register(email, "a long password", "Sok Dara").await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    app.login(email, "a long password").await["access_token"].as_str().unwrap().to_owned()
}

pub(crate) async fn buy_and_pay(app: &TestApp, token: &str) -> String {
    let hold: Value = book(app, token, "n-1", &items("evt-t1", &[("vip", 2)])).await.json().await.unwrap();
    let booking = hold["id"].as_str().unwrap().to_owned();
    let pay: Value = app
        .http
        .post(app.url("/api/v1/payments"))
        .bearer_auth(token)
        .header("idempotency-key", "n-pay")
        .json(&json!({"booking_id": booking}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = pay["id"].as_str().unwrap();
    let res = app.sandbox_reports("payment.succeeded", pid, 20000).await;
    assert_eq!(res.status(), StatusCode::OK);
    booking
}

async fn messages(app: &TestApp, token: &str) -> Vec<Value> {
    let body: Value = app.get("/api/v1/me/messages", Some(token)).await.json().await.unwrap();
    body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn notices_reach_smtp_telegram_sms_and_the_mailbox_in_the_users_language() {
    whole_flow(None).await;
}

/// The same flow with every domain event going through RabbitMQ.
#[tokio::test]
async fn the_whole_flow_works_through_rabbitmq() {
    // Take the turn first: the outage test may have the broker stopped right now.
    let _turn = crate::messaging::BROKER.lock().await;
    if !crate::messaging::broker_reachable() {
        return;
    }
    let prefix = format!("tg-test-{}", uuid::Uuid::new_v4().simple());
    whole_flow(Some(&prefix)).await;
    crate::messaging::delete_queues(&prefix, &["payments", "notifications", "dead-letter"]);
}

/// register → book → pay in the sandbox → webhook → tickets → notices on every channel.
async fn whole_flow(amqp_prefix: Option<&str>) {
    let Some(sink) = start_smtp_sink() else { return };
    let outside = Outside::default();
    let base = serve(
        Router::new()
            .route("/botTEST-TOKEN/sendMessage", post(telegram_send))
            .route("/2010-04-01/Accounts/AC1/Messages.json", post(twilio_send))
            .with_state(outside.clone()),
    )
    .await;
    let app = spawn_with(|s| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{}", sink.port));
        s.telegram_bot_token = Some("TEST-TOKEN".into());
        s.telegram_api_url = Some(base.clone());
        s.sms_api_url = Some(base.clone());
        s.sms_account_sid = Some("AC1".into());
        s.sms_auth_token = Some("secret".into());
        s.sms_from = Some("+15550001111".into());
        if let Some(prefix) = amqp_prefix {
            s.amqp_url = Some(crate::messaging::AMQP_URL.into());
            s.amqp_prefix = Some(prefix.into());
        }
    })
    .await;
    bookable_event(&app, 1, 10).await;

    // An English buyer with Telegram and SMS; a Khmer buyer with e-mail only.
    let en = register(&app, "dara@example.com").await;
    let res = app
        .send(
            Method::PUT,
            "/api/v1/me/notification-channels",
            Some(&en),
            &json!({"telegram_chat_id": "4242", "phone": "+85512345678"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let bad = app
        .send(
            Method::PUT,
            "/api/v1/me/notification-channels",
            Some(&en),
            &json!({"telegram_chat_id": "x", "phone": "012"}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Each channel gets a code first (Telegram's first call fails: the code comes on the retry), and
    // notices go there once the code came back.
    let code_in = |text: &str| text.split_once("code: ").map(|(_, rest)| rest[..6].to_owned());
    eventually("the Telegram code", || {
        outside.telegram.lock().unwrap().iter().any(|m| m["text"].as_str().and_then(code_in).is_some())
    })
    .await;
    eventually("the SMS code", || {
        outside.sms.lock().unwrap().iter().any(|f| f.iter().any(|(k, v)| k == "Body" && code_in(v).is_some()))
    })
    .await;
    let telegram_code =
        outside.telegram.lock().unwrap().iter().find_map(|m| m["text"].as_str().and_then(code_in)).unwrap();
    let sms_code = outside
        .sms
        .lock()
        .unwrap()
        .iter()
        .flat_map(|f| f.iter())
        .find_map(|(k, v)| (k == "Body").then(|| code_in(v)).flatten())
        .unwrap();
    for (channel, code) in [("telegram", telegram_code), ("sms", sms_code)] {
        let res = app
            .post("/api/v1/me/notification-channels/confirm", Some(&en), &json!({"channel": channel, "code": code}))
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{channel}");
    }
    outside.sms.lock().unwrap().clear();
    let km = register(&app, "sokha@example.com").await;
    let res = app.send(Method::PATCH, "/api/v1/me", Some(&km), &json!({"language": "km"})).await;
    assert_eq!(res.status(), StatusCode::OK);

    buy_and_pay(&app, &en).await;
    buy_and_pay(&app, &km).await;

    // E-mail: welcome and confirmation for both, the confirmation with both tickets' QR codes.
    // (The demo accounts, seeded by the tests' helpers, got their welcome too.)
    eventually("both confirmations", || mails(&sink.dir).iter().filter(|m| m.contains("image/svg+xml")).count() == 2)
        .await;
    let all = mails(&sink.dir);
    let to = |who: &str, subject_part: &str| {
        all.iter().find(|m| m.contains(&format!("X-Envelope-To: {who}")) && m.contains(subject_part)).cloned()
    };
    let confirmation =
        to("dara@example.com", "Your tickets for").unwrap_or_else(|| panic!("English confirmation in {all:#?}"));
    assert_eq!(confirmation.matches("Content-Type: image/svg+xml").count(), 2, "two QR codes attached");
    assert!(confirmation.contains("filename=\"ticket-"));
    assert!(to("dara@example.com", "Welcome to Ticket Gateway").is_some());
    // Khmer subjects travel MIME-encoded; the body is Khmer text.
    let khmer = all
        .iter()
        .find(|m| m.contains("X-Envelope-To: sokha@example.com") && m.contains("image/svg+xml"))
        .expect("Khmer confirmation");
    assert!(!khmer.contains("Your tickets for") && khmer.contains("Subject: =?utf-8?"), "{khmer}");

    // The mailbox has them too, in each user's language.
    let inbox = messages(&app, &km).await;
    assert!(
        inbox.iter().any(|m| m["kind"] == "booking_confirmed"
            && m["language"] == "km"
            && m["subject"].as_str().unwrap().starts_with("សំបុត្រ")),
        "{inbox:?}"
    );
    let inbox = messages(&app, &en).await;
    assert!(inbox.iter().any(|m| m["kind"] == "booking_confirmed" && m["language"] == "en"));

    // Telegram failed once and was retried; SMS went out.
    eventually("telegram", || {
        outside.telegram.lock().unwrap().iter().any(|m| m["text"].as_str().unwrap_or("").contains("Your tickets"))
    })
    .await;
    assert!(outside.telegram.lock().unwrap().iter().all(|m| m["chat_id"] == "4242"));
    eventually("sms", || !outside.sms.lock().unwrap().is_empty()).await;
    assert!(outside.sms.lock().unwrap()[0].contains(&("To".to_owned(), "+85512345678".to_owned())));

    // The delivery log, for admins only.
    let (_, admin) = app.user_with(&[Role::Admin]).await;
    let res = app.get("/api/v1/admin/notifications/deliveries", Some(&en)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Which Telegram notice got the failing first call depends on delivery order (the welcome notice
    // may go first), so wait until every Telegram delivery is sent before reading the log.
    let mut log = Value::Null;
    for _ in 0..300 {
        log = app.get("/api/v1/admin/notifications/deliveries", Some(&admin)).await.json().await.unwrap();
        let items = log["items"].as_array().unwrap();
        if items.iter().filter(|d| d["channel"] == "telegram").all(|d| d["status"] == "sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let items = log["items"].as_array().unwrap();
    let telegram: Vec<&Value> = items.iter().filter(|d| d["channel"] == "telegram").collect();
    assert!(
        telegram.iter().any(|d| d["status"] == "sent" && d["attempts"] == 2 && d["last_error"].is_null()),
        "{telegram:?}"
    );
    let buyers_mail = items.iter().filter(|d| {
        d["channel"] == "email"
            && d["recipient"].as_str().is_some_and(|r| r == "dara@example.com" || r == "sokha@example.com")
    });
    assert_eq!(
        buyers_mail.clone().count(),
        6,
        "welcome, the link proving the address and confirmation each: {items:?}"
    );
    assert!(buyers_mail.into_iter().all(|d| d["status"] == "sent"), "{items:?}");
}

#[tokio::test]
async fn ticket_holders_hear_when_their_event_changes_or_is_cancelled() {
    let app = spawn_with(|_| {}).await;
    let organizer = bookable_event(&app, 1, 10).await;
    let holder = register(&app, "holder@example.com").await;
    buy_and_pay(&app, &holder).await;
    let bystander = register(&app, "bystander@example.com").await;
    let kinds =
        |msgs: Vec<Value>| msgs.iter().map(|m| m["kind"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>();
    for _ in 0..100 {
        if kinds(messages(&app, &holder).await).contains(&"booking_confirmed".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // An edit of the published event, then its cancellation.
    let mut doc: Value = app.get("/api/v1/events/evt-t1", Some(&organizer)).await.json().await.unwrap();
    doc["venue"]["name"] = json!("A bigger hall");
    let res = app.send(Method::PUT, "/api/v1/events/evt-t1", Some(&organizer), &doc).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let res = app.post("/api/v1/events/evt-t1/cancel", Some(&organizer), &json!({})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());

    for _ in 0..200 {
        let k = kinds(messages(&app, &holder).await);
        if k.contains(&"event_updated".to_owned()) && k.contains(&"event_cancelled".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let k = kinds(messages(&app, &holder).await);
    assert!(k.contains(&"event_updated".to_owned()) && k.contains(&"event_cancelled".to_owned()), "{k:?}");
    let cancelled = messages(&app, &holder).await.into_iter().find(|m| m["kind"] == "event_cancelled").unwrap();
    assert!(cancelled["subject"].as_str().unwrap().ends_with("is cancelled"), "{cancelled}");
    assert_eq!(kinds(messages(&app, &bystander).await), vec!["welcome".to_owned()], "only ticket holders hear of it");
}

/// Every page of `/api/v1/me/messages?limit=N`, followed by its cursors.
async fn walk_mailbox(app: &TestApp, token: &str, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = format!("/api/v1/me/messages?limit={limit}");
    loop {
        let res = app.get(&path, Some(token)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        all.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(items.len(), limit, "only the last page is short");
                let c: String = url::form_urlencoded::byte_serialize(c.as_bytes()).collect();
                path = format!("/api/v1/me/messages?limit={limit}&cursor={c}");
            }
            None => return all,
        }
    }
}

/// A ticket holder (`email`, password "a long password") with `2 + edits` notices in their mailbox: welcome,
/// confirmation and one per edit of the published event. Returns their access token.
pub(crate) async fn holder_with_notices(app: &TestApp, email: &str, edits: usize) -> String {
    let organizer = bookable_event(app, 1, 10).await;
    let holder = register(app, email).await;
    buy_and_pay(app, &holder).await;
    let mut doc: Value = app.get("/api/v1/events/evt-t1", Some(&organizer)).await.json().await.unwrap();
    for i in 0..edits {
        doc["venue"]["name"] = json!(format!("Hall {i}"));
        let res = app.send(Method::PUT, "/api/v1/events/evt-t1", Some(&organizer), &doc).await;
        assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    }
    // The consumer writes them in the background.
    for _ in 0..200 {
        if walk_mailbox(app, &holder, 100).await.len() >= 2 + edits {
            return holder;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {} notices", 2 + edits);
}

#[tokio::test]
async fn the_mailbox_pages_through_every_notice_once_newest_first() {
    let app = spawn_with(|_| {}).await;
    let edits = 12;
    let holder = holder_with_notices(&app, "pager@example.com", edits).await;
    let expected = 2 + edits;
    let everything = walk_mailbox(&app, &holder, 100).await;
    assert_eq!(everything.len(), expected, "{everything:?}");
    let key = |m: &Value| (m["created_at"].as_i64().unwrap(), m["id"].as_str().unwrap().to_owned());
    let mut sorted = everything.clone();
    sorted.sort_by_key(|m| std::cmp::Reverse(key(m)));
    assert_eq!(everything, sorted, "newest first, then by id");

    // Pages of 5 (5 + 5 + 4) give the same notices in the same order, each once.
    let paged = walk_mailbox(&app, &holder, 5).await;
    assert_eq!(paged, everything);
    let default: Value = app.get("/api/v1/me/messages", Some(&holder)).await.json().await.unwrap();
    assert_eq!(default["items"].as_array().unwrap().len(), expected.min(20), "20 by default");

    // Malformed cursors and limits out of range are problems naming the parameter.
    let forged = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, br#"{"k":[],"id":"x"}"#);
    for (query, field) in [
        ("cursor=not-a-cursor", "cursor"),
        (&format!("cursor={forged}") as &str, "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
    ] {
        let res = app.get(&format!("/api/v1/me/messages?{query}"), Some(&holder)).await;
        let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let res = app.get("/api/v1/me/messages?limit=many", Some(&holder)).await;
    assert!(res.status().is_client_error());
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}
