//! Column types and default values accepted in table definitions, parsed against an allow-list.
//! Their canonical rendering is the only type/default text that ever reaches DDL.

use std::fmt;

use crate::error::ApiError;

/// Scalar DuckDB types we accept, with the aliases clients commonly send.
const SCALARS: &[(&[&str], &str)] = &[
    (&["BOOLEAN", "BOOL", "LOGICAL"], "BOOLEAN"),
    (&["TINYINT", "INT1"], "TINYINT"),
    (&["SMALLINT", "INT2", "SHORT"], "SMALLINT"),
    (&["INTEGER", "INT", "INT4", "SIGNED"], "INTEGER"),
    (&["BIGINT", "INT8", "LONG"], "BIGINT"),
    (&["HUGEINT", "INT128"], "HUGEINT"),
    (&["UTINYINT"], "UTINYINT"),
    (&["USMALLINT"], "USMALLINT"),
    (&["UINTEGER"], "UINTEGER"),
    (&["UBIGINT"], "UBIGINT"),
    (&["UHUGEINT"], "UHUGEINT"),
    (&["FLOAT", "REAL", "FLOAT4"], "FLOAT"),
    (&["DOUBLE", "FLOAT8", "DOUBLE PRECISION"], "DOUBLE"),
    (&["VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR"], "VARCHAR"),
    (&["BLOB", "BYTEA", "BINARY", "VARBINARY"], "BLOB"),
    (&["DATE"], "DATE"),
    (&["TIME"], "TIME"),
    (
        &["TIMESTAMP", "DATETIME", "TIMESTAMP WITHOUT TIME ZONE"],
        "TIMESTAMP",
    ),
    (
        &["TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"],
        "TIMESTAMP WITH TIME ZONE",
    ),
    (&["INTERVAL"], "INTERVAL"),
    (&["UUID"], "UUID"),
    (&["JSON"], "JSON"),
];

/// A validated column type. `Display` gives canonical DuckDB DDL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Scalar(&'static str),
    Decimal { precision: u8, scale: u8 },
    List(Box<ColumnType>),
}

impl ColumnType {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let unknown = || {
            ApiError::bad_request_with(
                format!("unknown or unsupported column type {raw:?}"),
                serde_json::json!({
                    "type": raw,
                    "supported": "BOOLEAN, TINYINT, SMALLINT, INTEGER, BIGINT, HUGEINT, UTINYINT, USMALLINT, \
                      UINTEGER, UBIGINT, UHUGEINT, FLOAT, DOUBLE, DECIMAL(p,s), NUMERIC(p,s), VARCHAR[(n)], BLOB, \
                      DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, UUID, JSON, and T[] lists of these"
                }),
            )
        };
        if raw.len() > 100 {
            return Err(unknown());
        }
        // Collapse whitespace and upper-case; anything outside the allowed alphabet is unknown.
        let norm = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let norm = norm.to_ascii_uppercase();
        if !norm
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " (),[]".contains(c))
        {
            return Err(unknown());
        }
        Self::parse_norm(&norm).ok_or_else(unknown)
    }

    fn parse_norm(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(inner) = s.strip_suffix("[]") {
            return Some(Self::List(Box::new(Self::parse_norm(inner)?)));
        }
        let (base, args) = match s.find('(') {
            Some(open) => {
                let inner = s[open..].strip_prefix('(')?.strip_suffix(')')?;
                let args: Option<Vec<u32>> = inner
                    .split(',')
                    .map(|a| a.trim().parse::<u32>().ok())
                    .collect();
                (s[..open].trim(), Some(args?))
            }
            None => (s, None),
        };
        match (base, args.as_deref()) {
            ("DECIMAL" | "NUMERIC" | "DEC", None) => Some(Self::Decimal {
                precision: 18,
                scale: 3,
            }),
            ("DECIMAL" | "NUMERIC" | "DEC", Some([p])) => Self::decimal(*p, 0),
            ("DECIMAL" | "NUMERIC" | "DEC", Some([p, s])) => Self::decimal(*p, *s),
            // DuckDB ignores VARCHAR lengths; accept them for compatibility, store plain VARCHAR.
            ("VARCHAR" | "CHAR" | "TEXT" | "STRING" | "BPCHAR", Some([n])) if *n >= 1 => {
                Some(Self::Scalar("VARCHAR"))
            }
            (name, None) => SCALARS
                .iter()
                .find(|(aliases, _)| aliases.contains(&name))
                .map(|(_, canonical)| Self::Scalar(canonical)),
            _ => None,
        }
    }

    fn decimal(precision: u32, scale: u32) -> Option<Self> {
        if (1..=38).contains(&precision) && scale <= precision {
            Some(Self::Decimal {
                precision: precision as u8,
                scale: scale as u8,
            })
        } else {
            None
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scalar(name) => f.write_str(name),
            Self::Decimal { precision, scale } => write!(f, "DECIMAL({precision},{scale})"),
            Self::List(inner) => write!(f, "{inner}[]"),
        }
    }
}

/// A column default: a literal or one of a few niladic functions, rendered by us.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    Null,
    Bool(bool),
    /// A numeric literal, kept as validated text so DECIMAL defaults stay exact.
    Number(String),
    Text(String),
    CurrentTimestamp,
    CurrentDate,
}

impl DefaultValue {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let t = raw.trim();
        let upper = t.to_ascii_uppercase();
        let parsed = match upper.as_str() {
            "NULL" => Some(Self::Null),
            "TRUE" => Some(Self::Bool(true)),
            "FALSE" => Some(Self::Bool(false)),
            "CURRENT_TIMESTAMP" | "NOW()" | "CURRENT_TIMESTAMP()" => Some(Self::CurrentTimestamp),
            "CURRENT_DATE" | "TODAY()" => Some(Self::CurrentDate),
            _ if is_number(t) => Some(Self::Number(t.to_string())),
            _ => parse_quoted(t).map(Self::Text),
        };
        parsed.ok_or_else(|| {
            ApiError::bad_request_with(
                format!("unsupported default value {raw:?}"),
                serde_json::json!({
                    "default": raw,
                    "supported": "a number, a 'single-quoted' string, TRUE, FALSE, NULL, CURRENT_TIMESTAMP, CURRENT_DATE"
                }),
            )
        })
    }

    /// SQL text for a DEFAULT clause; strings are re-escaped, never passed through.
    pub fn to_sql(&self) -> String {
        match self {
            Self::Null => "NULL".into(),
            Self::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            Self::Number(n) => n.clone(),
            Self::Text(s) => format!("'{}'", s.replace('\'', "''")),
            Self::CurrentTimestamp => "CURRENT_TIMESTAMP".into(),
            Self::CurrentDate => "CURRENT_DATE".into(),
        }
    }
}

fn is_number(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits(int)
        && frac.is_none_or(digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    !body.is_empty() && mantissa_ok && exponent_ok
}

/// `'it''s'` → `it's`; anything but one well-formed single-quoted literal is `None`.
fn parse_quoted(t: &str) -> Option<String> {
    let inner = t.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            // Inside the literal a quote must be doubled.
            if chars.next() != Some('\'') {
                return None;
            }
        }
        if c.is_control() && c != '\t' && c != '\n' {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_known_types() {
        let cases = [
            ("integer", "INTEGER"),
            ("INT", "INTEGER"),
            ("varchar(255)", "VARCHAR"),
            ("Decimal(10, 2)", "DECIMAL(10,2)"),
            ("numeric(5)", "DECIMAL(5,0)"),
            ("timestamp with  time zone", "TIMESTAMP WITH TIME ZONE"),
            ("BIGINT[]", "BIGINT[]"),
            ("double precision", "DOUBLE"),
            ("json", "JSON"),
        ];
        for (raw, canonical) in cases {
            assert_eq!(
                ColumnType::parse(raw).unwrap().to_string(),
                canonical,
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_unknown_or_malicious_types() {
        for bad in [
            "",
            "FOO",
            "DECIMAL(0,0)",
            "DECIMAL(39,2)",
            "DECIMAL(5,6)",
            "INTEGER); DROP TABLE x; --",
            "VARCHAR DEFAULT 'x'",
            "STRUCT(a INT)",
            "INTEGER(",
            "VARCHAR(0)",
        ] {
            assert!(ColumnType::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_are_literals_rendered_by_us() {
        assert_eq!(DefaultValue::parse("0").unwrap().to_sql(), "0");
        assert_eq!(DefaultValue::parse("-1.5e3").unwrap().to_sql(), "-1.5e3");
        assert_eq!(DefaultValue::parse("'it''s'").unwrap().to_sql(), "'it''s'");
        assert_eq!(
            DefaultValue::parse("current_timestamp").unwrap(),
            DefaultValue::CurrentTimestamp
        );
        for bad in [
            "1; DROP TABLE x",
            "'a' || (SELECT 1)",
            "'unterminated",
            "'a'b'",
            "random()",
            "",
            ".",
            "1e",
        ] {
            assert!(DefaultValue::parse(bad).is_err(), "{bad:?}");
        }
    }
}
