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
    /// sha256(presented key) → the project it was verified for.
    verified: Cache<[u8; 32], ProjectId>,
}

impl KeyVerifier {
    pub fn new(admin: &Secret, ttl: Duration, capacity: u64) -> Self {
        Self {
            admin_digest: digest(admin.expose()),
            verified: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
        }
    }

    pub async fn authenticate(&self, presented: &str, catalog: &Arc<Catalog>) -> ApiResult<Principal> {
        let presented_digest = digest(presented);
        // Comparing fixed-size digests keeps the comparison constant-time regardless of length.
        if bool::from(presented_digest.ct_eq(&self.admin_digest)) {
            return Ok(Principal::Admin);
        }
        if let Some(project) = self.verified.get(&presented_digest) {
            if catalog.read(|m| m.project(&project).is_some()) {
                return Ok(Principal::Project(project));
            }
        }
        let unknown = || {
            tracing::info!(key_prefix = %key_prefix(presented), "rejected an unknown API key");
            ApiError::Unauthorized("invalid API key".into())
        };
        let project = claimed_project(presented)
            .and_then(|p| ProjectId::parse(p).ok())
            .ok_or_else(unknown)?;
        let hashes: Vec<String> = catalog.read(|m| {
            m.project(&project)
                .map(|p| p.keys.iter().map(|k| k.hash.clone()).collect())
                .unwrap_or_default()
        });
        if hashes.is_empty() {
            return Err(unknown());
        }
        let clear = presented.to_string();
        let ok = tokio::task::spawn_blocking(move || hashes.iter().any(|h| verify_key(&clear, h))).await?;
        if !ok {
            return Err(unknown());
        }
        self.verified.insert(presented_digest, project.clone());
        Ok(Principal::Project(project))
    }

    /// Drops cached verifications for a project (its keys were deleted or rotated).
    pub fn forget_project(&self, project: &ProjectId) {
        let project = project.clone();
        // Only fails when closures are unsupported, which `new` enables.
        let _ = self.verified.invalidate_entries_if(move |_, p| *p == project);
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}
