//! Reads an agent's folder into `stagegate-core` values.
//!
//! ```text
//! <agent>/agent.yaml           the agent card
//! <agent>/gates.yaml           optional gate-template override (else <org>/gates.yaml, else built-in)
//! <agent>/evidence/*.yaml|yml  one evidence record per file
//! <agent>/evidence/*.md        a record in YAML front matter (between `---` lines), notes below
//! <agent>/evidence/<sub>/…     attachments, named by records with their sha256
//! <agent>/<runbook>            the runbook the card names
//! ```
//!
//! Every error names the file, the line and column when the text has them, and the field path
//! (`people.on_call.primary.name`). Nothing here writes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use stagegate_core::card::AgentCard;
use stagegate_core::digest::{InputDigest, InputRole, sha256_hex, sha256_tagged};
use stagegate_core::evidence::{Evidence, EvidenceRecord, Validity};
use stagegate_core::gates::{BUILTIN_TEMPLATE_YAML, GateTemplate};
use std::fmt;
use std::path::{Component, Path, PathBuf};

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
    let options = serde_saphyr::options! { with_snippet: false };
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            let p = e.path().to_string();
            if p != "." && !p.is_empty() {
                path_at_error = Some(p);
            }
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let loc = e.location();
        let mut message = e.to_string();
        // The message starts "line L column C: " when it knows the place; the place is
        // printed by us instead.
        if let Some(rest) = message.strip_prefix("error: ") {
            message = rest.to_owned();
        }
        if let Some(idx) = message.find(": ")
            && message.starts_with("line ")
        {
            message = message[idx + 2..].to_owned();
        }
        let mut message = message.lines().next().unwrap_or_default().to_owned();
        // Some messages repeat the place at the end: " at line L, column C".
        if let Some(idx) = message.rfind(" at line ") {
            message.truncate(idx);
        }
        LoadError::Invalid {
            place: Place {
                file: file.to_path_buf(),
                line: loc.map(|l| l.line() + line_offset).filter(|l| *l > 0),
                column: loc.map(|l| l.column()).filter(|c| *c > 0),
                field: path_at_error,
            },
            message,
        }
    })
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
}

/// Reads and validates `<dir>/agent.yaml`.
///
/// # Errors
/// [`LoadError`] naming file, line and field.
pub fn load_card(dir: &Path) -> Result<LoadedCard, LoadError> {
    let path = dir.join("agent.yaml");
    let (bytes, text) = read_text(&path)?;
    let card: AgentCard = parse_yaml(&path, &text, 0)?;
    card.validate()
        .map_err(|e| LoadError::invalid(&path, Some(&e.field), e.message))?;
    Ok(LoadedCard {
        card,
        digest: sha256_tagged(&bytes),
        path,
    })
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
    let t: GateTemplate = parse_yaml(Path::new("builtin:gates.yaml"), BUILTIN_TEMPLATE_YAML, 0)?;
    t.validate().map_err(|e| {
        LoadError::invalid(Path::new("builtin:gates.yaml"), Some(&e.field), e.message)
    })?;
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
                .map_err(|e| LoadError::invalid(&path, Some(&e.field), e.message))?;
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

/// Joins `rel` onto `base` lexically, refusing absolute paths. `..` is allowed (telemetry may
/// live beside the repository); the result is not canonicalised.
fn join_relative(base: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::Prefix(_))) {
        return None;
    }
    Some(base.join(p))
}

/// Resolves a path the card names (telemetry, runbook) against the agent folder.
///
/// # Errors
/// [`LoadError::Invalid`] for an absolute path: cards stay portable between machines.
pub fn resolve_card_path(
    dir: &Path,
    card_file: &Path,
    field: &str,
    rel: &str,
) -> Result<PathBuf, LoadError> {
    join_relative(dir, rel).ok_or_else(|| {
        LoadError::invalid(
            card_file,
            Some(field),
            format!("`{rel}` must be relative to the agent folder"),
        )
    })
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

/// Reads every record in `<dir>/evidence/` (files ending `.yaml`, `.yml` or `.md`; other files
/// and subfolders hold attachments). Attachment digests are checked: a changed or missing
/// attachment marks the record invalid, it does not fail the load.
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
    let entries = std::fs::read_dir(&ev_dir).map_err(|source| LoadError::Unreadable {
        path: ev_dir.clone(),
        source,
    })?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Unreadable {
            path: ev_dir.clone(),
            source,
        })?;
        let p = entry.path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if p.is_file() && matches!(ext, "yaml" | "yml" | "md") {
            files.push(p);
        }
    }
    files.sort();
    for path in files {
        let (bytes, text) = read_text(&path)?;
        let is_md = path.extension().is_some_and(|e| e == "md");
        let (yaml, offset) = if is_md {
            (front_matter(&path, &text)?, 1)
        } else {
            (text.as_str(), 0)
        };
        let record: EvidenceRecord = parse_yaml(&path, yaml, offset)?;
        record
            .validate()
            .map_err(|(field, msg)| LoadError::invalid(&path, Some(&field), msg))?;
        let rel = normalise(path.strip_prefix(dir).unwrap_or(&path));
        let digest = sha256_tagged(&bytes);
        let mut validity = Validity::Valid;
        let mut problems = Vec::new();
        for (i, a) in record.attachments.iter().enumerate() {
            let Some(full) = join_relative(&ev_dir, &a.path) else {
                return Err(LoadError::invalid(
                    &path,
                    Some(&format!("attachments[{i}].path")),
                    format!("`{}` must be relative to the evidence folder", a.path),
                ));
            };
            let shown = normalise(&Path::new("evidence").join(&a.path));
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

/// Loads an agent folder: card, template, evidence, runbook.
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
        for r in &e.record.readiness {
            if !template.template.has_readiness_item(r) {
                return Err(LoadError::invalid(
                    &dir.join(&e.path),
                    Some("readiness"),
                    format!(
                        "`{r}` is not a readiness item of template {}",
                        template.template.name
                    ),
                ));
            }
        }
    }
    let rb_path = resolve_card_path(dir, &card.path, "runbook", &card.card.runbook)?;
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
            path: normalise(Path::new(&card.card.runbook)),
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
