//! Streaming a query's rows to a wire client (ADR 0033): the statement runs on a blocking
//! thread that encodes each row as DuckDB yields it and hands it to the connection through a
//! bounded channel, so sending overlaps reading and no result is held whole in memory. Only
//! for statements that only read (SELECT, FROM, VALUES, TABLE); the rest go through `run`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use duckdb::types::Value;
use futures_util::stream;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldInfo, QueryResponse, Response};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use tokio::sync::{mpsc, oneshot};

use super::{api_error, encode, WireSession};
use crate::error::ApiError;
use crate::state::AppState;
use crate::workspace::query::query_failed;
use crate::workspace::sandbox::Statement;

/// Rows encoded ahead of the connection at most.
const AHEAD: usize = 512;

/// Whether `s` only reads and its rows can be streamed.
pub fn streams(s: &Statement) -> bool {
    matches!(s.first.as_str(), "SELECT" | "FROM" | "VALUES" | "TABLE")
}

/// Runs `statement` with `params` and answers its rows as they come. The statement timeout
/// interrupts it (57014 to the client, mid-stream if need be).
pub async fn query(
    state: &AppState,
    ws: Arc<WireSession>,
    statement: Statement,
    params: Vec<Value>,
    format: Format,
) -> PgWireResult<Response> {
    let timeout = Duration::from_secs(state.config.pgwire_query_timeout_secs.max(1));
    let interrupt = ws.interrupt.clone();
    let timer = tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        interrupt.interrupt();
    });
    let stop_timer = timer.abort_handle();
    let (schema_tx, schema_rx) = oneshot::channel::<Result<Arc<Vec<FieldInfo>>, ApiError>>();
    let (rows_tx, rows_rx) = mpsc::channel::<PgWireResult<DataRow>>(AHEAD);
    tokio::task::spawn_blocking(move || {
        let session = ws.session.lock();
        produce(
            &session.conn,
            &statement,
            params,
            &format,
            schema_tx,
            &rows_tx,
            timeout,
        );
        stop_timer.abort();
    });
    let schema = match schema_rx.await {
        Ok(Ok(schema)) => schema,
        Ok(Err(e)) => return Err(api_error(e)),
        Err(_) => return Err(api_error(ApiError::internal("the query task ended"))),
    };
    let rows = stream::unfold(rows_rx, |mut rx| async move {
        rx.recv().await.map(|row| (row, rx))
    });
    let mut response = QueryResponse::new(schema, rows);
    response.set_command_tag("SELECT");
    Ok(Response::Query(response))
}

/// The blocking half: prepares and runs the statement, sends the row description, then each
/// encoded row until the rows end, the client goes away or an error (sent as the last item).
fn produce(
    conn: &duckdb::Connection,
    statement: &Statement,
    params: Vec<Value>,
    format: &Format,
    schema_tx: oneshot::Sender<Result<Arc<Vec<FieldInfo>>, ApiError>>,
    rows_tx: &mpsc::Sender<PgWireResult<DataRow>>,
    timeout: Duration,
) {
    let failed = |e: duckdb::Error| {
        let e = query_failed(e);
        if e.code() == crate::error::ErrorCode::QueryTimeout {
            crate::service::workspaces::timed_out(timeout)
        } else {
            e
        }
    };
    let mut stmt = match conn.prepare(&statement.text) {
        Ok(stmt) => stmt,
        Err(e) => {
            let _ = schema_tx.send(Err(failed(e)));
            return;
        }
    };
    let parameters = stmt.parameter_count();
    if params.len() != parameters {
        let _ = schema_tx.send(Err(ApiError::new(
            crate::error::ErrorCode::QueryFailed,
            format!(
                "the statement takes {parameters} parameters, {} were given",
                params.len()
            ),
        )));
        return;
    }
    let mut rows = match stmt.query(duckdb::params_from_iter(params)) {
        Ok(rows) => rows,
        Err(e) => {
            let _ = schema_tx.send(Err(failed(e)));
            return;
        }
    };
    let Some(described) = rows.as_ref() else {
        let _ = schema_tx.send(Err(ApiError::internal("no statement")));
        return;
    };
    let count = described.column_count();
    let columns: Vec<(String, duckdb::arrow::datatypes::DataType)> = (0..count)
        .map(|i| {
            let name = described
                .column_name(i)
                .map_or_else(|_| format!("column{i}"), Clone::clone);
            (name, described.column_type(i))
        })
        .collect();
    let schema = Arc::new(encode::fields(&columns, |i| format.format_for(i)));
    if schema_tx.send(Ok(schema.clone())).is_err() {
        return;
    }
    let deadline = Instant::now() + timeout;
    let mut encoder = DataRowEncoder::new(schema.clone());
    let mut values = Vec::with_capacity(count);
    loop {
        let item = match rows.next() {
            Ok(Some(row)) => {
                values.clear();
                let mut bad = None;
                for i in 0..count {
                    match row.get::<_, Value>(i) {
                        Ok(v) => values.push(v),
                        Err(e) => {
                            bad = Some(e);
                            break;
                        }
                    }
                }
                match bad {
                    Some(e) => Err(api_error(failed(e))),
                    None => encode::encode_row(&mut encoder, &schema, &columns, &values),
                }
            }
            Ok(None) => return,
            Err(e) => Err(api_error(failed(e))),
        };
        let last = item.is_err();
        if !send_by(rows_tx, item, deadline) || last {
            return;
        }
    }
}

/// Hands `item` to the connection; `false` when it went away or did not take the row before
/// `deadline` (a client that stops reading must not hold this thread and the session past
/// the statement timeout).
fn send_by(
    rows_tx: &mpsc::Sender<PgWireResult<DataRow>>,
    mut item: PgWireResult<DataRow>,
    deadline: Instant,
) -> bool {
    loop {
        match rows_tx.try_send(item) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(back)) => {
                if Instant::now() >= deadline {
                    return false;
                }
                item = back;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}
