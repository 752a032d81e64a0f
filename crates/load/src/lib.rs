//! Reads an agent's folder into `stagegate-core` values.
//!
//! ```text
//! <agent>/agent.yaml           the agent card
//! <agent>/gates.yaml           optional gate-template override (else <org>/gates.yaml, else built-in)
//! <agent>/evidence/*.yaml|yml  one evidence record per file
//! <agent>/evidence/*.md        a record in YAML front matter (between `---` lines), notes below
//! <agent>/evidence/<sub>/…     attachments, named by records with their sha256; a .yaml, .yml
//!                              or .md file there that no record attaches is a record too
//! <agent>/<runbook>            the runbook the card names
//! ```
//!
//! Every error names the file, the line and column, and the field path
//! (`people.on_call.primary.name`): syntax and type errors from serde-saphyr's own place, rule
//! errors (`AgentCard::validate`, `EvidenceRecord::validate`, the path rules here) from the
//! field's place in the document ([`FieldPlaces`]). Paths a card or record names for the
//! runbook and attachments must stay inside the agent folder after normalisation (no absolute
//! path, no `..` above the folder, no symbolic link out of it); telemetry files may sit beside
//! it (a shared data set under `../`) but are never absolute. Nothing here writes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use stagegate_core::card::AgentCard;
use stagegate_core::digest::{InputDigest, InputRole, sha256_hex, sha256_tagged};
use stagegate_core::evidence::{Evidence, EvidenceRecord, Validity};
use stagegate_core::gates::{BUILTIN_TEMPLATE_YAML, GateTemplate};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

mod locate;
pub use locate::FieldPlaces;

/// A place in an input file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    /// The file, as given (relative to the working directory or absolute).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// Dotted field path, when known.
    pub field: Option<String>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        Ok(())
    }
}

/// Why an agent folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file is missing or unreadable.
    #[error("{}: cannot read: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file's content is invalid: malformed YAML, unknown or missing field, wrong type,
    /// bad date, or a rule the types cannot express.
    #[error("{place}: {message}")]
    Invalid {
        /// Where.
        place: Place,
        /// What is wrong.
        message: String,
    },
}

impl LoadError {
    /// Whether the input exists but is wrong (as opposed to missing or unreadable).
    pub fn is_invalid_content(&self) -> bool {
        matches!(self, LoadError::Invalid { .. })
    }

    fn invalid(file: &Path, field: Option<&str>, message: impl Into<String>) -> Self {
        LoadError::Invalid {
            place: Place {
                file: file.to_path_buf(),
                line: None,
                column: None,
                field: field.map(str::to_owned),
            },
            message: message.into(),
        }
    }

    /// An error in a field of `yaml` (the file's YAML, starting `line_offset` lines into the
    /// file), placed at the field's line and column (or its nearest enclosing field's).
    fn at_field(
        file: &Path,
        yaml: &str,
        line_offset: u64,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        let at = FieldPlaces::of(yaml).and_then(|p| p.get(field));
        LoadError::Invalid {
            place: Place {
                file: file.to_path_buf(),
                line: at.map(|(l, _)| l + line_offset),
                column: at.map(|(_, c)| c),
                field: Some(field.to_owned()),
            },
            message: message.into(),
        }
    }
}

/// Reads a whole file.
///
/// # Errors
/// [`LoadError::Unreadable`].
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

fn read_text(path: &Path) -> Result<(Vec<u8>, String), LoadError> {
    let bytes = read_bytes(path)?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|e| LoadError::invalid(path, None, format!("not UTF-8 text: {e}")))?;
    Ok((bytes, text))
}

/// Parses YAML text into `T`, denying unknown fields, with the error naming line, column and
/// field path. `line_offset` is added to reported lines (front matter starts after `---`).
///
/// # Errors
/// [`LoadError::Invalid`].
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
    line_offset: u64,
) -> Result<T, LoadError> {
    let mut path_at_error: Option<String> = None;
    let options = serde_saphyr::options! {
        with_snippet: false,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    };
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            let p = e.path().to_string();
            if p != "." && !p.is_empty() {
                path_at_error = Some(p);
            }
            e.into_inner()
        })
    });
    result.map_err(|e| yaml_error(file, &e, path_at_error, line_offset))
}

/// Our message for a serde-saphyr error: the place from the error, the field path from
/// `serde_path_to_error`, the text from serde-saphyr's user-facing formatter (no hints about
/// the library's options or API), with our own wording for duplicate keys and extra documents.
fn yaml_error(
    file: &Path,
    e: &serde_saphyr::Error,
    path: Option<String>,
    offset: u64,
) -> LoadError {
    use serde_saphyr::{Error as E, MessageFormatter, UserMessageFormatter};
    let mut inner = e.without_snippet();
    while let E::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    let mut field = path;
    let message = match inner {
        E::DuplicateMappingKey { key, .. } => {
            let key = key.as_deref().unwrap_or("?");
            // serde_path_to_error names the duplicate `?` (it never learnt the key).
            field = Some(match field.as_deref().and_then(|f| f.strip_suffix('?')) {
                Some(parent) => format!("{parent}{key}"),
                None => key.to_owned(),
            });
            format!("duplicate key `{key}`: a key may appear only once in a mapping")
        }
        E::InvalidScalar { ty, .. } => match *ty {
            "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => {
                "expected a whole number, 0 or more".to_owned()
            }
            "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "expected a whole number".to_owned(),
            "f32" | "f64" => "expected a number".to_owned(),
            "bool" => "expected true or false".to_owned(),
            other => format!("expected a value of type {other}"),
        },
        E::MultipleDocuments { .. } => {
            "a second YAML document (after `---`): the file must hold exactly one".to_owned()
        }
        other => UserMessageFormatter.format_message(other).into_owned(),
    };
    // One line, without control characters (messages can quote the input).
    let message: String = message
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_debug().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    let loc = e.location();
    LoadError::Invalid {
        place: Place {
            file: file.to_path_buf(),
            line: loc.map(|l| l.line() + offset).filter(|l| *l > 0),
            column: loc.map(|l| l.column()).filter(|c| *c > 0),
            field: field.filter(|f| f != "?"),
        },
        message,
    }
}

/// Splits Markdown front matter: returns the YAML between the opening and closing `---` lines.
///
/// # Errors
/// [`LoadError::Invalid`] when the file does not open with a `---` line or never closes it.
pub fn front_matter<'a>(file: &Path, text: &'a str) -> Result<&'a str, LoadError> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = body
        .strip_prefix("---\n")
        .or_else(|| body.strip_prefix("---\r\n"))
    else {
        return Err(LoadError::Invalid {
            place: Place {
                file: file.to_path_buf(),
                line: Some(1),
                column: Some(1),
                field: None,
            },
            message: "a Markdown evidence record must open with `---` YAML front matter".into(),
        });
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Ok(&rest[..offset]);
        }
        offset += line.len();
    }
    Err(LoadError::invalid(
        file,
        None,
        "front matter opened with `---` is never closed",
    ))
}

/// The loaded card with its digest.
#[derive(Debug, Clone)]
pub struct LoadedCard {
    /// The card, validated.
    pub card: AgentCard,
    /// `sha256:` of `agent.yaml`.
    pub digest: String,
    /// The file.
    pub path: PathBuf,
    /// The file's text, to place errors found later (see [`LoadedCard::error_at`]).
    pub text: String,
}

impl LoadedCard {
    /// An invalid-input error on `field` of the card, placed at the field's line and column.
    pub fn error_at(&self, field: &str, message: impl Into<String>) -> LoadError {
        LoadError::at_field(&self.path, &self.text, 0, field, message)
    }
}

/// Reads and validates `<dir>/agent.yaml`: the card's own rules
/// ([`AgentCard::validate`]) and the rules on the paths it names (the runbook inside the agent
/// folder, telemetry files relative).
///
/// # Errors
/// [`LoadError`] naming file, line and field.
pub fn load_card(dir: &Path) -> Result<LoadedCard, LoadError> {
    let path = dir.join("agent.yaml");
    let (bytes, text) = read_text(&path)?;
    let card: AgentCard = parse_yaml(&path, &text, 0)?;
    let loaded = LoadedCard {
        card,
        digest: sha256_tagged(&bytes),
        path,
        text,
    };
    loaded
        .card
        .validate()
        .map_err(|e| loaded.error_at(&e.field, e.message))?;
    resolve_inside(dir, "", &loaded.card.runbook)
        .map_err(|why| loaded.error_at("runbook", format!("`{}` {why}", loaded.card.runbook)))?;
    if let Some(t) = &loaded.card.telemetry {
        for (i, f) in t.files.iter().enumerate() {
            if is_absolute(f) {
                return Err(loaded.error_at(
                    &format!("telemetry.files[{i}]"),
                    format!(
                        "`{f}` is absolute: name telemetry files relative to the agent folder (they may sit beside it, e.g. `../shared/data/…`)"
                    ),
                ));
            }
        }
    }
    Ok(loaded)
}

/// Refuses a review date before the pilot started: nothing of the pilot exists yet to review,
/// and the evidence and drill windows would be read against a pilot that has not begun.
/// Reviews on or after `pilot.start` (during the pilot, or after its end) pass.
///
/// # Errors
/// [`LoadError::Invalid`] placed at the card's `pilot.start`, naming `--as-of`.
pub fn check_review_date(card: &LoadedCard, as_of: jiff::civil::Date) -> Result<(), LoadError> {
    let start = card.card.pilot.start;
    if as_of < start {
        return Err(card.error_at(
            "pilot.start",
            format!(
                "the review date (--as-of {as_of}) is before the pilot start {start}: review on or after {start}"
            ),
        ));
    }
    Ok(())
}

/// The gate template in force, and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedTemplate {
    /// The template, validated.
    pub template: GateTemplate,
    /// `builtin` or the file path.
    pub source: String,
    /// The path used in the review digest (`builtin:<name>@<version>` or `gates.yaml`).
    pub digest_path: String,
    /// `sha256:` of the YAML.
    pub digest: String,
}

/// Parses the built-in template.
///
/// # Errors
/// Only if the built-in file is broken, which a test rules out.
pub fn builtin_template() -> Result<GateTemplate, LoadError> {
    let file = Path::new("builtin:gates.yaml");
    let t: GateTemplate = parse_yaml(file, BUILTIN_TEMPLATE_YAML, 0)?;
    t.validate()
        .map_err(|e| LoadError::at_field(file, BUILTIN_TEMPLATE_YAML, 0, &e.field, e.message))?;
    Ok(t)
}

/// Finds the template: `<agent>/gates.yaml`, else `<org>/gates.yaml`, else the built-in one.
///
/// # Errors
/// [`LoadError`] for an override that is malformed or fails [`GateTemplate::validate`].
pub fn load_template(
    agent_dir: &Path,
    org_dir: Option<&Path>,
) -> Result<LoadedTemplate, LoadError> {
    let candidates = std::iter::once((agent_dir.join("gates.yaml"), "gates.yaml".to_owned()))
        .chain(org_dir.map(|o| (o.join("gates.yaml"), "org:gates.yaml".to_owned())));
    for (path, digest_path) in candidates {
        if path.is_file() {
            let (bytes, text) = read_text(&path)?;
            let t: GateTemplate = parse_yaml(&path, &text, 0)?;
            t.validate()
                .map_err(|e| LoadError::at_field(&path, &text, 0, &e.field, e.message))?;
            return Ok(LoadedTemplate {
                template: t,
                source: path.display().to_string(),
                digest_path,
                digest: sha256_tagged(&bytes),
            });
        }
    }
    let t = builtin_template()?;
    Ok(LoadedTemplate {
        digest_path: format!("builtin:{}@{}", t.name, t.version),
        template: t,
        source: "builtin".into(),
        digest: sha256_tagged(BUILTIN_TEMPLATE_YAML.as_bytes()),
    })
}

/// Whether a path as written is absolute (a root, or a drive or UNC prefix on any platform).
fn is_absolute(rel: &str) -> bool {
    let p = Path::new(rel);
    p.is_absolute()
        || p.has_root()
        || p.components().any(|c| matches!(c, Component::Prefix(_)))
        || rel.starts_with(['/', '\\'])
        || matches!(rel.as_bytes(), [d, b':', ..] if d.is_ascii_alphabetic())
}

/// Resolves `rel`, as written in a file of the agent folder's subfolder `base` (`""` for the
/// card, `evidence` for a record), to a path that must stay inside the agent folder: not
/// absolute, not above the folder once `.` and `..` are folded, and not out of it through a
/// symbolic link. Returns the full path and the normalised path relative to the agent folder
/// (as digests and reports show it).
///
/// # Errors
/// Why not, as a phrase to follow the path (``"`x` leaves the agent folder…"``).
pub fn resolve_inside(dir: &Path, base: &str, rel: &str) -> Result<(PathBuf, String), String> {
    const RULE: &str = "the runbook and attachments must sit inside the agent folder";
    if is_absolute(rel) {
        return Err(format!("is absolute: {RULE}"));
    }
    let joined = if base.is_empty() {
        rel.to_owned()
    } else {
        format!("{base}/{rel}")
    };
    let shown = stagegate_core::digest::normalise_path(&joined);
    if shown == ".." || shown.starts_with("../") {
        return Err(format!(
            "leaves the agent folder (it resolves to `{shown}` from the agent folder): {RULE}"
        ));
    }
    let full = dir.join(&shown);
    if let (Ok(root), Ok(real)) = (dir.canonicalize(), full.canonicalize())
        && !real.starts_with(&root)
    {
        return Err(format!(
            "leads out of the agent folder through a symbolic link (to {}): {RULE}",
            real.display()
        ));
    }
    Ok((full, shown))
}

fn normalise(rel: &Path) -> String {
    stagegate_core::digest::normalise_path(&rel.to_string_lossy())
}

/// Evidence records with the digests of every file they brought in.
#[derive(Debug, Clone)]
pub struct LoadedEvidence {
    /// Records, sorted by path.
    pub records: Vec<Evidence>,
    /// Digests of records (except sign-offs) and attachments, for the review digest.
    pub inputs: Vec<InputDigest>,
}

/// One record file, parsed and validated.
struct ParsedRecord {
    bytes: Vec<u8>,
    /// The YAML (the whole file, or a Markdown file's front matter) and its first line - 1.
    yaml: String,
    offset: u64,
    record: EvidenceRecord,
}

fn yaml_of<'a>(path: &Path, text: &'a str) -> Result<(&'a str, u64), LoadError> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md"))
    {
        Ok((front_matter(path, text)?, 1))
    } else {
        Ok((text, 0))
    }
}

fn parse_record(path: &Path) -> Result<ParsedRecord, LoadError> {
    let (bytes, text) = read_text(path)?;
    let (yaml, offset) = yaml_of(path, &text)?;
    let record: EvidenceRecord = parse_yaml(path, yaml, offset)?;
    record
        .validate()
        .map_err(|(field, msg)| LoadError::at_field(path, yaml, offset, &field, msg))?;
    Ok(ParsedRecord {
        yaml: yaml.to_owned(),
        bytes,
        offset,
        record,
    })
}

/// An invalid-input error on `field` of the loaded record `rel` (relative to `dir`), placed at
/// the field's line (the file is read again: this is the error path only).
fn record_error(dir: &Path, rel: &str, field: &str, message: String) -> LoadError {
    let path = dir.join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    match yaml_of(&path, &text) {
        Ok((yaml, offset)) => LoadError::at_field(&path, yaml, offset, field, message),
        Err(_) => LoadError::invalid(&path, Some(field), message),
    }
}

fn is_record_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["yaml", "yml", "md"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// Reads every record under `<dir>/evidence/`: each `.yaml`, `.yml` or `.md` file directly in
/// it, and each one in a subfolder unless a record attaches it (then it is an attachment).
/// Nothing is skipped silently: a subfolder file that is neither attached nor a valid record
/// is an error saying so. Other files are attachments. Attachment paths resolve from the
/// record's own folder and must stay inside the agent folder ([`resolve_inside`]); their
/// digests are checked: a changed or missing attachment marks the record invalid, it does not
/// fail the load. Symbolic links to folders are not followed (an error).
///
/// # Errors
/// [`LoadError`] for a record that cannot be read or parsed, or breaks a record rule.
pub fn load_evidence(dir: &Path) -> Result<LoadedEvidence, LoadError> {
    let ev_dir = dir.join("evidence");
    let mut records = Vec::new();
    let mut inputs = Vec::new();
    if !ev_dir.exists() {
        return Ok(LoadedEvidence { records, inputs });
    }
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    for entry in walkdir::WalkDir::new(&ev_dir).min_depth(1) {
        let entry = entry.map_err(|e| LoadError::Unreadable {
            path: e.path().unwrap_or(&ev_dir).to_path_buf(),
            source: e.into(),
        })?;
        let p = entry.path();
        if entry.path_is_symlink() && p.is_dir() {
            return Err(LoadError::invalid(
                p,
                None,
                "is a symbolic link to a folder, which stagegate does not follow: evidence must sit inside the agent folder",
            ));
        }
        if p.is_file() && is_record_file(p) {
            files.push((p.to_path_buf(), entry.depth() > 1));
        }
    }
    files.sort();
    // Parse everything first: a subfolder file is a record only if no record attaches it,
    // so its parse error counts only then.
    let parsed: Vec<(PathBuf, bool, Result<ParsedRecord, LoadError>)> = files
        .into_iter()
        .map(|(path, nested)| {
            let r = parse_record(&path);
            (path, nested, r)
        })
        .collect();
    let folder_of = |path: &Path| {
        normalise(
            path.parent()
                .and_then(|p| p.strip_prefix(dir).ok())
                .unwrap_or(Path::new("evidence")),
        )
    };
    let attached: BTreeSet<String> = parsed
        .iter()
        .filter_map(|(path, _, r)| r.as_ref().ok().map(|p| (path, p)))
        .flat_map(|(path, p)| {
            let base = folder_of(path);
            p.record
                .attachments
                .iter()
                .map(move |a| stagegate_core::digest::normalise_path(&format!("{base}/{}", a.path)))
                .collect::<Vec<_>>()
        })
        .collect();
    for (path, nested, parsed) in parsed {
        let rel = normalise(path.strip_prefix(dir).unwrap_or(&path));
        if nested && attached.contains(&rel) {
            continue;
        }
        let p = parsed.map_err(|e| match e {
            LoadError::Invalid { place, message } if nested => LoadError::Invalid {
                place,
                message: format!(
                    "{message} (a .yaml, .yml or .md file in a subfolder of evidence/ is read as a record unless a record attaches it)"
                ),
            },
            other => other,
        })?;
        resolve_inside(dir, "", &rel)
            .map_err(|why| LoadError::invalid(&path, None, format!("the evidence record {why}")))?;
        let record = p.record;
        let base = folder_of(&path);
        let digest = sha256_tagged(&p.bytes);
        let mut validity = Validity::Valid;
        let mut problems = Vec::new();
        for (i, a) in record.attachments.iter().enumerate() {
            let (full, shown) = resolve_inside(dir, &base, &a.path).map_err(|why| {
                LoadError::at_field(
                    &path,
                    &p.yaml,
                    p.offset,
                    &format!("attachments[{i}].path"),
                    format!("`{}` {why}", a.path),
                )
            })?;
            match std::fs::read(&full) {
                Ok(b) => {
                    let now = sha256_hex(&b);
                    if now != a.sha256 {
                        problems.push(format!(
                            "attachment {shown} changed since it was recorded (recorded sha256:{}…, now sha256:{}…)",
                            &a.sha256[..12],
                            &now[..12]
                        ));
                    }
                    inputs.push(InputDigest {
                        role: InputRole::Attachment,
                        path: shown,
                        sha256: format!("sha256:{now}"),
                    });
                }
                Err(e) => problems.push(format!("attachment {shown} cannot be read: {e}")),
            }
        }
        if !problems.is_empty() {
            validity = Validity::Invalid(problems.join("; "));
        }
        if record.kind != stagegate_core::evidence::EvidenceKind::Signoff {
            inputs.push(InputDigest {
                role: InputRole::Evidence,
                path: rel.clone(),
                sha256: digest.clone(),
            });
        }
        records.push(Evidence {
            path: rel,
            digest,
            record,
            validity,
        });
    }
    Ok(LoadedEvidence { records, inputs })
}

/// Everything in an agent folder except telemetry.
#[derive(Debug, Clone)]
pub struct AgentFolder {
    /// The folder.
    pub dir: PathBuf,
    /// The card.
    pub card: LoadedCard,
    /// The template.
    pub template: LoadedTemplate,
    /// Evidence.
    pub evidence: LoadedEvidence,
    /// `sha256:` of the runbook, `None` when it is missing.
    pub runbook_sha256: Option<String>,
    /// Every input read so far (card, template, evidence, attachments, runbook).
    pub inputs: Vec<InputDigest>,
}

/// Loads an agent folder: card, template, evidence, runbook. Checks what spans files: a
/// record's readiness ids exist in the template, and a `metric` record's value lies in the
/// range its criterion's unit allows ([`stagegate_core::card::Criterion::value_range`]).
///
/// # Errors
/// The first [`LoadError`].
pub fn load_agent(dir: &Path, org_dir: Option<&Path>) -> Result<AgentFolder, LoadError> {
    if !dir.is_dir() {
        return Err(LoadError::Unreadable {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "agent folder not found"),
        });
    }
    let card = load_card(dir)?;
    let template = load_template(dir, org_dir)?;
    let evidence = load_evidence(dir)?;
    for e in &evidence.records {
        for (j, r) in e.record.readiness.iter().enumerate() {
            if !template.template.has_readiness_item(r) {
                return Err(record_error(
                    dir,
                    &e.path,
                    &format!("readiness[{j}]"),
                    format!(
                        "`{r}` is not a readiness item of template {}",
                        template.template.name
                    ),
                ));
            }
        }
        if let Some(m) = &e.record.metric
            && let Some(c) = card
                .card
                .success_criteria
                .iter()
                .find(|c| c.id == m.criterion)
            && let Some(range) = c.value_range()
            && !range.contains(m.value)
        {
            return Err(record_error(
                dir,
                &e.path,
                "metric.value",
                format!(
                    "{} is outside what criterion `{}` can measure: {}",
                    m.value,
                    c.id,
                    range.describe()
                ),
            ));
        }
    }
    let (rb_path, rb_shown) = resolve_inside(dir, "", &card.card.runbook)
        .map_err(|why| card.error_at("runbook", format!("`{}` {why}", card.card.runbook)))?;
    let runbook_sha256 = std::fs::read(&rb_path).ok().map(|b| sha256_tagged(&b));
    let mut inputs = vec![
        InputDigest {
            role: InputRole::Card,
            path: "agent.yaml".into(),
            sha256: card.digest.clone(),
        },
        InputDigest {
            role: InputRole::Template,
            path: template.digest_path.clone(),
            sha256: template.digest.clone(),
        },
    ];
    if let Some(d) = &runbook_sha256 {
        inputs.push(InputDigest {
            role: InputRole::Runbook,
            path: rb_shown,
            sha256: d.clone(),
        });
    }
    inputs.extend(evidence.inputs.iter().cloned());
    Ok(AgentFolder {
        dir: dir.to_path_buf(),
        card,
        template,
        evidence,
        runbook_sha256,
        inputs,
    })
}

/// Normalised display form of a card-relative path (for digests and reports).
pub fn display_path(rel: &str) -> String {
    normalise(Path::new(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_template_parses_and_validates() {
        let t = builtin_template().unwrap();
        assert_eq!(t.items.len(), 10);
        assert_eq!(t.decision.open_blocks_items, vec![4, 9]);
        assert_eq!(t.drill_window_days, 30);
    }

    #[test]
    fn yaml_errors_name_line_and_field() {
        let text = "items: [9]\nkind: drill\ndate: 2026-02-30\nrecorded_by: A B\nsummary: x\n";
        let e = parse_yaml::<EvidenceRecord>(Path::new("evidence/d.yaml"), text, 0).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("evidence/d.yaml:3:7: field `date`:"), "{s}");
        let text =
            "items: [9]\nkind: drill\ndate: 2026-02-01\nrecorded_by: A B\nsummary: x\nsumary: y\n";
        let s = parse_yaml::<EvidenceRecord>(Path::new("e.yaml"), text, 0)
            .unwrap_err()
            .to_string();
        assert!(
            s.contains("e.yaml:6:") && s.contains("unknown field `sumary`"),
            "{s}"
        );
    }

    #[test]
    fn duplicate_keys_and_extra_documents_are_named_without_library_hints() {
        let text = "items: [9]\nkind: drill\nkind: link\n";
        let s = parse_yaml::<EvidenceRecord>(Path::new("e.yaml"), text, 0)
            .unwrap_err()
            .to_string();
        assert_eq!(
            s,
            "e.yaml:3:1: field `kind`: duplicate key `kind`: a key may appear only once in a mapping"
        );
        let text = "items: [2]\nkind: link\ndate: 2026-06-01\nrecorded_by: A B\nsummary: x\n---\nkind: drill\n";
        let s = parse_yaml::<EvidenceRecord>(Path::new("e.yaml"), text, 0)
            .unwrap_err()
            .to_string();
        assert!(
            s.starts_with("e.yaml:7:") && s.contains("a second YAML document"),
            "{s}"
        );
        assert!(!s.contains("from_str_multiple"), "{s}");
    }

    #[test]
    fn paths_stay_inside_the_agent_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("agent");
        std::fs::create_dir_all(dir.join("evidence/attachments")).unwrap();
        let ok = |base: &str, rel: &str| resolve_inside(&dir, base, rel).map(|(_, s)| s);
        assert_eq!(ok("", "runbook.md").unwrap(), "runbook.md");
        assert_eq!(ok("evidence", "../runbook.md").unwrap(), "runbook.md");
        assert_eq!(
            ok("evidence", "./attachments/../attachments/x.log").unwrap(),
            "evidence/attachments/x.log"
        );
        for (base, rel) in [
            ("", "../runbook.md"),
            ("evidence", "../../x.log"),
            ("evidence", "attachments/../../../etc/hostname"),
            ("", "/etc/hostname"),
            ("evidence", "\\\\server\\share\\x"),
            ("evidence", "C:\\x.log"),
        ] {
            let why = ok(base, rel).unwrap_err();
            assert!(
                why.contains("leaves") || why.contains("absolute"),
                "{rel}: {why}"
            );
        }
        #[cfg(unix)]
        {
            std::fs::write(tmp.path().join("outside.log"), "x").unwrap();
            std::os::unix::fs::symlink(
                tmp.path().join("outside.log"),
                dir.join("evidence/attachments/link.log"),
            )
            .unwrap();
            let why = ok("evidence", "attachments/link.log").unwrap_err();
            assert!(why.contains("symbolic link"), "{why}");
        }
    }

    #[test]
    fn front_matter_offsets_lines() {
        let text = "---\nitems: [8]\nkind: nope\n---\nbody\n";
        let fm = front_matter(Path::new("x.md"), text).unwrap();
        let e = parse_yaml::<EvidenceRecord>(Path::new("x.md"), fm, 1).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("x.md:3:"), "{s}");
        assert!(front_matter(Path::new("x.md"), "no front matter").is_err());
        assert!(front_matter(Path::new("x.md"), "---\nkind: x\n").is_err());
    }
}
