//! Ticket tokens: EdDSA-signed JWTs, one Ed25519 key per event, so a scanner holding the event's
//! public key verifies tickets offline. The QR code carries the token.

use std::{collections::HashMap, sync::Arc};

use base64::{engine::general_purpose::STANDARD as B64, engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::{
    rand::{SecureRandom, SystemRandom},
    signature::{Ed25519KeyPair, KeyPair},
};
use serde::{Deserialize, Serialize};
use tg_platform::{clock::now_ms, db::Db, with_db};
use tokio::sync::RwLock;

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct TicketClaims {
    /// Ticket id.
    pub tid: String,
    /// Event id.
    pub eid: String,
    /// Ticket type id.
    pub tt: String,
    /// Short code printed on the ticket.
    pub code: String,
    pub iat: i64,
}

struct EventKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_b64url: String,
}

/// Per-event signing keys, created on first use and cached.
pub struct TicketKeys {
    db: Db,
    rng: SystemRandom,
    cache: RwLock<HashMap<String, Arc<EventKey>>>,
}

impl TicketKeys {
    pub fn new(db: Db) -> Self {
        TicketKeys { db, rng: SystemRandom::new(), cache: RwLock::default() }
    }

    async fn key(&self, event_id: &str, create: bool) -> anyhow::Result<Option<Arc<EventKey>>> {
        if let Some(k) = self.cache.read().await.get(event_id) {
            return Ok(Some(k.clone()));
        }
        let load = "SELECT kid, private_pkcs8, public_key FROM bookings_event_keys WHERE event_id = $1";
        let mut row: Option<(String, String, String)> =
            with_db!(&self.db, pool => sqlx::query_as(load).bind(event_id).fetch_optional(pool).await)?;
        if row.is_none() && create {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&self.rng).map_err(|_| anyhow::anyhow!("key generation"))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("key parse"))?;
            let kid = format!("tk-{}", uuid::Uuid::now_v7().simple());
            // Concurrent first confirmations may race; the first insert wins and everyone reads it back.
            with_db!(&self.db, pool => sqlx::query(
                "INSERT INTO bookings_event_keys (event_id, kid, private_pkcs8, public_key, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING")
                .bind(event_id).bind(&kid).bind(B64.encode(pkcs8.as_ref())).bind(B64URL.encode(pair.public_key().as_ref()))
                .bind(now_ms()).execute(pool).await.map(|_| ()))?;
            row = with_db!(&self.db, pool => sqlx::query_as(load).bind(event_id).fetch_optional(pool).await)?;
        }
        let Some((kid, private, public)) = row else { return Ok(None) };
        let key = Arc::new(EventKey {
            kid,
            encoding: EncodingKey::from_ed_der(&B64.decode(private)?),
            decoding: DecodingKey::from_ed_components(&public)?,
            public_b64url: public,
        });
        self.cache.write().await.insert(event_id.to_owned(), key.clone());
        Ok(Some(key))
    }

    pub async fn sign(&self, claims: &TicketClaims) -> anyhow::Result<String> {
        let key = self.key(&claims.eid, true).await?.expect("created");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        header.typ = Some("ticket+jwt".into());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// Verify a scanned token. `None` when it is not a genuine ticket of any event (forged or garbage).
    pub async fn verify(&self, token: &str) -> anyhow::Result<Option<TicketClaims>> {
        // The event is read from the unverified payload only to pick the key; the signature decides.
        let Some(eid) = unverified_event(token) else { return Ok(None) };
        let Some(key) = self.key(&eid, false).await? else { return Ok(None) };
        let mut v = Validation::new(Algorithm::EdDSA);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        match jsonwebtoken::decode::<TicketClaims>(token, &key.decoding, &v) {
            Ok(d) if d.claims.eid == eid => Ok(Some(d.claims)),
            _ => Ok(None),
        }
    }

    /// The event's public key as a JWK Set, for offline scanners.
    pub async fn public_jwks(&self, event_id: &str) -> anyhow::Result<serde_json::Value> {
        let key = self.key(event_id, true).await?.expect("created");
        Ok(serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": key.kid, "x": key.public_b64url
        }]}))
    }

    /// A short random ticket code (10 characters of an unambiguous alphabet).
    pub fn new_code(&self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut bytes = [0u8; 10];
        self.rng.fill(&mut bytes).expect("system RNG");
        bytes.iter().map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect()
    }
}

fn unverified_event(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()?;
    claims.get("eid")?.as_str().map(str::to_owned)
}

/// The token as an SVG QR code, 240 px square with the standard 4-module quiet zone. Drawn as one
/// path of horizontal runs in module units: under 40% of the size of the `qrcode` crate's own SVG
/// (one square per module in pixels), which matters on a phone showing several tickets.
pub fn qr_svg(token: &str) -> anyhow::Result<String> {
    use std::fmt::Write;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::with_error_correction_level(token.as_bytes(), qrcode::EcLevel::M)?;
    let (width, colors) = (code.width(), code.to_colors());
    let size = width + 2 * QUIET;
    let mut path = String::with_capacity(width * width * 2);
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            let run = row[x..].iter().take_while(|c| **c == qrcode::Color::Dark).count();
            if run > 0 {
                let _ = write!(path, "M{} {}h{run}v1h-{run}z", x + QUIET, y + QUIET);
            }
            x += run.max(1);
        }
    }
    Ok(format!(
        r##"<?xml version="1.0" encoding="UTF-8"?><svg xmlns="http://www.w3.org/2000/svg" width="240" height="240" viewBox="0 0 {size} {size}" shape-rendering="crispEdges"><rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{path}"/></svg>"##
    ))
}

/// Drawn QR codes by ticket id. Drawing one costs milliseconds of CPU (the QR mask scoring), and a
/// ticket's token never changes, so "my tickets" pages mostly draw nothing.
#[derive(Default)]
pub struct QrCache {
    drawn: std::sync::Mutex<HashMap<String, Arc<str>>>,
}

/// Most codes kept (about 20 KB each, so at most ~40 MB); when full the cache starts over.
const QR_CACHE_MAX: usize = 2000;

impl QrCache {
    pub fn get_or_draw(&self, ticket_id: &str, token: &str) -> anyhow::Result<Arc<str>> {
        if let Some(svg) = self.drawn.lock().expect("qr cache lock").get(ticket_id) {
            return Ok(svg.clone());
        }
        let svg: Arc<str> = qr_svg(token)?.into();
        let mut drawn = self.drawn.lock().expect("qr cache lock");
        if drawn.len() >= QR_CACHE_MAX {
            drawn.clear();
        }
        drawn.insert(ticket_id.to_owned(), svg.clone());
        Ok(svg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_codes_draw_exactly_the_dark_modules_and_are_kept() {
        // A realistic token: random bytes, base64url, the length of ours.
        let random: Vec<u8> = (0..240u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let token = format!("eyJhbGciOiJFZERTQSIsInR5cCI6InRpY2tldCtqd3QifQ.{}", B64URL.encode(random));
        let svg = qr_svg(&token).unwrap();
        let code = qrcode::QrCode::with_error_correction_level(token.as_bytes(), qrcode::EcLevel::M).unwrap();
        let width = code.width();
        let size = width + 8;
        assert!(svg.contains(&format!(r#"viewBox="0 0 {size} {size}""#)));

        // Paint every "M{x} {y}h{n}v1h-{n}z" run onto a grid with the quiet zone and compare it with the code.
        let path = svg.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
        let mut painted = vec![false; size * size];
        for run in path.split('M').filter(|r| !r.is_empty()) {
            let (xy, rest) = run.split_once('h').unwrap();
            let (x, y) = xy.split_once(' ').unwrap();
            let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
            let n: usize = rest.split('v').next().unwrap().parse().unwrap();
            assert_eq!(rest, format!("{n}v1h-{n}z"));
            for cell in &mut painted[y * size + x..y * size + x + n] {
                assert!(!*cell, "drawn twice");
                *cell = true;
            }
        }
        let colors = code.to_colors();
        for y in 0..size {
            for x in 0..size {
                let inside = (4..width + 4).contains(&x) && (4..width + 4).contains(&y);
                let dark = inside && colors[(y - 4) * width + (x - 4)] == qrcode::Color::Dark;
                assert_eq!(painted[y * size + x], dark, "module ({x}, {y})");
            }
        }
        assert!(svg.len() < 25_000, "{} bytes", svg.len());

        let cache = QrCache::default();
        let first = cache.get_or_draw("t1", &token).unwrap();
        assert!(Arc::ptr_eq(&first, &cache.get_or_draw("t1", &token).unwrap()), "drawn once");
        assert_eq!(&*first, svg.as_str());
    }
}
