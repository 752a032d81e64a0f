//! Apache Parquet input through the `parquet` crate's row API: columns are found by name
//! (top-level fields), values converted to the role's type. Timestamps may be Parquet
//! timestamps (millis, micros) or strings. Errors name the file, the row (1-based) and the
//! column.

use crate::TelemetryError;
use crate::engine::{Cell, Evaluator, RowRef};
use crate::read::{Columns, RoleType, derive, parse_cell, parse_timestamp};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use std::borrow::Cow;
use std::path::Path;

fn invalid(
    path: &Path,
    row: Option<u64>,
    field: Option<String>,
    message: String,
) -> TelemetryError {
    TelemetryError::Invalid {
        path: path.to_path_buf(),
        line: row,
        field,
        message,
    }
}

fn to_value(f: &Field, t: RoleType) -> Result<Cell<'_>, String> {
    let num = |x: f64| match t {
        RoleType::Number => Ok(Cell::Num(x)),
        RoleType::Text => Ok(Cell::Text(Cow::Owned(x.to_string()))),
        RoleType::Bool if x == 0.0 || x == 1.0 => Ok(Cell::Bool(x == 1.0)),
        _ => Err(format!("unexpected number {x}")),
    };
    match f {
        Field::Null => Ok(Cell::Missing),
        Field::Bool(b) => match t {
            RoleType::Bool => Ok(Cell::Bool(*b)),
            RoleType::Text => Ok(Cell::Text(Cow::Owned(b.to_string()))),
            _ => Err("unexpected boolean".into()),
        },
        Field::Byte(x) => num(f64::from(*x)),
        Field::Short(x) => num(f64::from(*x)),
        Field::Int(x) => num(f64::from(*x)),
        Field::Long(x) => num(*x as f64),
        Field::UByte(x) => num(f64::from(*x)),
        Field::UShort(x) => num(f64::from(*x)),
        Field::UInt(x) => num(f64::from(*x)),
        Field::ULong(x) => num(*x as f64),
        Field::Float(x) => num(f64::from(*x)),
        Field::Double(x) => num(*x),
        Field::Str(s) => parse_cell(s, t),
        other => Err(format!("unsupported Parquet value {other}")),
    }
}

fn to_timestamp(f: &Field) -> Result<jiff::Timestamp, String> {
    match f {
        Field::TimestampMillis(ms) => {
            jiff::Timestamp::from_millisecond(*ms).map_err(|e| e.to_string())
        }
        Field::TimestampMicros(us) => {
            jiff::Timestamp::from_microsecond(*us).map_err(|e| e.to_string())
        }
        Field::Str(s) => parse_timestamp(s),
        other => Err(format!("expected a timestamp, found {other}")),
    }
}

/// Reads a Parquet file's bytes into rows.
///
/// # Errors
/// [`TelemetryError::Invalid`] for a file that is not Parquet, a missing column, or a value of
/// the wrong type (naming the row and column).
pub fn read_parquet(
    path: &Path,
    bytes: Vec<u8>,
    columns: &Columns,
    eval: &mut Evaluator,
) -> Result<(), TelemetryError> {
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).map_err(|e| {
        invalid(
            path,
            None,
            None,
            format!("not a readable Parquet file: {e}"),
        )
    })?;
    let schema = reader.metadata().file_metadata().schema_descr();
    let names: Vec<String> = schema
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    let find = |col: &str, role: &str| -> Result<usize, TelemetryError> {
        names.iter().position(|n| n == col).ok_or_else(|| {
            invalid(
                path,
                None,
                Some(format!("{col} ({role})")),
                format!(
                    "no column `{col}` (mapped to role `{role}`); it has: {}",
                    names.join(", ")
                ),
            )
        })
    };
    let ts_idx = find(&columns.timestamp_column, "timestamp")?;
    let idx: Vec<usize> = columns
        .mapped
        .iter()
        .map(|(r, c)| find(c, r))
        .collect::<Result<_, _>>()?;
    let iter = reader
        .get_row_iter(None)
        .map_err(|e| invalid(path, None, None, format!("cannot read rows: {e}")))?;
    for (i, row) in iter.enumerate() {
        let n = i as u64 + 1;
        let row = row.map_err(|e| invalid(path, Some(n), None, format!("cannot read row: {e}")))?;
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let ts = to_timestamp(fields[ts_idx]).map_err(|m| {
            invalid(
                path,
                Some(n),
                Some(format!("{} (timestamp)", columns.timestamp_column)),
                m,
            )
        })?;
        let ts = i64::try_from(ts.as_nanosecond())
            .map_err(|_| invalid(path, Some(n), None, "timestamp out of range".into()))?;
        let mut cells: Vec<Cell<'_>> =
            Vec::with_capacity(columns.mapped.len() + columns.derived.len());
        for ((role, col), &j) in columns.mapped.iter().zip(&idx) {
            cells.push(
                to_value(fields[j], columns.role_type(role))
                    .map_err(|m| invalid(path, Some(n), Some(format!("{col} ({role})")), m))?,
            );
        }
        derive(&mut cells, columns);
        eval.push(&RowRef { ts, cells: &cells });
    }
    Ok(())
}
