//! The two non-text filter forms: Keboola's whereColumn/whereValues/whereOperator and the JSON
//! list of conditions, built straight into the expression tree; they must not produce SQL text.

use serde_json::{json, Value};

use super::lexer::is_number;
use super::{invalid_filter, show, CmpOp, Condition, Expr, Literal, Operand, MAX_IN_ITEMS};
use crate::error::ApiResult;

/// What a JSON-form operator does; the arity is checked against it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Cmp(CmpOp),
    In,
    Like { ilike: bool },
    Between,
    IsNull,
}

impl Kind {
    fn arity(self) -> String {
        match self {
            Self::Cmp(_) | Self::Like { .. } => "exactly 1 value".to_string(),
            Self::In => format!("between 1 and {MAX_IN_ITEMS} values"),
            Self::Between => "exactly 2 values".to_string(),
            Self::IsNull => "no values".to_string(),
        }
    }
}

/// The JSON form's operators as (name, kind, negated), in the order its error message lists them.
const OPERATORS: &[(&str, Kind, bool)] = &[
    ("eq", Kind::Cmp(CmpOp::Eq), false),
    ("ne", Kind::Cmp(CmpOp::Ne), false),
    ("gt", Kind::Cmp(CmpOp::Gt), false),
    ("ge", Kind::Cmp(CmpOp::Ge), false),
    ("lt", Kind::Cmp(CmpOp::Lt), false),
    ("le", Kind::Cmp(CmpOp::Le), false),
    ("in", Kind::In, false),
    ("not_in", Kind::In, true),
    ("like", Kind::Like { ilike: false }, false),
    ("not_like", Kind::Like { ilike: false }, true),
    ("ilike", Kind::Like { ilike: true }, false),
    ("not_ilike", Kind::Like { ilike: true }, true),
    ("between", Kind::Between, false),
    ("not_between", Kind::Between, true),
    ("is_null", Kind::IsNull, false),
    ("is_not_null", Kind::IsNull, true),
    ("=", Kind::Cmp(CmpOp::Eq), false),
    ("!=", Kind::Cmp(CmpOp::Ne), false),
    ("<>", Kind::Cmp(CmpOp::Ne), false),
    (">", Kind::Cmp(CmpOp::Gt), false),
    (">=", Kind::Cmp(CmpOp::Ge), false),
    ("<", Kind::Cmp(CmpOp::Lt), false),
    ("<=", Kind::Cmp(CmpOp::Le), false),
];

/// Keboola form: one value => `col = v` (`<>` for "ne"), several => `col [NOT] IN (...)`.
pub(super) fn keboola(column: &str, values: &[String], operator: Option<&str>) -> ApiResult<Expr> {
    let negated = match operator.map(|o| o.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("eq") => false,
        Some("ne") => true,
        Some(_) => {
            return Err(invalid_filter(format!(
                "whereOperator must be \"eq\" or \"ne\", got {}",
                show(operator.unwrap_or_default())
            )))
        }
    };
    if values.is_empty() {
        return Err(invalid_filter(
            "whereValues must not be empty when whereColumn is given",
        ));
    }
    if values.len() > MAX_IN_ITEMS {
        return Err(invalid_filter(format!(
            "whereValues may hold at most {MAX_IN_ITEMS} values, got {}",
            values.len()
        )));
    }
    let list = values
        .iter()
        .map(|v| string_literal(v).map_err(|e| invalid_filter(format!("whereValues: {e}"))))
        .collect::<ApiResult<Vec<_>>>()?;
    let operand = Operand::Column(column.to_string());
    Ok(match <[Literal; 1]>::try_from(list) {
        Ok([only]) => {
            let op = if negated { CmpOp::Ne } else { CmpOp::Eq };
            Expr::Compare(operand, op, Operand::Literal(only))
        }
        Err(list) => Expr::In {
            operand,
            negated,
            list,
        },
    })
}

/// JSON form: every condition must hold.
pub(super) fn structured(conditions: &[Condition]) -> ApiResult<Expr> {
    if conditions.is_empty() {
        return Err(invalid_filter("the filter has no conditions"));
    }
    let items = conditions
        .iter()
        .enumerate()
        .map(|(i, c)| c.expr(i))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Expr::joined(items, Expr::And))
}

impl Condition {
    fn expr(&self, index: usize) -> ApiResult<Expr> {
        let fail = |msg: String| {
            invalid_filter(format!(
                "filter condition {index} on column {}: {msg}",
                show(&self.column)
            ))
            .with_details(json!({"condition": index, "column": self.column}))
        };
        let values: Vec<&Value> = match (&self.value, self.values.as_slice()) {
            (Some(v), []) => vec![v],
            (Some(_), _) => return Err(fail("give either value or values, not both".into())),
            (None, vs) => vs.iter().collect(),
        };
        let name = self.operator.trim().to_ascii_lowercase();
        let Some(&(_, kind, negated)) = OPERATORS.iter().find(|(op, ..)| *op == name) else {
            let valid: Vec<&str> = OPERATORS.iter().map(|(op, ..)| *op).collect();
            return Err(fail(format!(
                "unknown operator {}; valid operators: {}",
                show(&self.operator),
                valid.join(", ")
            )));
        };
        let lits = values
            .iter()
            .map(|v| json_literal(v).map_err(&fail))
            .collect::<ApiResult<Vec<_>>>()?;
        let operand = Operand::Column(self.column.clone());
        let lit = |l: &Literal| Operand::Literal(l.clone());
        Ok(match (kind, lits.as_slice()) {
            (Kind::Cmp(op), [v]) => Expr::Compare(operand, op, lit(v)),
            (Kind::In, list) if (1..=MAX_IN_ITEMS).contains(&list.len()) => Expr::In {
                operand,
                negated,
                list: list.to_vec(),
            },
            (Kind::Like { ilike }, [Literal::Str(pattern)]) => Expr::Like {
                operand,
                negated,
                ilike,
                pattern: pattern.clone(),
            },
            (Kind::Like { .. }, [_]) => {
                return Err(fail("the LIKE pattern must be a string".into()))
            }
            (Kind::Between, [low, high]) => Expr::Between {
                operand,
                negated,
                low: lit(low),
                high: lit(high),
            },
            (Kind::IsNull, []) => Expr::IsNull { operand, negated },
            (kind, _) => {
                return Err(fail(format!(
                    "operator {} needs {}, got {}",
                    show(&self.operator),
                    kind.arity(),
                    lits.len()
                )))
            }
        })
    }
}

fn json_literal(value: &Value) -> Result<Literal, String> {
    match value {
        Value::String(s) => string_literal(s),
        Value::Number(n) => {
            let text = n.to_string();
            if is_number(&text) {
                Ok(Literal::Number(text))
            } else {
                Err(format!("unsupported number {}", show(&text)))
            }
        }
        Value::Bool(b) => Ok(Literal::Bool(*b)),
        Value::Null => Err("null is not a value; use the is_null or is_not_null operator".into()),
        Value::Array(_) | Value::Object(_) => Ok(Literal::Json(value.to_string())),
    }
}

fn string_literal(s: &str) -> Result<Literal, String> {
    if s.contains('\0') {
        return Err("NUL characters are not allowed in values".into());
    }
    Ok(Literal::Str(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::OPERATORS;
    use crate::engine::filter::fixtures::{cols, details, message};
    use crate::engine::filter::{Condition, Filter};
    use crate::error::ApiResult;

    #[test]
    fn keboola_form() {
        let render = |column: &str, values: &[&str], op: Option<&str>| {
            let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            Filter::keboola(column, &values, op).and_then(|f| f.to_sql(&cols()))
        };
        assert_eq!(
            render("status", &["x"], None).ok().as_deref(),
            Some(r#""status" = 'x'"#)
        );
        assert_eq!(
            render("STATUS", &["x", "it's"], Some("eq")).ok().as_deref(),
            Some(r#""status" IN ('x', 'it''s')"#)
        );
        assert_eq!(
            render("n", &["5"], Some("ne")).ok().as_deref(),
            Some(r#""n" <> '5'"#)
        );
        assert_eq!(
            render("n", &["5", "6"], Some("NE")).ok().as_deref(),
            Some(r#""n" NOT IN ('5', '6')"#)
        );
        assert!(
            message(render("n", &[], None).unwrap_err()).contains("whereValues must not be empty")
        );
        assert!(message(render("n", &["1"], Some("gt")).unwrap_err()).contains(r#"got "gt""#));
        assert!(
            message(render("nope", &["1"], None).unwrap_err()).contains(r#"unknown column "nope""#)
        );
        assert!(message(render("n", &["a\0"], None).unwrap_err()).contains("NUL"));
    }

    fn conditions(json: &str) -> ApiResult<String> {
        let conditions: Vec<Condition> =
            serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test json {json}: {e}"));
        Filter::structured(&conditions).and_then(|f| f.to_sql(&cols()))
    }

    #[test]
    fn structured_form() {
        let cases = [
            (
                r#"[{"column":"n","operator":"gt","values":[30]}]"#,
                r#""n" > 30"#,
            ),
            (r#"[{"column":"n","value":30}]"#, r#""n" = 30"#),
            (
                r#"[{"column":"n","operator":">=","value":1.50}]"#,
                r#""n" >= 1.50"#,
            ),
            (
                r#"[{"column":"n","operator":"lt","value":-1e-2}]"#,
                r#""n" < -1e-2"#,
            ),
            (
                r#"[{"column":"flag","operator":"ne","value":true}]"#,
                r#""flag" <> TRUE"#,
            ),
            (
                r#"[{"column":"status","operator":"in","values":["a","b'c"]},{"column":"n","operator":"le","value":9}]"#,
                r#"("status" IN ('a', 'b''c')) AND ("n" <= 9)"#,
            ),
            (
                r#"[{"column":"n","operator":"not_in","values":[1]}]"#,
                r#""n" NOT IN (1)"#,
            ),
            (
                r#"[{"column":"Name","operator":"like","value":"J%"}]"#,
                r#""Name" LIKE 'J%'"#,
            ),
            (
                r#"[{"column":"Name","operator":"not_like","value":"J%"}]"#,
                r#""Name" NOT LIKE 'J%'"#,
            ),
            (
                r#"[{"column":"Name","operator":"ILIKE","value":"j%"}]"#,
                r#""Name" ILIKE 'j%'"#,
            ),
            (
                r#"[{"column":"n","operator":"between","values":[1,"5"]}]"#,
                r#""n" BETWEEN 1 AND '5'"#,
            ),
            (r#"[{"column":"n","operator":"is_null"}]"#, r#""n" IS NULL"#),
            (
                r#"[{"column":"My Col","operator":"is_not_null"}]"#,
                r#""My Col" IS NOT NULL"#,
            ),
            (
                r#"[{"column":"n","operator":"<>","value":"x'; DROP TABLE t; --"}]"#,
                r#""n" <> 'x''; DROP TABLE t; --'"#,
            ),
        ];
        for (json, want) in cases {
            match conditions(json) {
                Ok(sql) => assert_eq!(sql, want, "for {json}"),
                Err(e) => panic!("{json} failed: {e}"),
            }
        }
    }

    #[test]
    fn structured_form_errors() {
        let cases = [
            ("[]", "no conditions"),
            (
                r#"[{"column":"n","operator":"between","values":[1]}]"#,
                r#"operator "between" needs exactly 2 values, got 1"#,
            ),
            (
                r#"[{"column":"n","operator":"is_null","values":[1]}]"#,
                "needs no values, got 1",
            ),
            (
                r#"[{"column":"n","operator":"eq","values":[1,2]}]"#,
                "needs exactly 1 value, got 2",
            ),
            (
                r#"[{"column":"n","operator":"gt"}]"#,
                "needs exactly 1 value, got 0",
            ),
            (
                r#"[{"column":"n","operator":"in","values":[]}]"#,
                "needs between 1 and 10000 values, got 0",
            ),
            (
                r#"[{"column":"n","operator":"like","value":5}]"#,
                "pattern must be a string",
            ),
            (
                r#"[{"column":"n","operator":"eq","value":[1]}]"#,
                "not arrays or objects",
            ),
            (
                r#"[{"column":"n","operator":"in","values":[{"a":1}]}]"#,
                "not arrays or objects",
            ),
            (
                r#"[{"column":"n","operator":"eq","values":[null]}]"#,
                "use the is_null",
            ),
            (
                r#"[{"column":"n","value":1,"values":[2]}]"#,
                "either value or values",
            ),
            (
                r#"[{"column":"n","operator":"regex","value":"x"}]"#,
                r#"unknown operator "regex"; valid operators: eq, ne, gt"#,
            ),
            (
                r#"[{"column":"x","value":1}]"#,
                r#"unknown column "x" in filter"#,
            ),
        ];
        for (json, want) in cases {
            match conditions(json) {
                Ok(sql) => panic!("{json} was accepted as {sql}"),
                Err(e) => {
                    let msg = message(e);
                    assert!(msg.contains(want), "{json}: {msg:?} lacks {want:?}");
                }
            }
        }
        let err = conditions(r#"[{"column":"n","value":1},{"column":"n","operator":"between"}]"#);
        let details = details(err.unwrap_err());
        assert_eq!(details["condition"], 1);
        assert_eq!(details["column"], "n");
    }

    #[test]
    fn every_listed_operator_is_known() {
        for (name, ..) in OPERATORS {
            let json = format!(r#"[{{"column":"n","operator":"{name}"}}]"#);
            if let Err(e) = conditions(&json) {
                assert!(!e.to_string().contains("unknown operator"), "{name}: {e}");
            }
        }
    }
}
