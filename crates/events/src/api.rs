//! HTTP API of the events service.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use tg_platform::{
    auth::Principal,
    http::{ApiJson, ApiPath, ApiQuery, ClientIp},
    problem::{FieldError, Problem},
    ApiError, ApiResult,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

use crate::{analytics::Channel, document::EventDocument, search, Action, EventsService};

type Svc = State<Arc<EventsService>>;

pub fn router(svc: Arc<EventsService>) -> OpenApiRouter {
    let max_banner = svc.config.max_banner_bytes;
    OpenApiRouter::new()
        .routes(routes!(create_event, list_events))
        .routes(routes!(get_event, replace_event))
        .routes(routes!(publish))
        .routes(routes!(unpublish))
        .routes(routes!(cancel))
        .routes(routes!(complete))
        .routes(routes!(my_events))
        .routes(routes!(categories))
        .routes(routes!(tags))
        .routes(routes!(rate))
        .routes(routes!(click))
        .routes(routes!(share))
        .routes(routes!(get_invites, set_invites))
        .routes(routes!(upload_banner).layer(DefaultBodyLimit::max(max_banner)))
        .routes(routes!(media))
        .with_state(svc)
}

/// The events service's admin routes (moderation; served by the `admin` target when services run apart).
pub fn admin_router(svc: Arc<EventsService>) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(moderation)).with_state(svc)
}

/// Parse an event document, naming the offending field on error.
fn parse_document(headers: &HeaderMap, body: &[u8]) -> ApiResult<EventDocument> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected application/json",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request("malformed_json", inner.to_string())
        } else {
            let message = inner.to_string();
            // serde reports a missing field at its parent's path; name the field itself.
            let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
            let field = match (path.as_str(), missing) {
                (".", Some(name)) => name.to_owned(),
                (".", None) => "body".to_owned(),
                (_, Some(name)) => format!("{path}.{name}"),
                (_, None) => path,
            };
            ApiError::validation(vec![FieldError { field, message }])
        }
    })
}

/// Language asked for: `?lang=`, else the first `Accept-Language` tag.
fn wanted_language(lang: Option<&str>, headers: &HeaderMap) -> Option<String> {
    lang.map(str::to_owned).or_else(|| {
        let al = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
        let first = al.split(',').next()?.split(';').next()?.trim();
        Some(first.split('-').next()?.to_lowercase())
    })
}

/// Apply a language and answer with `Content-Language`.
fn localized(mut doc: EventDocument, lang: Option<&str>) -> Response {
    let served = match lang {
        Some(l) if doc.localize(l) => l.to_owned(),
        _ => doc.language.clone(),
    };
    let mut res = Json(doc).into_response();
    if let Ok(v) = HeaderValue::from_str(&served) {
        res.headers_mut().insert(header::CONTENT_LANGUAGE, v);
    }
    res
}

#[utoipa::path(post, path = "/api/v1/events", tag = "events", security(("bearer" = [])), request_body = EventDocument,
    responses((status = 201, body = EventDocument), (status = 403, body = Problem), (status = 409, body = Problem, description = "slug or id taken"),
              (status = 422, body = Problem, description = "invalid fields, each named")))]
async fn create_event(
    svc: Svc,
    me: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<EventDocument>)> {
    let doc = parse_document(&headers, &body)?;
    Ok((StatusCode::CREATED, Json(svc.create(&me, doc).await?)))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventDocument>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(search::ListQuery),
    responses((status = 200, body = EventPage), (status = 422, body = Problem)))]
async fn list_events(
    svc: Svc,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<search::ListQuery>,
) -> ApiResult<Json<EventPage>> {
    let page = search::list(&svc.store, &q, tg_platform::clock::now_ms()).await?;
    let lang = wanted_language(q.lang.as_deref(), &headers);
    let mut items = svc.documents(&page.rows).await?;
    for d in &mut items {
        // The public listing never gives away an online event's link (see `hide_online_link`).
        d.venue.online_url = None;
        if let Some(l) = lang.as_deref() {
            d.localize(l);
        }
    }
    Ok(Json(EventPage { items, next_cursor: page.next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LangQuery {
    /// `en`, `km`, …; else `Accept-Language`.
    lang: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events", params(("id" = String, Path, description = "id or slug"), LangQuery),
    responses((status = 200, body = EventDocument), (status = 404, body = Problem)))]
async fn get_event(
    svc: Svc,
    me: Option<Principal>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<LangQuery>,
) -> ApiResult<Response> {
    let row = svc.store.by_key(&key).await?.ok_or_else(|| ApiError::not_found("event"))?;
    if !svc.can_see(me.as_ref(), &row).await? {
        return Err(ApiError::not_found("event"));
    }
    let managing = match &me {
        Some(p) => svc.can_manage(p, &row).await?,
        None => false,
    };
    if !managing {
        svc.counter.view(&row.id, &visitor(me.as_ref(), ip));
    }
    let mut doc = svc.document(&row).await?;
    svc.hide_online_link(me.as_ref(), &row, &mut doc).await?;
    Ok(localized(doc, wanted_language(q.lang.as_deref(), &headers).as_deref()))
}

#[utoipa::path(put, path = "/api/v1/events/{id}", tag = "events", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = EventDocument,
    responses((status = 200, body = EventDocument), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn replace_event(
    svc: Svc,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<EventDocument>> {
    let doc = parse_document(&headers, &body)?;
    Ok(Json(svc.replace(&me, &id, doc).await?))
}

macro_rules! lifecycle {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "events", security(("bearer" = [])), params(("id" = String, Path)),
            responses((status = 200, body = EventDocument), (status = 403, body = Problem), (status = 404, body = Problem),
                      (status = 409, body = Problem, description = "not allowed from the current status")))]
        async fn $name(svc: Svc, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Json<EventDocument>> {
            Ok(Json(svc.act(&me, &id, $action).await?))
        }
    };
}

lifecycle!(publish, "/api/v1/events/{id}/publish", Action::Publish, "Draft → published (emits `event.published`).");
lifecycle!(unpublish, "/api/v1/events/{id}/unpublish", Action::Unpublish, "Published → draft.");
lifecycle!(
    cancel,
    "/api/v1/events/{id}/cancel",
    Action::Cancel,
    "Draft or published → cancelled (emits `event.cancelled`)."
);
lifecycle!(complete, "/api/v1/events/{id}/complete", Action::Complete, "Published → completed.");

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MineQuery {
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/me/events", tag = "events", security(("bearer" = [])), params(MineQuery),
    responses((status = 200, body = EventPage), (status = 403, body = Problem)))]
async fn my_events(svc: Svc, me: Principal, ApiQuery(q): ApiQuery<MineQuery>) -> ApiResult<Json<EventPage>> {
    let org = svc.organizers.organizer_of_user(&me.user_id).await.map_err(ApiError::from_anyhow)?;
    let Some(org) = org else { return Err(ApiError::forbidden("you have no organizer profile")) };
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 100"));
    }
    let mut rows = svc.store.by_organizer(&org.id, q.cursor.as_deref(), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| r.id.clone()) } else { None };
    Ok(Json(EventPage { items: svc.documents(&rows).await?, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/admin/events", tag = "admin", security(("bearer" = [])), params(search::ModerationQuery),
    responses((status = 200, body = EventPage, description = "every event, most recently changed first"),
              (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn moderation(
    svc: Svc,
    me: Principal,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<search::ModerationQuery>,
) -> ApiResult<Json<EventPage>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only admins moderate events"));
    }
    let page = search::moderation(&svc.store, &q).await?;
    let mut items = svc.documents(&page.rows).await?;
    if let Some(l) = wanted_language(q.lang.as_deref(), &headers).as_deref() {
        for d in &mut items {
            d.localize(l);
        }
    }
    Ok(Json(EventPage { items, next_cursor: page.next_cursor }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CategoryCount {
    pub id: String,
    pub name: String,
    /// Upcoming published public events.
    pub events: i64,
}

#[utoipa::path(get, path = "/api/v1/categories", tag = "events", responses((status = 200, body = Vec<CategoryCount>)))]
async fn categories(svc: Svc) -> ApiResult<Json<Vec<CategoryCount>>> {
    let rows = svc.store.categories(tg_platform::clock::now_ms()).await?;
    Ok(Json(rows.into_iter().map(|(id, name, events)| CategoryCount { id, name, events }).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct TagCount {
    pub tag: String,
    pub events: i64,
}

#[utoipa::path(get, path = "/api/v1/tags", tag = "events", responses((status = 200, body = Vec<TagCount>)))]
async fn tags(svc: Svc) -> ApiResult<Json<Vec<TagCount>>> {
    let rows = svc.store.tags(tg_platform::clock::now_ms()).await?;
    Ok(Json(rows.into_iter().map(|(tag, events)| TagCount { tag, events }).collect()))
}

/// The event if the caller may see it (404 otherwise).
async fn visible(svc: &EventsService, me: Option<&Principal>, key: &str) -> ApiResult<crate::store::EventRow> {
    let row = svc.store.by_key(key).await?.ok_or_else(|| ApiError::not_found("event"))?;
    if svc.can_see(me, &row).await? {
        Ok(row)
    } else {
        Err(ApiError::not_found("event"))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingRequest {
    /// 1 to 5.
    pub stars: i64,
}

#[utoipa::path(put, path = "/api/v1/events/{id}/rating", tag = "events", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = RatingRequest,
    responses((status = 200, body = EventDocument), (status = 403, body = Problem, description = "no ticket for this event"),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn rate(
    svc: Svc,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RatingRequest>,
) -> ApiResult<Json<EventDocument>> {
    if !(1..=5).contains(&req.stars) {
        return Err(ApiError::field("stars", "must be 1 to 5"));
    }
    let row = visible(&svc, Some(&me), &id).await?;
    if row.status == "draft" {
        return Err(ApiError::conflict("not_published", "drafts cannot be rated"));
    }
    // Only attendees rate, once bookings exist; until then rating is open to signed-in users.
    if svc.bookings.attended(&row.id, &me.user_id).await.map_err(ApiError::from_anyhow)? == Some(false) {
        return Err(ApiError::forbidden("only attendees with a ticket can rate this event"));
    }
    svc.store.rate(&row.id, &me.user_id, req.stars).await?;
    let row = svc.store.by_key(&row.id).await?.ok_or_else(|| ApiError::not_found("event"))?;
    let mut doc = svc.document(&row).await?;
    svc.hide_online_link(Some(&me), &row, &mut doc).await?;
    Ok(Json(doc))
}

#[utoipa::path(post, path = "/api/v1/events/{id}/clicks", tag = "events", params(("id" = String, Path)),
    responses((status = 202, description = "counted"), (status = 404, body = Problem)))]
async fn click(svc: Svc, me: Option<Principal>, ip: ClientIp, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    let row = visible(&svc, me.as_ref(), &id).await?;
    svc.counter.click(&row.id, &visitor(me.as_ref(), ip));
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// `facebook`, `telegram` or `twitter`.
    pub channel: String,
}

#[utoipa::path(post, path = "/api/v1/events/{id}/shares", tag = "events", params(("id" = String, Path)), request_body = ShareRequest,
    responses((status = 202, description = "counted"), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn share(
    svc: Svc,
    me: Option<Principal>,
    ip: ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ShareRequest>,
) -> ApiResult<StatusCode> {
    let channel: Channel =
        req.channel.parse().map_err(|_| ApiError::field("channel", "must be facebook, telegram or twitter"))?;
    let row = visible(&svc, me.as_ref(), &id).await?;
    svc.counter.share(&row.id, channel, &visitor(me.as_ref(), ip));
    Ok(StatusCode::ACCEPTED)
}

/// Who counts as one visitor for views, clicks and shares: the user, else the client address.
fn visitor(me: Option<&Principal>, ClientIp(ip): ClientIp) -> String {
    match me {
        Some(p) => format!("user:{}", p.user_id),
        None => format!("ip:{ip}"),
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invites {
    /// E-mail addresses allowed to see a private event.
    pub emails: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/events/{id}/invites", tag = "events", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Invites), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_invites(svc: Svc, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Json<Invites>> {
    let row = svc.managed_row(&me, &id).await?;
    Ok(Json(Invites { emails: svc.store.invites(&row.id).await? }))
}

#[utoipa::path(put, path = "/api/v1/events/{id}/invites", tag = "events", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = Invites,
    responses((status = 200, body = Invites), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_invites(
    svc: Svc,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Invites>,
) -> ApiResult<Json<Invites>> {
    let row = svc.managed_row(&me, &id).await?;
    if req.emails.len() > 10_000 {
        return Err(ApiError::field("emails", "at most 10000 addresses"));
    }
    let mut emails = Vec::with_capacity(req.emails.len());
    let mut errors = Vec::new();
    for (i, e) in req.emails.iter().enumerate() {
        match tg_platform::validate::email(e) {
            Ok(e) => emails.push(e),
            Err(message) => errors.push(FieldError { field: format!("emails[{i}]"), message }),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    emails.sort();
    emails.dedup();
    svc.store.set_invites(&row.id, &emails).await?;
    Ok(Json(Invites { emails }))
}

/// Image types accepted as banners, recognised by their first bytes (the declared type must agree).
fn image_kind(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("image/jpeg", "jpg"))
    } else if bytes.len() > 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(("image/webp", "webp"))
    } else {
        None
    }
}

#[utoipa::path(put, path = "/api/v1/events/{id}/banner", tag = "events", security(("bearer" = [])), params(("id" = String, Path)),
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 200, body = EventDocument), (status = 413, description = "too large"), (status = 415, body = Problem)))]
async fn upload_banner(
    svc: Svc,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<EventDocument>> {
    let row = svc.managed_row(&me, &id).await?;
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some((mime, ext)) = image_kind(&body) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image",
            "banner must be a PNG, JPEG or WebP image",
        ));
    };
    if declared != mime {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image",
            format!("content is {mime} but was declared {declared:?}"),
        ));
    }
    let dir = svc.config.uploads_dir.join("events").join(&row.id);
    let file = format!("{}.{ext}", uuid::Uuid::new_v4());
    tokio::fs::create_dir_all(&dir).await.map_err(ApiError::internal)?;
    tokio::fs::write(dir.join(&file), &body).await.map_err(ApiError::internal)?;
    let mut doc: EventDocument = serde_json::from_str(&row.document).map_err(ApiError::internal)?;
    doc.media.banner = Some(format!("{}/media/events/{}/{file}", svc.config.public_url.trim_end_matches('/'), row.id));
    Ok(Json(svc.replace(&me, &row.id, doc).await?))
}

#[utoipa::path(get, path = "/media/events/{id}/{file}", tag = "events", params(("id" = String, Path), ("file" = String, Path)),
    responses((status = 200, description = "the image"), (status = 404, body = Problem)))]
async fn media(svc: Svc, ApiPath((id, file)): ApiPath<(String, String)>) -> ApiResult<Response> {
    // Names are ours (uuid.ext); anything else, e.g. `..`, is not a file we serve.
    let safe = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !s.contains("..")
    };
    let mime = match file.rsplit_once('.').map(|(_, e)| e) {
        Some("png") => "image/png",
        Some("jpg") => "image/jpeg",
        Some("webp") => "image/webp",
        _ => return Err(ApiError::not_found("file")),
    };
    if !safe(&id) || !safe(&file) {
        return Err(ApiError::not_found("file"));
    }
    let path = svc.config.uploads_dir.join("events").join(&id).join(&file);
    let bytes = tokio::fs::read(path).await.map_err(|_| ApiError::not_found("file"))?;
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}
