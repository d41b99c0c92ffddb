//! The S3 face's secrets (ADR 0032): per-key credentials sealed under a server key kept in
//! `DATA_DIR/s3.key` (0600), and the presign secret derived from the same key.

use std::path::Path;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

use super::blocking;
use crate::auth::Principal;
use crate::catalog::s3::S3Credential;
use crate::catalog::{api_keys::existing_key, Catalog};
use crate::error::{ApiError, ApiResult};
use crate::names::ProjectId;

const NONCE_LEN: usize = 12;
/// Access key ids of presigned URLs from `POST /s3/{bucket}/presign` start with this; the rest
/// is the issuing API key's id (or `admin`), and the secret is derived from the server key.
pub const PRESIGN_PREFIX: &str = "DBPRESIGN-";

pub struct S3Secrets {
    catalog: Arc<Catalog>,
    seal: ChaCha20Poly1305,
    presign: [u8; 32],
}

/// A newly issued credential; the secret is shown once.
pub struct IssuedCredential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub record: S3Credential,
}

fn derive(server_key: &[u8], purpose: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(purpose.as_bytes());
    hasher.update([0]);
    hasher.update(server_key);
    hasher.finalize().into()
}

impl S3Secrets {
    /// Reads `DATA_DIR/s3.key`, or creates it (32 random bytes, hex, mode 0600).
    pub fn open(data_dir: &Path, catalog: Arc<Catalog>) -> std::io::Result<Self> {
        let path = data_dir.join("s3.key");
        let existing = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| hex::decode(s.trim()).ok())
            .filter(|k| k.len() == 32);
        let key = match existing {
            Some(k) => k,
            None => {
                let mut bytes = [0u8; 32];
                OsRng.fill_bytes(&mut bytes);
                crate::auth::admin_key::write_private(&path, hex::encode(bytes).as_bytes())?;
                bytes.to_vec()
            }
        };
        let seal_key = derive(&key, "duckbank s3 credential seal v1");
        Ok(Self {
            catalog,
            seal: ChaCha20Poly1305::new(Key::from_slice(&seal_key)),
            presign: derive(&key, "duckbank s3 presign v1"),
        })
    }

    fn seal(&self, secret: &str) -> ApiResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .seal
            .encrypt(Nonce::from_slice(&nonce), secret.as_bytes())
            .map_err(|_| ApiError::internal("sealing an S3 secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(out)
    }

    fn open_sealed(&self, sealed: &[u8]) -> Option<String> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let clear = self.seal.decrypt(Nonce::from_slice(nonce), body).ok()?;
        String::from_utf8(clear).ok()
    }

    /// Issues a credential for API key `api_key_id` of `project` (404 for an unknown key).
    pub async fn issue(
        &self,
        project: &ProjectId,
        api_key_id: &str,
    ) -> ApiResult<IssuedCredential> {
        self.catalog.read(|m| {
            let key = existing_key(m, project, api_key_id)?;
            if key.is_active(crate::catalog::now()) {
                Ok(())
            } else {
                Err(ApiError::bad_request(format!(
                    "API key '{api_key_id}' is revoked or expired"
                )))
            }
        })?;
        let access_key_id = format!("DB{}", random_text(18).to_ascii_uppercase());
        let secret_access_key = random_text(40);
        let record = S3Credential {
            access_key_id: access_key_id.clone(),
            project_id: project.clone(),
            api_key_id: api_key_id.to_string(),
            sealed_secret: self.seal(&secret_access_key)?,
            created_at: crate::catalog::now(),
        };
        let (catalog, rec) = (self.catalog.clone(), record.clone());
        blocking(move || catalog.insert_s3_credential(&rec)).await?;
        Ok(IssuedCredential {
            access_key_id,
            secret_access_key,
            record,
        })
    }

    /// The caller an access key id stands for and its secret; `None` when unknown, or when
    /// the API key behind it is revoked or expired.
    pub async fn resolve(&self, access_key_id: &str) -> ApiResult<Option<(Principal, String)>> {
        if let Some(key_id) = access_key_id.strip_prefix(PRESIGN_PREFIX) {
            let principal = if key_id == "admin" {
                Some(Principal::Admin)
            } else {
                self.active_key(None, key_id)
            };
            return Ok(principal.map(|p| (p, self.presign_secret(key_id))));
        }
        let (catalog, id) = (self.catalog.clone(), access_key_id.to_string());
        let Some(cred) = blocking(move || catalog.s3_credential(&id)).await? else {
            return Ok(None);
        };
        let Some(secret) = self.open_sealed(&cred.sealed_secret) else {
            tracing::warn!(
                access_key_id,
                "an S3 secret does not open: was DATA_DIR/s3.key replaced?"
            );
            return Ok(None);
        };
        Ok(self
            .active_key(Some(&cred.project_id), &cred.api_key_id)
            .map(|p| (p, secret)))
    }

    fn active_key(&self, project: Option<&ProjectId>, key_id: &str) -> Option<Principal> {
        let now = crate::catalog::now();
        self.catalog.read(|m| {
            m.projects
                .values()
                .filter(|p| project.is_none_or(|want| *want == p.id))
                .flat_map(|p| p.keys.iter())
                .find(|k| k.id == key_id && k.is_active(now))
                .map(|k| Principal::Key(k.clone()))
        })
    }

    /// The secret presigned URLs of the reference route are signed with, per issuing key, so
    /// a URL can only act as the key that asked for it and dies with it.
    pub fn presign_secret(&self, key_id: &str) -> String {
        hex::encode(derive(&self.presign, key_id))
    }
}

fn random_text(len: usize) -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
