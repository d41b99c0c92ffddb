//! One DuckDB transaction around a piece of work: committed only when asked and successful.
//! Knows nothing of tables or files; every early return or error rolls the work back.

/// Rolls back on drop unless committed, so every early return leaves the table as it was.
struct Tx<'c> {
    conn: &'c duckdb::Connection,
    open: bool,
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Runs `f` in a transaction that commits only if `commit` is true and `f` succeeded;
/// otherwise everything `f` did is rolled back.
pub(crate) fn in_transaction<T, E: From<duckdb::Error>>(
    conn: &duckdb::Connection,
    commit: bool,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    let mut tx = Tx { conn, open: true };
    let out = f()?;
    if commit {
        tx.open = false;
        conn.execute_batch("COMMIT")?;
    }
    Ok(out)
}
