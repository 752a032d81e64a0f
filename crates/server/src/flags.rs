//! The flags this replica serves: every rollout as an OpenFeature flag, rebuilt from the
//! verified snapshot whenever the log moves, and kept when the database is unreachable.
//!
//! - One flag per agent with a rollout, keyed by the plan's `flag`: variants `on` (true) and
//!   `off` (false, the safe default); targeting from the rollout's exposure — 0% → `off`, a
//!   percentage → flagd fractional bucketing on the targeting key, cohorts → the context
//!   attributes, 100% → `on`. A pulled kill switch, or an agent paused or retired, disables
//!   the flag: every evaluation answers the safe default with reason `DISABLED`.
//! - [`run`] rebuilds the set when the cache signals a change (a write here, or PostgreSQL
//!   `NOTIFY` from another replica) and, as a backstop, every `poll` (SQLite writers beside
//!   the server, a lost listener). Each new set bumps a version the SSE streams send.
//! - When the snapshot cannot be read (the database is down), the last set keeps being served
//!   and [`FlagHub::stale_since`] says since when; `/readyz` reports it.
//! - Tokens for the OFREP routes are checked against the same view (issued and not revoked in
//!   the log, not expired), with the secret verified once per process: no database read per
//!   evaluation, and a revocation reaches every replica as fast as a kill.

use crate::cache::Cache;
use stagegate_flags::{Flag, FlagSet, FlagState, Reason, Resolution, Rule};
use stagegate_registry::State;
use stagegate_rollout::Exposure;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// One built set of flags, with each possible single-flag answer already serialised.
#[derive(Debug, Clone)]
pub struct FlagsView {
    /// The flags.
    pub set: FlagSet,
    /// The log's size it was built from.
    pub size: i64,
    /// When it was built.
    pub built_at: jiff::Timestamp,
    /// Token ids issued in the log, and the revoked ones.
    pub tokens: BTreeSet<String>,
    /// Revoked token ids.
    pub revoked: BTreeSet<String>,
    /// Flag key → its answers (`serverEvaluationSuccess` JSON) by variant and reason.
    bodies: rustc_hash::FxHashMap<String, Answers>,
}

/// One flag's answers: (variant, reason, JSON).
type Answers = Vec<(String, Reason, Box<[u8]>)>;

/// Every reason an answer can carry.
const REASONS: [Reason; 5] = [
    Reason::Static,
    Reason::Default,
    Reason::TargetingMatch,
    Reason::Split,
    Reason::Disabled,
];

impl FlagsView {
    /// The view of `set`, built from a log of `size` events at `built_at`, with the token ids
    /// issued and revoked in it; serialises every (flag, variant, reason) answer once.
    pub fn new(
        set: FlagSet,
        size: i64,
        built_at: jiff::Timestamp,
        tokens: BTreeSet<String>,
        revoked: BTreeSet<String>,
    ) -> FlagsView {
        let mut bodies = rustc_hash::FxHashMap::default();
        for flag in set.flags() {
            let mut answers = Vec::new();
            for (variant, value) in &flag.variants {
                for reason in REASONS {
                    let res = Resolution {
                        key: &flag.key,
                        value,
                        reason,
                        variant,
                        metadata: &flag.metadata,
                    };
                    if let Ok(json) = serde_json::to_vec(&res) {
                        answers.push((variant.clone(), reason, json.into_boxed_slice()));
                    }
                }
            }
            bodies.insert(flag.key.clone(), answers);
        }
        FlagsView {
            set,
            size,
            built_at,
            tokens,
            revoked,
            bodies,
        }
    }

    /// `res` as JSON (OFREP's `serverEvaluationSuccess`): for an evaluation of this view's
    /// flags, a copy of the answer serialised when the view was built (an evaluation then
    /// serialises nothing and shares no counter); any other resolution is serialised.
    pub fn body(&self, res: &Resolution<'_>) -> bytes::Bytes {
        self.prebuilt(res).map_or_else(
            || bytes::Bytes::from(serde_json::to_vec(res).unwrap_or_default()),
            bytes::Bytes::copy_from_slice,
        )
    }

    /// The answer serialised when the view was built, for an evaluation of this view's flags.
    fn prebuilt(&self, res: &Resolution<'_>) -> Option<&[u8]> {
        let ours = self.set.get(res.key).is_some_and(|f| {
            std::ptr::eq(res.metadata, &f.metadata)
                && f.variants
                    .get(res.variant)
                    .is_some_and(|v| std::ptr::eq(v, res.value))
        });
        self.bodies
            .get(res.key)
            .filter(|_| ours)
            .and_then(|answers| {
                answers
                    .iter()
                    .find(|(v, r, _)| v == res.variant && *r == res.reason)
            })
            .map(|(_, _, json)| &json[..])
    }
}

/// The flags of this replica and the channel that announces a new set.
#[derive(Debug)]
pub struct FlagHub {
    current: arc_swap::ArcSwap<FlagsView>,
    version: watch::Sender<u64>,
    stale_since: RwLock<Option<jiff::Timestamp>>,
}

impl Default for FlagHub {
    fn default() -> FlagHub {
        FlagHub {
            current: arc_swap::ArcSwap::from_pointee(FlagsView::new(
                FlagSet::new(BTreeMap::new()),
                -1,
                jiff::Timestamp::UNIX_EPOCH,
                BTreeSet::new(),
                BTreeSet::new(),
            )),
            version: watch::channel(0).0,
            stale_since: RwLock::new(None),
        }
    }
}

impl FlagHub {
    /// The current set, to keep (one `Arc` clone).
    pub fn view(&self) -> Arc<FlagsView> {
        self.current.load_full()
    }

    /// The current set, to read now (no lock, no shared counter touched: the evaluation path).
    pub fn current(&self) -> arc_swap::Guard<Arc<FlagsView>> {
        self.current.load()
    }

    /// Whether a set has been built from the log yet.
    pub fn is_built(&self) -> bool {
        self.view().size >= 0
    }

    /// Since when the database could not be read (the last set is served meanwhile).
    pub fn stale_since(&self) -> Option<jiff::Timestamp> {
        self.stale_since.read().ok().and_then(|g| *g)
    }

    /// A receiver of the set's version, bumped on every new set.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The version now.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Installs `view` if it was built from a longer log than the current one, and returns
    /// the set it replaced. Two refreshes may race (a write here and the poll loop): the set
    /// of the longer log wins, so an older snapshot never undoes a newer kill.
    fn install(&self, view: FlagsView) -> Option<Arc<FlagsView>> {
        let view = Arc::new(view);
        let before = self.current.rcu(|cur| {
            if cur.size < view.size {
                view.clone()
            } else {
                cur.clone()
            }
        });
        (before.size < view.size).then_some(before)
    }

    /// Rebuilds from the cache's snapshot if the log moved; records a failure to read it.
    /// Returns whether a new set was installed.
    pub async fn refresh(
        &self,
        cache: &Cache,
        drills: &crate::drill::Drills,
        now: jiff::Timestamp,
    ) -> bool {
        match cache.snapshot().await {
            Ok(snap) => {
                if let Ok(mut g) = self.stale_since.write() {
                    *g = None;
                }
                if snap.state.size == self.view().size {
                    return false;
                }
                let view = FlagsView::new(
                    build(&snap.state),
                    snap.state.size,
                    now,
                    snap.state.tokens.clone(),
                    snap.state.revoked_tokens.clone(),
                );
                for a in snap.state.agents.values() {
                    if let (Some(k), Some(r)) = (&a.kill, &a.rollout)
                        && k.drill
                        && let Ok(at) = k.at.parse()
                    {
                        drills.start(&r.plan.flag, at);
                    }
                }
                let Some(before) = self.install(view) else {
                    return false;
                };
                drills.settle(|flag| {
                    snap.state.agents.values().any(|a| {
                        a.kill.as_ref().is_some_and(|k| k.drill)
                            && a.rollout.as_ref().is_some_and(|r| r.plan.flag == flag)
                    })
                });
                let changed = self.current().set.etag() != before.set.etag();
                if changed {
                    self.version.send_modify(|v| *v += 1);
                }
                changed
            }
            Err(e) => {
                if let Ok(mut g) = self.stale_since.write()
                    && g.is_none()
                {
                    tracing::error!(error = %e, "flags: the registry cannot be read; serving the last known flags");
                    *g = Some(now);
                }
                false
            }
        }
    }
}

/// Keeps `hub` current: on every cache change signal, and every `poll` at the latest.
pub async fn run(
    hub: Arc<FlagHub>,
    cache: Arc<Cache>,
    drills: Arc<crate::drill::Drills>,
    clock: crate::ClockFn,
    poll: std::time::Duration,
) {
    loop {
        hub.refresh(&cache, &drills, clock()).await;
        tokio::select! {
            () = cache.changed() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// The flags of every agent with a rollout.
pub fn build(state: &State) -> FlagSet {
    let mut flags = BTreeMap::new();
    for (agent, a) in &state.agents {
        let Some(r) = &a.rollout else { continue };
        let disabled = a.kill.is_some()
            || matches!(
                a.stage,
                Some(stagegate_core::stage::Stage::Paused | stagegate_core::stage::Stage::Retired)
            );
        let targeting = match r.exposure() {
            Exposure::Nobody => vec![Rule::Variant("off".into())],
            Exposure::Everyone => vec![Rule::Variant("on".into())],
            Exposure::Percent { pct } => {
                // Weights in thousandths of a percent: 12.5% is 12,500 of 100,000.
                let on = (pct * 1000.0).round().clamp(0.0, 100_000.0) as u32;
                vec![Rule::Fractional {
                    variants: vec![("on".into(), on), ("off".into(), 100_000 - on)],
                }]
            }
            Exposure::Cohorts { cohorts } => {
                let mut rules: Vec<Rule> = cohorts
                    .into_iter()
                    .map(|(attribute, values)| Rule::InCohort {
                        attribute,
                        values,
                        variant: "on".into(),
                    })
                    .collect();
                rules.push(Rule::Variant("off".into()));
                rules
            }
        };
        let mut metadata = BTreeMap::new();
        metadata.insert("agent".to_owned(), serde_json::Value::from(agent.clone()));
        metadata.insert(
            "rolloutStatus".to_owned(),
            serde_json::Value::from(r.status_name()),
        );
        metadata.insert(
            "phase".to_owned(),
            serde_json::Value::from(r.current().map_or("0%", |p| p.name.as_str())),
        );
        metadata.insert(
            "event".to_owned(),
            serde_json::Value::from(a.act_seq.max(r.last_seq)),
        );
        if let Some(k) = &a.kill {
            metadata.insert(
                "killedBy".to_owned(),
                serde_json::Value::from(k.person.clone()),
            );
            metadata.insert("drill".to_owned(), serde_json::Value::from(k.drill));
        }
        flags.insert(
            r.plan.flag.clone(),
            Flag {
                key: r.plan.flag.clone(),
                state: if disabled {
                    FlagState::Disabled
                } else {
                    FlagState::Enabled
                },
                variants: BTreeMap::from([
                    ("on".to_owned(), serde_json::Value::Bool(true)),
                    ("off".to_owned(), serde_json::Value::Bool(false)),
                ]),
                default_variant: "off".into(),
                targeting,
                metadata,
            },
        );
    }
    FlagSet::new(flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagegate_flags::EvaluationContext;

    fn flag(key: &str, state: FlagState, targeting: Vec<Rule>) -> Flag {
        Flag {
            key: key.into(),
            state,
            variants: BTreeMap::from([
                ("on".to_owned(), serde_json::Value::Bool(true)),
                ("off".to_owned(), serde_json::Value::Bool(false)),
            ]),
            default_variant: "off".into(),
            targeting,
            metadata: BTreeMap::from([(
                "agent".to_owned(),
                serde_json::Value::from(format!("agent \"{key}\"")),
            )]),
        }
    }

    #[test]
    fn the_set_of_the_longer_log_wins_a_race() {
        let hub = FlagHub::default();
        let view = |size, state| {
            let f = flag("agent-x-enabled", state, vec![Rule::Variant("on".into())]);
            FlagsView::new(
                FlagSet::new(BTreeMap::from([(f.key.clone(), f)])),
                size,
                jiff::Timestamp::UNIX_EPOCH,
                BTreeSet::new(),
                BTreeSet::new(),
            )
        };
        assert!(
            hub.install(view(11, FlagState::Disabled)).is_some(),
            "the kill"
        );
        assert!(
            hub.install(view(10, FlagState::Enabled)).is_none(),
            "a snapshot from before the kill arrives late"
        );
        assert_eq!(hub.current().size, 11);
        assert_eq!(
            hub.current().set.get("agent-x-enabled").unwrap().state,
            FlagState::Disabled
        );
        assert!(
            hub.install(view(11, FlagState::Enabled)).is_none(),
            "same size: kept"
        );
        assert!(hub.install(view(12, FlagState::Enabled)).is_some());
    }

    #[test]
    fn prebuilt_answers_are_the_serialised_resolutions() {
        let flags = [
            flag(
                "static",
                FlagState::Enabled,
                vec![Rule::Variant("on".into())],
            ),
            flag(
                "split",
                FlagState::Enabled,
                vec![Rule::Fractional {
                    variants: vec![("on".into(), 50_000), ("off".into(), 50_000)],
                }],
            ),
            flag(
                "cohort",
                FlagState::Enabled,
                vec![
                    Rule::InCohort {
                        attribute: "department".into(),
                        values: vec!["finance".into()],
                        variant: "on".into(),
                    },
                    Rule::Variant("off".into()),
                ],
            ),
            flag(
                "killed",
                FlagState::Disabled,
                vec![Rule::Variant("on".into())],
            ),
        ];
        let set = FlagSet::new(flags.into_iter().map(|f| (f.key.clone(), f)).collect());
        let view = FlagsView::new(
            set,
            1,
            jiff::Timestamp::UNIX_EPOCH,
            BTreeSet::new(),
            BTreeSet::new(),
        );
        let mut reasons = BTreeSet::new();
        for user in 0..40 {
            for department in ["finance", "hr"] {
                let ctx = EvaluationContext {
                    targeting_key: Some(format!("user-{user}")),
                    attributes: serde_json::json!({ "department": department })
                        .as_object()
                        .cloned()
                        .unwrap(),
                };
                for key in ["static", "split", "cohort", "killed"] {
                    let res = view.set.evaluate(key, &ctx).unwrap();
                    reasons.insert(format!("{:?}/{}", res.reason, res.variant));
                    assert!(view.prebuilt(&res).is_some(), "{key}: served prebuilt");
                    assert_eq!(
                        view.body(&res).as_ref(),
                        serde_json::to_vec(&res).unwrap().as_slice(),
                        "{key} for user-{user} in {department}"
                    );
                }
            }
        }
        // Every reason the flags can give was met, both sides of the split among them.
        assert_eq!(
            reasons.into_iter().collect::<Vec<_>>(),
            [
                "Disabled/off",
                "Split/off",
                "Split/on",
                "Static/on",
                "TargetingMatch/off",
                "TargetingMatch/on"
            ]
        );
        // A resolution the view did not build (another metadata) is serialised as it comes.
        let other = BTreeMap::new();
        let res = Resolution {
            metadata: &other,
            ..view
                .set
                .evaluate("static", &EvaluationContext::default())
                .unwrap()
        };
        assert!(view.prebuilt(&res).is_none());
        assert_eq!(
            view.body(&res).as_ref(),
            serde_json::to_vec(&res).unwrap().as_slice()
        );
    }
}
