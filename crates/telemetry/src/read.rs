//! Readers: CSV (with a header row) and JSON Lines, into typed rows.

use crate::TelemetryError;
use crate::engine::{Row, Value};
use stagegate_core::card::{Telemetry, TelemetryFormat};
use stagegate_core::digest::StreamDigest;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::Path;
use std::rc::Rc;

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
    /// The type of a role name (see the card's `telemetry.columns`): `timestamp`; text for
    /// `user`, `cohort`, `outcome`, `severity`, `model`, `operation` and any role ending in
    /// `_id` or `_name`; boolean for `accepted`; a number otherwise.
    pub fn of(role: &str) -> RoleType {
        match role {
            "timestamp" => RoleType::Timestamp,
            "user" | "cohort" | "outcome" | "severity" | "model" | "operation" => RoleType::Text,
            "accepted" => RoleType::Bool,
            r if r.ends_with("_id") || r.ends_with("_name") => RoleType::Text,
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
    /// `sha256:` of the file's bytes as stored (compressed bytes for `.gz` / `.zst`).
    pub digest: String,
}

/// The format of a file: `telemetry.format` when set, else from its name — `.csv`,
/// `.jsonl` / `.ndjson`, `.otlp.jsonl` / `.otlp.json` (OTLP/JSON file exporter), `.parquet` —
/// after removing a `.gz` or `.zst` suffix.
///
/// # Errors
/// [`TelemetryError::Invalid`] for an unknown extension, or a compressed Parquet file
/// (Parquet compresses its own pages).
pub fn detect_format(
    path: &Path,
    format: Option<TelemetryFormat>,
) -> Result<(TelemetryFormat, Compression), TelemetryError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let (stem, compression) = if let Some(s) = name.strip_suffix(".gz") {
        (s.to_owned(), Compression::Gzip)
    } else if let Some(s) = name.strip_suffix(".zst") {
        (s.to_owned(), Compression::Zstd)
    } else {
        (name.clone(), Compression::None)
    };
    let detected = if stem.ends_with(".otlp.jsonl") || stem.ends_with(".otlp.json") {
        Some(TelemetryFormat::Otlp)
    } else if stem.ends_with(".csv") {
        Some(TelemetryFormat::Csv)
    } else if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") {
        Some(TelemetryFormat::Jsonl)
    } else if stem.ends_with(".parquet") {
        Some(TelemetryFormat::Parquet)
    } else {
        None
    };
    let Some(f) = format.or(detected) else {
        return Err(TelemetryError::Invalid {
            path: path.to_path_buf(),
            line: None,
            field: None,
            message: "unknown telemetry format: name the file .csv, .jsonl, .otlp.jsonl or .parquet (optionally .gz or .zst), or set telemetry.format".into(),
        });
    };
    if f == TelemetryFormat::Parquet && compression != Compression::None {
        return Err(TelemetryError::Invalid {
            path: path.to_path_buf(),
            line: None,
            field: None,
            message: "a Parquet file is compressed inside; do not gzip or zstd it".into(),
        });
    }
    Ok((f, compression))
}

/// Whole-file compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

/// A reader that hashes every byte it passes on, so a file is digested in the same pass that
/// parses it.
struct Hashing<R> {
    inner: R,
    digest: Rc<RefCell<StreamDigest>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}

fn unreadable(path: &Path, source: std::io::Error) -> TelemetryError {
    TelemetryError::Unreadable {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads one telemetry file, streaming it through decompression (`.gz`, `.zst`) and hashing
/// its stored bytes on the way.
///
/// # Errors
/// [`TelemetryError`] naming file, line (or row), column and role.
pub fn read_file(
    path: &Path,
    format: Option<TelemetryFormat>,
    columns: &Columns,
) -> Result<ReadFile, TelemetryError> {
    let (format, compression) = detect_format(path, format)?;
    let file = std::fs::File::open(path).map_err(|e| unreadable(path, e))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(unreadable(
            path,
            std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory"),
        ));
    }
    if format == TelemetryFormat::Parquet {
        let mut bytes = Vec::new();
        std::io::BufReader::new(file)
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(path, e))?;
        let digest = stagegate_core::digest::sha256_tagged(&bytes);
        let rows = crate::parquet_read::read_parquet(path, bytes, columns)?;
        return Ok(ReadFile { rows, digest });
    }
    let digest = Rc::new(RefCell::new(StreamDigest::new()));
    let hashing = Hashing {
        inner: std::io::BufReader::with_capacity(1 << 16, file),
        digest: Rc::clone(&digest),
    };
    let mut reader: Box<dyn BufRead> = match compression {
        Compression::None => Box::new(std::io::BufReader::with_capacity(1 << 16, hashing)),
        Compression::Gzip => Box::new(std::io::BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(hashing),
        )),
        Compression::Zstd => Box::new(std::io::BufReader::with_capacity(
            1 << 16,
            zstd::stream::read::Decoder::new(hashing).map_err(|e| unreadable(path, e))?,
        )),
    };
    let rows = match format {
        TelemetryFormat::Csv => read_csv(path, &mut reader, columns)?,
        TelemetryFormat::Jsonl => read_jsonl(path, &mut reader, columns)?,
        TelemetryFormat::Otlp => crate::otlp::read_otlp(path, &mut reader, columns)?,
        TelemetryFormat::Parquet => unreachable_parquet(path)?,
    };
    // Drain what the parser left (trailing bytes, gzip footer) so the digest covers the file.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| unreadable(path, e))?;
    drop(reader);
    let digest = Rc::try_unwrap(digest)
        .map(|d| d.into_inner().finish())
        .map_err(|_| unreadable(path, std::io::Error::other("digest still shared")))?;
    Ok(ReadFile { rows, digest })
}

fn unreachable_parquet(path: &Path) -> Result<Vec<Row>, TelemetryError> {
    Err(TelemetryError::Invalid {
        path: path.to_path_buf(),
        line: None,
        field: None,
        message: "internal: Parquet is read above".into(),
    })
}

pub(crate) fn bad(
    path: &Path,
    line: u64,
    column: &str,
    role: &str,
    message: String,
) -> TelemetryError {
    TelemetryError::Invalid {
        path: path.to_path_buf(),
        line: Some(line),
        field: Some(format!("{column} ({role})")),
        message,
    }
}

fn read_csv(
    path: &Path,
    input: &mut dyn BufRead,
    columns: &Columns,
) -> Result<Vec<Row>, TelemetryError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(input);
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
    if let csv::ErrorKind::Io(io) = e.kind() {
        use std::io::ErrorKind as K;
        if matches!(
            io.kind(),
            K::InvalidData | K::InvalidInput | K::UnexpectedEof | K::Other
        ) {
            return TelemetryError::Invalid {
                path: path.to_path_buf(),
                line: None,
                field: None,
                message: format!("corrupt or truncated data: {io}"),
            };
        }
        return unreadable(path, std::io::Error::new(io.kind(), io.to_string()));
    }
    TelemetryError::Invalid {
        path: path.to_path_buf(),
        line: e.position().map(|p| p.line()),
        field: None,
        message: format!("malformed CSV: {e}"),
    }
}

/// Converts a JSON value to a role's type (JSON Lines cells, OTLP attribute values).
pub(crate) fn json_value(v: Option<&serde_json::Value>, t: RoleType) -> Result<Value, String> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(Value::Missing),
        Some(serde_json::Value::String(s)) => parse_text_value(s, t),
        Some(serde_json::Value::Bool(b)) => match t {
            RoleType::Bool => Ok(Value::Bool(*b)),
            RoleType::Text => Ok(Value::Text(b.to_string())),
            t => Err(format!("expected {}, found a boolean", type_word(t))),
        },
        Some(serde_json::Value::Number(x)) => match t {
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
        Some(other) => Err(format!("expected {}, found {other}", type_word(t))),
    }
}

fn read_jsonl(
    path: &Path,
    input: &mut dyn BufRead,
    columns: &Columns,
) -> Result<Vec<Row>, TelemetryError> {
    let mut rows = Vec::new();
    let mut buf = String::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = input.read_line(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => TelemetryError::Invalid {
                path: path.to_path_buf(),
                line: Some(line + 1),
                field: None,
                message: format!("not UTF-8: {e}"),
            },
            _ => unreadable(path, e),
        })?;
        if n == 0 {
            break;
        }
        line += 1;
        let line_text = buf.trim_end_matches(['\n', '\r']);
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
            values.push(
                json_value(obj.get(col.as_str()), columns.role_type(role))
                    .map_err(|m| bad(path, line, col, role, m))?,
            );
        }
        derive(&mut values, columns);
        rows.push(Row { ts, values });
    }
    Ok(rows)
}

pub(crate) fn derive(values: &mut Vec<Value>, columns: &Columns) {
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

pub(crate) fn type_word(t: RoleType) -> &'static str {
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
