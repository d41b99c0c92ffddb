//! Idempotent retries: which (caller, key) pairs are running now, and the stored responses,
//! sealed with a key derived from the caller's own secret before they reach the catalog.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::catalog::idempotency::StoredResponse;
use crate::catalog::{self, Catalog};
use crate::error::ApiResult;

const NONCE_LEN: usize = 12;

type Pair = (String, String);

/// What is in flight: the (caller, key) pairs whose first request is running, and the answers
/// on their way to the catalog (served from here meanwhile), with a signal for when none are.
#[derive(Default)]
struct InFlight {
    running: Mutex<HashSet<Pair>>,
    storing: Mutex<HashMap<Pair, StoredResponse>>,
    stored_all: Notify,
}

pub struct Idempotency {
    catalog: Arc<Catalog>,
    ttl: Duration,
    in_flight: Arc<InFlight>,
}

/// A claim on one (caller, key) pair while its request runs; released when dropped, so a
/// request abandoned by its client (its future dropped) frees the key too.
pub struct Claim {
    in_flight: Arc<InFlight>,
    pair: Pair,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.in_flight.running.lock().remove(&self.pair);
    }
}

impl Idempotency {
    pub fn new(catalog: Arc<Catalog>, ttl: Duration) -> Self {
        Self {
            catalog,
            ttl,
            in_flight: Arc::default(),
        }
    }

    /// Claims `key` for `caller`; `None` while another request holds it.
    pub fn claim(&self, caller: &str, key: &str) -> Option<Claim> {
        claim(&self.in_flight, (caller.to_string(), key.to_string()))
    }

    /// The response `caller` stored under `key`, if it has not expired.
    pub async fn stored(&self, caller: &str, key: &str) -> ApiResult<Option<StoredResponse>> {
        let pair = (caller.to_string(), key.to_string());
        if let Some(storing) = self.in_flight.storing.lock().get(&pair) {
            return Ok(Some(storing.clone()));
        }
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || {
            catalog.idempotent_response(&pair.0, &pair.1, catalog::now())
        })
        .await?
    }

    /// Keeps the answer of the claimed request for the TTL (`response.expires_at` is set
    /// here). The catalog write happens in the background, so the client does not wait for it;
    /// until it is done, a retry is answered from memory.
    pub fn keep(&self, claim: Claim, mut response: StoredResponse) {
        let now = catalog::now();
        response.expires_at = now + chrono::Duration::from_std(self.ttl).unwrap_or_default();
        let pair = claim.pair.clone();
        self.in_flight
            .storing
            .lock()
            .insert(pair.clone(), response.clone());
        drop(claim);
        let (catalog, in_flight) = (self.catalog.clone(), self.in_flight.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = catalog.store_idempotent_response(&pair.0, &pair.1, &response, now) {
                tracing::warn!(error = ?e, "could not store an idempotent response");
            }
            let mut storing = in_flight.storing.lock();
            storing.remove(&pair);
            if storing.is_empty() {
                in_flight.stored_all.notify_waiters();
            }
        });
    }

    /// Waits (at most `limit`) until every kept answer is in the catalog: at shutdown, after
    /// the last connection closed, so no stored answer is lost.
    pub async fn drain(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let stored_all = self.in_flight.stored_all.notified();
                if self.in_flight.storing.lock().is_empty() {
                    return;
                }
                stored_all.await;
            }
        })
        .await;
    }

    /// Drops expired entries; returns how many are left.
    pub async fn purge(&self) -> ApiResult<u64> {
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || catalog.purge_idempotent_responses(catalog::now()))
            .await?
    }
}

fn claim(in_flight: &Arc<InFlight>, pair: Pair) -> Option<Claim> {
    if !in_flight.running.lock().insert(pair.clone()) {
        return None;
    }
    Some(Claim {
        in_flight: in_flight.clone(),
        pair,
    })
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
        let in_flight: Arc<InFlight> = Arc::default();
        let pair = |caller: &str, key: &str| (caller.to_string(), key.to_string());
        let first = claim(&in_flight, pair("admin", "k"));
        assert!(first.is_some());
        assert!(claim(&in_flight, pair("admin", "k")).is_none());
        assert!(
            claim(&in_flight, pair("key:2", "k")).is_some(),
            "another caller's key is another entry"
        );
        drop(first);
        assert!(claim(&in_flight, pair("admin", "k")).is_some());
    }
}
