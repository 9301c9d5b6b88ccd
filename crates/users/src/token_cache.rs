//! Answers about tokens, remembered until they run out: a client sends the same token with every
//! request, and checking it (an Ed25519 signature, or a call to the users service) costs more than
//! the rest of a hold. Keyed by the token's SHA-256; bounded.

use std::{collections::HashMap, sync::Mutex};

use tg_platform::clock::now_ms;

/// Most tokens remembered; beyond it the expired ones are dropped, or all if none has.
const CAPACITY: usize = 100_000;

pub(crate) struct TokenCache<V> {
    entries: Mutex<HashMap<[u8; 32], (i64, V)>>,
}

impl<V> Default for TokenCache<V> {
    fn default() -> Self {
        TokenCache { entries: Mutex::default() }
    }
}

/// The cache key of a token.
pub(crate) fn digest(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

impl<V: Clone> TokenCache<V> {
    /// What was remembered of the token, unless its time is up.
    pub(crate) fn get(&self, digest: &[u8; 32]) -> Option<V> {
        let now = now_ms() / 1000;
        let entries = self.entries.lock().expect("token cache lock");
        entries.get(digest).filter(|(until, _)| *until > now).map(|(_, v)| v.clone())
    }

    /// Remember `value` for the token until `until` (Unix seconds).
    pub(crate) fn insert(&self, digest: [u8; 32], until: i64, value: V) {
        let now = now_ms() / 1000;
        let mut entries = self.entries.lock().expect("token cache lock");
        if entries.len() >= CAPACITY {
            entries.retain(|_, (until, _)| *until > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(digest, (until, value));
    }
}
