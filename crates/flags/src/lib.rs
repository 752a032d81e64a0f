//! stagegate's flag evaluation, without IO: flags with variants, a safe default, a kill
//! switch and targeting rules (named cohorts, a flagd-compatible percentage split), evaluated
//! for an OpenFeature evaluation context ([`bucket`], [`Flag`], [`FlagSet`]), and the
//! OpenFeature Remote Evaluation Protocol's wire types ([`ofrep`]).
//!
//! Reasons and error codes are OpenFeature's (specification §2.7 "Resolution reasons" and
//! "Error codes"): `STATIC` (no targeting), `TARGETING_MATCH` (a rule chose), `SPLIT` (the
//! percentage split chose), `DEFAULT` (no rule matched), `DISABLED` ("the resolved value was
//! the result of the flag being disabled in the management system": the kill switch),
//! `ERROR`.

pub mod bucket;
pub mod ofrep;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// Its key.
    pub key: String,
    /// Enabled, or disabled by the kill switch.
    pub state: FlagState,
    /// Variant name → value (`{"on": true, "off": false}`).
    pub variants: BTreeMap<String, Value>,
    /// The safe default: what a disabled flag, or a context no rule matches, gets.
    pub default_variant: String,
    /// Rules in order; the first that matches decides.
    pub targeting: Vec<Rule>,
    /// Returned with every evaluation (OFREP flag metadata): strings, numbers, booleans.
    pub metadata: BTreeMap<String, Value>,
}

/// Enabled or disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FlagState {
    /// Rules apply.
    Enabled,
    /// Everyone gets the default variant, reason `DISABLED`.
    Disabled,
}

/// One targeting rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A context attribute (`targetingKey` for the targeting key) equal to one of `values`
    /// selects `variant` (reason `TARGETING_MATCH`); absent, it does not match.
    InCohort {
        /// The attribute.
        attribute: String,
        /// The values.
        values: Vec<String>,
        /// The variant.
        variant: String,
    },
    /// flagd's fractional split on the flag key and the targeting key (reason `SPLIT`).
    Fractional {
        /// (variant, weight) in order.
        variants: Vec<(String, u32)>,
    },
    /// Everyone reaching this rule gets the variant (reason `STATIC` when it is the only rule,
    /// else `TARGETING_MATCH`).
    Variant(String),
}

/// An OpenFeature evaluation context: the targeting key and the other attributes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EvaluationContext {
    /// `targetingKey`.
    pub targeting_key: Option<String>,
    /// Every other attribute.
    pub attributes: Map<String, Value>,
}

/// Why a value was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// No targeting.
    Static,
    /// No rule matched: the default variant.
    Default,
    /// A rule chose.
    TargetingMatch,
    /// The percentage split chose.
    Split,
    /// The flag is disabled (kill switch).
    Disabled,
}

/// A successful evaluation: OFREP's `serverEvaluationSuccess` body, borrowing from the flag
/// it came from (an evaluation allocates nothing but its error messages).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Resolution<'a> {
    /// Flag key.
    pub key: &'a str,
    /// The variant's value.
    pub value: &'a Value,
    /// Why.
    pub reason: Reason,
    /// The variant's name.
    pub variant: &'a str,
    /// The flag's metadata.
    pub metadata: &'a BTreeMap<String, Value>,
}

/// OpenFeature's error codes, as OFREP sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The request body is not JSON of the right shape.
    ParseError,
    /// A percentage split needs a targeting key and there is none.
    TargetingKeyMissing,
    /// The context has a value the rules cannot use.
    InvalidContext,
    /// No such flag.
    FlagNotFound,
    /// Anything else (a flag whose rule names no variant).
    General,
}

impl ErrorCode {
    /// The HTTP status OFREP gives it: 400 for the request's faults, 404 for an unknown flag,
    /// 500 otherwise (`service/openapi.yaml`: `evaluationFailure` 400, `flagNotFound` 404,
    /// `generalErrorResponse` 500).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::ParseError | ErrorCode::TargetingKeyMissing | ErrorCode::InvalidContext => {
                400
            }
            ErrorCode::FlagNotFound => 404,
            ErrorCode::General => 500,
        }
    }
}

/// A failed evaluation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {details}")]
pub struct EvalError {
    /// The code.
    pub code: ErrorCode,
    /// What went wrong, in words.
    pub details: String,
}

fn fail(code: ErrorCode, details: impl Into<String>) -> EvalError {
    EvalError {
        code,
        details: details.into(),
    }
}

impl Flag {
    /// Evaluates the flag for `ctx`.
    ///
    /// # Errors
    /// `TARGETING_KEY_MISSING` when a percentage split is reached without a targeting key;
    /// `INVALID_CONTEXT` when a cohort attribute is present but not a string, number or
    /// boolean; `GENERAL` when a rule names a variant the flag does not have.
    pub fn evaluate(&self, ctx: &EvaluationContext) -> Result<Resolution<'_>, EvalError> {
        let resolve = |variant: &str, reason: Reason| {
            let (name, value) = self.variants.get_key_value(variant).ok_or_else(|| {
                fail(
                    ErrorCode::General,
                    format!("flag {} has no variant {variant:?}", self.key),
                )
            })?;
            Ok(Resolution {
                key: &self.key,
                value,
                reason,
                variant: name,
                metadata: &self.metadata,
            })
        };
        if self.state == FlagState::Disabled {
            return resolve(&self.default_variant, Reason::Disabled);
        }
        let only = self.targeting.len() == 1;
        for rule in &self.targeting {
            match rule {
                Rule::Variant(v) => {
                    let reason = if only {
                        Reason::Static
                    } else {
                        Reason::TargetingMatch
                    };
                    return resolve(v, reason);
                }
                Rule::InCohort {
                    attribute,
                    values,
                    variant,
                } => {
                    let got = if attribute == "targetingKey" {
                        ctx.targeting_key.clone()
                    } else {
                        match ctx.attributes.get(attribute) {
                            None | Some(Value::Null) => None,
                            Some(Value::String(s)) => Some(s.clone()),
                            Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
                            Some(_) => {
                                return Err(fail(
                                    ErrorCode::InvalidContext,
                                    format!(
                                        "context attribute {attribute:?} must be a string, number or boolean"
                                    ),
                                ));
                            }
                        }
                    };
                    if got.is_some_and(|g| values.contains(&g)) {
                        return resolve(variant, Reason::TargetingMatch);
                    }
                }
                Rule::Fractional { variants } => {
                    let key = ctx.targeting_key.as_deref().ok_or_else(|| {
                        fail(
                            ErrorCode::TargetingKeyMissing,
                            format!(
                                "flag {} splits by percentage: give a targetingKey",
                                self.key
                            ),
                        )
                    })?;
                    let v = bucket::fractional(&self.key, key, variants).ok_or_else(|| {
                        fail(
                            ErrorCode::General,
                            format!("flag {} has a split with no weight", self.key),
                        )
                    })?;
                    return resolve(v, Reason::Split);
                }
            }
        }
        resolve(&self.default_variant, Reason::Default)
    }
}

/// Every flag a server serves, with a content digest.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagSet {
    flags: BTreeMap<String, Flag>,
    etag: String,
}

impl FlagSet {
    /// A set of flags, by key.
    pub fn new(flags: BTreeMap<String, Flag>) -> FlagSet {
        use sha2::{Digest, Sha256};
        // BTreeMaps and serde_json::Value objects serialise in key order: the same flags give
        // the same bytes.
        let bytes = serde_json::to_vec(&flags).unwrap_or_default();
        let etag = Sha256::digest(&bytes)
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        FlagSet { flags, etag }
    }

    /// The flag with this key.
    pub fn get(&self, key: &str) -> Option<&Flag> {
        self.flags.get(key)
    }

    /// Every flag, in key order.
    pub fn flags(&self) -> impl Iterator<Item = &Flag> {
        self.flags.values()
    }

    /// How many flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The set's digest (32 hex digits of the sha256 of its canonical JSON): it changes when
    /// any flag changes, and only then.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The digest of the set *and* a context: what a bulk evaluation's `ETag` must be, since
    /// the same flags give other values to another context (OFREP `If-None-Match` on
    /// `POST /ofrep/v1/evaluate/flags`).
    pub fn etag_for(&self, ctx: &EvaluationContext) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.etag.as_bytes());
        h.update(serde_json::to_vec(ctx).unwrap_or_default());
        h.finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Evaluates one flag.
    ///
    /// # Errors
    /// `FLAG_NOT_FOUND`, or the flag's own ([`Flag::evaluate`]).
    pub fn evaluate(
        &self,
        key: &str,
        ctx: &EvaluationContext,
    ) -> Result<Resolution<'_>, EvalError> {
        self.flags
            .get(key)
            .ok_or_else(|| {
                fail(
                    ErrorCode::FlagNotFound,
                    format!("flag {key:?} was not found"),
                )
            })?
            .evaluate(ctx)
    }

    /// Evaluates every flag, by key.
    pub fn evaluate_all(
        &self,
        ctx: &EvaluationContext,
    ) -> Vec<(&str, Result<Resolution<'_>, EvalError>)> {
        self.flags
            .iter()
            .map(|(k, f)| (k.as_str(), f.evaluate(ctx)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(targeting: Vec<Rule>) -> Flag {
        Flag {
            key: "agent-x-enabled".into(),
            state: FlagState::Enabled,
            variants: BTreeMap::from([
                ("on".into(), Value::Bool(true)),
                ("off".into(), Value::Bool(false)),
            ]),
            default_variant: "off".into(),
            targeting,
            metadata: BTreeMap::from([("agent".into(), Value::from("agent-x"))]),
        }
    }

    fn ctx(key: Option<&str>, attrs: Value) -> EvaluationContext {
        EvaluationContext {
            targeting_key: key.map(str::to_owned),
            attributes: attrs.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn reasons_follow_openfeature() {
        let everyone = flag(vec![Rule::Variant("on".into())]);
        let r = everyone.evaluate(&ctx(None, Value::Null)).unwrap();
        assert_eq!((r.value, r.reason), (&Value::Bool(true), Reason::Static));
        let mut killed = everyone.clone();
        killed.state = FlagState::Disabled;
        let r = killed.evaluate(&ctx(Some("u"), Value::Null)).unwrap();
        assert_eq!(
            (r.value, r.reason, r.variant),
            (&Value::Bool(false), Reason::Disabled, "off")
        );
        let cohort = flag(vec![
            Rule::InCohort {
                attribute: "department".into(),
                values: vec!["support".into()],
                variant: "on".into(),
            },
            Rule::Variant("off".into()),
        ]);
        let r = cohort
            .evaluate(&ctx(None, serde_json::json!({"department": "support"})))
            .unwrap();
        assert_eq!(
            (r.value, r.reason),
            (&Value::Bool(true), Reason::TargetingMatch)
        );
        let r = cohort
            .evaluate(&ctx(None, serde_json::json!({"department": "sales"})))
            .unwrap();
        assert_eq!(
            (r.value, r.reason),
            (&Value::Bool(false), Reason::TargetingMatch)
        );
        let e = cohort
            .evaluate(&ctx(None, serde_json::json!({"department": {"x": 1}})))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidContext);
        let only_cohort = flag(vec![Rule::InCohort {
            attribute: "targetingKey".into(),
            values: vec!["u1".into()],
            variant: "on".into(),
        }]);
        assert_eq!(
            only_cohort
                .evaluate(&ctx(Some("u2"), Value::Null))
                .unwrap()
                .reason,
            Reason::Default
        );
        assert_eq!(
            only_cohort
                .evaluate(&ctx(Some("u1"), Value::Null))
                .unwrap()
                .reason,
            Reason::TargetingMatch
        );
    }

    #[test]
    fn a_split_needs_a_targeting_key_and_is_sticky() {
        let split = flag(vec![Rule::Fractional {
            variants: vec![("on".into(), 25), ("off".into(), 75)],
        }]);
        let e = split.evaluate(&ctx(None, Value::Null)).unwrap_err();
        assert_eq!(
            (e.code, e.code.http_status()),
            (ErrorCode::TargetingKeyMissing, 400)
        );
        let a = split.evaluate(&ctx(Some("user-1"), Value::Null)).unwrap();
        let b = split.evaluate(&ctx(Some("user-1"), Value::Null)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.reason, Reason::Split);
        assert_eq!(
            a.variant,
            bucket::fractional(
                "agent-x-enabled",
                "user-1",
                &[("on".into(), 25), ("off".into(), 75)]
            )
            .unwrap()
        );
    }

    #[test]
    fn a_broken_flag_is_a_general_error_with_status_500() {
        let no_weight = flag(vec![Rule::Fractional {
            variants: vec![("on".into(), 0), ("off".into(), 0)],
        }]);
        let e = no_weight
            .evaluate(&ctx(Some("u"), Value::Null))
            .unwrap_err();
        assert_eq!((e.code, e.code.http_status()), (ErrorCode::General, 500));
        let unknown = flag(vec![Rule::Variant("maybe".into())]);
        let e = unknown.evaluate(&ctx(None, Value::Null)).unwrap_err();
        assert_eq!(e.code, ErrorCode::General);
    }

    #[test]
    fn the_set_finds_flags_and_its_etag_moves_with_content_and_context() {
        let a = FlagSet::new(BTreeMap::from([(
            "agent-x-enabled".into(),
            flag(vec![Rule::Variant("on".into())]),
        )]));
        let same = FlagSet::new(BTreeMap::from([(
            "agent-x-enabled".into(),
            flag(vec![Rule::Variant("on".into())]),
        )]));
        let mut killed = flag(vec![Rule::Variant("on".into())]);
        killed.state = FlagState::Disabled;
        let b = FlagSet::new(BTreeMap::from([("agent-x-enabled".into(), killed)]));
        assert_eq!(a.etag(), same.etag());
        assert_ne!(a.etag(), b.etag());
        assert_ne!(
            a.etag_for(&ctx(Some("u1"), Value::Null)),
            a.etag_for(&ctx(Some("u2"), Value::Null))
        );
        assert_eq!(
            a.evaluate("nope", &ctx(None, Value::Null))
                .unwrap_err()
                .code,
            ErrorCode::FlagNotFound
        );
        assert_eq!(a.evaluate_all(&ctx(None, Value::Null)).len(), 1);
    }
}
