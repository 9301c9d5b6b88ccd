//! The OpenAPI document and an offline API docs page (Swagger UI, vendored and embedded in the binary).

use utoipa::openapi::{
    path::Operation,
    response::{Response, ResponseBuilder},
    Content, OpenApi, Ref, RefOr,
};

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

pub fn router(mut openapi: OpenApi) -> Router {
    declare_problems(&mut openapi);
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

/// The media type of every error answer (RFC 9457).
const PROBLEM_JSON: &str = "application/problem+json";

/// Declare every error an operation can answer, as `application/problem+json` with the `Problem`
/// schema: what a handler declares itself, plus what the platform's layers answer for any route —
/// 400 (malformed JSON or query), 422 (invalid fields), 429 (rate limits, with `Retry-After`), 503
/// (the database unreachable, with `Retry-After`); 401 and 403 where a token is required; 404 where
/// the path names something; 413 and 415 where there is a body; 409 where the operation changes state.
pub fn declare_problems(openapi: &mut OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let names_something = path.contains('{');
        if let Some(op) = &mut item.get {
            declare_operation_problems(op, names_something, false);
        }
        let changes = [&mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for op in changes.into_iter().flatten() {
            declare_operation_problems(op, names_something, true);
        }
    }
}

fn declare_operation_problems(op: &mut Operation, names_something: bool, changes_state: bool) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let mut statuses =
        vec![("400", "malformed request"), ("422", "invalid fields"), ("429", "too many requests; see `Retry-After`")];
    statuses.push(("503", "temporarily unavailable; see `Retry-After`"));
    if secured {
        statuses.extend([("401", "no valid token"), ("403", "not allowed to the caller")]);
    }
    if names_something {
        statuses.push(("404", "not found"));
    }
    if has_body {
        statuses.extend([("413", "body too large"), ("415", "not JSON")]);
    }
    if changes_state {
        statuses.push(("409", "not possible in the current state (see `code`)"));
    }
    let responses = &mut op.responses.responses;
    for (status, description) in statuses {
        responses.entry(status.to_owned()).or_insert_with(|| RefOr::T(problem_response(description)));
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if status.starts_with('4') || status.starts_with('5') {
            // Declared by the handler as `body = Problem`: the same schema, under its media type.
            if let Some(content) = response.content.shift_remove("application/json") {
                response.content.insert(PROBLEM_JSON.to_owned(), content);
            }
            if response.content.is_empty() {
                response.content.insert(PROBLEM_JSON.to_owned(), problem_content());
            }
        }
    }
}

fn problem_content() -> Content {
    Content::new(Some(Ref::from_schema_name("Problem")))
}

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new().description(description).content(PROBLEM_JSON, problem_content()).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_declares_its_problems_as_problem_json() {
        let mut doc: OpenApi = serde_json::from_value(serde_json::json!({
            "openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {
                "/things/{id}": {"put": {
                    "security": [{"bearer": []}],
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "409": {"description": "taken", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                    }
                }},
                "/open": {"get": {"responses": {"200": {"description": "ok"}}}}
            }
        }))
        .unwrap();
        declare_problems(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();
        let put = &doc["paths"]["/things/{id}"]["put"]["responses"];
        for status in ["400", "401", "403", "404", "409", "413", "415", "422", "429", "503"] {
            assert!(put[status]["content"][PROBLEM_JSON]["schema"]["$ref"].is_string(), "{status}: {put}");
        }
        assert!(put["200"]["content"]["application/json"].is_object(), "success bodies stay JSON");
        let get = &doc["paths"]["/open"]["get"]["responses"];
        assert!(get["401"].is_null() && get["404"].is_null() && get["413"].is_null() && get["409"].is_null(), "{get}");
        assert!(get["429"].is_object());
    }
}
