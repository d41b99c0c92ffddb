//! The admin (master) key: from configuration, or generated once into `DATA_DIR/admin.key` (0600).
//! The key itself is never logged; only the file path is.

use std::io::Write;
use std::path::Path;

use rand::rngs::OsRng;
use rand::RngCore;

use crate::config::Secret;

/// Returns the configured key, or reads/creates `admin.key` in the data dir.
pub fn load_or_create(configured: Option<&Secret>, data_dir: &Path) -> std::io::Result<Secret> {
    if let Some(key) = configured.filter(|k| !k.expose().is_empty()) {
        return Ok(key.clone());
    }
    let path = data_dir.join("admin.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            tracing::info!(path = %path.display(), "using the admin key stored in the data dir");
            return Ok(Secret::new(existing));
        }
    }
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let key = format!("admin_{}", hex::encode(bytes));
    write_private(&path, key.as_bytes())?;
    tracing::warn!(
        path = %path.display(),
        "ADMIN_API_KEY is not set: generated an admin key and stored it in this file (mode 0600)"
    );
    Ok(Secret::new(key))
}

/// Writes a file readable only by its owner, atomically (temp + fsync + rename).
pub(crate) fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("key.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(content)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(None, dir.path()).unwrap();
        let second = load_or_create(None, dir.path()).unwrap();
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("admin.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn configured_key_wins() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create(Some(&Secret::new("given")), dir.path()).unwrap();
        assert_eq!(key.expose(), "given");
        assert!(!dir.path().join("admin.key").exists());
    }
}
