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
    // The usual request, read without a tree of `Value`s; anything it does not accept is read
    // again below, which says what is wrong.
    if let Ok(Typed(context)) = serde_json::from_slice::<Typed>(body) {
        return Ok(EvaluationRequest { context });
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

/// A request read straight into its context: the context's `targetingKey` taken out as it is
/// read, every other value read as the general reading reads it (so checked alike: UTF-8,
/// escapes, number range, depth). Accepts only requests the general reading accepts, with the
/// same result (a repeated key: the last one counts, as in a JSON object read into a map);
/// fails on everything else (then the general reading names the error).
struct Typed(EvaluationContext);

/// A key compared as it is read, not kept.
enum Field {
    Context,
    TargetingKey,
    Other(String),
}

struct KeyVisitor {
    /// Whether the key is one of the context's (kept), or the request's (only `context` kept).
    in_context: bool,
}

impl<'de> serde::de::Visitor<'de> for KeyVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Field, E> {
        Ok(match (self.in_context, k) {
            (false, "context") => Field::Context,
            (true, "targetingKey") => Field::TargetingKey,
            (true, _) => Field::Other(k.to_owned()),
            (false, _) => Field::Other(String::new()),
        })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for KeyVisitor {
    type Value = Field;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_str(self)
    }
}

/// The context object (`null` is read by `Option`).
struct ContextVisitor;

impl<'de> serde::de::Visitor<'de> for ContextVisitor {
    type Value = EvaluationContext;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a context object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut m: A,
    ) -> Result<EvaluationContext, A::Error> {
        let mut ctx = EvaluationContext::default();
        while let Some(k) = m.next_key_seed(KeyVisitor { in_context: true })? {
            match k {
                Field::TargetingKey => ctx.targeting_key = m.next_value::<Option<String>>()?,
                Field::Other(k) => {
                    ctx.attributes.insert(k, m.next_value::<Value>()?);
                }
                Field::Context => unreachable_key()?,
            }
        }
        Ok(ctx)
    }
}

fn unreachable_key<E: serde::de::Error>() -> Result<(), E> {
    Err(E::custom("not a context key"))
}

impl<'de> serde::Deserialize<'de> for EvaluationContextSeed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ContextVisitor).map(EvaluationContextSeed)
    }
}

/// [`ContextVisitor`] as a `Deserialize` (for `Option<…>`).
struct EvaluationContextSeed(EvaluationContext);

impl<'de> serde::Deserialize<'de> for Typed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Typed, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Typed;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an evaluation request object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Typed, A::Error> {
                let mut context = EvaluationContext::default();
                while let Some(k) = m.next_key_seed(KeyVisitor { in_context: false })? {
                    match k {
                        Field::Context => {
                            context = m
                                .next_value::<Option<EvaluationContextSeed>>()?
                                .map(|c| c.0)
                                .unwrap_or_default();
                        }
                        _ => {
                            // Read, not skipped: a skip would not check what it skips.
                            m.next_value::<Value>()?;
                        }
                    }
                }
                Ok(Typed(context))
            }
        }
        d.deserialize_map(V)
    }
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

    /// The general reading alone (what `parse_request` did before the typed one).
    fn general(body: &[u8]) -> Result<EvaluationRequest, Failure> {
        let v: Value = serde_json::from_slice(body).map_err(|e| Failure {
            code: ErrorCode::ParseError,
            details: e.to_string(),
        })?;
        let Value::Object(mut o) = v else {
            return Err(Failure {
                code: ErrorCode::ParseError,
                details: String::new(),
            });
        };
        let invalid = Failure {
            code: ErrorCode::InvalidContext,
            details: String::new(),
        };
        let mut attributes = match o.remove("context") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(c)) => c,
            Some(_) => return Err(invalid),
        };
        let targeting_key = match attributes.remove("targetingKey") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(invalid),
        };
        Ok(EvaluationRequest {
            context: EvaluationContext {
                targeting_key,
                attributes,
            },
        })
    }

    #[test]
    fn the_typed_reading_agrees_with_the_general_one() {
        // The usual request takes the typed way.
        let usual = serde_json::from_slice::<Typed>(br#"{"context":{"targetingKey":"user-42"}}"#);
        assert_eq!(usual.unwrap().0.targeting_key.as_deref(), Some("user-42"));
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
        for body in [
            &br#"{"context":{"targetingKey":"user-42"}}"#[..],
            br#"{"context":{"targetingKey":"u","targetingKey":null}}"#,
            br#"{"context":{"targetingKey":5,"targetingKey":"u"}}"#,
            br#"{"context":3,"context":{"department":"x"}}"#,
            br#"{"context":{"department":"x"},"context":null}"#,
            br#"{"context":{"targeting\u004bey":"escaped","a":[1,{"b":null}],"a":2}}"#,
            br#"{"other":{"deep":[1,2,{"x":"y"}]},"context":{"n":1.5e3}}"#,
            br#"{"conte\u0078t":{"targetingKey":"u"}}"#,
            // What a skip would not have checked, beside the context and in it.
            br#"{"x":"\ud800","context":{"targetingKey":"u"}}"#,
            br#"{"x":1e400,"context":{"targetingKey":"u"}}"#,
            b"{\"x\":\"\xff\",\"context\":{\"targetingKey\":\"u\"}}",
            br#"{"context":{"targetingKey":"u","y":1e400}}"#,
            br#"{"context":{"targetingKey":"\ud800"}}"#,
            deep.as_bytes(),
        ] {
            let shown = String::from_utf8_lossy(body);
            let typed = serde_json::from_slice::<Typed>(body).map(|t| t.0);
            let general = general(body).map(|r| r.context).ok();
            if let Ok(t) = typed {
                assert_eq!(Some(t), general, "{shown}");
            }
            let read = parse_request(body).map(|r| r.context).ok();
            assert_eq!(read, general, "{shown}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z]{0,3}".prop_map(Value::from),
            "\\PC{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::vec(
                    (
                        prop_oneof![
                            Just("targetingKey".to_owned()),
                            Just("context".to_owned()),
                            "[a-c]{1,2}"
                        ],
                        inner
                    ),
                    0..4
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn no_body_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_request(&bytes);
        }

        #[test]
        fn every_request_reads_the_same_both_ways(v in json_value(), dup in json_value()) {
            // Also with a repeated key appended as text (a map cannot hold one).
            let text = v.to_string();
            let repeated = match text.strip_suffix('}') {
                Some(head) if text.len() > 2 => format!("{head},\"context\":{dup}}}"),
                _ => text.clone(),
            };
            for body in [text, repeated] {
                let typed = serde_json::from_slice::<Typed>(body.as_bytes()).map(|t| t.0);
                match (typed, general(body.as_bytes())) {
                    (Ok(t), Ok(g)) => prop_assert_eq!(t, g.context, "{}", body),
                    (Ok(t), Err(e)) => prop_assert!(false, "{body}: typed {t:?}, general {e:?}"),
                    (Err(_), g) => {
                        // The general reading decides; `parse_request` gives its answer.
                        prop_assert_eq!(parse_request(body.as_bytes()).map(|r| r.context).ok(), g.map(|r| r.context).ok(), "{}", body);
                    }
                }
            }
        }
    }
}
