//! Blob bytes kept inside metadata.duckdb for the `database` storage backend (small objects).
//! Only the blob store calls this; file records and reference counts live in `files`.

use duckdb::{params, OptionalExt};

use super::{no_model_change, Catalog};
use crate::error::ApiResult;

impl Catalog {
    /// Stores blob bytes for the database backend; storing existing content is a no-op.
    pub fn put_blob_data(&self, sha256: &str, data: &[u8]) -> ApiResult<()> {
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO blob_data VALUES (?, ?) ON CONFLICT DO NOTHING",
                params![sha256, data],
            )?;
            Ok(((), no_model_change()))
        })
    }

    pub fn blob_data(&self, sha256: &str) -> ApiResult<Option<Vec<u8>>> {
        self.query(|c| {
            c.query_row(
                "SELECT data FROM blob_data WHERE sha256 = ?",
                [sha256],
                |r| r.get(0),
            )
            .optional()
            .map_err(Into::into)
        })
    }

    /// The hashes of every blob stored here (for the cleaner's sweep of unreferenced ones).
    pub fn blob_data_hashes(&self) -> ApiResult<Vec<String>> {
        self.query(|c| {
            let mut stmt = c.prepare("SELECT sha256 FROM blob_data")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
        })
    }

    pub fn delete_blob_data(&self, sha256: &str) -> ApiResult<()> {
        self.write(|tx, _| {
            tx.execute("DELETE FROM blob_data WHERE sha256 = ?", [sha256])?;
            Ok(((), no_model_change()))
        })
    }
}
