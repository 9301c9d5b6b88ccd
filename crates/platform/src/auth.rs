//! Who is calling: bearer-token verification and the `Principal` extractor.
//!
//! A middleware verifies the `Authorization: Bearer` token once per request through the configured
//! [`TokenVerifier`] (built-in issuer, external OIDC provider, or both) and stores the outcome in the
//! request. Handlers ask for [`Principal`] (401 when absent or invalid) or `Option<Principal>`.

use std::{fmt, str::FromStr, sync::Arc};

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts, Request, State},
    http::{header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::problem::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Organizer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::User, Role::Organizer, Role::Admin];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Organizer => "organizer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "user" => Ok(Role::User),
            "organizer" => Ok(Role::Organizer),
            "admin" => Ok(Role::Admin),
            _ => Err(()),
        }
    }
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Local user id (external identities are mapped to a local id on first sight).
    pub user_id: String,
    pub email: Option<String>,
    /// Whether the owner of `email` proved it (a link we e-mailed, or the outside provider's
    /// `email_verified`). Rights granted by address follow only a verified one: [`Principal::verified_email`].
    pub email_verified: bool,
    /// The sign-in session (refresh-token chain) the token was issued for, when the issuer says.
    pub session_id: Option<String>,
    pub display_name: Option<String>,
    pub roles: Vec<Role>,
    /// Set when the caller is a service with its own token (client-credentials grant): its client id.
    pub service: Option<String>,
    /// The token the caller presented, for calls other services make on its behalf.
    pub token: Option<BearerToken>,
}

/// A bearer token as presented; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(pub Arc<str>);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(…)")
    }
}

impl BearerToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Principal {
    /// A user with these roles (no token: tests, the CLI, demo data).
    pub fn user(user_id: impl Into<String>, roles: Vec<Role>) -> Principal {
        Principal {
            user_id: user_id.into(),
            email: None,
            email_verified: false,
            session_id: None,
            display_name: None,
            roles,
            service: None,
            token: None,
        }
    }
    /// The caller's e-mail address if its owner proved it: what door-staff, invite and similar
    /// by-address rights are checked against.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }
    /// 403 unless the caller has `role` (admins pass every role check).
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.has_role(role) || self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("requires the {role} role")))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait TokenVerifier: Send + Sync {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError>;
}

/// Outcome of the bearer check, stored in request extensions by [`authenticate`].
#[derive(Clone)]
enum AuthOutcome {
    Anonymous,
    Authenticated(Principal),
    Rejected(String),
}

/// Middleware: verify the bearer token, if any.
pub async fn authenticate(State(verifier): State<Arc<dyn TokenVerifier>>, mut req: Request, next: Next) -> Response {
    let outcome = match bearer_token(req.headers()) {
        None => AuthOutcome::Anonymous,
        Some(Err(())) => AuthOutcome::Rejected("Authorization header is not a Bearer token".into()),
        Some(Ok(token)) => match verifier.verify(token).await {
            Ok(mut p) => {
                p.token = Some(BearerToken(Arc::from(token)));
                AuthOutcome::Authenticated(p)
            }
            Err(AuthError::Invalid(why)) => {
                tracing::debug!(%why, "bearer token rejected");
                AuthOutcome::Rejected("token is invalid or expired".into())
            }
            Err(AuthError::Unavailable(why)) => {
                return ApiError::unavailable("idp_unavailable", why).into_response();
            }
        },
    };
    req.extensions_mut().insert(outcome);
    next.run(req).await
}

fn bearer_token(headers: &axum::http::HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let value = value.to_str().map_err(|_| ());
    Some(value.and_then(|v| {
        let (scheme, token) = v.split_once(' ').ok_or(())?;
        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
            Ok(token.trim())
        } else {
            Err(())
        }
    }))
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.extensions.get::<AuthOutcome>() {
            Some(AuthOutcome::Authenticated(p)) if p.service.is_some() => Err(service_token_here()),
            Some(AuthOutcome::Authenticated(p)) => Ok(p.clone()),
            Some(AuthOutcome::Rejected(why)) => Err(ApiError::invalid_token(why.clone())),
            _ => Err(ApiError::unauthenticated("a bearer token is required")),
        }
    }
}

/// `Option<Principal>`: anonymous callers are `None`, but a bad token is still a 401.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, ApiError> {
        match parts.extensions.get::<AuthOutcome>() {
            Some(AuthOutcome::Authenticated(p)) if p.service.is_some() => Err(service_token_here()),
            Some(AuthOutcome::Authenticated(p)) => Ok(Some(p.clone())),
            Some(AuthOutcome::Rejected(why)) => Err(ApiError::invalid_token(why.clone())),
            _ => Ok(None),
        }
    }
}

/// A service token is nobody's account: it opens internal routes only.
fn service_token_here() -> ApiError {
    ApiError::forbidden("a service token opens the services' internal routes only")
}

/// The caller of an internal route: one of the platform's services, by its client id (401 without
/// a token, 403 with a user's).
#[derive(Clone, Debug)]
pub struct ServiceCaller(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ServiceCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.extensions.get::<AuthOutcome>() {
            Some(AuthOutcome::Authenticated(Principal { service: Some(id), .. })) => Ok(ServiceCaller(id.clone())),
            Some(AuthOutcome::Authenticated(_)) => {
                Err(ApiError::forbidden("only the platform's services may call this"))
            }
            Some(AuthOutcome::Rejected(why)) => Err(ApiError::invalid_token(why.clone())),
            _ => Err(ApiError::unauthenticated("a service token is required")),
        }
    }
}
