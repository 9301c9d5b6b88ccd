//! Organizer applications and profiles; one user cannot see or change another's.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tg_platform::auth::Role;

use crate::helpers::{assert_problem, spawn_app};

fn profile() -> Value {
    json!({
        "name": "Cambodia Tech Association",
        "logo": "https://cdn.ticketgateway.io/orgs/org-009/logo.png",
        "contact_email": "info@techcambodia.org",
        "contact_phone": "+85512345678",
        "website": "https://techcambodia.org",
        "message": "We run the yearly tech conference."
    })
}

#[tokio::test]
async fn apply_approve_and_manage_profile() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with(&[Role::Admin]).await;
    app.register_verified("org@example.com", "correct horse battery", "Org").await;
    let applicant =
        app.login("org@example.com", "correct horse battery").await["access_token"].as_str().unwrap().to_owned();
    let (_, stranger) = app.user_with(&[]).await;

    let res = app.post("/api/v1/organizer-applications", Some(&applicant), &profile()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let application: Value = res.json().await.unwrap();
    assert_eq!(application["status"], "pending");
    let res = app.post("/api/v1/organizer-applications", Some(&applicant), &profile()).await;
    assert_problem(res, StatusCode::CONFLICT, "application_pending").await;

    // Only the applicant sees their application; a stranger sees none, and cannot decide it.
    let mine: Value = app.get("/api/v1/me/organizer-application", Some(&applicant)).await.json().await.unwrap();
    assert_eq!(mine["id"], application["id"]);
    assert_problem(
        app.get("/api/v1/me/organizer-application", Some(&stranger)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let approve = format!("/api/v1/admin/organizer-applications/{}/approve", application["id"].as_str().unwrap());
    assert_problem(app.post(&approve, Some(&stranger), &json!({})).await, StatusCode::FORBIDDEN, "forbidden").await;
    assert_problem(app.post(&approve, Some(&applicant), &json!({})).await, StatusCode::FORBIDDEN, "forbidden").await;

    let pending: Value =
        app.get("/api/v1/admin/organizer-applications?status=pending", Some(&admin)).await.json().await.unwrap();
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    let res = app.http.post(app.url(&approve)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "approve without a body");
    assert_problem(app.post(&approve, Some(&admin), &json!({})).await, StatusCode::CONFLICT, "already_decided").await;

    // The applicant is an organizer with the profile they asked for (new tokens carry the role).
    let applicant =
        app.login("org@example.com", "correct horse battery").await["access_token"].as_str().unwrap().to_owned();
    let me: Value = app.get("/api/v1/me", Some(&applicant)).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["user", "organizer"]));
    let org: Value = app.get("/api/v1/me/organizer", Some(&applicant)).await.json().await.unwrap();
    assert_eq!(org["name"], "Cambodia Tech Association");
    assert_eq!(org["contact_phone"], "+85512345678");
    assert_eq!(me["organizer_id"], org["id"]);
    let public: Value =
        app.get(&format!("/api/v1/organizers/{}", org["id"].as_str().unwrap()), None).await.json().await.unwrap();
    assert_eq!(public, org);

    // Edits go to one's own profile only; a stranger has none to edit.
    let mut edit = profile();
    edit.as_object_mut().unwrap().remove("message");
    edit["name"] = json!("CTA");
    let res = app.send(Method::PUT, "/api/v1/me/organizer", Some(&applicant), &edit).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(
        app.send(Method::PUT, "/api/v1/me/organizer", Some(&stranger), &edit).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let public: Value =
        app.get(&format!("/api/v1/organizers/{}", org["id"].as_str().unwrap()), None).await.json().await.unwrap();
    assert_eq!(public["name"], "CTA");

    let log: Value = app.get("/api/v1/admin/audit-log", Some(&admin)).await.json().await.unwrap();
    let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"organizer_application.approved"), "{actions:?}");
}

#[tokio::test]
async fn applications_are_validated_and_can_be_rejected() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with(&[Role::Admin]).await;
    let (_, user) = app.user_with(&[]).await;
    let bad = json!({"name": "", "contact_email": "nope", "website": "ftp://x", "contact_phone": "12", "logo": "javascript:alert(1)"});
    let body = assert_problem(
        app.post("/api/v1/organizer-applications", Some(&user), &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let mut fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["contact_email", "contact_phone", "logo", "name", "website"]);

    let app_id =
        app.post("/api/v1/organizer-applications", Some(&user), &profile()).await.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let res = app
        .post(
            &format!("/api/v1/admin/organizer-applications/{app_id}/reject"),
            Some(&admin),
            &json!({"note": "incomplete"}),
        )
        .await;
    let rejected: Value = res.json().await.unwrap();
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["decision_note"], "incomplete");
    // Still a plain user; may apply again.
    assert_problem(app.get("/api/v1/me/organizer", Some(&user)).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.post("/api/v1/organizer-applications", Some(&user), &profile()).await.status(), StatusCode::CREATED);
    // Organizers do not apply again.
    let (_, organizer) = app.user_with(&[Role::Organizer]).await;
    assert_problem(
        app.post("/api/v1/organizer-applications", Some(&organizer), &profile()).await,
        StatusCode::CONFLICT,
        "already_organizer",
    )
    .await;
}
