//! The file store: streaming spools with SHA-256, the content-addressed `BlobStore` and its
//! backends, HTTP Range handling. Knows nothing about projects or HTTP routing.

pub mod blob;
pub mod database;
pub mod disk;
pub mod keyed;
pub mod measured;
pub mod range;
pub mod s3;
pub mod snapshot_store;
pub mod spool;

pub use blob::{BlobStore, ByteStream, LocalBlobStore};
pub use database::DatabaseBlobStore;
pub use measured::MeasuredBlobStore;
pub use s3::S3BlobStore;
pub use snapshot_store::SnapshotStore;
pub use spool::{SpoolLimits, Spooled};

/// Whether `s` is a lowercase hex SHA-256 digest (the only blob ids we accept).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
