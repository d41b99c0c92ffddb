//! Validated names (project ids, bucket, table and column names): parsed once at the edge.
//! Holding one means it is safe to use in a path segment and, double-quoted, as an SQL identifier.

use std::fmt;

use crate::error::{ApiError, ErrorCode};

/// Names that are never accepted for buckets and tables (case-insensitive): DuckDB's own
/// schemas and catalogs, and device names some filesystems treat specially.
const RESERVED: &[&str] = &[
    "information_schema",
    "pg_catalog",
    "main",
    "temp",
    "system",
    "memory",
    "con",
    "nul",
    "prn",
    "aux",
];

/// Checks the shared rules: non-empty, bounded, ASCII letters/digits/`_`/`-` only, no leading `-`.
fn check(kind: &str, raw: &str, max_len: usize, allow_dash: bool) -> Result<(), ApiError> {
    if raw.is_empty() {
        return Err(ApiError::bad_request(format!("{kind} must not be empty")));
    }
    if raw.len() > max_len {
        return Err(ApiError::bad_request(format!(
            "{kind} is {} characters long; the maximum is {max_len}",
            raw.len()
        )));
    }
    if let Some(bad) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || (allow_dash && *c == '-')))
    {
        let allowed = if allow_dash {
            "ASCII letters, digits, '_' and '-'"
        } else {
            "ASCII letters, digits and '_'"
        };
        return Err(ApiError::bad_request_with(
            format!("invalid {kind} {raw:?}: character {bad:?} is not allowed; use only {allowed}"),
            serde_json::json!({ "name": raw }),
        ));
    }
    if raw.starts_with('-') {
        return Err(ApiError::bad_request(format!(
            "invalid {kind} {raw:?}: must not start with '-'"
        )));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $max:expr, $dash:expr, $reserved:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            /// Parses client text; the only way to obtain a value of this type.
            pub fn parse(raw: &str) -> Result<Self, ApiError> {
                check($kind, raw, Self::MAX_LEN, $dash)?;
                if $reserved && RESERVED.iter().any(|r| r.eq_ignore_ascii_case(raw)) {
                    return Err(ApiError::bad_request(format!(
                        "{} {raw:?} is reserved; choose another name",
                        $kind
                    )));
                }
                Ok(Self(raw.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as a double-quoted SQL identifier. Safe because the allowed
            /// alphabet contains no quote character.
            pub fn quoted(&self) -> String {
                format!("\"{}\"", self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        /// Deserializing applies the same rules as `parse` (for names stored as JSON).
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(|e| serde::de::Error::custom(e.message().to_string()))
            }
        }
    };
}

name_type!(
    /// A project identifier (Keboola project ids are usually numeric strings).
    ProjectId, "project id", 64, true, false
);
name_type!(
    /// A bucket name; also a directory name under the project directory.
    BucketName, "bucket name", 96, true, true
);
name_type!(
    /// A table name; also a file name (`<table>.duckdb`) inside the bucket directory.
    TableName, "table name", 96, true, true
);
name_type!(
    /// A column name inside a table.
    ColumnName, "column name", 64, true, false
);

impl ColumnName {
    /// DuckDB identifiers are case-insensitive, so duplicates are detected on this key.
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

name_type!(
    /// The id of a dev branch: what duckbank issued (a UUID v7 in simple form), safe as a path
    /// part and never `default` or `main`.
    DevBranchId, "branch id", 64, true, false
);

/// The branch a request addresses: the production branch (`default`, alias `main`) or a dev
/// branch. Parsing checks the form only; whether a dev branch exists is the catalog's answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BranchId {
    Default,
    Dev(DevBranchId),
}

impl BranchId {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "default" | "main" => Ok(Self::Default),
            other => DevBranchId::parse(other).map(Self::Dev).map_err(|_| {
                ApiError::new(
                    ErrorCode::BranchNotFound,
                    format!("Branch '{other}' not found"),
                )
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Default => "default",
            Self::Dev(id) => id.as_str(),
        }
    }

    /// The dev branch, or `None` for the production branch.
    pub fn dev(&self) -> Option<&DevBranchId> {
        match self {
            Self::Default => None,
            Self::Dev(id) => Some(id),
        }
    }
}

impl fmt::Display for BranchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["in_c_sales", "orders", "A-1", "123", "_tmp", "x"] {
            assert!(BucketName::parse(ok).is_ok(), "{ok}");
            assert!(TableName::parse(ok).is_ok(), "{ok}");
        }
        assert!(ProjectId::parse("123").is_ok());
        assert!(ColumnName::parse("amount_2").is_ok());
    }

    #[test]
    fn rejects_traversal_and_separators() {
        for bad in [
            "..", ".", "a/b", "a\\b", "a\0b", "../etc", "a.b", "", " ", "a b", "-rf",
        ] {
            assert!(BucketName::parse(bad).is_err(), "{bad:?}");
            assert!(TableName::parse(bad).is_err(), "{bad:?}");
            assert!(ProjectId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_sql_injection_and_unicode_tricks() {
        for bad in [
            "x\"; DROP TABLE y; --",
            "a'b",
            "tab\u{202e}le",
            "tаble", // Cyrillic a
            "naïve",
            "a;b",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad:?}");
            assert!(ColumnName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_reserved_and_over_long_names() {
        assert!(BucketName::parse("information_schema").is_err());
        assert!(TableName::parse("MAIN").is_err());
        assert!(TableName::parse(&"a".repeat(96)).is_ok());
        assert!(TableName::parse(&"a".repeat(97)).is_err());
        assert!(ColumnName::parse(&"c".repeat(65)).is_err());
    }

    #[test]
    fn quoting_wraps_in_double_quotes() {
        assert_eq!(ColumnName::parse("id").unwrap().quoted(), "\"id\"");
    }

    #[test]
    fn main_is_an_alias_of_default_and_other_ids_are_dev_branches() {
        assert_eq!(BranchId::parse("default").unwrap(), BranchId::Default);
        assert_eq!(BranchId::parse("main").unwrap(), BranchId::Default);
        assert!(matches!(BranchId::parse("feature-1"), Ok(BranchId::Dev(_))));
        for bad in ["..", "a/b", "a.b", ""] {
            let err = BranchId::parse(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BranchNotFound, "{bad:?}");
        }
    }
}
