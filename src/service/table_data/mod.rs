//! Moving data in and out of tables and changing their schema: imports, exports, schema
//! changes, row deletes, profiles and queued table jobs. It never shapes HTTP responses.

mod export;
mod import;
mod job;
mod rows;
mod schema;
mod stream;

pub use export::{export, export_stream, ExportRequest, Exported};
pub use import::{create_from_file, import, FromFile, Imported};
pub use job::{run_job, JobRun, TableJob, TableJobOutcome};
pub use rows::{delete_rows, profile};
pub use schema::{change_table, SchemaChange};
