//! Readers: CSV (with a header row) and JSON Lines, streamed row by row into an
//! [`Evaluator`]; `.gz` / `.zst` decompression; the column roles and their types.

use crate::TelemetryError;
use crate::engine::{Cell, Evaluator, RowRef};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use stagegate_core::card::{Telemetry, TelemetryFormat};
use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, Read};
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
        return Err(invalid(
            path,
            None,
            None,
            "unknown telemetry format: name the file .csv, .jsonl, .otlp.jsonl or .parquet (optionally .gz or .zst), or set telemetry.format".into(),
        ));
    };
    if f == TelemetryFormat::Parquet && compression != Compression::None {
        return Err(invalid(
            path,
            None,
            None,
            "a Parquet file is compressed inside; do not gzip or zstd it".into(),
        ));
    }
    Ok((f, compression))
}

pub(crate) fn invalid(
    path: &Path,
    line: Option<u64>,
    field: Option<String>,
    message: String,
) -> TelemetryError {
    TelemetryError::Invalid {
        path: path.to_path_buf(),
        line,
        field,
        message,
    }
}

pub(crate) fn unreadable(path: &Path, source: std::io::Error) -> TelemetryError {
    TelemetryError::Unreadable {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn bad(
    path: &Path,
    line: u64,
    column: &str,
    role: &str,
    message: String,
) -> TelemetryError {
    invalid(
        path,
        Some(line),
        Some(format!("{column} ({role})")),
        message,
    )
}

/// Maps an IO error met while parsing: corrupt compressed data is invalid content, anything
/// else means the file could not be read.
pub(crate) fn io_error(path: &Path, e: &std::io::Error) -> TelemetryError {
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::InvalidData | K::InvalidInput | K::UnexpectedEof | K::Other
    ) {
        invalid(path, None, None, format!("corrupt or truncated data: {e}"))
    } else {
        unreadable(path, std::io::Error::new(e.kind(), e.to_string()))
    }
}

/// Opens a byte stream, decompressing `.gz` / `.zst`.
pub(crate) fn decompress<'r>(
    path: &Path,
    raw: impl Read + 'r,
    compression: Compression,
) -> Result<Box<dyn BufRead + 'r>, TelemetryError> {
    const BUF: usize = 1 << 18;
    Ok(match compression {
        Compression::None => Box::new(std::io::BufReader::with_capacity(BUF, raw)),
        Compression::Gzip => Box::new(std::io::BufReader::with_capacity(
            BUF,
            flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(BUF, raw)),
        )),
        Compression::Zstd => Box::new(std::io::BufReader::with_capacity(
            BUF,
            zstd::stream::read::Decoder::new(raw).map_err(|e| io_error(path, &e))?,
        )),
    })
}

/// Column positions of a CSV file's roles, from its header.
#[derive(Debug, Clone)]
pub struct CsvLayout {
    /// Position of the timestamp column.
    pub ts: usize,
    /// Position of each mapped role's column, in [`Columns::mapped`] order.
    pub roles: Vec<usize>,
}

/// Reads the header row and finds every mapped column.
///
/// # Errors
/// [`TelemetryError::Invalid`] naming a column the header lacks.
pub fn csv_layout(
    path: &Path,
    input: &mut dyn BufRead,
    columns: &Columns,
) -> Result<CsvLayout, TelemetryError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(input);
    let mut header = csv::StringRecord::new();
    match rdr.read_record(&mut header) {
        Ok(true) => {}
        Ok(false) => {
            return Err(invalid(
                path,
                Some(1),
                None,
                "empty file: no header row".into(),
            ));
        }
        Err(e) => return Err(csv_error(path, &e)),
    }
    let find = |col: &str, role: &str| -> Result<usize, TelemetryError> {
        header
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == col)
            .ok_or_else(|| {
                invalid(
                    path,
                    Some(1),
                    Some(format!("{col} ({role})")),
                    format!(
                        "the header has no column `{col}` (mapped to role `{role}`); it has: {}",
                        header.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    };
    Ok(CsvLayout {
        ts: find(&columns.timestamp_column, "timestamp")?,
        roles: columns
            .mapped
            .iter()
            .map(|(r, c)| find(c, r))
            .collect::<Result<_, _>>()?,
    })
}

fn csv_error(path: &Path, e: &csv::Error) -> TelemetryError {
    if let csv::ErrorKind::Io(io) = e.kind() {
        return io_error(path, io);
    }
    invalid(
        path,
        e.position().map(|p| p.line()),
        None,
        format!("malformed CSV: {e}"),
    )
}

/// Reuses a vector's allocation for a shorter-lived element type (an empty `Vec` converts in
/// place: same size and alignment).
fn recycle<'a, 'b>(mut v: Vec<Cell<'a>>) -> Vec<Cell<'b>> {
    v.clear();
    v.into_iter().map(|_| Cell::Missing).collect()
}

/// Streams CSV records into `eval`. `skip_header` drops the first record; `line_base` is the
/// line number of the input's first line minus one (for chunks of a file).
///
/// # Errors
/// [`TelemetryError`] naming the line and column.
pub fn read_csv(
    path: &Path,
    input: &mut dyn BufRead,
    columns: &Columns,
    layout: &CsvLayout,
    skip_header: bool,
    eval: &mut Evaluator,
) -> Result<(), TelemetryError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(skip_header)
        .flexible(false)
        .from_reader(input);
    let mut record = csv::ByteRecord::new();
    let mut ts_parser = TsParser::default();
    let types: Vec<RoleType> = columns
        .mapped
        .iter()
        .map(|(r, _)| columns.role_type(r))
        .collect();
    let mut store: Vec<Cell<'static>> =
        Vec::with_capacity(columns.mapped.len() + columns.derived.len());
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(path, &e)),
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let ts_bytes = record.get(layout.ts).unwrap_or_default();
        let ts = ts_parser
            .parse(ts_bytes)
            .map_err(|m| bad(path, line, &columns.timestamp_column, "timestamp", m))?;
        let mut cells: Vec<Cell<'_>> = recycle(std::mem::take(&mut store));
        for ((&i, t), (role, col)) in layout.roles.iter().zip(&types).zip(&columns.mapped) {
            let raw = record.get(i).unwrap_or_default();
            let cell = parse_bytes(raw, *t).map_err(|m| bad(path, line, col, role, m))?;
            cells.push(cell);
        }
        derive(&mut cells, columns);
        eval.push(&RowRef { ts, cells: &cells });
        store = recycle(cells);
    }
    Ok(())
}

/// Parses CSV bytes as the role's type. Numbers are parsed straight from the bytes (no UTF-8
/// pass); anything unusual (spaces, signs of trouble) falls back to [`parse_cell`].
fn parse_bytes(raw: &[u8], t: RoleType) -> Result<Cell<'_>, String> {
    if raw.is_empty() {
        return Ok(Cell::Missing);
    }
    if t == RoleType::Number
        && let Ok((x, used)) = fast_float2::parse_partial::<f64, _>(raw)
        && used == raw.len()
        && x.is_finite()
    {
        return Ok(Cell::Num(x));
    }
    if t == RoleType::Bool {
        match raw {
            b"true" | b"1" => return Ok(Cell::Bool(true)),
            b"false" | b"0" => return Ok(Cell::Bool(false)),
            _ => {}
        }
    }
    let s = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))?;
    parse_cell(s, t)
}

/// Parses a cell as the role's type; an empty cell is [`Cell::Missing`].
///
/// # Errors
/// A message saying what was expected and what was found.
pub fn parse_cell(raw: &str, t: RoleType) -> Result<Cell<'_>, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(Cell::Missing);
    }
    match t {
        RoleType::Text => Ok(Cell::Text(Cow::Borrowed(s))),
        RoleType::Number => match s.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Cell::Num(x)),
            _ => Err(format!("expected a number, found {s:?}")),
        },
        RoleType::Bool => parse_bool(s),
        RoleType::Timestamp => parse_timestamp(s).map(|_| Cell::Missing),
    }
}

fn parse_bool(s: &str) -> Result<Cell<'static>, String> {
    match s {
        "true" | "1" => Ok(Cell::Bool(true)),
        "false" | "0" => Ok(Cell::Bool(false)),
        _ => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" => Ok(Cell::Bool(true)),
            "false" | "no" | "n" => Ok(Cell::Bool(false)),
            _ => Err(format!(
                "expected a boolean (true/false, 1/0, yes/no), found {s:?}"
            )),
        },
    }
}

/// Appends the derived roles (weighted sums of numeric roles) to a row's cells.
pub(crate) fn derive(cells: &mut Vec<Cell<'_>>, columns: &Columns) {
    for (_, terms) in &columns.derived {
        let mut sum = 0.0;
        let mut ok = true;
        for &(i, w) in terms {
            match cells.get(i) {
                Some(Cell::Num(x)) => sum += x * w,
                _ => ok = false,
            }
        }
        cells.push(if ok { Cell::Num(sum) } else { Cell::Missing });
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

/// Parses a timestamp: RFC 3339 / ISO 8601 with an offset or `Z`, or a civil date-time
/// (`2023-11-16 18:15:46.6805900`, `T` or space) read as UTC.
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

/// Timestamps to nanoseconds, with a fast path for the common UTC shapes
/// `YYYY-MM-DD[T ]HH:MM:SS[.f…][Z]`: the date's midnight comes from jiff and is cached (rows
/// arrive in time order, so the cache nearly always hits); the time of day is read digit by
/// digit. Anything else goes through [`parse_timestamp`].
#[derive(Debug, Default)]
pub struct TsParser {
    date: [u8; 10],
    midnight: Option<i64>,
}

fn two(b: &[u8], at: usize) -> Option<i64> {
    let (a, c) = (b.get(at)?, b.get(at + 1)?);
    (a.is_ascii_digit() && c.is_ascii_digit())
        .then(|| i64::from(a - b'0') * 10 + i64::from(c - b'0'))
}

impl TsParser {
    /// Nanoseconds since the Unix epoch.
    ///
    /// # Errors
    /// A message quoting the text.
    pub fn parse(&mut self, raw: &[u8]) -> Result<i64, String> {
        if let Some(ns) = self.fast(raw) {
            return Ok(ns);
        }
        let s = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))?;
        let ts = parse_timestamp(s)?;
        i64::try_from(ts.as_nanosecond()).map_err(|_| format!("timestamp {s:?} out of range"))
    }

    fn fast(&mut self, b: &[u8]) -> Option<i64> {
        if b.len() < 19
            || b[4] != b'-'
            || b[7] != b'-'
            || !(b[10] == b'T' || b[10] == b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let (h, m, s) = (two(b, 11)?, two(b, 14)?, two(b, 17)?);
        if h > 23 || m > 59 || s > 59 {
            return None;
        }
        let mut rest = &b[19..];
        let mut frac_ns = 0i64;
        if let Some((&b'.', digits)) = rest.split_first() {
            let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 9 {
                return None;
            }
            let mut v = 0i64;
            for &d in &digits[..n] {
                v = v * 10 + i64::from(d - b'0');
            }
            frac_ns = v * 10i64.pow(9 - n as u32);
            rest = &digits[n..];
        }
        if !(rest.is_empty() || rest == b"Z" || rest == b"+00:00") {
            return None;
        }
        let midnight = if self.midnight.is_some() && b[..10] == self.date {
            self.midnight?
        } else {
            let d: jiff::civil::Date = std::str::from_utf8(&b[..10]).ok()?.parse().ok()?;
            let ns = d
                .to_zoned(jiff::tz::TimeZone::UTC)
                .ok()?
                .timestamp()
                .as_nanosecond();
            let ns = i64::try_from(ns).ok()?;
            self.date.copy_from_slice(&b[..10]);
            self.midnight = Some(ns);
            ns
        };
        Some(midnight + ((h * 60 + m) * 60 + s) * 1_000_000_000 + frac_ns)
    }
}

/// A JSON value as the reader needs it: strings borrow from the line when unescaped.
enum JVal<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    Other,
}

struct JValVisitor;

impl<'de> Visitor<'de> for JValVisitor {
    type Value = JVal<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<JVal<'de>, E> {
        Ok(JVal::Null)
    }
    fn visit_none<E>(self) -> Result<JVal<'de>, E> {
        Ok(JVal::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<JVal<'de>, E> {
        Ok(JVal::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<JVal<'de>, E> {
        Ok(JVal::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<JVal<'de>, E> {
        Ok(JVal::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<JVal<'de>, E> {
        Ok(JVal::Num(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<JVal<'de>, E> {
        Ok(JVal::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<JVal<'de>, E> {
        Ok(JVal::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<JVal<'de>, E> {
        Ok(JVal::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<JVal<'de>, A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(JVal::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<JVal<'de>, A::Error> {
        while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(JVal::Other)
    }
}

struct JValSeed;

impl<'de> DeserializeSeed<'de> for JValSeed {
    type Value = JVal<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<JVal<'de>, D::Error> {
        d.deserialize_any(JValVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

/// Extracts the wanted keys of one JSON object, skipping the rest without allocating. Keys
/// usually come in the same order on every line, so `hint` remembers which wanted key the
/// n-th key of the previous line was and tries it first.
struct Extract<'k, 'de> {
    keys: &'k [&'k str],
    vals: &'k mut Vec<JVal<'de>>,
    hint: &'k mut Vec<usize>,
}

impl<'de> Visitor<'de> for Extract<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut nth = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let hinted = self
                .hint
                .get(nth)
                .copied()
                .filter(|&i| i < self.keys.len() && self.keys[i] == key);
            let found = hinted.or_else(|| self.keys.iter().position(|k| *k == key));
            match found {
                Some(i) => {
                    self.vals[i] = map.next_value_seed(JValSeed)?;
                    if nth < self.hint.len() {
                        self.hint[nth] = i;
                    } else {
                        self.hint.push(i);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    if nth < self.hint.len() {
                        self.hint[nth] = usize::MAX;
                    } else {
                        self.hint.push(usize::MAX);
                    }
                }
            }
            nth += 1;
        }
        Ok(())
    }
}

/// Converts a parsed JSON value (OTLP attributes) to a cell of the role's type.
pub(crate) fn json_cell(
    v: Option<&serde_json::Value>,
    t: RoleType,
) -> Result<Cell<'static>, String> {
    let j = match v {
        None | Some(serde_json::Value::Null) => JVal::Null,
        Some(serde_json::Value::Bool(b)) => JVal::Bool(*b),
        Some(serde_json::Value::Number(n)) => match n.as_f64() {
            Some(x) => JVal::Num(x),
            None => return Err(format!("number {n} out of range")),
        },
        Some(serde_json::Value::String(s)) => JVal::Str(Cow::Owned(s.clone())),
        Some(_) => JVal::Other,
    };
    jval_cell(j, t)
}

fn jval_cell<'a>(v: JVal<'a>, t: RoleType) -> Result<Cell<'a>, String> {
    match v {
        JVal::Null => Ok(Cell::Missing),
        JVal::Str(s) => match (t, s) {
            (RoleType::Text, s) => Ok(if s.trim().is_empty() {
                Cell::Missing
            } else {
                Cell::Text(s)
            }),
            (t, Cow::Borrowed(b)) => parse_cell(b, t),
            (t, Cow::Owned(o)) => parse_cell(&o, t).map(|c| match c {
                Cell::Text(s) => Cell::Text(Cow::Owned(s.into_owned())),
                Cell::Num(x) => Cell::Num(x),
                Cell::Bool(b) => Cell::Bool(b),
                Cell::Missing => Cell::Missing,
            }),
        },
        JVal::Bool(b) => match t {
            RoleType::Bool => Ok(Cell::Bool(b)),
            RoleType::Text => Ok(Cell::Text(Cow::Owned(b.to_string()))),
            t => Err(format!("expected {}, found a boolean", type_word(t))),
        },
        JVal::Num(x) => match t {
            RoleType::Number => Ok(Cell::Num(x)),
            RoleType::Text => Ok(Cell::Text(Cow::Owned(x.to_string()))),
            RoleType::Bool if x == 0.0 || x == 1.0 => Ok(Cell::Bool(x == 1.0)),
            t => Err(format!("expected {}, found {x}", type_word(t))),
        },
        JVal::Other => Err(format!(
            "expected {}, found an array or object",
            type_word(t)
        )),
    }
}

/// Byte equality for short keys, inlined (a libc call per key costs more than the compare).
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A fast path for the flat objects telemetry lines almost always are — `{"key": value, …}`
/// with string, number, boolean or null values and no escapes: one pass over the bytes, values
/// borrowed, UTF-8 checked only for the string values kept. Returns `None` for anything else
/// (nesting, escapes, odd spacing, invalid UTF-8), and the caller then uses serde_json, so the
/// result never differs — only the speed.
fn scan_flat<'a>(
    line: &'a [u8],
    keys: &[&str],
    vals: &mut [JVal<'a>],
    hint: &mut Vec<usize>,
) -> Option<()> {
    let b = line;
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    ws(&mut i);
    if b.get(i) == Some(&b'}') {
        i += 1;
        ws(&mut i);
        return (i == b.len()).then_some(());
    }
    let mut nth = 0;
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let k0 = i + 1;
        let k1 = k0 + memchr::memchr2(b'"', b'\\', &b[k0..])?;
        if b[k1] != b'"' {
            return None;
        }
        let key = &b[k0..k1];
        i = k1 + 1;
        ws(&mut i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        ws(&mut i);
        let found = match hint.get(nth) {
            Some(&h) if h < keys.len() && same_key(keys[h].as_bytes(), key) => Some(h),
            _ => keys.iter().position(|k| same_key(k.as_bytes(), key)),
        };
        let value = match b.get(i)? {
            b'"' => {
                let v0 = i + 1;
                let v1 = v0 + memchr::memchr2(b'"', b'\\', &b[v0..])?;
                if b[v1] != b'"' {
                    return None;
                }
                i = v1 + 1;
                if found.is_some() {
                    JVal::Str(Cow::Borrowed(std::str::from_utf8(&b[v0..v1]).ok()?))
                } else {
                    JVal::Null
                }
            }
            b'{' | b'[' => return None,
            _ => {
                let v0 = i;
                while i < b.len() && !matches!(b[i], b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n') {
                    i += 1;
                }
                match &b[v0..i] {
                    b"true" => JVal::Bool(true),
                    b"false" => JVal::Bool(false),
                    b"null" => JVal::Null,
                    raw => {
                        if !matches!(raw[0], b'-' | b'0'..=b'9') {
                            return None;
                        }
                        let (x, used) = fast_float2::parse_partial::<f64, _>(raw).ok()?;
                        if used != raw.len() {
                            return None;
                        }
                        JVal::Num(x)
                    }
                }
            }
        };
        let slot = found.unwrap_or(usize::MAX);
        match hint.get_mut(nth) {
            Some(h) => *h = slot,
            None => hint.push(slot),
        }
        if let Some(h) = found {
            vals[h] = value;
        }
        nth += 1;
        ws(&mut i);
        match b.get(i)? {
            b',' => {
                i += 1;
                ws(&mut i);
            }
            b'}' => {
                i += 1;
                ws(&mut i);
                return (i == b.len()).then_some(());
            }
            _ => return None,
        }
    }
}

/// Streams JSON Lines into `eval`. `line_base` is added to reported line numbers (chunks).
///
/// # Errors
/// [`TelemetryError`] naming the line and field.
pub fn read_jsonl(
    path: &Path,
    input: &mut dyn BufRead,
    columns: &Columns,
    line_base: u64,
    eval: &mut Evaluator,
) -> Result<(), TelemetryError> {
    let mut keys: Vec<&str> = vec![columns.timestamp_column.as_str()];
    keys.extend(columns.mapped.iter().map(|(_, c)| c.as_str()));
    let types: Vec<RoleType> = columns
        .mapped
        .iter()
        .map(|(r, _)| columns.role_type(r))
        .collect();
    let mut buf = Vec::with_capacity(1024);
    let mut line = line_base;
    let mut ts_parser = TsParser::default();
    let mut hint: Vec<usize> = Vec::new();
    let mut store: Vec<Cell<'static>> =
        Vec::with_capacity(columns.mapped.len() + columns.derived.len());
    let mut vals_store: Vec<JVal<'static>> = Vec::with_capacity(keys.len());
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_error(path, &e))?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut vals: Vec<JVal<'_>> = recycle_vals(std::mem::take(&mut vals_store));
        vals.extend((0..keys.len()).map(|_| JVal::Null));
        if scan_flat(&buf, &keys, &mut vals, &mut hint).is_none() {
            vals.iter_mut().for_each(|v| *v = JVal::Null);
            let text = std::str::from_utf8(&buf)
                .map_err(|e| invalid(path, Some(line), None, format!("not UTF-8: {e}")))?;
            let mut de = serde_json::Deserializer::from_str(text);
            de.deserialize_map(Extract {
                keys: &keys,
                vals: &mut vals,
                hint: &mut hint,
            })
            .and_then(|()| de.end())
            .map_err(|e| invalid(path, Some(line), None, format!("not a JSON object: {e}")))?;
        }
        let ts_col = &columns.timestamp_column;
        let ts = match &vals[0] {
            JVal::Str(s) => ts_parser.parse(s.as_bytes()),
            JVal::Null => Err(format!("no key `{ts_col}`")),
            _ => Err("expected an RFC 3339 string".to_owned()),
        }
        .map_err(|m| bad(path, line, ts_col, "timestamp", m))?;
        let mut cells: Vec<Cell<'_>> = recycle(std::mem::take(&mut store));
        for ((v, t), (role, col)) in vals.drain(1..).zip(&types).zip(&columns.mapped) {
            cells.push(jval_cell(v, *t).map_err(|m| bad(path, line, col, role, m))?);
        }
        derive(&mut cells, columns);
        eval.push(&RowRef { ts, cells: &cells });
        store = recycle(cells);
        vals_store = recycle_vals(vals);
    }
    Ok(())
}

fn recycle_vals<'a, 'b>(mut v: Vec<JVal<'a>>) -> Vec<JVal<'b>> {
    v.clear();
    v.into_iter().map(|_| JVal::Null).collect()
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
    fn fast_timestamps_agree_with_jiff() {
        let mut p = TsParser::default();
        for s in [
            "2023-11-16 18:15:46.6805900",
            "2023-11-16T18:15:46Z",
            "2026-05-13T07:05:19Z",
            "2026-05-13T07:05:19.5+00:00",
            "2026-05-13T09:05:19+02:00",
            "2024-02-29T23:59:59.999999999Z",
        ] {
            let want = i64::try_from(parse_timestamp(s).unwrap().as_nanosecond()).unwrap();
            assert_eq!(p.parse(s.as_bytes()).unwrap(), want, "{s}");
        }
        assert!(p.parse(b"2026-05-13 07:96:24").is_err());
        assert!(p.parse(b"2026-02-30T07:00:00Z").is_err());
    }

    #[test]
    fn flat_scanner_agrees_with_serde_or_declines() {
        let keys = ["ts", "a", "b", "c"];
        let lines = [
            r#"{"ts":"2026-01-01T00:00:00Z","a":1.5,"b":"x","c":true}"#,
            r#"{ "b" : "y" , "zz": 3, "a": -2e3, "c": null }"#,
            r#"{"a":1,"nested":{"x":1}}"#,
            r#"{"b":"esc\"aped"}"#,
            r#"{"a":01x}"#,
            r#"{"a":1}  trailing"#,
            r#"{}"#,
            r#"{"a":NaN}"#,
        ];
        for l in lines {
            let mut fast: Vec<JVal<'_>> = keys.iter().map(|_| JVal::Null).collect();
            let mut hint = Vec::new();
            let got = scan_flat(l.as_bytes(), &keys, &mut fast, &mut hint);
            let mut slow: Vec<JVal<'_>> = keys.iter().map(|_| JVal::Null).collect();
            let mut hint2 = Vec::new();
            let mut de = serde_json::Deserializer::from_str(l);
            let serde_ok = de
                .deserialize_map(Extract {
                    keys: &keys,
                    vals: &mut slow,
                    hint: &mut hint2,
                })
                .and_then(|()| de.end())
                .is_ok();
            if got.is_some() {
                assert!(serde_ok, "fast path accepted what serde rejects: {l}");
                let show = |v: &[JVal<'_>]| {
                    v.iter()
                        .map(|x| match x {
                            JVal::Null => "null".to_owned(),
                            JVal::Bool(b) => b.to_string(),
                            JVal::Num(n) => n.to_string(),
                            JVal::Str(s) => format!("{s:?}"),
                            JVal::Other => "other".to_owned(),
                        })
                        .collect::<Vec<_>>()
                };
                assert_eq!(show(&fast), show(&slow), "{l}");
            }
        }
        let mut v: Vec<JVal<'_>> = keys.iter().map(|_| JVal::Null).collect();
        assert!(scan_flat(lines[0].as_bytes(), &keys, &mut v, &mut Vec::new()).is_some());
        assert!(
            scan_flat(lines[2].as_bytes(), &keys, &mut v, &mut Vec::new()).is_none(),
            "nesting declines"
        );
        assert!(
            scan_flat(lines[3].as_bytes(), &keys, &mut v, &mut Vec::new()).is_none(),
            "escapes decline"
        );
    }

    #[test]
    fn values() {
        assert_eq!(parse_cell("", RoleType::Number), Ok(Cell::Missing));
        assert_eq!(parse_cell(" 12.5", RoleType::Number), Ok(Cell::Num(12.5)));
        assert!(parse_cell("12ms", RoleType::Number).is_err());
        assert!(parse_cell("NaN", RoleType::Number).is_err());
        assert_eq!(parse_cell("Yes", RoleType::Bool), Ok(Cell::Bool(true)));
        assert!(parse_cell("maybe", RoleType::Bool).is_err());
    }
}
