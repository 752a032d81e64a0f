//! Renders a [`Review`]: a terminal summary, Markdown in Template 07's layout, JSON, and the
//! scaling plan as YAML. Renderers are pure: a review in, a string out.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod evidence;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use stagegate_core::card::Hypothesis;
use stagegate_core::decision::{Outcome, Status};
use stagegate_core::items::{fmt_value, short};
use stagegate_core::plan::PlanDocument;
use stagegate_core::readiness::Rag;
use stagegate_core::review::{CriterionResult, MoreEvents, Review, Verdict};
use stagegate_core::units::{self, Precision, Shown};
use std::fmt::Write as _;

/// Output errors (serialisation only; rendering text cannot fail).
#[derive(Debug)]
pub struct RenderError(pub String);

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RenderError {}

/// How a criterion's numbers are shown: a difference of two rates in percentage points, else
/// its card unit ([`stagegate_core::units`]: ratios as percentages, milliseconds as seconds
/// from a 1 s threshold up, money to cents).
fn shown(c: &CriterionResult) -> Shown {
    match (c.unit.as_deref(), &c.comparison) {
        (Some("ratio"), Some(k)) if k.effect_scale == "absolute" => Shown::PercentPoints,
        (u, _) => Shown::of(u, c.threshold),
    }
}

fn vu(v: f64, u: &Shown) -> String {
    u.fmt(v, Precision::Full)
}

fn target(c: &CriterionResult) -> String {
    let u = shown(c);
    match &c.hypothesis {
        Some(h) => {
            let level = format!("{}%", fmt_value(h.one_sided_confidence * 100.0));
            match (h.kind, h.accept_from, h.accept_to) {
                (Hypothesis::Equivalence, Some(lo), Some(hi)) => format!(
                    "within [{}, {}] (equivalence: two one-sided tests at {level})",
                    vu(lo, &u),
                    vu(hi, &u)
                ),
                (_, _, Some(hi)) => format!(
                    "{} {} + margin {} = {} (non-inferiority, one-sided {level})",
                    c.comparator,
                    vu(c.threshold, &u),
                    vu(h.margin, &u),
                    vu(hi, &u)
                ),
                (_, Some(lo), _) => format!(
                    "{} {} − margin {} = {} (non-inferiority, one-sided {level})",
                    c.comparator,
                    vu(c.threshold, &u),
                    vu(h.margin, &u),
                    vu(lo, &u)
                ),
                _ => format!("{} {}", c.comparator, vu(c.threshold, &u)),
            }
        }
        None => format!("{} {}", c.comparator, vu(c.threshold, &u)),
    }
}

fn bound_with_unit(v: f64, unit: &Shown) -> String {
    if v == f64::INFINITY {
        "+∞".into()
    } else if v == f64::NEG_INFINITY {
        "−∞".into()
    } else {
        vu(v, unit)
    }
}

/// The actual with its interval, e.g. `92.01% [90.55%, 93.29%]`, and the interval's coverage
/// when it falls short of the level asked for.
fn actual(c: &CriterionResult) -> String {
    let unit = &shown(c);
    let a = match (c.actual, &c.interval) {
        (Some(a), _) => vu(a, unit),
        (None, Some(_)) => "undefined".into(),
        (None, None) => return "—".into(),
    };
    match &c.interval {
        Some(i) => {
            let short = if i.reaches_confidence() {
                String::new()
            } else {
                format!(
                    " (covers {}% < {}%)",
                    fmt_value(i.coverage * 100.0),
                    fmt_value(i.confidence * 100.0)
                )
            };
            // Non-inferiority and equivalence show the two-sided 1 − 2α interval: say so.
            let level = if c.hypothesis.is_some() {
                format!(" ({}%)", fmt_value(i.confidence * 100.0))
            } else {
                String::new()
            };
            format!(
                "{a} [{}, {}]{level}{short}",
                bound_with_unit(i.low, unit),
                bound_with_unit(i.high, unit)
            )
        }
        None => a,
    }
}

/// The verdict, with the events still needed when inconclusive.
fn met_word(c: &CriterionResult) -> String {
    match (c.verdict, c.more_events) {
        (Verdict::Inconclusive, Some(MoreEvents::Needed { events })) => {
            format!("inconclusive (~{events} more events)")
        }
        (Verdict::Inconclusive, Some(MoreEvents::ForCoverage { events })) => {
            format!("inconclusive (≥ {events} more events before any verdict)")
        }
        (Verdict::Inconclusive, Some(MoreEvents::Never)) => {
            "inconclusive (on the threshold: no number of events decides it)".into()
        }
        (Verdict::Inconclusive, Some(MoreEvents::BeyondLimit { limit })) => {
            format!("inconclusive (more than {limit} more events)")
        }
        (v, _) => v.word().to_owned(),
    }
}

fn decision_line(o: Outcome) -> &'static str {
    match o {
        Outcome::Cleared => "✅ Cleared for production launch",
        Outcome::Conditional => "⚠️ Conditional launch with open items",
        Outcome::Blocked => "❌ Blocked — return to pilot",
    }
}

fn status_color(s: Status) -> Color {
    match s {
        Status::Pass => Color::Green,
        Status::Open => Color::Yellow,
        Status::Fail => Color::Red,
    }
}

/// The terminal summary: header, criteria table, checklist table, decision. `color` adds ANSI
/// colours (the binary sets it only on a TTY); `width` wraps tables to that many columns
/// (`None`: the terminal's own width on a TTY, no wrapping elsewhere).
pub fn terminal(r: &Review, color: bool, width: Option<u16>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {} v{} (tier {}, lane {})",
        r.agent.name,
        r.agent.id,
        r.agent.version,
        r.agent.tier.as_str(),
        r.agent.lane.as_str()
    );
    let _ = writeln!(
        out,
        "Pilot {} to {} ({} day{}, {} telemetry rows) · review {} · digest {}",
        r.pilot.start,
        r.pilot.end,
        r.pilot.days,
        if r.pilot.days == 1 { "" } else { "s" },
        r.pilot.telemetry_rows,
        r.review_date,
        short(&r.digest)
    );
    let mk = || {
        let mut t = Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if let Some(w) = width {
            t.set_width(w);
        }
        if !color {
            t.force_no_tty();
        } else {
            t.enforce_styling();
        }
        t
    };
    let mut crit = mk();
    crit.set_header(vec![
        "Criterion",
        "Metric",
        "Target",
        "Actual [interval]",
        "Rows",
        "Result",
    ]);
    for c in &r.criteria {
        let res = Cell::new(met_word(c));
        let res = if color {
            res.fg(match c.verdict {
                Verdict::Met => Color::Green,
                Verdict::NotMet => Color::Red,
                Verdict::Inconclusive | Verdict::NoData => Color::Yellow,
            })
        } else {
            res
        };
        crit.add_row(vec![
            Cell::new(&c.id),
            Cell::new(&c.metric),
            Cell::new(target(c)),
            Cell::new(actual(c)),
            Cell::new(c.rows),
            res,
        ]);
    }
    let _ = writeln!(out, "\nSuccess criteria\n{crit}");
    let mut items = mk();
    items.set_header(vec!["#", "Item", "Status", "Why / evidence"]);
    for it in &r.items {
        let st = Cell::new(format!("{} {}", it.status.symbol(), it.status.word()));
        let st = if color {
            st.fg(status_color(it.status))
        } else {
            st
        };
        let mut why = it.reasons.join("\n");
        if !it.evidence.is_empty() {
            let _ = write!(why, "\n[{}]", it.evidence.join(", "));
        }
        for n in &it.notes {
            let _ = write!(why, "\nnote: {n}");
        }
        items.add_row(vec![
            Cell::new(it.number),
            Cell::new(&it.title),
            st,
            Cell::new(why),
        ]);
    }
    let _ = writeln!(out, "\nPilot-to-Prod checklist\n{items}");
    let _ = writeln!(out, "{}", signers_line(r));
    if !r.open_items.is_empty() {
        let mut t = mk();
        t.set_header(vec!["Item #", "What's missing", "Owner", "Due", "Counts?"]);
        for o in &r.open_items {
            t.add_row(vec![
                o.item.to_string(),
                o.what.clone(),
                o.owner.clone().unwrap_or_else(|| "—".into()),
                o.due.map(|d| d.to_string()).unwrap_or_else(|| "—".into()),
                if o.problems.is_empty() {
                    "yes".to_owned()
                } else {
                    format!("no: {}", o.problems.join("; "))
                },
            ]);
        }
        let _ = writeln!(out, "\nOpen items\n{t}");
    }
    let dims = r
        .readiness
        .dimensions
        .iter()
        .map(|d| format!("{} {}", d.dimension.as_str(), d.status.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "\nReadiness: {} ({dims})",
        r.readiness.overall.as_str()
    );
    if let Some(e) = &r.economics {
        let _ = writeln!(out, "Economics: {}", economics_line(e));
    }
    let word = r.decision.outcome.as_str().to_uppercase();
    let word = if color {
        let code = match r.decision.outcome {
            Outcome::Cleared => "32",
            Outcome::Conditional => "33",
            Outcome::Blocked => "31",
        };
        format!("\x1b[1;{code}m{word}\x1b[0m")
    } else {
        word
    };
    let _ = writeln!(out, "\nDecision: {word}");
    for reason in &r.decision.reasons {
        let _ = writeln!(out, "  - {reason}");
    }
    let _ = writeln!(
        out,
        "Target launch {} · 30-day post-launch review {} · open items due by {}",
        r.decision.target_launch, r.decision.post_launch_review, r.decision.open_items_due_by
    );
    out
}

fn economics_line(e: &stagegate_core::economics::EconomicsResult) -> String {
    let usd = units::usd;
    let range = |r: &stagegate_core::economics::Estimate| match r.conservative {
        Some(c) if c != r.point => format!("{} (conservatively {})", usd(r.point), usd(c)),
        _ => usd(r.point),
    };
    let months = |m: Option<f64>| {
        m.map(units::months)
            .unwrap_or_else(|| "never (net ≤ 0)".into())
    };
    match (&e.annual_value_usd, &e.net_annual_usd) {
        (Some(v), Some(n)) => {
            let mut line = format!(
                "annual value {} − run cost {} = net {} per year{}; payback {}",
                range(v),
                usd(e.annual_run_cost_usd),
                range(n),
                if n.point < 0.0 { " (a loss)" } else { "" },
                months(e.payback_months)
            );
            if n.conservative.is_some() && e.payback_months_conservative != e.payback_months {
                let _ = write!(
                    line,
                    " (conservatively {})",
                    months(e.payback_months_conservative)
                );
            }
            line
        }
        _ => match &e.improvement_source {
            stagegate_core::economics::ImprovementSource::Implausible {
                criterion,
                improvement,
            } => format!(
                "`{criterion}` gives an improvement of {}% of the baseline minutes — more than all of them, so it does not measure minutes saved; value not computed",
                fmt_value(improvement * 100.0)
            ),
            _ => "improvement not measured; value not computed".into(),
        },
    }
}

/// Which allowed-signers file the signatures were checked against, with its digest.
fn signers_line(r: &Review) -> String {
    match &r.allowed_signers {
        Some(f) => format!(
            "Signatures checked against the allowed-signers file {} ({}).",
            f.path,
            short(&f.sha256)
        ),
        None => "No allowed-signers file was found: no signature counts.".into(),
    }
}

/// The Signature column: the signer's key fingerprint when the signature verified, else
/// "(unsigned)" with the reason.
fn signature(r: &Review, s: &stagegate_core::review::SignoffRow) -> String {
    match (&s.key_fingerprint, s.signed) {
        (Some(fp), _) if fp.starts_with("SHA256:") => format!("(signed, {fp})"),
        (Some(fp), _) => format!("(signed, SHA256:{fp})"),
        (None, true) => format!(
            "(unsigned: sign-off record over `{}`, no key signature)",
            short(&r.digest)
        ),
        (None, false) => format!(
            "(unsigned: {})",
            s.note.as_deref().unwrap_or("no sign-off over this review")
        ),
    }
}

pub(crate) fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Markdown in Template 07's layout (seed 001 "Blank template"), section by section: the
/// header (agent ID, version, tier, pilot window, review date); the 10-item table `# | Item |
/// Status | Evidence` with each item's evidence in the worked example's terms
/// ([`evidence`](crate::evidence)); the sign-off table `Role | Name | Date | Signature` and the
/// allowed-signers file (path and digest) its signatures were checked against; the
/// decision with target launch and 30-day post-launch review; for a Blocked review, what must
/// be fixed, with owners; the open items with owner and due date. Then the detail behind them:
/// criteria with intervals, comparisons, series, data quality, readiness (seed 000) and
/// economics.
pub fn markdown(r: &Review) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Pilot-to-Prod Checklist — {}\n", r.agent.name);
    let _ = writeln!(o, "**Agent ID:** {}  ", r.agent.id);
    let _ = writeln!(o, "**Agent version:** {}  ", r.agent.version);
    let _ = writeln!(o, "**Tier:** {}  ", title_case(r.agent.tier.as_str()));
    let _ = writeln!(
        o,
        "**Pilot ran:** {} to {} ({} day{})  ",
        r.pilot.start,
        r.pilot.end,
        r.pilot.days,
        if r.pilot.days == 1 { "" } else { "s" }
    );
    let _ = writeln!(o, "**Review date:** {}  ", r.review_date);
    let _ = writeln!(o, "**Review digest:** `{}`  ", r.digest);
    let _ = writeln!(
        o,
        "**Gate template:** {} v{} ({})\n",
        r.template.name, r.template.version, r.template.source
    );
    let _ = writeln!(o, "| # | Item | Status | Evidence |\n|---|---|---|---|");
    for it in &r.items {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            it.number,
            md_cell(&it.title),
            it.status.symbol(),
            evidence::cell(r, it)
        );
    }
    let _ = writeln!(
        o,
        "\n## Sign-off\n\n| Role | Name | Date | Signature |\n|---|---|---|---|"
    );
    for s in &r.signoffs {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            s.role,
            md_cell(&s.name),
            s.date.map(|d| d.to_string()).unwrap_or_default(),
            md_cell(&signature(r, s))
        );
    }
    let _ = writeln!(o, "\n{}", signers_line(r));
    let _ = writeln!(
        o,
        "\n## Decision\n\n{}\n",
        decision_line(r.decision.outcome)
    );
    for reason in &r.decision.reasons {
        let _ = writeln!(o, "- {}", md_cell(reason));
    }
    let _ = writeln!(o, "\nTarget launch date: {}  ", r.decision.target_launch);
    let _ = writeln!(
        o,
        "30-day post-launch review: {}",
        r.decision.post_launch_review
    );
    let _ = writeln!(
        o,
        "\n{}",
        match r.decision.outcome {
            Outcome::Cleared =>
                "Status in registry moves from Pilot → Production at launch (`stagegate promote`)."
                    .to_owned(),
            Outcome::Conditional => format!(
                "Status in registry moves from Pilot → Production at launch (`stagegate promote`), with the sponsor's risk acceptance; open items close by {}.",
                r.decision.open_items_due_by
            ),
            Outcome::Blocked =>
                "Status in registry stays Pilot until a new review clears.".to_owned(),
        }
    );
    if !r.must_fix.is_empty() {
        let _ = writeln!(
            o,
            "\n## What must be fixed\n\n| Item # | What's missing | Owner | Due date |\n|---|---|---|---|"
        );
        for f in &r.must_fix {
            let owner = match &f.owner {
                Some(w) => format!("{w} — {}", f.owner_basis),
                None => format!("unassigned — {}", f.owner_basis),
            };
            let _ = writeln!(
                o,
                "| {} {} | {}: {} | {} | {} |",
                f.item,
                f.status.symbol(),
                md_cell(&f.title),
                md_cell(&f.what.join("; ")),
                md_cell(&owner),
                f.due
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "before the next review".into())
            );
        }
    }
    let _ = writeln!(o, "\n## Open items\n");
    if r.open_items.is_empty() {
        let _ = writeln!(o, "None.");
    } else {
        let _ = writeln!(
            o,
            "| Item # | What's missing | Owner | Due date |\n|---|---|---|---|"
        );
        for x in &r.open_items {
            let mut what = x.what.clone();
            if !x.problems.is_empty() {
                let _ = write!(what, " (does not count: {})", x.problems.join("; "));
            }
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                x.item,
                md_cell(&what),
                md_cell(x.owner.as_deref().unwrap_or("—")),
                x.due.map(|d| d.to_string()).unwrap_or_else(|| "—".into())
            );
        }
    }
    let _ = writeln!(o, "\n## Pilot success criteria — detail\n");
    let _ = writeln!(
        o,
        "| Criterion | Metric | Target | Actual [interval] | Rows | Result |\n|---|---|---|---|---|---|"
    );
    for c in &r.criteria {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            md_cell(&c.description),
            md_cell(&c.metric),
            md_cell(&target(c)),
            md_cell(&actual(c)),
            c.rows,
            met_word(c)
        );
    }
    let compared: Vec<&CriterionResult> = r
        .criteria
        .iter()
        .filter(|c| c.comparison.is_some())
        .collect();
    if !compared.is_empty() {
        let _ = writeln!(
            o,
            "\nComparisons (effect = pilot − reference, or pilot ÷ reference − 1 when relative):\n"
        );
        for c in compared {
            let Some(k) = &c.comparison else { continue };
            let v = |x: Option<f64>| x.map(fmt_value).unwrap_or_else(|| "—".into());
            let _ = write!(
                o,
                "- `{}`: {} {} ({} rows) vs pilot {} ({} rows); {}, p = {}",
                c.id,
                k.against,
                v(k.reference_value),
                k.reference_rows,
                v(k.pilot_value),
                k.pilot_rows,
                c.interval_method.as_deref().unwrap_or(&k.test),
                k.p_value
                    .map(|p| format!("{p:.3e}"))
                    .unwrap_or_else(|| "—".into())
            );
            if let Some(u) = &k.unit {
                let _ = write!(
                    o,
                    "; unit of analysis `{}`: {} {} and {} pilot units",
                    u.role, u.reference_units, k.against, u.pilot_units
                );
                if u.in_both_cohorts > 0 {
                    let _ = write!(
                        o,
                        " (**{} units in both cohorts, left out**)",
                        u.in_both_cohorts
                    );
                }
            }
            if let Some(cu) = &k.cuped {
                let _ = write!(
                    o,
                    "; CUPED on {} (θ = {}): variance reduced by {}%, unadjusted effect {}",
                    cu.covariate_period,
                    fmt_value(cu.theta),
                    fmt_value(cu.variance_reduction * 100.0),
                    fmt_value(cu.unadjusted_effect)
                );
            }
            if let Some(s) = &k.srm {
                let _ = write!(
                    o,
                    "; sample ratio {}:{} against {} assigned, χ² p = {:.3e}{}",
                    s.pilot_units,
                    s.control_units,
                    fmt_value(s.expected_pilot_share),
                    s.p_value,
                    if s.flagged {
                        " — **SAMPLE-RATIO MISMATCH**"
                    } else {
                        ""
                    }
                );
            }
            let _ = writeln!(o);
        }
    }
    let with_series: Vec<&CriterionResult> =
        r.criteria.iter().filter(|c| c.series.len() > 1).collect();
    if !with_series.is_empty() {
        let _ = writeln!(o, "\nPer-period series:\n");
        for c in with_series {
            let points = c
                .series
                .iter()
                .map(|p| format!("{} {}", p.bucket, vu(p.value, &shown(c))))
                .collect::<Vec<_>>()
                .join(" · ");
            let tag = match c.indicator {
                Some(stagegate_core::card::Indicator::Leading) => " (leading)",
                Some(stagegate_core::card::Indicator::Lagging) => " (lagging)",
                None => "",
            };
            let _ = writeln!(o, "- `{}`{tag}: {}", c.id, md_cell(&points));
        }
    }
    if !r.data_quality.columns.is_empty() {
        let weeks: Vec<&str> = r.data_quality.columns[0]
            .weeks
            .iter()
            .map(|w| w.week.as_str())
            .collect();
        let _ = writeln!(
            o,
            "\nData quality (missing rate · PSI against week 1; flagged above PSI 0.25 or +5 points missing):\n"
        );
        let _ = writeln!(o, "| Role | {} |", weeks.join(" | "));
        let _ = writeln!(o, "|---|{}", "---|".repeat(weeks.len()));
        for col in &r.data_quality.columns {
            let cells: Vec<String> = col
                .weeks
                .iter()
                .map(|w| match w.psi {
                    Some(p) => format!("{:.1}% · {p:.3}", w.missing_rate * 100.0),
                    None => format!("{:.1}%", w.missing_rate * 100.0),
                })
                .collect();
            let _ = writeln!(o, "| {} | {} |", col.role, cells.join(" | "));
        }
        for f in &r.data_quality.flags {
            let _ = writeln!(o, "\n- ⚠️ {}", md_cell(f));
        }
    }
    let _ = writeln!(
        o,
        "\n## Readiness assessment: {}\n",
        r.readiness.overall.as_str()
    );
    let _ = writeln!(
        o,
        "| Dimension | Status | Needs work / fail |\n|---|---|---|"
    );
    for d in &r.readiness.dimensions {
        let open: Vec<&str> = d
            .items
            .iter()
            .filter(|i| i.status != stagegate_core::readiness::ItemState::Pass)
            .map(|i| i.item.as_str())
            .collect();
        let badge = match d.status {
            Rag::Green => "🟢 Green",
            Rag::Amber => "🟠 Amber",
            Rag::Red => "🔴 Red",
        };
        let _ = writeln!(
            o,
            "| {} | {badge} | {} |",
            d.dimension.as_str(),
            if open.is_empty() {
                "—".to_owned()
            } else {
                md_cell(&open.join("; "))
            }
        );
    }
    if let Some(e) = &r.economics {
        let _ = writeln!(o, "\n## Economics\n\n{}", economics_line(e));
    }
    o
}

/// The review as pretty JSON (`schema_version` first), newline-terminated.
///
/// # Errors
/// [`RenderError`] if serialisation fails.
pub fn json(r: &Review) -> Result<String, RenderError> {
    serde_json::to_string_pretty(r)
        .map(|s| s + "\n")
        .map_err(|e| RenderError(e.to_string()))
}

/// The scaling plan as YAML in seed 000's format.
///
/// # Errors
/// [`RenderError`] if serialisation fails.
pub fn plan_yaml(p: &PlanDocument) -> Result<String, RenderError> {
    serde_saphyr::to_string(p).map_err(|e| RenderError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_escape_pipes() {
        assert_eq!(md_cell("a|b\nc"), "a\\|b<br>c");
    }
}
