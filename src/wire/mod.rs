//! The PostgreSQL wire server for workspaces (ADR 0033): a login opens a workspace session,
//! simple and extended queries run in its sandbox under the statement timeout, and results go
//! back typed. Owns the listener and the protocol glue; SQL checks and running live in
//! `crate::workspace`, which this must not bypass.

pub mod auth;
pub mod encode;
pub mod streaming;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use duckdb::types::Value;
use futures_util::{stream, Sink};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldFormat, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::{NoopQueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use tokio::net::TcpListener;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::workspace::query::{self, ResultSet, SizeCheck};
use crate::workspace::sandbox::{self, Statement};
use crate::workspace::Session;
use auth::Login;

/// One wire connection's workspace session; its slot is given back when the connection ends.
pub struct WireSession {
    session: Arc<parking_lot::Mutex<Session>>,
    interrupt: Arc<duckdb::InterruptHandle>,
    login: Login,
}

impl WireSession {
    fn new(session: Session, login: Login) -> Self {
        Self {
            interrupt: session.interrupt_handle(),
            session: Arc::new(parking_lot::Mutex::new(session)),
            login,
        }
    }
}

/// Opens the logged-in workspace's session (429-equivalent `53300` beyond the session limit;
/// an expired workspace refuses).
async fn open_session(state: &AppState, login: &Login) -> PgWireResult<Session> {
    let (s, login) = (state.clone(), login.clone());
    crate::service::blocking(move || {
        let project = crate::names::ProjectId::parse(&login.project)?;
        let record = crate::service::workspaces::live(&s, &project, &login.id)?;
        let sources = crate::service::workspaces::sources(&s, &project, &record.branch);
        s.workspaces
            .session(&login.project, &login.id, sources, true)
    })
    .await
    .map_err(|e| PgWireError::UserError(Box::new(error_info(&e))))
}

/// An error as the wire reports it: a SQLSTATE chosen by kind, and the same message as HTTP.
pub fn error_info(e: &ApiError) -> ErrorInfo {
    let sqlstate = match e.code() {
        ErrorCode::SqlRefused => "42501",
        ErrorCode::QueryFailed => "42000",
        ErrorCode::QueryTimeout => "57014",
        ErrorCode::TooManySessions => "53300",
        ErrorCode::WorkspaceFull => "53100",
        ErrorCode::WorkspaceExpired | ErrorCode::WorkspaceNotFound => "3D000",
        ErrorCode::InternalError => "XX000",
        _ => "22000",
    };
    ErrorInfo::new("ERROR".into(), sqlstate.into(), e.message().to_string())
}

fn user_error(sqlstate: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        sqlstate.into(),
        message.into(),
    )))
}

fn api_error(e: ApiError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&e)))
}

/// Session settings PostgreSQL clients send at connect time; answered `SET` and ignored, since
/// they do not exist in DuckDB (and `statement_timeout` is PGWIRE_QUERY_TIMEOUT_SECS here).
const IGNORED_SETTINGS: &[&str] = &[
    "APPLICATION_NAME",
    "CLIENT_ENCODING",
    "CLIENT_MIN_MESSAGES",
    "DATESTYLE",
    "EXTRA_FLOAT_DIGITS",
    "INTERVALSTYLE",
    "SEARCH_PATH",
    "STATEMENT_TIMEOUT",
    "STANDARD_CONFORMING_STRINGS",
    "TIMEZONE",
    "BYTEA_OUTPUT",
    "LOCK_TIMEOUT",
    "IDLE_IN_TRANSACTION_SESSION_TIMEOUT",
];

/// A client-session `SET` the server answers without running it.
fn ignored_set(s: &Statement) -> bool {
    let name = match s.words.as_slice() {
        [first, rest @ ..] if first == "SET" => match rest {
            [scope, name, ..] if scope == "SESSION" || scope == "LOCAL" => name,
            [name, ..] => name,
            [] => return false,
        },
        _ => return false,
    };
    IGNORED_SETTINGS.contains(&name.as_str())
}

/// psql's catalog queries call functions DuckDB's `pg_catalog` lacks; each session has a
/// temporary macro under the unqualified name.
fn compatible(sql: &str) -> String {
    let lower = sql.to_ascii_lowercase();
    let needle = "pg_catalog.pg_get_userbyid(";
    if !lower.contains(needle) {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.to_ascii_lowercase().find(needle) {
        out.push_str(&rest[..at]);
        out.push_str("pg_get_userbyid(");
        rest = &rest[at + needle.len()..];
    }
    out.push_str(rest);
    out
}

pub struct Backend {
    state: AppState,
    parser: Arc<NoopQueryParser>,
    startup: Arc<auth::Startup>,
}

impl Backend {
    pub fn new(state: AppState) -> Self {
        Self {
            startup: Arc::new(auth::Startup::new(state.clone())),
            state,
            parser: Arc::new(NoopQueryParser::new()),
        }
    }

    fn wire_session<C: ClientInfo>(client: &C) -> PgWireResult<Arc<WireSession>> {
        client
            .session_extensions()
            .get::<Arc<WireSession>>()
            .map(|s| (*s).clone())
            .ok_or_else(|| user_error("08003", "no workspace session"))
    }

    /// Runs one checked statement with `params` on the session's blocking thread, under the
    /// statement timeout; `describe_only` runs a row-less form to learn the columns.
    async fn run(
        &self,
        ws: Arc<WireSession>,
        statement: Statement,
        params: Vec<Value>,
        describe_only: bool,
    ) -> PgWireResult<ResultSet> {
        let timeout = Duration::from_secs(self.state.config.pgwire_query_timeout_secs.max(1));
        let state = self.state.clone();
        let interrupt = ws.interrupt.clone();
        let mut task = tokio::task::spawn_blocking(move || -> Result<ResultSet, ApiError> {
            let record = state.catalog.workspace(&ws.login.project, &ws.login.id)?;
            let session = ws.session.lock();
            if describe_only {
                return query::describe(&session, &statement, params);
            }
            let limit_bytes = crate::service::workspaces::limit_bytes(&state, &record);
            let used = || {
                state
                    .workspaces
                    .used_bytes(&session.conn, &record.project, &record.id)
            };
            query::run_one_with(
                &session,
                &statement,
                params,
                usize::MAX,
                &SizeCheck {
                    used: &used,
                    limit_bytes,
                },
            )
        });
        match tokio::time::timeout(timeout, &mut task).await {
            Ok(Ok(done)) => done.map_err(api_error),
            Ok(Err(join)) => Err(api_error(ApiError::from(join))),
            Err(_) => {
                interrupt.interrupt();
                let _ = task.await;
                Err(api_error(crate::service::workspaces::timed_out(timeout)))
            }
        }
    }

    /// The response to one statement: rows, or the command tag.
    fn respond(result: ResultSet, format: &Format) -> PgWireResult<Response> {
        let command = result.command.clone();
        match command.as_str() {
            "BEGIN" | "START" => return Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            "COMMIT" | "END" => return Ok(Response::TransactionEnd(Tag::new("COMMIT"))),
            "ROLLBACK" | "ABORT" => return Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
            _ => {}
        }
        if returns_rows(&result) {
            let schema = Arc::new(encode::fields(&result.columns, |i| format.format_for(i)));
            let mut encoder = DataRowEncoder::new(schema.clone());
            let rows: Vec<PgWireResult<_>> = result
                .rows
                .iter()
                .map(|row| encode::encode_row(&mut encoder, &schema, &result.columns, row))
                .collect();
            let mut response = QueryResponse::new(schema, stream::iter(rows));
            response.set_command_tag(&tag_name(&command));
            Ok(Response::Query(response))
        } else {
            let tag = match command.as_str() {
                "INSERT" => Tag::new("INSERT")
                    .with_oid(0)
                    .with_rows(result.affected as usize),
                "UPDATE" | "DELETE" => Tag::new(&command).with_rows(result.affected as usize),
                other => Tag::new(other),
            };
            Ok(Response::Execution(tag))
        }
    }
}

/// Whether a statement's result is rows to send (a query), not DuckDB's change count.
fn returns_rows(result: &ResultSet) -> bool {
    let count_only = result.columns.len() == 1 && result.columns[0].0 == "Count";
    let change = matches!(
        result.command.as_str(),
        "INSERT" | "UPDATE" | "DELETE" | "CREATE" | "MERGE"
    );
    !result.columns.is_empty() && (!count_only || !change)
}

fn tag_name(command: &str) -> String {
    match command {
        "" | "WITH" | "FROM" | "VALUES" | "TABLE" | "SHOW" | "DESCRIBE" | "SUMMARIZE"
        | "EXPLAIN" => "SELECT".into(),
        other => other.into(),
    }
}

/// The one statement of an extended-protocol query (PostgreSQL allows no more).
fn single(sql: &str) -> PgWireResult<Statement> {
    let mut statements = sandbox::check(&compatible(sql)).map_err(api_error)?;
    if statements.len() != 1 {
        return Err(user_error(
            "42601",
            "a prepared statement holds exactly one statement",
        ));
    }
    Ok(statements.remove(0))
}

/// Parameters as DuckDB values, decoded by their declared type (text when none was given).
fn params(portal: &Portal<String>, types: &[Option<Type>]) -> PgWireResult<Vec<Value>> {
    (0..portal.parameter_len())
        .map(|i| {
            let ty = types.get(i).cloned().flatten().unwrap_or(Type::TEXT);
            let v = match ty {
                Type::BOOL => portal.parameter::<bool>(i, &ty)?.map(Value::Boolean),
                Type::INT2 => portal.parameter::<i16>(i, &ty)?.map(Value::SmallInt),
                Type::INT4 => portal.parameter::<i32>(i, &ty)?.map(Value::Int),
                Type::INT8 => portal.parameter::<i64>(i, &ty)?.map(Value::BigInt),
                Type::FLOAT4 => portal.parameter::<f32>(i, &ty)?.map(Value::Float),
                Type::FLOAT8 => portal.parameter::<f64>(i, &ty)?.map(Value::Double),
                _ => portal.parameter::<String>(i, &Type::TEXT)?.map(Value::Text),
            };
            Ok(v.unwrap_or(Value::Null))
        })
        .collect()
}

#[async_trait]
impl SimpleQueryHandler for Backend {
    async fn do_query<C>(&self, client: &mut C, sql: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let ws = Self::wire_session(client)?;
        let split = sandbox::split_all(&compatible(sql));
        let mut out = Vec::with_capacity(split.len());
        let statements = split.len();
        for (i, s) in split.into_iter().enumerate() {
            if ignored_set(&s) {
                out.push(Response::Execution(Tag::new("SET")));
                continue;
            }
            // A refused or failed statement ends the batch, as in PostgreSQL.
            let checked = sandbox::check_one(&s).map_err(api_error);
            // Only the batch's last statement streams: its rows are sent after this returns,
            // and a later statement would wait for the session they hold.
            let result = match checked {
                Ok(()) if i + 1 == statements && streaming::streams(&s) => {
                    streaming::query(&self.state, ws.clone(), s, Vec::new(), Format::UnifiedText)
                        .await
                }
                Ok(()) => self
                    .run(ws.clone(), s, Vec::new(), false)
                    .await
                    .and_then(|r| Self::respond(r, &Format::UnifiedText)),
                Err(e) => Err(e),
            };
            match result {
                Ok(r) => out.push(r),
                Err(PgWireError::UserError(info)) => {
                    out.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Backend {
    type Statement = String;
    type QueryParser = NoopQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let ws = Self::wire_session(client)?;
        let statement = single(&portal.statement.statement)?;
        if ignored_set(&statement) {
            return Ok(Response::Execution(Tag::new("SET")));
        }
        let values = params(portal, &portal.statement.parameter_types)?;
        if streaming::streams(&statement) {
            let format = portal.result_column_format.clone();
            return streaming::query(&self.state, ws, statement, values, format).await;
        }
        let result = self.run(ws, statement, values, false).await?;
        Self::respond(result, &portal.result_column_format)
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let ws = Self::wire_session(client)?;
        let statement = single(&target.statement)?;
        if ignored_set(&statement) {
            return Ok(DescribeStatementResponse::new(Vec::new(), Vec::new()));
        }
        let described = self.run(ws, statement, Vec::new(), true).await?;
        let types = (0..described.parameters)
            .map(|i| {
                target
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or(Type::TEXT)
            })
            .collect();
        let fields = encode::fields(&described.columns, |_| FieldFormat::Binary);
        Ok(DescribeStatementResponse::new(types, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let ws = Self::wire_session(client)?;
        let statement = single(&portal.statement.statement)?;
        if ignored_set(&statement) {
            return Ok(DescribePortalResponse::new(Vec::new()));
        }
        let values = params(portal, &portal.statement.parameter_types)?;
        let described = self.run(ws, statement, values, true).await?;
        let format = portal.result_column_format.clone();
        Ok(DescribePortalResponse::new(encode::fields(
            &described.columns,
            |i| format.format_for(i),
        )))
    }
}

/// The handlers one server shares across connections.
pub struct Handlers(Arc<Backend>);

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.0.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.0.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.0.startup.clone()
    }
}

/// Accepts wire connections until the listener fails; each runs on its own task. With `tls`,
/// clients that ask for TLS get it (`tls::serve`); without, pgwire answers SSLRequest 'N'.
pub async fn serve(listener: TcpListener, state: AppState, tls: Option<tokio_rustls::TlsAcceptor>) {
    let handlers = Arc::new(Handlers(Arc::new(Backend::new(state))));
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                let handlers = handlers.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let served = match tls {
                        Some(tls) => tls::serve(socket, tls, handlers).await,
                        None => pgwire::tokio::process_socket(socket, None, handlers).await,
                    };
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "wire connection ended with an error");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "wire accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_session_settings_are_answered_and_engine_settings_are_not() {
        let one = |sql: &str| sandbox::split_all(sql).remove(0);
        assert!(ignored_set(&one("SET extra_float_digits = 3")));
        assert!(ignored_set(&one("set SESSION statement_timeout to 0")));
        assert!(!ignored_set(&one("SET threads = 64")));
        assert!(!ignored_set(&one("SET enable_external_access = true")));
    }

    #[test]
    fn psqls_owner_lookup_is_rewritten_to_the_session_macro() {
        assert_eq!(
            compatible("SELECT PG_CATALOG.pg_get_userbyid(c.relowner) FROM x"),
            "SELECT pg_get_userbyid(c.relowner) FROM x"
        );
        assert_eq!(compatible("SELECT 1"), "SELECT 1");
    }
}
