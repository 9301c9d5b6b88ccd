//! HTTP implementations of the services' ports, used when the owning service runs in another
//! process (`wiring.rs` has the in-process ones). Each call has a timeout; idempotent ones are
//! retried within a budget; a service that does not answer is a [`ServiceUnavailable`] (503 to the
//! caller), never a hang. Calls made for a user carry the user's token; the rest carry this
//! process's service token.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};
use tracing::Instrument;

use reqwest::{Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};
use tg_bookings::{
    internal::{Attendance, RefundRequest, Refunded, SoldTotalsRequest, TicketQr, CANNOT_CONFIRM},
    model::BookingView,
};
use tg_events::{
    document::{EventDocument, Organizer},
    internal::Manages,
    ports::TypeCounts,
};
use tg_platform::{
    auth::Principal,
    problem::{Problem, ServiceUnavailable},
    ApiError, ApiResult,
};
use tg_users::model::UserView;
use tokio::sync::Mutex;

use crate::wiring::booking_info;

/// Per-attempt timeout of a call to another service.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Idempotent calls are retried (after 100 ms, 400 ms, 1.6 s, …) while the next attempt would
/// start within this budget, so a call gives up after about this plus one attempt's timeout.
const RETRY_BUDGET: Duration = Duration::from_secs(8);

/// This process's service token: minted directly when the users service runs here, else from its
/// client-credentials grant, renewed a minute before it expires.
pub struct ServiceTokens {
    client_id: String,
    source: TokenSource,
    current: Mutex<Option<(String, Instant)>>,
}

enum TokenSource {
    Local(Arc<tg_users::UsersService>),
    Grant { http: reqwest::Client, token_url: String, client_secret: String },
}

impl ServiceTokens {
    pub fn local(users: Arc<tg_users::UsersService>, client_id: String) -> Arc<ServiceTokens> {
        Arc::new(ServiceTokens { client_id, source: TokenSource::Local(users), current: Mutex::default() })
    }

    pub fn grant(users_url: &str, client_id: String, client_secret: String) -> Arc<ServiceTokens> {
        let token_url = format!("{}/api/v1/auth/token", users_url.trim_end_matches('/'));
        let source = TokenSource::Grant { http: client(), token_url, client_secret };
        Arc::new(ServiceTokens { client_id, source, current: Mutex::default() })
    }

    pub async fn token(&self) -> anyhow::Result<String> {
        let mut current = self.current.lock().await;
        if let Some((token, _)) = current.as_ref().filter(|(_, until)| Instant::now() < *until) {
            return Ok(token.clone());
        }
        let (token, lifetime) = match &self.source {
            TokenSource::Local(users) => {
                (users.mint_service_token(&self.client_id).await?, tg_users::issuer::SERVICE_TOKEN_TTL.as_secs())
            }
            TokenSource::Grant { http, token_url, client_secret } => {
                let unavailable = |detail: String| ServiceUnavailable { service: "users", detail };
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", client_secret.as_str()),
                ];
                let res = http.post(token_url).form(&form).send().await.map_err(|e| unavailable(e.to_string()))?;
                if res.status().is_server_error() {
                    return Err(unavailable(format!("token endpoint answered {}", res.status())).into());
                }
                // A refused client is a configuration error, not an outage: say so plainly.
                anyhow::ensure!(
                    res.status().is_success(),
                    "the users service refused service client {:?} ({}): check SERVICE_CLIENT_SECRET and SERVICE_CLIENTS",
                    self.client_id,
                    res.status()
                );
                let body: tg_users::api::ServiceTokenResponse =
                    res.json().await.map_err(|e| unavailable(e.to_string()))?;
                (body.access_token, body.expires_in)
            }
        };
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60).max(10));
        *current = Some((token.clone(), until));
        Ok(token)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls((*tg_platform::tls::client_config()).clone())
        .timeout(CALL_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .expect("TLS backend initialises")
}

/// Who a call is made for.
enum Caller<'a> {
    /// Background work of this process: its service token.
    Service,
    /// A user's request: their own token.
    User(&'a Principal),
}

/// A failed call: the service could not be reached or failed (retryable), or it answered with a
/// problem (passed on as it is).
enum CallError {
    Unavailable(anyhow::Error),
    Problem(ApiError),
}

impl From<CallError> for anyhow::Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Unavailable(e) => e,
            CallError::Problem(p) => anyhow::anyhow!("{p}"),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Unavailable(e) => ApiError::from_anyhow(e),
            CallError::Problem(p) => p,
        }
    }
}

/// A client of one service's routes.
#[derive(Clone)]
pub struct ServiceClient {
    service: &'static str,
    base: String,
    http: reqwest::Client,
    tokens: Arc<ServiceTokens>,
}

impl ServiceClient {
    pub fn new(service: &'static str, base: &str, tokens: Arc<ServiceTokens>) -> ServiceClient {
        ServiceClient { service, base: base.trim_end_matches('/').to_owned(), http: client(), tokens }
    }

    fn unavailable(&self, detail: impl ToString) -> CallError {
        CallError::Unavailable(ServiceUnavailable { service: self.service, detail: detail.to_string() }.into())
    }

    /// One call; `Ok(None)` on 404. `idempotent` calls are retried on transport errors and 5xx.
    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        caller: Caller<'_>,
        idempotent: bool,
    ) -> Result<Option<T>, CallError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.attempt(method.clone(), path, body, &caller).await {
                Err(CallError::Unavailable(e)) if idempotent && started.elapsed() + delay < RETRY_BUDGET => {
                    tracing::debug!(service = self.service, path, error = %e, "retrying a call to another service");
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
                outcome => return outcome,
            }
        }
    }

    async fn attempt<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        caller: &Caller<'_>,
    ) -> Result<Option<T>, CallError> {
        let token = match caller {
            Caller::Service => self.tokens.token().await.map_err(CallError::Unavailable)?,
            Caller::User(p) => match &p.token {
                Some(t) => t.as_str().to_owned(),
                None => return Err(CallError::Problem(ApiError::unauthenticated("a bearer token is required"))),
            },
        };
        let span = tracing::info_span!("call", service = self.service, method = %method, path, otel.kind = "client");
        let mut headers = reqwest::header::HeaderMap::new();
        span.in_scope(|| tg_platform::traces::inject_into_headers(&mut headers));
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token).headers(headers);
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().instrument(span).await.map_err(|e| self.unavailable(e))?;
        let status = res.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == StatusCode::NO_CONTENT {
            return serde_json::from_value(serde_json::Value::Null).map(Some).map_err(|e| self.unavailable(e));
        }
        if status.is_server_error() {
            return Err(self.unavailable(format!("answered {status}")));
        }
        if !status.is_success() {
            let problem: Option<Problem> = res.json().await.ok();
            let (code, detail) = match problem {
                Some(p) => (p.code, p.detail.unwrap_or_default()),
                None => ("upstream_refused".to_owned(), format!("the {} service answered {status}", self.service)),
            };
            return Err(CallError::Problem(ApiError::new(status, code, detail)));
        }
        res.json().await.map(Some).map_err(|e| self.unavailable(e))
    }

    /// A GET whose 404 means "no such thing" (a user, an event, a booking).
    async fn get<T: DeserializeOwned>(&self, path: &str, caller: Caller<'_>) -> Result<Option<T>, CallError> {
        self.call::<(), T>(Method::GET, path, None, caller, true).await
    }

    /// A GET of a route that always answers (counts, lists): see [`ServiceClient::answer`].
    async fn get_answer<T: DeserializeOwned>(&self, path: &str, caller: Caller<'_>) -> Result<T, CallError> {
        self.answer(path, self.get(path, caller).await?)
    }

    /// The outcome of a route that always answers: a 404 there means a wrong URL (the gateway or
    /// another service answering), never "nothing", so it fails instead of reading as empty.
    fn answer<T>(&self, path: &str, outcome: Option<T>) -> Result<T, CallError> {
        outcome.ok_or_else(|| self.unavailable(format!("{path} answered 404: check its URL")))
    }
}

/// Path segment, percent-encoded: ids come from clients.
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

// ---- the users service ----

/// Users, as other services see them, over HTTP.
pub struct RemoteUsers(pub ServiceClient);

impl RemoteUsers {
    async fn user(&self, id: &str) -> anyhow::Result<Option<UserView>> {
        Ok(self.0.get(&format!("/internal/v1/users/{}", seg(id)), Caller::Service).await?)
    }
}

#[async_trait::async_trait]
impl tg_events::ports::OrganizerDirectory for RemoteUsers {
    async fn organizer_of_user(&self, user_id: &str) -> anyhow::Result<Option<Organizer>> {
        Ok(self.0.get(&format!("/internal/v1/users/{}/organizer", seg(user_id)), Caller::Service).await?)
    }
    async fn organizer(&self, organizer_id: &str) -> anyhow::Result<Option<Organizer>> {
        Ok(self.0.get(&format!("/internal/v1/organizers/{}", seg(organizer_id)), Caller::Service).await?)
    }
}

#[async_trait::async_trait]
impl tg_bookings::ports::UserDirectory for RemoteUsers {
    async fn contact(&self, user_id: &str) -> anyhow::Result<Option<(String, Option<String>)>> {
        Ok(self.user(user_id).await?.map(|u| (u.display_name, u.email)))
    }
}

// ---- the events service ----

/// The events service's documents and management rights, over HTTP.
pub struct RemoteEvents(pub ServiceClient);

#[async_trait::async_trait]
impl tg_bookings::ports::EventCatalog for RemoteEvents {
    async fn event(&self, key: &str) -> anyhow::Result<Option<EventDocument>> {
        Ok(self.0.get(&format!("/internal/v1/events/{}", seg(key)), Caller::Service).await?)
    }
    async fn manages(&self, principal: &Principal, event_id: &str) -> anyhow::Result<bool> {
        let path = format!("/internal/v1/events/{}/manages", seg(event_id));
        let answer: Manages = self.0.get_answer(&path, Caller::User(principal)).await?;
        Ok(answer.manages)
    }
}

// ---- the bookings service ----

/// The bookings service, over HTTP.
pub struct RemoteBookings(pub ServiceClient);

#[async_trait::async_trait]
impl tg_events::ports::BookingsView for RemoteBookings {
    async fn counts(&self, event_id: &str) -> anyhow::Result<HashMap<String, TypeCounts>> {
        let path = format!("/internal/v1/events/{}/ticket-counts", seg(event_id));
        Ok(self.0.get_answer(&path, Caller::Service).await?)
    }
    async fn sold_totals(&self, event_ids: &[String]) -> anyhow::Result<HashMap<String, i64>> {
        if event_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let body = SoldTotalsRequest { event_ids: event_ids.to_vec() };
        let path = "/internal/v1/events/sold-totals";
        let totals = self.0.call(Method::POST, path, Some(&body), Caller::Service, true).await?;
        Ok(self.0.answer(path, totals)?)
    }
    async fn attended(&self, event_id: &str, user_id: &str) -> anyhow::Result<Option<bool>> {
        let path = format!("/internal/v1/events/{}/attendance/{}", seg(event_id), seg(user_id));
        let answer: Attendance = self.0.get_answer(&path, Caller::Service).await?;
        Ok(Some(answer.attended))
    }
}

#[async_trait::async_trait]
impl tg_payments::ports::Bookings for RemoteBookings {
    async fn booking(&self, id: &str) -> anyhow::Result<Option<tg_payments::ports::BookingInfo>> {
        let b: Option<BookingView> = self.0.get(&format!("/internal/v1/bookings/{}", seg(id)), Caller::Service).await?;
        Ok(b.map(booking_info))
    }

    async fn confirm(&self, booking_id: &str) -> Result<(), tg_payments::ports::ConfirmFailure> {
        use tg_payments::ports::ConfirmFailure;
        let path = format!("/internal/v1/bookings/{}/confirm", seg(booking_id));
        // Confirming is idempotent, so it is retried like a read.
        match self.0.call::<(), ()>(Method::POST, &path, None, Caller::Service, true).await {
            Ok(Some(())) => Ok(()),
            // Bookings answers an unknown booking with 409 too: a 404 is a wrong URL. Never refund on it.
            Ok(None) => Err(ConfirmFailure::Internal(format!("{path} answered 404: check TICKETGW_BOOKINGS_URL"))),
            Err(CallError::Problem(p)) if p.code == CANNOT_CONFIRM => {
                Err(ConfirmFailure::CannotConfirm(p.detail.unwrap_or_default()))
            }
            Err(e) => Err(ConfirmFailure::Internal(anyhow::Error::from(e).to_string())),
        }
    }

    async fn refund_tickets(
        &self,
        principal: &Principal,
        booking_id: &str,
        tickets: Option<&[String]>,
    ) -> ApiResult<i64> {
        let path = format!("/internal/v1/bookings/{}/refund", seg(booking_id));
        let body = RefundRequest { tickets: tickets.map(<[String]>::to_vec) };
        // Not retried: a second attempt after a lost answer is refused (the tickets are gone), not repeated.
        let answer: Option<Refunded> =
            self.0.call(Method::POST, &path, Some(&body), Caller::User(principal), false).await?;
        answer.map(|r| r.refund_cents).ok_or_else(|| ApiError::not_found("booking"))
    }
}

// ---- what notifications needs ----

/// Notifications' directory when users, events and bookings run elsewhere.
pub struct RemoteDirectory {
    pub users: ServiceClient,
    pub events: ServiceClient,
    pub bookings: ServiceClient,
}

#[async_trait::async_trait]
impl tg_notifications::Directory for RemoteDirectory {
    async fn contact(&self, user_id: &str) -> anyhow::Result<Option<tg_notifications::Contact>> {
        let u: Option<UserView> =
            self.users.get(&format!("/internal/v1/users/{}", seg(user_id)), Caller::Service).await?;
        Ok(u.map(|u| tg_notifications::Contact { display_name: u.display_name, email: u.email, language: u.language }))
    }
    async fn event_title(&self, event_id: &str) -> anyhow::Result<Option<String>> {
        let d: Option<EventDocument> =
            self.events.get(&format!("/internal/v1/events/{}", seg(event_id)), Caller::Service).await?;
        Ok(d.map(|d| d.title))
    }
    async fn ticket_holders(&self, event_id: &str) -> anyhow::Result<Vec<String>> {
        let path = format!("/internal/v1/events/{}/ticket-holders", seg(event_id));
        Ok(self.bookings.get_answer(&path, Caller::Service).await?)
    }
    async fn ticket_qr_codes(&self, booking_id: &str) -> anyhow::Result<Vec<(String, String)>> {
        let path = format!("/internal/v1/bookings/{}/ticket-qr-codes", seg(booking_id));
        let codes: Vec<TicketQr> = self.bookings.get_answer(&path, Caller::Service).await?;
        Ok(codes.into_iter().map(|t| (format!("ticket-{}.svg", t.code), t.svg)).collect())
    }
}
