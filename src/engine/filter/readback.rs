//! Test-only oracle for the filter property tests: reads rendered SQL back through DuckDB's own
//! parser and compares it with the tree we parsed; nothing outside the tests may use it.

use std::cell::Cell;

use duckdb::Connection;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

use super::render::json_number;
use super::{CmpOp, ColumnInfo, Expr, Filter, Literal, Operand};
use crate::engine::values::{is_json_type, json_filter_text};
use crate::engine::{find_column, quote_ident};
use crate::error::{ApiError, ErrorCode};

/// How DuckDB words type and range errors: the only refusals allowed for inputs not well-typed
/// by construction. Constant comparisons are folded while planning, so even a prepare can meet a
/// string that does not convert or a number too large for any type.
const TYPE_ERRORS: &[&str] = &[
    "Binder Error: Cannot compare values of type",
    "Binder Error: Cannot mix values of type",
    "Binder Error: No function matches the given name and argument types '~~",
    "Binder Error: No function matches the given name and argument types '!~~",
    "Conversion Error: ",
    "Out of Range Error: ",
];

/// What became of the inputs: read back, refused by us, refused by DuckDB for their types.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tally {
    pub(super) read_back: usize,
    pub(super) refused: usize,
    pub(super) type_errors: usize,
}

/// An in-memory DuckDB with the sample table, and what DuckDB makes of `SELECT * FROM t`.
pub(super) struct Oracle {
    conn: Connection,
    pub(super) columns: Vec<ColumnInfo>,
    /// The parsed statement of `SELECT * FROM t WHERE TRUE` without its WHERE clause.
    frame: Value,
    tally: Cell<Tally>,
}

impl Oracle {
    /// A table `t` with `columns`, holding `rows` (each a list of SQL values).
    pub(super) fn new(columns: Vec<ColumnInfo>, rows: &[&str]) -> Oracle {
        let conn = Connection::open_in_memory().expect("in-memory DuckDB");
        let defs: Vec<String> = columns
            .iter()
            .map(|c| format!("{} {}", quote_ident(&c.name), c.data_type))
            .collect();
        let setup = format!(
            "CREATE TABLE t ({}); INSERT INTO t VALUES ({});",
            defs.join(", "),
            rows.join("), (")
        );
        conn.execute_batch(&setup).expect("sample table");
        let mut oracle = Oracle {
            conn,
            columns,
            frame: Value::Null,
            tally: Cell::default(),
        };
        oracle.frame = oracle.statement("TRUE").expect("frame").0;
        oracle
    }

    /// DuckDB's parse of `SELECT * FROM t WHERE <condition>`: the statement without locations
    /// and WHERE clause, and the WHERE clause.
    fn statement(&self, condition: &str) -> Result<(Value, Value), String> {
        let query = format!("SELECT * FROM t WHERE {condition}");
        let text: String = self
            .conn
            .query_row("SELECT json_serialize_sql(?)", [&query], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        let mut parsed: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        strip_locations(&mut parsed);
        if parsed["error"] != json!(false) {
            return Err(format!("DuckDB cannot parse {condition}: {parsed}"));
        }
        let statements = parsed["statements"].as_array().cloned().unwrap_or_default();
        let Ok([mut statement]) = <[Value; 1]>::try_from(statements) else {
            return Err(format!("not exactly one statement: {parsed}"));
        };
        let condition = statement["node"]
            .as_object_mut()
            .and_then(|node| node.remove("where_clause"))
            .unwrap_or(Value::Null);
        Ok((statement, condition))
    }

    /// What became of the inputs so far.
    pub(super) fn tally(&self) -> Tally {
        self.tally.get()
    }

    fn count(&self, outcome: fn(&mut Tally) -> &mut usize) {
        let mut tally = self.tally.get();
        *outcome(&mut tally) += 1;
        self.tally.set(tally);
    }

    /// The property for one text filter; `grammar`-shaped ones must be accepted and run.
    pub(super) fn check(&self, text: &str, grammar: bool) -> Result<(), TestCaseError> {
        let parsed = Filter::parse(text).and_then(|f| Ok((f.to_sql(&self.columns)?, f)));
        match parsed {
            Ok((sql, filter)) => self.reads_back(&sql, &filter.expr, grammar),
            Err(err) => {
                prop_assert!(!grammar, "grammar-shaped input refused: {err}");
                self.refused(err)
            }
        }
    }

    /// A refusal must be a 400 `invalid_where_clause` that says something.
    pub(super) fn refused(&self, err: ApiError) -> Result<(), TestCaseError> {
        let message = err.to_string();
        prop_assert_eq!(
            err.status(),
            axum::http::StatusCode::BAD_REQUEST,
            "not a 400: {:?}",
            err
        );
        prop_assert_eq!(err.code(), ErrorCode::InvalidWhereClause, "{:?}", err);
        prop_assert!(!message.trim().is_empty(), "empty message");
        self.count(|t| &mut t.refused);
        Ok(())
    }

    /// DuckDB parses `sql` as one WHERE condition equal to `expr`, and binds it; grammar-shaped
    /// (well-typed) filters must also run.
    pub(super) fn reads_back(
        &self,
        sql: &str,
        expr: &Expr,
        run: bool,
    ) -> Result<(), TestCaseError> {
        let (frame, condition) = self.statement(sql).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&frame, &self.frame, "the SQL reaches beyond WHERE: {}", sql);
        let theirs = duckdb_form(&condition).map_err(TestCaseError::fail)?;
        prop_assert_eq!(
            our_form(expr, &self.columns),
            theirs,
            "DuckDB reads {}",
            sql
        );
        let query = format!("SELECT count(*) FROM t WHERE {sql}");
        let outcome = match run {
            true => self
                .conn
                .query_row(&query, [], |r| r.get::<_, i64>(0))
                .map(drop),
            false => self.conn.prepare(&query).map(drop),
        };
        if let Err(e) = outcome {
            // Inputs that are not well-typed by construction may compare a text column with a
            // number, apply LIKE to a number, compare a boolean with 'x' or hold a 50-digit
            // number. The grammar is untyped on purpose; DuckDB refuses those naming the type or
            // range: never SQL out of place (the read-back above showed the condition is ours).
            let text = e.to_string();
            let type_error = TYPE_ERRORS.iter().any(|kind| text.starts_with(kind));
            prop_assert!(!run && type_error, "DuckDB refuses {}: {}", sql, text);
            self.count(|t| &mut t.type_errors);
        } else {
            self.count(|t| &mut t.read_back);
        }
        Ok(())
    }
}

fn strip_locations(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with("query_location"));
            map.values_mut().for_each(strip_locations);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_locations),
        _ => {}
    }
}

/// Our tree in a form comparable with DuckDB's: AND/OR flattened, columns resolved, and where a
/// JSON column takes part, both sides as `json(...)` values.
fn our_form(expr: &Expr, columns: &[ColumnInfo]) -> String {
    let json_column = |o: &Operand| match o {
        Operand::Column(name) => {
            find_column(columns, name).is_some_and(|c| is_json_type(&c.data_type))
        }
        Operand::Literal(_) => false,
    };
    let json_context = |operands: &[&Operand]| operands.iter().any(|o| json_column(o));
    let operand = |o: &Operand, json: bool| match o {
        Operand::Column(name) if json && json_column(o) => {
            format!("json({})", column_form(name, columns))
        }
        Operand::Column(name) => column_form(name, columns),
        Operand::Literal(l) => literal_form(l, json),
    };
    let not = |negated: bool, inner: String| match negated {
        true => format!("not({inner})"),
        false => inner,
    };
    match expr {
        Expr::Or(_) | Expr::And(_) => {
            let kind = if matches!(expr, Expr::Or(_)) {
                "or"
            } else {
                "and"
            };
            let mut items = Vec::new();
            flatten_ours(expr, &mut items);
            let items: Vec<String> = items.iter().map(|e| our_form(e, columns)).collect();
            match items.as_slice() {
                [only] => only.clone(),
                _ => format!("{kind}({})", items.join(",")),
            }
        }
        Expr::Not(inner) => format!("not({})", our_form(inner, columns)),
        Expr::Compare(l, op, r) => {
            let name = match op {
                CmpOp::Eq => "eq",
                CmpOp::Ne => "ne",
                CmpOp::Lt => "lt",
                CmpOp::Le => "le",
                CmpOp::Gt => "gt",
                CmpOp::Ge => "ge",
            };
            let json = json_context(&[l, r]);
            format!("{name}({},{})", operand(l, json), operand(r, json))
        }
        Expr::In {
            operand: o,
            negated,
            list,
        } => {
            let json = json_context(&[o]);
            let list: Vec<String> = list.iter().map(|l| literal_form(l, json)).collect();
            not(
                *negated,
                format!("in({},{})", operand(o, json), list.join(",")),
            )
        }
        Expr::Between {
            operand: o,
            negated,
            low,
            high,
        } => {
            let json = json_context(&[o, low, high]);
            let (o, low, high) = (operand(o, json), operand(low, json), operand(high, json));
            not(*negated, format!("between({o},{low},{high})"))
        }
        Expr::Like {
            operand: o,
            negated,
            ilike,
            pattern,
        } => {
            let name = match (negated, ilike) {
                (false, false) => "~~",
                (true, false) => "!~~",
                (false, true) => "~~*",
                (true, true) => "!~~*",
            };
            format!("{name}({},str:{pattern:?})", operand(o, false))
        }
        Expr::IsNull {
            operand: o,
            negated: false,
        } => format!("isnull({})", operand(o, false)),
        Expr::IsNull { operand: o, .. } => format!("isnotnull({})", operand(o, false)),
        Expr::Column(name) => column_form(name, columns),
        Expr::Bool(b) => literal_form(&Literal::Bool(*b), false),
    }
}

fn flatten_ours<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    let same = |e: &Expr| std::mem::discriminant(e) == std::mem::discriminant(expr);
    match expr {
        Expr::Or(items) | Expr::And(items) => {
            for item in items {
                if same(item) {
                    flatten_ours(item, out);
                } else {
                    out.push(item);
                }
            }
        }
        other => out.push(other),
    }
}

fn column_form(name: &str, columns: &[ColumnInfo]) -> String {
    let resolved = find_column(columns, name).map_or(name, |c| c.name.as_str());
    format!("col:{resolved:?}")
}

/// A literal; compared with a JSON column (`json`), the JSON text it stands for inside `json()`.
fn literal_form(literal: &Literal, json: bool) -> String {
    let json_text = match literal {
        Literal::Str(s) => json_filter_text(s),
        Literal::Number(n) => json_number(n),
        Literal::Bool(b) => b.to_string(),
        Literal::Json(text) => text.clone(),
        Literal::Null => return "null".to_string(),
    };
    match literal {
        _ if json => format!("json(str:{json_text:?})"),
        Literal::Str(s) => format!("str:{s:?}"),
        Literal::Number(n) => format!("num:{n}"),
        Literal::Bool(b) => format!("bool:{b}"),
        // Refused when rendered outside a JSON comparison, so never read back.
        Literal::Null | Literal::Json(_) => "null".to_string(),
    }
}

/// DuckDB's parsed WHERE clause in the same form; anything outside the grammar is an error.
fn duckdb_form(node: &Value) -> Result<String, String> {
    let list = |items: &Value| -> Result<Vec<String>, String> {
        let items = items.as_array().ok_or(format!("no list in {node}"))?;
        items.iter().map(duckdb_form).collect()
    };
    let kind = node["type"].as_str().unwrap_or_default();
    let compare = [
        ("COMPARE_EQUAL", "eq"),
        ("COMPARE_NOTEQUAL", "ne"),
        ("COMPARE_LESSTHAN", "lt"),
        ("COMPARE_LESSTHANOREQUALTO", "le"),
        ("COMPARE_GREATERTHAN", "gt"),
        ("COMPARE_GREATERTHANOREQUALTO", "ge"),
    ];
    Ok(match (node["class"].as_str().unwrap_or_default(), kind) {
        ("CONJUNCTION", "CONJUNCTION_AND" | "CONJUNCTION_OR") => {
            let name = if kind == "CONJUNCTION_AND" {
                "and"
            } else {
                "or"
            };
            let mut items = Vec::new();
            flatten_theirs(node, kind, &mut items);
            let items = items
                .into_iter()
                .map(duckdb_form)
                .collect::<Result<Vec<_>, _>>()?;
            format!("{name}({})", items.join(","))
        }
        ("OPERATOR", "OPERATOR_NOT") => format!("not({})", list(&node["children"])?.join(",")),
        ("OPERATOR", "COMPARE_IN") => format!("in({})", list(&node["children"])?.join(",")),
        ("OPERATOR", "OPERATOR_IS_NULL") => format!("isnull({})", list(&node["children"])?[0]),
        ("OPERATOR", "OPERATOR_IS_NOT_NULL") => {
            format!("isnotnull({})", list(&node["children"])?[0])
        }
        ("COMPARISON", _) => {
            let Some((_, name)) = compare.iter().find(|(k, _)| *k == kind) else {
                return Err(format!("unexpected comparison {node}"));
            };
            let (l, r) = (duckdb_form(&node["left"])?, duckdb_form(&node["right"])?);
            format!("{name}({l},{r})")
        }
        ("BETWEEN", "COMPARE_BETWEEN") => format!(
            "between({},{},{})",
            duckdb_form(&node["input"])?,
            duckdb_form(&node["lower"])?,
            duckdb_form(&node["upper"])?
        ),
        ("FUNCTION", "FUNCTION") if node["function_name"] == "json" => {
            let plain = node["is_operator"] == json!(false) && node["filter"] == Value::Null;
            let args = node["arguments"].as_array().filter(|_| plain);
            match args.map(Vec::as_slice) {
                Some([arg]) => format!("json({})", duckdb_form(&arg["expression"])?),
                _ => return Err(format!("unexpected json call {node}")),
            }
        }
        ("FUNCTION", "FUNCTION") => {
            let name = node["function_name"].as_str().unwrap_or_default();
            let like = ["~~", "!~~", "~~*", "!~~*"].contains(&name);
            if !like || node["is_operator"] != json!(true) || node["filter"] != Value::Null {
                return Err(format!("unexpected function {node}"));
            }
            let args = node["arguments"]
                .as_array()
                .ok_or(format!("no arguments {node}"))?;
            let args = args
                .iter()
                .map(|a| duckdb_form(&a["expression"]))
                .collect::<Result<Vec<_>, _>>()?;
            format!("{name}({})", args.join(","))
        }
        ("COLUMN_REF", "COLUMN_REF") => match node["column_names"].as_array().map(Vec::as_slice) {
            Some([Value::String(name)]) => format!("col:{name:?}"),
            _ => return Err(format!("unexpected column reference {node}")),
        },
        ("CONSTANT", "VALUE_CONSTANT") => {
            let text = node["literal"]["text"].as_str().unwrap_or_default();
            match node["literal"]["kind"].as_str().unwrap_or_default() {
                "STRING" => format!("str:{text:?}"),
                "INTEGER" | "NUMERIC" => format!("num:{text}"),
                "BOOLEAN" => format!("bool:{text}"),
                "NULL_LITERAL" => "null".to_string(),
                _ => return Err(format!("unexpected constant {node}")),
            }
        }
        _ => return Err(format!("unexpected node {node}")),
    })
}

fn flatten_theirs<'v>(node: &'v Value, kind: &str, out: &mut Vec<&'v Value>) {
    for child in node["children"].as_array().into_iter().flatten() {
        if child["type"] == kind {
            flatten_theirs(child, kind, out);
        } else {
            out.push(child);
        }
    }
}
