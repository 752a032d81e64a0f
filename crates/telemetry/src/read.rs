//! Readers: CSV (with a header row) and JSON Lines, into typed rows.

use crate::TelemetryError;
use crate::engine::{Row, Value};
use stagegate_core::card::{Telemetry, TelemetryFormat};
use stagegate_core::digest::sha256_tagged;
use std::collections::BTreeMap;
use std::path::Path;

/// The type a role's values are read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleType {
    /// RFC 3339 with offset, or `YYYY-MM-DD[T ]HH:MM:SS[.fffffffff]` read as UTC.
    Timestamp,
    /// Free text (`user`, `cohort`, `outcome`, `severity`).
    Text,
    /// Boolean: true/false, 1/0, yes/no, y/n (any case).
    Bool,
    /// A number.
    Number,
}

impl RoleType {
    /// The type of a role name (see the card's `telemetry.columns`).
    pub fn of(role: &str) -> RoleType {
        match role {
            "timestamp" => RoleType::Timestamp,
            "user" | "cohort" | "outcome" | "severity" => RoleType::Text,
            "accepted" => RoleType::Bool,
            _ => RoleType::Number,
        }
    }
}

/// The roles in a fixed order: mapped columns (sorted), then derived roles (sorted).
#[derive(Debug, Clone)]
pub struct Columns {
    /// `(role, source column)` of mapped roles, sorted by role.
    pub mapped: Vec<(String, String)>,
    /// `(role, [(index of a mapped role, weight)])` of derived roles.
    pub derived: Vec<(String, Vec<(usize, f64)>)>,
    /// The source column of the `timestamp` role.
    pub timestamp_column: String,
}

impl Columns {
    /// From the card's telemetry section (assumed validated: derived terms name mapped roles).
    pub fn from_card(t: &Telemetry) -> Columns {
        let mapped: Vec<(String, String)> = t
            .columns
            .iter()
            .filter(|(r, _)| r.as_str() != "timestamp")
            .map(|(r, c)| (r.clone(), c.clone()))
            .collect();
        let derived = t
            .derived
            .iter()
            .map(|(name, d)| {
                let terms = d
                    .sum_of
                    .iter()
                    .filter_map(|term| {
                        mapped
                            .iter()
                            .position(|(r, _)| r == &term.field)
                            .map(|i| (i, term.weight))
                    })
                    .collect();
                (name.clone(), terms)
            })
            .collect();
        Columns {
            mapped,
            derived,
            timestamp_column: t.columns.get("timestamp").cloned().unwrap_or_default(),
        }
    }

    /// Index of a role in a row's values, or `None`.
    pub fn index(&self, role: &str) -> Option<usize> {
        self.mapped.iter().position(|(r, _)| r == role).or_else(|| {
            self.derived
                .iter()
                .position(|(r, _)| r == role)
                .map(|i| i + self.mapped.len())
        })
    }

    /// The role's type (derived roles are numbers).
    pub fn role_type(&self, role: &str) -> RoleType {
        if self.derived.iter().any(|(r, _)| r == role) {
            RoleType::Number
        } else {
            RoleType::of(role)
        }
    }
}

/// A read file.
#[derive(Debug)]
pub struct ReadFile {
    /// Its rows, all of them (the window is applied by the caller).
    pub rows: Vec<Row>,
    /// `sha256:` of its bytes.
    pub digest: String,
}

/// Reads one telemetry file.
///
/// # Errors
/// [`TelemetryError`] naming file, line, column and role.
pub fn read_file(
    path: &Path,
    format: Option<TelemetryFormat>,
    columns: &Columns,
) -> Result<ReadFile, TelemetryError> {
    let bytes = std::fs::read(path).map_err(|source| TelemetryError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let digest = sha256_tagged(&bytes);
    let format = match format {
        Some(f) => f,
        None => match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => TelemetryFormat::Csv,
            Some("jsonl" | "ndjson") => TelemetryFormat::Jsonl,
            _ => {
                return Err(TelemetryError::Invalid {
                    path: path.to_path_buf(),
                    line: None,
                    field: None,
                    message: "unknown telemetry format: name the file .csv or .jsonl, or set telemetry.format".into(),
                });
            }
        },
    };
    let rows = match format {
        TelemetryFormat::Csv => read_csv(path, &bytes, columns)?,
        TelemetryFormat::Jsonl => read_jsonl(path, &bytes, columns)?,
    };
    Ok(ReadFile { rows, digest })
}

fn bad(path: &Path, line: u64, column: &str, role: &str, message: String) -> TelemetryError {
    TelemetryError::Invalid {
        path: path.to_path_buf(),
        line: Some(line),
        field: Some(format!("{column} ({role})")),
        message,
    }
}

fn read_csv(path: &Path, bytes: &[u8], columns: &Columns) -> Result<Vec<Row>, TelemetryError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = rdr.headers().map_err(|e| csv_error(path, &e))?.clone();
    let find = |col: &str, role: &str| -> Result<usize, TelemetryError> {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == col)
            .ok_or_else(|| TelemetryError::Invalid {
                path: path.to_path_buf(),
                line: Some(1),
                field: Some(format!("{col} ({role})")),
                message: format!(
                    "the header has no column `{col}` (mapped to role `{role}`); it has: {}",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            })
    };
    let ts_idx = find(&columns.timestamp_column, "timestamp")?;
    let idx: Vec<usize> = columns
        .mapped
        .iter()
        .map(|(r, c)| find(c, r))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(path, &e)),
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let ts_text = record.get(ts_idx).unwrap_or_default();
        let ts = parse_timestamp(ts_text)
            .map_err(|m| bad(path, line, &columns.timestamp_column, "timestamp", m))?;
        let mut values = Vec::with_capacity(columns.mapped.len() + columns.derived.len());
        for ((role, col), &i) in columns.mapped.iter().zip(&idx) {
            let raw = record.get(i).unwrap_or_default();
            values.push(
                parse_text_value(raw, columns.role_type(role))
                    .map_err(|m| bad(path, line, col, role, m))?,
            );
        }
        derive(&mut values, columns);
        rows.push(Row { ts, values });
    }
    Ok(rows)
}

fn csv_error(path: &Path, e: &csv::Error) -> TelemetryError {
    TelemetryError::Invalid {
        path: path.to_path_buf(),
        line: e.position().map(|p| p.line()),
        field: None,
        message: format!("malformed CSV: {e}"),
    }
}

fn read_jsonl(path: &Path, bytes: &[u8], columns: &Columns) -> Result<Vec<Row>, TelemetryError> {
    let text = std::str::from_utf8(bytes).map_err(|e| TelemetryError::Invalid {
        path: path.to_path_buf(),
        line: None,
        field: None,
        message: format!("not UTF-8: {e}"),
    })?;
    let mut rows = Vec::new();
    for (n, line_text) in text.lines().enumerate() {
        let line = n as u64 + 1;
        if line_text.trim().is_empty() {
            continue;
        }
        let obj: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(line_text).map_err(|e| TelemetryError::Invalid {
                path: path.to_path_buf(),
                line: Some(line),
                field: None,
                message: format!("not a JSON object: {e}"),
            })?;
        let ts_col = &columns.timestamp_column;
        let ts = match obj.get(ts_col.as_str()) {
            Some(serde_json::Value::String(s)) => parse_timestamp(s),
            Some(other) => Err(format!("expected an RFC 3339 string, found {other}")),
            None => Err(format!("no key `{ts_col}`")),
        }
        .map_err(|m| bad(path, line, ts_col, "timestamp", m))?;
        let mut values = Vec::with_capacity(columns.mapped.len() + columns.derived.len());
        for (role, col) in &columns.mapped {
            let v = match obj.get(col.as_str()) {
                None | Some(serde_json::Value::Null) => Ok(Value::Missing),
                Some(serde_json::Value::String(s)) => parse_text_value(s, columns.role_type(role)),
                Some(serde_json::Value::Bool(b)) => match columns.role_type(role) {
                    RoleType::Bool => Ok(Value::Bool(*b)),
                    RoleType::Text => Ok(Value::Text(b.to_string())),
                    t => Err(format!("expected {}, found a boolean", type_word(t))),
                },
                Some(serde_json::Value::Number(x)) => match columns.role_type(role) {
                    RoleType::Number => x
                        .as_f64()
                        .map(Value::Num)
                        .ok_or_else(|| format!("number {x} out of range")),
                    RoleType::Text => Ok(Value::Text(x.to_string())),
                    RoleType::Bool => match x.as_i64() {
                        Some(1) => Ok(Value::Bool(true)),
                        Some(0) => Ok(Value::Bool(false)),
                        _ => Err(format!("expected a boolean, found {x}")),
                    },
                    RoleType::Timestamp => Err("unexpected number".into()),
                },
                Some(other) => Err(format!(
                    "expected {}, found {other}",
                    type_word(columns.role_type(role))
                )),
            }
            .map_err(|m| bad(path, line, col, role, m))?;
            values.push(v);
        }
        derive(&mut values, columns);
        rows.push(Row { ts, values });
    }
    Ok(rows)
}

fn derive(values: &mut Vec<Value>, columns: &Columns) {
    for (_, terms) in &columns.derived {
        let mut sum = 0.0;
        let mut ok = true;
        for &(i, w) in terms {
            match values.get(i) {
                Some(Value::Num(x)) => sum += x * w,
                _ => ok = false,
            }
        }
        values.push(if ok { Value::Num(sum) } else { Value::Missing });
    }
}

fn type_word(t: RoleType) -> &'static str {
    match t {
        RoleType::Timestamp => "a timestamp",
        RoleType::Text => "text",
        RoleType::Bool => "a boolean",
        RoleType::Number => "a number",
    }
}

/// Parses a cell as the role's type; an empty cell is [`Value::Missing`].
///
/// # Errors
/// A message saying what was expected and what was found.
pub fn parse_text_value(raw: &str, t: RoleType) -> Result<Value, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(Value::Missing);
    }
    match t {
        RoleType::Text => Ok(Value::Text(s.to_owned())),
        RoleType::Number => match s.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Value::Num(x)),
            _ => Err(format!("expected a number, found {s:?}")),
        },
        RoleType::Bool => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "n" => Ok(Value::Bool(false)),
            _ => Err(format!(
                "expected a boolean (true/false, 1/0, yes/no), found {s:?}"
            )),
        },
        RoleType::Timestamp => parse_timestamp(s).map(|_| Value::Missing),
    }
}

/// Parses a timestamp: RFC 3339 / ISO 8601 with an offset or `Z`, or a civil date-time
/// (`2023-11-16 18:15:46.6805900`, `T` or space) read as UTC. Returns nanoseconds since the
/// Unix epoch.
///
/// # Errors
/// A message quoting the text.
pub fn parse_timestamp(s: &str) -> Result<jiff::Timestamp, String> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    match s.parse::<jiff::civil::DateTime>() {
        Ok(dt) => dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| format!("timestamp {s:?} out of range: {e}")),
        Err(_) => Err(format!(
            "expected a timestamp (RFC 3339, or YYYY-MM-DD HH:MM:SS read as UTC), found {s:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let a = parse_timestamp("2023-11-16 18:15:46.6805900").unwrap();
        let b = parse_timestamp("2023-11-16T18:15:46.68059Z").unwrap();
        assert_eq!(a, b);
        let c = parse_timestamp("2023-11-16T19:15:46.68059+01:00").unwrap();
        assert_eq!(a, c);
        assert!(parse_timestamp("2023-13-16 18:15:46").is_err());
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn values() {
        assert_eq!(parse_text_value("", RoleType::Number), Ok(Value::Missing));
        assert_eq!(
            parse_text_value(" 12.5", RoleType::Number),
            Ok(Value::Num(12.5))
        );
        assert!(parse_text_value("12ms", RoleType::Number).is_err());
        assert!(parse_text_value("NaN", RoleType::Number).is_err());
        assert_eq!(
            parse_text_value("Yes", RoleType::Bool),
            Ok(Value::Bool(true))
        );
        assert!(parse_text_value("maybe", RoleType::Bool).is_err());
    }
}
