//! Bakong KHQR (Cambodia's EMV QR): we generate a dynamic individual KHQR for the amount, show it as
//! a QR code, and ask Bakong's Open API whether the transaction with the payload's MD5 arrived
//! (`POST /v1/check_transaction_by_md5`). Bakong has no refund API: refunds are paid back by hand.

use axum::http::HeaderMap;
use md5::{Digest, Md5};
use serde::Deserialize;

use super::{Outcome, PaymentIntent, Provider, ProviderError, Started, WebhookError, WebhookEvent};

#[derive(Clone, Debug)]
pub struct KhqrConfig {
    /// Bakong account receiving the money (`name@bank`).
    pub account_id: String,
    pub merchant_name: String,
    pub merchant_city: String,
    /// Bakong Open API base URL.
    pub api_base: String,
    pub api_token: String,
    /// How long a code can be paid, in milliseconds.
    pub valid_ms: i64,
}

pub struct Khqr {
    pub config: KhqrConfig,
    pub http: reqwest::Client,
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as EMV QR codes use.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// One EMV field: tag, two-digit length, value. Values are made ASCII and cut to `max` characters.
fn tlv(tag: &str, value: &str, max: usize) -> String {
    let clean: String = value.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).take(max.min(99)).collect();
    format!("{tag}{:02}{clean}", clean.len())
}

/// The amount as KHQR writes it: USD with two decimals, KHR in whole riel.
fn amount_text(amount_cents: i64, currency: &str) -> String {
    if currency == "KHR" {
        // Riel has no coins in use: round up to the whole riel.
        ((amount_cents + 99) / 100).to_string()
    } else {
        format!("{}.{:02}", amount_cents / 100, amount_cents % 100)
    }
}

/// A dynamic individual KHQR for `amount_cents` of `currency` (USD or KHR), valid between the two
/// instants (Unix milliseconds).
pub fn payload(
    config: &KhqrConfig,
    currency: &str,
    amount_cents: i64,
    bill_number: &str,
    created_ms: i64,
    expires_ms: i64,
) -> String {
    let currency_code = if currency == "KHR" { "116" } else { "840" };
    let mut s = String::new();
    s += &tlv("00", "01", 2);
    s += &tlv("01", "12", 2);
    s += &tlv("29", &tlv("00", &config.account_id, 32), 99);
    s += &tlv("52", "5999", 4);
    s += &tlv("53", currency_code, 3);
    s += &tlv("54", &amount_text(amount_cents, currency), 13);
    s += &tlv("58", "KH", 2);
    s += &tlv("59", &config.merchant_name, 25);
    s += &tlv("60", &config.merchant_city, 15);
    s += &tlv("62", &tlv("01", bill_number, 25), 99);
    s += &tlv("99", &(tlv("00", &created_ms.to_string(), 13) + &tlv("01", &expires_ms.to_string(), 13)), 99);
    s += "6304";
    let crc = crc16(s.as_bytes());
    format!("{s}{crc:04X}")
}

pub fn md5_hex(payload: &str) -> String {
    super::signature::to_hex(&Md5::digest(payload.as_bytes()))
}

/// The QR code as SVG.
pub fn qr_svg(payload: &str) -> Result<String, ProviderError> {
    let code = qrcode::QrCode::new(payload.as_bytes()).map_err(|e| ProviderError::Refused(e.to_string()))?;
    Ok(code.render::<qrcode::render::svg::Color>().min_dimensions(240, 240).build())
}

#[derive(Deserialize)]
struct CheckResponse {
    #[serde(rename = "responseCode")]
    response_code: i64,
    #[serde(rename = "responseMessage", default)]
    response_message: String,
    data: Option<Transaction>,
}

#[derive(Deserialize)]
struct Transaction {
    hash: String,
    amount: f64,
    currency: String,
}

#[async_trait::async_trait]
impl Provider for Khqr {
    fn name(&self) -> &'static str {
        "khqr"
    }

    fn reports_by_polling(&self) -> bool {
        true
    }

    fn currencies(&self) -> &'static [&'static str] {
        &["USD", "KHR"]
    }

    async fn start(&self, intent: &PaymentIntent) -> Result<Started, ProviderError> {
        let now = tg_platform::clock::now_ms();
        let expires = now + self.config.valid_ms;
        let bill: String = intent.payment_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(25).collect();
        let qr = payload(&self.config, &intent.currency, intent.amount_cents, &bill, now, expires);
        let md5 = md5_hex(&qr);
        Ok(Started {
            provider_ref: md5.clone(),
            next_action: serde_json::json!({
                "type": "khqr", "qr": qr, "md5": md5, "qr_svg": qr_svg(&qr)?,
                "expires_at": tg_platform::clock::rfc3339(expires),
            }),
        })
    }

    fn webhook(&self, _headers: &HeaderMap, _body: &[u8], _now: i64) -> Result<WebhookEvent, WebhookError> {
        Err(WebhookError::Malformed("Bakong reports KHQR payments by polling, not webhooks".into()))
    }

    async fn poll(&self, md5: &str) -> Result<Option<Outcome>, ProviderError> {
        let url = format!("{}/v1/check_transaction_by_md5", self.config.api_base.trim_end_matches('/'));
        let res = self
            .http
            .post(url)
            .bearer_auth(&self.config.api_token)
            // Looked up while a client waits for the payment's status: answer "pending" soon.
            .timeout(std::time::Duration::from_secs(5))
            .json(&serde_json::json!({"md5": md5}))
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(ProviderError::Unavailable(format!("Bakong answered {}", res.status())));
        }
        let body: CheckResponse = res.json().await.map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        match (body.response_code, body.data) {
            (0, Some(t)) => Ok(Some(Outcome::Succeeded {
                amount_cents: (t.amount * 100.0).round() as i64,
                currency: t.currency.to_uppercase(),
                reference: Some(t.hash),
            })),
            // 1: "Transaction could not be found": not paid yet.
            (1, _) => Ok(None),
            (code, _) => Err(ProviderError::Unavailable(format!("Bakong error {code}: {}", body.response_message))),
        }
    }

    async fn refund(
        &self,
        _refund_id: &str,
        _reference: &str,
        _amount_cents: i64,
        _currency: &str,
    ) -> Result<String, ProviderError> {
        Err(ProviderError::Refused("KHQR has no refund API; pay this refund back by transfer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_ccitt_false() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    #[test]
    fn amounts_are_written_as_khqr_expects() {
        assert_eq!(amount_text(1250, "USD"), "12.50");
        assert_eq!(amount_text(3000, "USD"), "30.00");
        assert_eq!(amount_text(5_000_000, "KHR"), "50000");
        assert_eq!(amount_text(5_000_050, "KHR"), "50001");
    }

    #[test]
    fn fields_are_ascii_and_bounded() {
        let config = KhqrConfig {
            account_id: "ticketgw@devb".into(),
            merchant_name: "សួស្តី Ticket Gateway with a very long name".into(),
            merchant_city: "Phnom Penh".into(),
            api_base: String::new(),
            api_token: String::new(),
            valid_ms: 1,
        };
        let p = payload(&config, "USD", 1250, "BK1", 1_795_600_000_000, 1_795_600_600_000);
        assert!(p.is_ascii());
        assert!(p.contains("5925 Ticket Gateway with a v"), "{p}");
        assert!(p.starts_with("000201010212"));
    }
}
