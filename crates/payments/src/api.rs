//! HTTP API of the payments service, and the sandbox's hosted pay page.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Form, Json, Router,
};
use serde::{Deserialize, Serialize};
use tg_platform::{
    auth::Principal,
    clock::now_ms,
    failpoint::crash_point,
    http::{idempotency_key, ApiJson, ApiPath, ApiQuery},
    problem::Problem,
    ApiError, ApiResult,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    providers::sandbox::{Sandbox, SIGNATURE_HEADER},
    store::PaymentRow,
    PaymentView, PaymentsService,
};

type Svc = State<Arc<PaymentsService>>;

pub fn router(svc: Arc<PaymentsService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_payment, list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(refund_payment))
        .routes(routes!(webhook))
        .with_state(svc)
}

/// The sandbox's pay page (HTML, outside the JSON API).
pub fn pages(svc: Arc<PaymentsService>) -> Router {
    Router::new().route("/pay/sandbox/{id}", get(sandbox_page).post(sandbox_decide)).with_state(svc)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub booking_id: String,
    /// `sandbox` (the default where it is offered), `khqr` or `stripe`, as configured.
    #[serde(default = "default_provider")]
    pub provider: String,
}

fn default_provider() -> String {
    "sandbox".into()
}

#[utoipa::path(post, path = "/api/v1/payments", tag = "payments", security(("bearer" = [])), request_body = PaymentRequest,
    params(("Idempotency-Key" = String, Header, description = "a retry with the same key returns the same payment")),
    responses((status = 201, body = PaymentView, description = "started; `next_action` says what the payer does"),
              (status = 409, body = Problem, description = "booking not payable or paid already"),
              (status = 422, body = Problem), (status = 503, body = Problem, description = "provider unreachable")))]
async fn create_payment(
    svc: Svc,
    me: Principal,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PaymentRequest>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let (payment, created) = svc.create(&me, &req.booking_id, &req.provider, key).await?;
    if created {
        Ok((StatusCode::CREATED, Json(payment)).into_response())
    } else {
        let mut res = (StatusCode::OK, Json(payment)).into_response();
        res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        Ok(res)
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PaymentQuery {
    booking_id: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PaymentList {
    pub items: Vec<PaymentView>,
}

#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", security(("bearer" = [])), params(PaymentQuery),
    responses((status = 200, body = PaymentList, description = "the caller's payments for the booking, newest first"),
              (status = 400, body = Problem)))]
async fn list_payments(svc: Svc, me: Principal, ApiQuery(q): ApiQuery<PaymentQuery>) -> ApiResult<Json<PaymentList>> {
    Ok(Json(PaymentList { items: svc.of_booking(&me, &q.booking_id).await? }))
}

#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = PaymentView), (status = 404, body = Problem)))]
async fn get_payment(svc: Svc, me: Principal, ApiPath(id): ApiPath<String>) -> ApiResult<Json<PaymentView>> {
    Ok(Json(svc.get(&me, &id).await?))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Ticket ids to refund; all valid tickets of the booking when absent.
    #[serde(default)]
    pub tickets: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct RefundAccepted {
    pub payment_id: String,
    /// What goes back, in the payment's currency; paid by the provider shortly (see the payment).
    pub refund_amount: f64,
}

#[utoipa::path(post, path = "/api/v1/payments/{id}/refund", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = RefundRequest,
    responses((status = 202, body = RefundAccepted, description = "tickets cancelled, seats released, money on its way"),
              (status = 404, body = Problem), (status = 409, body = Problem, description = "not refundable")))]
async fn refund_payment(
    svc: Svc,
    me: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RefundRequest>,
) -> ApiResult<(StatusCode, Json<RefundAccepted>)> {
    let refund_amount = svc.request_refund(&me, &id, req.tickets.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(RefundAccepted { payment_id: id, refund_amount })))
}

#[utoipa::path(post, path = "/api/v1/payments/webhooks/{provider}", tag = "payments", params(("provider" = String, Path)),
    request_body(content = String, description = "the provider's raw event, signed"),
    responses((status = 200, description = "received (also for replays)"), (status = 400, body = Problem, description = "bad signature")))]
async fn webhook(
    svc: Svc,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let result = svc.webhook(&provider, &headers, &body).await?;
    Ok(Json(serde_json::json!({"received": true, "result": result})))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#1a1a2e}}
.card{{border:1px solid #d0d0e0;border-radius:12px;padding:1.25rem}}button{{display:block;width:100%;margin:.5rem 0;padding:.8rem;font-size:1rem;border-radius:8px;border:0;cursor:pointer}}
.ok{{background:#1b7f3b;color:#fff}}.fail{{background:#b3261e;color:#fff}}.abandon{{background:#e8e8f0;color:#1a1a2e}}</style></head>
<body><main class="card"><h1>{title}</h1>{body}</main></body></html>"#
    );
    let mut res = Html(html).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
    );
    res
}

/// The sandbox and one of its payments; 404 when either is missing.
async fn sandbox_payment<'a>(svc: &'a PaymentsService, id: &str) -> ApiResult<(&'a Sandbox, PaymentRow)> {
    let sandbox = svc.sandbox().ok_or_else(|| ApiError::not_found("payment"))?;
    let payment = svc
        .store
        .payment(id)
        .await?
        .filter(|p| p.provider == "sandbox")
        .ok_or_else(|| ApiError::not_found("payment"))?;
    Ok((sandbox, payment))
}

async fn sandbox_page(svc: Svc, ApiPath(id): ApiPath<String>) -> ApiResult<Response> {
    let (sandbox, payment) = sandbox_payment(&svc, &id).await?;
    if payment.status != "pending" {
        return Ok(page(
            "Sandbox payment",
            &format!("<p>This payment is <strong>{}</strong>.</p>", escape(&payment.status)),
        ));
    }
    let amount = format!("{}.{:02} {}", payment.amount_cents / 100, payment.amount_cents % 100, payment.currency);
    let body = format!(
        r#"<p>Test payment of <strong>{amount}</strong> for booking <code>{booking}</code>. No money moves.</p>
<form method="post"><input type="hidden" name="csrf" value="{csrf}">
<button class="ok" name="action" value="succeed">Pay successfully</button>
<button class="fail" name="action" value="fail">Decline the payment</button>
<button class="abandon" name="action" value="abandon">Abandon</button></form>"#,
        amount = escape(&amount),
        booking = escape(&payment.booking_id),
        csrf = sandbox.csrf_token(&payment.id),
    );
    Ok(page("Sandbox payment", &body))
}

#[derive(Deserialize)]
struct Decision {
    action: String,
    csrf: String,
}

async fn sandbox_decide(svc: Svc, ApiPath(id): ApiPath<String>, Form(form): Form<Decision>) -> ApiResult<Response> {
    let (sandbox, payment) = sandbox_payment(&svc, &id).await?;
    if !sandbox.csrf_ok(&payment.id, &form.csrf) {
        return Err(ApiError::forbidden("the form's CSRF token is missing or wrong; reload the page"));
    }
    let outcome = match form.action.as_str() {
        "succeed" => "succeeded",
        "fail" => "failed",
        "abandon" => "abandoned",
        _ => return Err(ApiError::field("action", "succeed, fail or abandon")),
    };
    // The sandbox enters the choice in its own books first, as a provider takes the money before
    // it sends its webhook; the first choice stands.
    let outcome = sandbox.decide(&payment.id, outcome, payment.amount_cents, &payment.currency).await?;
    crash_point("payments.sandbox.decided");
    let kind = format!("payment.{outcome}");
    let (signature, body) =
        sandbox.webhook_for(&kind, &payment.id, payment.amount_cents, &payment.currency, now_ms() / 1000);
    let mut headers = HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&signature).map_err(ApiError::internal)?);
    svc.webhook("sandbox", &headers, &body).await?;
    let after = svc.store.payment(&id).await?.map(|p| p.status).unwrap_or_default();
    Ok(page(
        "Sandbox payment",
        &format!(
            r#"<p>Done: this payment is <strong>{}</strong>.</p><p><a href="/bookings/{}">Back to your booking</a></p>"#,
            escape(&after),
            escape(&payment.booking_id)
        ),
    ))
}
