//! Forwarding one request to a service: hyper-util's pooled HTTP/1 client (the axum reverse-proxy
//! pattern) over HTTP or HTTPS (trusting the internal CA), hop-by-hop headers dropped both ways,
//! bodies streamed, one deadline per call, and every failure answered as problem+json.

use std::{error::Error as StdError, time::Duration};
use tracing::Instrument;

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{header, HeaderMap, HeaderName, StatusCode, Uri, Version},
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use tg_platform::ApiError;

use crate::service::Service;

/// A pooled HTTP client for the services, with a deadline per call.
pub struct Proxy {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    timeout: Duration,
}

impl Proxy {
    /// `timeout` bounds each upstream call from sending the request to receiving the response's
    /// headers (a streamed response body may take longer). Keep it under `finish_router`'s 30 s.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        connector.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config((*tg_platform::tls::client_config()).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Proxy { client, timeout }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Send `req` (method, path and query, headers but the hop-by-hop ones, streamed body) to the
    /// service at `base` (e.g. `http://127.0.0.1:9101`) and return its answer, or a problem: 502
    /// `upstream_unavailable` when it cannot be reached, 504 `upstream_timeout` when it does not
    /// answer in time, 413 `payload_too_large` when the body outgrew a limit set on it.
    pub async fn forward(&self, base: &str, req: Request) -> Response {
        self.forward_as("upstream", base, req).await
    }

    /// [`Proxy::forward`], naming `service` in the problems it answers.
    pub async fn forward_to(&self, service: Service, base: &str, req: Request) -> Response {
        self.forward_as(service.as_str(), base, req).await
    }

    async fn forward_as(&self, name: &str, base: &str, mut req: Request) -> Response {
        let uri = match upstream_uri(base, req.uri()) {
            Ok(uri) => uri,
            Err(e) => {
                tracing::error!(service = name, base, error = %e, "bad upstream URL");
                return upstream_unavailable(name).into_response();
            }
        };
        *req.uri_mut() = uri;
        // The client speaks HTTP/1.1 to the services whatever the caller spoke to us.
        *req.version_mut() = Version::HTTP_11;
        strip_hop_by_hop(req.headers_mut());
        let span = tracing::info_span!("upstream", service = name, otel.kind = "client");
        // The service's request continues this trace (a client's own traceparent is replaced).
        span.in_scope(|| tg_platform::traces::inject_into_headers(req.headers_mut()));

        match tokio::time::timeout(self.timeout, self.client.request(req).instrument(span)).await {
            Ok(Ok(mut res)) => {
                strip_hop_by_hop(res.headers_mut());
                res.map(Body::new)
            }
            Ok(Err(e)) if caused_by::<LengthLimitError>(&e) => payload_too_large().into_response(),
            Ok(Err(e)) => {
                tracing::warn!(service = name, error = %chain(&e), "upstream call failed");
                upstream_unavailable(name).into_response()
            }
            Err(_) => {
                tracing::warn!(service = name, timeout_ms = self.timeout.as_millis() as u64, "upstream timed out");
                ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    format!("the {name} service did not answer in time"),
                )
                .into_response()
            }
        }
    }

    /// `GET url`, its body read up to `max` bytes, all within `timeout` (for probes and documents).
    pub(crate) async fn get(&self, url: &str, timeout: Duration, max: usize) -> Result<(StatusCode, Bytes), String> {
        let req = Request::get(url).body(Body::empty()).map_err(|e| e.to_string())?;
        let call = async {
            let res = self.client.request(req).await.map_err(|e| chain(&e))?;
            let status = res.status();
            let body = Limited::new(res.into_body(), max).collect().await.map_err(|e| e.to_string())?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(timeout, call).await.map_err(|_| format!("no answer within {timeout:?}"))?
    }
}

/// `base` + the request's path and query.
fn upstream_uri(base: &str, uri: &Uri) -> Result<Uri, axum::http::uri::InvalidUri> {
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    format!("{}{path_and_query}", base.trim_end_matches('/')).parse()
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1): they must not travel
/// through a proxy. Headers named in `Connection` are hop-by-hop too.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [header::CONNECTION, header::TE, header::TRAILER, header::TRANSFER_ENCODING, header::UPGRADE] {
        headers.remove(name);
    }
    let proxy_or_keep_alive: Vec<HeaderName> =
        headers.keys().filter(|k| k.as_str().starts_with("proxy-") || k.as_str() == "keep-alive").cloned().collect();
    for name in proxy_or_keep_alive {
        headers.remove(name);
    }
}

/// Whether an `E` is somewhere in the chain of `err`'s causes.
fn caused_by<E: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.is::<E>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The error and its causes on one line (hyper's own message alone is often just "client error").
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

pub(crate) fn upstream_unavailable(name: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "upstream_unavailable", format!("the {name} service is unavailable"))
        .retry_in(1)
}

pub(crate) fn payload_too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic eA=="),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-secret-hop", "1"),
            ("authorization", "Bearer good"),
            ("x-request-id", "r1"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["authorization", "x-request-id"]);
    }

    #[test]
    fn upstream_uri_keeps_path_and_query() {
        let uri: Uri = "/api/v1/events?sort=start&q=a%20b".parse().unwrap();
        assert_eq!(
            upstream_uri("http://127.0.0.1:9102/", &uri).unwrap(),
            "http://127.0.0.1:9102/api/v1/events?sort=start&q=a%20b"
        );
        assert_eq!(upstream_uri("http://h:1", &Uri::from_static("http://gw/x")).unwrap(), "http://h:1/x");
    }
}
