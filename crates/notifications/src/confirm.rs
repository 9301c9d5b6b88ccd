//! Confirmed notice channels: a Telegram chat or phone number receives notices only after its owner
//! typed back the code sent there, so nobody can point someone else's phone at our messages.

use std::time::Duration;

use tg_platform::clock::now_ms;

use crate::{
    account_notices,
    store::{ChannelSettings, CodeCheck, NewCode, NewNotice},
    NotificationsService,
};

/// How long a confirmation code works.
pub const CODE_TTL: Duration = Duration::from_secs(15 * 60);

/// A channel gets a new code at most this often: a message costs (SMS), and nobody's phone may be
/// made a target by saving it over and over.
pub const RESEND_AFTER: Duration = Duration::from_secs(60);

impl NotificationsService {
    /// Save the user's channels; each new, changed or still unconfirmed one gets a code (at most one
    /// a channel every [`RESEND_AFTER`]) and takes notices once it is typed back.
    pub async fn set_channels(
        &self,
        user_id: &str,
        telegram: Option<String>,
        phone: Option<String>,
    ) -> anyhow::Result<ChannelSettings> {
        let old = self.store.channel_settings(user_id).await?;
        let language = match self.directory.contact(user_id).await? {
            Some(c) if c.language == "km" => "km",
            _ => "en",
        };
        let new = ChannelSettings {
            telegram_confirmed: telegram.is_some() && old.telegram_confirmed && telegram == old.telegram_chat_id,
            phone_confirmed: phone.is_some() && old.phone_confirmed && phone == old.phone,
            telegram_chat_id: telegram,
            phone,
        };
        let mut codes = Vec::new();
        let wanted =
            [("telegram", &new.telegram_chat_id, new.telegram_confirmed), ("sms", &new.phone, new.phone_confirmed)];
        for (channel, recipient, confirmed) in wanted {
            let Some(recipient) = recipient.as_ref().filter(|_| !confirmed) else { continue };
            let sent_at =
                self.store.code_expires_at(user_id, channel).await?.map(|at| at - CODE_TTL.as_millis() as i64);
            if sent_at.is_some_and(|at| now_ms() - at < RESEND_AFTER.as_millis() as i64) {
                continue;
            }
            codes.push(self.code_for(user_id, channel, recipient, language));
        }
        self.store.set_channels(user_id, &new, &codes).await?;
        if !codes.is_empty() {
            self.wake.notify_one();
        }
        Ok(new)
    }

    /// Check a code typed back for `channel` (`telegram` or `sms`).
    pub async fn confirm_channel(&self, user_id: &str, channel: &str, code: &str) -> anyhow::Result<CodeCheck> {
        Ok(self.store.confirm_channel(user_id, channel, code.trim()).await?)
    }

    fn code_for(&self, user_id: &str, channel: &'static str, recipient: &str, language: &str) -> (NewCode, NewNotice) {
        let code = format!("{:06}", uuid::Uuid::new_v4().as_u128() % 1_000_000);
        let minutes = (CODE_TTL.as_secs() / 60) as u32;
        let notice = account_notices::channel_code(&code, minutes, language);
        let new_code = NewCode {
            channel,
            recipient: recipient.to_owned(),
            code,
            expires_at: now_ms() + CODE_TTL.as_millis() as i64,
        };
        let notice = NewNotice {
            user_id: user_id.to_owned(),
            kind: notice.kind.to_owned(),
            language: language.to_owned(),
            subject: notice.subject,
            body: notice.body,
            booking_id: None,
            private: true,
            channels: vec![(channel, recipient.to_owned())],
        };
        (new_code, notice)
    }
}
