//! The microservices mode as real processes: the gateway, users, events, two bookings, two
//! payments, notifications, admin and web, each service on its own PostgreSQL database, domain
//! events through RabbitMQ. The attendee and organizer journey runs through the gateway only;
//! then the faults: payments killed mid-journey, one bookings instance killed during a sale,
//! requests that skip the gateway. Needs PostgreSQL (`TEST_DATABASE_URL`) and RabbitMQ; skipped
//! without them (CI has both and requires RabbitMQ).

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::{
    bookings::{bookable_doc, items},
    messaging::{broker_reachable, AMQP_URL, BROKER},
    tls::{client_trusting, TestCa},
};

pub const SANDBOX_SECRET: &str = "whsec_microservices_tests";
const SERVICES: [&str; 6] = ["users", "events", "bookings", "payments", "notifications", "admin"];

/// The processes of one topology, by instance name (`bookings-2`, …).
pub struct Cluster {
    env: Vec<(String, String)>,
    ports: HashMap<String, u16>,
    children: HashMap<String, Child>,
    logs: PathBuf,
    pub http: Client,
    pub databases: HashMap<&'static str, String>,
    /// `SERVICE_CLIENTS` of the users service.
    clients: String,
    /// `https` when every process serves TLS.
    scheme: &'static str,
    /// Sent on every request of [`Cluster::send`] and the sandbox's webhook (a traced client).
    pub traceparent: Option<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.start_kill();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cluster {
    /// Databases, ports and settings for every process (nothing started yet); `None` without
    /// PostgreSQL or RabbitMQ.
    pub async fn new() -> Option<Cluster> {
        Cluster::with_databases(true).await
    }

    /// As [`Cluster::new`]; `own_databases: false` puts every service on one shared database.
    pub async fn with_databases(own_databases: bool) -> Option<Cluster> {
        let Some(admin_url) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
            eprintln!("SKIPPED: the microservices topology runs on PostgreSQL (set TEST_DATABASE_URL)");
            return None;
        };
        if !broker_reachable() {
            return None;
        }
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin_url).await.expect("connect TEST_DATABASE_URL");
        let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let mut databases = HashMap::new();
        let mut env = vec![
            ("AMQP_URL".to_owned(), AMQP_URL.to_owned()),
            ("AMQP_PREFIX".to_owned(), format!("tgms{}", &run[..8])),
            ("SANDBOX_WEBHOOK_SECRET".to_owned(), SANDBOX_SECRET.to_owned()),
            ("PAYMENTS_SANDBOX".to_owned(), "true".to_owned()),
            ("PAYMENTS_RECONCILE_AFTER_SECS".to_owned(), "2".to_owned()),
            ("REGISTER_IP_BURST".to_owned(), "1000".to_owned()),
            ("LOGIN_IP_BURST".to_owned(), "1000".to_owned()),
            ("GATEWAY_IP_BURST".to_owned(), "5000".to_owned()),
            ("GATEWAY_IP_PER_SECOND".to_owned(), "5000".to_owned()),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
        ];
        let mut clients = Vec::new();
        if !own_databases {
            let name = format!("tg_test_{run}");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
            env.push(("DATABASE_URL".to_owned(), format!("{base}/{name}")));
        }
        for s in SERVICES {
            let url = if own_databases {
                let name = format!("tg_test_{run}_{s}");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
                let url = format!("{base}/{name}");
                env.push((format!("{}_DATABASE_URL", s.to_uppercase()), url.clone()));
                url
            } else {
                format!("{base}/tg_test_{run}")
            };
            databases.insert(s, url);
        }
        let mut ports = HashMap::new();
        for s in SERVICES.iter().chain(&["web", "gateway"]) {
            let port = free_port();
            ports.insert(s.to_string(), port);
            env.push((format!("TICKETGW_{}_URL", s.to_uppercase()), format!("http://127.0.0.1:{port}")));
        }
        // The services that call others with a service token; the list goes to the users service only.
        for s in ["events", "bookings", "payments", "notifications"] {
            clients.push(format!("{s}:secret-of-{s}-0123456789"));
        }
        env.push(("PUBLIC_URL".to_owned(), format!("http://127.0.0.1:{}", ports["gateway"])));
        let logs = std::env::temp_dir().join(format!("tg-ms-{run}"));
        std::fs::create_dir_all(&logs).unwrap();
        let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let clients = clients.join(",");
        Some(Cluster {
            env,
            ports,
            children: HashMap::new(),
            logs,
            http,
            databases,
            clients,
            scheme: "http",
            traceparent: None,
        })
    }

    /// As [`Cluster::new`], every process serving HTTPS with a certificate of a CA made here, and
    /// trusting that CA (`TLS_CA_FILE`) on its calls to the others.
    pub async fn with_tls() -> Option<Cluster> {
        let mut c = Cluster::new().await?;
        let ca = TestCa::new(&c.logs.join("tls"), "internal-ca");
        let pair = ca.issue("services");
        for (key, value) in &mut c.env {
            if key.ends_with("_URL") && value.starts_with("http://") {
                *value = value.replacen("http://", "https://", 1);
            }
        }
        c.env.push(("TLS_CERT_FILE".to_owned(), pair.cert.display().to_string()));
        c.env.push(("TLS_KEY_FILE".to_owned(), pair.key.display().to_string()));
        c.env.push(("TLS_CA_FILE".to_owned(), ca.cert().display().to_string()));
        c.http = client_trusting(&ca);
        c.scheme = "https";
        Some(c)
    }

    /// Set `var` for every instance started from now on.
    pub fn set_env(&mut self, var: &str, value: &str) {
        self.without_env(var);
        self.env.push((var.to_owned(), value.to_owned()));
    }

    /// Leave `var` out of the environment of every instance started from now on (a misconfigured one).
    pub fn without_env(&mut self, var: &str) {
        self.env.retain(|(key, _)| key != var);
    }

    fn command(&self, target: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketgw"));
        for var in ["DATABASE_URL", "TICKETGW_DATA_DIR", "FAILPOINTS", "AMQP_URL", "TICKETGW_TARGET", "TICKETGW_DEMO"] {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().cloned())
            .env("TICKETGW_DATA_DIR", self.logs.join("data"))
            .env("SERVICE_CLIENT_ID", target)
            .env("SERVICE_CLIENT_SECRET", format!("secret-of-{target}-0123456789"))
            .env("SERVICE_CLIENTS", if target == "users" { self.clients.as_str() } else { "" })
            .kill_on_drop(true);
        cmd
    }

    /// Start instance `name` of `target` and wait until it is ready. Instances beyond the first
    /// (`bookings-2`) get their own port.
    pub async fn start(&mut self, name: &str, target: &str) {
        let port = *self.ports.entry(name.to_owned()).or_insert_with(free_port);
        let log = std::fs::File::create(self.logs.join(format!("{name}.log"))).unwrap();
        let mut cmd = self.command(target);
        cmd.args(["serve", "--target", target, "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("start ticketgw");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{name} exited at start ({status}): {}", self.log(name));
            }
            let ready = self.http.get(self.url_of(name, "/healthz")).send().await;
            if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
                break;
            }
            assert!(Instant::now() < deadline, "{name} not ready: {}", self.log(name));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.children.insert(name.to_owned(), child);
    }

    /// Every process of the topology the issue names.
    pub async fn start_all(&mut self) {
        self.start("users", "users").await;
        for s in ["events", "bookings", "payments", "notifications", "admin", "web"] {
            self.start(s, s).await;
        }
        self.start("bookings-2", "bookings").await;
        self.start("payments-2", "payments").await;
        self.start("gateway", "gateway").await;
        // Ready when the gateway finds every service ready.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.get_status("/readyz").await != StatusCode::OK {
            assert!(Instant::now() < deadline, "the topology did not become ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Load the demo data (accounts, the fixture event) into the shared database.
    pub async fn demo(&mut self) {
        let out =
            self.command("users").env("DATABASE_URL", &self.databases["users"]).arg("demo").output().await.unwrap();
        assert!(out.status.success(), "ticketgw demo: {}", String::from_utf8_lossy(&out.stderr));
        // The processes offer what the demo offers (the sandbox and KHQR's demo account).
        self.env.push(("TICKETGW_DEMO".to_owned(), "true".to_owned()));
    }

    /// `kill -9` an instance.
    pub async fn kill(&mut self, name: &str) {
        let mut child = self.children.remove(name).expect("running");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn url_of(&self, name: &str, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.ports[name])
    }

    /// Through the gateway.
    pub fn url(&self, path: &str) -> String {
        self.url_of("gateway", path)
    }

    async fn get_status(&self, path: &str) -> StatusCode {
        self.http.get(self.url(path)).send().await.map(|r| r.status()).unwrap_or(StatusCode::BAD_GATEWAY)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        if let Some(tp) = &self.traceparent {
            req = req.header("traceparent", tp);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.unwrap()
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        expect: StatusCode,
    ) -> Value {
        let res = self.send(method.clone(), path, token, None, body).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, expect, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let body = json!({"email": email, "password": password});
        let tokens = self.json(Method::POST, "/api/v1/auth/login", None, Some(&body), StatusCode::OK).await;
        tokens["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn register(&self, email: &str) -> String {
        let body = json!({"email": email, "password": "a long password", "display_name": email});
        self.json(Method::POST, "/api/v1/auth/register", None, Some(&body), StatusCode::ACCEPTED).await;
        self.login(email, "a long password").await
    }

    /// The slug of event `id`, read through the gateway.
    pub async fn slug(&self, id: &str) -> String {
        let event = self.json(Method::GET, &format!("/api/v1/events/{id}"), None, None, StatusCode::OK).await;
        event["slug"].as_str().expect("an event has a slug").to_owned()
    }

    /// An admin account, made with the CLI on the users service's database.
    pub async fn admin(&self) -> String {
        self.user_by_cli("admin@example.com", "the admin password", &["--role", "admin"]).await;
        self.login("admin@example.com", "the admin password").await
    }

    /// An account made with the CLI on the users service's database (its address counts as verified).
    async fn user_by_cli(&self, email: &str, password: &str, extra: &[&str]) {
        let out = self
            .command("users")
            .env("DATABASE_URL", &self.databases["users"])
            .env("TICKETGW_USER_PASSWORD", password)
            .args(["user", "create", "--email", email, "--display-name", email])
            .args(extra)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "user create: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Wait until `check` holds, within 30 s.
    pub async fn until<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !check().await {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `buyer` holds one `vip` ticket of the event `slug`, pays in the sandbox, and the
    /// confirmation notice reaches their mailbox.
    pub async fn buy_one_vip_ticket(&self, buyer: &str, slug: &str) {
        let hold = items(slug, &[("vip", 1)]);
        let res = self.send(Method::POST, "/api/v1/bookings", Some(buyer), Some("h1"), Some(&hold)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let booking_id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        let pay = json!({"booking_id": booking_id, "provider": "sandbox"});
        let res = self.send(Method::POST, "/api/v1/payments", Some(buyer), Some("p1"), Some(&pay)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let payment_id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        assert_eq!(self.sandbox_pays(&payment_id, 10_000).await, StatusCode::OK);
        self.until("the confirmation notice arrives", || async move {
            let mailbox = self.json(Method::GET, "/api/v1/me/messages", Some(buyer), None, StatusCode::OK).await;
            mailbox["items"].as_array().unwrap().iter().any(|m| m["kind"] == "booking_confirmed")
        })
        .await;
    }

    /// A signed sandbox webhook saying the payment succeeded (what the sandbox's pay page sends).
    pub async fn sandbox_pays(&self, payment_id: &str, amount_cents: i64) -> StatusCode {
        let body = serde_json::to_vec(&json!({
            "id": format!("sbx_evt_{payment_id}"), "type": "payment.succeeded", "payment_id": payment_id,
            "amount_cents": amount_cents, "currency": "USD"
        }))
        .unwrap();
        let signature =
            tg_payments::providers::signature::sign(SANDBOX_SECRET, jiff::Timestamp::now().as_second(), &body);
        let mut req =
            self.http.post(self.url("/api/v1/payments/webhooks/sandbox")).header("sandbox-signature", signature);
        if let Some(tp) = &self.traceparent {
            req = req.header("traceparent", tp);
        }
        req.body(body).send().await.unwrap().status()
    }
}

/// An organizer approved through the admin service, with an event on sale: (organizer token, event id).
pub async fn organizer_with_event(c: &Cluster, admin: &str, vip: i64) -> (String, String) {
    let email = format!("org-{}@example.com", uuid::Uuid::new_v4().simple());
    // Applying needs a verified address; no mail is read here, so the account comes from the CLI.
    c.user_by_cli(&email, "a long password", &[]).await;
    let applicant = c.login(&email, "a long password").await;
    let profile = json!({"name": "Phnom Penh Live", "contact_email": email, "message": "concerts"});
    let application = c
        .json(Method::POST, "/api/v1/organizer-applications", Some(&applicant), Some(&profile), StatusCode::CREATED)
        .await;
    let path = format!("/api/v1/admin/organizer-applications/{}/approve", application["id"].as_str().unwrap());
    c.json(Method::POST, &path, Some(admin), Some(&json!({})), StatusCode::OK).await;
    // The role is in the next token.
    let organizer = c.login(&email, "a long password").await;
    let n = rand_n();
    let mut doc = bookable_doc(n, vip);
    doc["organizer"]["id"] = json!("");
    doc["status"] = json!("draft");
    let created = c.json(Method::POST, "/api/v1/events", Some(&organizer), Some(&doc), StatusCode::CREATED).await;
    let id = created["id"].as_str().unwrap().to_owned();
    c.json(Method::POST, &format!("/api/v1/events/{id}/publish"), Some(&organizer), None, StatusCode::OK).await;
    (organizer, id)
}

fn rand_n() -> usize {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as usize + 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_journey_runs_through_the_gateway_across_separate_processes() {
    let _turn = BROKER.lock().await;
    let Some(mut c) = Cluster::new().await else { return };
    c.start_all().await;
    let admin = c.admin().await;

    // Organizer: apply, approved by the admin service, create and publish an event.
    let (organizer, event) = organizer_with_event(&c, &admin, 10).await;
    let slug = c.slug(&event).await;

    // Attendee: hold two VIP tickets (bookings fills its read model of the event from events).
    let buyer = c.register(&format!("buyer-{}@example.com", uuid::Uuid::new_v4().simple())).await;
    async fn hold(c: &Cluster, buyer: &str, slug: &str, key: &str, n: i64) -> reqwest::Response {
        let body = items(slug, &[("vip", n)]);
        c.send(Method::POST, "/api/v1/bookings", Some(buyer), Some(key), Some(&body)).await
    }
    let res = hold(&c, &buyer, &slug, "h1", 2).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let booking: Value = res.json().await.unwrap();
    let booking_id = booking["id"].as_str().unwrap().to_owned();

    // Payments is killed mid-journey: holds still succeed.
    c.kill("payments").await;
    c.kill("payments-2").await;
    let res = hold(&c, &buyer, &slug, "h2", 1).await;
    assert_eq!(res.status(), StatusCode::CREATED, "a hold does not need payments");
    let pay = json!({"booking_id": booking_id, "provider": "sandbox"});
    let res = c.send(Method::POST, "/api/v1/payments", Some(&buyer), Some("p1"), Some(&pay)).await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY, "payments is down: the gateway says so");
    c.start("payments", "payments").await;
    c.start("payments-2", "payments").await;

    // Pay in the sandbox: payments confirms through bookings' internal route with its service token.
    let res = c.send(Method::POST, "/api/v1/payments", Some(&buyer), Some("p1"), Some(&pay)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let payment: Value = res.json().await.unwrap();
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    assert_eq!(c.sandbox_pays(&payment_id, 20_000).await, StatusCode::OK);
    let path = format!("/api/v1/bookings/{booking_id}");
    c.until("the booking is confirmed", || {
        let (c, buyer, path) = (&c, &buyer, &path);
        async move { c.json(Method::GET, path, Some(buyer), None, StatusCode::OK).await["status"] == "confirmed" }
    })
    .await;
    let tickets = c.json(Method::GET, "/api/v1/me/tickets", Some(&buyer), None, StatusCode::OK).await;
    let tickets = tickets["items"].as_array().unwrap().clone();
    assert_eq!(tickets.len(), 2);

    // The notice arrives exactly once (notifications reads the contact and QR codes over HTTP).
    c.until("the confirmation notice arrives", || {
        let (c, buyer) = (&c, &buyer);
        async move {
            let mailbox = c.json(Method::GET, "/api/v1/me/messages", Some(buyer), None, StatusCode::OK).await;
            mailbox["items"].as_array().unwrap().iter().any(|m| m["kind"] == "booking_confirmed")
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mailbox = c.json(Method::GET, "/api/v1/me/messages", Some(&buyer), None, StatusCode::OK).await;
    let confirmations =
        mailbox["items"].as_array().unwrap().iter().filter(|m| m["kind"] == "booking_confirmed").count();
    assert_eq!(confirmations, 1, "{mailbox}");

    // Check-in at the door (bookings asks events, with the organizer's own token, who manages it).
    let scan = json!({"token": tickets[0]["token"], "nonce": "n1", "gate": "A"});
    let path = format!("/api/v1/events/{event}/checkins");
    let res = c.json(Method::POST, &path, Some(&organizer), Some(&scan), StatusCode::OK).await;
    assert_eq!(res["result"], "valid");
    let stranger = c.register(&format!("stranger-{}@example.com", uuid::Uuid::new_v4().simple())).await;
    c.json(Method::POST, &path, Some(&stranger), Some(&scan), StatusCode::FORBIDDEN).await;

    // Refund the other ticket: payments asks bookings with the buyer's token, then pays back.
    let refund = json!({"tickets": [tickets[1]["id"]]});
    let path = format!("/api/v1/payments/{payment_id}/refund");
    let res = c.send(Method::POST, &path, Some(&buyer), Some("r1"), Some(&refund)).await;
    assert!(res.status().is_success(), "refund: {}", res.text().await.unwrap());
    let path = format!("/api/v1/payments/{payment_id}");
    c.until("the refund is paid back", || {
        let (c, buyer, path) = (&c, &buyer, &path);
        async move {
            let p = c.json(Method::GET, path, Some(buyer), None, StatusCode::OK).await;
            p["refunded_amount"].as_f64() == Some(100.0)
        }
    })
    .await;

    // Admin moderation through the admin service; a non-admin is refused.
    let listed = c.json(Method::GET, "/api/v1/admin/events", Some(&admin), None, StatusCode::OK).await;
    assert!(listed["items"].as_array().unwrap().iter().any(|e| e["id"] == event.as_str()), "{listed}");
    c.json(Method::GET, "/api/v1/admin/users", Some(&admin), None, StatusCode::OK).await;
    c.json(Method::GET, "/api/v1/admin/events", Some(&buyer), None, StatusCode::FORBIDDEN).await;

    // The web UI through the gateway: the event page, rendered by the web process from the API.
    let page = c.http.get(c.url(&format!("/events/{slug}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("VIP"));

    // One merged OpenAPI document.
    let doc = c.json(Method::GET, "/api/v1/openapi.json", None, None, StatusCode::OK).await;
    for path in
        ["/api/v1/auth/login", "/api/v1/bookings", "/api/v1/payments", "/api/v1/admin/users", "/api/v1/me/messages"]
    {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from the merged document");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_that_skip_the_gateway_or_forge_tokens_are_refused() {
    let _turn = BROKER.lock().await;
    let Some(mut c) = Cluster::new().await else { return };
    c.start("users", "users").await;
    c.start("bookings", "bookings").await;
    c.start("gateway", "gateway").await;
    let user = c.register("someone@example.com").await;

    // Straight to the bookings service: internal routes need a service token, not none nor a user's.
    let direct = c.http.get(c.url_of("bookings", "/internal/v1/bookings/anything")).send().await.unwrap();
    assert_eq!(direct.status(), StatusCode::UNAUTHORIZED);
    let as_user =
        c.http.get(c.url_of("bookings", "/internal/v1/bookings/anything")).bearer_auth(&user).send().await.unwrap();
    assert_eq!(as_user.status(), StatusCode::FORBIDDEN);
    let mine = c.http.get(c.url_of("bookings", "/api/v1/me/bookings")).send().await.unwrap();
    assert_eq!(mine.status(), StatusCode::UNAUTHORIZED);
    // The gateway does not route /internal at all.
    let res = c.send(Method::GET, "/internal/v1/bookings/anything", Some(&user), None, None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A forged token (signed by another key, same claims) is refused by the gateway and the service.
    let forged = {
        let parts: Vec<&str> = user.split('.').collect();
        format!("{}.{}.{}", parts[0], parts[1], "A".repeat(86))
    };
    let res = c.send(Method::GET, "/api/v1/me/bookings", Some(&forged), None, None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = c.http.get(c.url_of("bookings", "/api/v1/me/bookings")).bearer_auth(&forged).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Service tokens: only registered clients get one, from the users service itself (the gateway
    // does not route the grant), and a service token is nobody's account.
    let grant = |secret: &'static str| {
        let form = [("grant_type", "client_credentials"), ("client_id", "payments"), ("client_secret", secret)];
        c.http.post(c.url_of("users", "/api/v1/auth/token")).form(&form).send()
    };
    assert_eq!(grant("wrong-secret-0123456789").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let res =
        c.http.post(c.url("/api/v1/auth/token")).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "the gateway does not route the grant");
    let token: Value = grant("secret-of-payments-0123456789").await.unwrap().json().await.unwrap();
    let service = token["access_token"].as_str().unwrap();
    let res = c.http.get(c.url_of("bookings", "/internal/v1/bookings/nope")).bearer_auth(service).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "a service token opens internal routes");
    for path in ["/api/v1/me/bookings", "/api/v1/me"] {
        let name = if path == "/api/v1/me" { "users" } else { "bookings" };
        let res = c.http.get(c.url_of(name, path)).bearer_auth(service).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}: a service token is nobody's account");
    }
    let body = json!({"event_id": "any", "items": [{"ticket_type_id": "vip", "quantity": 1}]});
    let res = c.send(Method::POST, "/api/v1/bookings", Some(service), Some("k"), Some(&body)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "nor can it book");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_of_two_bookings_instances_mid_sale_oversells_nothing_and_loses_no_201() {
    let _turn = BROKER.lock().await;
    let Some(mut c) = Cluster::new().await else { return };
    c.start_all().await;
    let admin = c.admin().await;
    let (_, event) = organizer_with_event(&c, &admin, 40).await;
    let slug = c.slug(&event).await;
    let mut buyers = Vec::new();
    for i in 0..60 {
        buyers.push(c.register(&format!("sale-{i}-{}@example.com", uuid::Uuid::new_v4().simple())).await);
    }
    // Buyers go straight to one of the two instances (as a load balancer would), each retrying on
    // the other with the same idempotency key when its instance is gone.
    let urls = [c.url_of("bookings", "/api/v1/bookings"), c.url_of("bookings-2", "/api/v1/bookings")];
    let mut tasks = Vec::new();
    for (i, buyer) in buyers.into_iter().enumerate() {
        let (http, urls, body) = (c.http.clone(), urls.clone(), items(&slug, &[("vip", 1)]));
        tasks.push(tokio::spawn(async move {
            for attempt in 0..40 {
                let url = &urls[(i + attempt) % 2];
                let req = http.post(url).bearer_auth(&buyer).header("idempotency-key", "k").json(&body);
                match req.send().await {
                    Ok(res) if res.status() == StatusCode::CREATED => {
                        let b: Value = res.json().await.unwrap();
                        return Some(b["id"].as_str().unwrap().to_owned());
                    }
                    Ok(res) if res.status() == StatusCode::CONFLICT => return None,
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            panic!("buyer {i} got no answer from either instance");
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.kill("bookings-2").await;
    let mut created = Vec::new();
    for t in tasks {
        created.extend(t.await.unwrap());
    }
    assert!(created.len() <= 40, "oversold: {} holds of 40 seats", created.len());
    assert_eq!(created.len(), 40, "every seat sells when 60 want 40");
    // Every 201 exists in bookings' database, and the counters say 40 held.
    let pool = sqlx::PgPool::connect(&c.databases["bookings"]).await.unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM bookings_bookings WHERE event_id = $1")
        .bind(&event)
        .fetch_all(&pool)
        .await
        .unwrap();
    for id in &created {
        assert!(ids.contains(id), "the 201 for {id} was lost");
    }
    assert_eq!(ids.len(), 40);
    let held: i64 = sqlx::query_scalar("SELECT held FROM bookings_inventory WHERE event_id = $1 AND type_id = 'vip'")
        .bind(&event)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(held, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_tls_every_process_verifies_the_internal_ca_on_its_calls() {
    let _turn = BROKER.lock().await;
    let Some(mut c) = Cluster::with_tls().await else { return };
    c.start_all().await;
    let admin = c.admin().await;
    let (_organizer, event) = organizer_with_event(&c, &admin, 5).await;
    let slug = c.slug(&event).await;

    // Hold (bookings asks events), pay (payments confirms through bookings), the notice
    // (notifications asks users, events and bookings): every hop over HTTPS.
    let buyer = c.register(&format!("buyer-{}@example.com", uuid::Uuid::new_v4().simple())).await;
    c.buy_one_vip_ticket(&buyer, &slug).await;
    let tickets = c.json(Method::GET, "/api/v1/me/tickets", Some(&buyer), None, StatusCode::OK).await;
    assert_eq!(tickets["items"].as_array().unwrap().len(), 1);

    // Plain HTTP is not served on a service's port.
    let plain = c.url_of("bookings", "/healthz").replacen("https://", "http://", 1);
    let answered = Client::new().get(plain).send().await.is_ok_and(|r| r.status() == StatusCode::OK);
    assert!(!answered, "a TLS port must not answer plain HTTP");

    // A gateway that does not trust the internal CA reaches no service: certificates are checked.
    c.without_env("TLS_CA_FILE");
    c.start("gateway-2", "gateway").await;
    let res = c.http.get(c.url_of("gateway-2", "/api/v1/events")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    let res = c.http.get(c.url_of("gateway-2", "/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}
