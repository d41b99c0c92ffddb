//! API key formats (`proj_{project}_admin_{32 hex}`, `proj_{project}_branch_{branch}_{admin|read}_{32 hex}`),
//! generation, argon2id hashing and checks. Pure functions: no I/O, no caching (see `verifier`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::rngs::OsRng;
use rand::RngCore;

use super::scope::KeyScope;
use crate::names::{BranchId, ProjectId};

const SECRET_HEX_LEN: usize = 32;
/// Hex characters of the secret kept in the stored prefix: enough to tell a project's keys
/// apart when one is presented (so one argon2 run, not one per key), too few to help guessing.
const PREFIX_SECRET_CHARS: usize = 4;

/// A freshly generated key: the clear text (shown once) and what we store.
pub struct NewKey {
    pub clear: String,
    pub prefix: String,
    pub hash: String,
}

/// The first key of a project: `proj_{id}_admin_{32 hex}`.
pub fn generate_project_key(project: &ProjectId) -> NewKey {
    generate_key(project, KeyScope::ProjectAdmin, None)
}

/// A key of `scope` (branch scopes name their branch in the key), from the OS RNG, hashed.
pub fn generate_key(project: &ProjectId, scope: KeyScope, branch: Option<BranchId>) -> NewKey {
    let mut secret = [0u8; SECRET_HEX_LEN / 2];
    OsRng.fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    let branch = branch.unwrap_or(BranchId::Default);
    let clear = match scope {
        KeyScope::ProjectAdmin => format!("proj_{project}_admin_{secret}"),
        KeyScope::BranchAdmin => format!("proj_{project}_branch_{branch}_admin_{secret}"),
        KeyScope::BranchRead => format!("proj_{project}_branch_{branch}_read_{secret}"),
    };
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

/// `proj_…` and the secret, when `presented` has the shape of one of our keys.
fn split_key(presented: &str) -> Option<(&str, &str)> {
    let (head, secret) = presented.rsplit_once('_')?;
    let well_formed = head.starts_with("proj_")
        && secret.len() == SECRET_HEX_LEN
        && secret.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then_some((head, secret))
}

/// The projects a presented key may belong to. Project ids may contain `_`, so
/// `proj_a_branch_b_admin_…` is project `a_branch_b`'s admin key or project `a`'s branch key
/// for `b`: every reading is returned, and the stored prefixes decide.
pub fn claimed_projects(presented: &str) -> Vec<&str> {
    let Some((head, _)) = split_key(presented) else {
        return Vec::new();
    };
    let Some(rest) = head.strip_prefix("proj_") else {
        return Vec::new();
    };
    // The project part of a branch key ends where one of its `_branch_` markers starts.
    let branch_keyed =
        |body: &str| -> Vec<usize> { body.match_indices("_branch_").map(|(i, _)| i).collect() };
    let mut out: Vec<&str> = Vec::new();
    if let Some(body) = rest.strip_suffix("_admin") {
        out.push(body);
        out.extend(branch_keyed(body).into_iter().map(|i| &rest[..i]));
    } else if let Some(body) = rest.strip_suffix("_read") {
        out.extend(branch_keyed(body).into_iter().map(|i| &rest[..i]));
    }
    out.retain(|p| !p.is_empty());
    out.dedup();
    out
}

/// What may appear in logs and API listings: the key without its secret part, plus 4 hex
/// chars. Stored with each key, and how a presented key finds its record.
pub fn key_prefix(presented: &str) -> String {
    match split_key(presented) {
        Some((head, secret)) => format!("{head}_{}", &secret[..PREFIX_SECRET_CHARS]),
        // Not one of our keys (perhaps a mistyped admin key): reveal nothing of it.
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
        assert_eq!(claimed_projects(&key.clear), vec!["123"]);
        assert!(key.hash.starts_with("$argon2id$"));
        assert!(verify_key(&key.clear, &key.hash));
        assert!(!verify_key(
            "proj_123_admin_00000000000000000000000000000000",
            &key.hash
        ));
        assert!(!key.prefix.contains(&key.clear[20..]));
    }

    #[test]
    fn claimed_projects_reads_every_key_shape() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            claimed_projects(&format!("proj_a_admin_b_admin_{hex}")),
            vec!["a_admin_b"]
        );
        assert_eq!(
            claimed_projects(&format!("proj_7_branch_default_read_{hex}")),
            vec!["7"]
        );
        assert_eq!(
            claimed_projects(&format!("proj_a_branch_b_admin_{hex}")),
            vec!["a_branch_b", "a"]
        );
        let p = ProjectId::parse("x_1").unwrap();
        for scope in [
            KeyScope::ProjectAdmin,
            KeyScope::BranchAdmin,
            KeyScope::BranchRead,
        ] {
            let key = generate_key(&p, scope, Some(BranchId::Default));
            assert!(
                claimed_projects(&key.clear).contains(&"x_1"),
                "{}",
                key.clear
            );
            assert_eq!(key.prefix, key.clear[..key.clear.len() - 28]);
        }
    }

    #[test]
    fn claimed_projects_rejects_malformed_keys() {
        for bad in [
            "",
            "proj__admin_0123456789abcdef0123456789abcdef",
            "proj_1_admin_short",
            "proj_1_admin_0123456789abcdef0123456789abcdeg",
            "key_1_admin_0123456789abcdef0123456789abcdef",
            "proj_1_read_0123456789abcdef0123456789abcdef",
            "proj_1_writer_0123456789abcdef0123456789abcdef",
        ] {
            assert!(claimed_projects(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn garbage_hashes_never_verify() {
        assert!(!verify_key("x", "not a phc string"));
        assert!(!verify_key("x", ""));
    }
}
