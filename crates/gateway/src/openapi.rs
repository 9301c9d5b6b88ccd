//! One OpenAPI document for the whole API: every service's own document, fetched concurrently and
//! merged, cached for a while so the docs page does not fan out to six services on every load.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use serde_json::{json, Map, Value};
use tokio::{sync::Mutex, task::JoinSet};

use crate::{proxy::Proxy, service::Service, service::Upstreams};

/// How long a merged document is served before the services are asked again.
const FRESH_FOR: Duration = Duration::from_secs(30);
/// A document missing a service is kept only briefly, so the service shows up soon after it is back.
const PARTIAL_FRESH_FOR: Duration = Duration::from_secs(5);
/// Largest service document read.
const MAX_DOCUMENT: usize = 16 * 1024 * 1024;

pub(crate) struct MergedDocs {
    upstreams: Arc<Upstreams>,
    proxy: Arc<Proxy>,
    /// The last merged document (serialized) and until when it is fresh. Held across a rebuild, so
    /// concurrent requests wait for one round instead of starting their own.
    cache: Mutex<Option<(Instant, Bytes)>>,
}

impl MergedDocs {
    pub(crate) fn new(upstreams: Arc<Upstreams>, proxy: Arc<Proxy>) -> Self {
        MergedDocs { upstreams, proxy, cache: Mutex::new(None) }
    }

    async fn document(&self) -> Bytes {
        let mut cache = self.cache.lock().await;
        if let Some((until, doc)) = &*cache {
            if Instant::now() < *until {
                return doc.clone();
            }
        }
        let (doc, complete) = self.build().await;
        let doc = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        let fresh_for = if complete { FRESH_FOR } else { PARTIAL_FRESH_FOR };
        *cache = Some((Instant::now() + fresh_for, doc.clone()));
        doc
    }

    /// Ask every API service for its document; merge those that answer.
    async fn build(&self) -> (Value, bool) {
        let mut calls = JoinSet::new();
        for service in Service::API {
            let proxy = self.proxy.clone();
            let url = format!("{}/api/v1/openapi.json", self.upstreams.base(service));
            calls.spawn(async move { (service, fetch(&proxy, &url).await) });
        }
        let mut docs = Vec::new();
        let mut missing = Vec::new();
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok((service, Ok(doc))) => docs.push((service, doc)),
                Ok((service, Err(why))) => {
                    tracing::warn!(%service, %why, "OpenAPI document unavailable");
                    missing.push(service);
                }
                Err(e) => tracing::error!(error = %e, "OpenAPI fetch task failed"),
            }
        }
        // Deterministic output whatever order the answers came in.
        docs.sort_by_key(|(service, _)| *service);
        missing.sort();
        let complete = docs.len() == Service::API.len();
        (merge(docs.into_iter().map(|(_, doc)| doc), &missing), complete)
    }
}

async fn fetch(proxy: &Proxy, url: &str) -> Result<Value, String> {
    let (status, body) = proxy.get(url, proxy.timeout(), MAX_DOCUMENT).await?;
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    let doc: Value = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
    if !doc.get("paths").is_some_and(Value::is_object) {
        return Err("not an OpenAPI document (no paths)".into());
    }
    Ok(doc)
}

/// One document from several: paths (operations of the same path from several documents are
/// combined), every kind of component and the tags, first definition winning; `missing` services are
/// named in `x-missing-services`.
pub(crate) fn merge(docs: impl IntoIterator<Item = Value>, missing: &[Service]) -> Value {
    let mut merged = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Ticket Gateway API",
            "description": "Event ticketing: identity, events, bookings, payments.",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "paths": {},
        "components": {},
    });
    let mut tags: Vec<Value> = Vec::new();
    let mut first = true;
    for doc in docs {
        let Value::Object(doc) = doc else { continue };
        if first {
            // The services are built from one source: their OpenAPI and API versions are the gateway's.
            if let Some(v) = doc.get("openapi") {
                merged["openapi"] = v.clone();
            }
            if let Some(v) = doc.get("info").and_then(|i| i.get("version")) {
                merged["info"]["version"] = v.clone();
            }
            first = false;
        }
        if let Some(Value::Object(paths)) = doc.get("paths") {
            let into = merged["paths"].as_object_mut().expect("paths is an object");
            for (path, item) in paths {
                union_into(into, path, item);
            }
        }
        if let Some(Value::Object(components)) = doc.get("components") {
            let into = merged["components"].as_object_mut().expect("components is an object");
            for (kind, entries) in components {
                union_into(into, kind, entries);
            }
        }
        for tag in doc.get("tags").and_then(Value::as_array).into_iter().flatten() {
            if !tags.iter().any(|t| t.get("name") == tag.get("name")) {
                tags.push(tag.clone());
            }
        }
    }
    if !tags.is_empty() {
        merged["tags"] = Value::Array(tags);
    }
    if !missing.is_empty() {
        merged["x-missing-services"] = missing.iter().map(|s| Value::from(s.as_str())).collect();
    }
    merged
}

/// `into[key] = value`, or when both are objects, the keys of `value` that `into[key]` lacks.
fn union_into(into: &mut Map<String, Value>, key: &str, value: &Value) {
    match (into.get_mut(key), value) {
        (None, _) => {
            into.insert(key.to_owned(), value.clone());
        }
        (Some(Value::Object(existing)), Value::Object(more)) => {
            for (k, v) in more {
                existing.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (Some(_), _) => {}
    }
}

/// `GET /api/v1/openapi.json`.
pub(crate) async fn serve(State(docs): State<Arc<MergedDocs>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], docs.document().await).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_paths_components_and_tags() {
        let users = json!({
            "openapi": "3.1.0",
            "info": {"title": "users", "version": "0.1.0"},
            "paths": {"/api/v1/me": {"get": {"operationId": "me"}}, "/api/v1/events": {"get": {"operationId": "x"}}},
            "components": {
                "schemas": {"Problem": {"type": "object"}, "Me": {"type": "object"}},
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
            },
            "tags": [{"name": "account"}]
        });
        let events = json!({
            "openapi": "3.1.0",
            "info": {"title": "events", "version": "0.1.0"},
            "paths": {"/api/v1/events": {"post": {"operationId": "create"}, "get": {"operationId": "list"}}},
            "components": {"schemas": {"Problem": {"type": "string"}, "EventDocument": {}}, "responses": {"R": {}}},
            "tags": [{"name": "events"}, {"name": "account"}]
        });
        let doc = merge([users, events], &[Service::Payments]);
        assert_eq!(doc["info"]["title"], "Ticket Gateway API");
        assert_eq!(doc["paths"]["/api/v1/me"]["get"]["operationId"], "me");
        // Same path in two documents: operations combined, first one kept for the same method.
        assert_eq!(doc["paths"]["/api/v1/events"]["get"]["operationId"], "x");
        assert_eq!(doc["paths"]["/api/v1/events"]["post"]["operationId"], "create");
        assert_eq!(doc["components"]["schemas"]["Problem"]["type"], "object");
        assert!(doc["components"]["schemas"]["EventDocument"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["responses"]["R"].is_object());
        assert_eq!(doc["tags"], json!([{"name": "account"}, {"name": "events"}]));
        assert_eq!(doc["x-missing-services"], json!(["payments"]));
        assert!(merge([], &[]).get("x-missing-services").is_none());
    }
}
