//! The checklist's Evidence column, item by item, in the spirit of Template 07's worked example
//! (seed 001): each cell says what the blank template asks for under that item —
//!
//! | item (rule) | the blank template asks for | from |
//! |---|---|---|
//! | 1 success criteria | criteria + actuals | the criteria, in their units |
//! | 2 dashboards | dashboard link + who watches when | card `monitoring`, link records |
//! | 3 on-call | primary + backup + pager schedule | card `people.on_call`, records |
//! | 4 guardrails | test date + scenarios + results | `guardrail-test` records |
//! | 5 identity | identity name + rotation dates + result | card `identity`, `rotation` records |
//! | 6 retention | retention period + storage location (+ who verified, when) | card `audit_log`, records |
//! | 7 runbook | runbook link + acknowledgment + comprehension check | card `runbook`, `acknowledgment` records |
//! | 8 communication | channels + content + schedule | `communication` records |
//! | 9 rollback | drill date + procedure + result (+ timing, in-flight) | `drill` records, card `rollback` |
//! | 10 sign-off | see sign-off below | the sign-off rows |
//!
//! Only facts in the review are used; an item that is not ✅ leads with its reasons.

use crate::md_cell;
use stagegate_core::decision::Status;
use stagegate_core::evidence::{GuardrailAction, Validity};
use stagegate_core::gates::Rule;
use stagegate_core::items::short;
use stagegate_core::review::{CriterionResult, EvidenceSummary, ItemResult, Review, Verdict};
use stagegate_core::units::{self, Precision};
use std::fmt::Write as _;

/// The Evidence cell of one item: reasons first when it is not ✅, then the evidence sentence,
/// the records it rests on and any notes.
pub(crate) fn cell(r: &Review, it: &ItemResult) -> String {
    let rule = r
        .template
        .items
        .iter()
        .find(|t| t.number == it.number)
        .map(|t| t.rule);
    let cited: Vec<&EvidenceSummary> = it
        .evidence
        .iter()
        .filter_map(|p| r.evidence.iter().find(|e| &e.path == p))
        .collect();
    let sentence = match rule {
        Some(Rule::SuccessCriteria) => criteria(r, it),
        Some(Rule::Dashboards) => dashboards(r, &cited),
        Some(Rule::OnCall) => on_call(r, &cited),
        Some(Rule::Guardrails) => guardrails(r, &cited),
        Some(Rule::IdentityRotation) => identity(r, &cited),
        Some(Rule::AuditRetention) => retention(r, &cited),
        Some(Rule::Runbook) => runbook(r, &cited),
        Some(Rule::Communication) => communication(&cited),
        Some(Rule::RollbackDrill) => drill(r, it.number, &cited),
        Some(Rule::Signoff) => signoff(r),
        None => String::new(),
    };
    let mut out = String::new();
    if it.status != Status::Pass {
        let _ = write!(out, "**{}.**", it.reasons.join("; "));
        if sentence.starts_with("See ") {
            let _ = write!(out, " {sentence}");
        } else if !sentence.is_empty() {
            let _ = write!(out, " On file: {sentence}");
        }
    } else {
        out.push_str(&sentence);
    }
    let records: Vec<String> = it.evidence.iter().map(|p| format!("`{p}`")).collect();
    if !records.is_empty() {
        let _ = write!(out, " — {}", records.join(", "));
    }
    for n in &it.notes {
        let _ = write!(out, " _Note: {n}_");
    }
    md_cell(&out)
}

fn cq(c: &CriterionResult, v: f64) -> String {
    crate::shown(c).fmt(v, Precision::Compact)
}

/// What a criterion must show, in prose: `≥ 90%`, `< 20 s`, `within [-0.1, 0.1] points`,
/// `≤ 0.5 pp (non-inferiority)`.
fn compact_target(c: &CriterionResult) -> String {
    let sign = units::comparator_sign(&c.comparator);
    match &c.hypothesis {
        Some(h) => match (h.accept_from, h.accept_to) {
            (Some(lo), Some(hi)) => format!("within [{}, {}]", cq(c, lo), cq(c, hi)),
            (_, Some(t)) | (Some(t), _) => format!("{sign} {} (non-inferiority)", cq(c, t)),
            _ => format!("{sign} {}", cq(c, c.threshold)),
        },
        None => format!("{sign} {}", cq(c, c.threshold)),
    }
}

/// Item 1: "Criteria + actuals" — seed 001 worked example: "Pilot success criteria (Agent Card
/// §12 + intake §5): ≥ 90% acceptance, zero Sev-1, … Actuals: 92% acceptance, zero Sev-1, …".
fn criteria(r: &Review, it: &ItemResult) -> String {
    if r.criteria.is_empty() {
        return String::new();
    }
    let wanted: Vec<String> = r
        .criteria
        .iter()
        .map(|c| format!("{} {}", c.id, compact_target(c)))
        .collect();
    let actuals: Vec<String> = r
        .criteria
        .iter()
        .map(|c| {
            let v = c
                .actual
                .map(|a| cq(c, a))
                .unwrap_or_else(|| "not measured".into());
            let source = if c.evidence.is_some() {
                " (evidence record)"
            } else {
                ""
            };
            let verdict = match c.verdict {
                Verdict::Met => String::new(),
                other => format!(" — {}", other.word()),
            };
            format!("{} {v}{source}{verdict}", c.id)
        })
        .collect();
    let met = r
        .criteria
        .iter()
        .filter(|c| c.verdict == Verdict::Met)
        .count();
    let summary = if met == r.criteria.len() {
        format!("all {met} met (intervals below)")
    } else {
        format!("{met} of {} met (intervals below)", r.criteria.len())
    };
    let mut s = format!(
        "Pilot success criteria (Agent Card §12, set before the pilot): {}. Actuals: {}; {summary}.",
        wanted.join(", "),
        actuals.join(", ")
    );
    // Reasons that are not about one criterion (the criteria lock) still belong here.
    for reason in it.reasons.iter().filter(|x| {
        !r.criteria
            .iter()
            .any(|c| x.starts_with(&format!("{}: ", c.id)))
    }) {
        if it.status == Status::Pass {
            let _ = write!(s, " {}.", upper_first(reason));
        }
    }
    s
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// "{summary} (recorded {date} by {who})" for records that carry no structured block.
fn recorded(e: &EvidenceSummary) -> String {
    format!(
        "{} ({} recorded {} by {})",
        e.summary.trim_end_matches('.'),
        e.kind.as_str(),
        e.date,
        e.recorded_by
    )
}

/// Item 2: "Dashboard link + who watches when".
fn dashboards(r: &Review, cited: &[&EvidenceSummary]) -> String {
    let mut parts: Vec<String> = r
        .operations
        .dashboards
        .iter()
        .map(|d| {
            let mut s = d.name.clone();
            if let Some(u) = &d.url {
                let _ = write!(s, " ({u})");
            }
            match (&d.watcher, &d.cadence) {
                (Some(w), Some(c)) => {
                    let _ = write!(s, " watched by {w}, {c}");
                }
                (Some(w), None) => {
                    let _ = write!(s, " watched by {w}, no cadence");
                }
                (None, _) => s.push_str(", nobody named to watch it"),
            }
            s
        })
        .collect();
    parts.retain(|p| !p.is_empty());
    let mut s = if parts.is_empty() {
        String::new()
    } else {
        format!("{}.", parts.join("; "))
    };
    for e in cited {
        let _ = write!(s, " {}.", recorded(e));
    }
    s.trim().to_owned()
}

/// Item 3: "Primary + backup + pager schedule".
fn on_call(r: &Review, cited: &[&EvidenceSummary]) -> String {
    let oc = &r.operations.people.on_call;
    let mut s = format!(
        "Primary: {} — {} schedule {}. Backup: {} — {}. Weekend: {}.",
        oc.primary.name,
        oc.pager.system,
        oc.pager.primary_schedule,
        oc.backup.name,
        oc.pager.backup_schedule,
        oc.weekend_coverage.as_deref().unwrap_or("not defined")
    );
    for e in cited {
        let _ = write!(s, " {}.", recorded(e));
    }
    s
}

fn action_word(a: GuardrailAction) -> &'static str {
    match a {
        GuardrailAction::Blocked => "blocked",
        GuardrailAction::Escalated => "escalated",
        GuardrailAction::None => "no action",
    }
}

/// Item 4: "Test date + scenarios + results" — seed 001: "Tested 2026-06-10: malicious-PDF
/// input was rejected by input validation; … All three guardrails fired."
fn guardrails(r: &Review, cited: &[&EvidenceSummary]) -> String {
    let mut tests: Vec<&EvidenceSummary> = cited
        .iter()
        .copied()
        .filter(|e| e.guardrail_test.is_some())
        .collect();
    tests.sort_by(|a, b| (a.date, &a.path).cmp(&(b.date, &b.path)));
    let one_date = tests.windows(2).all(|w| w[0].date == w[1].date);
    let scenarios: Vec<String> = tests
        .iter()
        .filter_map(|e| {
            let t = e.guardrail_test.as_ref()?;
            let result = if t.fired {
                format!("fired, {}", action_word(t.action))
            } else {
                "did not fire".to_owned()
            };
            let mut s = format!("{}: {} → {result}", t.guardrail, t.input);
            let mut when_and_log = Vec::new();
            if !one_date {
                when_and_log.push(e.date.to_string());
            }
            if let Some(l) = &t.log_reference {
                when_and_log.push(format!("log: {l}"));
            }
            if !when_and_log.is_empty() {
                let _ = write!(s, " ({})", when_and_log.join("; "));
            }
            Some(s)
        })
        .collect();
    let mut s = String::new();
    if let (true, Some(first)) = (one_date, tests.first()) {
        let _ = write!(s, "Tested {}: ", first.date);
    } else if !tests.is_empty() {
        s.push_str("Tested: ");
    }
    if !scenarios.is_empty() {
        let _ = write!(s, "{}. ", scenarios.join("; "));
    }
    let declared = &r.operations.guardrails;
    let fired = declared
        .iter()
        .filter(|g| {
            tests.iter().any(|e| {
                e.guardrail_test.as_ref().is_some_and(|t| {
                    t.guardrail == g.id && t.fired && t.action != GuardrailAction::None
                })
            })
        })
        .count();
    if !declared.is_empty() {
        let _ = write!(
            s,
            "{fired} of {} declared guardrails fired on an actual triggering input.",
            declared.len()
        );
    }
    let has_kill_guardrail = declared
        .iter()
        .any(|g| g.kind == stagegate_core::card::GuardrailKind::KillSwitch);
    if !has_kill_guardrail {
        let k = &r.operations.rollback.kill_switch;
        let _ = write!(
            s,
            " Kill switch: {} flag {}, drilled under the rollback item.",
            k.provider, k.flag
        );
    }
    s.trim().to_owned()
}

/// Item 5: "Identity name + rotation dates + result".
fn identity(r: &Review, cited: &[&EvidenceSummary]) -> String {
    let id = &r.operations.identity;
    let mut s = format!("{} in {}.", id.principal, id.idp);
    let mut rot: Vec<&EvidenceSummary> = cited
        .iter()
        .copied()
        .filter(|e| e.rotation.is_some())
        .collect();
    rot.sort_by(|a, b| (a.date, &a.path).cmp(&(b.date, &b.path)));
    for e in &rot {
        let Some(x) = &e.rotation else { continue };
        let day = (e.date - r.pilot.start).get_days() + 1;
        let downtime = match x.downtime_minutes {
            Some(0) => ", no downtime".to_owned(),
            Some(m) => format!(", {m} min downtime"),
            None => String::new(),
        };
        let _ = write!(
            s,
            " {} rotated {} (day {day} of pilot) — {}{downtime}.",
            x.credential,
            e.date,
            if x.agent_kept_operating {
                "agent kept operating"
            } else {
                "agent stopped operating"
            }
        );
    }
    let unrotated: Vec<&str> = id
        .credentials
        .iter()
        .filter(|c| {
            !rot.iter().any(|e| {
                e.rotation
                    .as_ref()
                    .is_some_and(|x| x.credential.eq_ignore_ascii_case(c))
            })
        })
        .map(String::as_str)
        .collect();
    if !unrotated.is_empty() {
        let _ = write!(
            s,
            " Not rotated during the pilot: {}.",
            unrotated.join(", ")
        );
    }
    s
}

/// Item 6: "Retention period + storage location", and who verified it when (worked example:
/// "Verified 2026-06-11 by Platform team").
fn retention(r: &Review, cited: &[&EvidenceSummary]) -> String {
    let o = &r.operations;
    let stores: Vec<String> = o
        .audit_log
        .stores
        .iter()
        .map(|st| {
            format!(
                "{}: {} ({} days)",
                st.storage,
                units::period_days(st.retention_days),
                st.retention_days
            )
        })
        .collect();
    let mut s = format!(
        "{}. Required: {} ({} days; {}).",
        stores.join("; "),
        units::period_days(o.retention_required_days),
        o.retention_required_days,
        o.retention_required_by
    );
    for e in cited {
        let _ = write!(
            s,
            " Verified {} by {}: {}.",
            e.date,
            e.recorded_by,
            e.summary.trim_end_matches('.')
        );
    }
    s
}

/// Item 7: "Runbook link + on-call acknowledgment + comprehension check".
fn runbook(r: &Review, cited: &[&EvidenceSummary]) -> String {
    let o = &r.operations;
    let mut s = match &o.runbook_sha256 {
        Some(d) => format!("Runbook at {} (`{}`).", o.runbook, short(d)),
        None => format!("Runbook {} not found.", o.runbook),
    };
    for e in cited {
        let Some(a) = &e.acknowledgment else { continue };
        let _ = write!(
            s,
            " {} acknowledged reading {} — comprehension check {}: kill in 60 s: {}; top 3 failure modes: {}; logs: {}.",
            a.person,
            e.date,
            if a.passed { "passed" } else { "not passed" },
            a.answers.kill_switch.trim_end_matches('.'),
            a.answers
                .failure_modes
                .iter()
                .map(|m| m.trim_end_matches('.'))
                .collect::<Vec<_>>()
                .join("; "),
            a.answers.logs.trim_end_matches('.')
        );
    }
    s
}

/// Item 8: "Channels + content + schedule", by date.
fn communication(cited: &[&EvidenceSummary]) -> String {
    let mut comms: Vec<&EvidenceSummary> = cited
        .iter()
        .copied()
        .filter(|e| e.communication.is_some())
        .collect();
    comms.sort_by_key(|e| {
        (
            e.communication.as_ref().and_then(|c| c.scheduled_for),
            e.path.clone(),
        )
    });
    let parts: Vec<String> = comms
        .iter()
        .filter_map(|e| {
            let c = e.communication.as_ref()?;
            Some(format!(
                "{} to {}: {}, {}",
                c.channel,
                c.audience,
                if c.drafted { "drafted" } else { "not drafted" },
                c.scheduled_for
                    .map(|d| format!("scheduled {d}"))
                    .unwrap_or_else(|| "not scheduled".into())
            ))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{}.", parts.join("; "))
    }
}

/// Item 9: "Drill date + procedure + result", with the timing and in-flight handling the
/// per-item guidance asks for. The latest valid drill record is described even when it falls
/// outside the window (the reasons say so).
fn drill(r: &Review, number: u8, cited: &[&EvidenceSummary]) -> String {
    let latest = cited
        .iter()
        .copied()
        .filter(|e| e.drill.is_some())
        .max_by_key(|e| (e.date, e.path.clone()))
        .or_else(|| {
            r.evidence
                .iter()
                .filter(|e| e.validity == Validity::Valid && e.items.contains(&number))
                .filter(|e| e.drill.is_some() && e.date <= r.review_date)
                .max_by_key(|e| (e.date, e.path.clone()))
        });
    let rb = &r.operations.rollback;
    let mut s = String::new();
    if let Some(e) = latest
        && let Some(d) = &e.drill
    {
        let ago = (r.review_date - e.date).get_days();
        let _ = write!(
            s,
            "Drill {} ({ago} day{} before the review; window {} days), recorded by {}: {}",
            e.date,
            if ago == 1 { "" } else { "s" },
            r.template.drill_window_days,
            e.recorded_by,
            d.procedure.trim_end_matches('.')
        );
        match d.time_to_stop_seconds {
            Some(t) => {
                let _ = write!(s, ". Stopped taking work in {} s", units::compact(t));
            }
            None => s.push_str(". Timing not documented"),
        }
        if let Some(m) = d.duration_minutes {
            let _ = write!(s, "; off for {} min", units::compact(m));
        }
        let _ = write!(
            s,
            ". In-flight: {}. Result: {}.",
            d.in_flight
                .as_deref()
                .map(|w| w.trim_end_matches('.'))
                .unwrap_or("not documented"),
            match d.result {
                stagegate_core::evidence::DrillResult::Passed => "passed",
                stagegate_core::evidence::DrillResult::Failed => "failed",
            }
        );
    }
    let _ = write!(
        s,
        " Kill switch: {} flag {}; rollback decided by {}.",
        rb.kill_switch.provider, rb.kill_switch.flag, rb.decision_authority
    );
    s.trim().to_owned()
}

/// Item 10: "See sign-off below".
fn signoff(r: &Review) -> String {
    let signed: Vec<String> = r
        .signoffs
        .iter()
        .filter(|s| s.signed)
        .map(|s| {
            format!(
                "{} {} ({})",
                s.role,
                s.name,
                s.date.map(|d| d.to_string()).unwrap_or_default()
            )
        })
        .collect();
    if signed.is_empty() {
        "See sign-off below.".into()
    } else {
        format!(
            "Signed over review `{}`: {}. See sign-off below.",
            short(&r.digest),
            signed.join(", ")
        )
    }
}
