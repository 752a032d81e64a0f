//! Relative criteria: the metric on the pilot side against a baseline period or a control
//! cohort, with the effect's interval from `stagegate-stats`.
//!
//! Effects and their intervals (two-sided at the card's confidence for superiority, at
//! 1 − 2α for non-inferiority and equivalence, whose bounds are then one-sided at the card's
//! level):
//! - rates, two-proportion z: absolute = p_pilot − p_ref with Newcombe's interval; relative =
//!   p_pilot ÷ p_ref − 1 with the Miettinen-Nurminen score interval for the risk ratio (sound
//!   at zero cells; unbounded above when the reference has no successes);
//! - means, Welch t: absolute = x̄_pilot − x̄_ref with Welch's interval; relative =
//!   x̄_pilot ÷ x̄_ref − 1 with the delta-method interval on Welch's df (positive reference);
//! - quantiles (default): the quantile's difference or ratio, from each side's order-statistic
//!   interval at √level;
//! - Mann-Whitney (`test: mann_whitney`): absolute = Hodges-Lehmann shift with Moses'
//!   distribution-free interval, exact over all pairwise differences (exact coverage for small
//!   samples); relative = the shift and its interval divided by the reference median (held
//!   fixed — stated in the report's method);
//! - per unit (`unit:`): rates and means as ratios of per-unit sums, delta-method variance over
//!   units with t intervals, paired for a baseline period, with optional CUPED for a control
//!   cohort (`stagegate_stats::units`).
//!
//! Events still needed when the effect's interval does not decide: the pilot sample (events,
//! or units for a per-unit comparison) scaled until the half-width facing the target shrinks
//! below the distance to it, both sides assumed to grow alike. When the interval cannot reach
//! the card's confidence at all (one value on a side; a rank test over a handful of values) the
//! criterion is inconclusive with the minimum events needed.
//!
//! Sample-ratio mismatch: with `assigned_pilot_share`, the distinct units per cohort (`unit`,
//! else the `user` role) are tested with a chi-square goodness of fit; p < 0.001 flags it.

use crate::engine::{Side, quantile};
use stagegate_core::card::{Against, Compare, EffectScale, TestKind};
use stagegate_core::metric::MetricSpec;
use stagegate_core::review::{
    ComparisonSummary, CupedSummary, Interval, Measurement, MoreEvents, Srm, Target, UnitSummary,
};
use stagegate_stats::compare::{
    Comparison, Summary, mann_whitney, moses_cut, quantile_difference, ratio_of_means, risk_ratio,
    sample_ratio_mismatch, two_proportions, welch,
};
use stagegate_stats::interval::{more_events_normal, quantile_min_events};
use stagegate_stats::units::{self, ArmUnit, Sums};
use stagegate_stats::z_two_sided;

/// SRM alarm level (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch").
pub const SRM_ALPHA: f64 = 0.001;

/// One unit's sums on the reference side, the pilot side and (CUPED) in the covariate period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UnitSides {
    /// Baseline period or control cohort.
    pub reference: Sums,
    /// Pilot window (pilot cohort).
    pub pilot: Sums,
    /// CUPED covariate period.
    pub covariate: Sums,
}

/// The per-unit data of a comparison with `unit:`, units in a stable order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerUnit {
    /// The id role, e.g. `agent_id`.
    pub role: String,
    /// One entry per unit seen.
    pub units: Vec<UnitSides>,
    /// Rows on a side without a unit value (left out).
    pub rows_without_unit: u64,
}

/// Judges the pilot side against the reference side. `units` are the distinct units seen on
/// (reference, pilot), for the sample-ratio-mismatch check; `per_unit` holds the per-unit
/// sums when the comparison names a `unit`.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    spec: &MetricSpec,
    cmp: &Compare,
    reference: Side,
    pilot: Side,
    units: (u64, u64),
    per_unit: Option<PerUnit>,
    confidence: f64,
    target: Target,
) -> Measurement {
    let Some(test) = cmp.test_for(spec.kind) else {
        return Measurement {
            note: Some("this metric kind cannot be compared".into()),
            ..Measurement::default()
        };
    };
    let relative = cmp.effect == EffectScale::Relative;
    let level = cmp.interval_level(confidence);
    let against = match cmp.against {
        Against::Baseline => "baseline",
        Against::Control => "control",
    };
    // Event-level sides, for the report (and the test when there is no unit).
    let (ref_value, pilot_value, ref_n, pilot_n) = match (&reference, &pilot) {
        (Side::Rate(k1, n1), Side::Rate(k2, n2)) => (ratio(*k1, *n1), ratio(*k2, *n2), *n1, *n2),
        (Side::Summary(nx, mx, _), Side::Summary(ny, my, _)) => {
            ((*nx > 0).then_some(*mx), (*ny > 0).then_some(*my), *nx, *ny)
        }
        (Side::Values(x), Side::Values(y)) => {
            let q = spec.q.unwrap_or(0.5);
            let (mut x, mut y) = (x.clone(), y.clone());
            (
                quantile(&mut x, q),
                quantile(&mut y, q),
                x.len() as u64,
                y.len() as u64,
            )
        }
        _ => {
            return Measurement {
                note: Some("internal: comparison sides do not match the test".into()),
                ..Measurement::default()
            };
        }
    };
    let mut unit_summary = None;
    let mut cuped = None;
    let mut units_for_srm = units;
    let mut notes: Vec<String> = Vec::new();
    let mut explained = false;
    let (mut ref_value, mut pilot_value) = (ref_value, pilot_value);
    let (result, method, growth_n, too_few): (Option<Comparison>, String, u64, Option<u64>) = match (
        &per_unit, test,
    ) {
        (Some(pu), _) => {
            let r = per_unit_comparison(pu, cmp, relative, level);
            let (kr, kp, in_both) = match &r {
                Some((u, in_both)) => (u.reference_units, u.pilot_units, *in_both),
                None => arm_sizes(pu, cmp.against),
            };
            units_for_srm = (kr, kp);
            unit_summary = Some(UnitSummary {
                role: pu.role.clone(),
                reference_units: kr,
                pilot_units: kp,
                in_both_cohorts: in_both,
            });
            if let Some((u, _)) = &r {
                // The sides the effect is computed from: ratios of per-unit sums.
                (pilot_value, ref_value) = (Some(u.sides.0), Some(u.sides.1));
            }
            if pu.rows_without_unit > 0 {
                notes.push(format!(
                    "{} rows without a `{}` value left out",
                    pu.rows_without_unit, pu.role
                ));
            }
            if cmp.against == Against::Baseline
                && !pu
                    .units
                    .iter()
                    .any(|u| u.reference.n > 0.0 && u.pilot.n > 0.0)
            {
                notes.push(format!(
                    "no `{}` appears in both the baseline and the pilot: nothing is paired",
                    pu.role
                ));
            }
            if cmp.cuped && r.as_ref().is_some_and(|(u, _)| u.theta.is_none()) {
                notes.push(format!(
                    "CUPED not applied: it needs {} units on each arm, events in the covariate period on both, and variation between units",
                    stagegate_stats::units::CUPED_MIN_UNITS
                ));
            }
            if let Some((u, _)) = &r
                && let (Some(theta), Some(red), Some(raw), Some(w)) = (
                    u.theta,
                    u.variance_reduction,
                    u.unadjusted_effect,
                    cmp.baseline.as_ref(),
                )
            {
                cuped = Some(CupedSummary {
                    covariate_period: format!("{}..{}", w.start, w.end),
                    theta,
                    variance_reduction: red,
                    unadjusted_effect: raw,
                });
            }
            let method = format!(
                "per-unit ({}) {}{}, delta method{}",
                pu.role,
                if cmp.against == Against::Baseline {
                    "paired t"
                } else {
                    "t"
                },
                if relative { " on the ratio" } else { "" },
                if cuped.is_some() { ", CUPED" } else { "" }
            );
            let too_few = r
                .is_none()
                .then(|| 2u64.saturating_sub(kr.min(kp)))
                .filter(|&k| k > 0);
            (r.map(|(u, _)| u.comparison), method, kp, too_few)
        }
        (None, TestKind::TwoProportions) => {
            let (Side::Rate(k1, n1), Side::Rate(k2, n2)) = (&reference, &pilot) else {
                unreachable!("matched above")
            };
            if relative {
                (
                    risk_ratio(*k1, *n1, *k2, *n2, level),
                    "two-proportion z, Miettinen-Nurminen score interval for the risk ratio".into(),
                    *n2,
                    None,
                )
            } else {
                (
                    two_proportions(*k1, *n1, *k2, *n2, level),
                    "two-proportion z, Newcombe".into(),
                    *n2,
                    None,
                )
            }
        }
        (None, TestKind::Welch) => {
            let (Side::Summary(nx, mx, vx), Side::Summary(ny, my, vy)) = (&reference, &pilot)
            else {
                unreachable!("matched above")
            };
            let (sx, sy) = (
                Summary {
                    n: *nx,
                    mean: *mx,
                    var: *vx,
                },
                Summary {
                    n: *ny,
                    mean: *my,
                    var: *vy,
                },
            );
            let too_few = (*nx < 2 || *ny < 2).then(|| 2 - (*nx).min(*ny));
            if relative {
                (
                    ratio_of_means(sx, sy, level),
                    "Welch t, delta-method ratio of means".into(),
                    *ny,
                    too_few,
                )
            } else {
                (welch(sx, sy, level), "Welch t".into(), *ny, too_few)
            }
        }
        (None, TestKind::QuantileDifference) => {
            let (Side::Values(x), Side::Values(y)) = (&reference, &pilot) else {
                unreachable!("matched above")
            };
            let q = spec.q.unwrap_or(0.5);
            let r = quantile_difference(x, y, q, relative, level);
            if r.is_none() && relative && !x.is_empty() && !y.is_empty() {
                explained = true;
                notes.push(format!(
                    "a relative change of the p{} needs the {against} side's interval for it to stay above 0",
                    stagegate_core::items::fmt_value(q * 100.0)
                ));
            }
            // Each side needs enough values for its quantile at √level.
            let need = quantile_min_events(q, level.sqrt())
                .unwrap_or(stagegate_stats::interval::MORE_EVENTS_LIMIT);
            let short = need
                .saturating_sub(x.len() as u64)
                .max(need.saturating_sub(y.len() as u64));
            let method = format!(
                "difference of p{} from order-statistic intervals at {}% each",
                stagegate_core::items::fmt_value(q * 100.0),
                stagegate_core::items::fmt_value((level.sqrt() * 1000.0).round() / 10.0)
            ) + if relative { ", as a ratio" } else { "" };
            (r, method, y.len() as u64, (short > 0).then_some(short))
        }
        (None, TestKind::MannWhitney) => {
            let (Side::Values(x), Side::Values(y)) = (&reference, &pilot) else {
                unreachable!("matched above")
            };
            let mut r = mann_whitney(x, y, level);
            let mut method = "Mann-Whitney U, Hodges-Lehmann shift, Moses interval".to_owned();
            if relative {
                let mut xs = x.clone();
                // A relative change needs a positive reference.
                let med = quantile(&mut xs, 0.5).filter(|m| *m > 0.0);
                r = match (r, med) {
                    (Some(mut c), Some(m)) => {
                        c.effect = c.effect.map(|e| e / m);
                        c.interval.low /= m;
                        c.interval.high /= m;
                        Some(c)
                    }
                    _ => None,
                };
                method.push_str(" ÷ reference median (median held fixed)");
            }
            let too_few = r
                .as_ref()
                .is_some_and(|c| !c.interval.reaches_confidence())
                .then(|| rank_events_needed(x.len(), y.len(), level));
            (r, method, y.len() as u64, too_few)
        }
    };
    let srm = cmp
        .assigned_pilot_share
        .and_then(|share| srm(units_for_srm, share));
    let (effect, interval, p) = match &result {
        Some(c) => (c.effect, Some(c.interval), c.p_value),
        // Too little data (or no spread) for an interval: still show the point effect; the
        // criterion stays inconclusive.
        None if ref_n > 0 && pilot_n > 0 => {
            (point_effect(ref_value, pilot_value, relative), None, None)
        }
        None => (None, None, None),
    };
    let more_events = match (too_few, &interval) {
        (Some(k), _) if k >= stagegate_stats::interval::MORE_EVENTS_LIMIT => {
            Some(MoreEvents::BeyondLimit {
                limit: stagegate_stats::interval::MORE_EVENTS_LIMIT,
            })
        }
        (Some(k), _) => Some(MoreEvents::ForCoverage { events: k.max(1) }),
        (None, Some(i)) if !target.decides(i) => {
            effect.map(|e| scaled_more(growth_n, e, i, target, result.as_ref().and_then(|c| c.df)))
        }
        _ => None,
    };

    let reference_positive = ref_value.is_some_and(|r| r > 0.0);
    match (&result, too_few) {
        (None, Some(k)) => notes.push(format!(
            "comparison needs more data: {ref_n} {against} and {pilot_n} pilot rows with a value{}; at least {k} more on the smaller side",
            unit_summary
                .as_ref()
                .map(|u| format!(
                    " from {} and {} units (`{}`; counts below are units)",
                    u.reference_units, u.pilot_units, u.role
                ))
                .unwrap_or_default()
        )),
        (None, None) if relative && ref_n > 0 && pilot_n > 0 && !reference_positive => {
            notes.push(format!(
                "a relative change needs a positive {against} value (it is {})",
                ref_value.map(stagegate_core::items::fmt_value).unwrap_or_else(|| "undefined".into())
            ))
        }
        (None, None) if ref_n > 0 && pilot_n > 0 && test == TestKind::MannWhitney => {
            notes.push(
                "no interval: every value is equal, or ties collapse the shift's interval onto one difference (data a shift does not describe; compare a quantile instead)"
                    .into(),
            )
        }
        // A reason given above (a relative quantile over a reference reaching 0) explains it.
        (None, None) if ref_n > 0 && pilot_n > 0 && explained => {}
        (None, None) if ref_n > 0 && pilot_n > 0 => notes.push(format!(
            "no interval: the {against} and pilot values have no spread (or a variance beyond floating point) to estimate uncertainty from"
        )),
        (None, None) => notes.push(format!(
            "comparison undefined: {ref_n} {against} and {pilot_n} pilot rows with a value"
        )),
        (Some(c), _) if c.effect.is_none() => notes.push(format!(
            "the relative effect is undefined: the {against} rate is 0; judged on its interval only"
        )),
        _ => {}
    }
    if unit_summary.is_some() && matches!(more_events, Some(MoreEvents::Needed { .. })) {
        notes.push("the events still needed are counted in units".into());
    }
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    // A relative change over a reference that is not positive has no point value either.
    let effect = if relative && result.is_none() && !reference_positive {
        None
    } else {
        effect
    };
    Measurement {
        value: effect,
        rows: pilot_n,
        series: Vec::new(),
        note,
        interval,
        interval_method: Some(method),
        // Without both sides there is nothing to compare: no data, not a sample to judge.
        sampled: ref_n > 0 && pilot_n > 0,
        more_events,
        comparison: Some(ComparisonSummary {
            against: against.to_owned(),
            test: match (&per_unit, test) {
                (Some(_), _) => "per-unit t (delta method)",
                (None, TestKind::TwoProportions) => "two-proportion z",
                (None, TestKind::Welch) => "Welch t",
                (None, TestKind::MannWhitney) => "Mann-Whitney U",
                (None, TestKind::QuantileDifference) => "quantile difference",
            }
            .to_owned(),
            effect_scale: if relative { "relative" } else { "absolute" }.to_owned(),
            reference_value: ref_value,
            pilot_value,
            reference_rows: ref_n,
            pilot_rows: pilot_n,
            p_value: p,
            srm,
            unit: unit_summary,
            cuped,
        }),
    }
}

/// The per-unit comparison and the count of units seen in both cohorts (control only).
fn per_unit_comparison(
    pu: &PerUnit,
    cmp: &Compare,
    relative: bool,
    level: f64,
) -> Option<(units::UnitComparison, u64)> {
    match cmp.against {
        Against::Baseline => {
            let pairs: Vec<(Sums, Sums)> = pu
                .units
                .iter()
                .filter(|u| u.reference.n > 0.0 || u.pilot.n > 0.0)
                .map(|u| (u.reference, u.pilot))
                .collect();
            units::paired(&pairs, relative, level).map(|r| (r, 0))
        }
        Against::Control => {
            let (reference, pilot, in_both) = arms(pu);
            units::independent(&reference, &pilot, relative, cmp.cuped, level).map(|r| (r, in_both))
        }
    }
}

/// Control arms: units seen only in the control cohort, only in the pilot cohort, and the
/// count seen in both (left out).
fn arms(pu: &PerUnit) -> (Vec<ArmUnit>, Vec<ArmUnit>, u64) {
    let (mut reference, mut pilot, mut both) = (Vec::new(), Vec::new(), 0);
    for u in &pu.units {
        match (u.reference.n > 0.0, u.pilot.n > 0.0) {
            (true, true) => both += 1,
            (true, false) => reference.push(ArmUnit {
                metric: u.reference,
                covariate: u.covariate,
            }),
            (false, true) => pilot.push(ArmUnit {
                metric: u.pilot,
                covariate: u.covariate,
            }),
            (false, false) => {}
        }
    }
    (reference, pilot, both)
}

/// Units per side when no comparison could be formed.
fn arm_sizes(pu: &PerUnit, against: Against) -> (u64, u64, u64) {
    match against {
        Against::Baseline => (
            pu.units.iter().filter(|u| u.reference.n > 0.0).count() as u64,
            pu.units.iter().filter(|u| u.pilot.n > 0.0).count() as u64,
            0,
        ),
        Against::Control => {
            let (r, p, b) = arms(pu);
            (r.len() as u64, p.len() as u64, b)
        }
    }
}

/// More events, scaling the half-width that faces the target as 1/√n: the current standard
/// error on that side (the half-width over the interval's t quantile on `df`, or z) times √n
/// is the per-event spread, and the larger sample is judged with z.
fn scaled_more(n: u64, effect: f64, i: &Interval, target: Target, df: Option<f64>) -> MoreEvents {
    let toward_high = match target {
        Target::Limit(t) => t > effect,
        Target::Band(lo, hi) => (hi - effect).abs() < (effect - lo).abs(),
    };
    let half = if toward_high {
        i.high - effect
    } else {
        effect - i.low
    };
    let crit = match df {
        Some(df) if df > 0.0 => stagegate_stats::dist::t_two_sided(i.confidence, df),
        _ => z_two_sided(i.confidence),
    };
    let sigma = half / crit * (n.max(1) as f64).sqrt();
    if !sigma.is_finite() {
        return MoreEvents::BeyondLimit {
            limit: stagegate_stats::interval::MORE_EVENTS_LIMIT,
        };
    }
    more_events_normal(n, effect, sigma, target, i.confidence)
}

/// Events to add on each side before Moses' interval can reach `level` at all: the smallest k
/// with 1 − 2/C(n₁+n₂+2k, n₁+k) ≥ level (bounded: C grows at least 4× per step).
fn rank_events_needed(n1: usize, n2: usize, level: f64) -> u64 {
    (1..64u64)
        .find(|&k| {
            let (a, b) = (n1 + k as usize, n2 + k as usize);
            moses_cut(a, b, level).0.is_some()
        })
        .unwrap_or(64)
}

/// The effect from the two sides' values alone.
fn point_effect(reference: Option<f64>, pilot: Option<f64>, relative: bool) -> Option<f64> {
    let (r, p) = (reference?, pilot?);
    if relative {
        (r != 0.0).then(|| p / r - 1.0)
    } else {
        Some(p - r)
    }
}

fn ratio(k: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| k as f64 / n as f64)
}

/// The chi-square check of (reference, pilot) unit counts against the assigned pilot share.
fn srm(units: (u64, u64), pilot_share: f64) -> Option<Srm> {
    let (c, p) = units;
    let (chi2, p_value) = sample_ratio_mismatch(&[p, c], &[pilot_share, 1.0 - pilot_share])?;
    Some(Srm {
        pilot_units: p,
        control_units: c,
        expected_pilot_share: pilot_share,
        chi2,
        p_value,
        flagged: p_value < SRM_ALPHA,
    })
}
