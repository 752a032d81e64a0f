//! End to end on every input format: the worked example's telemetry converted to gzip CSV,
//! zstd JSON Lines and Parquet reviews to the same numbers as the CSV; OTLP/JSON GenAI spans
//! review with latency from span durations and errors from `error.type`.

mod common;
use common::*;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

fn review_json(dir: &Path, as_of: &str) -> serde_json::Value {
    let (code, v, _) = common::review_json(dir, as_of);
    assert!(matches!(code, Some(0 | 10 | 20)), "{code:?}");
    v
}

fn actuals(v: &serde_json::Value) -> Vec<(String, String)> {
    v["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                format!("{} {} {}", c["actual"], c["interval"], c["rows"]),
            )
        })
        .collect()
}

/// The worked example with its telemetry replaced by `file`, written by `write`.
fn with_telemetry(file: &str, write: impl FnOnce(&Path, &str)) -> serde_json::Value {
    let (_tmp, dir) = worked_example_copy();
    let csv = std::fs::read_to_string(dir.join("telemetry/invoices.csv")).unwrap();
    write(&dir.join("telemetry").join(file), &csv);
    edit(
        &dir.join("agent.yaml"),
        "files: [telemetry/invoices.csv]",
        &format!("files: [telemetry/{file}]"),
    );
    review_json(&dir, "2026-06-12")
}

fn csv_to_jsonl(csv: &str) -> String {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut out = String::new();
    for l in lines {
        let obj: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .zip(l.split(','))
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| {
                let val = match (*k, v.parse::<f64>()) {
                    ("ts" | "user_id" | "invoice_id" | "severity", _) => serde_json::Value::from(v),
                    ("accepted", _) => serde_json::Value::from(v == "true"),
                    (_, Ok(x)) => serde_json::Value::from(x),
                    _ => serde_json::Value::from(v),
                };
                ((*k).to_owned(), val)
            })
            .collect();
        out.push_str(&serde_json::Value::Object(obj).to_string());
        out.push('\n');
    }
    out
}

fn write_parquet(path: &Path, csv: &str) {
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let schema = Arc::new(
        parse_message_type(
            "message invoices {
               REQUIRED BYTE_ARRAY ts (UTF8);
               OPTIONAL BYTE_ARRAY user_id (UTF8);
               OPTIONAL BYTE_ARRAY invoice_id (UTF8);
               OPTIONAL DOUBLE latency_ms;
               OPTIONAL BOOLEAN accepted;
               OPTIONAL BYTE_ARRAY severity (UTF8);
               OPTIONAL DOUBLE handle_minutes;
               OPTIONAL DOUBLE cost_usd;
             }",
        )
        .unwrap(),
    );
    let file = std::fs::File::create(path).unwrap();
    let mut w =
        SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
            .unwrap();
    let mut rg = w.next_row_group().unwrap();
    let mut col_idx = 0;
    while let Some(mut col) = rg.next_column().unwrap() {
        let cells: Vec<&str> = rows.iter().map(|r| r[col_idx]).collect();
        let defs: Vec<i16> = cells.iter().map(|c| i16::from(!c.is_empty())).collect();
        let present: Vec<&str> = cells.iter().copied().filter(|c| !c.is_empty()).collect();
        match col_idx {
            0 => {
                let v: Vec<ByteArray> = present.iter().map(|s| ByteArray::from(*s)).collect();
                col.typed::<ByteArrayType>()
                    .write_batch(&v, None, None)
                    .unwrap();
            }
            1 | 2 | 5 => {
                let v: Vec<ByteArray> = present.iter().map(|s| ByteArray::from(*s)).collect();
                col.typed::<ByteArrayType>()
                    .write_batch(&v, Some(&defs), None)
                    .unwrap();
            }
            4 => {
                let v: Vec<bool> = present.iter().map(|s| *s == "true").collect();
                col.typed::<BoolType>()
                    .write_batch(&v, Some(&defs), None)
                    .unwrap();
            }
            _ => {
                let v: Vec<f64> = present.iter().map(|s| s.parse().unwrap()).collect();
                col.typed::<DoubleType>()
                    .write_batch(&v, Some(&defs), None)
                    .unwrap();
            }
        }
        col.close().unwrap();
        col_idx += 1;
    }
    rg.close().unwrap();
    w.close().unwrap();
}

#[test]
fn compressed_and_parquet_inputs_give_the_csv_numbers() {
    let (_tmp, dir) = worked_example_copy();
    let reference = actuals(&review_json(&dir, "2026-06-12"));
    assert_eq!(reference.len(), 7);

    let gz = with_telemetry("invoices.csv.gz", |p, csv| {
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(p).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(csv.as_bytes()).unwrap();
        e.finish().unwrap();
    });
    assert_eq!(actuals(&gz), reference, "gzip CSV");
    assert!(
        gz["inputs"]
            .to_string()
            .contains("telemetry/invoices.csv.gz")
    );

    let zst = with_telemetry("invoices.jsonl.zst", |p, csv| {
        let bytes = zstd::encode_all(csv_to_jsonl(csv).as_bytes(), 3).unwrap();
        std::fs::write(p, bytes).unwrap();
    });
    assert_eq!(actuals(&zst), reference, "zstd JSON Lines");

    let pq = with_telemetry("invoices.parquet", write_parquet);
    assert_eq!(actuals(&pq), reference, "Parquet");
}

#[test]
fn corrupt_compressed_input_is_a_named_error() {
    let (tmp, dir) = worked_example_copy();
    std::fs::write(dir.join("telemetry/invoices.csv.gz"), b"this is not gzip").unwrap();
    edit(
        &dir.join("agent.yaml"),
        "files: [telemetry/invoices.csv]",
        "files: [telemetry/invoices.csv.gz]",
    );
    let out = stagegate()
        .args(["review", "--as-of", "2026-06-12", "--registry"])
        .arg(tmp.path().join("r.db"))
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(err.contains("telemetry/invoices.csv.gz"), "{err}");
    assert!(err.contains("corrupt or truncated"), "{err}");
    assert!(!tmp.path().join("r.db").exists());
}

const OTLP_CRITERIA: &str = r#"  - id: spans
    description: GenAI calls
    metric: { kind: count }
    comparator: ">="
    threshold: 1
  - id: p95_latency
    description: span duration p95
    metric: { kind: quantile, field: latency_ms, q: 0.95 }
    comparator: "<"
    threshold: 5000
    unit: ms
  - id: error_rate
    description: share of calls with an error.type
    metric: { kind: rate, of: { field: outcome, op: present } }
    comparator: "<="
    threshold: 0.5
    unit: ratio
  - id: output_tokens
    description: generated tokens per call
    metric: { kind: mean, field: output_tokens }
    comparator: "<="
    threshold: 1000
  - id: conversations
    description: distinct conversations
    metric: { kind: distinct, field: user }
    comparator: ">="
    threshold: 1"#;

const OTLP_TELEMETRY: &str = r#"  files: [traces.otlp.jsonl]
  columns:
    timestamp: span.start_time
    latency_ms: span.duration_ms
    outcome: error.type
    user: gen_ai.conversation.id
    model: gen_ai.request.model
    input_tokens: gen_ai.usage.input_tokens
    output_tokens: gen_ai.usage.output_tokens"#;

fn span(start_ns: u128, dur_ms: u128, conv: &str, out_tokens: u64, error: Option<&str>) -> String {
    let mut attrs = vec![
        r#"{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}}"#.to_owned(),
        r#"{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}}"#.to_owned(),
        format!(r#"{{"key":"gen_ai.conversation.id","value":{{"stringValue":"{conv}"}}}}"#),
        r#"{"key":"gen_ai.usage.input_tokens","value":{"intValue":"120"}}"#.to_owned(),
        format!(r#"{{"key":"gen_ai.usage.output_tokens","value":{{"intValue":"{out_tokens}"}}}}"#),
    ];
    if let Some(e) = error {
        attrs.push(format!(
            r#"{{"key":"error.type","value":{{"stringValue":"{e}"}}}}"#
        ));
    }
    format!(
        r#"{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"chat gpt-4o","kind":3,"startTimeUnixNano":"{start_ns}","endTimeUnixNano":"{}","attributes":[{}]}}"#,
        start_ns + dur_ms * 1_000_000,
        attrs.join(",")
    )
}

#[test]
fn otlp_genai_spans_review_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    let card = stagegate_testkit::card_yaml(
        "support",
        "start: 2026-03-02, end: 2026-03-08, cohort_size: 10",
        OTLP_CRITERIA,
        OTLP_TELEMETRY,
    );
    std::fs::write(dir.join("agent.yaml"), card).unwrap();
    std::fs::write(dir.join("runbook.md"), "# runbook\n").unwrap();
    // 2026-03-03T00:00:00Z = 1772496000 s. 20 GenAI spans (durations 100..2000 ms, every 4th
    // with an error), plus one non-GenAI span that must be skipped, across two lines.
    let base: u128 = 1_772_496_000 * 1_000_000_000;
    let genai: Vec<String> = (0..20u128)
        .map(|i| {
            span(
                base + i * 60_000_000_000,
                100 * (i + 1),
                &format!("conv-{}", i % 7),
                200 + 10 * i as u64,
                (i % 4 == 0).then_some("timeout"),
            )
        })
        .collect();
    let other = r#"{"traceId":"a","spanId":"b","name":"db query","startTimeUnixNano":"1772496000000000000","endTimeUnixNano":"1772496000500000000","attributes":[]}"#;
    let line = |spans: &[String]| {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"chat"}}}}]}},"scopeSpans":[{{"scope":{{"name":"openai"}},"spans":[{}]}}]}}]}}"#,
            spans.join(",")
        )
    };
    let mut first: Vec<String> = genai[..10].to_vec();
    first.push(other.to_owned());
    std::fs::write(
        dir.join("traces.otlp.jsonl"),
        format!("{}\n{}\n", line(&first), line(&genai[10..])),
    )
    .unwrap();

    let v = review_json(&dir, "2026-03-09");
    let get = |id: &str| criterion(&v, id).clone();
    assert_eq!(
        get("spans")["actual"],
        20.0,
        "the non-GenAI span is skipped"
    );
    // Durations 100..2000 step 100: p95 by linear interpolation = 1905 ms.
    assert!((get("p95_latency")["actual"].as_f64().unwrap() - 1905.0).abs() < 1e-9);
    assert_eq!(get("error_rate")["actual"], 0.25);
    assert!((get("output_tokens")["actual"].as_f64().unwrap() - 295.0).abs() < 1e-9);
    assert_eq!(get("conversations")["actual"], 7.0);
    assert_eq!(v["pilot"]["telemetry_rows"], 20);

    // A span with a malformed attribute is a named error.
    let broken = line(&[genai[0]
        .replace(r#"{"intValue":"210"}"#, r#"{"stringValue":"many"}"#)
        .replace(r#"{"intValue":"200"}"#, r#"{"stringValue":"many"}"#)]);
    std::fs::write(dir.join("traces.otlp.jsonl"), format!("{broken}\n")).unwrap();
    let out = stagegate()
        .args(["review", "--no-record", "--as-of", "2026-03-09"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("traces.otlp.jsonl:1: field `gen_ai.usage.output_tokens (output_tokens)`"),
        "{err}"
    );
}

/// `--out` naming a pipe (or a device such as /dev/null) writes into it: the atomic
/// write-then-rename that protects regular files must never replace a special file.
#[cfg(unix)]
#[test]
fn out_to_a_pipe_writes_into_it_and_leaves_it_a_pipe() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("plan.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // The reader is a process, so a regression (the pipe replaced, its reader left waiting)
    // fails the test instead of hanging it.
    let mut reader = std::process::Command::new("cat")
        .arg(&fifo)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = stagegate()
        .args(["plan"])
        .arg(examples().join("finance-invoice-recon"))
        .args(["--as-of", "2026-06-12", "--out"])
        .arg(&fifo)
        .output()
        .unwrap();
    let still_a_pipe = std::fs::metadata(&fifo).unwrap().file_type().is_fifo();
    if !still_a_pipe {
        let _ = reader.kill();
    }
    let text = String::from_utf8(reader.wait_with_output().unwrap().stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(still_a_pipe, "the pipe was replaced by a file");
    assert!(text.contains("rollout:"), "{text}");
}
