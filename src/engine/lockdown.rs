//! DuckDB locked down as a second layer under "client text never becomes SQL": once start-up
//! is done the instance reaches no file outside the table files, the snapshot files, the work
//! directory and its own temp directory, loads no extension, and no later statement can change that.

use std::path::{Path, PathBuf};

use duckdb::Connection;

use super::{sql_string, TableEngine};
use crate::error::ApiResult;

impl TableEngine {
    /// Locks the instance down (blocking; once, after start-up). `work_dir` is where imports
    /// read their files and exports write theirs.
    pub fn lock_down(&self, work_dir: &Path) -> ApiResult<()> {
        let conn = self.root.lock();
        lock_down(
            &conn,
            &[
                self.tables_root(),
                self.snapshots_root(),
                work_dir.to_path_buf(),
            ],
        )
    }
}

/// Allows `dirs` (and the instance's temp directory) only, turns external access off and
/// freezes every setting. Files attached already (the catalog) stay reachable: DuckDB adds
/// them to the allowed paths itself.
pub(crate) fn lock_down(conn: &Connection, dirs: &[PathBuf]) -> ApiResult<()> {
    let temp: String =
        conn.query_row("SELECT current_setting('temp_directory')", [], |r| r.get(0))?;
    let allowed: Vec<String> = dirs
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .chain((!temp.is_empty()).then_some(temp))
        // A trailing separator, so `/data/duckdb/` does not also allow `/data/duckdb2`.
        .map(|d| sql_string(&format!("{}/", d.trim_end_matches('/'))))
        .collect();
    // Order matters: the allowed list only takes effect while external access is on, and
    // nothing can be set once the configuration is locked.
    conn.execute_batch(&format!(
        "SET autoinstall_known_extensions = false; \
         SET autoload_known_extensions = false; \
         SET allow_community_extensions = false; \
         SET allowed_directories = [{}]; \
         SET enable_external_access = false; \
         SET lock_configuration = true;",
        allowed.join(", ")
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::import::{CsvOptions, Format, Source};

    /// An engine on a fresh data dir with `duckdb/` and `files/work/`, and a CSV in each of
    /// the work dir and the data dir itself (where the admin key lives).
    fn engine(dir: &Path) -> TableEngine {
        std::fs::create_dir_all(dir.join("duckdb")).unwrap();
        std::fs::create_dir_all(dir.join("files/work")).unwrap();
        std::fs::write(dir.join("files/work/in.csv"), "a\n1\n2\n").unwrap();
        std::fs::write(dir.join("secret.csv"), "a\n1\n").unwrap();
        let config = duckdb::Config::default()
            .with("autoinstall_known_extensions", "false")
            .unwrap()
            .with("autoload_known_extensions", "false")
            .unwrap();
        let root = Connection::open_with_flags(dir.join("metadata.duckdb"), config).unwrap();
        TableEngine::new(dir.to_path_buf(), root, 4)
    }

    /// What the import reader makes of `path` as a CSV file.
    fn read_as_import(engine: &TableEngine, path: &Path) -> ApiResult<Vec<(String, String)>> {
        let csv = CsvOptions::default();
        let source = Source::open(path, Format::Csv, &csv)?;
        let conn = engine.conn()?;
        source.detect_typed(&conn, false)
    }

    fn run(engine: &TableEngine, sql: &str) -> Result<(), String> {
        let conn = engine.conn().map_err(|e| e.to_string())?;
        conn.execute_batch(sql).map_err(|e| e.to_string())
    }

    #[test]
    fn the_import_reader_reads_etc_passwd_only_while_the_engine_is_not_locked_down() {
        let open = tempfile::tempdir().unwrap();
        let unlocked = engine(open.path());
        // The control: without the lock-down, a path that reached the reader is read.
        assert!(read_as_import(&unlocked, Path::new("/etc/passwd")).is_ok());

        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        engine.lock_down(&dir.path().join("files/work")).unwrap();
        let err = read_as_import(&engine, Path::new("/etc/passwd")).unwrap_err();
        assert!(err.to_string().contains("disabled"), "{err}");
        assert!(read_as_import(&engine, &dir.path().join("secret.csv")).is_err());
        // What imports really read still works.
        let columns = read_as_import(&engine, &dir.path().join("files/work/in.csv")).unwrap();
        assert_eq!(columns[0].0, "a");
    }

    #[test]
    fn a_locked_down_engine_keeps_its_own_files_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        engine.lock_down(&dir.path().join("files/work")).unwrap();
        let d = dir.path().display();
        let outside = tempfile::tempdir().unwrap();
        let o = outside.path().display();

        // Table files, exports into the work dir and temp spills keep working.
        run(&engine, &format!("ATTACH '{d}/duckdb/t.duckdb' AS t; CREATE TABLE t.data AS SELECT range AS i FROM range(10); DETACH t")).unwrap();
        run(
            &engine,
            &format!("COPY (SELECT 1) TO '{d}/files/work/out.csv'"),
        )
        .unwrap();
        assert!(dir.path().join("files/work/out.csv").exists());

        for refused in [
            "SELECT * FROM read_text('/etc/passwd')".to_string(),
            format!("SELECT * FROM read_text('{d}/secret.csv')"),
            format!("SELECT * FROM read_csv('{d}/files/work/../../secret.csv')"),
            format!("COPY (SELECT 1) TO '{o}/out.csv'"),
            format!("ATTACH '{o}/x.duckdb' AS x"),
            format!("ATTACH '{d}/duckdb2.duckdb' AS y"),
            "SET threads = 1".to_string(),
            "SET lock_configuration = false".to_string(),
            "SET allowed_directories = ['/']".to_string(),
        ] {
            assert!(run(&engine, &refused).is_err(), "{refused} was allowed");
        }
        assert!(!outside.path().join("out.csv").exists());
    }
}
