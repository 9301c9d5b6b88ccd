//! HTTP plumbing shared by all services: JSON extractors that fail with problem+json, request ids,
//! access logs, metrics, health endpoints and the 404 fallback.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{FromRequest, FromRequestParts, State},
    http::{HeaderName, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{metrics::Metrics, problem::ApiError};

/// `Json<T>` whose rejections are problem+json. Text with the NUL character is refused (400
/// `nul_character`): PostgreSQL cannot store it, and no field of ours needs it.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "invalid_body", e.body_text()))?;
        if bytes.contains(&0) || bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
            return Err(ApiError::bad_request("nul_character", "text may not contain the NUL character (\\u0000)"));
        }
        let mut again = axum::extract::Request::new(axum::body::Body::from(bytes));
        *again.headers_mut() = headers;
        let Json(value) = Json::<T>::from_request(again, state).await?;
        Ok(ApiJson(value))
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Path<T>` whose rejections are problem+json.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query<T>` whose rejections are problem+json.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A dependency that `/readyz` checks (database, bus, ...).
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    async fn check(&self) -> Result<(), String>;
}

#[async_trait::async_trait]
impl ReadinessCheck for crate::db::Db {
    fn name(&self) -> &'static str {
        "database"
    }
    async fn check(&self) -> Result<(), String> {
        self.ping().await.map_err(|e| e.to_string())
    }
}

#[derive(Clone)]
struct Probes {
    checks: Arc<Vec<Arc<dyn ReadinessCheck>>>,
    metrics: Metrics,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wrap the services' routes with the platform's cross-cutting layers and probe endpoints.
/// `hsts`: the platform is reached over HTTPS (its public URL), so browsers are told to stay on it.
pub fn finish_router(routes: Router, checks: Vec<Arc<dyn ReadinessCheck>>, metrics: Metrics, hsts: bool) -> Router {
    let probes = Probes { checks: Arc::new(checks), metrics: metrics.clone() };
    let probe_routes = Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(probes);

    routes
        .merge(probe_routes)
        .fallback(not_found)
        // A panic in a handler is a 500 problem, counted and reported like any other, not a
        // connection cut without an answer.
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::internal("the request failed unexpectedly").into_response()
        }))
        .layer(middleware::from_fn(crate::error_reports::report_server_errors))
        .layer(middleware::map_response(move |res| security_headers(res, hsts)))
        .layer(middleware::from_fn_with_state(metrics, crate::metrics::track))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    let span = tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id = %id, otel.kind = "server");
                    crate::traces::continue_from_headers(&span, req.headers());
                    span
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
                .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(30))),
        )
}

/// The security headers of every response, where a route did not set its own (web pages and the
/// sandbox's pay page have their own content security policy).
async fn security_headers(mut res: Response, hsts: bool) -> Response {
    use axum::http::HeaderValue;
    let defaults = [
        ("x-content-type-options", "nosniff"),
        // Anything without a policy of its own (JSON, problems, the API docs) loads only from here,
        // runs no inline script and is framed by nobody.
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ];
    let headers = res.headers_mut();
    for (name, value) in defaults {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if hsts {
        headers.entry("strict-transport-security").or_insert(HeaderValue::from_static("max-age=31536000"));
    }
    res
}

/// Unknown paths: problem+json, or for a browser asking for a page, a page with a way home.
async fn not_found(headers: axum::http::HeaderMap) -> Response {
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        let page = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
            <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Not found</title>\
            <link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body><main id=\"main\">\
            <section class=\"panel narrow\"><p class=\"muted\">404</p><h1>Not found</h1>\
            <p>There is no page here.</p><p><a class=\"button\" href=\"/\">Home</a></p></section></main></body></html>";
        return (StatusCode::NOT_FOUND, axum::response::Html(page)).into_response();
    }
    ApiError::not_found("resource").into_response()
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    checks: serde_json::Map<String, serde_json::Value>,
}

async fn readyz(State(p): State<Probes>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut ok = true;
    for c in p.checks.iter() {
        let res = tokio::time::timeout(Duration::from_secs(3), c.check()).await;
        let value = match res {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => {
                ok = false;
                tracing::warn!(check = c.name(), error = %e, "readiness check failed");
                "failing".to_string()
            }
            Err(_) => {
                ok = false;
                "timeout".to_string()
            }
        };
        checks.insert(c.name().to_string(), value.into());
    }
    p.metrics.set_ready(ok);
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { status: if ok { "ready" } else { "not_ready" }, checks })).into_response()
}

/// `/metrics` on the service port, for those [`crate::metrics::MetricsAccess`] lets in; a 404 to
/// everyone else, as if it were not there.
async fn metrics_text(State(p): State<Probes>, req: axum::extract::Request) -> Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let authorization = req.headers().get(axum::http::header::AUTHORIZATION).map(|v| v.as_bytes());
    let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"].iter().any(|h| req.headers().contains_key(*h));
    if !p.metrics.access().allows(peer, authorization, proxied) {
        return not_found(req.headers().clone()).await;
    }
    metrics_page(&p.metrics)
}

fn metrics_page(metrics: &Metrics) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.render()).into_response()
}

/// The router of the separate metrics listener (`METRICS_LISTEN`): `/metrics` for whoever reaches
/// it (operators decide who can: a port of its own, not published), and `/healthz`.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(move || std::future::ready(metrics_page(&metrics))))
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .fallback(not_found)
}

/// The peer address of the request (from the listener's connect info).
/// Behind the gateway this is the gateway's address; see ARCHITECTURE.md.
pub struct ClientIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions, &parts.headers).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())))
    }
}

/// Peers whose `X-Forwarded-For` is believed; empty (the monolith) believes nobody.
static TRUSTED_PROXIES: std::sync::RwLock<Vec<ipnet::IpNet>> = std::sync::RwLock::new(Vec::new());

/// Take the client's address from `X-Forwarded-For` (its last entry, the one the nearest proxy
/// wrote) when the TCP peer is in one of `proxies` (the gateway, the web process). Set by processes
/// that run behind the gateway; never in the monolith, where anyone could write the header.
pub fn trust_forwarded_for(proxies: Vec<ipnet::IpNet>) {
    *TRUSTED_PROXIES.write().expect("trusted proxies lock") = proxies;
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, what it saw.
pub fn client_ip(extensions: &axum::http::Extensions, headers: &axum::http::HeaderMap) -> Option<std::net::IpAddr> {
    let peer = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    forwarded_client(peer, headers, &TRUSTED_PROXIES.read().expect("trusted proxies lock"))
}

fn forwarded_client(
    peer: Option<std::net::IpAddr>,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<std::net::IpAddr> {
    let trusted_peer = peer.is_some_and(|p| trusted.iter().any(|net| net.contains(&p)));
    if trusted_peer {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer
}

/// The request's `Idempotency-Key` header (1 to 200 characters), required on POSTs with money or
/// inventory effects.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<&str, crate::ApiError> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or_else(|| {
            crate::ApiError::bad_request(
                "idempotency_key_required",
                "an Idempotency-Key header (1 to 200 characters) is required",
            )
        })
}

#[cfg(test)]
mod forwarded_tests {
    use super::*;

    #[test]
    fn only_a_trusted_peer_may_name_the_client() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.7, 203.0.113.9".parse().unwrap());
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        let gateway = Some("10.1.2.3".parse().unwrap());
        assert_eq!(forwarded_client(gateway, &headers, &trusted), Some("203.0.113.9".parse().unwrap()));
        let stranger = Some("192.0.2.50".parse().unwrap());
        assert_eq!(forwarded_client(stranger, &headers, &trusted), stranger, "a client cannot pick its address");
        assert_eq!(forwarded_client(gateway, &headers, &[]), gateway, "the monolith trusts nobody");
        assert_eq!(forwarded_client(gateway, &axum::http::HeaderMap::new(), &trusted), gateway);
    }
}
