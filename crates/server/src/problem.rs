//! Errors as RFC 9457 problem details (`application/problem+json`) that never leak internals:
//! database and key failures are logged with their cause and answered with a generic detail.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use stagegate_registry::RegistryError;
use utoipa::ToSchema;

/// An RFC 9457 problem: `{"type", "title", "status", "detail"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, `urn:stagegate:problem:<slug>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened in this case, when it is safe to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Problem {
    /// A problem of kind `slug` with `status` and `title`.
    pub fn new(status: StatusCode, slug: &str, title: &str) -> Problem {
        Problem {
            kind: format!("urn:stagegate:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
        }
    }

    /// The same problem with a detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    /// 404 for a resource that does not exist.
    pub fn not_found(what: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(what)
    }

    /// 400 for a request that cannot be read.
    pub fn bad_request(why: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request").detail(why)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            axum::Json(self),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"stagegate\""),
            );
        }
        r
    }
}

impl From<RegistryError> for Problem {
    /// A rule refusal (409) and a log that does not verify (500, naming the event) are facts
    /// for the caller; a database or key failure (503/500) is logged and answered without its
    /// cause.
    fn from(e: RegistryError) -> Problem {
        match e {
            RegistryError::Rule(m) => {
                Problem::new(StatusCode::CONFLICT, "rule", "Refused by a registry rule").detail(m)
            }
            RegistryError::Tampered { seq, why } => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "registry-does-not-verify",
                "The registry does not verify",
            )
            .detail(format!("event #{seq}: {why}")),
            RegistryError::Missing(_) | RegistryError::Database { .. } => {
                tracing::error!(error = %e, "registry unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "registry-unavailable",
                    "The registry is unavailable",
                )
            }
            RegistryError::Key { .. } => {
                tracing::error!(error = %e, "registry key unavailable");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "registry-key-unavailable",
                    "The registry key is unavailable",
                )
            }
        }
    }
}
