//! The OpenFeature Remote Evaluation Protocol's wire types (`open-feature/protocol`,
//! `service/openapi.yaml` v0.3.0):
//!
//! - request: `{"context": {"targetingKey": "…", …}}` (`evaluationRequest`); the context may be
//!   absent (an empty context);
//! - success: [`crate::Resolution`] (`serverEvaluationSuccess`: key, value, reason, variant,
//!   metadata);
//! - failure: `{"key", "errorCode", "errorDetails"}` (`evaluationFailure`, `flagNotFound`), or
//!   `{"errorDetails"}` for a request that fails as a whole (`generalErrorResponse`).
//!
//! What the HTTP side adds (the server's `ofrep` module): 401 without a valid credential, 403
//! for one not allowed the flag, 429 with `Retry-After` (seconds or an HTTP date) past a rate
//! limit, `ETag`/`If-None-Match` → 304 on the bulk endpoint, and the ADR 0008 event stream
//! (`eventStreams` in the bulk answer; SSE `event: message` with `data: {"type":
//! "refetchEvaluation", "etag", "lastModified"}`).

use crate::{ErrorCode, EvalError, EvaluationContext};
use serde_json::{Value, json};

/// A parsed evaluation request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvaluationRequest {
    /// Its context.
    pub context: EvaluationContext,
}

/// A failure with its code: the body OFREP sends and the status it goes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The code.
    pub code: ErrorCode,
    /// What went wrong.
    pub details: String,
}

impl From<EvalError> for Failure {
    fn from(e: EvalError) -> Failure {
        Failure {
            code: e.code,
            details: e.details,
        }
    }
}

impl Failure {
    /// `{"key", "errorCode", "errorDetails"}` (`key` absent for the bulk endpoint's request
    /// errors, which concern no one flag).
    pub fn body(&self, key: Option<&str>) -> Value {
        let mut v = json!({"errorCode": self.code, "errorDetails": self.details});
        if let Some(k) = key {
            v["key"] = Value::from(k);
        }
        v
    }
}

/// Reads a request body.
///
/// # Errors
/// `PARSE_ERROR` for a body that is not JSON or not an object; `INVALID_CONTEXT` for a
/// `context` that is not an object, or a `targetingKey` that is not a string.
pub fn parse_request(body: &[u8]) -> Result<EvaluationRequest, Failure> {
    let parse = |details: String| Failure {
        code: ErrorCode::ParseError,
        details,
    };
    let invalid = |details: &str| Failure {
        code: ErrorCode::InvalidContext,
        details: details.to_owned(),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(EvaluationRequest::default());
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| parse(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut o) = v else {
        return Err(parse("the body is not a JSON object".into()));
    };
    let mut attributes = match o.remove("context") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(c)) => c,
        Some(_) => return Err(invalid("context must be an object")),
    };
    let targeting_key = match attributes.remove("targetingKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(invalid("targetingKey must be a string")),
    };
    Ok(EvaluationRequest {
        context: EvaluationContext {
            targeting_key,
            attributes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bodies_map_to_the_spec_codes() {
        let ok =
            parse_request(br#"{"context": {"targetingKey": "u1", "department": "x"}}"#).unwrap();
        assert_eq!(ok.context.targeting_key.as_deref(), Some("u1"));
        assert_eq!(ok.context.attributes["department"], "x");
        assert_eq!(parse_request(b"").unwrap(), EvaluationRequest::default());
        assert_eq!(parse_request(b"{}").unwrap(), EvaluationRequest::default());
        assert_eq!(
            parse_request(b"{nope").unwrap_err().code,
            ErrorCode::ParseError
        );
        assert_eq!(
            parse_request(b"[1]").unwrap_err().code,
            ErrorCode::ParseError
        );
        assert_eq!(
            parse_request(br#"{"context": 3}"#).unwrap_err().code,
            ErrorCode::InvalidContext
        );
        assert_eq!(
            parse_request(br#"{"context": {"targetingKey": 7}}"#)
                .unwrap_err()
                .code,
            ErrorCode::InvalidContext
        );
        let f = Failure {
            code: ErrorCode::FlagNotFound,
            details: "no".into(),
        };
        assert_eq!(
            f.body(Some("k")),
            json!({"key": "k", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "no"})
        );
        assert_eq!(f.code.http_status(), 404);
    }

    proptest! {
        #[test]
        fn no_body_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_request(&bytes);
        }
    }
}
