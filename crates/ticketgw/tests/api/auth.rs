//! Registration, login, tokens, refresh rotation, logout, rate limits.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_with};

#[tokio::test]
async fn register_login_and_me() {
    let app = spawn_app().await;
    let mut bus = app.app.bus.subscribe();
    let res = app.register("  Sokha@Example.COM ", "correct horse battery", "Sokha Chan").await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let msg = bus.recv().await.unwrap();
    assert_eq!(msg.routing_key, "user.registered");
    let user_id = msg.payload["user_id"].clone();

    let tokens = app.login("SOKHA@example.com", "correct horse battery").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap();
    let me: Value = app.get("/api/v1/me", Some(access)).await.json().await.unwrap();
    assert_eq!(me["id"], user_id);
    assert_eq!(me["email"], "sokha@example.com");
    assert_eq!(me["email_verified"], false, "not before the link is followed");
    assert_eq!(me["roles"], json!(["user"]));
    assert!(me.get("password_hash").is_none() && !me.to_string().contains("argon2"));
    assert_eq!(me["display_name"], "Sokha Chan");
    assert_eq!(me["identity_provider"], "local");

    // The access token is an EdDSA JWT whose kid is in the published JWKS.
    let header: Value = serde_json::from_slice(&B64.decode(access.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let jwks: Value = app.get("/.well-known/jwks.json", None).await.json().await.unwrap();
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).expect("kid published");
    // Anyone holding the JWKS can verify the token offline.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_audience(&["ticketgw"]);
    v.set_issuer(&[app.base.as_str()]);
    let claims =
        jsonwebtoken::decode::<Value>(access, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &v).unwrap().claims;
    assert_eq!(claims["sub"], user_id);

    let disco: Value = app.get("/.well-known/openid-configuration", None).await.json().await.unwrap();
    assert_eq!(disco["issuer"], app.base);
    assert_eq!(disco["jwks_uri"], format!("{}/.well-known/jwks.json", app.base));
}

#[tokio::test]
async fn registration_validates_fields_and_keeps_email_unique() {
    let app = spawn_app().await;
    let body = assert_problem(
        app.register("not-an-email", "correct horse battery", "X").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "email");
    let body = assert_problem(
        app.register("a@example.com", "short", "X").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "password");
    let body = assert_problem(
        app.register("a@example.com", "correct horse battery", "  ").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "display_name");
    let res = app.post("/api/v1/auth/register", None, &json!({"email": "a@example.com"})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    // A taken address gets the same answer as a new one; its owner hears of the attempt by e-mail.
    let mut bus = app.app.bus.subscribe();
    let new = app.register("a@example.com", "correct horse battery", "A").await;
    assert_eq!(new.status(), StatusCode::ACCEPTED);
    let new: Value = new.json().await.unwrap();
    crate::helpers::account_mail(&mut bus, "verify_email").await;
    let taken = app.register("A@EXAMPLE.com", "another password!", "B").await;
    assert_eq!(taken.status(), StatusCode::ACCEPTED);
    assert_eq!(taken.json::<Value>().await.unwrap(), new, "nothing tells the two apart");
    let told = crate::helpers::account_mail(&mut bus, "email_taken").await;
    assert_eq!((told["to"].as_str(), told.get("link")), (Some("a@example.com"), None));
    app.login("a@example.com", "correct horse battery").await;
    let res =
        app.post("/api/v1/auth/login", None, &json!({"email": "a@example.com", "password": "another password!"})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the second registration changed nothing");
    // The first account's password still works; the duplicate changed nothing.
    app.login("a@example.com", "correct horse battery").await;
}

#[tokio::test]
async fn bad_credentials_get_one_generic_answer() {
    let app = spawn_app().await;
    app.register("b@example.com", "correct horse battery", "B").await;
    let wrong_pw =
        app.post("/api/v1/auth/login", None, &json!({"email": "b@example.com", "password": "wrong password!"})).await;
    let wrong_pw = assert_problem(wrong_pw, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let no_user = app
        .post("/api/v1/auth/login", None, &json!({"email": "nobody@example.com", "password": "wrong password!"}))
        .await;
    let no_user = assert_problem(no_user, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(wrong_pw, no_user, "must not reveal whether the account exists");
}

#[tokio::test]
async fn bearer_tokens_are_required_and_checked() {
    let app = spawn_app().await;
    let (_, token) = app.user_with(&[]).await;
    assert_problem(app.get("/api/v1/me", None).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res =
        app.http.get(app.url("/api/v1/me")).header("authorization", format!("Basic {token}")).send().await.unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // Tampered payload (roles raised to admin) with the original signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["user", "admin"]);
    let forged = format!("{}.{}.{}", parts[0], B64.encode(claims.to_string()), parts[2]);
    assert_problem(app.get("/api/v1/me", Some(&forged)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_problem(app.get("/api/v1/admin/users", Some(&forged)).await, StatusCode::UNAUTHORIZED, "invalid_token")
        .await;

    // Signature bytes changed.
    let mut sig = B64.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], B64.encode(sig));
    assert_problem(app.get("/api/v1/me", Some(&bad_sig)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // alg=none with the same claims.
    let none_header = B64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    assert_problem(app.get("/api/v1/me", Some(&unsigned)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // Garbage.
    assert_problem(app.get("/api/v1/me", Some("not.a.jwt")).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // A token from another deployment (same claims, other signing key) is refused.
    let other = spawn_app().await;
    let (_, foreign) = other.user_with(&[]).await;
    assert_problem(app.get("/api/v1/me", Some(&foreign)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn access_tokens_expire() {
    let app = spawn_with(|s| s.access_token_ttl_secs = Some(1)).await;
    let (_, token) = app.user_with(&[]).await;
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_problem(app.get("/api/v1/me", Some(&token)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_chain() {
    let app = spawn_app().await;
    app.register("r@example.com", "correct horse battery", "R").await;
    let first = app.login("r@example.com", "correct horse battery").await;
    let refresh = |t: &Value| json!({"refresh_token": t["refresh_token"]});

    let res = app.post("/api/v1/auth/refresh", None, &refresh(&first)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let second: Value = res.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(app.get("/api/v1/me", second["access_token"].as_str()).await.status(), StatusCode::OK);

    // Using the first refresh token again is reuse: refused, and the newer one dies with it.
    assert_problem(
        app.post("/api/v1/auth/refresh", None, &refresh(&first)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_problem(
        app.post("/api/v1/auth/refresh", None, &refresh(&second)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_problem(
        app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": "made-up"})).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;

    // Refresh tokens are stored hashed: the database never holds the token itself.
    let token = second["refresh_token"].as_str().unwrap();
    let stored: Vec<String> = tg_platform::with_db!(&app.app.db, pool =>
        sqlx::query_scalar("SELECT token_hash FROM users_refresh_tokens").fetch_all(pool).await)
    .unwrap();
    assert!(!stored.is_empty() && stored.iter().all(|h| h != token));
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    app.register("l@example.com", "correct horse battery", "L").await;
    let tokens = app.login("l@example.com", "correct horse battery").await;
    let body = json!({"refresh_token": tokens["refresh_token"]});
    assert_eq!(app.post("/api/v1/auth/logout", None, &body).await.status(), StatusCode::NO_CONTENT);
    assert_problem(app.post("/api/v1/auth/refresh", None, &body).await, StatusCode::UNAUTHORIZED, "invalid_grant")
        .await;
    // Logging out twice, or with an unknown token, answers the same.
    assert_eq!(app.post("/api/v1/auth/logout", None, &body).await.status(), StatusCode::NO_CONTENT);
    // Other sessions of the same user are untouched.
    let other = app.login("l@example.com", "correct horse battery").await;
    let res = app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": other["refresh_token"]})).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_attempts_are_limited_per_account_and_per_ip() {
    let app = spawn_with(|s| {
        s.login_account_burst = Some(3);
        s.login_account_period_secs = Some(3600);
        s.login_ip_burst = Some(6);
        s.login_ip_period_secs = Some(3600);
    })
    .await;
    app.register("victim@example.com", "correct horse battery", "V").await;
    let attempt = |email: &'static str, pw: &'static str| {
        let app = &app;
        async move { app.post("/api/v1/auth/login", None, &json!({"email": email, "password": pw})).await }
    };
    for _ in 0..3 {
        assert_eq!(attempt("victim@example.com", "wrong password!").await.status(), StatusCode::UNAUTHORIZED);
    }
    // Fourth try on this account is throttled, even with the right password (and any case of the email).
    let res = attempt("VICTIM@example.com", "correct horse battery").await;
    assert!(res.headers().get("retry-after").is_some());
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Other accounts from the same IP go on until the IP's bucket (6) is spent.
    assert_eq!(attempt("other@example.com", "wrong password!").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("third@example.com", "wrong password!").await.status(), StatusCode::UNAUTHORIZED);
    assert_problem(
        attempt("fourth@example.com", "wrong password!").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn registrations_are_limited_per_client_ip_with_the_default_limit() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with(&[tg_platform::auth::Role::Admin]).await;
    // Every attempt counts, refused ones too: 2 accounts and 8 invalid forms spend the burst of 10.
    for i in 0..2 {
        let res = app.register(&format!("early{i}@example.com"), "correct horse battery", "E").await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    for _ in 0..8 {
        assert_eq!(app.register("bad@example.com", "short", "B").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let res = app.register("late@example.com", "correct horse battery", "L").await;
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&retry), "one more every 6 s, retry after {retry}");
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // The refused registration created nothing.
    let found: Value = app.get("/api/v1/admin/users?q=late%40example.com", Some(&admin)).await.json().await.unwrap();
    assert_eq!(found["items"], json!([]), "{found}");
    let login = json!({"email": "late@example.com", "password": "correct horse battery"});
    let res = app.post("/api/v1/auth/login", None, &login).await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // Another client address has a bucket of its own.
    let other =
        reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let res = other
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "late@example.com", "password": "correct horse battery", "display_name": "L"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn account_settings_are_validated() {
    let app = spawn_app().await;
    let (_, token) = app.user_with(&[]).await;
    let res = app
        .send(reqwest::Method::PATCH, "/api/v1/me", Some(&token), &json!({"display_name": "សុខា", "language": "km"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["display_name"], "សុខា");
    assert_eq!(me["language"], "km");
    let res = app
        .send(reqwest::Method::PATCH, "/api/v1/me", Some(&token), &json!({"language": "fr", "display_name": ""}))
        .await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);
    // Nothing changed.
    let me: Value = app.get("/api/v1/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["language"], "km");
    // Roles cannot be set through the account endpoint.
    let res = app.send(reqwest::Method::PATCH, "/api/v1/me", Some(&token), &json!({"roles": ["admin"]})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
}

/// With `SIGNING_KEYS_SECRET`, the database holds the signing keys sealed: a copy of it cannot mint
/// tokens, and a process with another secret refuses to start rather than sign with what it cannot open.
#[tokio::test]
async fn signing_keys_are_sealed_in_the_database() {
    let (mut settings, _) = crate::helpers::fresh_settings().await;
    // One issuer for both processes below (by default it is the listening address).
    settings.public_url = Some("http://tickets.test".into());
    // First without a secret: its key is stored as it is, and the secret then seals it.
    let plain = settings.clone();
    let before = spawn_with(move |s| *s = plain).await;
    let (_, earlier_token) = before.user_with(&[]).await;
    drop(before);
    settings.signing_keys_secret = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
    let same = settings.clone();
    let app = spawn_with(move |s| *s = same).await;
    assert_eq!(
        app.get("/api/v1/me", Some(&earlier_token)).await.status(),
        StatusCode::OK,
        "the sealed key still verifies"
    );
    let (_, token) = app.user_with(&[]).await;
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status(), StatusCode::OK);
    let stored: Vec<String> = tg_platform::with_db!(&app.app.db, pool =>
        sqlx::query_scalar("SELECT private_pkcs8 FROM users_signing_keys").fetch_all(pool).await)
    .unwrap();
    assert!(!stored.is_empty() && stored.iter().all(|k| k.starts_with("v1:")), "{stored:?}");
    // The same database under another secret: the users service does not start.
    settings.signing_keys_secret = Some("HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=".into());
    let err = ticketgw::app::build(&settings, "127.0.0.1:1".parse().unwrap()).await.err().expect("refused");
    assert!(format!("{err:#}").contains("SIGNING_KEYS_SECRET"), "{err:#}");
}
