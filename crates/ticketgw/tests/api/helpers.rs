//! `spawn_app`: one application on a random port with a database of its own.

use std::{net::SocketAddr, path::PathBuf};

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use tg_platform::auth::Role;
use ticketgw::{app::App, config::Settings};
use tokio::{net::TcpListener, task::JoinHandle};

pub struct TestApp {
    pub base: String,
    pub http: Client,
    pub app: App,
    server: JoinHandle<()>,
    sqlite_dir: Option<PathBuf>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Settings for a fresh database: a new PostgreSQL database when `TEST_DATABASE_URL` is set, else a
/// SQLite file in a new temporary directory.
pub async fn fresh_settings() -> (Settings, Option<PathBuf>) {
    let mut s = Settings { database_max_connections: Some(5), ..Default::default() };
    let name = format!("tg_test_{}", uuid::Uuid::new_v4().simple());
    match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(admin_url) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin_url).await.expect("connect TEST_DATABASE_URL");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
            let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
            s.database_url = Some(format!("{base}/{name}"));
            // Uploads (banners) go to a directory of the test's own, not into the checkout.
            s.data_dir = Some(std::env::temp_dir().join(name));
            (s, None)
        }
        None => {
            let dir = std::env::temp_dir().join(name);
            s.data_dir = Some(dir.clone());
            (s, Some(dir))
        }
    }
}

pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_with_consumers(configure, Vec::new()).await
}

/// An application with extra consumers of domain events.
pub async fn spawn_with_consumers(
    configure: impl FnOnce(&mut Settings),
    consumers: Vec<std::sync::Arc<dyn tg_messaging::Consumer>>,
) -> TestApp {
    let (mut settings, sqlite_dir) = fresh_settings().await;
    configure(&mut settings);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = ticketgw::app::build_with(&settings, addr, consumers).await.expect("build app");
    let service = app.router.clone().into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, service).await.unwrap();
    });
    TestApp { base: format!("http://{addr}"), http: Client::new(), app, server, sqlite_dir }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut req = self.http.request(method, self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send(reqwest::Method::POST, path, token, body).await
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Response {
        self.post("/api/v1/auth/register", None, &json!({"email": email, "password": password, "display_name": name}))
            .await
    }

    /// Register through the API and follow the verification link of the mail it sends.
    pub async fn register_verified(&self, email: &str, password: &str, name: &str) {
        let mut bus = self.app.bus.subscribe();
        assert_eq!(self.register(email, password, name).await.status(), StatusCode::ACCEPTED);
        let mail = account_mail(&mut bus, "verify_email").await;
        let res = self.post("/api/v1/auth/verify-email", None, &json!({"token": link_token(&mail)})).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "verification of {email}");
    }

    /// Log in and return the token response body.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let res = self.post("/api/v1/auth/login", None, &json!({"email": email, "password": password})).await;
        assert_eq!(res.status(), StatusCode::OK, "login of {email}");
        res.json().await.unwrap()
    }

    /// Post a webhook signed by the sandbox now, saying `kind` (`payment.succeeded`, …) of a payment.
    pub async fn sandbox_reports(&self, kind: &str, payment_id: &str, amount_cents: i64) -> Response {
        let sandbox = self.app.payments.sandbox().expect("sandbox offered");
        let now = jiff::Timestamp::now().as_second();
        let (signature, body) = sandbox.webhook_for(kind, payment_id, amount_cents, "USD", now);
        self.http
            .post(self.url("/api/v1/payments/webhooks/sandbox"))
            .header("sandbox-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A new account with `roles` (created directly in the users service), logged in: (user id, access token).
    pub async fn user_with(&self, roles: &[Role]) -> (String, String) {
        let email = format!("u{}@example.com", uuid::Uuid::new_v4().simple());
        let user = self.app.users.create_user(&email, "a long password", "Test User", roles).await.unwrap();
        let tokens = self.login(&email, "a long password").await;
        (user.id, tokens["access_token"].as_str().unwrap().to_owned())
    }
}

/// The payload of the next `user.account_mail` of `kind` (`verify_email`, `reset_password`, …) the
/// relay delivers; panics after 10 s.
pub async fn account_mail(
    bus: &mut tokio::sync::broadcast::Receiver<tg_platform::bus::DomainEvent>,
    kind: &str,
) -> Value {
    let wait = async {
        loop {
            let m = bus.recv().await.expect("bus open");
            if m.routing_key == "user.account_mail" && m.payload["kind"] == kind {
                return m.payload;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait).await.unwrap_or_else(|_| panic!("no {kind} mail"))
}

/// The single-use token in a mail's link.
pub fn link_token(mail: &Value) -> String {
    let link = mail["link"].as_str().expect("the mail carries a link");
    link.split_once("?token=").expect("a token in the link").1.to_owned()
}

/// Assert a problem+json answer with `status` and `code`; returns the body.
pub async fn assert_problem(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status");
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(ct, "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "problem code in {body}");
    assert_eq!(body["status"], status.as_u16());
    body
}

/// The next domain event with `routing_key` (others are skipped), waiting at most five seconds.
pub async fn next_event(
    bus: &mut tokio::sync::broadcast::Receiver<tg_platform::bus::DomainEvent>,
    routing_key: &str,
) -> tg_platform::bus::DomainEvent {
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let msg = bus.recv().await.expect("bus open");
            if msg.routing_key == routing_key {
                return msg;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {routing_key} event"))
}

/// Serve `router` on a free local port (stand-ins for outside services); its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}
