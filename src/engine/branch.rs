//! Table files of dev branches (ADR 0031): the copy-on-write copy of a main table (a reflink
//! where the filesystem can, else a plain copy), and a branch table applied to main atomically.

use std::path::{Path, PathBuf};

use super::ddl::{
    create_like_sql, remove_dir_if_present, remove_table_files, swap_in_sql, table_in,
};
use super::transaction::in_transaction;
use super::{fsync_dir, quote_ident, wal_path, TableEngine, TableKey, BRANCH_DIR_PREFIX};
use crate::error::{ApiError, ApiResult, IoContext};
use crate::names::{DevBranchId, ProjectId};

/// The table a merge fills inside main's file before swapping it in.
const MERGED: &str = "__duckbank_merge";

/// How a table file was copied into a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    /// A reflink (`FICLONE`): the blocks are shared until either side writes.
    Reflink,
    /// The bytes were copied.
    Copy,
}

impl TableEngine {
    /// Copies main's table file (and its WAL, if any) to the branch's key `to`. The caller holds
    /// main's table shared (no writer: file and WAL are one committed state, which DuckDB
    /// replays on open) and `to` exclusively; any file at `to` is an orphan and replaced.
    pub fn copy_table(&self, from: &TableKey, to: &TableKey) -> ApiResult<CopyKind> {
        // Fold the WAL first where DuckDB allows it, so usually one file is copied.
        self.checkpoint(from);
        let (source, target) = (self.table_path(from), self.table_path(to));
        let dir = self.table_dir(to);
        std::fs::create_dir_all(&dir).at_path("creating branch table directory", &dir)?;
        remove_table_files(&target)?;
        let copied = clone_or_copy(&source, &target).and_then(|kind| {
            let wal = wal_path(&source);
            if wal.exists() {
                clone_or_copy(&wal, &wal_path(&target))?;
            }
            fsync_dir(&dir).at_path("syncing branch table directory", &dir)?;
            Ok(kind)
        });
        if copied.is_err() {
            let _ = remove_table_files(&target);
        }
        copied
    }

    /// Replaces main's table `to` with the rows and definition of the branch's table `from`
    /// in one transaction of main's file: an error or a crash leaves main's table as it was.
    /// Caller holds both exclusively. Returns the rows now in main's table.
    pub fn merge_over(&self, from: &TableKey, to: &TableKey) -> ApiResult<u64> {
        let info = self.describe(from)?;
        let conn = self.conn()?;
        let source = self.ensure_attached(&conn, from)?;
        let target = self.ensure_attached(&conn, to)?;
        let fresh = table_in(&target, MERGED);
        let merged = in_transaction(&conn, true, || {
            conn.execute_batch(&format!("DROP TABLE IF EXISTS {fresh}"))?;
            conn.execute_batch(&create_like_sql(
                &fresh,
                &info.columns,
                &info.primary_key,
                |_| None,
            ))?;
            let rows = insert_all(&conn, &info.columns, &table_in(&source, "data"), &fresh)?;
            conn.execute_batch(&swap_in_sql(&table_in(&target, "data"), &fresh))?;
            Ok::<_, ApiError>(rows)
        });
        self.invalidate(to);
        if merged.is_ok() {
            self.checkpoint(to);
        }
        merged
    }

    /// Creates main's table file `to` from the branch's table `from` (definition and rows, one
    /// transaction). Caller holds both exclusively and has checked that the catalog does not
    /// know `to`; on failure no file is left behind.
    pub fn create_from_branch(&self, from: &TableKey, to: &TableKey) -> ApiResult<u64> {
        let info = self.describe(from)?;
        let dir = self.table_dir(to);
        std::fs::create_dir_all(&dir).at_path("creating bucket directory", &dir)?;
        self.drop_table(to)?;
        let conn = self.conn()?;
        let source = self.ensure_attached(&conn, from)?;
        let target = self.attach(&conn, to, true)?;
        let data = table_in(&target, "data");
        let created = in_transaction(&conn, true, || {
            conn.execute_batch(&create_like_sql(
                &data,
                &info.columns,
                &info.primary_key,
                |_| None,
            ))?;
            insert_all(&conn, &info.columns, &table_in(&source, "data"), &data)
        });
        match created {
            Ok(rows) => {
                fsync_dir(&dir).at_path("syncing bucket directory", &dir)?;
                self.checkpoint(to);
                Ok(rows)
            }
            Err(e) => {
                let _ = self.drop_table(to);
                Err(e)
            }
        }
    }

    /// The directories of a project's dev branches.
    pub fn branch_dirs(&self, project: &ProjectId) -> Vec<PathBuf> {
        std::fs::read_dir(self.project_dir(project))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(BRANCH_DIR_PREFIX)
            })
            .map(|e| e.path())
            .collect()
    }

    /// Detaches a branch's tables and removes its directory (caller holds the project
    /// exclusively, and the branch's rows are gone from the catalog).
    pub fn drop_branch(&self, project: &ProjectId, branch: &DevBranchId) -> ApiResult<()> {
        let conn = self.conn()?;
        self.detach_where(&conn, |k| {
            &k.project == project && k.branch.as_ref() == Some(branch)
        })?;
        remove_dir_if_present(&self.branch_dir(project, branch))
    }
}

/// `INSERT INTO <to> (<cols>) SELECT <cols> FROM <from>`; returns rows.
fn insert_all(
    conn: &duckdb::Connection,
    columns: &[super::ColumnInfo],
    from: &str,
    to: &str,
) -> ApiResult<u64> {
    let cols = columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = conn.execute(
        &format!("INSERT INTO {to} ({cols}) SELECT {cols} FROM {from}"),
        [],
    )?;
    Ok(rows as u64)
}

/// Clones `from` to `to` with `FICLONE` where the filesystem supports it (btrfs, XFS), else
/// copies the bytes; `to` is synced either way.
fn clone_or_copy(from: &Path, to: &Path) -> ApiResult<CopyKind> {
    let source = std::fs::File::open(from).at_path("opening table file to copy", from)?;
    let target = std::fs::File::create(to).at_path("creating table copy", to)?;
    let kind = match rustix::fs::ioctl_ficlone(&target, &source) {
        Ok(()) => CopyKind::Reflink,
        Err(_) => {
            drop(target);
            std::fs::copy(from, to).at_path("copying table file", to)?;
            CopyKind::Copy
        }
    };
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .at_path("syncing table copy", to)?;
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `cp --reflink=always` can clone a file in `dir`: the filesystem's own answer,
    /// independent of our code.
    fn reflinks(dir: &Path) -> bool {
        let probe = dir.join("probe");
        std::fs::write(&probe, b"probe").unwrap();
        std::process::Command::new("cp")
            .arg("--reflink=always")
            .arg(&probe)
            .arg(dir.join("probe-clone"))
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs on whatever filesystem the temp dir is on (`TMPDIR=/mnt/xfs/tmp` for XFS): where it
    /// reflinks, the copy must be a `FICLONE`, else a plain copy; the bytes are equal either way.
    #[test]
    fn a_table_file_is_cloned_where_the_filesystem_reflinks_else_copied() {
        let dir = tempfile::tempdir().unwrap();
        let expected = if reflinks(dir.path()) {
            CopyKind::Reflink
        } else {
            CopyKind::Copy
        };
        let (from, to) = (dir.path().join("from.duckdb"), dir.path().join("to.duckdb"));
        let bytes: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&from, &bytes).unwrap();
        let kind = clone_or_copy(&from, &to).unwrap();
        eprintln!("temp dir {}: {kind:?}", dir.path().display());
        assert_eq!(kind, expected);
        assert_eq!(std::fs::read(&to).unwrap(), bytes);
    }
}
