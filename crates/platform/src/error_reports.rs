//! Optional error reporting to Sentry when `SENTRY_DSN` is set: panics (with their backtrace) and
//! answers of 500 or 502–504, tagged with the service, route template, method, status and
//! request id. Nothing personal is sent: no user, headers, body, query string or client address.

use std::borrow::Cow;

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};

/// Start reporting when the environment names a DSN; keep the guard for the life of the process
/// (dropping it flushes what is queued).
pub fn init(service: &str) -> Option<sentry::ClientInitGuard> {
    let dsn = std::env::var("SENTRY_DSN").ok().filter(|d| !d.trim().is_empty())?;
    let options = sentry::ClientOptions {
        dsn: match dsn.parse() {
            Ok(dsn) => Some(dsn),
            Err(e) => {
                tracing::error!(error = %e, "SENTRY_DSN is not a DSN; errors are not reported");
                return None;
            }
        },
        release: Some(Cow::Borrowed(env!("CARGO_PKG_VERSION"))),
        environment: std::env::var("SENTRY_ENVIRONMENT").ok().map(Cow::Owned),
        send_default_pii: false,
        // The host name says which pod; nothing else of the machine is needed.
        before_send: Some(std::sync::Arc::new(|mut event| {
            event.user = None;
            event.request = None;
            Some(event)
        })),
        ..Default::default()
    };
    let guard = sentry::init(options);
    sentry::configure_scope(|scope| scope.set_tag("service", service));
    Some(guard)
}

/// Middleware reporting server errors of the routes it wraps (probes answer 503 by design, and
/// are left out by their route).
pub async fn report_server_errors(req: Request, next: Next) -> Response {
    if sentry::Hub::current().client().is_none() {
        return next.run(req).await;
    }
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = req.method().clone();
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let probe = matches!(route.as_deref(), Some("/readyz" | "/healthz"));
    if matches!(status, 500 | 502..=504) && !probe {
        let route = route.unwrap_or_else(|| "unmatched".into());
        sentry::with_scope(
            |scope| {
                scope.set_tag("route", &route);
                scope.set_tag("method", method.as_str());
                scope.set_tag("status", status);
                if let Some(id) = &request_id {
                    scope.set_tag("request_id", id);
                }
            },
            || sentry::capture_message(&format!("{method} {route} answered {status}"), sentry::Level::Error),
        );
    }
    res
}
