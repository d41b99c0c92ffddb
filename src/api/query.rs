//! Query-string and body forms shared by several routes: repeated query keys, the filter
//! forms (raw, structured, Keboola's where*), order, columns, limits. Parsing only, no handlers.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::principal::Principal;
use crate::engine::filter::{Condition, Filter, OrderBy};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::service::snapshots::AutoSnapshot;

/// Query parameters of a request, repeated keys kept (`whereValues=a&whereValues=b`).
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw: Option<String>) -> Self {
        Self(
            raw.map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// The last value of the first of `names` present.
    pub fn get(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| {
            self.0
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        })
    }

    pub fn all(&self, names: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `?async=true` (also `1`/`yes`).
    pub fn wants_async(&self) -> ApiResult<bool> {
        match self.get(&["async"]) {
            None => Ok(false),
            Some(v) => parse_bool("async", v),
        }
    }

    /// `?skip_snapshot=true`: a destructive change made without the auto-snapshot its
    /// settings promise (ADR 0029); `by` is the caller, recorded on the snapshot otherwise.
    pub fn auto_snapshot(&self, by: &Principal) -> ApiResult<AutoSnapshot> {
        let skip = match self.get(&["skip_snapshot"]) {
            None => false,
            Some(v) => parse_bool("skip_snapshot", v)?,
        };
        Ok(AutoSnapshot {
            skip,
            by: by.caller_id(),
        })
    }

    pub fn number(&self, name: &str) -> ApiResult<Option<i64>> {
        self.get(&[name])
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::unprocessable(format!(
                        "query parameter {name} must be an integer, got {v:?}"
                    ))
                    .with_details(json!({ name: v }))
                })
            })
            .transpose()
    }

    /// Every filter form the query may carry, combined with AND.
    pub fn filter(&self) -> ApiResult<Option<Filter>> {
        let conditions = match self.get(&["filters", "where_filters"]) {
            None => None,
            Some(text) => Some(serde_json::from_str::<Vec<Condition>>(text).map_err(|e| {
                invalid_filter(format!(
                    "filters must be a JSON array of {{column, operator, values}}: {e}"
                ))
            })?),
        };
        let mut values = self.all(&[
            "whereValues",
            "whereValues[]",
            "where_values",
            "where_values[]",
        ]);
        values.retain(|v| !v.is_empty());
        FilterInput {
            raw: self
                .get(&["where_filter", "where_clause"])
                .map(str::to_string),
            conditions,
            column: self
                .get(&["whereColumn", "where_column"])
                .map(str::to_string),
            values: (!values.is_empty()).then_some(values),
            operator: self
                .get(&["whereOperator", "where_operator"])
                .map(str::to_string),
        }
        .build()
    }

    pub fn columns(&self) -> Option<Vec<String>> {
        self.get(&["columns"]).map(|c| {
            c.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    pub fn order_by(&self) -> ApiResult<Option<OrderBy>> {
        self.get(&["order_by", "orderBy"])
            .filter(|o| !o.trim().is_empty())
            .map(OrderBy::parse)
            .transpose()
    }
}

/// Longest free-text description a branch or snapshot keeps.
const MAX_DESCRIPTION_BYTES: usize = 1000;

/// 400 for a description over `MAX_DESCRIPTION_BYTES`.
pub(crate) fn check_description(description: Option<&str>) -> ApiResult<()> {
    if description.is_some_and(|d| d.len() > MAX_DESCRIPTION_BYTES) {
        return Err(ApiError::bad_request(format!(
            "description must be at most {MAX_DESCRIPTION_BYTES} bytes"
        )));
    }
    Ok(())
}

/// `limit` (1..=1000, default 100) and `offset` (≥ 0, default 0) of a paged list; 422 else.
pub(crate) fn page(limit: Option<i64>, offset: Option<i64>) -> ApiResult<(usize, usize)> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit must be between 1 and 1000, got {limit}"
        )));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::unprocessable(format!(
            "offset must be 0 or more, got {offset}"
        )));
    }
    Ok((limit as usize, offset as usize))
}

pub(crate) fn parse_bool(name: &str, v: &str) -> ApiResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(ApiError::unprocessable(format!(
            "query parameter {name} must be true or false, got {v:?}"
        ))),
    }
}

/// The filter forms a request may carry: the reference's raw string, the JSON list of
/// conditions, and Keboola's whereColumn/whereValues/whereOperator. All present ones must hold.
#[derive(Default)]
struct FilterInput {
    raw: Option<String>,
    conditions: Option<Vec<Condition>>,
    column: Option<String>,
    values: Option<Vec<String>>,
    operator: Option<String>,
}

impl FilterInput {
    fn build(self) -> ApiResult<Option<Filter>> {
        let mut parts = Vec::new();
        if let Some(raw) = self.raw.filter(|r| !r.trim().is_empty()) {
            parts.push(Filter::parse(&raw)?);
        }
        if let Some(conditions) = self.conditions.filter(|c| !c.is_empty()) {
            parts.push(Filter::structured(&conditions)?);
        }
        match (self.column, self.values) {
            (Some(column), Some(values)) => {
                parts.push(Filter::keboola(&column, &values, self.operator.as_deref())?)
            }
            (Some(_), None) => {
                return Err(invalid_filter(
                    "whereColumn needs whereValues (one or more values to compare with)",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid_filter(
                    "whereValues needs whereColumn (the column to compare)",
                ))
            }
            (None, None) => {}
        }
        Ok(parts.into_iter().reduce(Filter::and))
    }
}

/// 400 `invalid_where_clause`: a filter form that is malformed or incomplete.
pub fn invalid_filter(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidWhereClause, message)
}

/// Keboola sends whereValues as strings, but numbers are common too.
fn value_strings(values: Option<Vec<Value>>) -> ApiResult<Option<Vec<String>>> {
    values
        .map(|vs| {
            vs.into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Bool(b) => Ok(b.to_string()),
                    other => Err(invalid_filter(format!(
                        "whereValues must hold strings or numbers, got {other}"
                    ))),
                })
                .collect()
        })
        .transpose()
}

/// The filter fields a JSON body may carry besides the raw string (see `FilterInput`).
#[derive(Deserialize, Default)]
pub struct BodyFilters {
    where_filter: Option<String>,
    where_filters: Option<Vec<Condition>>,
    #[serde(rename = "whereColumn")]
    where_column: Option<String>,
    #[serde(rename = "whereValues")]
    where_values: Option<Vec<Value>>,
    #[serde(rename = "whereOperator")]
    where_operator: Option<String>,
}

impl BodyFilters {
    /// All filter forms of the body, `raw` (the route's own SQL-like field) taking precedence
    /// over `where_filter`.
    pub fn build(self, raw: Option<String>) -> ApiResult<Option<Filter>> {
        FilterInput {
            raw: raw.or(self.where_filter),
            conditions: self.where_filters,
            column: self.where_column,
            values: value_strings(self.where_values)?,
            operator: self.where_operator,
        }
        .build()
    }
}

/// A row limit from a body or query: absent means all rows.
pub fn check_limit(limit: Option<i64>) -> ApiResult<Option<u64>> {
    match limit {
        Some(n) if n < 0 => Err(ApiError::unprocessable(format!(
            "limit must not be negative, got {n}"
        ))
        .with_details(json!({ "limit": n }))),
        other => Ok(other.map(|n| n as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that flattens the filter fields beside its own, as the row-delete body does.
    #[derive(Deserialize)]
    struct DeleteRowsBody {
        #[serde(rename = "where_clause")]
        _where_clause: Option<String>,
        #[serde(flatten)]
        filters: BodyFilters,
    }

    #[test]
    fn body_filters_keep_numbers_through_the_flattened_fields() {
        let body: DeleteRowsBody = super::super::extract::parse_json(
            br#"{"whereColumn": "id", "whereValues": [1, 2.50, "x"], "whereOperator": "ne"}"#,
        )
        .unwrap();
        assert_eq!(
            value_strings(body.filters.where_values).unwrap(),
            Some(vec!["1".to_string(), "2.50".to_string(), "x".to_string()])
        );
    }
}
