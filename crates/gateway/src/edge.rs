//! What the gateway, as the edge, decides about each request before any service sees it: its request
//! id and trace context, who the client is (`X-Forwarded-*`), and whether its bearer token is genuine.

use std::{net::IpAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderName, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tg_platform::{
    auth::{AuthError, TokenVerifier},
    ApiError,
};

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Middleware: give the request an `x-request-id` (the incoming one, else a new UUID v4; under
/// `finish_router` its layer has already done so and this keeps that one) and a W3C `traceparent`
/// (a valid incoming one, else a new trace), so both reach the service; the response carries the id.
pub(crate) async fn request_context(mut req: Request, next: Next) -> Response {
    let headers = req.headers_mut();
    let id = match headers.get(&X_REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a header value");
            headers.insert(X_REQUEST_ID.clone(), id.clone());
            id
        }
    };
    let incoming_ok = headers.get(&TRACEPARENT).and_then(|v| v.to_str().ok()).is_some_and(valid_traceparent);
    if !incoming_ok {
        // A new trace: whatever vendor state came with a broken parent belongs to no trace of ours.
        headers.remove(&TRACESTATE);
        let fresh = HeaderValue::from_str(&new_traceparent()).expect("hex is a header value");
        headers.insert(TRACEPARENT.clone(), fresh);
    }
    let mut res = next.run(req).await;
    res.headers_mut().insert(X_REQUEST_ID.clone(), id);
    res
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase, ids not all zero (W3C Trace
/// Context, version 00).
pub(crate) fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    matches!(parts.as_slice(), [version, trace, parent, flags]
        if *version == "00" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2) && nonzero(trace) && nonzero(parent))
}

/// A new trace, sampled: random trace and parent ids, flags 01.
fn new_traceparent() -> String {
    let trace = rand::random::<u128>().max(1);
    let parent = rand::random::<u64>().max(1);
    format!("00-{trace:032x}-{parent:016x}-01")
}

/// The address of the client's connection (absent when the router is called without a listener).
pub(crate) fn peer_ip(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_canonical())
}

/// `X-Forwarded-For` is the peer (incoming values are dropped: the gateway is the edge, so anything
/// a client wrote there is a claim, not a fact), `X-Forwarded-Proto` the scheme it used,
/// `X-Forwarded-Host` the `Host` it asked for. `Forwarded` (RFC 7239) is dropped for the same reason.
pub(crate) fn set_forwarded_headers(req: &mut Request) {
    let peer = peer_ip(req);
    let proto = if req.uri().scheme_str() == Some("https") { "https" } else { "http" };
    let host = req
        .headers()
        .get(header::HOST)
        .cloned()
        .or_else(|| req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    let headers = req.headers_mut();
    headers.remove(header::FORWARDED);
    headers.remove(&X_FORWARDED_FOR);
    headers.remove(&X_FORWARDED_HOST);
    if let Some(ip) = peer {
        headers
            .insert(X_FORWARDED_FOR.clone(), HeaderValue::from_str(&ip.to_string()).expect("an IP is a header value"));
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
}

/// Middleware: a request with a bearer token is let through only if the token verifies; a forged or
/// expired one is refused here (401) so it never costs a service anything. No token: passed on as
/// anonymous (each route decides). The `Authorization` header itself travels on unchanged, since
/// services verify it again to know their caller.
pub(crate) async fn check_token(State(verifier): State<Arc<dyn TokenVerifier>>, req: Request, next: Next) -> Response {
    let Some(token) = bearer(req.headers()) else {
        return next.run(req).await;
    };
    if token.is_empty() {
        return ApiError::invalid_token("the bearer token is empty").into_response();
    }
    match verifier.verify(token).await {
        Ok(_) => next.run(req).await,
        Err(AuthError::Invalid(why)) => {
            tracing::debug!(%why, "bearer token rejected at the gateway");
            ApiError::invalid_token("token is invalid or expired").into_response()
        }
        Err(AuthError::Unavailable(why)) => {
            tracing::warn!(%why, "token verification unavailable");
            ApiError::unavailable("idp_unavailable", "tokens cannot be verified right now, retry shortly")
                .retry_in(5)
                .into_response()
        }
    }
}

/// The token of an `Authorization: Bearer …` header; `None` for no header or another scheme (which
/// the services refuse themselves).
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_validation() {
        assert!(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert!(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01",
        ] {
            assert!(!valid_traceparent(bad), "{bad}");
        }
        for _ in 0..100 {
            assert!(valid_traceparent(&new_traceparent()));
        }
    }

    #[test]
    fn bearer_tokens() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer   abc "));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert_eq!(bearer(&h), Some(""));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic dTpw"));
        assert_eq!(bearer(&h), None);
    }
}
