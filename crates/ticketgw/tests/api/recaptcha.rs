//! reCAPTCHA on register and login, against a local server speaking Google's siteverify format.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{extract::State, routing::post, Form, Json, Router};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_with, TestApp};

type Seen = Arc<Mutex<Vec<std::collections::HashMap<String, String>>>>;

/// Answers like https://www.google.com/recaptcha/api/siteverify for a few fixed client tokens.
async fn siteverify(
    State(seen): State<Seen>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    seen.lock().unwrap().push(form.clone());
    if form.get("secret").map(String::as_str) != Some("test-secret") {
        return Json(json!({"success": false, "error-codes": ["invalid-input-secret"]}));
    }
    let ok = |action: &str, score: f64| json!({"success": true, "score": score, "action": action, "challenge_ts": "2026-11-25T10:00:00Z", "hostname": "localhost"});
    Json(match form.get("response").map(String::as_str) {
        Some("human-register") => ok("register", 0.9),
        Some("human-login") => ok("login", 0.9),
        Some("bot-register") => ok("register", 0.1),
        _ => json!({"success": false, "error-codes": ["invalid-input-response"]}),
    })
}

async fn verify_server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let router = Router::new().route("/recaptcha/api/siteverify", post(siteverify)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/recaptcha/api/siteverify"), seen)
}

async fn app_with_recaptcha(verify_url: String) -> TestApp {
    spawn_with(move |s| {
        s.recaptcha_secret = Some("test-secret".into());
        s.recaptcha_verify_url = Some(verify_url);
        s.recaptcha_min_score = Some(0.5);
    })
    .await
}

fn register_body(token: Option<&str>) -> Value {
    json!({"email": "human@example.com", "password": "correct horse battery", "display_name": "Human", "recaptcha_token": token})
}

#[tokio::test]
async fn register_and_login_require_a_passing_recaptcha() {
    let (url, seen) = verify_server().await;
    let app = app_with_recaptcha(url).await;

    assert_problem(
        app.post("/api/v1/auth/register", None, &register_body(None)).await,
        StatusCode::BAD_REQUEST,
        "recaptcha_required",
    )
    .await;
    assert_problem(
        app.post("/api/v1/auth/register", None, &register_body(Some("forged"))).await,
        StatusCode::BAD_REQUEST,
        "recaptcha_failed",
    )
    .await;
    // A v3 score under the threshold is refused.
    assert_problem(
        app.post("/api/v1/auth/register", None, &register_body(Some("bot-register"))).await,
        StatusCode::BAD_REQUEST,
        "recaptcha_failed",
    )
    .await;
    // A token minted for another action (login) does not pass for register.
    assert_problem(
        app.post("/api/v1/auth/register", None, &register_body(Some("human-login"))).await,
        StatusCode::BAD_REQUEST,
        "recaptcha_failed",
    )
    .await;
    // None of the refused attempts created the account.
    assert!(app.app.users.create_user("human@example.com", "correct horse battery", "Probe", &[]).await.is_ok());

    let body = json!({"email": "second@example.com", "password": "correct horse battery", "display_name": "H2", "recaptcha_token": "human-register"});
    assert_eq!(app.post("/api/v1/auth/register", None, &body).await.status(), StatusCode::ACCEPTED);

    let login = |token: &str| json!({"email": "second@example.com", "password": "correct horse battery", "recaptcha_token": token});
    assert_problem(
        app.post("/api/v1/auth/login", None, &login("human-register")).await,
        StatusCode::BAD_REQUEST,
        "recaptcha_failed",
    )
    .await;
    assert_eq!(app.post("/api/v1/auth/login", None, &login("human-login")).await.status(), StatusCode::OK);

    // The server sent the secret, the client's token and the client's IP, as the protocol asks.
    let seen = seen.lock().unwrap();
    let last = seen.last().unwrap();
    assert_eq!(last["secret"], "test-secret");
    assert_eq!(last["response"], "human-login");
    assert_eq!(last["remoteip"], "127.0.0.1");
}

#[tokio::test]
async fn unreachable_verifier_fails_closed() {
    // Nothing listens on this port.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let app = app_with_recaptcha(format!("http://127.0.0.1:{port}/siteverify")).await;
    let res = app.post("/api/v1/auth/register", None, &register_body(Some("human-register"))).await;
    assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "recaptcha_unavailable").await;
}
