//! Pilot telemetry: readers (CSV, JSON Lines, OTLP/JSON, Parquet; `.gz` and `.zst` streamed)
//! and the streaming metric engine.
//!
//! [`measure`] reads the files a card names, maps their columns to roles
//! ([`stagegate_core::card::Telemetry::columns`]), keeps the rows inside the pilot window
//! (`pilot.start` 00:00 UTC inclusive to `pilot.end` + 1 day 00:00 UTC exclusive), and computes
//! every telemetry-sourced success criterion with its per-week series.
//!
//! Rows are never held: each is pushed into an [`Evaluator`]. Plain CSV and JSON Lines files
//! larger than [`Options::chunk_bytes`] are cut at line boundaries into fixed-size chunks
//! evaluated on all cores and merged in file order, so results do not depend on the number of
//! threads. A CSV file with quoted fields is re-read in one piece (a quoted field may hold a
//! newline).
//!
//! Bad input is an error naming the file, the line (CSV: the physical line, header = line 1;
//! JSON Lines: the line), the column and the role. An empty cell, a JSON `null` or an absent
//! key is a missing value, not an error; metrics skip missing values.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Relative criteria (baseline, control).
pub mod compare;
mod engine;
mod otlp;
mod parquet_read;
mod quality;
mod read;

pub use compare::{PerUnit, UnitSides, finish as compare_sides};
pub use engine::{
    Cell, CriterionPlan, EXACT_QUANTILE_LIMIT, Evaluator, RowRef, SKETCH_RELATIVE_ERROR, Side,
    Sufficient, Uncertainty, bucket_label, fingerprint, interval_of, quantile,
};
pub use otlp::span_field as otlp_span_field;
pub use read::{Columns, Compression, RoleType, TsParser, detect_format, parse_timestamp};

use stagegate_core::card::{AgentCard, CriterionSource, TelemetryFormat};
use stagegate_core::digest::{InputDigest, InputRole, StreamDigest, normalise_path};
use stagegate_core::review::{DataQuality, Measurement};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why telemetry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A file is missing or unreadable.
    #[error("{}: cannot read telemetry: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file's content is wrong.
    #[error("{}{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), field.as_ref().map(|f| format!(": field `{f}`")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (CSV header = line 1).
        line: Option<u64>,
        /// `column (role)`.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
}

/// The measured criteria and what was read.
#[derive(Debug, Clone)]
pub struct TelemetryOutcome {
    /// Measurements by criterion id.
    pub measurements: BTreeMap<String, Measurement>,
    /// Rows read across files.
    pub rows_read: u64,
    /// Rows inside the pilot window.
    pub rows_in_window: u64,
    /// Weekly missing rates and drift of every role.
    pub data_quality: DataQuality,
    /// File digests, role `telemetry`, path as the card names it (normalised).
    pub inputs: Vec<InputDigest>,
    /// Paths as the card names them (normalised).
    pub files: Vec<String>,
}

/// Reports progress of a read, in bytes of the stored files.
pub trait Progress: Sync {
    /// Reading starts; `total_bytes` across files.
    fn start(&self, total_bytes: u64);
    /// `bytes` more were read.
    fn advance(&self, bytes: u64);
    /// Reading is over.
    fn finish(&self);
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Engine options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Worker threads; 0 means every available core.
    pub threads: usize,
    /// Smallest chunk for splitting plain CSV / JSON Lines files, in bytes (default 32 MiB;
    /// a file is cut into at most about eight chunks). The result does not depend on it beyond
    /// floating-point summation order.
    pub chunk_bytes: u64,
    /// Exact quantile buffer limit (default [`EXACT_QUANTILE_LIMIT`]).
    pub quantile_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 0,
            chunk_bytes: 32 << 20,
            quantile_limit: EXACT_QUANTILE_LIMIT,
        }
    }
}

/// Reads the card's telemetry (paths relative to `agent_dir`) and measures its criteria with
/// the default [`Options`] and no progress reporting. A card without telemetry gives empty
/// measurements.
///
/// # Errors
/// [`TelemetryError`] naming the file, line and field.
pub fn measure(agent_dir: &Path, card: &AgentCard) -> Result<TelemetryOutcome, TelemetryError> {
    measure_with(agent_dir, card, &NoProgress, Options::default())
}

/// One piece of work.
#[derive(Debug, Clone)]
enum Unit {
    /// A whole file, streamed (and hashed) by one worker.
    Whole { file: usize },
    /// A byte range of a plain file; the first chunk also holds a CSV header.
    Chunk { file: usize, start: u64, end: u64 },
    /// The digest of a file read in chunks.
    Hash { file: usize },
}

enum Done {
    EvalQuoted(Evaluator, bool),
    EvalDigest(Evaluator, String),
    Digest(String),
}

struct FileInfo {
    path: PathBuf,
    shown: String,
    format: TelemetryFormat,
    comp: Compression,
    size: u64,
    layout: Option<read::CsvLayout>,
}

/// A reader that reports bytes read and notices quote characters.
struct Watch<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
    quoted: bool,
}

impl<R: Read> Read for Watch<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.quoted && memchr::memchr(b'"', &buf[..n]).is_some() {
            self.quoted = true;
        }
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// A reader that hashes what it passes on.
struct Hashing<R> {
    inner: R,
    digest: StreamDigest,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
}

/// [`measure`] with progress reporting and options.
///
/// # Errors
/// [`TelemetryError`] naming the file, line and field.
pub fn measure_with(
    agent_dir: &Path,
    card: &AgentCard,
    progress: &dyn Progress,
    options: Options,
) -> Result<TelemetryOutcome, TelemetryError> {
    let Some(t) = &card.telemetry else {
        return Ok(TelemetryOutcome {
            measurements: BTreeMap::new(),
            rows_read: 0,
            rows_in_window: 0,
            data_quality: DataQuality::default(),
            inputs: Vec::new(),
            files: Vec::new(),
        });
    };
    let columns = Columns::from_card(t);
    let plans: Vec<CriterionPlan<'_>> = card
        .success_criteria
        .iter()
        .filter(|c| c.source == CriterionSource::Telemetry)
        .filter_map(|c| {
            c.metric.as_ref().map(|m| CriterionPlan {
                id: &c.id,
                metric: m,
                compare: c.compare.as_ref(),
                target: c.target(),
            })
        })
        .collect();
    let proto = Evaluator::new(
        &plans,
        &columns,
        (card.pilot.start, card.pilot.end),
        card.pilot.cohort_size,
        card.confidence(),
    )
    .with_quantile_limit(options.quantile_limit);

    // Files: resolve, detect formats, sizes, CSV layouts.
    let mut files = Vec::new();
    for f in &t.files {
        if Path::new(f).is_absolute() {
            return Err(TelemetryError::Invalid {
                path: agent_dir.join("agent.yaml"),
                line: None,
                field: Some("telemetry.files".into()),
                message: format!("`{f}` must be relative to the agent folder"),
            });
        }
        let path = agent_dir.join(f);
        let (format, comp) = detect_format(&path, t.format)?;
        let meta = std::fs::metadata(&path).map_err(|e| read::unreadable(&path, e))?;
        if meta.is_dir() {
            return Err(read::unreadable(
                &path,
                std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory"),
            ));
        }
        let layout = if format == TelemetryFormat::Csv {
            let file = std::fs::File::open(&path).map_err(|e| read::unreadable(&path, e))?;
            let mut input = read::decompress(&path, file, comp)?;
            Some(read::csv_layout(&path, &mut *input, &columns)?)
        } else {
            None
        };
        files.push(FileInfo {
            shown: normalise_path(f),
            path,
            format,
            comp,
            size: meta.len(),
            layout,
        });
    }

    // Units of work. Digests of chunked files go first: they are the longest single tasks, and
    // starting them early keeps both cores busy to the end.
    let mut units = Vec::new();
    let mut hash_units = Vec::new();
    for (i, f) in files.iter().enumerate() {
        // At least `chunk_bytes`, and at most about eight chunks a file: fewer chunks means
        // fewer partial sets and buffers to merge. Depends on the file only, never on threads.
        let chunk = options.chunk_bytes.max(f.size.div_ceil(8));
        let splittable = matches!(f.format, TelemetryFormat::Csv | TelemetryFormat::Jsonl)
            && f.comp == Compression::None
            && f.size > chunk;
        if splittable {
            let bounds = chunk_bounds(&f.path, f.size, chunk)?;
            for w in bounds.windows(2) {
                units.push(Unit::Chunk {
                    file: i,
                    start: w[0],
                    end: w[1],
                });
            }
            hash_units.push(Unit::Hash { file: i });
        } else {
            units.push(Unit::Whole { file: i });
        }
    }
    hash_units.extend(units);
    let units = hash_units;
    progress.start(files.iter().map(|f| f.size).sum());
    let results = run_units(&units, &files, &columns, &proto, progress, options.threads);
    progress.finish();

    // Gather in order; re-read whole any CSV file whose chunks met a quote.
    let mut evaluator = proto.clone();
    let mut digests: Vec<Option<String>> = vec![None; files.len()];
    let mut per_file: Vec<Vec<Evaluator>> = (0..files.len()).map(|_| Vec::new()).collect();
    let mut quoted = vec![false; files.len()];
    for (unit, result) in units.iter().zip(results) {
        let file = match unit {
            Unit::Whole { file } | Unit::Chunk { file, .. } | Unit::Hash { file } => *file,
        };
        match result? {
            Done::EvalQuoted(e, q) => {
                quoted[file] |= q;
                per_file[file].push(e);
            }
            Done::EvalDigest(e, d) => {
                per_file[file].push(e);
                digests[file] = Some(d);
            }
            Done::Digest(d) => digests[file] = Some(d),
        }
    }
    for (i, parts) in per_file.into_iter().enumerate() {
        if quoted[i] && files[i].format == TelemetryFormat::Csv {
            let mut e = proto.clone();
            let d = read_whole(&files[i], &columns, &mut e, &NoProgress)?;
            evaluator.merge(e);
            digests[i] = Some(d);
        } else {
            for e in parts {
                evaluator.merge(e);
            }
        }
    }
    let rows_read = evaluator.rows_read;
    let rows_in_window = evaluator.rows_in_window;
    let (measurements, data_quality) = evaluator.finish();
    let inputs = files
        .iter()
        .zip(digests)
        .map(|(f, d)| InputDigest {
            role: InputRole::Telemetry,
            path: f.shown.clone(),
            sha256: d.unwrap_or_default(),
        })
        .collect();
    Ok(TelemetryOutcome {
        measurements,
        rows_read,
        rows_in_window,
        data_quality,
        inputs,
        files: files.iter().map(|f| f.shown.clone()).collect(),
    })
}

/// Chunk boundaries: multiples of `chunk` moved forward to just after the next newline.
fn chunk_bounds(path: &Path, size: u64, chunk: u64) -> Result<Vec<u64>, TelemetryError> {
    let mut file = std::fs::File::open(path).map_err(|e| read::unreadable(path, e))?;
    let mut bounds = vec![0u64];
    let mut at = chunk;
    let mut buf = vec![0u8; 1 << 16];
    while at < size {
        file.seek(SeekFrom::Start(at))
            .map_err(|e| read::unreadable(path, e))?;
        let mut pos = at;
        let next = loop {
            let n = file.read(&mut buf).map_err(|e| read::unreadable(path, e))?;
            if n == 0 {
                break size;
            }
            if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
                break pos + i as u64 + 1;
            }
            pos += n as u64;
        };
        if next >= size {
            break;
        }
        if next > *bounds.last().unwrap_or(&0) {
            bounds.push(next);
        }
        at = next.max(at) + chunk;
    }
    bounds.push(size);
    Ok(bounds)
}

/// Reads a whole file into `eval` (streamed, decompressed, hashed); returns its digest.
fn read_whole(
    f: &FileInfo,
    columns: &Columns,
    eval: &mut Evaluator,
    progress: &dyn Progress,
) -> Result<String, TelemetryError> {
    let file = std::fs::File::open(&f.path).map_err(|e| read::unreadable(&f.path, e))?;
    let mut hashing = Hashing {
        inner: Watch {
            inner: file,
            progress,
            quoted: false,
        },
        digest: StreamDigest::new(),
    };
    if f.format == TelemetryFormat::Parquet {
        let mut bytes = Vec::new();
        hashing
            .read_to_end(&mut bytes)
            .map_err(|e| read::unreadable(&f.path, e))?;
        parquet_read::read_parquet(&f.path, bytes, columns, eval)?;
        return Ok(hashing.digest.finish());
    }
    {
        let mut input = read::decompress(&f.path, &mut hashing, f.comp)?;
        match f.format {
            TelemetryFormat::Csv => {
                let layout = f
                    .layout
                    .as_ref()
                    .ok_or_else(|| read::invalid(&f.path, None, None, "no CSV layout".into()))?;
                read::read_csv(&f.path, &mut *input, columns, layout, true, eval)?;
            }
            TelemetryFormat::Jsonl => read::read_jsonl(&f.path, &mut *input, columns, 0, eval)?,
            TelemetryFormat::Otlp => otlp::read_otlp(&f.path, &mut *input, columns, eval)?,
            TelemetryFormat::Parquet => {}
        }
        // Drain what the parser left (trailing bytes, a gzip footer) so the digest covers it.
        std::io::copy(&mut input, &mut std::io::sink()).map_err(|e| read::io_error(&f.path, &e))?;
    }
    Ok(hashing.digest.finish())
}

/// Reads a byte range of a plain file into `eval`; returns whether it held a quote character.
fn read_chunk(
    f: &FileInfo,
    start: u64,
    end: u64,
    columns: &Columns,
    eval: &mut Evaluator,
    progress: &dyn Progress,
) -> Result<bool, TelemetryError> {
    let mut file = std::fs::File::open(&f.path).map_err(|e| read::unreadable(&f.path, e))?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| read::unreadable(&f.path, e))?;
    let mut watch = Watch {
        inner: file.take(end - start),
        progress,
        quoted: false,
    };
    let result = {
        let mut input = std::io::BufReader::with_capacity(1 << 18, &mut watch);
        match f.format {
            TelemetryFormat::Csv => {
                let layout = f
                    .layout
                    .as_ref()
                    .ok_or_else(|| read::invalid(&f.path, None, None, "no CSV layout".into()))?;
                read::read_csv(&f.path, &mut input, columns, layout, start == 0, eval)
            }
            _ => read::read_jsonl(&f.path, &mut input, columns, 0, eval),
        }
    };
    match result {
        Ok(()) => Ok(watch.quoted),
        Err(TelemetryError::Invalid {
            path,
            line: Some(l),
            field,
            message,
        }) if start > 0 => Err(TelemetryError::Invalid {
            path,
            line: Some(l + lines_before(&f.path, start).unwrap_or(0)),
            field,
            message,
        }),
        Err(e) => Err(e),
    }
}

/// Newlines in the first `end` bytes of a file (to turn a chunk's line numbers into the file's).
fn lines_before(path: &Path, end: u64) -> std::io::Result<u64> {
    let file = std::fs::File::open(path)?;
    let mut input = std::io::BufReader::with_capacity(1 << 18, file.take(end));
    let mut buf = vec![0u8; 1 << 18];
    let mut n = 0u64;
    loop {
        let k = input.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += memchr::memchr_iter(b'\n', &buf[..k]).count() as u64;
    }
}

fn hash_file(f: &FileInfo) -> Result<String, TelemetryError> {
    let file = std::fs::File::open(&f.path).map_err(|e| read::unreadable(&f.path, e))?;
    let mut h = Hashing {
        inner: file,
        digest: StreamDigest::new(),
    };
    std::io::copy(&mut h, &mut std::io::sink()).map_err(|e| read::unreadable(&f.path, e))?;
    Ok(h.digest.finish())
}

/// Runs the units on a pool of threads; results come back in unit order.
fn run_units(
    units: &[Unit],
    files: &[FileInfo],
    columns: &Columns,
    proto: &Evaluator,
    progress: &dyn Progress,
    threads: usize,
) -> Vec<Result<Done, TelemetryError>> {
    let threads = if threads == 0 {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    } else {
        threads
    }
    .clamp(1, units.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Done, TelemetryError>>>> =
        units.iter().map(|_| Mutex::new(None)).collect();
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(unit) = units.get(i) else { break };
        let result = match unit {
            Unit::Whole { file } => {
                let mut e = proto.clone();
                read_whole(&files[*file], columns, &mut e, progress).map(|d| Done::EvalDigest(e, d))
            }
            Unit::Chunk { file, start, end } => {
                let mut e = proto.clone();
                read_chunk(&files[*file], *start, *end, columns, &mut e, progress)
                    .map(|q| Done::EvalQuoted(e, q))
            }
            Unit::Hash { file } => hash_file(&files[*file]).map(Done::Digest),
        };
        if let Ok(mut slot) = slots[i].lock() {
            *slot = Some(result);
        }
    };
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    slots
        .into_iter()
        .map(|m| {
            m.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(TelemetryError::Invalid {
                    path: PathBuf::new(),
                    line: None,
                    field: None,
                    message: "internal: a worker stopped without a result".into(),
                })
            })
        })
        .collect()
}
