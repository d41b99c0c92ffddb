//! Matching a file's columns to the table's: by name or by position, checking required ones.
//! Works on names only; it reads no file and runs no statement.

use serde_json::json;

use crate::engine::{find_column, ColumnInfo};
use crate::error::{ApiError, ApiResult, ErrorCode};

/// A file column and the table column it loads into.
#[derive(Debug, Clone)]
pub(super) struct Mapped {
    pub file: String,
    pub column: ColumnInfo,
}

/// Matches file columns to table columns: by name (case-insensitive, as DuckDB folds case)
/// when the file names its columns, by position otherwise.
pub(super) fn map_columns(
    file_columns: &[String],
    table: &[ColumnInfo],
    only: Option<&[String]>,
    by_name: bool,
) -> ApiResult<Vec<Mapped>> {
    let find = |name: &str| find_column(table, name);
    let available: Vec<&str> = table.iter().map(|c| c.name.as_str()).collect();
    if let Some(only) = only {
        let unknown: Vec<&String> = only.iter().filter(|c| find(c).is_none()).collect();
        if !unknown.is_empty() {
            return Err(invalid_columns(
                format!(
                    "import_options.columns names columns the table does not have: {unknown:?}"
                ),
                json!({ "unknown_columns": unknown, "available": available }),
            ));
        }
    }
    let mapped: Vec<Mapped> = if by_name {
        let mut seen = std::collections::HashSet::new();
        let dupes: Vec<&String> = file_columns
            .iter()
            .filter(|c| !seen.insert(c.to_ascii_lowercase()))
            .collect();
        if !dupes.is_empty() {
            return Err(invalid_columns(
                format!("the file names these columns more than once: {dupes:?}"),
                json!({ "duplicate_columns": dupes }),
            ));
        }
        let wanted: Vec<&String> = match only {
            Some(only) => {
                let absent: Vec<&String> = only
                    .iter()
                    .filter(|o| !file_columns.iter().any(|f| f.eq_ignore_ascii_case(o)))
                    .collect();
                if !absent.is_empty() {
                    return Err(invalid_columns(
                        format!("columns to import are missing from the file: {absent:?}"),
                        json!({ "missing_in_file": absent, "file_columns": file_columns }),
                    ));
                }
                file_columns
                    .iter()
                    .filter(|f| only.iter().any(|o| o.eq_ignore_ascii_case(f)))
                    .collect()
            }
            None => {
                let unknown: Vec<&String> =
                    file_columns.iter().filter(|f| find(f).is_none()).collect();
                if !unknown.is_empty() {
                    return Err(invalid_columns(
                        format!(
                            "the file has columns the table does not: {unknown:?}; add them to the table or list the columns to import in import_options.columns"
                        ),
                        json!({ "unknown_columns": unknown, "available": available }),
                    ));
                }
                file_columns.iter().collect()
            }
        };
        wanted
            .into_iter()
            .filter_map(|f| {
                find(f).map(|c| Mapped {
                    file: f.clone(),
                    column: c.clone(),
                })
            })
            .collect()
    } else {
        let targets: Vec<&ColumnInfo> = match only {
            Some(only) => only.iter().filter_map(|o| find(o)).collect(),
            None => table.iter().collect(),
        };
        if targets.len() != file_columns.len() {
            return Err(invalid_columns(
                format!(
                    "the file has {} columns but {} are expected (csv_options.header is false, so columns are matched by position)",
                    file_columns.len(),
                    targets.len()
                ),
                json!({ "file_columns": file_columns.len(), "expected_columns": targets.iter().map(|c| &c.name).collect::<Vec<_>>() }),
            ));
        }
        file_columns
            .iter()
            .zip(targets)
            .map(|(f, c)| Mapped {
                file: f.clone(),
                column: c.clone(),
            })
            .collect()
    };
    let missing: Vec<&str> = table
        .iter()
        .filter(|c| !c.nullable && c.default.is_none())
        .filter(|c| !mapped.iter().any(|m| m.column.name == c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(invalid_columns(
            format!("the file lacks required (NOT NULL, no default) columns: {missing:?}"),
            json!({ "missing_columns": missing }),
        ));
    }
    if mapped.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidColumns,
            "no column of the file is imported",
        ));
    }
    Ok(mapped)
}

/// The file's columns (or the columns asked for) do not match the table's.
fn invalid_columns(message: String, details: serde_json::Value) -> ApiError {
    ApiError::new(ErrorCode::InvalidColumns, message).with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, nullable: bool) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            data_type: ty.into(),
            nullable,
            ordinal_position: 0,
            default: None,
        }
    }

    fn names(m: &[Mapped]) -> Vec<(&str, &str)> {
        m.iter()
            .map(|m| (m.file.as_str(), m.column.name.as_str()))
            .collect()
    }

    #[test]
    fn header_maps_by_name_in_any_order_and_case() {
        let table = [col("id", "BIGINT", false), col("name", "VARCHAR", true)];
        let file = ["NAME".to_string(), "Id".to_string()];
        let m = map_columns(&file, &table, None, true).unwrap();
        assert_eq!(names(&m), [("NAME", "name"), ("Id", "id")]);
    }

    #[test]
    fn unknown_and_missing_required_columns_are_refused() {
        let table = [col("id", "BIGINT", false), col("name", "VARCHAR", true)];
        let e = map_columns(&["id".into(), "x".into()], &table, None, true).unwrap_err();
        assert!(e.to_string().contains("\"x\""), "{e}");
        let e = map_columns(&["name".into()], &table, None, true).unwrap_err();
        assert!(e.to_string().contains("id"), "{e}");
    }

    #[test]
    fn only_selects_a_subset_and_positional_counts_must_match() {
        let table = [col("id", "BIGINT", false), col("name", "VARCHAR", true)];
        let file = ["id".to_string(), "junk".to_string()];
        let m = map_columns(&file, &table, Some(&["id".into()]), true).unwrap();
        assert_eq!(names(&m), [("id", "id")]);
        let e = map_columns(&["column0".into()], &table, None, false).unwrap_err();
        assert!(e.to_string().contains("1 columns but 2"), "{e}");
        let m = map_columns(&["column0".into(), "column1".into()], &table, None, false).unwrap();
        assert_eq!(names(&m), [("column0", "id"), ("column1", "name")]);
    }

    #[test]
    fn duplicate_header_names_are_refused() {
        let table = [col("id", "BIGINT", true)];
        let e = map_columns(&["id".into(), "ID".into()], &table, None, true).unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
    }
}
