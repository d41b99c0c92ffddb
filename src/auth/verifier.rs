//! Turns a presented key into a principal: constant-time admin check, then project keys
//! verified with argon2 once (bounded pool, throttled guesses) and cached by the key's SHA-256.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use moka::sync::Cache;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::keys::{claimed_projects, hash_key, key_prefix, verify_key};
use super::throttle::{client_key, FailureLimiter};
use super::usage::KeyUsage;
use super::verify_pool::VerifyPool;
use super::Principal;
use crate::catalog::{Catalog, KeyRecord, KeyStatus};
use crate::config::{Config, Secret};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::ProjectId;

pub struct KeyVerifier {
    admin_digest: [u8; 32],
    /// sha256(presented key) → the project and key record it was verified against. The
    /// record's state (revoked, expired, gone) is read from the catalog on every hit.
    verified: Cache<[u8; 32], (ProjectId, String)>,
    /// sha256 of keys that failed verification, so guessing costs one argon2 run per distinct
    /// key and cache lifetime, not one per request, and a client repeating one wrong key is not
    /// counted as guessing again.
    rejected: Cache<[u8; 32], ()>,
    /// The argon2 runs: bounded threads and queue (ADR 0019).
    pool: VerifyPool,
    /// New wrong guesses per client address (`None`: throttling off, or no address known).
    by_client: Option<FailureLimiter<IpAddr>>,
    /// New wrong guesses per claimed project, whether the project exists or not.
    by_project: Option<FailureLimiter<ProjectId>>,
    /// A hash of a key nobody has: keys of unknown projects are checked against it, so they
    /// cost and take what a wrong key of an existing project does.
    dummy_hash: String,
    /// One lock per key being verified right now: concurrent requests with the same key (a
    /// client's whole connection pool when its cache entry expires) wait for one argon2 run
    /// and read its outcome from the caches, instead of each queueing a run of their own.
    in_flight: InFlight,
    /// Last use of each key, written to the catalog in batches.
    pub usage: Arc<KeyUsage>,
}

/// How long a failed verification is remembered.
const REJECTED_TTL: Duration = Duration::from_secs(60);

/// How many client addresses and claimed projects the throttles remember at most.
const THROTTLE_CAPACITY: u64 = 100_000;

/// What a caller whose verification was refused for load is told to wait.
const BUSY_RETRY_SECS: u64 = 1;

/// How long a refused (429) key check is held before it is answered. A client that retries
/// at once would otherwise turn cheap refusals into a request flood of its own; a pending
/// answer costs the server one idle future.
const REFUSAL_DELAY: Duration = Duration::from_secs(1);

impl KeyVerifier {
    /// Blocking: hashes the dummy key once (one argon2 run) and starts the verification threads.
    pub fn new(admin: &Secret, config: &Config) -> std::io::Result<Self> {
        let capacity = config.key_cache_capacity;
        let threads = match config.key_verify_concurrency {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let per_minute = config.auth_failures_per_minute;
        Ok(Self {
            admin_digest: digest(admin.expose()),
            verified: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(config.key_cache_ttl_secs))
                .support_invalidation_closures()
                .build(),
            rejected: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(REJECTED_TTL)
                .build(),
            pool: VerifyPool::new(threads, config.key_verify_queue)?,
            by_client: FailureLimiter::new(per_minute, THROTTLE_CAPACITY),
            by_project: FailureLimiter::new(per_minute, THROTTLE_CAPACITY),
            dummy_hash: hash_key(&format!("proj_0_admin_{}", hex::encode(rand_bytes()))),
            in_flight: Mutex::new(HashMap::new()),
            usage: Arc::default(),
        })
    }

    /// The principal of `presented`, sent from `client` (the peer address, when known).
    ///
    /// Order: admin key, verified-key cache (no limits apply to keys already verified), known
    /// wrong keys (401, not counted again), throttles (429), then one argon2 check on the
    /// verification pool (429 when its queue is full). An unknown project and a wrong secret
    /// for an existing one take the same path, cost and answer.
    pub async fn authenticate(
        &self,
        presented: &str,
        client: Option<IpAddr>,
        catalog: &Arc<Catalog>,
    ) -> ApiResult<Principal> {
        let presented_digest = digest(presented);
        // Comparing fixed-size digests keeps the comparison constant-time regardless of length.
        if bool::from(presented_digest.ct_eq(&self.admin_digest)) {
            return Ok(Principal::Admin);
        }
        if let Some(principal) = self.cached(&presented_digest, catalog)? {
            return Ok(principal);
        }
        // Single flight: wait for a verification of the same key already running, then look
        // in the caches again before running one.
        let flight = Flight::join(&self.in_flight, presented_digest);
        let _turn = flight.turn.lock().await;
        self.verify(presented, presented_digest, client, catalog)
            .await
    }

    /// The principal of a key verified earlier whose record still exists; 401 when that key
    /// has been revoked or has expired since.
    fn cached(
        &self,
        presented_digest: &[u8; 32],
        catalog: &Arc<Catalog>,
    ) -> ApiResult<Option<Principal>> {
        let Some((project, key_id)) = self.verified.get(presented_digest) else {
            return Ok(None);
        };
        // The key record must still exist: a deleted (and maybe re-created) project has new
        // key ids, so a stale entry can never grant access.
        let record = catalog.read(|m| {
            m.project(&project)
                .and_then(|p| p.keys.iter().find(|k| k.id == key_id).cloned())
        });
        match record {
            Some(record) => self.admit(record).map(Some),
            None => {
                self.verified.invalidate(presented_digest);
                Ok(None)
            }
        }
    }

    /// The principal of a key that matched, if it is active now.
    fn admit(&self, record: Arc<KeyRecord>) -> ApiResult<Principal> {
        match record.status(chrono::Utc::now()) {
            KeyStatus::Active => {
                self.usage.touch(&record);
                Ok(Principal::Key(record))
            }
            KeyStatus::Revoked(at) => Err(ApiError::unauthorized(format!(
                "API key has been revoked (at {})",
                at.to_rfc3339()
            ))),
            KeyStatus::Expired(at) => Err(ApiError::unauthorized(format!(
                "API key expired at {}",
                at.to_rfc3339()
            ))),
        }
    }

    /// Everything after the caches of `authenticate`, for one key at a time.
    async fn verify(
        &self,
        presented: &str,
        presented_digest: [u8; 32],
        client: Option<IpAddr>,
        catalog: &Arc<Catalog>,
    ) -> ApiResult<Principal> {
        // Verified by the request this one waited for.
        if let Some(principal) = self.cached(&presented_digest, catalog)? {
            return Ok(principal);
        }
        let unknown = || {
            tracing::info!(key_prefix = %key_prefix(presented), "rejected an unknown API key");
            ApiError::unauthorized("invalid API key")
        };
        if self.rejected.contains_key(&presented_digest) {
            return Err(unknown());
        }
        let client = client.map(client_key);
        let projects: Vec<ProjectId> = claimed_projects(presented)
            .into_iter()
            .filter_map(|p| ProjectId::parse(p).ok())
            .collect();
        if let Err(refused) = self.check_throttles(client, projects.first()) {
            tokio::time::sleep(REFUSAL_DELAY).await;
            return Err(refused);
        }
        if projects.is_empty() {
            // Not a project key and not the admin key: no argon2 to run, but still a guess
            // (at the admin key), so it counts against the client.
            self.record_failure(presented_digest, client, None);
            return Err(unknown());
        }
        // Only the keys whose stored prefix (public part and 4 secret characters) matches are
        // checked: one argon2 run for any number of keys in the project, revoked ones included
        // so that their holder is told the key is revoked.
        let prefix = key_prefix(presented);
        let mut candidates: Vec<(Option<Arc<KeyRecord>>, String)> = catalog.read(|m| {
            projects
                .iter()
                .filter_map(|p| m.project(p))
                .flat_map(|p| p.keys.iter())
                .filter(|k| k.prefix == prefix)
                .map(|k| (Some(k.clone()), k.hash.clone()))
                .collect()
        });
        if candidates.is_empty() {
            // Unknown project or key: check against the dummy hash, which never matches, so
            // the answer comes after the same work and queue as for a wrong secret.
            candidates.push((None, self.dummy_hash.clone()));
        }
        let clear = presented.to_string();
        let ran = self
            .pool
            .run(move || {
                candidates
                    .into_iter()
                    .find(|(_, hash)| verify_key(&clear, hash))
                    .and_then(|(record, _)| record)
            })
            .await;
        let Ok(outcome) = ran else {
            tracing::debug!(key_prefix = %prefix, "key verification queue full");
            crate::telemetry::throttled("auth_queue");
            tokio::time::sleep(REFUSAL_DELAY).await;
            return Err(ApiError::retry_after(
                ErrorCode::RateLimited,
                "too many key verifications in progress; retry later",
                BUSY_RETRY_SECS,
            ));
        };
        let matched = outcome.ok_or_else(|| ApiError::internal("a key verification panicked"))?;
        crate::telemetry::key_verified(matched.is_some());
        let Some(record) = matched else {
            self.record_failure(presented_digest, client, projects.into_iter().next());
            return Err(unknown());
        };
        self.verified.insert(
            presented_digest,
            (record.grant.project.clone(), record.id.clone()),
        );
        self.admit(record)
    }

    /// 429 when the client or the claimed project has used up its wrong guesses.
    fn check_throttles(
        &self,
        client: Option<IpAddr>,
        project: Option<&ProjectId>,
    ) -> ApiResult<()> {
        let by_client = client
            .zip(self.by_client.as_ref())
            .and_then(|(addr, limiter)| limiter.blocked(&addr));
        let by_project = project
            .zip(self.by_project.as_ref())
            .and_then(|(p, limiter)| limiter.blocked(p));
        let Some(wait) = by_client.max(by_project) else {
            return Ok(());
        };
        tracing::debug!(client = ?client, project = ?project, "throttled key checks");
        crate::telemetry::throttled("auth_failures");
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Err(ApiError::retry_after(
            ErrorCode::RateLimited,
            "too many failed API key checks; retry later",
            secs.max(1),
        ))
    }

    /// Remembers a wrong key and counts it against the client and the claimed project.
    fn record_failure(&self, digest: [u8; 32], client: Option<IpAddr>, project: Option<ProjectId>) {
        self.rejected.insert(digest, ());
        if let Some((addr, limiter)) = client.zip(self.by_client.as_ref()) {
            limiter.record(addr);
        }
        if let Some((p, limiter)) = project.zip(self.by_project.as_ref()) {
            limiter.record(p);
        }
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

type InFlight = Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>;

/// A request's share in the verification of one key. Dropped (answered, or the client went
/// away mid-wait), the last share removes the key's entry, so the map holds only keys being
/// verified right now.
struct Flight<'a> {
    map: &'a InFlight,
    digest: [u8; 32],
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> Flight<'a> {
    fn join(map: &'a InFlight, digest: [u8; 32]) -> Self {
        let turn = map.lock().entry(digest).or_default().clone();
        Self { map, digest, turn }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock();
        // Only the map and this share hold it: nobody else waits, the entry can go.
        if Arc::strong_count(&self.turn) == 2 {
            map.remove(&self.digest);
        }
    }
}

fn rand_bytes() -> [u8; 16] {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}
