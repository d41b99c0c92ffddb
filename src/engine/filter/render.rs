//! Renders a parsed filter or sort order to SQL: resolves every column against the table, quotes
//! identifiers and escapes literals; it must never emit client text unquoted or unescaped.

use serde_json::json;

use super::{invalid_filter, show, CmpOp, Expr, Literal, Operand, OrderKey};
use crate::engine::values::{is_json_type, json_filter_text};
use crate::engine::{find_column, quote_ident, sql_string, ColumnInfo};
use crate::error::{ApiError, ApiResult, ErrorCode};

impl CmpOp {
    fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// The filter as a SQL condition, e.g. `("status" = 'x') AND ("n" > 5)`.
pub(super) fn filter(expr: &Expr, columns: &[ColumnInfo]) -> ApiResult<String> {
    let mut sql = Sql {
        columns,
        out: String::new(),
    };
    sql.expr(expr)?;
    Ok(sql.out)
}

/// The sort keys as an ORDER BY list, e.g. `"a" ASC, "b" DESC`.
pub(super) fn order_by(keys: &[OrderKey], columns: &[ColumnInfo]) -> ApiResult<String> {
    let keys = keys
        .iter()
        .map(|key| {
            let col = resolve(&key.column, columns, "order by", ErrorCode::InvalidRequest)?;
            let dir = if key.descending { "DESC" } else { "ASC" };
            Ok(format!("{} {dir}", quote_ident(&col.name)))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(keys.join(", "))
}

/// The table's column named `name` (exact spelling first, then ignoring ASCII case like DuckDB);
/// an unknown one is refused with `code`, the one of the clause it is in (`context`).
fn resolve<'c>(
    name: &str,
    columns: &'c [ColumnInfo],
    context: &str,
    code: ErrorCode,
) -> ApiResult<&'c ColumnInfo> {
    find_column(columns, name).ok_or_else(|| {
        let available: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        ApiError::new(code, format!("unknown column {} in {context}", show(name)))
            .with_details(json!({"column": name, "available": available}))
    })
}

/// A column named in a filter.
fn resolve_in_filter<'c>(name: &str, columns: &'c [ColumnInfo]) -> ApiResult<&'c ColumnInfo> {
    resolve(name, columns, "filter", ErrorCode::InvalidWhereClause)
}

/// A filter number as JSON number text: the filter grammar allows leading zeros, JSON does not
/// (DuckDB's json() refuses `007` when the query runs), and both mean the same number.
pub(super) fn json_number(number: &str) -> String {
    let (sign, unsigned) = match number.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", number),
    };
    let trimmed = unsigned.trim_start_matches('0');
    if trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{sign}{trimmed}")
    } else {
        format!("{sign}0{trimmed}")
    }
}

/// SQL being written for one table's columns.
struct Sql<'c> {
    columns: &'c [ColumnInfo],
    out: String,
}

impl Sql<'_> {
    fn push(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn expr(&mut self, expr: &Expr) -> ApiResult<()> {
        match expr {
            Expr::Or(items) => self.each_in_parens(items, " OR ")?,
            Expr::And(items) => self.each_in_parens(items, " AND ")?,
            Expr::Not(inner) => {
                self.push("NOT (");
                self.expr(inner)?;
                self.push(")");
            }
            Expr::Compare(left, op, right) => {
                let json = self.json_context(&[left, right]);
                self.operand(left, json)?;
                self.push(" ");
                self.push(op.sql());
                self.push(" ");
                self.operand(right, json)?;
            }
            Expr::In {
                operand,
                negated,
                list,
            } => {
                let json = self.json_context(&[operand]);
                self.negatable(operand, json, *negated, "IN (")?;
                for (i, literal) in list.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.literal(literal, json)?;
                }
                self.push(")");
            }
            Expr::Between {
                operand,
                negated,
                low,
                high,
            } => {
                let json = self.json_context(&[operand, low, high]);
                self.negatable(operand, json, *negated, "BETWEEN ")?;
                self.operand(low, json)?;
                self.push(" AND ");
                self.operand(high, json)?;
            }
            Expr::Like {
                operand,
                negated,
                ilike,
                pattern,
            } => {
                // LIKE matches the stored text, so a JSON column is not wrapped in json().
                let like = if *ilike { "ILIKE " } else { "LIKE " };
                self.negatable(operand, false, *negated, like)?;
                self.push(&sql_string(pattern));
            }
            Expr::IsNull { operand, negated } => {
                self.operand(operand, false)?;
                self.push(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
            Expr::Column(name) => {
                let col = resolve_in_filter(name, self.columns)?;
                let ty = col.data_type.as_str();
                if !ty.eq_ignore_ascii_case("BOOLEAN") && !ty.eq_ignore_ascii_case("BOOL") {
                    return Err(invalid_filter(format!(
                        "column {} is {ty}, not BOOLEAN, so it cannot be a condition by itself; compare it with a value",
                        show(&col.name)
                    )));
                }
                self.push(&quote_ident(&col.name));
            }
            Expr::Bool(b) => self.literal(&Literal::Bool(*b), false)?,
        }
        Ok(())
    }

    /// `(a) sep (b) sep (c)`: each item parenthesised so precedence never depends on DuckDB's.
    fn each_in_parens(&mut self, items: &[Expr], sep: &str) -> ApiResult<()> {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(sep);
            }
            self.push("(");
            self.expr(item)?;
            self.push(")");
        }
        Ok(())
    }

    /// `operand [NOT ]keyword`: the head shared by IN, BETWEEN, LIKE and ILIKE.
    fn negatable(
        &mut self,
        operand: &Operand,
        json: bool,
        negated: bool,
        keyword: &str,
    ) -> ApiResult<()> {
        self.operand(operand, json)?;
        self.push(if negated { " NOT " } else { " " });
        self.push(keyword);
        Ok(())
    }

    /// Whether a comparison involves a JSON column: then both sides compare as JSON values, so
    /// `'{"a": 1}'`, `'{"a":1}'` and the JSON form's `{"a":1}` all match the same rows.
    fn json_context(&self, operands: &[&Operand]) -> bool {
        operands.iter().any(|operand| match operand {
            Operand::Column(name) => {
                find_column(self.columns, name).is_some_and(|c| is_json_type(&c.data_type))
            }
            Operand::Literal(_) => false,
        })
    }

    fn operand(&mut self, operand: &Operand, json: bool) -> ApiResult<()> {
        match operand {
            Operand::Column(name) => {
                let col = resolve_in_filter(name, self.columns)?;
                // json() re-serializes compactly, so spacing in stored or given text does not matter.
                if json && is_json_type(&col.data_type) {
                    self.push(&format!("json({})", quote_ident(&col.name)));
                } else {
                    self.push(&quote_ident(&col.name));
                }
            }
            Operand::Literal(literal) => self.literal(literal, json)?,
        }
        Ok(())
    }

    /// A literal as SQL; compared with a JSON column (`json`), as the JSON value it stands for.
    fn literal(&mut self, literal: &Literal, json: bool) -> ApiResult<()> {
        let json_text = match (literal, json) {
            (Literal::Null, _) => None,
            (Literal::Str(s), true) => Some(json_filter_text(s)),
            (Literal::Number(n), true) => Some(json_number(n)),
            (Literal::Bool(b), true) => Some(b.to_string()),
            (Literal::Json(text), true) => Some(text.clone()),
            (Literal::Json(_), false) => {
                return Err(invalid_filter(
                    "values must be strings, numbers or booleans, not arrays or objects \
                     (those compare only with JSON columns)",
                ))
            }
            _ => None,
        };
        if let Some(text) = json_text {
            self.push(&format!("json({})", sql_string(&text)));
            return Ok(());
        }
        match literal {
            Literal::Str(s) => self.push(&sql_string(s)),
            Literal::Number(n) => self.push(n),
            Literal::Bool(true) => self.push("TRUE"),
            Literal::Bool(false) => self.push("FALSE"),
            Literal::Null | Literal::Json(_) => self.push("NULL"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::filter::fixtures::{col, cols, details, message, rejected, sql};
    use crate::engine::filter::{Condition, Filter};

    #[test]
    fn unknown_and_non_boolean_columns() {
        let err = Filter::parse("x = 1 AND a = 2")
            .and_then(|f| f.to_sql(&cols()))
            .unwrap_err();
        assert_eq!(err.to_string(), r#"unknown column "x" in filter"#);
        let details = details(err);
        assert_eq!(details["column"], "x");
        assert_eq!(details["available"][0], "status");
        assert_eq!(
            details["available"].as_array().map(Vec::len),
            Some(cols().len())
        );
        assert!(rejected("status").contains(r#"column "status" is VARCHAR, not BOOLEAN"#));
        assert!(rejected("order = 1").contains(r#""order" is not allowed here"#));
    }

    #[test]
    fn columns_render_with_the_tables_spelling_and_literals_escaped() {
        assert_eq!(
            sql(r#"NAME IN ('a''b', 1, TRUE, NULL) AND "WE""IRD" NOT LIKE 'x''%'"#),
            r#"("Name" IN ('a''b', 1, TRUE, NULL)) AND ("we""ird" NOT LIKE 'x''%')"#
        );
    }

    #[test]
    fn json_columns_compare_as_json_values() {
        let columns = [col("doc", "JSON"), col("n", "INTEGER")];
        let text = |f: &str| Filter::parse(f).and_then(|f| f.to_sql(&columns));
        assert_eq!(
            text(r#"doc = '{"a": 1}'"#).unwrap(),
            r#"json("doc") = json('{"a": 1}')"#
        );
        assert_eq!(
            text("doc IN ('x', 5)").unwrap(),
            r#"json("doc") IN (json('"x"'), json('5'))"#
        );
        assert_eq!(
            text("doc LIKE '%a%'").unwrap(),
            r#""doc" LIKE '%a%'"#,
            "LIKE matches the stored text"
        );
        assert_eq!(text("n = '5'").unwrap(), r#""n" = '5'"#);
        let structured = |json: &str| {
            let conditions: Vec<Condition> = serde_json::from_str(json).unwrap();
            Filter::structured(&conditions).and_then(|f| f.to_sql(&columns))
        };
        assert_eq!(
            structured(r#"[{"column":"doc","value":{"a":[1,2]}}]"#).unwrap(),
            r#"json("doc") = json('{"a":[1,2]}')"#
        );
        assert_eq!(
            structured(r#"[{"column":"doc","operator":"in","values":[[1],true]}]"#).unwrap(),
            r#"json("doc") IN (json('[1]'), json('true'))"#
        );
        let err = structured(r#"[{"column":"n","value":{"a":1}}]"#).unwrap_err();
        assert!(message(err).contains("compare only with JSON columns"));
    }

    #[test]
    fn numbers_compared_with_json_columns_are_json_numbers() {
        let columns = [col("doc", "JSON")];
        let text = |f: &str| Filter::parse(f).and_then(|f| f.to_sql(&columns));
        assert_eq!(
            text("doc IN (007, -00.5, 0, 00, 0e1, 10)").unwrap(),
            r#"json("doc") IN (json('7'), json('-0.5'), json('0'), json('0'), json('0e1'), json('10'))"#
        );
    }
}
