//! The quarantine: what start-up finds under `duckdb/` and does not understand is moved, never
//! deleted, to `DATA_DIR/quarantine/<UTC timestamp>/<relative path>`, and listed for the admin.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The directory under `DATA_DIR` that holds everything moved aside.
pub const QUARANTINE_DIR: &str = "quarantine";
/// One JSON line per moved path, written before the move: a moved project directory and
/// the parent directories created to hold a moved table file look alike on disk.
const MANIFEST: &str = "manifest.jsonl";

/// Whether a moved path was a file or a whole directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
}

/// One manifest line.
#[derive(Serialize, Deserialize)]
struct Moved {
    path: String,
    kind: EntryKind,
}

/// A quarantined path as the admin endpoint lists it.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineEntry {
    /// The timestamp directory: when the start-up that moved it ran (UTC).
    pub quarantined_at: String,
    /// The path relative to `DATA_DIR` before the move, and relative to the timestamp
    /// directory after it.
    pub path: String,
    pub kind: EntryKind,
    /// Bytes of the file, or of every file below the directory.
    pub size_bytes: u64,
}

/// Moves paths of one start-up into one timestamp directory, created on the first move.
pub struct Quarantine {
    data_dir: PathBuf,
    stamp: String,
}

impl Quarantine {
    /// A quarantine for paths under `data_dir`, stamped with the current UTC time.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            // No `:` in it, so the name is valid on every filesystem.
            stamp: chrono::Utc::now()
                .format("%Y-%m-%dT%H-%M-%S%.6fZ")
                .to_string(),
        }
    }

    fn stamp_dir(&self) -> PathBuf {
        self.data_dir.join(QUARANTINE_DIR).join(&self.stamp)
    }

    /// Moves `path` (below `DATA_DIR`) to the same relative path under the timestamp
    /// directory, content intact; returns where it went. A rename, so it stays on the data
    /// dir's filesystem: when that fails (another filesystem), the path stays where it is.
    pub fn move_aside(&self, path: &Path) -> std::io::Result<PathBuf> {
        let rel = path.strip_prefix(&self.data_dir).map_err(|_| {
            std::io::Error::other(format!("{} is not under the data dir", path.display()))
        })?;
        let kind = match std::fs::symlink_metadata(path)?.is_dir() {
            true => EntryKind::Dir,
            false => EntryKind::File,
        };
        let target = self.stamp_dir().join(rel);
        if target.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists already", target.display()),
            ));
        }
        let parent = target.parent().unwrap_or(&self.data_dir);
        std::fs::create_dir_all(parent)?;
        self.record(rel, kind)?;
        std::fs::rename(path, &target)?;
        // Both directory entries changed: make the move survive a crash.
        for dir in [parent, path.parent().unwrap_or(&self.data_dir)] {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(target)
    }

    /// Appends the manifest line for `rel` and makes it durable.
    fn record(&self, rel: &Path, kind: EntryKind) -> std::io::Result<()> {
        let line = Moved {
            path: rel.to_string_lossy().into_owned(),
            kind,
        };
        let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
        text.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stamp_dir().join(MANIFEST))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    }
}

/// Everything start-ups moved to `DATA_DIR/quarantine` and that is still there, oldest
/// first, then by path. Paths an operator removed since are left out; a timestamp directory without a
/// readable manifest lists nothing.
pub fn list(data_dir: &Path) -> std::io::Result<Vec<QuarantineEntry>> {
    let root = data_dir.join(QUARANTINE_DIR);
    let mut stamps: Vec<(String, PathBuf)> = match std::fs::read_dir(&root) {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    stamps.sort();
    let mut out = Vec::new();
    for (stamp, dir) in stamps {
        let Ok(manifest) = std::fs::read_to_string(dir.join(MANIFEST)) else {
            continue;
        };
        for line in manifest.lines() {
            // A line cut short by a crash while it was written names nothing.
            let Ok(moved) = serde_json::from_str::<Moved>(line) else {
                continue;
            };
            let path = dir.join(&moved.path);
            if std::fs::symlink_metadata(&path).is_err() {
                continue;
            }
            out.push(QuarantineEntry {
                quarantined_at: stamp.clone(),
                size_bytes: size_of(&path),
                path: moved.path,
                kind: moved.kind,
            });
        }
    }
    // Within one start-up, moves follow the directory listing's order: none a reader can use.
    out.sort_by(|a, b| (&a.quarantined_at, &a.path).cmp(&(&b.quarantined_at, &b.path)));
    Ok(out)
}

/// Bytes of a file, or of every file below a directory (symbolic links are not followed).
fn size_of(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| size_of(&e.path()))
            .sum(),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_file_and_directory_keep_their_content_and_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let file = data.join("duckdb/project_1/b/x.duckdb");
        let project = data.join("duckdb/project_9");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::create_dir_all(project.join("c")).unwrap();
        std::fs::write(&file, b"table bytes").unwrap();
        std::fs::write(project.join("c/t.duckdb"), b"0123456789").unwrap();

        let q = Quarantine::new(data);
        let moved_file = q.move_aside(&file).unwrap();
        let moved_dir = q.move_aside(&project).unwrap();

        assert!(!file.exists() && !project.exists());
        assert_eq!(std::fs::read(&moved_file).unwrap(), b"table bytes");
        assert_eq!(
            std::fs::read(moved_dir.join("c/t.duckdb")).unwrap(),
            b"0123456789"
        );
        let listed = list(data).unwrap();
        let summary: Vec<(&str, EntryKind, u64)> = listed
            .iter()
            .map(|e| (e.path.as_str(), e.kind, e.size_bytes))
            .collect();
        assert_eq!(
            summary,
            [
                ("duckdb/project_1/b/x.duckdb", EntryKind::File, 11),
                ("duckdb/project_9", EntryKind::Dir, 10),
            ]
        );
        assert!(listed.iter().all(|e| e.quarantined_at == q.stamp));
    }

    #[test]
    fn a_data_dir_without_quarantine_lists_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
    }
}
