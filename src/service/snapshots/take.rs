//! Taking snapshots: writing and recording one, and the automatic one a destructive change
//! promises, taken under that change's exclusive lock before it runs (ADR 0029).

use chrono::Duration;
use uuid::Uuid;

use super::{effective, AutoSnapshot};
use crate::catalog::snapshots::{SnapshotColumn, SnapshotRecord};
use crate::engine::{fsync_dir, TableKey};
use crate::error::{ApiError, ApiResult, ErrorCode, IoContext};
use crate::state::AppState;

/// A destructive change that may promise a snapshot first (its settings trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    DropTable,
    DropColumn,
    /// A row delete whose filter matches every row.
    DeleteAllRows,
    /// A full load (and a restore over the table): every row is replaced.
    TruncateTable,
}

impl Trigger {
    /// The dotted settings key that turns it on.
    fn setting(self) -> &'static str {
        match self {
            Self::DropTable => "auto_snapshot_triggers.drop_table",
            Self::DropColumn => "auto_snapshot_triggers.drop_column",
            Self::DeleteAllRows => "auto_snapshot_triggers.delete_all_rows",
            Self::TruncateTable => "auto_snapshot_triggers.truncate_table",
        }
    }

    /// The `snapshot_type` of the snapshot it takes (the reference's names).
    fn kind(self) -> &'static str {
        match self {
            Self::DropTable => "auto_predrop",
            Self::DropColumn => "auto_predrop_column",
            Self::DeleteAllRows | Self::TruncateTable => "auto_pretruncate",
        }
    }

    /// The change, as the refusal names it.
    fn change(self) -> &'static str {
        match self {
            Self::DropTable => "the table was not dropped",
            Self::DropColumn => "the column was not dropped",
            Self::DeleteAllRows => "no row was deleted",
            Self::TruncateTable => "the table's rows were not replaced",
        }
    }
}

/// Where a snapshot comes from and whose it is.
pub(crate) struct Origin<'a> {
    /// The table file read (through a link, another project's).
    pub source: &'a TableKey,
    /// The project, branch, bucket and table the snapshot belongs to, as the client named
    /// them (a snapshot taken in a dev branch is that branch's, ADR 0031).
    pub owner: &'a TableKey,
    pub kind: &'a str,
    pub description: Option<String>,
    pub created_by: Option<String>,
    pub retention_days: Option<i64>,
}

/// Takes the snapshot `trigger` promises, if the table's settings turn it on (blocking; the
/// caller holds the table's exclusive lock and makes the change only if this succeeds). A
/// snapshot that cannot be taken refuses the change unless the client said `skip_snapshot`.
pub(crate) fn before_change(
    state: &AppState,
    key: &TableKey,
    trigger: Trigger,
    auto: &AutoSnapshot,
) -> ApiResult<Option<SnapshotRecord>> {
    if auto.skip {
        tracing::info!(table = %key.table, ?trigger, "auto-snapshot skipped on request");
        return Ok(None);
    }
    let taken = effective(state, key).and_then(|settings| {
        if !(settings.flag("enabled") && settings.flag(trigger.setting())) {
            return Ok(None);
        }
        take(
            state,
            Origin {
                source: key,
                owner: key,
                kind: trigger.kind(),
                description: None,
                created_by: Some(auto.by.clone()),
                retention_days: settings.days("retention.auto_days"),
            },
        )
        .map(Some)
    });
    taken.map_err(|cause| refusal(trigger, cause))
}

/// The error a destructive change answers when its promised snapshot failed.
fn refusal(trigger: Trigger, cause: ApiError) -> ApiError {
    let message = format!(
        "{}: the snapshot its settings promise first could not be taken ({}); retry, or pass ?skip_snapshot=true to go ahead without one",
        trigger.change(),
        cause.message()
    );
    // A full disk stays a full disk (507): the client's remedy is the same.
    let code = match cause.code() {
        ErrorCode::InsufficientStorage => ErrorCode::InsufficientStorage,
        _ => ErrorCode::SnapshotFailed,
    };
    tracing::warn!(?trigger, cause = %cause.message(), "auto-snapshot failed; change refused");
    ApiError::new(code, message).with_details(serde_json::json!({
        "trigger": trigger.setting(),
        "cause": cause.message(),
    }))
}

/// Writes the snapshot file (temp name, fsync, rename, fsync the directory) and records it;
/// a failure leaves neither file nor row (blocking; caller holds a lock on the source).
pub(crate) fn take(state: &AppState, origin: Origin<'_>) -> ApiResult<SnapshotRecord> {
    state.files.admit(None)?;
    let id = Uuid::now_v7().to_string();
    let relative = format!("project_{}/{id}.parquet", origin.owner.project);
    let path = state.snapshot_files.local_path(&relative);
    let dir = path
        .parent()
        .ok_or_else(|| ApiError::internal("snapshot path without a directory"))?
        .to_path_buf();
    std::fs::create_dir_all(&dir).at_path("creating snapshot directory", &dir)?;
    let temp = dir.join(format!(".{id}.parquet.tmp"));
    let info = state.engine.describe(origin.source)?;
    let written = state
        .engine
        .write_snapshot(origin.source, &temp)
        .and_then(|rows| {
            std::fs::rename(&temp, &path).at_path("placing snapshot file", &path)?;
            fsync_dir(&dir).at_path("syncing snapshot directory", &dir)?;
            if let Err(e) = state.snapshot_files.publish(&relative) {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            Ok(rows)
        });
    let rows = match written {
        Ok(rows) => rows,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    let created_at = crate::catalog::now();
    let record = SnapshotRecord {
        id,
        project: origin.owner.project.to_string(),
        branch: origin.owner.branch.as_ref().map(|b| b.to_string()),
        bucket: origin.owner.bucket.to_string(),
        table: origin.owner.table.to_string(),
        kind: origin.kind.to_string(),
        row_count: rows,
        size_bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        created_at,
        created_by: origin.created_by,
        expires_at: origin
            .retention_days
            .map(|days| created_at + Duration::days(days)),
        description: origin.description,
        columns: info
            .columns
            .iter()
            .map(|c| SnapshotColumn {
                name: c.name.clone(),
                data_type: c.data_type.clone(),
                nullable: c.nullable,
                default: c.default.clone(),
            })
            .collect(),
        primary_key: info.primary_key.as_ref().clone(),
        file_path: relative,
    };
    if let Err(e) = state.catalog.insert_snapshot(&record) {
        state.snapshot_files.remove(&record.file_path);
        return Err(e);
    }
    tracing::info!(
        snapshot = %record.id, branch = ?record.branch, table = %record.table,
        kind = %record.kind, rows,
        "snapshot taken"
    );
    Ok(record)
}
