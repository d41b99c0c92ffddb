//! Catalog rows of stored idempotent responses: look one up, store one, drop the expired.
//! Rows are kept per caller, so the same key value sent by two callers names two entries.

use chrono::{DateTime, Utc};
use duckdb::OptionalExt;

use super::{from_micros, micros, no_model_change, Catalog};
use crate::error::{ApiError, ApiResult};

/// One stored response, as the catalog keeps it (the body still sealed).
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub method: String,
    pub path: String,
    pub fingerprint: String,
    pub status: u16,
    /// The response headers a replay repeats, as (name, value) pairs.
    pub headers: Vec<(String, String)>,
    pub sealed_body: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

impl Catalog {
    /// The unexpired entry `caller` stored under `key`, if any.
    pub fn idempotent_response(
        &self,
        caller: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<Option<StoredResponse>> {
        self.query(|conn| {
            let row = conn
                .query_row(
                    "SELECT method, path, fingerprint, status, CAST(headers AS VARCHAR), sealed_body,
                            epoch_us(expires_at)
                     FROM idempotency_entries
                     WHERE caller = ? AND idem_key = ? AND expires_at > make_timestamp(?)",
                    duckdb::params![caller, key, micros(now)],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i32>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, Vec<u8>>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    },
                )
                .optional()?;
            let Some((method, path, fingerprint, status, headers, sealed_body, expires)) = row
            else {
                return Ok(None);
            };
            Ok(Some(StoredResponse {
                method,
                path,
                fingerprint,
                status: u16::try_from(status).unwrap_or(500),
                headers: serde_json::from_str(&headers).unwrap_or_default(),
                sealed_body,
                expires_at: from_micros(expires)?,
            }))
        })
    }

    /// Stores (or replaces an expired) entry of `caller` under `key`.
    pub fn store_idempotent_response(
        &self,
        caller: &str,
        key: &str,
        response: &StoredResponse,
        now: DateTime<Utc>,
    ) -> ApiResult<()> {
        let headers = serde_json::to_string(&response.headers)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.write(|tx, _| {
            tx.execute(
                "INSERT OR REPLACE INTO idempotency_entries VALUES
                 (?, ?, ?, ?, ?, ?, ?::JSON, ?, make_timestamp(?), make_timestamp(?))",
                duckdb::params![
                    caller,
                    key,
                    response.method,
                    response.path,
                    response.fingerprint,
                    i32::from(response.status),
                    headers,
                    response.sealed_body,
                    micros(now),
                    micros(response.expires_at),
                ],
            )?;
            Ok(((), no_model_change()))
        })
    }

    /// Deletes the entries expired by `now`; returns how many remain.
    pub fn purge_idempotent_responses(&self, now: DateTime<Utc>) -> ApiResult<u64> {
        self.write(|tx, _| {
            tx.execute(
                "DELETE FROM idempotency_entries WHERE expires_at <= make_timestamp(?)",
                duckdb::params![micros(now)],
            )?;
            let left: i64 =
                tx.query_row("SELECT count(*) FROM idempotency_entries", [], |r| r.get(0))?;
            Ok((u64::try_from(left).unwrap_or(0), no_model_change()))
        })
    }
}
