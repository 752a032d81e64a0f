//! OpenTelemetry traces in the OTLP/JSON file-exporter format: one `ExportTraceServiceRequest`
//! per line (`resourceSpans[].scopeSpans[].spans[]`, proto3 JSON mapping), read as one row per
//! GenAI span — a span carrying the `gen_ai.operation.name` attribute (OpenTelemetry semantic
//! conventions for generative AI).
//!
//! The card maps roles to *fields* of a span:
//! - span fields: `span.start_time`, `span.end_time` (timestamps), `span.duration_ms`
//!   (end − start, in ms), `span.name`, `span.trace_id`, `span.span_id`, `span.status_code`
//!   (`unset`, `ok`, `error`);
//! - span attributes by key, e.g. `gen_ai.request.model`, `gen_ai.usage.input_tokens`,
//!   `gen_ai.usage.output_tokens`, `error.type`, `gen_ai.conversation.id`;
//! - resource attributes as `resource.<key>`, e.g. `resource.service.name`.
//!
//! A typical GenAI mapping: `timestamp: span.start_time`, `latency_ms: span.duration_ms`,
//! `user: gen_ai.conversation.id`, `outcome: error.type`, `input_tokens:
//! gen_ai.usage.input_tokens`, `output_tokens: gen_ai.usage.output_tokens`.

use crate::TelemetryError;
use crate::engine::{Cell, Evaluator, RowRef};
use crate::read::{Columns, bad, derive, json_cell, parse_timestamp};
use serde_json::Value as J;
use std::io::BufRead;
use std::path::Path;

/// The attribute that marks a GenAI span.
pub const GENAI_OPERATION: &str = "gen_ai.operation.name";

fn attr_value(v: &J) -> Option<J> {
    let o = v.as_object()?;
    if let Some(s) = o.get("stringValue") {
        return Some(s.clone());
    }
    if let Some(i) = o.get("intValue") {
        // int64 is a JSON string in the proto3 mapping; accept a number too.
        return match i {
            J::String(s) => s.parse::<i64>().ok().map(J::from),
            other => Some(other.clone()),
        };
    }
    if let Some(d) = o.get("doubleValue") {
        return Some(d.clone());
    }
    if let Some(b) = o.get("boolValue") {
        return Some(b.clone());
    }
    None
}

fn find_attr<'a>(attrs: Option<&'a J>, key: &str) -> Option<&'a J> {
    attrs?
        .as_array()?
        .iter()
        .find(|a| a.get("key").and_then(J::as_str) == Some(key))
        .and_then(|a| a.get("value"))
}

fn nanos(v: Option<&J>) -> Option<i128> {
    match v? {
        J::String(s) => s.parse().ok(),
        J::Number(n) => n.as_u64().map(i128::from),
        _ => None,
    }
}

/// The value of the field `name` (see the module doc: `span.*` fields, span attributes,
/// `resource.*` attributes) of one span in the proto3 JSON mapping (`span` is one element of
/// `scopeSpans[].spans`, `resource_attrs` its resource's `attributes`), as JSON: strings,
/// numbers (int64 strings parsed), booleans; `None` when absent. The rollout controller reads
/// live OTLP with it, so the same names mean the same values in a review and in a rollout.
pub fn span_field(span: &J, resource_attrs: Option<&J>, name: &str) -> Option<J> {
    field(span, resource_attrs, name)
}

/// The value of `field` in a span, as JSON.
fn field(span: &J, resource_attrs: Option<&J>, name: &str) -> Option<J> {
    let start = nanos(span.get("startTimeUnixNano"));
    let end = nanos(span.get("endTimeUnixNano"));
    let ts = |n: Option<i128>| {
        n.and_then(|n| jiff::Timestamp::from_nanosecond(n).ok())
            .map(|t| J::from(t.to_string()))
    };
    match name {
        "span.start_time" => ts(start),
        "span.end_time" => ts(end),
        "span.duration_ms" => match (start, end) {
            (Some(s), Some(e)) if e >= s => Some(J::from((e - s) as f64 / 1e6)),
            _ => None,
        },
        "span.name" => span.get("name").cloned(),
        "span.trace_id" => span.get("traceId").cloned(),
        "span.span_id" => span.get("spanId").cloned(),
        "span.status_code" => {
            let code = span.get("status").and_then(|s| s.get("code"));
            Some(J::from(match code {
                Some(J::Number(n)) if n.as_u64() == Some(1) => "ok",
                Some(J::Number(n)) if n.as_u64() == Some(2) => "error",
                Some(J::String(s)) if s == "STATUS_CODE_OK" => "ok",
                Some(J::String(s)) if s == "STATUS_CODE_ERROR" => "error",
                _ => "unset",
            }))
        }
        _ => match name.strip_prefix("resource.") {
            Some(key) => find_attr(resource_attrs, key).and_then(attr_value),
            None => find_attr(span.get("attributes"), name).and_then(attr_value),
        },
    }
}

/// Reads OTLP/JSON lines into rows, one per GenAI span.
///
/// # Errors
/// [`TelemetryError::Invalid`] naming the line and field.
pub fn read_otlp(
    path: &Path,
    input: &mut dyn BufRead,
    columns: &Columns,
    eval: &mut Evaluator,
) -> Result<(), TelemetryError> {
    let mut buf = String::new();
    let mut line = 0u64;
    let invalid = |line: u64, message: String| TelemetryError::Invalid {
        path: path.to_path_buf(),
        line: Some(line),
        field: None,
        message,
    };
    loop {
        buf.clear();
        let n = input
            .read_line(&mut buf)
            .map_err(|e| invalid(line + 1, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.trim().is_empty() {
            continue;
        }
        let doc: J = serde_json::from_str(buf.trim_end())
            .map_err(|e| invalid(line, format!("not OTLP/JSON: {e}")))?;
        let Some(resource_spans) = doc.get("resourceSpans").and_then(J::as_array) else {
            return Err(invalid(
                line,
                "not an OTLP trace export: no `resourceSpans`".into(),
            ));
        };
        for rs in resource_spans {
            let resource_attrs = rs.get("resource").and_then(|r| r.get("attributes"));
            let scopes = rs
                .get("scopeSpans")
                .and_then(J::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for scope in scopes {
                let spans = scope
                    .get("spans")
                    .and_then(J::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                for span in spans {
                    if find_attr(span.get("attributes"), GENAI_OPERATION).is_none() {
                        continue;
                    }
                    let ts_field = &columns.timestamp_column;
                    let ts = match field(span, resource_attrs, ts_field) {
                        Some(J::String(s)) => parse_timestamp(&s),
                        _ => Err(format!("span has no `{ts_field}`")),
                    }
                    .map_err(|m| bad(path, line, ts_field, "timestamp", m))?;
                    let ts = i64::try_from(ts.as_nanosecond()).map_err(|_| {
                        bad(path, line, ts_field, "timestamp", "out of range".into())
                    })?;
                    let mut cells: Vec<Cell<'static>> =
                        Vec::with_capacity(columns.mapped.len() + columns.derived.len());
                    for (role, col) in &columns.mapped {
                        let v = field(span, resource_attrs, col);
                        cells.push(
                            json_cell(v.as_ref(), columns.role_type(role))
                                .map_err(|m| bad(path, line, col, role, m))?,
                        );
                    }
                    derive(&mut cells, columns);
                    eval.push(&RowRef { ts, cells: &cells });
                }
            }
        }
    }
    Ok(())
}
