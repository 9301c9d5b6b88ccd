//! HTTP API of the users service.

mod admin;
mod auth;
mod me;
mod organizers;

pub use auth::{ServiceTokenResponse, TokenResponse};

use std::sync::Arc;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::UsersService;

pub type State = axum::extract::State<Arc<UsersService>>;

/// Routes of the users service with their OpenAPI description.
pub fn router(svc: Arc<UsersService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::service_token))
        .routes(routes!(auth::discovery))
        .routes(routes!(auth::jwks))
        .routes(routes!(me::get_me, me::update_me))
        .routes(routes!(organizers::apply))
        .routes(routes!(organizers::my_application))
        .routes(routes!(organizers::my_profile, organizers::update_my_profile))
        .routes(routes!(organizers::public_profile))
        .with_state(svc)
}

/// The users service's admin routes (served by the `admin` target when services run apart).
pub fn admin_router(svc: Arc<UsersService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::get_user))
        .routes(routes!(admin::set_roles))
        .routes(routes!(admin::list_applications))
        .routes(routes!(admin::approve_application))
        .routes(routes!(admin::reject_application))
        .routes(routes!(admin::audit_log))
        .with_state(svc)
}

/// Cursor-paginated list.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Clamp a client's `limit` to 1..=100 (default 20).
pub(crate) fn page_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(20).clamp(1, 100)
}
