//! HTTP API of the notifications service: the user's mailbox and channels, the admin delivery log.

use std::sync::Arc;

use axum::{extract::State, Json};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use serde::{Deserialize, Serialize};
use tg_platform::{
    auth::Principal,
    http::{ApiJson, ApiQuery},
    problem::Problem,
    ApiError, ApiResult,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    store::{ChannelSettings, CodeCheck, Delivery, MailboxEntry},
    NotificationsService,
};

type Svc = State<Arc<NotificationsService>>;

pub fn router(svc: Arc<NotificationsService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(my_messages))
        .routes(routes!(get_channels, set_channels))
        .routes(routes!(confirm_channel))
        .with_state(svc)
}

/// The delivery log for admins (served by the `admin` target when services run apart).
pub fn admin_router(svc: Arc<NotificationsService>) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(delivery_log)).with_state(svc)
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Mailbox {
    pub items: Vec<MailboxEntry>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MailboxQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// The cursor: the last notice's sort key and id, as the events listing writes its cursors.
#[derive(Serialize, Deserialize)]
struct Cursor {
    k: Vec<i64>,
    id: String,
}

fn encode_cursor(last: &MailboxEntry) -> String {
    B64.encode(serde_json::to_vec(&Cursor { k: vec![last.created_at], id: last.id.clone() }).unwrap_or_default())
}

fn decode_cursor(c: &str) -> Result<(i64, String), ApiError> {
    B64.decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok())
        .and_then(|c| match c.k[..] {
            [at] => Some((at, c.id)),
            _ => None,
        })
        .ok_or_else(|| ApiError::field("cursor", "is not a cursor from this listing"))
}

#[utoipa::path(get, path = "/api/v1/me/messages", tag = "notifications", security(("bearer" = [])), params(MailboxQuery),
    responses((status = 200, body = Mailbox, description = "the user's notices, newest first"),
              (status = 422, body = Problem, description = "malformed cursor or limit out of range")))]
async fn my_messages(svc: Svc, me: Principal, ApiQuery(q): ApiQuery<MailboxQuery>) -> ApiResult<Json<Mailbox>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 100"));
    }
    let before = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let before = before.as_ref().map(|(at, id)| (*at, id.as_str()));
    let mut items = svc.store.mailbox(&me.user_id, before, limit + 1).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = items.last().filter(|_| more).map(encode_cursor);
    Ok(Json(Mailbox { items, next_cursor }))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    /// Telegram chat id that receives notices (after the user wrote to the bot).
    pub telegram_chat_id: Option<String>,
    /// Mobile number in E.164 (`+855…`) for SMS notices.
    pub phone: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/me/notification-channels", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = ChannelSettings), (status = 401, body = Problem)))]
async fn get_channels(svc: Svc, me: Principal) -> ApiResult<Json<ChannelSettings>> {
    Ok(Json(svc.store.channel_settings(&me.user_id).await?))
}

/// Set the Telegram chat and phone for notices. A new or changed one gets a six-digit code (valid 15
/// minutes) and receives notices only once the code is typed back (`…/confirm`).
#[utoipa::path(put, path = "/api/v1/me/notification-channels", tag = "notifications", security(("bearer" = [])),
    request_body = Channels,
    responses((status = 200, body = ChannelSettings), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn set_channels(svc: Svc, me: Principal, ApiJson(req): ApiJson<Channels>) -> ApiResult<Json<ChannelSettings>> {
    let mut errors = Vec::new();
    // A channel no provider serves here would wait for a code that never comes.
    let not_offered = |field: &str, what: &str| tg_platform::problem::FieldError {
        field: field.into(),
        message: format!("{what} notices are not offered on this platform"),
    };
    if req.telegram_chat_id.is_some() && !svc.offers("telegram") {
        errors.push(not_offered("telegram_chat_id", "Telegram"));
    } else if let Some(chat) = &req.telegram_chat_id {
        let digits = chat.strip_prefix('-').unwrap_or(chat);
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(tg_platform::problem::FieldError {
                field: "telegram_chat_id".into(),
                message: "a numeric chat id".into(),
            });
        }
    }
    if req.phone.is_some() && !svc.offers("sms") {
        errors.push(not_offered("phone", "SMS"));
    } else if let Some(phone) = &req.phone {
        let digits = phone.strip_prefix('+').unwrap_or("");
        if digits.len() < 8 || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(tg_platform::problem::FieldError {
                field: "phone".into(),
                message: "E.164, e.g. +85512345678".into(),
            });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let saved = svc.set_channels(&me.user_id, req.telegram_chat_id, req.phone).await.map_err(ApiError::from_anyhow)?;
    Ok(Json(saved))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmChannel {
    pub channel: ChannelKind,
    /// The six digits sent there.
    pub code: String,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Telegram,
    Sms,
}

/// Confirm a channel with the code sent there; five wrong codes and it must be sent again.
#[utoipa::path(post, path = "/api/v1/me/notification-channels/confirm", tag = "notifications", security(("bearer" = [])),
    request_body = ConfirmChannel,
    responses((status = 200, body = ChannelSettings, description = "confirmed: notices go there"),
              (status = 400, body = Problem, description = "`no_code`: none pending (expired, used up, or never sent)"),
              (status = 401, body = Problem),
              (status = 422, body = Problem, description = "wrong code")))]
async fn confirm_channel(
    svc: Svc,
    me: Principal,
    ApiJson(req): ApiJson<ConfirmChannel>,
) -> ApiResult<Json<ChannelSettings>> {
    let channel = match req.channel {
        ChannelKind::Telegram => "telegram",
        ChannelKind::Sms => "sms",
    };
    match svc.confirm_channel(&me.user_id, channel, &req.code).await.map_err(ApiError::from_anyhow)? {
        CodeCheck::Confirmed => Ok(Json(svc.store.channel_settings(&me.user_id).await?)),
        CodeCheck::Wrong => Err(ApiError::field("code", "is not the code we sent")),
        CodeCheck::NoCode => {
            Err(ApiError::bad_request("no_code", "no code is pending for this channel; save it again to get one"))
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryLog {
    pub items: Vec<Delivery>,
}

#[utoipa::path(get, path = "/api/v1/admin/notifications/deliveries", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = DeliveryLog, description = "the newest 200 deliveries"), (status = 403, body = Problem)))]
async fn delivery_log(svc: Svc, me: Principal) -> ApiResult<Json<DeliveryLog>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("admins only"));
    }
    Ok(Json(DeliveryLog { items: svc.store.deliveries(200).await? }))
}
