//! Static files embedded in the binary: styles, scripts, fonts, icons, the PWA manifest and the
//! service worker (served at the root so it may control every page).

use std::sync::Arc;

use axum::{
    extract::Path,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use crate::Web;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset { name: $name, content_type: $type, body: include_bytes!(concat!("../assets/", $name)) }
    };
}

const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("scanner.js", "text/javascript; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("icon-192.png", "image/png"),
    asset!("icon-512.png", "image/png"),
    asset!("vendor/htmx-2.0.11.min.js", "text/javascript; charset=utf-8"),
    asset!("vendor/jsqr-1.4.0.js", "text/javascript; charset=utf-8"),
    asset!("vendor/noto-sans-khmer-400.woff2", "font/woff2"),
    asset!("vendor/noto-sans-khmer-700.woff2", "font/woff2"),
];

/// Bumped when any asset changes, so browsers and the service worker fetch the new files.
pub const VERSION: &str = "1";

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/assets/{*file}", get(asset))
        .route("/sw.js", get(service_worker))
        .route("/manifest.webmanifest", get(manifest))
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == file) else { return StatusCode::NOT_FOUND.into_response() };
    let mut res = (StatusCode::OK, a.body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    // URLs carry `?v=VERSION`; a day is plenty and keeps updates simple.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    res
}

async fn service_worker() -> Response {
    let body = include_str!("../assets/sw.js").replace("__VERSION__", VERSION);
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

async fn manifest() -> Response {
    let mut res = include_str!("../assets/manifest.webmanifest").into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/manifest+json"));
    res
}
