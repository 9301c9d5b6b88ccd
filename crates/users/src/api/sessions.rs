//! The account's sign-in sessions: list them, end one, end all.

use axum::{http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use tg_platform::{
    auth::Principal,
    http::{ApiPath, ApiQuery},
    problem::Problem,
    ApiResult,
};
use utoipa::{IntoParams, ToSchema};

use super::State;

/// A sign-in session: one sign-in and the refreshes that kept it going.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    /// The User-Agent that signed in.
    pub device: Option<String>,
    pub signed_in_at: String,
    /// The last refresh of its tokens (or the sign-in).
    pub last_used_at: String,
    /// Whether this is the session of the token asking.
    pub current: bool,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Sessions {
    /// Most recently used first (the newest 100).
    pub items: Vec<SessionView>,
}

/// The account's live sessions.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Sessions), (status = 401, body = Problem)))]
pub async fn list_sessions(svc: State, me: Principal) -> ApiResult<Json<Sessions>> {
    use tg_platform::clock::rfc3339;
    let sessions = svc.sessions(&me.user_id, me.session_id.as_deref()).await?;
    let items = sessions
        .into_iter()
        .map(|s| SessionView {
            id: s.row.family_id,
            device: s.row.device,
            signed_in_at: rfc3339(s.row.started_at),
            last_used_at: rfc3339(s.row.last_used_at),
            current: s.current,
        })
        .collect();
    Ok(Json(Sessions { items }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EndSessions {
    /// `true` ends every session but the asking one ("sign out everywhere else").
    #[serde(default)]
    pub keep_current: bool,
}

/// Sign out everywhere: every session's refresh token stops working at once; access tokens already
/// out expire within their lifetime (`ACCESS_TOKEN_TTL_SECS`, 15 minutes by default).
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "account", security(("bearer" = [])), params(EndSessions),
    responses((status = 204, description = "ended"), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn end_sessions(svc: State, me: Principal, ApiQuery(q): ApiQuery<EndSessions>) -> ApiResult<StatusCode> {
    let keep = if q.keep_current { me.session_id.as_deref() } else { None };
    svc.end_sessions(&me.user_id, keep).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out one session (its refresh token stops working at once).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "account", security(("bearer" = [])),
    params(("id" = String, Path, description = "a session id from the list")),
    responses((status = 204, description = "ended"), (status = 401, body = Problem),
              (status = 404, body = Problem, description = "no such live session of this account")))]
pub async fn end_session(svc: State, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    svc.end_session(&me.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
