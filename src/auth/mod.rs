//! Authentication: key formats and hashing, the verified-key cache, and the `Principal` extractor.
//! Keys are never logged or stored in clear; only argon2id hashes and short prefixes are kept.

pub mod admin_key;
pub mod keys;
pub mod principal;
pub mod scope;
pub mod throttle;
pub mod usage;
pub mod verifier;
pub mod verify_pool;

pub(crate) use principal::presented_key;
pub use principal::Principal;
pub use verifier::KeyVerifier;
