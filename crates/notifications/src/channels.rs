//! Where notices go beyond the mailbox: e-mail over SMTP, the Telegram Bot API, an SMS gateway
//! speaking Twilio's Messages API. Base URLs are configurable (tests run local servers).

use lettre::{
    message::{header::ContentType, Attachment, Mailbox, MultiPart, SinglePart},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

/// Why a send failed; `retry` false when trying again cannot help (bad address, refused).
#[derive(Debug)]
pub struct SendError {
    pub message: String,
    pub retry: bool,
}

impl SendError {
    fn retry(m: impl ToString) -> Self {
        SendError { message: m.to_string(), retry: true }
    }
    fn fatal(m: impl ToString) -> Self {
        SendError { message: m.to_string(), retry: false }
    }
}

/// One notice ready to send.
pub struct Outgoing<'a> {
    pub subject: &'a str,
    pub body: &'a str,
    /// (file name, SVG) of ticket QR codes.
    pub attachments: &'a [(String, String)],
}

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    /// `url` as lettre reads it: `smtp://host:port` (plain), `smtp://…?tls=required` (STARTTLS),
    /// `smtps://user:pass@host` (TLS).
    pub fn new(url: &str, from: &str) -> anyhow::Result<Smtp> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.build();
        Ok(Smtp { transport, from: from.parse()? })
    }

    pub async fn send(&self, to: &str, m: &Outgoing<'_>) -> Result<(), SendError> {
        let to: Mailbox = to.parse().map_err(SendError::fatal)?;
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(m.body.to_owned()));
        for (name, svg) in m.attachments {
            let svg_type = ContentType::parse("image/svg+xml").map_err(SendError::fatal)?;
            parts = parts.singlepart(Attachment::new(name.clone()).body(svg.clone(), svg_type));
        }
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject)
            .multipart(parts)
            .map_err(SendError::fatal)?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::fatal(e)),
            Err(e) => Err(SendError::retry(e)),
        }
    }
}

pub struct Telegram {
    pub base_url: String,
    pub bot_token: String,
    pub http: reqwest::Client,
}

impl Telegram {
    pub async fn send(&self, chat_id: &str, m: &Outgoing<'_>) -> Result<(), SendError> {
        let url = format!("{}/bot{}/sendMessage", self.base_url.trim_end_matches('/'), self.bot_token);
        let text = format!("{}\n\n{}", m.subject, m.body);
        let res = self
            .http
            .post(url)
            .json(&serde_json::json!({"chat_id": chat_id, "text": text}))
            .send()
            .await
            // The URL holds the bot token: never into logs or the delivery log.
            .map_err(|e| SendError::retry(e.without_url()))?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if body["ok"] == true {
            return Ok(());
        }
        let why = format!("Telegram {status}: {}", body["description"].as_str().unwrap_or_default());
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::retry(why))
        } else {
            Err(SendError::fatal(why))
        }
    }
}

pub struct Sms {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    pub http: reqwest::Client,
}

impl Sms {
    pub async fn send(&self, phone: &str, m: &Outgoing<'_>) -> Result<(), SendError> {
        let url =
            format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url.trim_end_matches('/'), self.account_sid);
        let res = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&[("To", phone), ("From", self.from.as_str()), ("Body", m.subject)])
            .send()
            .await
            .map_err(SendError::retry)?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        let why = format!("SMS gateway {status}: {}", body["message"].as_str().unwrap_or_default());
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::retry(why))
        } else {
            Err(SendError::fatal(why))
        }
    }
}
