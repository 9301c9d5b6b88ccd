//! The gateway over real HTTP: real upstream servers on ephemeral ports (an echo server per service
//! that records what reached it), the gateway in front of them, a real HTTP client.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    Json, Router,
};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde_json::{json, Value};
use tg_gateway::{GatewayConfig, Service, Upstreams};
use tg_platform::{
    auth::{AuthError, Principal, Role, TokenVerifier},
    metrics::Metrics,
};
use tokio::net::TcpListener;

// ---------------------------------------------------------------- upstreams

/// One request as an upstream received it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Upstream {
    name: &'static str,
    seen: Arc<Mutex<Vec<Seen>>>,
    ready: Arc<AtomicBool>,
    /// How many times its OpenAPI document was asked for.
    docs_served: Arc<AtomicUsize>,
}

impl Upstream {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn last(&self) -> Seen {
        self.seen().pop().unwrap_or_else(|| panic!("{} received nothing", self.name))
    }
}

/// An echo server standing for service `name`: `/readyz` (200 while `ready`), its OpenAPI document,
/// and for any other path records the request and answers who it is. A path ending in `/slow`
/// answers after 3 s.
async fn spawn_upstream(name: &'static str) -> (Upstream, SocketAddr) {
    let upstream =
        Upstream { name, seen: Arc::default(), ready: Arc::new(AtomicBool::new(true)), docs_served: Arc::default() };
    let app = Router::new().fallback(echo).with_state(upstream.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (upstream, addr)
}

async fn echo(State(up): State<Upstream>, req: Request) -> Response {
    match req.uri().path() {
        "/readyz" if up.ready.load(Ordering::SeqCst) => return Json(json!({"status": "ready"})).into_response(),
        "/readyz" => return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not_ready"}))).into_response(),
        "/api/v1/openapi.json" => {
            up.docs_served.fetch_add(1, Ordering::SeqCst);
            return Json(json!({
                "openapi": "3.1.0",
                "info": {"title": up.name, "version": "0.1.0"},
                "paths": {
                    format!("/api/v1/{}-only", up.name): {"get": {"operationId": format!("{}_op", up.name)}},
                },
                "components": {
                    "schemas": {format!("{}Thing", up.name): {"type": "object"}, "Problem": {"type": "object"}},
                    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                },
            }))
            .into_response();
        }
        _ => {}
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    up.seen.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        uri: parts.uri.to_string(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    if parts.uri.path().ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let mut res = Json(json!({"service": up.name, "path": parts.uri.path(), "bytes": body.len()})).into_response();
    // A hop-by-hop header the gateway must not pass back to the client.
    res.headers_mut().insert("proxy-authenticate", HeaderValue::from_static("Basic"));
    res.headers_mut().insert("x-upstream", HeaderValue::from_static(up.name));
    res
}

// ---------------------------------------------------------------- gateway

/// Accepts the token "good", says the identity provider is down for "idp-down", rejects the rest.
struct TestVerifier;

#[async_trait::async_trait]
impl TokenVerifier for TestVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        match token {
            "good" => Ok(Principal::user("u1", vec![Role::User])),
            "idp-down" => Err(AuthError::Unavailable("jwks unreachable".into())),
            _ => Err(AuthError::Invalid("bad signature".into())),
        }
    }
}

struct Gateway {
    url: String,
    upstreams: HashMap<Service, Upstream>,
}

impl Gateway {
    fn upstream(&self, service: Service) -> &Upstream {
        &self.upstreams[&service]
    }
    fn hits(&self) -> usize {
        self.upstreams.values().map(|u| u.seen().len()).sum()
    }
}

fn config(upstreams: Upstreams) -> GatewayConfig {
    GatewayConfig {
        upstreams,
        verifier: Arc::new(TestVerifier),
        timeout: Duration::from_secs(2),
        body_limit: 64 * 1024,
        ip_burst: 1000,
        ip_per_second: 1000,
        login_ip_burst: 1000,
        login_ip_period: Duration::from_millis(1),
        hsts: false,
    }
}

/// An address nothing listens on.
async fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// The gateway in front of one echo server per service, except `down` ones (nothing listening).
async fn spawn_gateway(down: &[Service], tweak: impl FnOnce(&mut GatewayConfig)) -> Gateway {
    let mut bases = HashMap::new();
    let mut upstreams = HashMap::new();
    for service in Service::ALL {
        let addr = if down.contains(&service) {
            dead_address().await
        } else {
            let (upstream, addr) = spawn_upstream(service.as_str()).await;
            upstreams.insert(service, upstream);
            addr
        };
        bases.insert(service, format!("http://{addr}"));
    }
    let mut cfg = config(Upstreams::new(|s| bases[&s].clone()));
    tweak(&mut cfg);
    let app = tg_gateway::app(cfg, Metrics::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap()
    });
    Gateway { url: format!("http://{addr}"), upstreams }
}

// ---------------------------------------------------------------- client

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    /// The problem's `code`, after checking it is problem+json.
    fn problem_code(&self) -> String {
        assert_eq!(self.headers["content-type"], "application/problem+json", "{:?}", self.body);
        self.json()["code"].as_str().unwrap().to_owned()
    }
}

async fn send(req: axum::http::Request<Body>) -> Answer {
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let res = client.request(req).await.expect("the gateway answers");
    let (parts, body) = res.into_parts();
    let body = http_body_util::BodyExt::collect(body).await.unwrap().to_bytes();
    Answer { status: parts.status, headers: parts.headers, body }
}

async fn get(gw: &Gateway, path: &str) -> Answer {
    send(axum::http::Request::get(format!("{}{path}", gw.url)).body(Body::empty()).unwrap()).await
}

fn request(gw: &Gateway, method: Method, path: &str) -> axum::http::request::Builder {
    axum::http::Request::builder().method(method).uri(format!("{}{path}", gw.url))
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn each_path_reaches_the_service_that_owns_it() {
    let gw = spawn_gateway(&[], |_| {}).await;
    let cases = [
        (Method::POST, "/api/v1/auth/login", Service::Users),
        (Method::GET, "/.well-known/jwks.json", Service::Users),
        (Method::PATCH, "/api/v1/me", Service::Users),
        (Method::GET, "/api/v1/events?sort=start&limit=12", Service::Events),
        (Method::POST, "/api/v1/events/e1/publish", Service::Events),
        (Method::GET, "/media/events/e1/banner.webp", Service::Events),
        (Method::GET, "/api/v1/events/e1/sales", Service::Bookings),
        (Method::POST, "/api/v1/bookings/b1/cancel", Service::Bookings),
        (Method::GET, "/api/v1/me/tickets/t1/qr.svg", Service::Bookings),
        (Method::POST, "/api/v1/payments/webhooks/stripe", Service::Payments),
        (Method::GET, "/pay/sandbox/p1", Service::Payments),
        (Method::PUT, "/api/v1/me/notification-channels", Service::Notifications),
        (Method::GET, "/api/v1/admin/dead-letters", Service::Admin),
        (Method::GET, "/", Service::Web),
        (Method::GET, "/events/some-event?lang=km", Service::Web),
        (Method::GET, "/assets/app.css", Service::Web),
    ];
    let count = cases.len();
    for (method, path, owner) in cases {
        let body = if method == Method::GET { Body::empty() } else { Body::from(format!("body for {path}")) };
        let res = send(request(&gw, method.clone(), path).body(body).unwrap()).await;
        assert_eq!(res.status, StatusCode::OK, "{method} {path}");
        assert_eq!(res.headers["x-upstream"], owner.as_str(), "{method} {path}");
        let seen = gw.upstream(owner).last();
        assert_eq!((&seen.method, seen.uri.as_str()), (&method, path), "method, path and query travel unchanged");
        if method != Method::GET {
            assert_eq!(seen.body, format!("body for {path}").as_bytes());
        }
    }
    assert_eq!(gw.hits(), count, "each request reached exactly one service");
}

#[tokio::test]
async fn internal_routes_are_never_forwarded() {
    let gw = spawn_gateway(&[], |_| {}).await;
    for path in ["/internal/v1/x", "/internal"] {
        let res = send(request(&gw, Method::POST, path).body(Body::empty()).unwrap()).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(res.problem_code(), "not_found");
    }
    assert_eq!(gw.hits(), 0);
}

#[tokio::test]
async fn forged_tokens_stop_at_the_gateway() {
    let gw = spawn_gateway(&[], |_| {}).await;
    for auth in ["Bearer forged", "Bearer ", "bearer forged"] {
        let res =
            send(request(&gw, Method::GET, "/api/v1/me").header("authorization", auth).body(Body::empty()).unwrap())
                .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(res.problem_code(), "invalid_token");
        assert_eq!(res.headers["www-authenticate"], "Bearer");
    }
    let res = send(
        request(&gw, Method::GET, "/api/v1/me").header("authorization", "Bearer idp-down").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.problem_code(), "idp_unavailable");
    assert_eq!(gw.hits(), 0, "no service was asked");
}

#[tokio::test]
async fn good_tokens_and_anonymous_requests_are_forwarded() {
    let gw = spawn_gateway(&[], |_| {}).await;
    let res = send(
        request(&gw, Method::GET, "/api/v1/me").header("authorization", "Bearer good").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        gw.upstream(Service::Users).last().headers["authorization"],
        "Bearer good",
        "unchanged, for the service"
    );

    let res = get(&gw, "/api/v1/events").await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(gw.upstream(Service::Events).last().headers.get("authorization").is_none());
}

#[tokio::test]
async fn request_id_and_trace_context_reach_the_service() {
    let gw = spawn_gateway(&[], |_| {}).await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let res = send(
        request(&gw, Method::GET, "/api/v1/events")
            .header("x-request-id", "req-42")
            .header("traceparent", incoming)
            .header("tracestate", "vendor=1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.headers["x-request-id"], "req-42");
    let seen = gw.upstream(Service::Events).last();
    assert_eq!(seen.headers["x-request-id"], "req-42");
    assert_eq!(seen.headers["traceparent"], incoming);
    assert_eq!(seen.headers["tracestate"], "vendor=1");

    // None given: created, and the service and the client see the same id.
    let res = get(&gw, "/api/v1/events").await;
    let id = res.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let seen = gw.upstream(Service::Events).last();
    assert_eq!(seen.headers["x-request-id"], id.as_str());
    let created = seen.headers["traceparent"].to_str().unwrap().to_owned();
    assert!(created.starts_with("00-") && created.ends_with("-01") && created.len() == 55, "{created}");

    // An invalid one (all-zero trace id) is replaced by a new trace, and its state dropped.
    send(
        request(&gw, Method::GET, "/api/v1/events")
            .header("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")
            .header("tracestate", "vendor=1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let seen = gw.upstream(Service::Events).last();
    let replaced = seen.headers["traceparent"].to_str().unwrap();
    assert_ne!(replaced, "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
    assert_ne!(replaced, created, "a new trace per request");
    assert_eq!(replaced.len(), 55);
    assert!(seen.headers.get("tracestate").is_none());
}

#[tokio::test]
async fn forwarded_headers_name_the_peer_and_hop_by_hop_headers_stop() {
    let gw = spawn_gateway(&[], |_| {}).await;
    let res = send(
        request(&gw, Method::GET, "/api/v1/events")
            .header("host", "tickets.example")
            .header("x-forwarded-for", "6.6.6.6")
            .header("forwarded", "for=6.6.6.6")
            .header("connection", "keep-alive, x-hop")
            .header("keep-alive", "timeout=5")
            .header("x-hop", "1")
            .header("proxy-authorization", "Basic eDp5")
            .header("te", "trailers")
            .header("trailer", "x-sum")
            .header("x-keep", "yes")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.headers.get("proxy-authenticate").is_none(), "hop-by-hop on the way back too");
    let seen = gw.upstream(Service::Events).last();
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1", "the peer, not what the client claimed");
    assert_eq!(seen.headers.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-forwarded-host"], "tickets.example");
    assert_eq!(seen.headers["x-keep"], "yes");
    for dropped in ["forwarded", "x-hop", "keep-alive", "proxy-authorization", "te", "trailer"] {
        assert!(seen.headers.get(dropped).is_none(), "{dropped} reached the service: {:?}", seen.headers);
    }
}

#[tokio::test]
async fn too_many_requests_from_one_ip_are_refused() {
    let gw = spawn_gateway(&[], |c| {
        c.ip_burst = 3;
        c.ip_per_second = 1;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(get(&gw, "/api/v1/events").await.status, StatusCode::OK);
    }
    let res = get(&gw, "/api/v1/events").await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.problem_code(), "rate_limited");
    let retry: u64 = res.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(gw.hits(), 3, "the refused request never reached the service");
}

#[tokio::test]
async fn sign_in_has_a_stricter_limit() {
    let gw = spawn_gateway(&[], |c| {
        c.login_ip_burst = 2;
        c.login_ip_period = Duration::from_secs(60);
    })
    .await;
    let login = || request(&gw, Method::POST, "/api/v1/auth/login").body(Body::from("{}")).unwrap();
    assert_eq!(send(login()).await.status, StatusCode::OK);
    assert_eq!(
        send(request(&gw, Method::POST, "/api/v1/auth/register").body(Body::empty()).unwrap()).await.status,
        StatusCode::OK
    );
    let res = send(login()).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((50..=60).contains(&retry), "{retry}");
    // Other routes are not held back by it.
    assert_eq!(
        send(request(&gw, Method::POST, "/api/v1/auth/refresh").body(Body::empty()).unwrap()).await.status,
        StatusCode::OK
    );
    assert_eq!(gw.upstream(Service::Users).seen().len(), 3);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let gw = spawn_gateway(&[], |c| c.body_limit = 1024).await;
    // Declared too large.
    let res = send(request(&gw, Method::POST, "/api/v1/bookings").body(Body::from(vec![b'a'; 2048])).unwrap()).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.problem_code(), "payload_too_large");
    assert_eq!(gw.hits(), 0);

    // Streamed without a length, growing past the limit.
    let chunks = || futures_lite::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'b'; 256]))));
    let res = send(request(&gw, Method::POST, "/api/v1/bookings").body(Body::from_stream(chunks())).unwrap()).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.problem_code(), "payload_too_large");
    assert!(gw.upstream(Service::Bookings).seen().is_empty(), "the service never got a whole request");

    // Streamed and within the limit: passes whole.
    let small = futures_lite::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'c'; 256]))));
    let res = send(request(&gw, Method::POST, "/api/v1/bookings").body(Body::from_stream(small)).unwrap()).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(gw.upstream(Service::Bookings).last().body, vec![b'c'; 1024]);
}

#[tokio::test]
async fn a_slow_service_is_a_gateway_timeout() {
    let gw = spawn_gateway(&[], |c| c.timeout = Duration::from_millis(300)).await;
    let started = Instant::now();
    let res = get(&gw, "/api/v1/bookings/slow").await;
    assert_eq!(res.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(res.problem_code(), "upstream_timeout");
    assert!(res.json()["detail"].as_str().unwrap().contains("bookings"));
    assert!(started.elapsed() < Duration::from_secs(2), "answered at the deadline, not when the service did");
    // The others are unaffected.
    assert_eq!(get(&gw, "/api/v1/events").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_service_that_is_down_is_a_bad_gateway() {
    let gw = spawn_gateway(&[Service::Payments], |_| {}).await;
    let started = Instant::now();
    let res = get(&gw, "/api/v1/payments/p1").await;
    assert_eq!(res.status, StatusCode::BAD_GATEWAY);
    assert_eq!(res.problem_code(), "upstream_unavailable");
    assert!(res.json()["detail"].as_str().unwrap().contains("payments"), "names the service");
    assert!(res.headers.get("x-request-id").is_some());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(get(&gw, "/api/v1/events").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_openapi_document_merges_the_services_and_names_the_missing() {
    let gw = spawn_gateway(&[Service::Payments], |_| {}).await;
    let res = get(&gw, "/api/v1/openapi.json").await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.json();
    assert_eq!(doc["info"]["title"], "Ticket Gateway API");
    let paths = doc["paths"].as_object().unwrap();
    for service in ["users", "events", "bookings", "notifications", "admin"] {
        assert!(paths.contains_key(&format!("/api/v1/{service}-only")), "{service}: {paths:?}");
        assert!(doc["components"]["schemas"][format!("{service}Thing")].is_object());
    }
    assert!(!paths.contains_key("/api/v1/payments-only"));
    assert!(!paths.contains_key("/api/v1/web-only"), "the web UI has no API document");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(doc["x-missing-services"], json!(["payments"]));
    assert_eq!(gw.hits(), 0, "documents are fetched, not recorded as routed requests");

    // Served from the cache the second time: no service is asked again.
    assert_eq!(get(&gw, "/api/v1/openapi.json").await.json(), doc);
    for service in [Service::Users, Service::Admin] {
        assert_eq!(gw.upstream(service).docs_served.load(Ordering::SeqCst), 1, "{service}");
    }
    assert_eq!(gw.upstream(Service::Web).docs_served.load(Ordering::SeqCst), 0);

    let res = send(request(&gw, Method::POST, "/api/v1/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.problem_code(), "method_not_allowed");
}

#[tokio::test]
async fn readiness_asks_every_service() {
    let gw = spawn_gateway(&[], |_| {}).await;
    let res = get(&gw, "/readyz").await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let body = res.json();
    assert_eq!(body["status"], "ready");
    for service in Service::ALL {
        assert_eq!(body["checks"][service.as_str()], "ok", "{body}");
    }
    assert_eq!(get(&gw, "/healthz").await.status, StatusCode::OK);

    // A service that says it is not ready makes the gateway not ready, after the reuse window.
    gw.upstream(Service::Notifications).ready.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = get(&gw, "/readyz").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.json()["checks"]["notifications"], "failing");
    assert_eq!(res.json()["checks"]["users"], "ok");
}

#[tokio::test]
async fn readiness_fails_when_a_service_is_down() {
    let gw = spawn_gateway(&[Service::Events], |_| {}).await;
    let started = Instant::now();
    let res = get(&gw, "/readyz").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = res.json();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["events"], "failing");
    assert_eq!(body["checks"]["bookings"], "ok");
    assert!(started.elapsed() < Duration::from_secs(3), "one concurrent round, not one probe after another");
    // Liveness does not depend on the services.
    assert_eq!(get(&gw, "/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_per_route() {
    let gw = spawn_gateway(&[], |_| {}).await;
    get(&gw, "/api/v1/events/e1/sales").await;
    get(&gw, "/some/page").await;
    let metrics = String::from_utf8(get(&gw, "/metrics").await.body.to_vec()).unwrap();
    assert!(metrics.contains(r#"route="/api/v1/events/{id}/sales""#), "{metrics}");
    assert!(metrics.contains(r#"route="/{*rest}""#), "{metrics}");
}

#[tokio::test]
async fn api_router_forwards_without_checking_tokens() {
    let (users, addr) = spawn_upstream("users").await;
    let base = format!("http://{addr}");
    let upstreams = Arc::new(Upstreams::new(|_| base.clone()));
    let router = tg_gateway::api_router(upstreams, Arc::new(tg_gateway::Proxy::new(Duration::from_secs(2))));
    let req =
        axum::http::Request::get("/api/v1/me").header("authorization", "Bearer anything").body(Body::empty()).unwrap();
    let res = tower::ServiceExt::oneshot(router.clone(), req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(users.last().headers["authorization"], "Bearer anything");
    let req = axum::http::Request::get("/internal/v1/x").body(Body::empty()).unwrap();
    let res = tower::ServiceExt::oneshot(router.clone(), req).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let req = axum::http::Request::get("/").body(Body::empty()).unwrap();
    assert_eq!(tower::ServiceExt::oneshot(router, req).await.unwrap().status(), StatusCode::NOT_FOUND, "no web UI");
    assert_eq!(users.seen().len(), 1);
}
