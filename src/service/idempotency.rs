//! Idempotent retries: which (caller, key) pairs are running now, and the stored responses,
//! sealed with a key derived from the caller's own secret before they reach the catalog.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::catalog::idempotency::StoredResponse;
use crate::catalog::{self, Catalog};
use crate::error::ApiResult;

const NONCE_LEN: usize = 12;

/// The (caller, idempotency key) pairs whose first request is still running.
type Running = Mutex<HashSet<(String, String)>>;

pub struct Idempotency {
    catalog: Arc<Catalog>,
    ttl: Duration,
    running: Arc<Running>,
}

/// A claim on one (caller, key) pair while its request runs; released when dropped, so a
/// request abandoned by its client (its future dropped) frees the key too.
pub struct Claim {
    running: Arc<Running>,
    pair: (String, String),
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.running.lock().remove(&self.pair);
    }
}

impl Idempotency {
    pub fn new(catalog: Arc<Catalog>, ttl: Duration) -> Self {
        Self {
            catalog,
            ttl,
            running: Arc::default(),
        }
    }

    /// Claims `key` for `caller`; `None` while another request holds it.
    pub fn claim(&self, caller: &str, key: &str) -> Option<Claim> {
        let pair = (caller.to_string(), key.to_string());
        if !self.running.lock().insert(pair.clone()) {
            return None;
        }
        Some(Claim {
            running: self.running.clone(),
            pair,
        })
    }

    /// The response `caller` stored under `key`, if it has not expired.
    pub async fn stored(&self, caller: &str, key: &str) -> ApiResult<Option<StoredResponse>> {
        let (catalog, caller, key) = (self.catalog.clone(), caller.to_string(), key.to_string());
        tokio::task::spawn_blocking(move || {
            catalog.idempotent_response(&caller, &key, catalog::now())
        })
        .await?
    }

    /// Stores a response for the TTL; `response.expires_at` is set here.
    pub async fn store(
        &self,
        caller: &str,
        key: &str,
        mut response: StoredResponse,
    ) -> ApiResult<()> {
        let now = catalog::now();
        response.expires_at = now + chrono::Duration::from_std(self.ttl).unwrap_or_default();
        let (catalog, caller, key) = (self.catalog.clone(), caller.to_string(), key.to_string());
        tokio::task::spawn_blocking(move || {
            catalog.store_idempotent_response(&caller, &key, &response, now)
        })
        .await?
    }

    /// Drops expired entries; returns how many are left.
    pub async fn purge(&self) -> ApiResult<u64> {
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || catalog.purge_idempotent_responses(catalog::now()))
            .await?
    }
}

/// The cipher of one caller: the key is derived from the secret the caller presents, which
/// duckbank never stores, so a stored body can be opened only by a retry of its own caller.
fn cipher(secret: &str) -> ChaCha20Poly1305 {
    let mut hasher = Sha256::new();
    hasher.update(b"duckbank idempotency v1\0");
    hasher.update(secret.as_bytes());
    ChaCha20Poly1305::new(Key::from_slice(&hasher.finalize()))
}

/// `body` encrypted and authenticated for `secret`: nonce followed by ciphertext.
pub fn seal(secret: &str, body: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    // Encryption fails only for messages beyond 256 GiB; stored bodies are far smaller.
    let mut sealed = nonce.to_vec();
    if let Ok(ciphertext) = cipher(secret).encrypt(Nonce::from_slice(&nonce), body) {
        sealed.extend(ciphertext);
    }
    sealed
}

/// The body sealed for `secret`; `None` when it was sealed for another secret or altered.
pub fn open(secret: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher(secret)
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_body_opens_only_with_its_secret() {
        let sealed = seal("proj_1_admin_secret", b"{\"api_key\":\"x\"}");
        assert!(!sealed.windows(7).any(|w| w == b"api_key"));
        assert_eq!(
            open("proj_1_admin_secret", &sealed).as_deref(),
            Some(&b"{\"api_key\":\"x\"}"[..])
        );
        assert_eq!(open("proj_1_admin_other", &sealed), None);
        assert_eq!(open("proj_1_admin_secret", &sealed[..5]), None);
    }

    #[test]
    fn a_claim_is_exclusive_until_dropped() {
        let running: Arc<Running> = Arc::default();
        let claim = |caller: &str, key: &str| {
            let pair = (caller.to_string(), key.to_string());
            running.lock().insert(pair.clone()).then(|| Claim {
                running: running.clone(),
                pair,
            })
        };
        let first = claim("admin", "k");
        assert!(first.is_some());
        assert!(claim("admin", "k").is_none());
        assert!(
            claim("key:2", "k").is_some(),
            "another caller's key is another entry"
        );
        drop(first);
        assert!(claim("admin", "k").is_some());
    }
}
