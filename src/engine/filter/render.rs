//! Renders a parsed filter or sort order to SQL: resolves every column against the table, quotes
//! identifiers and escapes literals; it must never emit client text unquoted or unescaped.

use serde_json::json;

use super::{show, CmpOp, Expr, Literal, Operand, OrderKey};
use crate::engine::{find_column, quote_ident, sql_string, ColumnInfo};
use crate::error::{ApiError, ApiResult};

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
            let col = resolve(&key.column, columns, "order by")?;
            let dir = if key.descending { "DESC" } else { "ASC" };
            Ok(format!("{} {dir}", quote_ident(&col.name)))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(keys.join(", "))
}

/// The table's column named `name` (exact spelling first, then ignoring ASCII case like DuckDB).
fn resolve<'c>(name: &str, columns: &'c [ColumnInfo], context: &str) -> ApiResult<&'c ColumnInfo> {
    find_column(columns, name).ok_or_else(|| {
        let available: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        ApiError::bad_request_with(
            format!("unknown column {} in {context}", show(name)),
            json!({"column": name, "available": available}),
        )
    })
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
                self.operand(left)?;
                self.push(" ");
                self.push(op.sql());
                self.push(" ");
                self.operand(right)?;
            }
            Expr::In {
                operand,
                negated,
                list,
            } => {
                self.negatable(operand, *negated, "IN (")?;
                for (i, literal) in list.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.literal(literal);
                }
                self.push(")");
            }
            Expr::Between {
                operand,
                negated,
                low,
                high,
            } => {
                self.negatable(operand, *negated, "BETWEEN ")?;
                self.operand(low)?;
                self.push(" AND ");
                self.operand(high)?;
            }
            Expr::Like {
                operand,
                negated,
                ilike,
                pattern,
            } => {
                self.negatable(operand, *negated, if *ilike { "ILIKE " } else { "LIKE " })?;
                self.push(&sql_string(pattern));
            }
            Expr::IsNull { operand, negated } => {
                self.operand(operand)?;
                self.push(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
            Expr::Column(name) => {
                let col = resolve(name, self.columns, "filter")?;
                let ty = col.data_type.as_str();
                if !ty.eq_ignore_ascii_case("BOOLEAN") && !ty.eq_ignore_ascii_case("BOOL") {
                    return Err(ApiError::bad_request(format!(
                        "column {} is {ty}, not BOOLEAN, so it cannot be a condition by itself; compare it with a value",
                        show(&col.name)
                    )));
                }
                self.push(&quote_ident(&col.name));
            }
            Expr::Bool(b) => self.literal(&Literal::Bool(*b)),
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
    fn negatable(&mut self, operand: &Operand, negated: bool, keyword: &str) -> ApiResult<()> {
        self.operand(operand)?;
        self.push(if negated { " NOT " } else { " " });
        self.push(keyword);
        Ok(())
    }

    fn operand(&mut self, operand: &Operand) -> ApiResult<()> {
        match operand {
            Operand::Column(name) => {
                let col = resolve(name, self.columns, "filter")?;
                self.push(&quote_ident(&col.name));
            }
            Operand::Literal(literal) => self.literal(literal),
        }
        Ok(())
    }

    fn literal(&mut self, literal: &Literal) {
        match literal {
            Literal::Str(s) => self.push(&sql_string(s)),
            Literal::Number(n) => self.push(n),
            Literal::Bool(true) => self.push("TRUE"),
            Literal::Bool(false) => self.push("FALSE"),
            Literal::Null => self.push("NULL"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::filter::fixtures::{cols, details, rejected, sql};
    use crate::engine::filter::Filter;

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
}
