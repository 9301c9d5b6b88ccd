//! Probes, metrics, request ids, error shape and the API documents.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let res = app.get("/healthz", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");

    // With the database gone, readiness fails while liveness stays up.
    app.app.db.close().await;
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_response_has_a_request_id_and_unknown_paths_are_problems() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/nope", None).await;
    let id = res.headers().get("x-request-id").expect("request id").to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;

    // A caller's own request id is propagated.
    let res = app.http.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn metrics_count_requests_per_route_template_and_status() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.get("/api/v1/organizers/some-id", None).await;
    }
    let text = app.get("/metrics", None).await.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(r#"route="/api/v1/organizers/{id}""#)
                && l.contains(r#"status="404""#)
        })
        .unwrap_or_else(|| panic!("no counter line in\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(text.contains("http_request_duration_seconds_bucket{"));
}

#[tokio::test]
async fn openapi_document_and_offline_docs_page() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/v1/openapi.json", None).await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in
        ["/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/me"]
    {
        assert!(doc["paths"][path].is_object(), "{path} missing from OpenAPI");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let page = app.get("/api/docs", None).await.text().await.unwrap();
    assert!(page.contains("/api/docs/swagger-ui-bundle.js"));
    // Assets come from the binary, not a CDN.
    assert!(!page.contains("https://"));
    let js = app.get("/api/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.bytes().await.unwrap().len() > 100_000);
}

#[tokio::test]
async fn malformed_bodies_are_client_errors() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/auth/register");
    let res = app.http.post(&url).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let res = app.http.post(&url).body("email=a").send().await.unwrap();
    assert_problem(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let res = app.http.post(&url).json(&serde_json::json!({"email": 5})).send().await.unwrap();
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let res = app.http.get(app.url("/api/v1/admin/users?limit=abc")).send().await.unwrap();
    assert!(res.status().is_client_error());
}
