//! The account basics: a proven address, a forgotten password, changes of password and address,
//! sessions, confirmed notice channels, deletion. The mails are read as the relay delivers them.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{account_mail, assert_problem, link_token, spawn_app, TestApp};

const PASSWORD: &str = "correct horse battery";

/// Telegram and SMS configured, their APIs at a closed port (what they would be sent is not read).
pub(crate) fn offering_telegram_and_sms(s: &mut ticketgw::config::Settings) {
    s.telegram_bot_token = Some("TEST-TOKEN".into());
    s.telegram_api_url = Some("http://127.0.0.1:9".into());
    s.sms_api_url = Some("http://127.0.0.1:9".into());
    s.sms_account_sid = Some("AC1".into());
    s.sms_auth_token = Some("secret".into());
    s.sms_from = Some("+15550001111".into());
}

/// Where notices to the user go (the notifications service's own answer).
async fn confirmed_channels(app: &TestApp, user_id: &str) -> (Option<String>, Option<String>) {
    tg_notifications::store::Store { db: app.app.db.clone() }.channels(user_id).await.unwrap()
}

async fn refresh(app: &TestApp, refresh_token: &Value) -> reqwest::Response {
    app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": refresh_token})).await
}

#[tokio::test]
async fn the_verification_link_proves_the_address_once() {
    let app = spawn_app().await;
    let mut bus = app.app.bus.subscribe();
    assert_eq!(app.register("dara@example.com", PASSWORD, "Dara").await.status(), StatusCode::ACCEPTED);
    let mail = account_mail(&mut bus, "verify_email").await;
    assert_eq!(mail["to"], "dara@example.com");
    assert!(mail["link"].as_str().unwrap().starts_with(&format!("{}/account/verify-email?token=", app.base)));
    let tokens = app.login("dara@example.com", PASSWORD).await;
    let me: Value = app.get("/api/v1/me", tokens["access_token"].as_str()).await.json().await.unwrap();
    assert_eq!(me["email_verified"], false);

    let verify = |token: String| {
        let app = &app;
        async move { app.post("/api/v1/auth/verify-email", None, &json!({"token": token})).await }
    };
    assert_problem(verify("forged".into()).await, StatusCode::BAD_REQUEST, "invalid_link").await;
    assert_eq!(verify(link_token(&mail)).await.status(), StatusCode::NO_CONTENT);
    assert_problem(verify(link_token(&mail)).await, StatusCode::BAD_REQUEST, "invalid_link").await;
    // The next tokens say so.
    let fresh: Value = refresh(&app, &tokens["refresh_token"]).await.json().await.unwrap();
    let me: Value = app.get("/api/v1/me", fresh["access_token"].as_str()).await.json().await.unwrap();
    assert_eq!(me["email_verified"], true);

    // A link sent again works; the first one stays used.
    let (_, token) = app.user_with(&[]).await;
    let res = app.post("/api/v1/me/email/verification", Some(&token), &json!({})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "verified already: nothing is sent, same answer");
}

#[tokio::test]
async fn applying_to_organize_needs_a_proven_address() {
    let app = spawn_app().await;
    app.register("applicant@example.com", PASSWORD, "Applicant").await;
    let token = app.login("applicant@example.com", PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    let application = json!({"name": "Not Mine Events", "contact_email": "applicant@example.com"});
    let res = app.post("/api/v1/organizer-applications", Some(&token), &application).await;
    assert_problem(res, StatusCode::FORBIDDEN, "email_unverified").await;
    app.register_verified("applicant2@example.com", PASSWORD, "Applicant").await;
    let token = app.login("applicant2@example.com", PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    let res = app.post("/api/v1/organizer-applications", Some(&token), &application).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_reset_link_sets_the_password_once_and_ends_every_session() {
    let app = spawn_app().await;
    let mut bus = app.app.bus.subscribe();
    app.register("sokha@example.com", PASSWORD, "Sokha").await;
    account_mail(&mut bus, "verify_email").await;
    let phone = app.login("sokha@example.com", PASSWORD).await;
    let laptop = app.login("sokha@example.com", PASSWORD).await;

    // Unknown and known addresses get the same answer; only the known one gets a mail.
    let forgot = |email: &'static str| {
        let app = &app;
        async move { app.post("/api/v1/auth/forgot-password", None, &json!({"email": email})).await }
    };
    let unknown = forgot("nobody@example.com").await;
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    let known = forgot("Sokha@Example.com").await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.json::<Value>().await.unwrap(), known.json::<Value>().await.unwrap());
    let mail = account_mail(&mut bus, "reset_password").await;
    assert_eq!((mail["to"].as_str(), mail["expires_in_minutes"].as_u64()), (Some("sokha@example.com"), Some(30)));

    let reset = |password: &'static str| {
        let (app, token) = (&app, link_token(&mail));
        async move { app.post("/api/v1/auth/reset-password", None, &json!({"token": token, "password": password})).await }
    };
    // A weak password is refused and leaves the link usable.
    assert_problem(reset("short").await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(reset("a brand new password").await.status(), StatusCode::NO_CONTENT);
    assert_problem(reset("another new password").await, StatusCode::BAD_REQUEST, "invalid_link").await;

    for session in [&phone, &laptop] {
        assert_problem(refresh(&app, &session["refresh_token"]).await, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    }
    let old = app.post("/api/v1/auth/login", None, &json!({"email": "sokha@example.com", "password": PASSWORD})).await;
    assert_problem(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let tokens = app.login("sokha@example.com", "a brand new password").await;
    // The link reached the address: it counts as proven.
    let me: Value = app.get("/api/v1/me", tokens["access_token"].as_str()).await.json().await.unwrap();
    assert_eq!(me["email_verified"], true);
}

#[tokio::test]
async fn changing_the_password_proves_the_old_one_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let email = "vanna@example.com";
    app.app.users.create_user(email, PASSWORD, "Vanna", &[]).await.unwrap();
    let here = app.login(email, PASSWORD).await;
    let elsewhere = app.login(email, PASSWORD).await;
    let token = here["access_token"].as_str().unwrap();
    let change = |current: &'static str, new: &'static str| {
        let body = json!({"current_password": current, "new_password": new});
        let app = &app;
        async move { app.post("/api/v1/me/password", Some(token), &body).await }
    };
    assert_problem(change("wrong password!", "a brand new password").await, StatusCode::FORBIDDEN, "wrong_password")
        .await;
    assert_problem(change(PASSWORD, "short").await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(change(PASSWORD, "a brand new password").await.status(), StatusCode::NO_CONTENT);
    assert_problem(refresh(&app, &elsewhere["refresh_token"]).await, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    assert_eq!(refresh(&app, &here["refresh_token"]).await.status(), StatusCode::OK, "this session goes on");
    app.login(email, "a brand new password").await;
}

#[tokio::test]
async fn a_new_address_counts_once_its_link_is_followed_and_the_old_one_is_told() {
    let app = spawn_app().await;
    let mut bus = app.app.bus.subscribe();
    app.app.users.create_user("old@example.com", PASSWORD, "Mover", &[]).await.unwrap();
    app.app.users.create_user("taken@example.com", PASSWORD, "Other", &[]).await.unwrap();
    let token = app.login("old@example.com", PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    let change = |new: &'static str, password: &'static str| {
        let body = json!({"new_email": new, "current_password": password});
        let (app, token) = (&app, token.clone());
        async move { app.post("/api/v1/me/email", Some(&token), &body).await }
    };
    assert_problem(change("new@example.com", "wrong password!").await, StatusCode::FORBIDDEN, "wrong_password").await;
    assert_problem(change("not an address", PASSWORD).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
        .await;
    // A taken address: the same answer, and its owner hears of it (no link).
    assert_eq!(change("taken@example.com", PASSWORD).await.status(), StatusCode::ACCEPTED);
    let told = account_mail(&mut bus, "email_taken").await;
    assert_eq!((told["to"].as_str(), told.get("link")), (Some("taken@example.com"), None));

    assert_eq!(change("new@example.com", PASSWORD).await.status(), StatusCode::ACCEPTED);
    let mail = account_mail(&mut bus, "verify_email").await;
    assert_eq!(mail["to"], "new@example.com");
    let me: Value = app.get("/api/v1/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["email"], "old@example.com", "nothing changes before the link is followed");
    let res = app.post("/api/v1/auth/verify-email", None, &json!({"token": link_token(&mail)})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let changed = account_mail(&mut bus, "email_changed").await;
    assert_eq!(changed["to"], "old@example.com");
    let me: Value = app.get("/api/v1/me", Some(&token)).await.json().await.unwrap();
    assert_eq!((me["email"].as_str(), me["email_verified"].as_bool()), (Some("new@example.com"), Some(true)));
    app.login("new@example.com", PASSWORD).await;
}

#[tokio::test]
async fn sessions_are_listed_and_signed_out_one_or_all() {
    let app = spawn_app().await;
    app.app.users.create_user("many@example.com", PASSWORD, "Many", &[]).await.unwrap();
    let sign_in = |device: &'static str| {
        let app = &app;
        async move {
            let body = json!({"email": "many@example.com", "password": PASSWORD});
            let res = app.http.post(app.url("/api/v1/auth/login")).header("user-agent", device).json(&body).send();
            res.await.unwrap().json::<Value>().await.unwrap()
        }
    };
    let phone = sign_in("Phone/1.0").await;
    let laptop = sign_in("Laptop/2.0").await;
    let tablet = sign_in("Tablet/3.0").await;
    let token = laptop["access_token"].as_str().unwrap();
    let list: Value = app.get("/api/v1/me/sessions", Some(token)).await.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{list}");
    let by_device = |d: &str| items.iter().find(|s| s["device"] == d).unwrap().clone();
    assert_eq!(by_device("Laptop/2.0")["current"], true);
    assert_eq!(by_device("Phone/1.0")["current"], false);

    // Someone else cannot end them; the owner can.
    let (_, stranger) = app.user_with(&[]).await;
    let phone_id = by_device("Phone/1.0")["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/me/sessions/{phone_id}");
    assert_problem(
        app.send(Method::DELETE, &path, Some(&stranger), &json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(refresh(&app, &phone["refresh_token"]).await.status(), StatusCode::OK, "still signed in");
    assert_eq!(app.send(Method::DELETE, &path, Some(token), &json!({})).await.status(), StatusCode::NO_CONTENT);
    let list: Value = app.get("/api/v1/me/sessions", Some(token)).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // Everywhere else: the tablet is out, this laptop stays.
    let res = app.send(Method::DELETE, "/api/v1/me/sessions?keep_current=true", Some(token), &json!({})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(refresh(&app, &tablet["refresh_token"]).await, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    let laptop: Value = refresh(&app, &laptop["refresh_token"]).await.json().await.unwrap();
    // Everywhere.
    let token = laptop["access_token"].as_str().unwrap();
    assert_eq!(
        app.send(Method::DELETE, "/api/v1/me/sessions", Some(token), &json!({})).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(refresh(&app, &laptop["refresh_token"]).await, StatusCode::UNAUTHORIZED, "invalid_grant").await;
}

#[tokio::test]
async fn notices_go_to_a_telegram_chat_or_phone_only_once_its_code_came_back() {
    // Only offered channels are taken.
    let app = spawn_app().await;
    let (_, token) = app.user_with(&[]).await;
    let res = app
        .send(Method::PUT, "/api/v1/me/notification-channels", Some(&token), &json!({"telegram_chat_id": "1"}))
        .await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "telegram_chat_id");
    // Providers that do not answer: the codes are read where they are kept.
    let app = crate::helpers::spawn_with(offering_telegram_and_sms).await;
    let (user_id, token) = app.user_with(&[]).await;
    let set = json!({"telegram_chat_id": "12345", "phone": "+85512345678"});
    let res = app.send(Method::PUT, "/api/v1/me/notification-channels", Some(&token), &set).await;
    let saved: Value = res.json().await.unwrap();
    assert_eq!(
        saved,
        json!({"telegram_chat_id": "12345", "telegram_confirmed": false, "phone": "+85512345678", "phone_confirmed": false})
    );
    assert_eq!(confirmed_channels(&app, &user_id).await, (None, None), "no notices to unconfirmed channels");
    let code = |channel: &'static str| {
        let (db, user_id) = (&app.app.db, user_id.clone());
        async move {
            tg_platform::with_db!(db, pool => sqlx::query_scalar::<_, String>(
                "SELECT code FROM notifications_channel_codes WHERE user_id = $1 AND channel = $2")
                .bind(&user_id).bind(channel).fetch_one(pool).await)
            .unwrap()
        }
    };
    let confirm = |channel: &'static str, code: String| {
        let (app, token) = (&app, token.clone());
        async move {
            let body = json!({"channel": channel, "code": code});
            app.post("/api/v1/me/notification-channels/confirm", Some(&token), &body).await
        }
    };
    let telegram = code("telegram").await;
    let wrong = if telegram == "000000" { "000001" } else { "000000" };
    assert_problem(confirm("telegram", wrong.into()).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
        .await;
    let res = confirm("telegram", telegram).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["telegram_confirmed"], true);
    assert_eq!(confirmed_channels(&app, &user_id).await, (Some("12345".into()), None));
    // Five wrong codes use the phone's code up.
    let sms = code("sms").await;
    let wrong = if sms == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        confirm("sms", wrong.into()).await;
    }
    assert_problem(confirm("sms", sms).await, StatusCode::BAD_REQUEST, "no_code").await;
    // A changed chat is unconfirmed again.
    let set = json!({"telegram_chat_id": "999", "phone": null});
    let saved: Value =
        app.send(Method::PUT, "/api/v1/me/notification-channels", Some(&token), &set).await.json().await.unwrap();
    assert_eq!(saved["telegram_confirmed"], false);
    assert_eq!(confirmed_channels(&app, &user_id).await, (None, None));
    // The codes never show in the mailbox.
    let mailbox: Value = app.get("/api/v1/me/messages", Some(&token)).await.json().await.unwrap();
    assert!(mailbox["items"].as_array().unwrap().iter().all(|m| m["kind"] != "channel_code"), "{mailbox}");
}

#[tokio::test]
async fn deleting_an_account_erases_the_person_and_keeps_the_paid_booking() {
    let app = spawn_app().await;
    crate::bookings::bookable_event(&app, 1, 10).await;
    let (user_id, token) = app.user_with(&[]).await;
    let booking = crate::notifications::buy_and_pay(&app, &token).await;
    let delete = |password: &'static str| {
        let (app, token) = (&app, token.clone());
        async move { app.send(Method::DELETE, "/api/v1/me", Some(&token), &json!({"password": password})).await }
    };
    assert_problem(delete("wrong password!").await, StatusCode::FORBIDDEN, "wrong_password").await;
    let (_, organizer) = crate::events::demo_organizer(&app).await;
    let res =
        app.send(Method::DELETE, "/api/v1/me", Some(&organizer), &json!({"password": "ticketgw-demo-organizer"})).await;
    assert_problem(res, StatusCode::CONFLICT, "organizer_account").await;

    assert_eq!(delete("a long password").await.status(), StatusCode::NO_CONTENT);
    let user = app.app.users.user(&user_id).await.unwrap().unwrap();
    assert_eq!((user.email, user.display_name.as_str()), (None, "Deleted user"));
    let res = app.post("/api/v1/auth/login", None, &json!({"email": user_id, "password": "a long password"})).await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // Accounting keeps the paid booking under the (now anonymous) id.
    let (_, admin) = app.user_with(&[tg_platform::auth::Role::Admin]).await;
    let kept: Value = app.get(&format!("/api/v1/bookings/{booking}"), Some(&admin)).await.json().await.unwrap();
    assert_eq!((kept["status"].as_str(), kept["user_id"].as_str()), (Some("confirmed"), Some(user_id.as_str())));
    // The notifications service forgot the person's notices.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n: i64 = tg_platform::with_db!(&app.app.db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications_mailbox WHERE user_id = $1").bind(&user_id).fetch_one(pool).await)
        .unwrap();
        if n == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{n} notices kept");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A change of address someone asked for with a stolen password dies when the owner resets it.
#[tokio::test]
async fn a_reset_ends_a_pending_change_of_address() {
    let app = spawn_app().await;
    let mut bus = app.app.bus.subscribe();
    app.app.users.create_user("owner@example.com", PASSWORD, "Owner", &[]).await.unwrap();
    let thief = app.login("owner@example.com", PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    let body = json!({"new_email": "thief@example.com", "current_password": PASSWORD});
    assert_eq!(app.post("/api/v1/me/email", Some(&thief), &body).await.status(), StatusCode::ACCEPTED);
    let change = account_mail(&mut bus, "verify_email").await;
    app.post("/api/v1/auth/forgot-password", None, &json!({"email": "owner@example.com"})).await;
    let reset = account_mail(&mut bus, "reset_password").await;
    let res = app
        .post(
            "/api/v1/auth/reset-password",
            None,
            &json!({"token": link_token(&reset), "password": "the owner's new one"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.post("/api/v1/auth/verify-email", None, &json!({"token": link_token(&change)})).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_link").await;
    app.login("owner@example.com", "the owner's new one").await;
}

/// "Sign out everywhere" while a stolen refresh token is being rotated as fast as it goes: no
/// rotation slips a live token past it (each takes the account's lock the sign-out takes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_out_everywhere_wins_over_refreshes_in_flight() {
    let app = spawn_app().await;
    app.app.users.create_user("racer@example.com", PASSWORD, "Racer", &[]).await.unwrap();
    let owner = app.login("racer@example.com", PASSWORD).await;
    for round in 0..5 {
        let stolen = app.login("racer@example.com", PASSWORD).await["refresh_token"].clone();
        let (http, url) = (app.http.clone(), app.url("/api/v1/auth/refresh"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thief = tokio::spawn(async move {
            let mut token = stolen;
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                let res = http.post(&url).json(&json!({"refresh_token": token})).send().await.unwrap();
                if res.status() != StatusCode::OK {
                    break;
                }
                token = res.json::<Value>().await.unwrap()["refresh_token"].clone();
            }
            token
        });
        tokio::time::sleep(std::time::Duration::from_millis(20 * round)).await;
        let res = app.send(Method::DELETE, "/api/v1/me/sessions", owner["access_token"].as_str(), &json!({})).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let last = thief.await.unwrap();
        assert_problem(refresh(&app, &last).await, StatusCode::UNAUTHORIZED, "invalid_grant").await;
        let live: i64 = tg_platform::with_db!(&app.app.db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM users_refresh_tokens t JOIN users_accounts a ON a.id = t.user_id
             WHERE a.email = 'racer@example.com' AND t.revoked_at IS NULL").fetch_one(pool).await)
        .unwrap();
        assert_eq!(live, 0, "round {round}: a refresh token outlived signing out everywhere");
    }
}
