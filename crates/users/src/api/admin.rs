//! Admin-only: users and roles, organizer applications, the users audit log.

use axum::{body::Bytes, Json};
use serde::Deserialize;
use tg_platform::{
    auth::{Principal, Role},
    http::{ApiJson, ApiPath, ApiQuery},
    problem::Problem,
    ApiError, ApiResult,
};
use utoipa::{IntoParams, ToSchema};

use super::{page_limit, Page, State};
use crate::model::{AuditEntry, OrganizerApplication, UserView};

fn require_admin(p: &Principal) -> ApiResult<()> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("requires the admin role"))
    }
}

#[derive(Deserialize, IntoParams)]
pub struct UserQuery {
    /// Substring of email or display name.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, body = Page<UserView>), (status = 403, body = Problem)))]
pub async fn list_users(
    svc: State,
    me: Principal,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<Page<UserView>>> {
    require_admin(&me)?;
    let limit = page_limit(q.limit)?;
    let query = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let rows = svc.store.list_accounts(query, q.cursor.as_deref(), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows.into_iter().take(limit as usize) {
        items.push(svc.view(row).await?);
    }
    let next_cursor = if more { items.last().map(|u| u.id.clone()) } else { None };
    Ok(Json(Page { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_user(svc: State, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Json<UserView>> {
    require_admin(&me)?;
    svc.user(&id).await?.map(Json).ok_or_else(|| ApiError::not_found("user"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    /// The complete set of roles; `user` is always kept.
    pub roles: Vec<String>,
}

#[utoipa::path(put, path = "/api/v1/admin/users/{id}/roles", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = RolesRequest,
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn set_roles(
    svc: State,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> ApiResult<Json<UserView>> {
    require_admin(&me)?;
    let mut roles = Vec::new();
    for name in &req.roles {
        let role: Role = name
            .parse()
            .map_err(|_| ApiError::field("roles", format!("unknown role {name:?}; use user, organizer or admin")))?;
        roles.push(role);
    }
    if id == me.user_id && !roles.contains(&Role::Admin) {
        return Err(ApiError::conflict("cannot_demote_self", "an admin cannot remove their own admin role"));
    }
    if svc.store.account_by_id(&id).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    svc.store.set_roles(&id, &roles, &me.user_id).await?;
    svc.user(&id).await?.map(Json).ok_or_else(|| ApiError::not_found("user"))
}

#[derive(Deserialize, IntoParams)]
pub struct ApplicationQuery {
    /// `pending`, `approved` or `rejected`.
    #[param(inline, value_type = Option<super::ApplicationStatus>)]
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/admin/organizer-applications", tag = "admin", security(("bearer" = [])), params(ApplicationQuery),
    responses((status = 200, body = Page<OrganizerApplication>), (status = 403, body = Problem)))]
pub async fn list_applications(
    svc: State,
    me: Principal,
    ApiQuery(q): ApiQuery<ApplicationQuery>,
) -> ApiResult<Json<Page<OrganizerApplication>>> {
    require_admin(&me)?;
    if let Some(s) = q.status.as_deref() {
        if !matches!(s, "pending" | "approved" | "rejected") {
            return Err(ApiError::field("status", "must be pending, approved or rejected"));
        }
    }
    let limit = page_limit(q.limit)?;
    let mut items = svc.store.list_applications(q.status.as_deref(), q.cursor.as_deref(), limit + 1).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more { items.last().map(|a| a.id.clone()) } else { None };
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub note: Option<String>,
}

/// The body is optional: empty means no note.
fn decision_note(body: &[u8]) -> ApiResult<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<DecisionRequest>(body)
        .map(|d| d.note)
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))
}

async fn decide(
    svc: State,
    me: Principal,
    id: String,
    approve: bool,
    note: Option<String>,
) -> ApiResult<Json<OrganizerApplication>> {
    require_admin(&me)?;
    let note =
        note.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(|n| n.chars().take(2000).collect::<String>());
    if svc.store.application(&id).await?.is_none() {
        return Err(ApiError::not_found("application"));
    }
    if !svc.store.decide_application(&id, approve, &me.user_id, note.as_deref(), None).await? {
        return Err(ApiError::conflict("already_decided", "the application was already decided"));
    }
    svc.store.application(&id).await?.map(Json).ok_or_else(|| ApiError::not_found("application"))
}

#[utoipa::path(post, path = "/api/v1/admin/organizer-applications/{id}/approve", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body(content = DecisionRequest, content_type = "application/json"),
    responses((status = 200, body = OrganizerApplication), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn approve_application(
    svc: State,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<OrganizerApplication>> {
    decide(svc, me, id, true, decision_note(&body)?).await
}

#[utoipa::path(post, path = "/api/v1/admin/organizer-applications/{id}/reject", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body(content = DecisionRequest, content_type = "application/json"),
    responses((status = 200, body = OrganizerApplication), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn reject_application(
    svc: State,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<OrganizerApplication>> {
    decide(svc, me, id, false, decision_note(&body)?).await
}

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Entries older than this id (from `next_cursor`).
    pub cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/admin/audit-log", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = Problem)))]
pub async fn audit_log(
    svc: State,
    me: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    require_admin(&me)?;
    let limit = page_limit(q.limit)?;
    let mut items = svc.store.audit_log(q.cursor.as_deref(), limit + 1).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more { items.last().map(|a| a.id.clone()) } else { None };
    Ok(Json(Page { items, next_cursor }))
}
