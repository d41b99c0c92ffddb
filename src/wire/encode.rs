//! DuckDB results in PostgreSQL's terms: a column's Arrow type as a PostgreSQL type, and each
//! value encoded in the text or binary format the client asked for. Nested and exotic types go
//! as text (JSON for lists, structs and maps).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime};
use duckdb::arrow::datatypes::DataType;
use duckdb::types::{TimeUnit, Value};
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use crate::workspace::query::{text_of, value_json};

/// The PostgreSQL type a DuckDB column is sent as.
pub fn pg_type(t: &DataType) -> Type {
    match t {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Time32(_) | DataType::Time64(_) => Type::TIME,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::VARCHAR,
        _ => Type::TEXT,
    }
}

/// The row description of a result: one field per column, in `formats` (per column or one
/// for all, as the client bound them).
pub fn fields(
    columns: &[(String, DataType)],
    format: impl Fn(usize) -> FieldFormat,
) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (name, t))| {
            let field = FieldInfo::new(name.clone(), None, None, pg_type(t), format(i));
            match t {
                DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
                    // numeric(p, s) packs as ((p << 16) | s) + 4.
                    field.with_type_modifier(((i32::from(*p) << 16) | i32::from(*s as u8)) + 4)
                }
                _ => field,
            }
        })
        .collect()
}

/// Encodes one row with the fields' types and formats.
pub fn encode_row(
    encoder: &mut DataRowEncoder,
    schema: &Arc<Vec<FieldInfo>>,
    columns: &[(String, DataType)],
    row: &[Value],
) -> PgWireResult<DataRow> {
    for (i, value) in row.iter().enumerate() {
        let ty = schema[i].datatype().clone();
        encode_value(encoder, &ty, &columns[i].1, value)?;
    }
    Ok(encoder.take_row())
}

fn encode_value(
    enc: &mut DataRowEncoder,
    ty: &Type,
    arrow: &DataType,
    value: &Value,
) -> PgWireResult<()> {
    if matches!(value, Value::Null) {
        return enc.encode_field(&None::<i32>);
    }
    match *ty {
        Type::BOOL => enc.encode_field(&matches!(value, Value::Boolean(true))),
        Type::INT2 => enc.encode_field(&(as_i128(value).unwrap_or_default() as i16)),
        Type::INT4 => enc.encode_field(&(as_i128(value).unwrap_or_default() as i32)),
        Type::INT8 => enc.encode_field(&(as_i128(value).unwrap_or_default() as i64)),
        Type::FLOAT4 => enc.encode_field(&(as_f64(value) as f32)),
        Type::FLOAT8 => enc.encode_field(&as_f64(value)),
        Type::NUMERIC => enc.encode_field(&numeric(value)),
        Type::DATE => match value {
            Value::Date32(days) => enc.encode_field(&date(*days)),
            other => enc.encode_field(&text(arrow, other)),
        },
        Type::TIMESTAMP | Type::TIMESTAMPTZ => match value {
            Value::Timestamp(unit, v) => {
                let t = DateTime::from_timestamp_micros(micros(*unit, *v)).unwrap_or_default();
                if *ty == Type::TIMESTAMP {
                    enc.encode_field(&t.naive_utc())
                } else {
                    enc.encode_field(&t)
                }
            }
            other => enc.encode_field(&text(arrow, other)),
        },
        Type::TIME => match value {
            Value::Time64(unit, v) => {
                let us = micros(*unit, *v);
                let t = NaiveTime::from_num_seconds_from_midnight_opt(
                    (us.div_euclid(1_000_000)) as u32,
                    (us.rem_euclid(1_000_000) * 1000) as u32,
                )
                .unwrap_or_default();
                enc.encode_field(&t)
            }
            other => enc.encode_field(&text(arrow, other)),
        },
        Type::BYTEA => match value {
            Value::Blob(b) => enc.encode_field(b),
            other => enc.encode_field(&text(arrow, other).into_bytes()),
        },
        _ => enc.encode_field(&text(arrow, value)),
    }
}

/// A value's text: strings as they are, times and intervals as PostgreSQL writes them, nested
/// values as JSON.
fn text(arrow: &DataType, value: &Value) -> String {
    match value {
        Value::Text(t) | Value::Enum(t) => t.clone(),
        other => text_of(other).unwrap_or_else(|| match value_json(arrow, other) {
            serde_json::Value::String(s) => s,
            json => json.to_string(),
        }),
    }
}

fn as_i128(v: &Value) -> Option<i128> {
    Some(match *v {
        Value::TinyInt(x) => x.into(),
        Value::SmallInt(x) => x.into(),
        Value::Int(x) => x.into(),
        Value::BigInt(x) => x.into(),
        Value::HugeInt(x) => x,
        Value::UTinyInt(x) => x.into(),
        Value::USmallInt(x) => x.into(),
        Value::UInt(x) => x.into(),
        Value::UBigInt(x) => x.into(),
        _ => return None,
    })
}

fn as_f64(v: &Value) -> f64 {
    match *v {
        Value::Float(x) => x.into(),
        Value::Double(x) => x,
        _ => as_i128(v).unwrap_or_default() as f64,
    }
}

/// NUMERIC as rust_decimal, which holds 28 significant digits: a wider DECIMAL(38) value that
/// does not fit goes as NULL (documented in ADR 0033).
fn numeric(v: &Value) -> Option<rust_decimal::Decimal> {
    use std::str::FromStr;
    match v {
        Value::Decimal(d) => {
            rust_decimal::Decimal::try_from_i128_with_scale(d.value(), u32::from(d.scale()))
                .ok()
                .or_else(|| rust_decimal::Decimal::from_str(&d.to_string()).ok())
        }
        other => {
            as_i128(other).and_then(|i| rust_decimal::Decimal::try_from_i128_with_scale(i, 0).ok())
        }
    }
}

fn date(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(719_163 + days).unwrap_or_default()
}

fn micros(unit: TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1000,
    }
}
