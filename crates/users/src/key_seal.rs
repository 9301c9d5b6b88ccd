//! The token signing keys encrypted at rest: AES-256-GCM under a secret from the environment
//! (`SIGNING_KEYS_SECRET`, a Kubernetes Secret in a cluster), so that a copy of the database (a
//! backup, a replica, a leaked dump) cannot mint tokens.
//!
//! A sealed key is stored as `v1:<base64(nonce ‖ ciphertext ‖ tag)>`, its key id bound in as
//! associated data (a sealed key copied onto another row does not open). Rows written before a secret
//! was set (plain base64 PKCS#8) still load. Rotating the secret: set the new one and the old one as
//! `SIGNING_KEYS_SECRET_PREVIOUS`; new keys are sealed with the new secret, old ones open with either,
//! and once the keys sealed with the old secret have aged out (rotation period + token lifetime,
//! about 31 days by default) the previous secret can go.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ring::{
    aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN},
    rand::{SecureRandom, SystemRandom},
};

const SEALED: &str = "v1:";

/// `SIGNING_KEYS_SECRET` and `SIGNING_KEYS_SECRET_PREVIOUS` as configured; `Debug` does not show them.
#[derive(Clone, Default)]
pub struct SealSecrets {
    pub current: Option<String>,
    pub previous: Option<String>,
}

impl std::fmt::Debug for SealSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealSecrets(current: {}, previous: {})", self.current.is_some(), self.previous.is_some())
    }
}

/// Seals and opens private keys; without a secret it stores them as they are (the embedded default).
pub struct KeySeal {
    current: Option<LessSafeKey>,
    previous: Option<LessSafeKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for KeySeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySeal(sealing: {}, previous: {})", self.current.is_some(), self.previous.is_some())
    }
}

/// A secret as given: 32 bytes in base64 (standard or URL-safe, padded or not), e.g. `openssl rand -base64 32`.
fn key(secret: &str, name: &str) -> anyhow::Result<LessSafeKey> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = secret.trim();
    let bytes = [&B64, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
        .filter(|b| b.len() == 32)
        .ok_or_else(|| anyhow::anyhow!("{name} must be 32 random bytes in base64 (openssl rand -base64 32)"))?;
    let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| anyhow::anyhow!("{name}: not an AES-256 key"))?;
    Ok(LessSafeKey::new(unbound))
}

impl KeySeal {
    /// From the secrets (`SIGNING_KEYS_SECRET`, `SIGNING_KEYS_SECRET_PREVIOUS`); a previous one alone is refused.
    pub fn new(current: Option<&str>, previous: Option<&str>) -> anyhow::Result<KeySeal> {
        anyhow::ensure!(
            current.is_some() || previous.is_none(),
            "SIGNING_KEYS_SECRET_PREVIOUS needs SIGNING_KEYS_SECRET (the secret new keys are sealed with)"
        );
        Ok(KeySeal {
            current: current.map(|s| key(s, "SIGNING_KEYS_SECRET")).transpose()?,
            previous: previous.map(|s| key(s, "SIGNING_KEYS_SECRET_PREVIOUS")).transpose()?,
            rng: SystemRandom::new(),
        })
    }

    /// No secret: keys are stored unencrypted.
    pub fn plain() -> KeySeal {
        KeySeal { current: None, previous: None, rng: SystemRandom::new() }
    }

    pub fn seals(&self) -> bool {
        self.current.is_some()
    }

    /// Whether `stored` is sealed (else a key stored before a secret was set).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED)
    }

    /// What to store for the PKCS#8 document of key `kid`.
    pub fn seal(&self, kid: &str, pkcs8: &[u8]) -> anyhow::Result<String> {
        let Some(key) = &self.current else { return Ok(B64.encode(pkcs8)) };
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| anyhow::anyhow!("system RNG"))?;
        let mut sealed = pkcs8.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut sealed)
            .map_err(|_| anyhow::anyhow!("sealing the signing key"))?;
        Ok(format!("{SEALED}{}", B64.encode([&nonce[..], &sealed].concat())))
    }

    /// The PKCS#8 document of key `kid` from what is stored.
    pub fn open(&self, kid: &str, stored: &str) -> anyhow::Result<Vec<u8>> {
        let Some(sealed) = stored.strip_prefix(SEALED) else { return Ok(B64.decode(stored)?) };
        let bytes = B64.decode(sealed)?;
        anyhow::ensure!(bytes.len() > NONCE_LEN, "signing key {kid}: sealed value too short");
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        for key in [&self.current, &self.previous].into_iter().flatten() {
            let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("nonce"))?;
            let mut buf = ciphertext.to_vec();
            if let Ok(plain) = key.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf) {
                return Ok(plain.to_vec());
            }
        }
        anyhow::bail!(
            "signing key {kid} is encrypted and neither SIGNING_KEYS_SECRET nor SIGNING_KEYS_SECRET_PREVIOUS opens it"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B: &str = "HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

    #[test]
    fn sealed_keys_open_only_with_their_secret_and_row() {
        let a = KeySeal::new(Some(A), None).unwrap();
        let stored = a.seal("k-1", b"private key").unwrap();
        assert!(stored.starts_with("v1:") && !stored.contains(&B64.encode(b"private key")));
        assert_eq!(a.open("k-1", &stored).unwrap(), b"private key");
        assert!(a.open("k-2", &stored).is_err(), "bound to its key id");
        assert!(KeySeal::new(Some(B), None).unwrap().open("k-1", &stored).is_err(), "another secret");
        assert!(KeySeal::plain().open("k-1", &stored).is_err(), "no secret");
        // Rotation: the new secret seals, the previous one still opens what it sealed.
        let rotated = KeySeal::new(Some(B), Some(A)).unwrap();
        assert_eq!(rotated.open("k-1", &stored).unwrap(), b"private key");
        let fresh = rotated.seal("k-3", b"newer key").unwrap();
        assert!(a.open("k-3", &fresh).is_err());
        // Keys stored before a secret was set still load.
        assert_eq!(a.open("k-0", &B64.encode(b"old plain")).unwrap(), b"old plain");
        assert!(KeySeal::new(Some("short"), None).is_err());
        assert!(KeySeal::new(None, Some(A)).is_err());
    }
}
