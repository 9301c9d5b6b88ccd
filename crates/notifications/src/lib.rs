//! Notifications service: turns domain events into notices for users.
//!
//! Its consumer writes, once per message (the processed id in the same transaction), a notice into
//! each recipient's mailbox (readable at `/api/v1/me/messages`, the default channel) and one pending
//! delivery per configured channel: e-mail (SMTP), Telegram, SMS. The dispatcher sends pending
//! deliveries with retries and backoff and keeps the outcome in the delivery log; it claims each
//! delivery before sending it, so several instances never send the same one at once.

mod account_notices;
pub mod api;
pub mod channels;
mod confirm;
mod metrics;
pub mod store;
pub mod templates;

use std::{sync::Arc, time::Duration};

use tg_messaging::{Consumer, Poison};
use tg_platform::{
    bus::DomainEvent,
    clock::now_ms,
    db::{Db, ServiceMigrations},
};
use tokio::sync::Notify;

use crate::{
    channels::{Outgoing, SendError, Sms, Smtp, Telegram},
    store::{Delivery, NewNotice, Store},
    templates::{Facts, News},
};

pub fn migrations() -> ServiceMigrations {
    ServiceMigrations {
        service: "notifications",
        sqlite: sqlx::migrate!("migrations/sqlite"),
        postgres: sqlx::migrate!("migrations/postgres"),
    }
}

/// A user as notices need them.
#[derive(Clone, Debug)]
pub struct Contact {
    pub display_name: String,
    pub email: Option<String>,
    /// `en` or `km`.
    pub language: String,
}

/// What notifications need from the other services.
#[async_trait::async_trait]
pub trait Directory: Send + Sync {
    async fn contact(&self, user_id: &str) -> anyhow::Result<Option<Contact>>;
    async fn event_title(&self, event_id: &str) -> anyhow::Result<Option<String>>;
    /// Users holding valid tickets of the event.
    async fn ticket_holders(&self, event_id: &str) -> anyhow::Result<Vec<String>>;
    /// The booking's valid tickets: (file name, QR SVG).
    async fn ticket_qr_codes(&self, booking_id: &str) -> anyhow::Result<Vec<(String, String)>>;
}

#[derive(Clone, Debug, Default)]
pub struct NotificationsConfig {
    pub public_url: String,
    /// `smtp://host:port` etc.; unset = no e-mail (the mailbox only).
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub telegram_bot_token: Option<String>,
    pub telegram_api_url: String,
    /// Twilio-style SMS gateway: (base URL, account sid, auth token, from number).
    pub sms: Option<(String, String, String, String)>,
}

pub struct NotificationsService {
    pub(crate) store: Store,
    directory: Arc<dyn Directory>,
    public_url: String,
    smtp: Option<Smtp>,
    telegram: Option<Telegram>,
    sms: Option<Sms>,
    wake: Notify,
}

const CONSUMER: &str = "notifications";

/// How long a dispatcher's claim on a delivery lasts without renewal: how long a delivery whose
/// dispatcher died while sending waits before another dispatcher sends it (again: at least once).
const CLAIM: Duration = Duration::from_secs(15);

/// How often a dispatcher renews its claim while a channel takes its time.
const RENEW_CLAIM_EVERY: Duration = Duration::from_secs(5);

impl NotificationsService {
    pub fn new(db: Db, directory: Arc<dyn Directory>, config: NotificationsConfig) -> anyhow::Result<Arc<Self>> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?;
        let smtp = match &config.smtp_url {
            Some(url) => Some(Smtp::new(url, &config.mail_from)?),
            None => None,
        };
        let telegram = config.telegram_bot_token.clone().map(|bot_token| Telegram {
            base_url: config.telegram_api_url.clone(),
            bot_token,
            http: http.clone(),
        });
        let sms = config.sms.clone().map(|(base_url, account_sid, auth_token, from)| Sms {
            base_url,
            account_sid,
            auth_token,
            from,
            http,
        });
        std::sync::LazyLock::force(&metrics::METRICS);
        Ok(Arc::new(NotificationsService {
            store: Store { db },
            directory,
            public_url: config.public_url,
            smtp,
            telegram,
            sms,
            wake: Notify::new(),
        }))
    }

    /// Whether notices can go by `channel` (`telegram`, `sms`) here: its provider is configured.
    pub fn offers(&self, channel: &str) -> bool {
        match channel {
            "telegram" => self.telegram.is_some(),
            "sms" => self.sms.is_some(),
            _ => false,
        }
    }

    pub fn consumer(self: &Arc<Self>) -> Arc<dyn Consumer> {
        Arc::new(NotificationsConsumer(self.clone()))
    }

    /// Who hears about `news`.
    async fn recipients(&self, news: &News) -> anyhow::Result<Vec<String>> {
        Ok(match news {
            News::EventUpdated(e) | News::EventCancelled(e) => self.directory.ticket_holders(&e.event_id).await?,
            News::Welcome(u) => vec![u.user_id.clone()],
            News::Confirmed(b) | News::Expired(b) => vec![b.user_id.clone()],
            News::Refunded(r) => vec![r.payment.user_id.clone()],
            // Written to an address, not a user's channels (`account_notice`), or to no one.
            News::Account(_) | News::Deleted(_) => Vec::new(),
        })
    }

    /// A mail about the account: e-mail only, to the address it names, kept out of the mailbox.
    fn account_notice(&self, mail: &tg_contracts::AccountMail) -> Option<NewNotice> {
        if self.smtp.is_none() {
            tracing::warn!(user_id = %mail.user_id, kind = ?mail.kind, "account mail not sent: no SMTP server configured (SMTP_URL)");
            return None;
        }
        let notice = account_notices::render(mail);
        Some(NewNotice {
            user_id: mail.user_id.clone(),
            kind: notice.kind.to_owned(),
            language: if mail.language == "km" { "km".into() } else { "en".into() },
            subject: notice.subject,
            body: notice.body,
            booking_id: None,
            private: true,
            channels: vec![("email", mail.to.clone())],
        })
    }

    async fn notices(&self, news: &News) -> anyhow::Result<Vec<NewNotice>> {
        if let News::Account(mail) = news {
            return Ok(self.account_notice(mail).into_iter().collect());
        }
        let event_title = match news.event_id() {
            Some(id) => self.directory.event_title(id).await?.unwrap_or_else(|| id.to_owned()),
            None => String::new(),
        };
        let mut out = Vec::new();
        for user_id in self.recipients(news).await? {
            let Some(contact) = self.directory.contact(&user_id).await? else { continue };
            let facts = Facts { name: &contact.display_name, event_title: &event_title, public_url: &self.public_url };
            let notice = templates::render(news, &contact.language, &facts);
            let mut channels = Vec::new();
            if let (Some(_), Some(email)) = (&self.smtp, &contact.email) {
                channels.push(("email", email.clone()));
            }
            let (telegram, phone) = self.store.channels(&user_id).await?;
            if let (Some(_), Some(chat)) = (&self.telegram, telegram) {
                channels.push(("telegram", chat));
            }
            if let (Some(_), Some(phone)) = (&self.sms, phone) {
                channels.push(("sms", phone));
            }
            // The confirmation carries the booking's QR codes.
            let booking_id = match news {
                News::Confirmed(b) => Some(b.booking_id.clone()),
                _ => None,
            };
            out.push(NewNotice {
                user_id,
                kind: notice.kind.to_owned(),
                language: if contact.language == "km" { "km".into() } else { "en".into() },
                subject: notice.subject,
                body: notice.body,
                booking_id,
                private: false,
                channels,
            });
        }
        Ok(out)
    }

    async fn send(&self, d: &Delivery) -> Result<(), SendError> {
        let entry = self
            .store
            .entry(&d.mailbox_id)
            .await
            .map_err(|e| SendError { message: e.to_string(), retry: true })?
            .ok_or(SendError { message: "notice vanished".into(), retry: false })?;
        let attachments = match (&entry.booking_id, d.channel.as_str()) {
            (Some(booking), "email") => self
                .directory
                .ticket_qr_codes(booking)
                .await
                .map_err(|e| SendError { message: e.to_string(), retry: true })?,
            _ => Vec::new(),
        };
        let out = Outgoing { subject: &entry.subject, body: &entry.body, attachments: &attachments };
        let missing = || SendError { message: format!("{} is not configured", d.channel), retry: false };
        match d.channel.as_str() {
            "email" => self.smtp.as_ref().ok_or_else(missing)?.send(&d.recipient, &out).await,
            "telegram" => self.telegram.as_ref().ok_or_else(missing)?.send(&d.recipient, &out).await,
            "sms" => self.sms.as_ref().ok_or_else(missing)?.send(&d.recipient, &out).await,
            _ => Err(missing()),
        }
    }

    /// Send what is due (at most 50 deliveries; how many): each delivery is claimed before it is
    /// sent, so that several dispatchers (instances) never send the same one at once; pending again
    /// with exponential backoff on temporary failures.
    pub async fn dispatch_due(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        while n < 50 {
            let now = now_ms();
            let Some(d) = self.store.claim_due(now, now + CLAIM.as_millis() as i64).await? else { break };
            n += 1;
            let (result, claimed_until) = self.send_holding_claim(&d, now + CLAIM.as_millis() as i64).await;
            tg_platform::failpoint::crash_point("notifications.delivery.sent");
            let backoff = 1000 * 4i64.pow(d.attempts.clamp(0, 6) as u32);
            if let Err(e) = &result {
                tracing::warn!(delivery = %d.id, channel = %d.channel, attempt = d.attempts + 1, error = %e.message, "notice not delivered");
            }
            let error = result.as_ref().err().map(|e| (e.message.as_str(), e.retry));
            let status = store::status_after(d.attempts + 1, error.map(|(_, retry)| retry));
            metrics::METRICS.attempt(&d.channel, status);
            if !self.store.attempted(&d, error, backoff, claimed_until).await? {
                tracing::warn!(delivery = %d.id, "claim on the delivery lost while sending; another dispatcher has it");
            }
        }
        Ok(n)
    }

    /// Send `d`, renewing the claim (lasting until `until`) every [`RENEW_CLAIM_EVERY`] while the
    /// channel takes its time; the outcome and when the claim lasts until now.
    async fn send_holding_claim(&self, d: &Delivery, mut until: i64) -> (Result<(), SendError>, i64) {
        let send = self.send(d);
        tokio::pin!(send);
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + RENEW_CLAIM_EVERY, RENEW_CLAIM_EVERY);
        loop {
            tokio::select! {
                result = &mut send => return (result, until),
                _ = renew.tick() => {
                    let to = now_ms() + CLAIM.as_millis() as i64;
                    match self.store.renew_claim(&d.id, until, to).await {
                        Ok(true) => until = to,
                        // Lost or not renewed: the send goes on; another dispatcher may send too
                        // (at least once), and only one attempt is recorded.
                        Ok(false) => tracing::warn!(delivery = %d.id, "claim on the delivery lost while sending"),
                        Err(e) => tracing::warn!(delivery = %d.id, error = %e, "claim on the delivery not renewed"),
                    }
                }
            }
        }
    }

    pub async fn run_dispatcher(self: Arc<Self>) {
        loop {
            match self.dispatch_due().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %tg_platform::telemetry::Bounded(&e), "dispatching notices failed"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
        }
    }
}

struct NotificationsConsumer(Arc<NotificationsService>);

/// The notifications consumer's queue and bindings (declared by relays in other processes too).
pub const SUBSCRIPTION: tg_messaging::Subscription =
    tg_messaging::Subscription { name: CONSUMER, bindings: News::KEYS };

#[async_trait::async_trait]
impl Consumer for NotificationsConsumer {
    fn name(&self) -> &'static str {
        CONSUMER
    }

    fn bindings(&self) -> &'static [&'static str] {
        SUBSCRIPTION.bindings
    }

    async fn handle(&self, m: &DomainEvent) -> anyhow::Result<()> {
        let news = News::read(m).map_err(|e| Poison(e.to_string()))?;
        if let Some(News::Deleted(d)) = &news {
            self.0.store.forget(CONSUMER, &m.id, &d.user_id).await?;
            return Ok(());
        }
        // Nothing to tell: recorded all the same, so that a redelivery is not looked at again.
        let notices = match &news {
            Some(news) => self.0.notices(news).await?,
            None => Vec::new(),
        };
        if self.0.store.record(CONSUMER, &m.id, &notices).await? {
            self.0.wake.notify_one();
        }
        Ok(())
    }
}
