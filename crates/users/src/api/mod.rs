//! HTTP API of the users service.

mod admin;
mod auth;
mod email;
mod me;
mod organizers;
mod password;
mod sessions;

pub use auth::{Accepted, ServiceTokenResponse, TokenResponse};
pub use sessions::{SessionView, Sessions};

use std::sync::Arc;

use tg_platform::ApiError;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{account::AccountError, UsersService};

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
        .routes(routes!(email::verify_email))
        .routes(routes!(password::forgot_password))
        .routes(routes!(password::reset_password))
        .routes(routes!(me::get_me, me::update_me, me::delete_me))
        .routes(routes!(email::change_email))
        .routes(routes!(email::resend_verification))
        .routes(routes!(password::change_password))
        .routes(routes!(sessions::list_sessions, sessions::end_sessions))
        .routes(routes!(sessions::end_session))
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

/// A client's `limit`: 1 to 100 (default 20), as the documents say; anything else is refused.
pub(crate) fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit.unwrap_or(20) {
        n @ 1..=100 => Ok(n),
        _ => Err(ApiError::field("limit", "must be between 1 and 100")),
    }
}

/// The values an organizer application's `status` filter takes (the schema's enum; parsed as text).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum ApplicationStatus {
    Pending,
    Approved,
    Rejected,
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        use axum::http::StatusCode;
        match e {
            AccountError::Field(field, message) => ApiError::field(field, message),
            AccountError::InvalidLink => ApiError::bad_request("invalid_link", e.to_string()),
            AccountError::WrongPassword => ApiError::new(StatusCode::FORBIDDEN, "wrong_password", e.to_string()),
            AccountError::ExternalIdentity => ApiError::new(StatusCode::FORBIDDEN, "external_identity", e.to_string()),
            AccountError::EmailTaken => ApiError::conflict("email_taken", e.to_string()),
            AccountError::Organizer => ApiError::conflict("organizer_account", e.to_string()),
            AccountError::NoAccount => ApiError::not_found("account"),
            AccountError::NoSession => ApiError::not_found("session"),
            AccountError::Store(e) => e.into(),
            AccountError::Other(e) => ApiError::from_anyhow(e),
        }
    }
}
