//! Admin API of the messaging part: dead letters, and replaying them once the cause is fixed.

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use tg_platform::{
    auth::Principal,
    db::Db,
    http::{ApiJson, ApiPath, ApiQuery},
    problem::Problem,
    ApiError, ApiResult,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::dead_letters::{self, DeadLetter};

pub fn router(db: Db) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(replay_one)).routes(routes!(replay_all)).with_state(db)
}

fn admin(me: &Principal) -> ApiResult<()> {
    if me.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("admins only"))
    }
}

#[derive(Deserialize, IntoParams)]
pub struct DeadLetterQuery {
    /// Only this consumer's (`payments`, `notifications`, …).
    pub consumer: Option<String>,
    /// At most this many, newest first (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeadLetters {
    pub items: Vec<DeadLetter>,
    /// Dead letters in all (of every consumer).
    pub total: i64,
}

#[utoipa::path(get, path = "/api/v1/admin/dead-letters", tag = "admin", security(("bearer" = [])), params(DeadLetterQuery),
    responses((status = 200, body = DeadLetters), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list(
    State(db): State<Db>,
    me: Principal,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> ApiResult<Json<DeadLetters>> {
    admin(&me)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "between 1 and 500"));
    }
    let items = dead_letters::list(&db, q.consumer.as_deref(), limit).await?;
    Ok(Json(DeadLetters { items, total: dead_letters::count(&db).await? }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Replayed {
    /// Dead letters given back to their consumer (delivered within seconds).
    pub replayed: u64,
}

#[utoipa::path(post, path = "/api/v1/admin/dead-letters/{consumer}/{id}/replay", tag = "admin", security(("bearer" = [])),
    params(("consumer" = String, Path), ("id" = String, Path, description = "the message id")),
    responses((status = 202, body = Replayed), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn replay_one(
    State(db): State<Db>,
    me: Principal,
    ApiPath((consumer, id)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    admin(&me)?;
    if !dead_letters::replay(&db, &me.user_id, &consumer, &id).await? {
        return Err(ApiError::not_found("dead letter"));
    }
    tracing::info!(admin = %me.user_id, consumer, message_id = id, "dead letter replayed");
    Ok((StatusCode::ACCEPTED, Json(Replayed { replayed: 1 })))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReplayAll {
    /// Only this consumer's dead letters; all when absent.
    #[serde(default)]
    pub consumer: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/admin/dead-letters/replay", tag = "admin", security(("bearer" = [])),
    request_body = ReplayAll,
    responses((status = 202, body = Replayed), (status = 403, body = Problem)))]
async fn replay_all(
    State(db): State<Db>,
    me: Principal,
    ApiJson(req): ApiJson<ReplayAll>,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    admin(&me)?;
    let replayed = dead_letters::replay_all(&db, &me.user_id, req.consumer.as_deref()).await?;
    tracing::info!(admin = %me.user_id, replayed, "dead letters replayed");
    Ok((StatusCode::ACCEPTED, Json(Replayed { replayed })))
}
