//! The OpenAPI document and an offline API docs page (Swagger UI, vendored and embedded in the binary).

use axum::{
    http::header::{CACHE_CONTROL, CONTENT_TYPE},
    response::{Html, IntoResponse},
    routing::get,
    Json, Router,
};

const SWAGGER_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ticket Gateway API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
<main id="swagger-ui"></main>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body>
</html>"#;

const INIT: &str =
    "window.ui = SwaggerUIBundle({ url: '/api/v1/openapi.json', dom_id: '#swagger-ui', deepLinking: true });";

pub fn router(openapi: utoipa::openapi::OpenApi) -> Router {
    let cached = |ct: &'static str, body: &'static [u8]| {
        move || async move { ([(CONTENT_TYPE, ct), (CACHE_CONTROL, "public, max-age=86400")], body).into_response() }
    };
    Router::new()
        .route("/api/v1/openapi.json", get(move || async move { Json(openapi) }))
        .route("/api/docs", get(|| async { Html(PAGE) }))
        .route("/api/docs/swagger-ui-bundle.js", get(cached("text/javascript", SWAGGER_JS)))
        .route("/api/docs/swagger-ui.css", get(cached("text/css", SWAGGER_CSS)))
        .route("/api/docs/init.js", get(cached("text/javascript", INIT.as_bytes())))
}
