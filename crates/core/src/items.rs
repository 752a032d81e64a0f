//! The rules that decide checklist items 1–10, one function per rule.
//!
//! Each rule gathers *findings*: what holds (met), what is not shown yet (missing), and what
//! the evidence contradicts (violation). [`Findings::finish`] turns them into a status:
//! any violation → ❌; anything missing → ⚠️ only when an open-item record names one owner and
//! a due date, else ❌; nothing missing and at least one piece of evidence → ✅. No evidence is
//! never ✅ (issue "main job" §5; seed 001 usage notes: "Force actual evidence").

use crate::card::{AgentCard, CriterionSource, Hypothesis};
use crate::decision::Status;
use crate::evidence::{
    ApprovalSubject, DrillResult, Evidence, EvidenceKind, GuardrailAction, SignoffRole,
};
use crate::gates::GateTemplate;
use crate::person::{check_named_person, same_person};
use crate::review::{
    CriteriaLock, CriterionResult, HypothesisSummary, Interval, ItemResult, Measurement,
    MoreEvents, OpenItem, SignoffRow, Target, Verdict,
};
use jiff::civil::Date;
use jiff::{Span, ToSpan};
use std::collections::{BTreeMap, BTreeSet};

/// What a rule found.
#[derive(Debug, Default)]
pub struct Findings {
    met: Vec<String>,
    missing: Vec<String>,
    violations: Vec<String>,
    inconclusive: Vec<String>,
    notes: Vec<String>,
    evidence: BTreeSet<String>,
}

impl Findings {
    fn met(&mut self, s: impl Into<String>) {
        self.met.push(s.into());
    }
    fn missing(&mut self, s: impl Into<String>) {
        self.missing.push(s.into());
    }
    fn violation(&mut self, s: impl Into<String>) {
        self.violations.push(s.into());
    }
    fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }
    fn cite(&mut self, path: &str) {
        self.evidence.insert(path.to_owned());
    }

    /// Turns findings into an item result (rule in the module docs; an inconclusive criterion
    /// makes the item ⚠️ whatever open items exist — the review drafts one). `open_items` are the
    /// open-item records for this item; `can_be_open` is false for item 10 (a sign-off
    /// cannot be deferred).
    pub fn finish(
        mut self,
        number: u8,
        title: &str,
        open_items: &[OpenItem],
        can_be_open: bool,
    ) -> ItemResult {
        if self.violations.is_empty() && self.missing.is_empty() && self.evidence.is_empty() {
            self.missing.push("no evidence supports this item".into());
        }
        let mut reasons = Vec::new();
        let status = if !self.violations.is_empty() {
            reasons.extend(self.violations);
            reasons.extend(self.missing);
            Status::Fail
        } else if !self.missing.is_empty() {
            reasons.extend(self.missing);
            let valid: Vec<&OpenItem> = open_items
                .iter()
                .filter(|o| o.problems.is_empty())
                .collect();
            if !can_be_open {
                Status::Fail
            } else if !valid.is_empty() {
                for o in &valid {
                    reasons.push(format!(
                        "open item: {} — owner {}, due {}",
                        o.what,
                        o.owner.as_deref().unwrap_or("?"),
                        o.due.map(|d| d.to_string()).unwrap_or_else(|| "?".into())
                    ));
                }
                Status::Open
            } else {
                if open_items.is_empty() {
                    reasons.push("no open-item record with one named owner and a due date".into());
                }
                for o in open_items {
                    reasons.push(format!(
                        "open item {} does not count: {}",
                        o.source,
                        o.problems.join("; ")
                    ));
                }
                Status::Fail
            }
        } else if !self.inconclusive.is_empty() {
            reasons.extend(self.inconclusive);
            reasons.extend(self.met);
            Status::Open
        } else {
            reasons.extend(self.met);
            Status::Pass
        };
        ItemResult {
            number,
            title: title.to_owned(),
            status,
            reasons,
            notes: self.notes,
            evidence: self.evidence.into_iter().collect(),
        }
    }
}

/// Valid records supporting `item`, of `kind` — or, with `None`, of any kind that *shows*
/// something: open items, approvals and sign-offs are about the item, not proof of it.
fn valid_for(evidence: &[Evidence], item: u8, kind: Option<EvidenceKind>) -> Vec<&Evidence> {
    evidence
        .iter()
        .filter(|e| e.is_valid() && e.supports(item))
        .filter(|e| match kind {
            Some(k) => e.record.kind == k,
            None => !matches!(
                e.record.kind,
                EvidenceKind::OpenItem | EvidenceKind::Approval | EvidenceKind::Signoff
            ),
        })
        .collect()
}

/// Notes for records that claim an item but do not count, so the report shows them.
fn note_invalid(f: &mut Findings, evidence: &[Evidence], item: u8) {
    for e in evidence
        .iter()
        .filter(|e| e.supports(item) && !e.is_valid())
    {
        if let crate::evidence::Validity::Invalid(why) = &e.validity {
            f.note(format!("{} not counted: {why}", e.path));
        }
    }
}

/// Item 1 — seed 001 "1. Pilot success criteria met": numbers from the pilot match or exceed
/// the pre-set criteria; "Don't move goalposts" (criteria that differ from the locked digest
/// fail unless the sponsor or the CoE lead signed a `criteria_change` approval of the new
/// digest). No evidence, no pass: a telemetry criterion over fewer rows than its minimum
/// sample is "no data", and the item cannot pass when the pilot window holds no telemetry.
/// The lock must show the criteria were set before the pilot: a lock dated after the pilot
/// ended, or recorded (machine clock) after the pilot ended though dated earlier, does not.
#[allow(clippy::too_many_arguments)]
pub fn item1_success_criteria(
    card: &AgentCard,
    evidence: &[Evidence],
    measurements: &BTreeMap<String, Measurement>,
    telemetry_files: &[String],
    lock: Option<&CriteriaLock>,
    criteria_digest: &str,
    allowed: Option<&crate::signing::AllowedSigners>,
    telemetry_rows: u64,
) -> (Findings, Vec<CriterionResult>) {
    let mut f = Findings::default();
    let mut results = Vec::new();
    let uses_telemetry = card
        .success_criteria
        .iter()
        .any(|c| c.source == CriterionSource::Telemetry);
    if uses_telemetry && telemetry_rows == 0 {
        f.missing(format!(
            "the pilot window {}..{} holds no telemetry rows: nothing was measured",
            card.pilot.start, card.pilot.end
        ));
    }
    for c in &card.success_criteria {
        let (measured, source_path) = match c.source {
            CriterionSource::Telemetry => {
                let min = card.minimum_sample(c);
                // An exact tally with a `where` filter (Sev-1 incidents) counts matching rows
                // only: its sample is every row in the pilot window.
                let tally = c.metric.as_ref().is_some_and(|m| {
                    matches!(
                        m.kind,
                        crate::metric::MetricKind::Count
                            | crate::metric::MetricKind::Sum
                            | crate::metric::MetricKind::Distinct
                            | crate::metric::MetricKind::Adoption
                    )
                });
                let m = measurements.get(&c.id).cloned().map(|mut m| {
                    let sample = if tally { telemetry_rows.max(m.rows) } else { m.rows };
                    if sample < min {
                        m.note = Some(if sample == 0 {
                            "no telemetry rows in the pilot window".to_owned()
                        } else {
                            format!(
                                "{sample} rows in the pilot window, fewer than the minimum sample of {min}"
                            )
                        });
                        m.value = None;
                        m.interval = None;
                        m.more_events = None;
                    }
                    m
                });
                (m, None)
            }
            CriterionSource::Evidence => {
                let rec = evidence
                    .iter()
                    .filter(|e| e.is_valid() && e.record.kind == EvidenceKind::Metric)
                    .filter(|e| {
                        e.record
                            .metric
                            .as_ref()
                            .is_some_and(|m| m.criterion == c.id)
                    })
                    .max_by_key(|e| (e.record.date, e.path.clone()));
                match rec {
                    Some(e) => (
                        e.record.metric.as_ref().map(|m| Measurement {
                            value: Some(m.value),
                            rows: 1,
                            note: Some(m.method.clone()),
                            ..Measurement::default()
                        }),
                        Some(e.path.clone()),
                    ),
                    None => (None, None),
                }
            }
        };
        let actual = measured.as_ref().and_then(|m| m.value);
        let interval = measured.as_ref().and_then(|m| m.interval);
        let sampled = measured.as_ref().is_some_and(|m| m.sampled);
        let target = c.target();
        let verdict = Verdict::judge(c.comparator, target, actual, interval.as_ref(), sampled);
        // Only an undecided criterion needs more events (an interval ending exactly on the
        // threshold decides `<=` though it does not exclude it).
        let more_events = measured
            .as_ref()
            .and_then(|m| m.more_events)
            .filter(|_| verdict == Verdict::Inconclusive);
        let hypothesis = c.compare.as_ref().and_then(|cmp| {
            (!cmp.hypothesis.is_superiority()).then(|| {
                let (from, to) = match target {
                    stagegate_stats::interval::Target::Band(lo, hi) => (Some(lo), Some(hi)),
                    stagegate_stats::interval::Target::Limit(t) => match c.comparator {
                        crate::card::Comparator::Ge | crate::card::Comparator::Gt => {
                            (Some(t), None)
                        }
                        _ => (None, Some(t)),
                    },
                };
                HypothesisSummary {
                    kind: cmp.hypothesis,
                    margin: cmp.margin.unwrap_or(0.0),
                    one_sided_confidence: card.confidence(),
                    accept_from: from,
                    accept_to: to,
                }
            })
        });
        let wanted = target_text(c.comparator, target, c.hypothesis());
        let note = measured.as_ref().and_then(|m| m.note.clone());
        let unit_role = c.compare.as_ref().and_then(|k| k.unit.as_deref());
        if let Some(n) = &note
            && verdict != Verdict::NoData
        {
            f.note(format!("{}: {n}", c.id));
        }
        let met = match verdict {
            Verdict::Met => Some(true),
            Verdict::NotMet => Some(false),
            Verdict::Inconclusive | Verdict::NoData => None,
        };
        let shown = |a: Option<f64>| {
            let a = a.map(fmt_value).unwrap_or_else(|| "undefined".into());
            match &interval {
                Some(i) => format!("{a} {}", fmt_interval(i)),
                None => a,
            }
        };
        let metric_text = match (&c.metric, &c.compare) {
            (Some(m), Some(cmp)) => format!(
                "{} vs {}{}",
                m.describe(),
                match cmp.against {
                    crate::card::Against::Baseline => cmp
                        .baseline
                        .as_ref()
                        .map(|w| format!("baseline {}..{}", w.start, w.end))
                        .unwrap_or_else(|| "baseline".into()),
                    crate::card::Against::Control => format!(
                        "control cohort {}",
                        cmp.control_cohort.as_deref().unwrap_or("?")
                    ),
                },
                match cmp.effect {
                    crate::card::EffectScale::Absolute => " (difference)",
                    crate::card::EffectScale::Relative => " (relative change)",
                }
            ),
            (Some(m), None) => m.describe(),
            (None, _) => "evidence record".to_owned(),
        };
        match verdict {
            Verdict::Met => f.met(format!("{}: {} {wanted} (met)", c.id, shown(actual))),
            Verdict::Inconclusive => f.inconclusive.push(format!(
                "{}: {} — inconclusive against {wanted}: {}",
                c.id,
                shown(actual),
                undecided_reason(interval.as_ref(), more_events, note.as_deref(), unit_role)
            )),
            Verdict::NotMet => f.violation(format!(
                "{}: {} does not meet {wanted}",
                c.id,
                shown(actual)
            )),
            Verdict::NoData => f.missing(format!(
                "{}: no measured value ({})",
                c.id,
                measured
                    .as_ref()
                    .and_then(|m| m.note.clone())
                    .unwrap_or_else(|| match c.source {
                        CriterionSource::Telemetry =>
                            "no telemetry rows in the pilot window".into(),
                        CriterionSource::Evidence => "no valid metric record names it".into(),
                    })
            )),
        }
        if let Some(u) = measured
            .as_ref()
            .and_then(|m| m.comparison.as_ref())
            .and_then(|k| k.unit.as_ref())
            .filter(|u| u.in_both_cohorts > 0)
        {
            f.missing(format!(
                "{}: {} units (`{}`) appear in both the pilot and the control cohort; a unit belongs to one arm, so they were left out — fix the assignment before trusting the comparison",
                c.id, u.in_both_cohorts, u.role
            ));
        }
        if let Some(srm) = measured
            .as_ref()
            .and_then(|m| m.comparison.as_ref())
            .and_then(|c| c.srm.as_ref())
            .filter(|s| s.flagged)
        {
            f.missing(format!(
                "{}: sample-ratio mismatch — {} pilot vs {} control units against an assigned pilot share of {} (χ² = {}, p = {:.2e}); the comparison cannot be trusted until the assignment is fixed",
                c.id,
                srm.pilot_units,
                srm.control_units,
                fmt_value(srm.expected_pilot_share),
                fmt_value(srm.chi2),
                srm.p_value
            ));
        }
        if let Some(p) = &source_path {
            f.cite(p);
        }
        results.push(CriterionResult {
            id: c.id.clone(),
            description: c.description.clone(),
            metric: metric_text,
            comparator: c.comparator.symbol().to_owned(),
            threshold: c.threshold,
            unit: c.unit.clone(),
            baseline: c.baseline,
            actual,
            rows: measured.as_ref().map(|m| m.rows).unwrap_or(0),
            met,
            verdict,
            interval,
            interval_method: measured.as_ref().and_then(|m| m.interval_method.clone()),
            more_events,
            hypothesis,
            note,
            comparison: measured.as_ref().and_then(|m| m.comparison.clone()),
            indicator: c.indicator,
            series: measured.map(|m| m.series).unwrap_or_default(),
            evidence: source_path,
        });
    }
    if card
        .success_criteria
        .iter()
        .any(|c| c.source == CriterionSource::Telemetry)
        && measurements.values().any(|m| m.rows > 0)
    {
        for t in telemetry_files {
            f.cite(t);
        }
    }
    match lock {
        None => f.note(
            "criteria were not locked in the registry at pilot start (`stagegate pilot start`); \
             nothing shows they were set before the pilot",
        ),
        Some(l) => {
            lock_timing(&mut f, card, l);
            if l.digest == criteria_digest {
                f.met(format!(
                    "criteria match those locked on {} by {}",
                    l.locked_at, l.by
                ));
            } else {
                criteria_reapproval(&mut f, card, evidence, l, criteria_digest, allowed);
            }
        }
    }
    note_invalid(&mut f, evidence, 1);
    (f, results)
}

/// Flags a lock that does not show the criteria were set before the pilot: dated after the
/// pilot ended, or recorded after it ended though dated earlier (backdated), and says when a
/// lock's recording time came from `STAGEGATE_NOW` rather than the machine clock.
fn lock_timing(f: &mut Findings, card: &AgentCard, l: &CriteriaLock) {
    let end = card.pilot.end;
    let recorded = l
        .recorded_at
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date());
    if l.locked_at > end {
        f.missing(format!(
            "criteria locked on {}, after the pilot ended on {end}: the lock cannot show they were set before the numbers were known",
            l.locked_at
        ));
    } else if let Some(r) = recorded.filter(|r| *r > end) {
        f.missing(format!(
            "criteria lock dated {} but recorded on {r}, after the pilot ended on {end}: a backdated lock cannot show they were set before the numbers were known",
            l.locked_at
        ));
    } else if let Some(r) = recorded.filter(|r| *r > l.locked_at) {
        f.note(format!(
            "criteria lock dated {} was recorded on {r}",
            l.locked_at
        ));
    }
    if l.clock_overridden {
        f.note(format!(
            "the criteria lock's recording time{} came from STAGEGATE_NOW, not the machine clock: a replay registry (a registry kept on the machine clock refuses STAGEGATE_NOW)",
            l.recorded_at.map(|t| format!(" {t}")).unwrap_or_default()
        ));
    }
}

/// Changed criteria pass only with a signed `criteria_change` approval of the new digest by
/// the sponsor or the CoE lead (never the builder alone; seed 001 item 1 and its pitfall
/// "Moving the goalposts").
fn criteria_reapproval(
    f: &mut Findings,
    card: &AgentCard,
    evidence: &[Evidence],
    l: &CriteriaLock,
    criteria_digest: &str,
    allowed: Option<&crate::signing::AllowedSigners>,
) {
    let mut refused = Vec::new();
    for e in evidence.iter().filter(|e| e.is_valid()) {
        let Some(a) = e.record.approval.as_ref() else {
            continue;
        };
        if a.subject != ApprovalSubject::CriteriaChange
            || a.criteria_digest.as_deref() != Some(criteria_digest)
        {
            continue;
        }
        let checked = crate::signing::criteria_change_approver(card, &a.by).and_then(|p| {
            let statement = crate::signing::criteria_change_statement(
                &card.id,
                criteria_digest,
                &p.name,
                e.record.date,
            );
            crate::signing::check(
                allowed,
                p,
                &statement,
                e.record.signature.as_deref(),
                e.record.date,
            )
        });
        match checked {
            Ok(v) => {
                f.met(format!(
                    "criteria changed since the lock of {}; re-approved by {} on {} (key {})",
                    l.locked_at, a.by, e.record.date, v.fingerprint
                ));
                f.cite(&e.path);
                return;
            }
            Err(why) => refused.push(format!("{} by {}: {why}", e.path, a.by)),
        }
    }
    let mut msg = format!(
        "criteria differ from those locked on {} ({}); no signed approval by the sponsor or the CoE lead re-approves {} — don't move goalposts",
        l.locked_at,
        short(&l.digest),
        short(criteria_digest)
    );
    if !refused.is_empty() {
        msg.push_str(&format!(" (refused: {})", refused.join("; ")));
    }
    f.violation(msg);
}

/// Item 2 — seed 001 "2. Monitoring dashboards live and being watched": "name who looks at
/// them and when"; dashboards without a named watcher and cadence fail.
pub fn item2_dashboards(card: &AgentCard, evidence: &[Evidence]) -> Findings {
    let mut f = Findings::default();
    if card.monitoring.dashboards.is_empty() {
        f.violation("no dashboard declared in the card (monitoring.dashboards)");
    }
    for d in &card.monitoring.dashboards {
        match d.watcher.as_deref() {
            None => f.violation(format!("dashboard {}: nobody named to watch it", d.name)),
            Some(w) => match check_named_person(w) {
                Err(why) => f.violation(format!("dashboard {}: watcher \"{w}\" {why}", d.name)),
                Ok(()) => match d.cadence.as_deref().map(str::trim) {
                    None | Some("") => {
                        f.violation(format!("dashboard {}: no cadence for {w}", d.name))
                    }
                    Some(c) => f.met(format!("{} watched by {w}, {c}", d.name)),
                },
            },
        }
    }
    let recs = valid_for(evidence, 2, None);
    if recs.is_empty() {
        f.missing("no evidence the dashboards are live and watched (a link or document record)");
    }
    for e in recs {
        f.cite(&e.path);
    }
    note_invalid(&mut f, evidence, 2);
    f
}

/// Item 3 — seed 001 "3. On-call defined": primary and backup both named, paged through the
/// paging system, weekend coverage defined; "'The team' is on call (i.e., no one)" fails.
pub fn item3_on_call(card: &AgentCard, evidence: &[Evidence]) -> Findings {
    let mut f = Findings::default();
    let oc = &card.people.on_call;
    for (role, p) in [("primary", &oc.primary), ("backup", &oc.backup)] {
        match check_named_person(&p.name) {
            Ok(()) => f.met(format!("{role}: {}", p.name)),
            Err(why) => f.violation(format!("on-call {role} \"{}\" {why}", p.name)),
        }
    }
    if same_person(&oc.primary.name, &oc.backup.name) {
        f.violation("on-call backup is the same person as the primary");
    }
    if oc.pager.system.trim().is_empty()
        || oc.pager.primary_schedule.trim().is_empty()
        || oc.pager.backup_schedule.trim().is_empty()
    {
        f.violation("pager system or schedules are blank");
    } else {
        f.met(format!(
            "paged via {} ({} / {})",
            oc.pager.system, oc.pager.primary_schedule, oc.pager.backup_schedule
        ));
    }
    match oc.weekend_coverage.as_deref().map(str::trim) {
        None | Some("") => f.missing("weekend coverage not defined"),
        Some(w) => f.met(format!("weekend: {w}")),
    }
    let recs = valid_for(evidence, 3, None);
    if recs.is_empty() {
        f.missing("no evidence the pager schedules exist (a link or document record)");
    }
    for e in recs {
        f.cite(&e.path);
    }
    note_invalid(&mut f, evidence, 3);
    f
}

/// Item 4 — seed 001 "4. Runtime guardrails confirmed firing": each guardrail of Agent Card §6
/// "tested with an actual triggering input. Logs confirm the guardrail fired and blocked or
/// escalated correctly."
pub fn item4_guardrails(card: &AgentCard, evidence: &[Evidence]) -> Findings {
    let mut f = Findings::default();
    if card.guardrails.is_empty() {
        f.violation("the card declares no runtime guardrail");
    }
    let tests = valid_for(evidence, 4, Some(EvidenceKind::GuardrailTest));
    for g in &card.guardrails {
        let mine: Vec<&&Evidence> = tests
            .iter()
            .filter(|e| {
                e.record
                    .guardrail_test
                    .as_ref()
                    .is_some_and(|t| t.guardrail == g.id)
            })
            .collect();
        let fired = mine.iter().find(|e| {
            e.record
                .guardrail_test
                .as_ref()
                .is_some_and(|t| t.fired && t.action != GuardrailAction::None)
        });
        match (fired, mine.is_empty()) {
            (Some(e), _) => {
                f.met(format!("{} fired on {} ({})", g.id, e.record.date, e.path));
                f.cite(&e.path);
            }
            (None, false) => {
                for e in &mine {
                    f.cite(&e.path);
                }
                f.violation(format!("{}: tested but did not fire", g.id));
            }
            (None, true) => f.missing(format!("{}: no test with an actual triggering input", g.id)),
        }
    }
    for e in &tests {
        if let Some(t) = &e.record.guardrail_test
            && !card.guardrails.iter().any(|g| g.id == t.guardrail)
        {
            f.note(format!(
                "{} tests `{}`, which the card does not declare",
                e.path, t.guardrail
            ));
        }
    }
    note_invalid(&mut f, evidence, 4);
    f
}

/// Item 5 — seed 001 "5. Identity + rotation": identity in the IdP; credentials "rotated at
/// least once during pilot — proving rotation actually works" (the agent kept operating).
pub fn item5_identity_rotation(card: &AgentCard, evidence: &[Evidence]) -> Findings {
    let mut f = Findings::default();
    if card.identity.principal.trim().is_empty() || card.identity.idp.trim().is_empty() {
        f.violation("no identity in an IdP (identity.idp / identity.principal)");
    } else {
        f.met(format!(
            "{} in {}",
            card.identity.principal, card.identity.idp
        ));
    }
    let rotations = valid_for(evidence, 5, Some(EvidenceKind::Rotation));
    let (start, end) = (card.pilot.start, card.pilot.end);
    let mut in_window_ok = false;
    for e in &rotations {
        let Some(r) = &e.record.rotation else {
            continue;
        };
        let d = e.record.date;
        if d < start || d > end {
            f.note(format!(
                "{} rotated {d}, outside the pilot window {start}..{end}",
                r.credential
            ));
            continue;
        }
        f.cite(&e.path);
        if r.agent_kept_operating {
            in_window_ok = true;
            f.met(format!(
                "{} rotated {d} (day {} of pilot), agent kept operating",
                r.credential,
                (d - start).get_days() + 1
            ));
        } else {
            f.note(format!(
                "{} rotated {d} and the agent stopped operating",
                r.credential
            ));
        }
    }
    if !in_window_ok {
        if rotations.iter().any(|e| {
            e.record
                .rotation
                .as_ref()
                .is_some_and(|r| !r.agent_kept_operating)
        }) {
            f.violation("the only rotation(s) during the pilot broke the agent");
        } else {
            f.missing("no credential rotated during the pilot with the agent still operating");
        }
    }
    note_invalid(&mut f, evidence, 5);
    f
}

/// Item 6 — seed 001 "6. Audit log retention": "Period matches the tier and any applicable
/// sector regulation"; the template sets the minimum per tier (medium/high ≥ 180 days) and per
/// regime (e.g. SOX 7 years).
pub fn item6_audit_retention(
    card: &AgentCard,
    template: &GateTemplate,
    evidence: &[Evidence],
) -> Findings {
    let mut f = Findings::default();
    let min = template.retention_minimum(card.tier, &card.audit_log.regimes);
    for r in &min.unknown_regimes {
        f.violation(format!(
            "regime `{r}` is not in the gate template's retention table; its minimum cannot be checked"
        ));
    }
    let have = card.audit_log.effective_days();
    let stores = card
        .audit_log
        .stores
        .iter()
        .map(|s| format!("{} {} days", s.storage, s.retention_days))
        .collect::<Vec<_>>()
        .join(", ");
    if have < min.days {
        f.violation(format!(
            "retention {have} days is below the {} days required ({})",
            min.days, min.source
        ));
    } else {
        f.met(format!(
            "{stores} — meets {} days ({})",
            min.days, min.source
        ));
    }
    let recs = valid_for(evidence, 6, None);
    if recs.is_empty() {
        f.missing("no evidence the retention is configured (a verification record)");
    }
    for e in recs {
        f.cite(&e.path);
    }
    note_invalid(&mut f, evidence, 6);
    f
}

/// Item 7 — seed 001 "7. Runbook + on-call comprehension": the runbook exists and is current,
/// and the named on-call answers three questions without looking (kill in 60 seconds; top 3
/// failure modes; where the logs are). The acknowledgment must attach the current runbook.
pub fn item7_runbook(
    card: &AgentCard,
    evidence: &[Evidence],
    runbook_sha256: Option<&str>,
) -> Findings {
    let mut f = Findings::default();
    let Some(rb) = runbook_sha256 else {
        f.violation(format!("runbook not found at {}", card.runbook));
        note_invalid(&mut f, evidence, 7);
        return f;
    };
    let rb_hex = rb.strip_prefix("sha256:").unwrap_or(rb);
    f.cite(&card.runbook);
    let acks = valid_for(evidence, 7, Some(EvidenceKind::Acknowledgment));
    let primary = &card.people.on_call.primary.name;
    let mut primary_ok = false;
    for e in &acks {
        let Some(a) = &e.record.acknowledgment else {
            continue;
        };
        let is_on_call = same_person(&a.person, primary)
            || same_person(&a.person, &card.people.on_call.backup.name);
        if !is_on_call {
            f.note(format!("{}: {} is not the named on-call", e.path, a.person));
            continue;
        }
        f.cite(&e.path);
        let current = e.record.attachments.iter().any(|x| x.sha256 == rb_hex);
        let answers = &a.answers;
        let modes = answers
            .failure_modes
            .iter()
            .filter(|m| !m.trim().is_empty())
            .count();
        let mut gaps = Vec::new();
        if answers.kill_switch.trim().is_empty() {
            gaps.push("how to kill the agent in 60 seconds");
        }
        if modes < 3 {
            gaps.push("the top 3 failure modes");
        }
        if answers.logs.trim().is_empty() {
            gaps.push("where the logs are");
        }
        if !current {
            f.missing(format!(
                "{} acknowledged a runbook other than the current {} (attach it with its sha256)",
                a.person, card.runbook
            ));
        } else if !gaps.is_empty() || !a.passed {
            f.violation(format!(
                "{} did not pass the comprehension check{}",
                a.person,
                if gaps.is_empty() {
                    String::new()
                } else {
                    format!(" (no answer on {})", gaps.join(", "))
                }
            ));
        } else if same_person(&a.person, primary) {
            primary_ok = true;
            f.met(format!(
                "{} read {} and passed the comprehension check on {}",
                a.person, card.runbook, e.record.date
            ));
        } else {
            f.met(format!(
                "backup {} also passed on {}",
                a.person, e.record.date
            ));
        }
    }
    if !primary_ok && !f.violations.iter().any(|v| v.contains(primary.as_str())) {
        f.missing(format!(
            "no acknowledgment with the three comprehension answers from the on-call primary {primary}"
        ));
    }
    note_invalid(&mut f, evidence, 7);
    f
}

/// Item 8 — seed 001 "8. Communication plan": "Specific Slack posts, email digests, exec
/// briefings — drafted and scheduled, not just 'we'll announce it.'"
pub fn item8_communication(evidence: &[Evidence]) -> Findings {
    let mut f = Findings::default();
    let recs = valid_for(evidence, 8, None);
    let mut ready = 0;
    for e in &recs {
        f.cite(&e.path);
        match &e.record.communication {
            Some(c) if c.drafted && c.scheduled_for.is_some() => {
                ready += 1;
                f.met(format!(
                    "{} to {} drafted, scheduled {}",
                    c.channel,
                    c.audience,
                    c.scheduled_for.map(|d| d.to_string()).unwrap_or_default()
                ));
            }
            Some(c) => f.note(format!(
                "{} to {} is not drafted and scheduled",
                c.channel, c.audience
            )),
            None => {}
        }
    }
    if ready == 0 {
        f.missing("no communication drafted and scheduled");
    }
    note_invalid(&mut f, evidence, 8);
    f
}

/// Item 9 — seed 001 "9. Rollback / kill plan tested": "Within the past 30 days, the rollback
/// procedure has been executed end-to-end in a drill. Documented timing. Documented what
/// happens to in-flight work." The window is the template's `drill_window_days` before the
/// review date, inclusive.
pub fn item9_rollback_drill(
    card: &AgentCard,
    template: &GateTemplate,
    evidence: &[Evidence],
    as_of: Date,
) -> Findings {
    let mut f = Findings::default();
    if card.rollback.procedure.is_empty() || card.rollback.kill_switch.flag.trim().is_empty() {
        f.violation("rollback plan has no procedure or kill-switch flag");
    }
    let window = i64::from(template.drill_window_days);
    let earliest = as_of.checked_sub(Span::new().days(window)).unwrap_or(as_of);
    let mut drills = valid_for(evidence, 9, Some(EvidenceKind::Drill));
    drills.sort_by_key(|e| (e.record.date, e.path.clone()));
    let in_window: Vec<&&Evidence> = drills
        .iter()
        .filter(|e| e.record.date >= earliest)
        .collect();
    match in_window.last() {
        None => match drills.last() {
            Some(last) => f.missing(format!(
                "last drill {} was {} days before the review; it must be within {window} days",
                last.record.date,
                (as_of - last.record.date).get_days()
            )),
            None => f.missing("no rollback / kill drill recorded"),
        },
        Some(e) => {
            f.cite(&e.path);
            let d = e.record.drill.as_ref();
            match d {
                Some(d) if d.result == DrillResult::Failed => f.violation(format!(
                    "drill {} failed: {}",
                    e.record.date, e.record.summary
                )),
                Some(d) => {
                    if d.time_to_stop_seconds.is_none() {
                        f.missing(format!("drill {} documents no timing", e.record.date));
                    }
                    match d.in_flight.as_deref().map(str::trim) {
                        None | Some("") => f.missing(format!(
                            "drill {} documents nothing about in-flight work",
                            e.record.date
                        )),
                        Some(w) => {
                            if let Some(t) = d.time_to_stop_seconds {
                                f.met(format!(
                                    "drill {} ({} days before review): stopped in {} s; in-flight: {w}",
                                    e.record.date,
                                    (as_of - e.record.date).get_days(),
                                    fmt_value(t)
                                ));
                            }
                        }
                    }
                }
                None => {}
            }
        }
    }
    note_invalid(&mut f, evidence, 9);
    f
}

/// Item 10 — seed 001 "10. CoE Lead signs": builder and CoE lead sign this review; "If CoE
/// Lead is also the Builder … additionally seek peer review" — the named peer approver, who
/// is not the builder, signs too. A sign-off counts only as an SSH signature by the card's
/// person for that role, verified against the allowed-signers file, over
/// [`crate::signing::signoff_statement`] for this review (digest, outcome once signed, item
/// statuses), dated on or before the review. Unsigned records are reported and never count.
pub fn item10_signoff(
    card: &AgentCard,
    evidence: &[Evidence],
    subject: &crate::signing::SignoffSubject,
    as_of: Date,
    allowed: Option<&crate::signing::AllowedSigners>,
) -> (Findings, Vec<SignoffRow>) {
    let mut f = Findings::default();
    let mut rows = Vec::new();
    let mut needed = vec![SignoffRole::Builder, SignoffRole::CoeLead];
    if card.coe_lead_is_builder() {
        match crate::signing::signer_for(card, SignoffRole::PeerApprover) {
            Ok(p) if !same_person(&p.name, &card.people.coe_lead.name) => {
                needed.push(SignoffRole::PeerApprover);
            }
            Ok(_) => f.violation(
                "the CoE lead is also the builder and the card names no other peer approver (seed 001 item 10)",
            ),
            Err(why) => f.violation(format!("the CoE lead is also the builder and {why}")),
        }
    }
    for role in needed {
        let Ok(person) = crate::signing::signer_for(card, role) else {
            continue;
        };
        let name = person.name.clone();
        let mine: Vec<&Evidence> = evidence
            .iter()
            .filter(|e| e.record.signoff.as_ref().is_some_and(|s| s.role == role))
            .collect();
        let mut why = Vec::new();
        let mut good = None;
        for e in &mine {
            let s = e
                .record
                .signoff
                .as_ref()
                .map(|s| (s.name.as_str(), s.digest.as_str()));
            let Some((signer, digest)) = s else { continue };
            let problem = if !e.is_valid() {
                Some("is invalid".to_owned())
            } else if !same_person(signer, &name) {
                Some(format!(
                    "is by {signer}, but the card names {name} as {} (seed 001 item 10)",
                    role.title()
                ))
            } else if e.record.date > as_of {
                Some("is dated after the review".to_owned())
            } else if digest != subject.review_digest {
                Some(format!("signed an older digest {}", short(digest)))
            } else {
                let statement =
                    crate::signing::signoff_statement(subject, role, &name, e.record.date);
                match crate::signing::check(
                    allowed,
                    person,
                    &statement,
                    e.record.signature.as_deref(),
                    e.record.date,
                ) {
                    Ok(v) => {
                        if good.is_none() {
                            good = Some((*e, v));
                        }
                        None
                    }
                    Err(w) => Some(w),
                }
            };
            if let Some(p) = problem {
                why.push(format!("{} {p}", e.path));
            }
        }
        match good {
            Some((e, v)) => {
                f.met(format!(
                    "{} {name} signed on {} with key {}",
                    role.title(),
                    e.record.date,
                    v.fingerprint
                ));
                f.cite(&e.path);
                rows.push(SignoffRow {
                    role: role.title().to_owned(),
                    role_key: role,
                    name: name.clone(),
                    email: person.email.clone(),
                    date: Some(e.record.date),
                    signed: true,
                    key_fingerprint: Some(v.fingerprint),
                    signature: e.record.signature.clone(),
                    note: None,
                });
            }
            None => {
                let msg = if why.is_empty() {
                    format!(
                        "no sign-off by {} {name} over {}",
                        role.title(),
                        short(&subject.review_digest)
                    )
                } else {
                    format!("{} {name}: {}", role.title(), why.join("; "))
                };
                f.missing(msg.clone());
                rows.push(SignoffRow {
                    role: role.title().to_owned(),
                    role_key: role,
                    name: name.clone(),
                    email: person.email.clone(),
                    date: None,
                    signed: false,
                    key_fingerprint: None,
                    signature: None,
                    note: Some(msg),
                });
            }
        }
    }
    // Different people sign with different keys: one key behind two people's sign-offs (a
    // card e-mail or an allowed-signers line pointing at the builder's key) is one signer.
    for (i, a) in rows.iter().enumerate() {
        for b in &rows[i + 1..] {
            if a.signed
                && b.signed
                && !same_person(&a.name, &b.name)
                && a.key_fingerprint == b.key_fingerprint
            {
                f.violation(format!(
                    "{} {} and {} {} signed with the same key {}: the peer review must come from someone other than the builder (seed 001 item 10)",
                    a.role,
                    a.name,
                    b.role,
                    b.name,
                    a.key_fingerprint.as_deref().unwrap_or("?")
                ));
            }
        }
    }
    for e in evidence
        .iter()
        .filter(|e| e.record.kind == EvidenceKind::Signoff)
    {
        if let Some(s) = &e.record.signoff
            && !rows.iter().any(|r| r.role_key == s.role)
        {
            f.note(format!(
                "{}: {} signed as {}, a role this review does not need",
                e.path,
                s.name,
                s.role.title()
            ));
        }
    }
    (f, rows)
}

/// Formats a number for reports: integers without decimals, others to 4 significant digits
/// (at least one decimal, at most 8), trailing zeros trimmed; magnitudes from 10¹⁵ or below
/// 10⁻⁶ in scientific notation (`1.000e160`).
pub fn fmt_value(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "∞".into() } else { "-∞".into() };
    }
    // Past what fixed notation shows well: 4 significant digits in scientific notation.
    if x.abs() >= 1e15 || (x != 0.0 && x.abs() < 1e-6) {
        return format!("{x:.3e}");
    }
    if x.fract() == 0.0 {
        return format!("{x:.0}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(1, 8) as usize;
    let s = format!("{x:.decimals$}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// An interval for reports: `[low, high]`, with `−∞`/`+∞` for an unbounded side and the
/// coverage when it falls short of the level asked for.
pub fn fmt_interval(i: &Interval) -> String {
    let b = |x: f64| {
        if x == f64::INFINITY {
            "+∞".to_owned()
        } else if x == f64::NEG_INFINITY {
            "−∞".to_owned()
        } else {
            fmt_value(x)
        }
    };
    if i.reaches_confidence() {
        format!("[{}, {}]", b(i.low), b(i.high))
    } else {
        format!(
            "[{}, {}] (coverage {} < {})",
            b(i.low),
            b(i.high),
            fmt_value(i.coverage),
            fmt_value(i.confidence)
        )
    }
}

/// What a criterion must show, e.g. `<= 0.002 (non-inferiority, one-sided)` or
/// `within [-0.1, 0.1] (equivalence)`.
pub fn target_text(comparator: crate::card::Comparator, target: Target, h: Hypothesis) -> String {
    match (target, h) {
        (Target::Band(lo, hi), _) => {
            format!(
                "within [{}, {}] (equivalence)",
                fmt_value(lo),
                fmt_value(hi)
            )
        }
        (Target::Limit(t), Hypothesis::NonInferiority) => format!(
            "{} {} (non-inferiority, margin included)",
            comparator.symbol(),
            fmt_value(t)
        ),
        (Target::Limit(t), _) => format!("{} {}", comparator.symbol(), fmt_value(t)),
    }
}

/// Why a sampled criterion is not decided yet, and what would decide it. `note` is the
/// measurement's own account (no spread, too few units…); `unit` the unit of analysis, when
/// the events needed are counted in units.
pub fn undecided_reason(
    interval: Option<&Interval>,
    more: Option<MoreEvents>,
    note: Option<&str>,
    unit: Option<&str>,
) -> String {
    let need = more_events_text(more, unit);
    match interval {
        None => format!(
            "no interval at the card's confidence ({}); {need}",
            note.unwrap_or("too few values")
        ),
        Some(i) if !i.reaches_confidence() => format!(
            "the interval can only cover with probability {} (< {}); {need}",
            fmt_value(i.coverage),
            fmt_value(i.confidence)
        ),
        Some(_) => format!("the interval straddles it; {need}"),
    }
}

/// A [`MoreEvents`] in words; `unit` names the unit of analysis when the count is of units.
pub fn more_events_text(more: Option<MoreEvents>, unit: Option<&str>) -> String {
    let what = unit
        .map(|u| format!("units (`{u}`)"))
        .unwrap_or_else(|| "events".into());
    match more {
        Some(MoreEvents::Needed { events }) => {
            format!("about {events} more {what} would decide it")
        }
        Some(MoreEvents::Never) => {
            "no number of events decides it: the estimate sits exactly on the threshold".into()
        }
        Some(MoreEvents::BeyondLimit { limit }) => {
            format!("even {limit} more {what} would not decide it")
        }
        Some(MoreEvents::ForCoverage { events }) => {
            format!("at least {events} more {what} are needed before any verdict")
        }
        None => format!("more {what} are needed"),
    }
}

/// Formats money to cents with thousands separators, e.g. `1,234,567.89` (no currency sign).
pub fn fmt_money(x: f64) -> String {
    let cents = (x.abs() * 100.0).round();
    let whole = format!("{:.0}", (cents / 100.0).trunc());
    let frac = (cents % 100.0) as u64;
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if x < 0.0 && cents > 0.0 { "-" } else { "" };
    format!("{sign}{grouped}.{frac:02}")
}

/// The first 12 hex digits of a `sha256:` digest, for messages.
pub fn short(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// The due-date deadline for open items: target launch plus the template's allowance.
pub fn open_item_deadline(target_launch: Date, days: u32) -> Date {
    target_launch
        .checked_add(i64::from(days).days())
        .unwrap_or(target_launch)
}

#[cfg(test)]
mod fmt_tests {
    use super::fmt_value;

    #[test]
    fn significant_digits() {
        assert_eq!(fmt_value(0.004998), "0.004998");
        assert_eq!(fmt_value(1365.8233), "1365.8");
        assert_eq!(fmt_value(0.92049), "0.9205");
        assert_eq!(fmt_value(20000.0), "20000");
        assert_eq!(fmt_value(-2.5), "-2.5");
        assert_eq!(fmt_value(1e160), "1.000e160");
        assert_eq!(fmt_value(-2.5e-9), "-2.500e-9");
        assert_eq!(fmt_value(f64::INFINITY), "∞");
    }

    #[test]
    fn money_to_cents() {
        use super::fmt_money;
        assert_eq!(fmt_money(1_234_567.456), "1,234,567.46");
        assert_eq!(fmt_money(-6000.0), "-6,000.00");
        assert_eq!(fmt_money(0.004), "0.00");
        assert_eq!(fmt_money(999.999), "1,000.00");
    }
}
