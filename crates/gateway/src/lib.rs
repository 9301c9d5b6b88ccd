//! The API gateway of the microservices mode: the one address clients talk to when the services run
//! as separate processes.
//!
//! A request passes: request id and trace context → per-IP rate limit → body size limit → bearer
//! token check (a forged token stops here) → the route table, which names the owning service →
//! the proxy (`X-Forwarded-*` set, hop-by-hop headers dropped, body streamed, one deadline).
//! `GET /api/v1/openapi.json` is answered by the gateway itself: the services' documents merged.
//! [`app`] adds the platform's `/healthz`, `/readyz` (every service asked) and `/metrics`.

mod edge;
mod limits;
mod openapi;
mod proxy;
mod ready;
mod routes;
mod service;

use std::{sync::Arc, time::Duration};

use axum::{
    extract::Request,
    http::StatusCode,
    middleware::{from_fn, from_fn_with_state},
    response::IntoResponse,
    routing::{any, get},
    Router,
};
use tg_platform::{auth::TokenVerifier, http::finish_router, metrics::Metrics, ApiError};

pub use proxy::Proxy;
pub use ready::UpstreamsReady;
pub use routes::route_table;
pub use service::{Service, UnknownService, Upstreams};

/// What the gateway needs to run.
pub struct GatewayConfig {
    /// Where each service listens.
    pub upstreams: Upstreams,
    /// Checks bearer tokens before a request is forwarded (the services check them again).
    pub verifier: Arc<dyn TokenVerifier>,
    /// Deadline of one upstream call, until the response's headers (504 `upstream_timeout` after).
    pub timeout: Duration,
    /// Largest request body in bytes (413 `payload_too_large` above).
    pub body_limit: usize,
    /// Requests a client IP may make in a burst, on every route...
    pub ip_burst: u32,
    /// ...and how many more per second after it.
    pub ip_per_second: u32,
    /// `POST /api/v1/auth/login` and `/register` per client IP in a burst (on top of the general
    /// limit)...
    pub login_ip_burst: u32,
    /// ...and one more every this long.
    pub login_ip_period: Duration,
    /// The public URL is https: answers carry `Strict-Transport-Security`.
    pub hsts: bool,
}

/// Router sending every path of the route table to its service, no token check (used by the web UI
/// process to reach the API services directly as its signed-in user). Headers are forwarded as given
/// (minus hop-by-hop ones), so the caller's `Authorization` and `x-request-id` go along. Other paths,
/// `/internal/…` included, get a 404 problem (its fallback).
pub fn api_router(upstreams: Arc<Upstreams>, proxy: Arc<Proxy>) -> Router {
    routes::api_routes(|service| {
        let (upstreams, proxy) = (upstreams.clone(), proxy.clone());
        any(move |req: Request| async move { proxy.forward_to(service, upstreams.base(service), req).await })
    })
    .fallback(|| async { ApiError::not_found("resource") })
}

/// The gateway's application router (without `/healthz`, `/readyz`, `/metrics`: [`app`] adds them).
pub fn router(config: GatewayConfig) -> Router {
    build(config).0
}

/// The whole gateway, ready to serve (with `into_make_service_with_connect_info::<SocketAddr>()`,
/// which the per-IP limits and `X-Forwarded-For` need): [`router`] inside the platform's
/// `finish_router` (request ids, access log, per-route metrics, `/healthz`, `/metrics`), whose
/// `/readyz` asks every service's `/readyz` ([`UpstreamsReady::checks`]): 200
/// `{"status":"ready","checks":{"users":"ok",…}}`, else 503 with the failing services marked `failing`.
pub fn app(config: GatewayConfig, metrics: Metrics) -> Router {
    let hsts = config.hsts;
    let (routes, upstreams, proxy) = build(config);
    finish_router(routes, UpstreamsReady::new(upstreams, proxy).checks(), metrics, hsts)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "only GET is allowed here")
}

fn build(config: GatewayConfig) -> (Router, Arc<Upstreams>, Arc<Proxy>) {
    let upstreams = Arc::new(config.upstreams);
    let proxy = Arc::new(Proxy::new(config.timeout));
    let limits = Arc::new(limits::IpLimits::new(
        config.ip_burst,
        config.ip_per_second,
        config.login_ip_burst,
        config.login_ip_period,
    ));
    let docs = Arc::new(openapi::MergedDocs::new(upstreams.clone(), proxy.clone()));

    let to_service = |service: Service| {
        let (upstreams, proxy) = (upstreams.clone(), proxy.clone());
        any(move |mut req: Request| async move {
            edge::set_forwarded_headers(&mut req);
            proxy.forward_to(service, upstreams.base(service), req).await
        })
    };
    // Internal routes exist for services calling each other; from outside they do not exist.
    let refuse = any(|| async { ApiError::not_found("resource").into_response() });

    let router = routes::gateway_routes(to_service, refuse)
        .route("/api/v1/openapi.json", get(openapi::serve).fallback(method_not_allowed).with_state(docs))
        // Innermost first: the token is checked last, after the cheaper refusals.
        .layer(from_fn_with_state(config.verifier, edge::check_token))
        .layer(from_fn_with_state(config.body_limit, limits::limit_body))
        .layer(from_fn_with_state(limits, limits::rate_limit))
        .layer(from_fn(edge::request_context));
    (router, upstreams, proxy)
}
