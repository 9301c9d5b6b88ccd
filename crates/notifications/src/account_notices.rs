//! Private notices about the account: mails with single-use links (e-mail only) and the codes that
//! confirm a Telegram chat or phone number. In English and Khmer.

use tg_contracts::{AccountMail, AccountMailKind};

use crate::templates::Notice;

/// The mail `m` asks for, in its language.
pub fn render(m: &AccountMail) -> Notice {
    let km = m.language == "km";
    let name = if m.display_name.is_empty() { "there" } else { m.display_name.as_str() };
    let link = m.link.as_deref().unwrap_or_default();
    let minutes = m.expires_in_minutes.unwrap_or_default();
    let (kind, subject, body) = match m.kind {
        AccountMailKind::VerifyEmail if km => (
            "verify_email",
            "បញ្ជាក់អាសយដ្ឋានអ៊ីមែលរបស់អ្នក".to_owned(),
            format!("សួស្តី {name},\n\nសូមបើកតំណនេះ ដើម្បីបញ្ជាក់ថាអាសយដ្ឋាននេះជារបស់អ្នក (ប្រើបានតែម្ដង ក្នុងរយៈពេល {minutes} នាទី)៖\n{link}\n\nបើមិនមែនអ្នកទេ សូមកុំអើពើអ៊ីមែលនេះ។"),
        ),
        AccountMailKind::VerifyEmail => (
            "verify_email",
            "Confirm your e-mail address".to_owned(),
            format!("Hello {name},\n\nOpen this link to confirm this address is yours (it works once, for {minutes} minutes):\n{link}\n\nIf this was not you, ignore this mail."),
        ),
        AccountMailKind::ResetPassword if km => (
            "reset_password",
            "កំណត់ពាក្យសម្ងាត់ថ្មី".to_owned(),
            format!("សួស្តី {name},\n\nសូមបើកតំណនេះ ដើម្បីកំណត់ពាក្យសម្ងាត់ថ្មី (ប្រើបានតែម្ដង ក្នុងរយៈពេល {minutes} នាទី)៖\n{link}\n\nបើមិនមែនអ្នកស្នើទេ សូមកុំអើពើ៖ ពាក្យសម្ងាត់របស់អ្នកនៅដដែល។"),
        ),
        AccountMailKind::ResetPassword => (
            "reset_password",
            "Set a new password".to_owned(),
            format!("Hello {name},\n\nOpen this link to set a new password (it works once, for {minutes} minutes):\n{link}\n\nIf you did not ask, ignore this mail: your password stays as it is."),
        ),
        AccountMailKind::EmailTaken if km => (
            "email_taken",
            "មាននរណាម្នាក់ព្យាយាមចុះឈ្មោះដោយប្រើអាសយដ្ឋានរបស់អ្នក".to_owned(),
            format!("សួស្តី {name},\n\nអាសយដ្ឋាននេះមានគណនីរួចហើយ។ បើជាអ្នក សូមចូលគណនី ឬកំណត់ពាក្យសម្ងាត់ថ្មីពីទំព័រចូល។ បើមិនមែនអ្នកទេ មិនចាំបាច់ធ្វើអ្វីទេ។"),
        ),
        AccountMailKind::EmailTaken => (
            "email_taken",
            "Someone tried to use your address".to_owned(),
            format!("Hello {name},\n\nThis address already has an account. If that was you, sign in, or set a new password from the sign-in page. If not, there is nothing to do."),
        ),
        AccountMailKind::EmailChanged if km => (
            "email_changed",
            "អាសយដ្ឋានអ៊ីមែលនៃគណនីរបស់អ្នកត្រូវបានប្ដូរ".to_owned(),
            format!("សួស្តី {name},\n\nគណនីរបស់អ្នកឥឡូវប្រើអាសយដ្ឋានថ្មីមួយ ហើយលែងប្រើអាសយដ្ឋាននេះទៀតហើយ។ បើមិនមែនអ្នកធ្វើទេ សូមទាក់ទងយើងភ្លាម។"),
        ),
        AccountMailKind::EmailChanged => (
            "email_changed",
            "Your account's e-mail address changed".to_owned(),
            format!("Hello {name},\n\nYour account now uses a new address and no longer this one. If you did not do this, contact us at once."),
        ),
    };
    Notice { kind, subject, body }
}

/// The message carrying a channel confirmation code.
pub fn channel_code(code: &str, minutes: u32, language: &str) -> Notice {
    if language == "km" {
        Notice {
            kind: "channel_code",
            // In the subject too: an SMS carries the subject alone.
            subject: format!("លេខកូដ Ticket Gateway: {code}"),
            body: format!("លេខកូដ Ticket Gateway របស់អ្នក៖ {code} (ប្រើបាន {minutes} នាទី)។ បើមិនមែនអ្នកស្នើទេ សូមកុំអើពើ។"),
        }
    } else {
        Notice {
            kind: "channel_code",
            subject: format!("Ticket Gateway code: {code}"),
            body: format!("Your Ticket Gateway code: {code} (valid {minutes} minutes). If you did not ask for it, ignore this message."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_codes_are_in_the_message_in_the_users_language() {
        let mail = AccountMail {
            user_id: "u1".into(),
            kind: AccountMailKind::ResetPassword,
            to: "a@example.com".into(),
            display_name: "Dara".into(),
            language: "en".into(),
            link: Some("http://x/account/reset-password?token=T".into()),
            expires_in_minutes: Some(30),
        };
        let en = render(&mail);
        assert_eq!(en.kind, "reset_password");
        assert!(
            en.body.contains("http://x/account/reset-password?token=T") && en.body.contains("30 minutes"),
            "{}",
            en.body
        );
        let km = render(&AccountMail { language: "km".into(), ..mail });
        assert!(km.body.contains("token=T") && km.subject.starts_with("កំណត់"), "{}", km.body);
        for (code, language) in [("123456", "en"), ("654321", "km")] {
            let notice = channel_code(code, 15, language);
            assert!(notice.body.contains(code) && notice.subject.contains(code), "SMS sends the subject alone");
        }
    }
}
