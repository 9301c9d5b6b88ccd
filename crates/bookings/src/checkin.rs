//! Door check-in: each scan gets one of five distinct answers, and a retried scan (same nonce) gets
//! the same answer again, so scanners can retry and upload offline scans safely.

use tg_platform::{
    auth::Principal,
    bus::DomainEvent,
    clock::{now_ms, rfc3339},
    ApiError, ApiResult,
};

use crate::{model::ScanResult, BookingsService};

/// One scan, live or recorded offline.
#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    /// The token read from the QR code.
    pub token: String,
    /// Unique per scan (e.g. a UUID the scanner makes); retries reuse it.
    pub nonce: String,
    pub gate: Option<String>,
    /// When an offline scan happened (RFC 3339); default now.
    pub scanned_at: Option<String>,
}

impl BookingsService {
    /// Whether the caller may scan at this event: its organizer, an admin, or appointed door staff.
    pub async fn may_scan(&self, p: &Principal, event_id: &str) -> ApiResult<bool> {
        if self.events.manages(p, event_id).await.map_err(ApiError::internal)? {
            return Ok(true);
        }
        match &p.email {
            Some(email) => Ok(self.store.is_staff(event_id, &email.to_lowercase()).await?),
            None => Ok(false),
        }
    }

    pub async fn scan(&self, event_id: &str, scan: &Scan) -> ApiResult<ScanResult> {
        if scan.nonce.is_empty() || scan.nonce.len() > 100 {
            return Err(ApiError::field("nonce", "must be 1 to 100 characters"));
        }
        if scan.gate.as_ref().is_some_and(|g| g.chars().count() > 50) {
            return Err(ApiError::field("gate", "must be at most 50 characters"));
        }
        let at = match &scan.scanned_at {
            Some(s) => {
                tg_events::document::parse_instant(s).map_err(|m| ApiError::field("scanned_at", m))?.min(now_ms())
            }
            None => now_ms(),
        };
        if let Some(stored) = self.replayed(event_id, &scan.nonce).await? {
            return Ok(stored);
        }
        let result = self.evaluate(event_id, scan, at).await?;
        let json = serde_json::to_string(&result).map_err(ApiError::internal)?;
        if !self.store.save_scan(&scan.nonce, event_id, result.ticket_id.as_deref(), &json).await? {
            // A concurrent retry of the same scan saved first; its answer is the answer.
            if let Some(stored) = self.replayed(event_id, &scan.nonce).await? {
                return Ok(stored);
            }
        }
        Ok(result)
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
        let Some(claims) = self.keys.verify(&scan.token).await.map_err(ApiError::internal)? else {
            return Ok(ScanResult::bare("forged"));
        };
        if claims.eid != event_id {
            return Ok(ScanResult {
                ticket_id: Some(claims.tid),
                ticket_type_id: Some(claims.tt),
                ..ScanResult::bare("wrong_event")
            });
        }
        let Some(ticket) = self.store.ticket(&claims.tid).await? else {
            return Ok(ScanResult::bare("forged"));
        };
        let base = ScanResult {
            ticket_id: Some(ticket.id.clone()),
            ticket_type_id: Some(ticket.type_id.clone()),
            ..ScanResult::bare("")
        };
        if ticket.status == "cancelled" {
            return Ok(ScanResult { result: "cancelled".into(), ..base });
        }
        let message = DomainEvent::new(
            "ticket.checked_in",
            serde_json::json!({"ticket_id": ticket.id, "event_id": event_id, "gate": scan.gate, "at": rfc3339(at)}),
        );
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
