//! Probes, metrics, request ids, error shape and the API documents.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app, spawn_with};

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

/// `/metrics` is not for anyone on the internet: with `METRICS_TOKEN` it needs the token; without, only
/// this machine reads it (the tests' loopback calls, see above).
#[tokio::test]
async fn metrics_need_the_token_when_one_is_set() {
    let app = spawn_with(|s| s.metrics_token = Some("scrape-me-please-0123456789".into())).await;
    let scrape = |auth: Option<&'static str>| {
        let mut req = app.http.get(app.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move { req.send().await.unwrap() }
    };
    assert_problem(scrape(None).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_problem(scrape(Some("Bearer wrong")).await, StatusCode::NOT_FOUND, "not_found").await;
    // Without a token, loopback callers read it, unless a proxy relayed them.
    let plain = spawn_app().await;
    assert_eq!(plain.get("/metrics", None).await.status(), StatusCode::OK);
    let relayed = plain.http.get(plain.url("/metrics")).header("x-forwarded-for", "203.0.113.7").send().await.unwrap();
    assert_problem(relayed, StatusCode::NOT_FOUND, "not_found").await;
    let res = scrape(Some("Bearer scrape-me-please-0123456789")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("ticketgw_build_info"));
}

#[test]
fn metrics_on_the_service_port_follow_the_access_setting() {
    use tg_platform::metrics::MetricsAccess;
    let outside: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let default = MetricsAccess::from_settings(false, None);
    assert!(default.allows(Some(local), None, false) && default.allows(Some("::1".parse().unwrap()), None, false));
    assert!(!default.allows(Some(outside), None, false) && !default.allows(None, None, false));
    assert!(!default.allows(Some(local), None, true), "relayed by a proxy on this machine: the internet");
    let token = MetricsAccess::from_settings(false, Some("t0k"));
    assert!(token.allows(Some(outside), Some(b"Bearer t0k"), true));
    assert!(!token.allows(Some(local), None, false) && !token.allows(Some(outside), Some(b"Bearer t0"), false));
    let elsewhere = MetricsAccess::from_settings(true, Some("t0k"));
    assert!(!elsewhere.allows(Some(local), Some(b"Bearer t0k"), false), "a listener of its own serves it");
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
    // Every error of every operation is declared as problem+json; the query ranges and enums too.
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            for status in ["400", "422", "429"] {
                assert!(responses.contains_key(status), "{method} {path} does not declare {status}");
            }
            for (status, r) in responses.iter().filter(|(s, _)| s.starts_with('4') || s.starts_with('5')) {
                assert!(
                    r["content"]["application/problem+json"].is_object() && r["content"]["application/json"].is_null(),
                    "{method} {path} {status}: {r}"
                );
            }
        }
    }
    assert!(operations > 60, "{operations}");
    let limit = |path: &str| {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap().clone();
        params.into_iter().find(|p| p["name"] == "limit").unwrap()["schema"].clone()
    };
    assert_eq!(
        (limit("/api/v1/admin/users")["minimum"].as_i64(), limit("/api/v1/admin/users")["maximum"].as_i64()),
        (Some(1), Some(100))
    );
    let sort = doc["paths"]["/api/v1/events"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sort")
        .unwrap()
        .clone();
    assert!(sort.to_string().contains("popularity") && sort.to_string().contains("\"enum\""), "{sort}");
    // The documented maximum is enforced, not quietly clamped.
    let (_, admin) = app.user_with(&[tg_platform::auth::Role::Admin]).await;
    let res = app.get("/api/v1/admin/users?limit=1000", Some(&admin)).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

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

/// A listener with tight limits serving `/` and `/slow` (which takes a minute): (address, shutdown, server).
async fn limited_server(
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    use std::time::Duration;
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" })).route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "late"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = tg_platform::server::ServerLimits {
        header_read: Duration::from_millis(500),
        max_connections: 3,
        drain: Duration::from_secs(1),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tg_platform::server::serve(listener, router, None, limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

#[tokio::test]
async fn clients_that_never_finish_their_headers_are_cut_off_and_connections_are_capped() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _stop, _server) = limited_server().await;
    // Three clients send half a request line and stop: they hold every connection slot.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HT").await.unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A fourth client waits for a slot (it is not served beside them)…
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/");
    assert!(tokio::time::timeout(Duration::from_millis(300), http.get(&url).send()).await.is_err());
    // …and is served once the server has cut the slow ones off after the header-read timeout.
    let res = tokio::time::timeout(Duration::from_secs(5), http.get(&url).send()).await.expect("served").unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    for mut s in slow {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(read.is_ok(), "a client that never finished its headers still holds its connection");
    }
    // A kept-alive connection that sends nothing more is closed too.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "an idle kept-alive connection stays open: {closed:?}");
}

#[tokio::test]
async fn shutdown_waits_a_bounded_time_for_requests_in_flight() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let (addr, stop, server) = limited_server().await;
    // A request in flight for a minute, and a client that sent half its headers.
    let slow = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled.write_all(b"GET / HT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(matches!(finished, Ok(Ok(Ok(())))), "the server did not stop within its drain time: {finished:?}");
    slow.abort();
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers_and_hsts_on_https() {
    let app = crate::helpers::spawn_with(|s| s.public_url = Some("https://tickets.example".into())).await;
    let paths = [
        "/api/v1/events",           // JSON
        "/api/v1/events/nope",      // a problem
        "/api/docs",                // the API docs page
        "/api/v1/openapi.json",     // the OpenAPI document
        "/api/docs/swagger-ui.css", // an asset of the docs
        "/healthz",                 // a probe
        "/",                        // a web page (its own, stricter policy)
        "/sw.js",                   // the service worker
        "/nothing-here",            // the fallback
    ];
    for path in paths {
        let res = app.get(path, None).await;
        let h = res.headers();
        assert_eq!(h.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{path}");
        let csp = h.get("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP")).to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(h.get("strict-transport-security").is_some(), "{path}: no HSTS");
        assert!(h.get("referrer-policy").is_some(), "{path}");
    }
    // Over plain http (a development setup), no HSTS.
    let plain = spawn_app().await;
    assert!(plain.get("/api/v1/events", None).await.headers().get("strict-transport-security").is_none());
}
