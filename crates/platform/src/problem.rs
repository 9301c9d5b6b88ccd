//! RFC 9457 problem details. Every error the API returns is one of these, with a stable `code`.

use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub type ApiResult<T> = Result<T, ApiError>;

/// One invalid input field, named by its JSON path (e.g. `datetime.start`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Problem document (`application/problem+json`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// URI identifying the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Ours are static; a problem passed on from another service keeps that service's code.
    pub code: std::borrow::Cow<'static, str>,
    pub detail: Option<String>,
    pub errors: Vec<FieldError>,
    /// Seconds a client should wait (429/503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<std::borrow::Cow<'static, str>>, detail: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), detail: Some(detail.into()), errors: vec![], retry_after: None }
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    /// 422 with the offending fields listed.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed".into(),
            detail: Some(detail),
            errors,
            retry_after: None,
        }
    }
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError { field: field.into(), message: message.into() }])
    }
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }
    pub fn invalid_token(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    pub fn too_many_requests(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many attempts, try again later")
        }
    }
    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }
    /// Ask the client to retry after `seconds` (`Retry-After`).
    pub fn retry_in(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }
    /// A failure from below (a port, a store): the database error in its chain, if any, answered as
    /// [`From<sqlx::Error>`] answers it (503 with `Retry-After` when transient, 400 for bad text),
    /// else an internal error.
    pub fn from_anyhow(err: anyhow::Error) -> Self {
        if let Some(away) = err.chain().find_map(|c| c.downcast_ref::<ServiceUnavailable>()) {
            tracing::warn!(service = away.service, error = %crate::telemetry::Bounded(&away.detail), "service unavailable");
            return Self::unavailable(
                "service_unavailable",
                format!("the {} service is unavailable, retry shortly", away.service),
            )
            .retry_in(2);
        }
        match err.chain().find_map(|c| c.downcast_ref::<sqlx::Error>()).and_then(Self::from_database) {
            Some(answer) => answer,
            None => Self::internal(format!("{err:#}")),
        }
    }
    /// The answer to a database error that is not the server's fault: busy or away (503), bad text
    /// (400). `None` for the rest.
    fn from_database(err: &sqlx::Error) -> Option<Self> {
        Some(match err {
            sqlx::Error::PoolTimedOut => Self::unavailable("database_busy", "database busy, retry shortly").retry_in(2),
            // Down, restarting or refusing connections: nothing was changed, the client may retry.
            e if crate::db::is_transient(e) => {
                tracing::warn!(error = %crate::telemetry::Bounded(err), "database unavailable");
                Self::unavailable("database_unavailable", "the database is unavailable, retry shortly").retry_in(5)
            }
            // PostgreSQL refuses NUL in text (22021), e.g. from a path or query parameter: the input is bad.
            sqlx::Error::Database(e) if e.code().as_deref() == Some("22021") => {
                Self::bad_request("nul_character", "text may not contain the NUL character")
            }
            _ => return None,
        })
    }
    /// An unexpected failure. The cause is logged; the client sees only a generic message.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error")
    }

    pub fn to_problem(&self) -> Problem {
        Problem {
            kind: format!("https://ticketgateway.io/problems/{}", self.code.replace('_', "-")),
            title: self.status.canonical_reason().unwrap_or("Error").to_string(),
            status: self.status.as_u16(),
            code: self.code.to_string(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail.as_deref().unwrap_or(""))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// Another service (running in another process) did not answer, or answered that it cannot now: the
/// request may be retried. Answered as 503 `service_unavailable` with `Retry-After`.
#[derive(Debug, thiserror::Error)]
#[error("{service} service unavailable: {detail}")]
pub struct ServiceUnavailable {
    pub service: &'static str,
    pub detail: String,
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::from_database(&err).unwrap_or_else(|| Self::internal(err))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rej: JsonRejection) -> Self {
        let status = rej.status();
        let code = match rej {
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            JsonRejection::JsonDataError(_) => "invalid_body",
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            _ => "invalid_body",
        };
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::UNPROCESSABLE_ENTITY } else { status };
        Self::new(status, code, rej.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rej: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_path", rej.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rej: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", rej.body_text())
    }
}
