//! The CLI as a client of `stagegate serve`: `review --server` pushes the review it ran here
//! (as a CI job does), `evidence push` sends a record with its attachments. The server
//! authenticates the bearer token, authorizes the act and recomputes what it can; its RFC 9457
//! problem is printed as it came.

use crate::exit::Failure;
use serde_json::Value;
use stagegate_core::review::CriteriaLock;
use std::path::{Path, PathBuf};

/// `--server` and `--token`.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArg {
    /// A `stagegate serve` URL (e.g. `https://stagegate.acme.example`): the command acts
    /// there instead of on a local registry. Default: $STAGEGATE_SERVER.
    #[arg(long, env = "STAGEGATE_SERVER")]
    pub server: Option<url::Url>,
    /// The API token (`stagegate token create`) or OIDC JWT for --server. Default:
    /// $STAGEGATE_TOKEN.
    #[arg(long, env = "STAGEGATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A connection to a server.
#[derive(Debug, Clone)]
pub struct Client {
    base: url::Url,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// From the flags; `None` without --server.
    ///
    /// # Errors
    /// [`Failure::Invalid`] for --server without a token.
    pub fn from_args(a: &RemoteArg) -> Result<Option<Client>, Failure> {
        let Some(base) = a.server.clone() else {
            return Ok(None);
        };
        let token = a
            .token
            .clone()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                Failure::Invalid("--server needs --token (or $STAGEGATE_TOKEN)".into())
            })?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| Failure::Internal(e.to_string()))?;
        Ok(Some(Client { base, token, http }))
    }

    fn url(&self, path: &str) -> Result<url::Url, Failure> {
        self.base
            .join(path)
            .map_err(|e| Failure::Invalid(format!("--server {}: {e}", self.base)))
    }

    async fn answer(
        &self,
        what: &str,
        r: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<(u16, Value), Failure> {
        let r =
            r.map_err(|e| Failure::Registry(format!("{what}: cannot reach {}: {e}", self.base)))?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    fn refused(what: &str, status: u16, body: &Value) -> Failure {
        let detail = body
            .get("detail")
            .and_then(Value::as_str)
            .or_else(|| body.get("title").and_then(Value::as_str))
            .unwrap_or("no detail");
        let msg = format!("{what}: the server answered {status}: {detail}");
        match status {
            401 | 403 | 409 => Failure::Refused(msg),
            422 | 400 => Failure::Invalid(msg),
            500 if body.get("type").and_then(Value::as_str)
                == Some("urn:stagegate:problem:registry-does-not-verify") =>
            {
                Failure::Tampered(msg)
            }
            _ => Failure::Registry(msg),
        }
    }

    /// GET a JSON document.
    ///
    /// # Errors
    /// As the server answers.
    pub async fn get_json(&self, path: &str) -> Result<Value, Failure> {
        let what = format!("reading {path}");
        let req = self
            .http
            .get(self.url(path)?)
            .bearer_auth(&self.token)
            .send()
            .await;
        let (status, body) = self.answer(&what, req).await?;
        if status != 200 {
            return Err(Self::refused(&what, status, &body));
        }
        Ok(body)
    }

    /// GET a text answer with a query.
    ///
    /// # Errors
    /// As the server answers.
    pub async fn get_text(&self, path: &str, query: &[(&str, String)]) -> Result<String, Failure> {
        let what = format!("reading {path}");
        let r = self
            .http
            .get(self.url(path)?)
            .query(query)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| Failure::Registry(format!("{what}: cannot reach {}: {e}", self.base)))?;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        if status != 200 {
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(Self::refused(&what, status, &body));
        }
        Ok(text)
    }

    /// POST a JSON body; `ok` is the status that means done.
    ///
    /// # Errors
    /// As the server answers.
    pub async fn post_json(&self, path: &str, body: &Value, ok: u16) -> Result<Value, Failure> {
        let what = format!("posting to {path}");
        let req = self
            .http
            .post(self.url(path)?)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await;
        let (status, answer) = self.answer(&what, req).await?;
        if status != ok {
            return Err(Self::refused(&what, status, &answer));
        }
        Ok(answer)
    }

    /// The agent's criteria lock on the server, if any.
    ///
    /// # Errors
    /// As the server answers (404 is no lock).
    pub async fn criteria_lock(&self, agent: &str) -> Result<Option<CriteriaLock>, Failure> {
        let what = format!("reading {agent}'s criteria lock");
        let req = self
            .http
            .get(self.url(&format!("api/v1/agents/{agent}"))?)
            .bearer_auth(&self.token)
            .send()
            .await;
        let (status, body) = self.answer(&what, req).await?;
        match status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(Self::refused(&what, status, &body)),
        }
        let Some(l) = body.get("criteria_lock").filter(|l| !l.is_null()) else {
            return Ok(None);
        };
        let s = |k: &str| {
            l.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Some(CriteriaLock {
            digest: s("digest"),
            locked_at: s("locked_at")
                .parse()
                .map_err(|_| Failure::Internal(format!("{what}: the server's lock has no date")))?,
            by: s("by"),
            recorded_at: l
                .get("recorded_at")
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok()),
            clock_overridden: false,
        }))
    }

    /// Pushes a review JSON; returns the server's message.
    ///
    /// # Errors
    /// As the server answers.
    pub async fn push_review(&self, agent: &str, review: &Value) -> Result<String, Failure> {
        let what = format!("pushing the review of {agent}");
        let req = self
            .http
            .post(self.url(&format!("api/v1/agents/{agent}/reviews"))?)
            .bearer_auth(&self.token)
            .json(review)
            .send()
            .await;
        let (status, body) = self.answer(&what, req).await?;
        if status != 201 {
            return Err(Self::refused(&what, status, &body));
        }
        Ok(format!(
            "{} (event #{} on {})",
            body.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            body.get("event")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            self.base
        ))
    }

    /// Pushes one evidence record file (`.yaml`, or `.md` with front matter) with the
    /// attachments it names, read from the record's folder.
    ///
    /// # Errors
    /// [`Failure::NoInput`] for an unreadable file, [`Failure::Invalid`] for a record that does
    /// not parse; otherwise as the server answers.
    pub async fn push_evidence(&self, agent: &str, file: &Path) -> Result<String, Failure> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::NoInput(format!("{}: {e}", file.display())))?;
        let record_text = if file.extension().is_some_and(|e| e == "md") {
            stagegate_load::front_matter(file, &text)?.to_owned()
        } else {
            text.clone()
        };
        let record: stagegate_core::evidence::EvidenceRecord =
            stagegate_load::parse_yaml(file, &record_text, 0)?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "record.yaml".into());
        let mut form = reqwest::multipart::Form::new().part(
            "record",
            reqwest::multipart::Part::text(record_text).file_name(name.replace(".md", ".yaml")),
        );
        let dir: PathBuf = file.parent().map(Path::to_path_buf).unwrap_or_default();
        for a in &record.attachments {
            let bytes = std::fs::read(dir.join(&a.path)).map_err(|e| {
                Failure::NoInput(format!("{}: attachment {}: {e}", file.display(), a.path))
            })?;
            form = form.part(
                "attachment",
                reqwest::multipart::Part::bytes(bytes).file_name(a.path.clone()),
            );
        }
        let what = format!("pushing {}", file.display());
        let req = self
            .http
            .post(self.url(&format!("api/v1/agents/{agent}/evidence"))?)
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await;
        let (status, body) = self.answer(&what, req).await?;
        if status != 201 {
            return Err(Self::refused(&what, status, &body));
        }
        Ok(format!(
            "{}: {} (event #{})",
            file.display(),
            body.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            body.get("event")
                .and_then(Value::as_i64)
                .unwrap_or_default()
        ))
    }
}

/// `stagegate evidence push`.
///
/// # Errors
/// As [`Client::push_evidence`]; [`Failure::Invalid`] without --server.
pub async fn evidence_push(
    agent: &str,
    files: &[PathBuf],
    remote: &RemoteArg,
) -> Result<u8, Failure> {
    let client = Client::from_args(remote)?.ok_or_else(|| {
        Failure::Invalid("evidence push needs --server (or $STAGEGATE_SERVER)".into())
    })?;
    for f in files {
        outln!("{}", client.push_evidence(agent, f).await?);
    }
    Ok(0)
}
