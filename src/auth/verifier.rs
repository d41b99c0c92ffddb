//! Turns a presented key into a principal: constant-time admin check, then project keys
//! verified with argon2 once and cached (bounded, TTL) by the SHA-256 of the key.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::keys::{claimed_project, key_prefix, verify_key};
use super::Principal;
use crate::catalog::Catalog;
use crate::config::Secret;
use crate::error::{ApiError, ApiResult};
use crate::names::ProjectId;

pub struct KeyVerifier {
    admin_digest: [u8; 32],
    /// sha256(presented key) → the project and key record it was verified against.
    verified: Cache<[u8; 32], (ProjectId, String)>,
    /// sha256 of well-formed keys that failed verification, so guessing costs one argon2
    /// run per distinct key and cache lifetime, not one per request.
    rejected: Cache<[u8; 32], ()>,
}

/// How long a failed verification is remembered.
const REJECTED_TTL: Duration = Duration::from_secs(60);

impl KeyVerifier {
    pub fn new(admin: &Secret, ttl: Duration, capacity: u64) -> Self {
        Self {
            admin_digest: digest(admin.expose()),
            verified: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
            rejected: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(REJECTED_TTL)
                .build(),
        }
    }

    pub async fn authenticate(
        &self,
        presented: &str,
        catalog: &Arc<Catalog>,
    ) -> ApiResult<Principal> {
        let presented_digest = digest(presented);
        // Comparing fixed-size digests keeps the comparison constant-time regardless of length.
        if bool::from(presented_digest.ct_eq(&self.admin_digest)) {
            return Ok(Principal::Admin);
        }
        if let Some((project, key_id)) = self.verified.get(&presented_digest) {
            // The key record must still exist: a deleted (and maybe re-created) project
            // has new key ids, so a stale entry can never grant access.
            let live = catalog.read(|m| {
                m.project(&project)
                    .is_some_and(|p| p.keys.iter().any(|k| k.id == key_id))
            });
            if live {
                return Ok(Principal::Project(project));
            }
            self.verified.invalidate(&presented_digest);
        }
        let unknown = || {
            tracing::info!(key_prefix = %key_prefix(presented), "rejected an unknown API key");
            ApiError::unauthorized("invalid API key")
        };
        let project = claimed_project(presented)
            .and_then(|p| ProjectId::parse(p).ok())
            .ok_or_else(unknown)?;
        if self.rejected.contains_key(&presented_digest) {
            return Err(unknown());
        }
        let keys: Vec<(String, String)> = catalog.read(|m| {
            m.project(&project)
                .map(|p| {
                    p.keys
                        .iter()
                        .map(|k| (k.id.clone(), k.hash.clone()))
                        .collect()
                })
                .unwrap_or_default()
        });
        if keys.is_empty() {
            return Err(unknown());
        }
        let clear = presented.to_string();
        let matched = tokio::task::spawn_blocking(move || {
            keys.into_iter()
                .find(|(_, hash)| verify_key(&clear, hash))
                .map(|(id, _)| id)
        })
        .await?;
        let Some(key_id) = matched else {
            self.rejected.insert(presented_digest, ());
            return Err(unknown());
        };
        self.verified
            .insert(presented_digest, (project.clone(), key_id));
        Ok(Principal::Project(project))
    }

    /// Drops cached verifications for a project (its keys were deleted or rotated).
    pub fn forget_project(&self, project: &ProjectId) {
        let project = project.clone();
        // Only fails when closures are unsupported, which `new` enables.
        let _ = self
            .verified
            .invalidate_entries_if(move |_, (p, _)| *p == project);
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}
