//! Client row filters and sort orders: the public types and entry points over a restricted
//! expression tree that we render to SQL ourselves, so user text never reaches DuckDB as SQL.

mod forms;
mod lexer;
mod parser;
mod render;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod property_test;
#[cfg(test)]
mod readback;

use serde::Deserialize;
use serde_json::Value;

use super::ColumnInfo;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// Longest filter or order-by text accepted, in bytes.
const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Deepest nesting of parentheses and NOTs accepted.
const MAX_DEPTH: usize = 64;
/// Most items in one IN list (text, Keboola and JSON forms alike).
const MAX_IN_ITEMS: usize = 10_000;
/// Most ORDER BY keys.
const MAX_ORDER_KEYS: usize = 16;

/// A parsed, validated-against-nothing-yet filter expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare(Operand, CmpOp, Operand),
    In {
        operand: Operand,
        negated: bool,
        list: Vec<Literal>,
    },
    Between {
        operand: Operand,
        negated: bool,
        low: Operand,
        high: Operand,
    },
    Like {
        operand: Operand,
        negated: bool,
        ilike: bool,
        pattern: String,
    },
    IsNull {
        operand: Operand,
        negated: bool,
    },
    /// A bare BOOLEAN column used as a condition.
    Column(String),
    Bool(bool),
}

impl Expr {
    /// One item as itself, several as `join(items)` (AND or OR of them).
    fn joined(items: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
        match <[Expr; 1]>::try_from(items) {
            Ok([only]) => only,
            Err(items) => join(items),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Column(String),
    Literal(Literal),
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    /// The number's text as written (validated), so DECIMAL precision survives.
    Number(String),
    Bool(bool),
    Null,
    /// An array or object from the JSON form, as compact JSON text (JSON columns only).
    Json(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// DuckDB refused a statement that carries a client filter. A filter value that does not
/// convert to its column's type (`age = 'abc'`, a 51-digit number for a BIGINT) only shows when
/// DuckDB binds or runs the statement: that is the client's error, 400 `invalid_where_clause`
/// naming DuckDB's reason. Anything else keeps its usual mapping (507 for a full disk, else 500).
pub fn refused_value(err: duckdb::Error) -> ApiError {
    let text = err.to_string();
    let client_caused = ["Conversion Error", "Out of Range Error"]
        .iter()
        .any(|kind| text.contains(kind));
    if !client_caused {
        return ApiError::from(err);
    }
    let cause = super::first_line(&text);
    ApiError::new(
        ErrorCode::InvalidWhereClause,
        format!("a filter value does not fit its column: {cause}"),
    )
    .with_details(serde_json::json!({ "cause": cause }))
}

impl Filter {
    /// Parses the reference's raw `where_filter` / `where_clause` string.
    pub fn parse(text: &str) -> ApiResult<Filter> {
        parser::filter(text).map(|expr| Filter { expr })
    }

    /// Keboola-style: whereColumn + whereValues + whereOperator ("eq" default | "ne").
    /// eq with one value => col = v; eq with many => col IN (...); ne => <> / NOT IN. Empty values => 400.
    /// Values are strings (compared as string literals; DuckDB casts them to the column type).
    pub fn keboola(column: &str, values: &[String], operator: Option<&str>) -> ApiResult<Filter> {
        forms::keboola(column, values, operator).map(|expr| Filter { expr })
    }

    /// JSON form: a list of conditions, combined with AND.
    pub fn structured(conditions: &[Condition]) -> ApiResult<Filter> {
        forms::structured(conditions).map(|expr| Filter { expr })
    }

    /// Both must hold.
    pub fn and(self, other: Filter) -> Filter {
        let mut items = Vec::new();
        for expr in [self.expr, other.expr] {
            match expr {
                Expr::And(inner) => items.extend(inner),
                expr => items.push(expr),
            }
        }
        Filter {
            expr: Expr::And(items),
        }
    }

    /// Checks every column against `columns` and renders SQL, e.g. `("status" = 'x') AND ("n" > 5)`.
    /// Identifiers double-quoted with " doubled; strings single-quoted with ' doubled; numbers as written
    /// (validated); TRUE/FALSE/NULL as keywords.
    pub fn to_sql(&self, columns: &[ColumnInfo]) -> ApiResult<String> {
        render::filter(&self.expr, columns)
    }
}

/// One condition of the JSON filter form, e.g. {"column":"age","operator":"gt","values":[30]}.
#[derive(Debug, Clone, Deserialize)]
pub struct Condition {
    pub column: String,
    /// eq ne gt ge lt le in not_in like not_like ilike not_ilike between not_between is_null
    /// is_not_null (also the symbols = != <> > >= < <=); unknown => 400 listing the valid ones.
    #[serde(default = "default_operator")]
    pub operator: String,
    /// JSON scalars: string, number, bool (null only via is_null). Wrong arity => 400
    /// (between needs 2, is_null 0, eq/ne/gt.. 1, in/not_in >=1). Arrays/objects as values only
    /// against a JSON column, else 400.
    #[serde(default)]
    pub values: Vec<Value>,
    /// Convenience: a single value instead of `values`.
    #[serde(default)]
    pub value: Option<Value>,
}

fn default_operator() -> String {
    "eq".to_string()
}

/// ORDER BY: "col", "col DESC", "a asc, b desc" (also accepts "-col" meaning DESC).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    keys: Vec<OrderKey>,
}

#[derive(Debug, Clone, PartialEq)]
struct OrderKey {
    /// The column as written.
    column: String,
    descending: bool,
}

impl OrderBy {
    /// Parses the sort keys; at most 16, anything else 400.
    pub fn parse(text: &str) -> ApiResult<OrderBy> {
        parser::order_by(text).map(|keys| OrderBy { keys })
    }

    /// `"a" ASC, "b" DESC` (unknown column => 400).
    pub fn to_sql(&self, columns: &[ColumnInfo]) -> ApiResult<String> {
        render::order_by(&self.keys, columns)
    }
}

/// A filter the client cannot have meant: it does not parse, or does not fit the table. Sort
/// orders keep `invalid_request`, as they are no where clause.
fn invalid_filter(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidWhereClause, message)
}

/// A token for a message: Debug-quoted (control characters escaped) and cut at 40 characters.
fn show(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{:?}", format!("{}…", &text[..cut])),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::cols;
    use super::*;

    #[test]
    fn and_combines_filters() {
        let f = Filter::parse("a = 1 AND b = 2")
            .and_then(|f| Ok(f.and(Filter::parse("c = 3 OR flag")?)))
            .and_then(|f| f.to_sql(&cols()));
        assert_eq!(
            f.ok().as_deref(),
            Some(r#"("a" = 1) AND ("b" = 2) AND (("c" = 3) OR ("flag"))"#)
        );
    }

    #[test]
    fn filter_refusals_are_invalid_where_clause_and_sort_refusals_invalid_request() {
        let conditions: Vec<Condition> =
            serde_json::from_value(serde_json::json!([{"column": "n", "operator": "regex"}]))
                .unwrap_or_default();
        let filters = [
            Filter::parse("n = 1; DROP TABLE t").and_then(|f| f.to_sql(&cols())),
            Filter::parse(" ").and_then(|f| f.to_sql(&cols())),
            Filter::parse("nope = 1").and_then(|f| f.to_sql(&cols())),
            Filter::parse("status").and_then(|f| f.to_sql(&cols())),
            Filter::keboola("n", &["1".into()], Some("gt")).and_then(|f| f.to_sql(&cols())),
            Filter::keboola("nope", &["1".into()], None).and_then(|f| f.to_sql(&cols())),
            Filter::structured(&conditions).and_then(|f| f.to_sql(&cols())),
        ];
        for result in filters {
            let code = result.as_ref().map_err(ApiError::code).err();
            assert_eq!(code, Some(ErrorCode::InvalidWhereClause), "{result:?}");
        }
        let sorts = [
            OrderBy::parse("n; x").and_then(|o| o.to_sql(&cols())),
            OrderBy::parse("nope").and_then(|o| o.to_sql(&cols())),
        ];
        for result in sorts {
            let code = result.as_ref().map_err(ApiError::code).err();
            assert_eq!(code, Some(ErrorCode::InvalidRequest), "{result:?}");
        }
    }

    #[test]
    fn one_item_stands_alone_several_are_joined() {
        let one = Expr::joined(vec![Expr::Bool(true)], Expr::And);
        assert_eq!(one, Expr::Bool(true));
        let two = Expr::joined(vec![Expr::Bool(true), Expr::Bool(false)], Expr::Or);
        assert_eq!(two, Expr::Or(vec![Expr::Bool(true), Expr::Bool(false)]));
    }
}
