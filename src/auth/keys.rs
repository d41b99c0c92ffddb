//! Project key format (`proj_{project}_admin_{32 hex}`), generation, argon2id hashing and checks.
//! Pure functions: no I/O, no caching (see `verifier`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::rngs::OsRng;
use rand::RngCore;

use crate::names::ProjectId;

const SECRET_HEX_LEN: usize = 32;
const SCOPE_MARKER: &str = "_admin_";

/// A freshly generated project key: the clear text (shown once) and what we store.
pub struct NewKey {
    pub clear: String,
    pub prefix: String,
    pub hash: String,
}

/// Generates `proj_{id}_admin_{32 hex}` from the OS RNG and hashes it.
pub fn generate_project_key(project: &ProjectId) -> NewKey {
    let mut secret = [0u8; SECRET_HEX_LEN / 2];
    OsRng.fill_bytes(&mut secret);
    let clear = format!("proj_{project}{SCOPE_MARKER}{}", hex::encode(secret));
    NewKey {
        prefix: key_prefix(&clear),
        hash: hash_key(&clear),
        clear,
    }
}

/// argon2id PHC string with the crate's default (OWASP) parameters and a random salt.
pub fn hash_key(clear: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(clear.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Hashing with default parameters and a fresh salt cannot fail; keep a non-panicking
        // fallback that can never verify.
        .unwrap_or_default()
}

/// Checks a clear key against a stored PHC string (slow on purpose: tens of milliseconds).
pub fn verify_key(clear: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(clear.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The project a presented key claims to belong to, if it has the project-key shape.
pub fn claimed_project(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix("proj_")?;
    let (project, secret) = rest.rsplit_once(SCOPE_MARKER)?;
    let well_formed = secret.len() == SECRET_HEX_LEN
        && secret.bytes().all(|b| b.is_ascii_hexdigit())
        && !project.is_empty();
    well_formed.then_some(project)
}

/// What may appear in logs and API listings: the key without its secret part, plus 4 hex chars.
pub fn key_prefix(presented: &str) -> String {
    match presented.rsplit_once(SCOPE_MARKER) {
        Some((head, secret)) => format!("{head}{SCOPE_MARKER}{}", secret.get(..4).unwrap_or("")),
        // Not a project key (perhaps a mistyped admin key): reveal nothing of it.
        None => format!("<{} chars, not a project key>", presented.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_reference_shape_and_verify() {
        let project = ProjectId::parse("123").unwrap();
        let key = generate_project_key(&project);
        assert!(key.clear.starts_with("proj_123_admin_"));
        assert_eq!(key.clear.len(), "proj_123_admin_".len() + 32);
        assert_eq!(claimed_project(&key.clear), Some("123"));
        assert!(key.hash.starts_with("$argon2id$"));
        assert!(verify_key(&key.clear, &key.hash));
        assert!(!verify_key(
            "proj_123_admin_00000000000000000000000000000000",
            &key.hash
        ));
        assert!(!key.prefix.contains(&key.clear[20..]));
    }

    #[test]
    fn claimed_project_rejects_malformed_keys() {
        assert_eq!(
            claimed_project("proj_a_admin_b_admin_0123456789abcdef0123456789abcdef"),
            Some("a_admin_b")
        );
        for bad in [
            "",
            "proj__admin_0123456789abcdef0123456789abcdef",
            "proj_1_admin_short",
            "proj_1_admin_0123456789abcdef0123456789abcdeg",
            "key_1_admin_0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(claimed_project(bad), None, "{bad}");
        }
    }

    #[test]
    fn garbage_hashes_never_verify() {
        assert!(!verify_key("x", "not a phc string"));
        assert!(!verify_key("x", ""));
    }
}
