//! The role matrix: who may call which route, and that users cannot touch each other's data.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tg_platform::auth::Role;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn admin_routes_by_role() {
    let app = spawn_app().await;
    let (target_id, _) = app.user_with(&[]).await;
    let (_, user) = app.user_with(&[]).await;
    let (_, organizer) = app.user_with(&[Role::Organizer]).await;
    let (_, admin) = app.user_with(&[Role::Admin]).await;

    let routes: Vec<(Method, String, Value)> = vec![
        (Method::GET, "/api/v1/admin/users".into(), Value::Null),
        (Method::GET, format!("/api/v1/admin/users/{target_id}"), Value::Null),
        (Method::PUT, format!("/api/v1/admin/users/{target_id}/roles"), json!({"roles": ["user"]})),
        (Method::GET, "/api/v1/admin/organizer-applications".into(), Value::Null),
        (Method::POST, "/api/v1/admin/organizer-applications/none/approve".into(), json!({})),
        (Method::POST, "/api/v1/admin/organizer-applications/none/reject".into(), json!({})),
        (Method::GET, "/api/v1/admin/audit-log".into(), Value::Null),
        (Method::GET, "/api/v1/admin/events".into(), Value::Null),
    ];
    for (method, path, body) in &routes {
        let res = app.send(method.clone(), path, None, body).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "anonymous {method} {path}");
        for (who, token) in [("user", &user), ("organizer", &organizer)] {
            let res = app.send(method.clone(), path, Some(token), body).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who} {method} {path}");
        }
        let res = app.send(method.clone(), path, Some(&admin), body).await;
        let expected = if path.contains("/none/") { StatusCode::NOT_FOUND } else { StatusCode::OK };
        assert_eq!(res.status(), expected, "admin {method} {path}");
    }
}

#[tokio::test]
async fn admin_grants_roles_and_the_change_is_audited() {
    let app = spawn_app().await;
    let (admin_id, admin) = app.user_with(&[Role::Admin]).await;
    app.register("grantee@example.com", "correct horse battery", "G").await;
    let grantee: Value = app.login("grantee@example.com", "correct horse battery").await;
    let me: Value = app.get("/api/v1/me", grantee["access_token"].as_str()).await.json().await.unwrap();
    let id = me["id"].as_str().unwrap();

    let res = app
        .send(Method::PUT, &format!("/api/v1/admin/users/{id}/roles"), Some(&admin), &json!({"roles": ["organizer"]}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["roles"], json!(["user", "organizer"]));
    // A fresh token carries the new role.
    let fresh = app.login("grantee@example.com", "correct horse battery").await;
    let me: Value = app.get("/api/v1/me", fresh["access_token"].as_str()).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["user", "organizer"]));

    let res = app
        .send(Method::PUT, &format!("/api/v1/admin/users/{id}/roles"), Some(&admin), &json!({"roles": ["superuser"]}))
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res =
        app.send(Method::PUT, "/api/v1/admin/users/no-such-user/roles", Some(&admin), &json!({"roles": []})).await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    // No lock-out: an admin cannot drop their own admin role.
    let res = app
        .send(Method::PUT, &format!("/api/v1/admin/users/{admin_id}/roles"), Some(&admin), &json!({"roles": []}))
        .await;
    assert_problem(res, StatusCode::CONFLICT, "cannot_demote_self").await;

    let log: Value = app.get("/api/v1/admin/audit-log", Some(&admin)).await.json().await.unwrap();
    let entry = log["items"].as_array().unwrap().iter().find(|e| e["action"] == "user.roles_set").expect("audited");
    assert_eq!(entry["actor_id"], admin_id);
    assert_eq!(entry["target_id"], id);
    assert_eq!(entry["detail"]["roles"], json!(["organizer"]));
}

#[tokio::test]
async fn admin_user_list_pages_without_gaps_or_duplicates() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with(&[Role::Admin]).await;
    for i in 0..6 {
        app.app
            .users
            .create_user(&format!("page{i}@example.com"), "a long password", &format!("Pager {i}"), &[])
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/admin/users?limit=4&q=page&cursor={c}"),
            None => "/api/v1/admin/users?limit=4&q=page".into(),
        };
        let page: Value = app.get(&path, Some(&admin)).await.json().await.unwrap();
        seen.extend(page["items"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..6).map(|i| format!("page{i}@example.com")).collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
}
