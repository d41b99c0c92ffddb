//! Free disk space of the filesystem holding a path, for `/readyz` and the upload guards.
//! Only measures; deciding what is "enough" belongs to the callers (MIN_FREE_BYTES).

use std::io;
use std::path::Path;

/// Bytes an unprivileged process may still write on the filesystem holding `path`: the
/// available blocks (not the free ones, which include root's reserve) times the fragment size.
pub fn available_space(path: &Path) -> io::Result<u64> {
    let stats = rustix::fs::statvfs(path)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temp_dir_has_some_space_and_no_more_than_its_filesystem() {
        let dir = tempfile::tempdir().expect("temp dir");
        let free = available_space(dir.path()).expect("statvfs");
        let stats = rustix::fs::statvfs(dir.path()).expect("statvfs");
        assert!(free > 0, "a writable temp dir reports no free space");
        assert!(free <= stats.f_blocks.saturating_mul(stats.f_frsize));
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = available_space(&dir.path().join("missing")).expect_err("no such path");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
