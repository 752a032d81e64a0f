//! Pilot telemetry: readers (CSV, JSON Lines) and the metric catalogue.
//!
//! [`measure`] reads the files a card names, maps their columns to roles
//! ([`stagegate_core::card::Telemetry::columns`]), keeps the rows inside the pilot window
//! (`pilot.start` 00:00 UTC inclusive to `pilot.end` + 1 day 00:00 UTC exclusive), and computes
//! every telemetry-sourced success criterion with its per-week series.
//!
//! Bad input is an error naming the file, the line (CSV: the physical line, header = line 1;
//! JSON Lines: the line), the column and the role. An empty cell, a JSON `null` or an absent
//! key is a missing value, not an error; metrics skip missing values.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod compare;
mod engine;
mod otlp;
mod parquet_read;
mod quality;
mod read;

pub use engine::{Row, Value, evaluate};
pub use read::{Columns, RoleType, read_file};

use stagegate_core::card::{Against, AgentCard, Compare, CriterionSource};
use stagegate_core::digest::{InputDigest, InputRole, normalise_path};
use stagegate_core::review::Measurement;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    pub data_quality: stagegate_core::review::DataQuality,
    /// File digests, role `telemetry`, path as the card names it (normalised).
    pub inputs: Vec<InputDigest>,
    /// Paths as the card names them (normalised).
    pub files: Vec<String>,
}

/// Reads the card's telemetry (paths relative to `agent_dir`) and measures its criteria.
/// A card without telemetry gives empty measurements.
///
/// # Errors
/// [`TelemetryError`] naming the file, line and field.
pub fn measure(agent_dir: &Path, card: &AgentCard) -> Result<TelemetryOutcome, TelemetryError> {
    let Some(t) = &card.telemetry else {
        return Ok(TelemetryOutcome {
            measurements: BTreeMap::new(),
            rows_read: 0,
            rows_in_window: 0,
            data_quality: Default::default(),
            inputs: Vec::new(),
            files: Vec::new(),
        });
    };
    let columns = Columns::from_card(t);
    let start = card
        .pilot
        .start
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| invalid_card(&e.to_string()))?;
    let end = card
        .pilot
        .end
        .tomorrow()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|e| invalid_card(&e.to_string()))?;
    let mut rows = Vec::new();
    let mut inputs = Vec::new();
    let mut files = Vec::new();
    let mut rows_read = 0u64;
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
        let read = read_file(&path, t.format, &columns)?;
        rows_read += read.rows.len() as u64;
        rows.extend(read.rows);
        let shown = normalise_path(f);
        inputs.push(InputDigest {
            role: InputRole::Telemetry,
            path: shown.clone(),
            sha256: read.digest,
        });
        files.push(shown);
    }
    // Row order across files does not change any metric; sort for determinism of anything
    // order-sensitive downstream.
    rows.sort_by_key(|r| r.ts);
    let in_window = |r: &Row| r.ts >= start && r.ts < end;
    let window: Vec<Row> = rows.iter().filter(|r| in_window(r)).cloned().collect();
    let mut measurements = BTreeMap::new();
    for c in &card.success_criteria {
        if c.source != CriterionSource::Telemetry {
            continue;
        }
        let Some(m) = &c.metric else { continue };
        let measured = match &c.compare {
            None => evaluate(
                m,
                &window,
                &columns,
                card.pilot.start,
                card.pilot.cohort_size,
                card.confidence(),
                c.threshold,
            ),
            Some(cmp) => {
                let (reference, pilot) = sides(cmp, &rows, &window, &columns)?;
                compare::compare(
                    m,
                    cmp,
                    &reference,
                    &pilot,
                    &columns,
                    card.confidence(),
                    c.threshold,
                )
            }
        };
        measurements.insert(c.id.clone(), measured);
    }
    Ok(TelemetryOutcome {
        measurements,
        rows_read,
        rows_in_window: window.len() as u64,
        data_quality: quality::assess(&window, &columns, card.pilot.start),
        inputs,
        files,
    })
}

/// The reference and pilot rows of a comparison: baseline-period rows against pilot-window
/// rows, or control-cohort rows against pilot-cohort rows inside the window.
fn sides<'a>(
    cmp: &Compare,
    all: &'a [Row],
    window: &'a [Row],
    cols: &Columns,
) -> Result<(Vec<&'a Row>, Vec<&'a Row>), TelemetryError> {
    let cohort = cols.index("cohort");
    fn text(v: Option<&Value>) -> Option<&str> {
        match v {
            Some(Value::Text(s)) => Some(s.as_str()),
            _ => None,
        }
    }
    let cohort_of = |r: &Row| text(cohort.and_then(|i| r.values.get(i))).map(str::to_owned);
    let in_pilot_cohort = |r: &Row| match &cmp.pilot_cohort {
        Some(p) => cohort_of(r).as_deref() == Some(p.as_str()),
        None => cmp
            .control_cohort
            .as_deref()
            .is_none_or(|c| cohort_of(r).as_deref() != Some(c)),
    };
    match cmp.against {
        Against::Baseline => {
            let w = cmp
                .baseline
                .as_ref()
                .ok_or_else(|| invalid_card("compare.baseline is missing"))?;
            let from = day_start(w.start)?;
            let to = day_start(w.end.tomorrow().map_err(|e| invalid_card(&e.to_string()))?)?;
            let reference = all.iter().filter(|r| r.ts >= from && r.ts < to).collect();
            let pilot = window
                .iter()
                .filter(|r| cmp.pilot_cohort.is_none() || in_pilot_cohort(r))
                .collect();
            Ok((reference, pilot))
        }
        Against::Control => {
            let control = cmp.control_cohort.as_deref();
            let reference = window
                .iter()
                .filter(|r| cohort_of(r).as_deref() == control)
                .collect();
            let pilot = window.iter().filter(|r| in_pilot_cohort(r)).collect();
            Ok((reference, pilot))
        }
    }
}

fn day_start(d: jiff::civil::Date) -> Result<jiff::Timestamp, TelemetryError> {
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| invalid_card(&e.to_string()))
}

fn invalid_card(msg: &str) -> TelemetryError {
    TelemetryError::Invalid {
        path: PathBuf::from("agent.yaml"),
        line: None,
        field: Some("pilot".into()),
        message: msg.to_owned(),
    }
}
