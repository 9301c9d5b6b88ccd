//! Which service owns which path.
//!
//! The table is written as axum route patterns and mounted as real routes, so a path is resolved by
//! the same matcher the services use (most specific pattern first). Everything the table does not
//! name belongs to the web UI; `/internal/…` (service-to-service routes) is never reachable from
//! outside.

use axum::{routing::MethodRouter, Router};

use crate::service::Service;

/// Axum route patterns and the service that owns them. The web UI owns everything else.
pub fn route_table() -> &'static [(&'static str, Service)] {
    use Service::*;
    &[
        // users: identity, accounts, organizers
        ("/.well-known/{*rest}", Users),
        ("/api/v1/auth/{*rest}", Users),
        ("/api/v1/me", Users),
        ("/api/v1/me/organizer", Users),
        ("/api/v1/me/organizer-application", Users),
        ("/api/v1/me/password", Users),
        ("/api/v1/me/email", Users),
        ("/api/v1/me/email/{*rest}", Users),
        ("/api/v1/me/sessions", Users),
        ("/api/v1/me/sessions/{*rest}", Users),
        ("/api/v1/organizer-applications", Users),
        ("/api/v1/organizers/{id}", Users),
        // events: the catalogue, its lifecycle, analytics, banners
        ("/api/v1/events", Events),
        ("/api/v1/events/{id}", Events),
        ("/api/v1/events/{id}/publish", Events),
        ("/api/v1/events/{id}/unpublish", Events),
        ("/api/v1/events/{id}/cancel", Events),
        ("/api/v1/events/{id}/complete", Events),
        ("/api/v1/events/{id}/banner", Events),
        ("/api/v1/events/{id}/clicks", Events),
        ("/api/v1/events/{id}/shares", Events),
        ("/api/v1/events/{id}/rating", Events),
        ("/api/v1/events/{id}/invites", Events),
        ("/api/v1/categories", Events),
        ("/api/v1/tags", Events),
        ("/api/v1/me/events", Events),
        ("/media/{*rest}", Events),
        // bookings: holds, tickets, check-in, attendees, sales
        ("/api/v1/bookings", Bookings),
        ("/api/v1/bookings/{*rest}", Bookings),
        ("/api/v1/events/{id}/attendees", Bookings),
        ("/api/v1/events/{id}/attendees.csv", Bookings),
        ("/api/v1/events/{id}/availability", Bookings),
        ("/api/v1/events/{id}/checkins", Bookings),
        ("/api/v1/events/{id}/checkins/batch", Bookings),
        ("/api/v1/events/{id}/sales", Bookings),
        ("/api/v1/events/{id}/staff", Bookings),
        ("/api/v1/events/{id}/ticket-keys", Bookings),
        ("/api/v1/me/bookings", Bookings),
        ("/api/v1/me/tickets", Bookings),
        ("/api/v1/me/tickets/{*rest}", Bookings),
        // payments: payments, provider webhooks, the sandbox's pay page
        ("/api/v1/payments", Payments),
        ("/api/v1/payments/{*rest}", Payments),
        ("/pay/{*rest}", Payments),
        // notifications: the mailbox and the user's channels
        ("/api/v1/me/messages", Notifications),
        ("/api/v1/me/messages/{*rest}", Notifications),
        ("/api/v1/me/notification-channels", Notifications),
        ("/api/v1/me/notification-channels/{*rest}", Notifications),
        // admin: every admin route, whichever crate implements it
        ("/api/v1/admin/{*rest}", Admin),
    ]
}

/// Service-to-service routes: never routed from outside.
/// Never routed from outside: the services' internal routes, and the users service's
/// client-credentials grant, which only services (calling users directly) have any use for.
pub(crate) const INTERNAL: [&str; 3] = ["/internal", "/internal/{*rest}", "/api/v1/auth/token"];

/// One route per table entry, each answered by `to(service)`.
pub(crate) fn api_routes<S>(to: impl Fn(Service) -> MethodRouter<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    route_table().iter().fold(Router::new(), |router, &(pattern, service)| router.route(pattern, to(service)))
}

/// The gateway's whole map: the table, the web UI for every other path (a catch-all route rather
/// than a fallback, because `finish_router` replaces the fallback), and `refuse` for `/internal`.
pub(crate) fn gateway_routes<S>(to: impl Fn(Service) -> MethodRouter<S>, refuse: MethodRouter<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let web = to(Service::Web);
    INTERNAL
        .iter()
        .fold(api_routes(to), |router, pattern| router.route(pattern, refuse.clone()))
        .route("/", web.clone())
        .route("/{*rest}", web)
}

#[cfg(test)]
mod tests {
    use axum::{
        body::Body,
        http::{Request, StatusCode},
        routing::any,
    };
    use tower::ServiceExt;

    use super::*;

    /// The gateway's map with every service answering its own name.
    fn named() -> Router {
        gateway_routes(|s| any(move || async move { s.as_str() }), any(|| async { (StatusCode::NOT_FOUND, "refused") }))
    }

    async fn resolve(router: &Router, method: &str, path: &str) -> (StatusCode, String) {
        let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let res = router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn every_path_goes_to_its_owner() {
        use Service::*;
        let cases = [
            ("/.well-known/jwks.json", Users),
            ("/.well-known/openid-configuration", Users),
            ("/api/v1/auth/login", Users),
            ("/api/v1/auth/refresh", Users),
            ("/api/v1/me", Users),
            ("/api/v1/me/organizer", Users),
            ("/api/v1/me/organizer-application", Users),
            ("/api/v1/me/password", Users),
            ("/api/v1/me/email/verification", Users),
            ("/api/v1/me/sessions", Users),
            ("/api/v1/me/sessions/s1", Users),
            ("/api/v1/auth/forgot-password", Users),
            ("/api/v1/organizer-applications", Users),
            ("/api/v1/organizers/o1", Users),
            ("/api/v1/events", Events),
            ("/api/v1/events?sort=start&limit=12", Events),
            ("/api/v1/events/e1", Events),
            ("/api/v1/events/e1/publish", Events),
            ("/api/v1/events/e1/unpublish", Events),
            ("/api/v1/events/e1/cancel", Events),
            ("/api/v1/events/e1/complete", Events),
            ("/api/v1/events/e1/banner", Events),
            ("/api/v1/events/e1/clicks", Events),
            ("/api/v1/events/e1/shares", Events),
            ("/api/v1/events/e1/rating", Events),
            ("/api/v1/events/e1/invites", Events),
            ("/api/v1/categories", Events),
            ("/api/v1/tags", Events),
            ("/api/v1/me/events", Events),
            ("/media/events/e1/banner.webp", Events),
            ("/api/v1/bookings", Bookings),
            ("/api/v1/bookings/b1", Bookings),
            ("/api/v1/bookings/b1/cancel", Bookings),
            ("/api/v1/events/e1/attendees", Bookings),
            ("/api/v1/events/e1/attendees.csv", Bookings),
            ("/api/v1/events/e1/availability", Bookings),
            ("/api/v1/events/e1/checkins", Bookings),
            ("/api/v1/events/e1/checkins/batch", Bookings),
            ("/api/v1/events/e1/sales", Bookings),
            ("/api/v1/events/e1/staff", Bookings),
            ("/api/v1/events/e1/ticket-keys", Bookings),
            ("/api/v1/me/bookings", Bookings),
            ("/api/v1/me/tickets", Bookings),
            ("/api/v1/me/tickets/t1/qr.svg", Bookings),
            ("/api/v1/payments", Payments),
            ("/api/v1/payments/p1", Payments),
            ("/api/v1/payments/p1/refund", Payments),
            ("/api/v1/payments/webhooks/stripe", Payments),
            ("/pay/sandbox/p1", Payments),
            ("/api/v1/me/messages", Notifications),
            ("/api/v1/me/messages/m1", Notifications),
            ("/api/v1/me/notification-channels", Notifications),
            ("/api/v1/admin/users", Admin),
            ("/api/v1/admin/users/u1/roles", Admin),
            ("/api/v1/admin/events", Admin),
            ("/api/v1/admin/dead-letters/replay", Admin),
            ("/api/v1/admin/notifications/deliveries", Admin),
            ("/", Web),
            ("/events/some-slug", Web),
            ("/assets/app.css", Web),
            ("/sw.js", Web),
            ("/manifest.webmanifest", Web),
            ("/api/docs", Web),
            // Not in the table: the web UI answers (its 404 page), not some API service.
            ("/api/v1/events/e1/nonsense", Web),
            ("/api/v1/me/unknown", Web),
        ];
        let router = named();
        for (path, owner) in cases {
            for method in ["GET", "POST"] {
                assert_eq!(resolve(&router, method, path).await, (StatusCode::OK, owner.as_str().to_owned()), "{path}");
            }
        }
    }

    #[tokio::test]
    async fn internal_routes_are_refused() {
        let router = named();
        for path in ["/internal", "/internal/v1/x", "/internal/v1/bookings/b1/confirm", "/api/v1/auth/token"] {
            assert_eq!(resolve(&router, "POST", path).await, (StatusCode::NOT_FOUND, "refused".to_owned()), "{path}");
        }
    }

    /// Every `#[utoipa::path(…, path = "…")]` of the API crates is routed to the crate's service (admin
    /// routes to admin), so a route added to a service cannot silently end up at the web UI.
    #[tokio::test]
    async fn every_documented_route_is_in_the_table() {
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let owners = [
            ("users", Service::Users),
            ("events", Service::Events),
            ("bookings", Service::Bookings),
            ("payments", Service::Payments),
            ("notifications", Service::Notifications),
            ("messaging", Service::Admin),
        ];
        let router = named();
        let mut seen = 0;
        for (dir, owner) in owners {
            for path in documented_paths(&crates.join(dir).join("src")) {
                let expected = if INTERNAL.contains(&path.as_str()) {
                    "refused" // documented for services, deliberately not routed
                } else if path.starts_with("/api/v1/admin/") {
                    Service::Admin.as_str()
                } else {
                    owner.as_str()
                };
                let concrete = path.replace('{', "x").replace('}', "");
                assert_eq!(resolve(&router, "GET", &concrete).await.1, expected, "{path} (crates/{dir})");
                seen += 1;
            }
        }
        assert!(seen > 40, "found only {seen} documented routes: did the sources move?");
    }

    fn documented_paths(dir: &std::path::Path) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(documented_paths(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // `path = "/…"` in utoipa attributes, and the paths given to events' `lifecycle!` macro.
                for marker in ["path = \"", "lifecycle!("] {
                    for (at, _) in text.match_indices(marker) {
                        let mut literal = text[at + marker.len()..].split('"');
                        if marker.ends_with('(') {
                            literal.next();
                        }
                        if let Some(p) = literal.next().filter(|p| p.starts_with('/')) {
                            found.push(p.to_owned());
                        }
                    }
                }
            }
        }
        found
    }
}
