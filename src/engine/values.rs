//! Turning DuckDB values into JSON without losing meaning (exact decimals and big integers,
//! ISO-8601 times, nested values as JSON, NULL as null); and the JSON text of JSON-column filters.

use chrono::{DateTime, NaiveDate};
use duckdb::types::{TimeUnit, ValueRef};
use serde_json::{Number, Value};

/// How a column is selected and converted, decided from its DuckDB type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Read as is (numbers, booleans, text, decimals, dates).
    Direct,
    /// Timestamps: formatted as ISO-8601; `tz` adds a UTC offset.
    Timestamp { tz: bool },
    /// JSON text (JSON columns, and nested types serialized with `to_json`) parsed into JSON.
    Json,
    /// Everything else (TIME, INTERVAL, UUID, BLOB, …) cast to its DuckDB text form.
    Text,
}

impl ValueKind {
    pub fn of(data_type: &str) -> Self {
        let t = data_type.to_ascii_uppercase();
        if t.ends_with(']')
            || t.starts_with("STRUCT")
            || t.starts_with("MAP")
            || t.starts_with("UNION")
        {
            return Self::Json;
        }
        match t.as_str() {
            "TIMESTAMP" | "TIMESTAMP_S" | "TIMESTAMP_MS" | "TIMESTAMP_NS" => {
                Self::Timestamp { tz: false }
            }
            "TIMESTAMP WITH TIME ZONE" | "TIMESTAMPTZ" => Self::Timestamp { tz: true },
            "JSON" => Self::Json,
            "BOOLEAN" | "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "UTINYINT"
            | "USMALLINT" | "UINTEGER" | "UBIGINT" | "UHUGEINT" | "FLOAT" | "DOUBLE"
            | "VARCHAR" | "DATE" => Self::Direct,
            _ if t.starts_with("DECIMAL") => Self::Direct,
            _ => Self::Text,
        }
    }

    /// The select-list expression for a quoted column.
    pub fn select_expr(self, quoted: &str) -> String {
        match self {
            Self::Direct | Self::Timestamp { .. } => quoted.to_string(),
            Self::Json => format!("to_json({quoted})::VARCHAR"),
            Self::Text => format!("{quoted}::VARCHAR"),
        }
    }
}

/// Converts one value read with `select_expr` to JSON.
pub fn to_json(kind: ValueKind, value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Boolean(b) => Value::Bool(b),
        ValueRef::TinyInt(v) => v.into(),
        ValueRef::SmallInt(v) => v.into(),
        ValueRef::Int(v) => v.into(),
        ValueRef::BigInt(v) => v.into(),
        ValueRef::UTinyInt(v) => v.into(),
        ValueRef::USmallInt(v) => v.into(),
        ValueRef::UInt(v) => v.into(),
        ValueRef::UBigInt(v) => v.into(),
        ValueRef::HugeInt(v) => exact_number(&v.to_string()),
        ValueRef::UHugeInt(v) => exact_number(&v.to_string()),
        ValueRef::Float(v) => float(f64::from(v)),
        ValueRef::Double(v) => float(v),
        ValueRef::Decimal(d) => exact_number(&d.to_string()),
        ValueRef::Timestamp(unit, v) => {
            timestamp(unit, v, matches!(kind, ValueKind::Timestamp { tz: true }))
        }
        ValueRef::Date32(days) => date(days),
        ValueRef::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            if kind == ValueKind::Json {
                serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned()))
            } else {
                Value::String(text.into_owned())
            }
        }
        ValueRef::Blob(bytes) => Value::String(hex::encode(bytes)),
        // Not produced by `select_expr`: such kinds are cast to text first.
        _ => Value::Null,
    }
}

/// Whether a column type is DuckDB's JSON type (filters compare such columns as JSON values).
pub fn is_json_type(data_type: &str) -> bool {
    data_type.eq_ignore_ascii_case("JSON")
}

/// The JSON text a filter value stands for when compared with a JSON column: text that parses
/// as JSON is taken as written (`{"a":1}`, `5`, `"x"`); anything else is a JSON string (`x`).
pub fn json_filter_text(value: &str) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(value).is_ok() {
        value.to_string()
    } else {
        Value::String(value.to_string()).to_string()
    }
}

/// A JSON number carrying exactly the given decimal text (needs serde_json's arbitrary_precision).
fn exact_number(text: &str) -> Value {
    serde_json::from_str::<Number>(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Finite floats as numbers; NaN and infinities, which JSON cannot carry, as strings.
fn float(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v.is_nan() => Value::String("NaN".into()),
        None if v > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// DuckDB's `infinity` / `-infinity` dates are the extreme day numbers (spelled as DuckDB
/// does); days outside chrono's range (beyond about ±262 000 years) are null, never a panic.
fn date(days: i32) -> Value {
    match days {
        i32::MAX => Value::String("infinity".into()),
        d if d <= -i32::MAX => Value::String("-infinity".into()),
        d => d
            .checked_add(719_163)
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .map_or(Value::Null, |d| {
                Value::String(d.format("%Y-%m-%d").to_string())
            }),
    }
}

/// Timestamps like dates: DuckDB's infinities are the extreme values of the unit.
fn timestamp(unit: TimeUnit, v: i64, tz: bool) -> Value {
    if v == i64::MAX {
        return Value::String("infinity".into());
    }
    if v <= -i64::MAX {
        return Value::String("-infinity".into());
    }
    let micros = match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1_000,
    };
    match DateTime::from_timestamp_micros(micros) {
        Some(dt) => {
            let base = dt.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string();
            Value::String(if tz { format!("{base}+00:00") } else { base })
        }
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_type_names() {
        assert_eq!(ValueKind::of("DECIMAL(10,2)"), ValueKind::Direct);
        assert_eq!(ValueKind::of("INTEGER[]"), ValueKind::Json);
        assert_eq!(
            ValueKind::of("TIMESTAMP"),
            ValueKind::Timestamp { tz: false }
        );
        assert_eq!(ValueKind::of("UUID"), ValueKind::Text);
        assert_eq!(ValueKind::of("INTERVAL"), ValueKind::Text);
    }

    #[test]
    fn numbers_stay_exact() {
        assert_eq!(exact_number("12345.67").to_string(), "12345.67");
        assert_eq!(
            exact_number("170141183460469231731687303715884105727").to_string(),
            "170141183460469231731687303715884105727"
        );
        assert_eq!(float(f64::NAN), Value::String("NaN".into()));
    }

    #[test]
    fn timestamps_are_iso_8601() {
        assert_eq!(
            timestamp(TimeUnit::Microsecond, 1_700_000_000_123_456, false),
            Value::String("2023-11-14T22:13:20.123456".into())
        );
        assert_eq!(
            timestamp(TimeUnit::Second, 0, true),
            Value::String("1970-01-01T00:00:00+00:00".into())
        );
    }

    #[test]
    fn filter_values_for_json_columns_are_json_text() {
        assert_eq!(json_filter_text(r#"{"a": 1}"#), r#"{"a": 1}"#);
        assert_eq!(json_filter_text("5"), "5");
        assert_eq!(json_filter_text(r#""x""#), r#""x""#);
        assert_eq!(json_filter_text("x"), r#""x""#);
        assert_eq!(json_filter_text("it's"), r#""it's""#);
        assert!(is_json_type("json") && !is_json_type("VARCHAR"));
    }

    #[test]
    fn dates_are_iso_8601() {
        assert_eq!(
            to_json(ValueKind::Direct, ValueRef::Date32(0)),
            Value::String("1970-01-01".into())
        );
    }

    #[test]
    fn special_dates_and_timestamps_convert_without_overflow() {
        let text = |s: &str| Value::String(s.into());
        assert_eq!(date(i32::MAX), text("infinity"));
        assert_eq!(date(-i32::MAX), text("-infinity"));
        assert_eq!(date(i32::MIN), text("-infinity"));
        assert_eq!(date(i32::MAX - 1), Value::Null);
        assert_eq!(date(-100_000_000), Value::Null);
        for unit in [
            TimeUnit::Second,
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
        ] {
            assert_eq!(timestamp(unit, i64::MAX, false), text("infinity"));
            assert_eq!(timestamp(unit, -i64::MAX, true), text("-infinity"));
            assert_eq!(timestamp(unit, i64::MAX - 1, false), Value::Null);
        }
    }
}
