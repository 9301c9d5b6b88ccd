//! Door check-in: each scan gets one of six distinct answers, and a retried scan (same nonce) gets
//! the same answer again, so scanners can retry and upload offline scans safely. A scan names the
//! ticket by the QR code's signed token or, typed at the door when a screen will not scan, by the
//! code printed on the ticket.

use tg_contracts::{Message, TicketCheckedIn};
use tg_platform::{
    auth::Principal,
    clock::{now_ms, rfc3339},
    ApiError, ApiResult,
};

use crate::{model::ScanResult, BookingsService};

/// One scan, live or recorded offline.
#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    /// The token read from the QR code. Give this or `code`.
    #[serde(default)]
    pub token: Option<String>,
    /// The code printed on the ticket (spaces, dashes and case are ignored). Give this or `token`.
    #[serde(default)]
    pub code: Option<String>,
    /// Unique per scan (e.g. a UUID the scanner makes); retries reuse it.
    pub nonce: String,
    pub gate: Option<String>,
    /// When an offline scan happened (RFC 3339); default now.
    pub scanned_at: Option<String>,
}

impl Scan {
    /// Checks the fields and returns when the scan happened, so a batch can be refused whole before
    /// any of it is applied.
    pub fn validate(&self) -> ApiResult<i64> {
        if self.nonce.is_empty() || self.nonce.len() > 100 {
            return Err(ApiError::field("nonce", "must be 1 to 100 characters"));
        }
        if self.gate.as_ref().is_some_and(|g| g.chars().count() > 50) {
            return Err(ApiError::field("gate", "must be at most 50 characters"));
        }
        if self.token.is_some() == self.code.is_some() {
            return Err(ApiError::field("token", "give either the QR code's token or the printed code"));
        }
        if self.code.as_deref().is_some_and(|c| normalize_code(c).is_none()) {
            return Err(ApiError::field("code", "must be the letters and digits printed on the ticket"));
        }
        match &self.scanned_at {
            Some(s) => {
                Ok(tg_events::document::parse_instant(s).map_err(|m| ApiError::field("scanned_at", m))?.min(now_ms()))
            }
            None => Ok(now_ms()),
        }
    }
}

impl BookingsService {
    /// Whether the caller may scan at this event: its organizer, an admin, or appointed door staff
    /// (by a verified address: whoever registers an appointed address first gains nothing).
    pub async fn may_scan(&self, p: &Principal, event_id: &str) -> ApiResult<bool> {
        if self.events.manages(p, event_id).await.map_err(ApiError::from_anyhow)? {
            return Ok(true);
        }
        match p.verified_email() {
            Some(email) => Ok(self.store.is_staff(event_id, &email.to_lowercase()).await?),
            None => Ok(false),
        }
    }

    pub async fn scan(&self, event_id: &str, scan: &Scan) -> ApiResult<ScanResult> {
        let at = scan.validate()?;
        if let Some(stored) = self.replayed(event_id, &scan.nonce).await? {
            return Ok(stored);
        }
        let result = self.evaluate(event_id, scan, at).await?;
        crate::metrics::METRICS.checkin(&result.result);
        let json = serde_json::to_string(&result).map_err(ApiError::internal)?;
        if !self.store.save_scan(&scan.nonce, event_id, result.ticket_id.as_deref(), &json).await? {
            // A concurrent retry of the same scan saved first; its answer is the answer.
            if let Some(stored) = self.replayed(event_id, &scan.nonce).await? {
                return Ok(stored);
            }
        }
        Ok(result)
    }

    /// Refuses a nonce already used at another event, before anything of a batch is applied.
    pub async fn check_nonce(&self, event_id: &str, nonce: &str) -> ApiResult<()> {
        self.replayed(event_id, nonce).await.map(|_| ())
    }

    async fn replayed(&self, event_id: &str, nonce: &str) -> ApiResult<Option<ScanResult>> {
        match self.store.scan_result(nonce).await? {
            Some((ev, _)) if ev != event_id => {
                Err(ApiError::conflict("nonce_reused", "this nonce belongs to another event's scan"))
            }
            Some((_, json)) => Ok(serde_json::from_str(&json).ok()),
            None => Ok(None),
        }
    }

    async fn evaluate(&self, event_id: &str, scan: &Scan, at: i64) -> ApiResult<ScanResult> {
        // `validate` made sure exactly one of token and code is given.
        let ticket = if let Some(token) = &scan.token {
            let Some(claims) = self.keys.verify(token).await.map_err(ApiError::from_anyhow)? else {
                return Ok(ScanResult::bare("forged"));
            };
            self.store.ticket(&claims.tid).await?.filter(|t| t.event_id == claims.eid)
        } else {
            // Only this event's tickets are looked up: a typed code tells nothing of other events.
            let code = normalize_code(scan.code.as_deref().unwrap_or_default()).unwrap_or_default();
            match self.store.ticket_by_code(event_id, &code).await? {
                Some(ticket) => Some(ticket),
                None => return Ok(ScanResult::bare("unknown_code")),
            }
        };
        let Some(ticket) = ticket else {
            return Ok(ScanResult::bare("forged"));
        };
        if ticket.event_id != event_id {
            // Nothing about another event's ticket is told to this event's door.
            return Ok(ScanResult::bare("wrong_event"));
        }
        let base = ScanResult {
            ticket_id: Some(ticket.id.clone()),
            ticket_type_id: Some(ticket.type_id.clone()),
            code: Some(ticket.code.clone()),
            ..ScanResult::bare("")
        };
        if ticket.status == "cancelled" {
            return Ok(ScanResult { result: "cancelled".into(), ..base });
        }
        let message = TicketCheckedIn {
            ticket_id: ticket.id.clone(),
            event_id: event_id.to_owned(),
            gate: scan.gate.clone(),
            at: rfc3339(at),
        }
        .to_event();
        if self.store.check_in(&ticket.id, at, scan.gate.as_deref(), &message).await? {
            self.bus.committed();
            return Ok(ScanResult { result: "valid".into(), ..base });
        }
        let first = self.store.ticket(&ticket.id).await?.ok_or_else(|| ApiError::not_found("ticket"))?;
        Ok(ScanResult {
            result: "already_checked_in".into(),
            first_checked_in_at: first.checked_in_at.map(rfc3339),
            first_gate: first.checkin_gate,
            ..base
        })
    }
}

/// A printed code as typed at the door: case, spaces and dashes do not matter.
fn normalize_code(typed: &str) -> Option<String> {
    let code: String =
        typed.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
    (!code.is_empty() && code.len() <= 20 && code.chars().all(|c| c.is_ascii_alphanumeric())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::normalize_code;

    #[test]
    fn printed_codes_are_read_as_typed_at_the_door() {
        assert_eq!(normalize_code(" abcd-efgh 23 ").as_deref(), Some("ABCDEFGH23"));
        assert_eq!(normalize_code("--"), None);
        assert_eq!(normalize_code("AB'; DROP"), None);
        assert_eq!(normalize_code(&"A".repeat(21)), None);
    }
}
