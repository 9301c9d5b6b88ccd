//! Crash tests: the real binary, run as a child process, is killed (SIGKILL, as `kill -9`) at a
//! named point of a money or seat path (`FAILPOINTS`, built in by the test-only `failpoints`
//! feature), then started again on the same database. Afterwards every invariant holds: each paid
//! booking has its tickets (or its money back), every 201 exists, counters equal rows, and each
//! confirmation notice is in the mailbox exactly once.

use std::{
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tg_platform::db::Db;
use ticketgw::config::Settings;
use tokio::process::{Child, Command};

use crate::{
    bookings::{bookable_doc, items},
    helpers::fresh_settings,
};

/// Signs the sandbox's webhooks in every process of a test (a random one per start otherwise).
const SANDBOX_SECRET: &str = "whsec_crash_tests";

/// One database and the port its servers listen on (the same after a restart, so tokens stay valid).
struct World {
    settings: Settings,
    /// Settings of this test beyond the common ones (as environment variables).
    env: Vec<(String, String)>,
    port: u16,
    logs: PathBuf,
    http: Client,
    starts: usize,
}

/// A running `ticketgw serve`.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl World {
    async fn new() -> World {
        let (settings, _) = fresh_settings().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let logs = std::env::temp_dir().join(format!("tg-crash-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&logs).unwrap();
        let http = Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        let world = World { settings, env: Vec::new(), port, logs, http, starts: 0 };
        // Demo accounts: an organizer with a profile, to create the event.
        let out = world.command().arg("demo").output().await.unwrap();
        assert!(out.status.success(), "ticketgw demo: {}", String::from_utf8_lossy(&out.stderr));
        world
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketgw"));
        cmd.env_remove("DATABASE_URL").env_remove("TICKETGW_DATA_DIR").env_remove("FAILPOINTS").env_remove("AMQP_URL");
        if let Some(url) = &self.settings.database_url {
            cmd.env("DATABASE_URL", url);
        }
        if let Some(dir) = &self.settings.data_dir {
            cmd.env("TICKETGW_DATA_DIR", dir);
        }
        cmd.env("TICKETGW_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("PUBLIC_URL", self.base())
            .env("SANDBOX_WEBHOOK_SECRET", SANDBOX_SECRET)
            .env("PAYMENTS_SANDBOX", "true")
            .env("PAYMENTS_RECONCILE_AFTER_SECS", "1")
            .env("REGISTER_IP_BURST", "1000")
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().cloned())
            .kill_on_drop(true);
        cmd
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// Start the server, with the crash point `failpoint` armed; wait until it is ready.
    async fn start(&mut self, failpoint: Option<&str>) -> Server {
        self.starts += 1;
        let log = std::fs::File::create(self.logs.join(format!("server-{}.log", self.starts))).unwrap();
        let mut cmd = self.command();
        cmd.arg("serve").stdout(Stdio::null()).stderr(Stdio::from(log));
        if let Some(point) = failpoint {
            cmd.env("FAILPOINTS", format!("{point}=return"));
        }
        let mut child = cmd.spawn().expect("start ticketgw");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("ticketgw exited at start ({status}): {}", self.log(self.starts));
            }
            if let Ok(res) = self.http.get(self.url("/readyz")).send().await {
                if res.status() == StatusCode::OK {
                    return Server { child };
                }
            }
            assert!(Instant::now() < deadline, "ticketgw not ready: {}", self.log(self.starts));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self, start: usize) -> String {
        std::fs::read_to_string(self.logs.join(format!("server-{start}.log"))).unwrap_or_default()
    }

    async fn db(&self) -> Db {
        Db::connect(self.settings.database_url.as_deref(), &self.settings.data_dir(), 2).await.unwrap()
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send().await
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let res = self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.unwrap()
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let res =
            self.post("/api/v1/auth/login", None, None, &json!({"email": email, "password": password})).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }

    /// The event `test-event-1` on sale, and a buyer: the buyer's token.
    async fn event_and_buyer(&self) -> String {
        let organizer = self.login("organizer@example.com", "ticketgw-demo-organizer").await;
        let res = self.post("/api/v1/events", Some(&organizer), None, &bookable_doc(1, 10)).await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
        let email = format!("buyer-{}@example.com", uuid::Uuid::new_v4().simple());
        let body = json!({"email": email, "password": "a long password", "display_name": "Buyer"});
        assert_eq!(self.post("/api/v1/auth/register", None, None, &body).await.unwrap().status(), StatusCode::ACCEPTED);
        self.login(&email, "a long password").await
    }

    /// Hold two VIP tickets: the booking id.
    async fn hold(&self, buyer: &str, key: &str) -> String {
        let res =
            self.post("/api/v1/bookings", Some(buyer), Some(key), &items("test-event-1", &[("vip", 2)])).await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// The event, a buyer with a hold of two tickets and a sandbox payment of it started:
    /// (buyer's token, booking id, payment).
    async fn buyer_with_payment(&self) -> (String, String, Value) {
        let buyer = self.event_and_buyer().await;
        let booking = self.hold(&buyer, "h1").await;
        let res = self.pay(&buyer, &booking, "p1").await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        (buyer, booking, res.json().await.unwrap())
    }

    /// Start a sandbox payment of the booking: the payment.
    async fn pay(&self, buyer: &str, booking_id: &str, key: &str) -> reqwest::Result<reqwest::Response> {
        self.post("/api/v1/payments", Some(buyer), Some(key), &json!({"booking_id": booking_id, "provider": "sandbox"}))
            .await
    }

    /// The sandbox's signed webhook saying the payment succeeded: (signature, body). The same
    /// pair is what the sandbox sends again when its first delivery was not answered.
    fn success_webhook(payment_id: &str) -> (String, Vec<u8>) {
        let body = serde_json::to_vec(&json!({
            "id": format!("sbx_evt_{payment_id}"), "type": "payment.succeeded", "payment_id": payment_id,
            "amount_cents": 20000, "currency": "USD"
        }))
        .unwrap();
        let now = jiff::Timestamp::now().as_second();
        (tg_payments::providers::signature::sign(SANDBOX_SECRET, now, &body), body)
    }

    async fn send_webhook(&self, (signature, body): &(String, Vec<u8>)) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(self.url("/api/v1/payments/webhooks/sandbox"))
            .header("sandbox-signature", signature)
            .body(body.clone())
            .send()
            .await
    }

    async fn booking_status(&self, buyer: &str, id: &str) -> String {
        self.get(&format!("/api/v1/bookings/{id}"), buyer).await["status"].as_str().unwrap().to_owned()
    }

    /// Wait until `status` of the booking (while the server works in the background).
    async fn until_booking(&self, buyer: &str, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.booking_status(buyer, id).await;
            if now == status {
                return;
            }
            assert!(Instant::now() < deadline, "booking {id} is {now}, not {status}: {}", self.log(self.starts));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every invariant holds once the background work settled (waits for it, within limits).
    async fn invariants_hold(&self) {
        let db = self.db().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let violations = ticketgw::invariants::check(&db, true).await.unwrap();
            if violations.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "invariants violated: {violations:#?}\n{}", self.log(self.starts));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        db.close().await;
    }
}

impl Server {
    /// The crash point killed it (SIGKILL), within a few seconds.
    async fn killed(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the crash point did not kill the server")
            .unwrap();
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL at the crash point, not {status}");
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[tokio::test]
async fn a_webhook_stored_but_not_applied_is_applied_when_the_provider_retries() {
    let mut w = World::new().await;
    let server = w.start(Some("payments.webhook.recorded")).await;
    let (buyer, booking, payment) = w.buyer_with_payment().await;
    let webhook = World::success_webhook(payment["id"].as_str().unwrap());
    assert!(w.send_webhook(&webhook).await.is_err(), "the server died before answering");
    server.killed().await;

    let server = w.start(None).await;
    // The provider was not answered, so it sends the same event again: applied, not a duplicate.
    let res = w.send_webhook(&webhook).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["result"], "succeeded");
    w.until_booking(&buyer, &booking, "confirmed").await;
    assert_eq!(w.get("/api/v1/me/tickets", &buyer).await["items"].as_array().unwrap().len(), 2);
    w.invariants_hold().await;
    server.stop().await;
}

#[tokio::test]
async fn a_stored_success_given_up_meanwhile_is_refunded_when_the_provider_retries() {
    let mut w = World::new().await;
    let server = w.start(Some("payments.webhook.recorded")).await;
    let (buyer, booking, payment) = w.buyer_with_payment().await;
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    let webhook = World::success_webhook(&payment_id);
    assert!(w.send_webhook(&webhook).await.is_err());
    server.killed().await;

    // The buyer cancels the hold; reconciliation finds the payment open with its hold gone and
    // abandons it (the sandbox's books know nothing of this payment).
    let server = w.start(None).await;
    let res = w.post(&format!("/api/v1/bookings/{booking}/cancel"), Some(&buyer), None, &json!({})).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let path = format!("/api/v1/payments/{payment_id}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.get(&path, &buyer).await["status"] != "abandoned" {
        assert!(Instant::now() < deadline, "the payment was not abandoned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The provider's retry of the stored success: the money was taken, so it goes back in full.
    let res = w.send_webhook(&webhook).await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["result"], "succeeded");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = w.get(&path, &buyer).await;
        if p["status"] == "refunded" {
            assert_eq!(p["refunded_amount"], p["amount"]);
            break;
        }
        assert!(Instant::now() < deadline, "not refunded: {p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.invariants_hold().await;
    server.stop().await;
}

#[tokio::test]
async fn money_taken_by_the_sandbox_is_found_by_reconciliation_after_a_crash() {
    let mut w = World::new().await;
    let server = w.start(Some("payments.sandbox.decided")).await;
    let (buyer, booking, payment) = w.buyer_with_payment().await;
    // The payer presses "Pay" on the sandbox's page: the sandbox books the money, then dies
    // before its webhook goes out. Nothing will ever retry that webhook.
    let page_url = payment["next_action"]["url"].as_str().unwrap();
    let page = w.http.get(page_url).send().await.unwrap().text().await.unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let res = w.http.post(page_url).form(&[("action", "succeed"), ("csrf", csrf.as_str())]).send().await;
    assert!(res.is_err(), "the server died before answering");
    server.killed().await;

    // Reconciliation asks the sandbox about the pending payment and confirms the booking.
    let server = w.start(None).await;
    w.until_booking(&buyer, &booking, "confirmed").await;
    let paid = w.get(&format!("/api/v1/payments/{}", payment["id"].as_str().unwrap()), &buyer).await;
    assert_eq!(paid["status"], "succeeded");
    w.invariants_hold().await;
    server.stop().await;
}

#[tokio::test]
async fn a_success_applied_before_the_crash_confirms_the_booking_after_it() {
    let mut w = World::new().await;
    let server = w.start(Some("payments.webhook.applied")).await;
    let (buyer, booking, payment) = w.buyer_with_payment().await;
    let webhook = World::success_webhook(payment["id"].as_str().unwrap());
    assert!(w.send_webhook(&webhook).await.is_err());
    server.killed().await;

    let server = w.start(None).await;
    w.until_booking(&buyer, &booking, "confirmed").await;
    // The provider's retry is a duplicate now.
    let res = w.send_webhook(&webhook).await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["result"], "duplicate");
    w.invariants_hold().await;
    server.stop().await;
}

/// A payment stored and then cut short before or after its provider started it: the client's
/// retry with the same Idempotency-Key gets a payment it can pay.
async fn payment_resumes_after(point: &str) {
    let mut w = World::new().await;
    let server = w.start(Some(point)).await;
    let buyer = w.event_and_buyer().await;
    let booking = w.hold(&buyer, "h1").await;
    assert!(w.pay(&buyer, &booking, "p1").await.is_err(), "the server died before answering");
    server.killed().await;

    let server = w.start(None).await;
    let res = w.pay(&buyer, &booking, "p1").await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let payment: Value = res.json().await.unwrap();
    assert_eq!(payment["status"], "pending");
    let url = payment["next_action"]["url"].as_str().expect("a pay link after the replay");
    assert!(url.ends_with(&format!("/pay/sandbox/{}", payment["id"].as_str().unwrap())), "{url}");
    let res = w.send_webhook(&World::success_webhook(payment["id"].as_str().unwrap())).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    w.until_booking(&buyer, &booking, "confirmed").await;
    w.invariants_hold().await;
    server.stop().await;
}

#[tokio::test]
async fn a_payment_stored_but_not_started_resumes_on_replay() {
    payment_resumes_after("payments.create.inserted").await;
}

#[tokio::test]
async fn a_payment_started_but_not_saved_resumes_on_replay() {
    payment_resumes_after("payments.create.started").await;
}

#[tokio::test]
async fn a_hold_committed_before_the_crash_is_kept_and_replayed() {
    let mut w = World::new().await;
    let server = w.start(Some("bookings.hold.committed")).await;
    let buyer = w.event_and_buyer().await;
    let body = items("test-event-1", &[("vip", 3)]);
    assert!(w.post("/api/v1/bookings", Some(&buyer), Some("h1"), &body).await.is_err());
    server.killed().await;

    let server = w.start(None).await;
    let res = w.post("/api/v1/bookings", Some(&buyer), Some("h1"), &body).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(res.headers()["idempotent-replayed"], "true", "the committed hold, replayed");
    let held: Value = res.json().await.unwrap();
    assert_eq!(held["status"], "pending_payment");
    let availability = w.http.get(w.url("/api/v1/events/evt-t1/availability")).send().await.unwrap();
    let availability: Value = availability.json().await.unwrap();
    let vip = availability["types"].as_array().unwrap().iter().find(|t| t["ticket_type_id"] == "vip").unwrap().clone();
    assert_eq!(vip["available"], 7, "{availability}");
    w.invariants_hold().await;
    server.stop().await;
}

#[tokio::test]
async fn a_confirmation_committed_before_the_crash_is_settled_and_noticed_once() {
    let mut w = World::new().await;
    let server = w.start(Some("bookings.confirm.committed")).await;
    let (buyer, booking, payment) = w.buyer_with_payment().await;
    // The success is stored; the consumer dies right after confirming the booking (perhaps
    // before the webhook was answered: then the provider's retry is a duplicate).
    let _ = w.send_webhook(&World::success_webhook(payment["id"].as_str().unwrap())).await;
    server.killed().await;

    let server = w.start(None).await;
    w.until_booking(&buyer, &booking, "confirmed").await;
    w.invariants_hold().await;
    let mailbox = w.get("/api/v1/me/messages", &buyer).await;
    let confirmations =
        mailbox["items"].as_array().unwrap().iter().filter(|m| m["kind"] == "booking_confirmed").count();
    assert_eq!(confirmations, 1, "{mailbox}");
    server.stop().await;
}

#[tokio::test]
async fn messages_delivered_but_not_yet_deleted_act_once_after_the_crash() {
    let mut w = World::new().await;
    // Set up without the crash point; let the relay drain.
    let server = w.start(None).await;
    let (buyer, booking, payment) = w.buyer_with_payment().await;
    let db = w.db().await;
    outbox_empty(&db).await;
    server.stop().await;

    // The next batch the relay delivers (the payment's success) is delivered, then the relay dies
    // before deleting it from the outbox.
    let server = w.start(Some("messaging.relay.delivered")).await;
    let _ = w.send_webhook(&World::success_webhook(payment["id"].as_str().unwrap())).await;
    server.killed().await;

    let server = w.start(None).await;
    w.until_booking(&buyer, &booking, "confirmed").await;
    outbox_empty(&db).await;
    w.invariants_hold().await;
    let mailbox = w.get("/api/v1/me/messages", &buyer).await;
    let confirmations =
        mailbox["items"].as_array().unwrap().iter().filter(|m| m["kind"] == "booking_confirmed").count();
    assert_eq!(confirmations, 1, "redelivered, acted on once: {mailbox}");
    db.close().await;
    server.stop().await;
}

async fn outbox_empty(db: &Db) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = tg_platform::with_db!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM messaging_outbox")
            .fetch_one(pool).await)
        .unwrap();
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the outbox still holds {n} rows");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// E-mail is sent at least once: a crash after sending and before recording it sends it again on
/// restart; it is never lost, and the mailbox holds the notice once.
#[tokio::test]
async fn a_notice_sent_before_the_crash_is_sent_again_never_lost() {
    let Some(sink) = crate::notifications::start_smtp_sink() else { return };
    let mut w = World::new().await;
    w.env.push(("SMTP_URL".into(), format!("smtp://127.0.0.1:{}", sink.port)));
    // Whatever the demo data queued goes out first, without the crash point.
    let server = w.start(None).await;
    let db = w.db().await;
    outbox_empty(&db).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending: i64 = tg_platform::with_db!(&db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications_deliveries WHERE status = 'pending'").fetch_one(pool).await)
        .unwrap();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} deliveries still pending");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    db.close().await;
    server.stop().await;

    let server = w.start(Some("notifications.delivery.sent")).await;
    let email = "late-reader@example.com";
    let body = json!({"email": email, "password": "a long password", "display_name": "Reader"});
    // Committed before the mail goes out (the answer may be cut short by the crash).
    if let Ok(res) = w.post("/api/v1/auth/register", None, None, &body).await {
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    server.killed().await;
    // Registration writes twice: the welcome and the link proving the address.
    let to_reader = |mails: Vec<String>| mails.into_iter().filter(|m| m.contains(email)).collect::<Vec<_>>();
    let before = to_reader(crate::notifications::mails(&sink.dir));
    assert_eq!(before.len(), 1, "one sent before the crash");

    let server = w.start(None).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let sent_again_and_the_other = |mails: &[String]| {
        let welcome = mails.iter().filter(|m| m.contains("Welcome to Ticket Gateway")).count();
        let link = mails.iter().filter(|m| m.contains("Confirm your e-mail address")).count();
        (welcome, link) == (2, 1) || (welcome, link) == (1, 2)
    };
    while !sent_again_and_the_other(&to_reader(crate::notifications::mails(&sink.dir))) {
        assert!(Instant::now() < deadline, "the mail was not sent again: {}", w.log(w.starts));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = w.login(email, "a long password").await;
    let mailbox = w.get("/api/v1/me/messages", &token).await;
    assert_eq!(
        mailbox["items"].as_array().unwrap().len(),
        1,
        "one notice in the mailbox (the link is not there): {mailbox}"
    );
    server.stop().await;
}
