//! Tokens from a real OpenID Connect provider (npm `oidc-provider`, see tests/oidc-provider),
//! verified through discovery + JWKS.

use std::{path::PathBuf, process::Stdio, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdin, Command},
};

use crate::helpers::{assert_problem, spawn_with, TestApp};

const AUDIENCE: &str = "http://api.ticketgw.test";

/// The provider process; it exits when `stdin` is dropped.
struct Provider {
    issuer: String,
    _child: Child,
    _stdin: ChildStdin,
}

async fn start_provider() -> Option<Provider> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider");
    if !dir.join("node_modules/oidc-provider").exists() {
        // CI installs it (`npm ci` in .ci/run) and sets TG_REQUIRE_OIDC_PROVIDER, so there this cannot be skipped.
        assert!(
            std::env::var_os("TG_REQUIRE_OIDC_PROVIDER").is_none(),
            "oidc-provider is not installed in {}",
            dir.display()
        );
        eprintln!("SKIPPED: run `npm ci` in tests/oidc-provider to test against a real OIDC provider");
        return None;
    }
    let mut child = Command::new("node")
        .arg("server.mjs")
        .arg("0")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(port) = line.strip_prefix("READY ") {
                return port.trim().to_owned();
            }
        }
        panic!("provider exited before READY");
    })
    .await
    .expect("provider READY in time");
    Some(Provider { issuer: format!("http://127.0.0.1:{port}"), _child: child, _stdin: stdin })
}

async fn token(provider: &Provider, client: &str, resource: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", "secret"),
            ("resource", resource),
            ("scope", "api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "token for {client}");
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn app_for(provider: &Provider) -> TestApp {
    let issuer = provider.issuer.clone();
    spawn_with(move |s| {
        s.oidc_issuer = Some(issuer);
        s.oidc_audience = Some(AUDIENCE.into());
        s.oidc_leeway_secs = Some(0);
        s.oidc_jwks_min_refresh_secs = Some(1);
    })
    .await
}

#[tokio::test]
async fn provider_tokens_are_accepted_with_their_roles() {
    let Some(provider) = start_provider().await else { return };
    let app = app_for(&provider).await;

    let user = token(&provider, "tg-user", AUDIENCE).await;
    let res = app.get("/api/v1/me", Some(&user)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["email"], "kc-user@example.test");
    assert_eq!(me["email_verified"], false, "the provider does not say `email_verified`");
    assert_eq!(me["display_name"], "KC User");
    assert_eq!(me["roles"], json!(["user"]));
    assert_eq!(me["identity_provider"], provider.issuer);
    // The same subject maps to the same local user every time.
    let again: Value =
        app.get("/api/v1/me", Some(&token(&provider, "tg-user", AUDIENCE).await)).await.json().await.unwrap();
    assert_eq!(again["id"], me["id"]);

    // Its `email_verified: true` is believed.
    let organizer = token(&provider, "tg-organizer", AUDIENCE).await;
    let me: Value = app.get("/api/v1/me", Some(&organizer)).await.json().await.unwrap();
    assert_eq!((me["email"].as_str(), me["email_verified"].as_bool()), (Some("kc-organizer@example.test"), Some(true)));

    // Roles come from realm_access.roles.
    let admin = token(&provider, "tg-admin", AUDIENCE).await;
    assert_eq!(app.get("/api/v1/admin/users", Some(&admin)).await.status(), StatusCode::OK);
    assert_problem(app.get("/api/v1/admin/users", Some(&user)).await, StatusCode::FORBIDDEN, "forbidden").await;
    let organizer = token(&provider, "tg-organizer", AUDIENCE).await;
    let me: Value = app.get("/api/v1/me", Some(&organizer)).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["user", "organizer"]));

    // Built-in accounts keep working next to the external provider.
    let (_, local) = app.user_with(&[]).await;
    assert_eq!(app.get("/api/v1/me", Some(&local)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn tampered_expired_and_wrong_audience_tokens_are_rejected() {
    let Some(provider) = start_provider().await else { return };
    let app = app_for(&provider).await;
    let good = token(&provider, "tg-user", AUDIENCE).await;
    assert_eq!(app.get("/api/v1/me", Some(&good)).await.status(), StatusCode::OK);
    let parts: Vec<&str> = good.split('.').collect();

    // Payload changed to claim admin, original signature kept.
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    claims["realm_access"]["roles"] = json!(["user", "admin"]);
    let tampered = format!("{}.{}.{}", parts[0], B64.encode(claims.to_string()), parts[2]);
    assert_problem(app.get("/api/v1/admin/users", Some(&tampered)).await, StatusCode::UNAUTHORIZED, "invalid_token")
        .await;

    // Signature corrupted.
    let mut sig = B64.decode(parts[2]).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 0x55;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], B64.encode(sig));
    assert_problem(app.get("/api/v1/me", Some(&bad_sig)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // Header switched to alg=none / HS256 (algorithm confusion).
    for alg in ["none", "HS256"] {
        let mut header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        header["alg"] = json!(alg);
        let t = format!("{}.{}.{}", B64.encode(header.to_string()), parts[1], parts[2]);
        assert_problem(app.get("/api/v1/me", Some(&t)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }

    // Unknown key id: the JWKS is refetched (rate-limited) and the token still refused.
    let mut header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    header["kid"] = json!("no-such-key");
    let t = format!("{}.{}.{}", B64.encode(header.to_string()), parts[1], parts[2]);
    assert_problem(app.get("/api/v1/me", Some(&t)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // Signed correctly, but for another API.
    let other = token(&provider, "tg-user", "http://other.api.test").await;
    assert_problem(app.get("/api/v1/me", Some(&other)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // Expired: the tg-short client's tokens live one second.
    let short = token(&provider, "tg-short", AUDIENCE).await;
    assert_eq!(app.get("/api/v1/me", Some(&short)).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_problem(app.get("/api/v1/me", Some(&short)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // The good token still works after all that.
    assert_eq!(app.get("/api/v1/me", Some(&good)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn tokens_of_an_unconfigured_issuer_are_rejected() {
    let Some(provider) = start_provider().await else { return };
    // This deployment trusts no external provider.
    let app = crate::helpers::spawn_app().await;
    let t = token(&provider, "tg-admin", AUDIENCE).await;
    assert_problem(app.get("/api/v1/me", Some(&t)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
}
