//! Relative criteria: the metric on the pilot side against a baseline period or a control
//! cohort, with the effect's interval from `stagegate-stats`.
//!
//! Effects and their intervals:
//! - rates, two-proportion z: absolute = p_pilot − p_ref with Newcombe's interval; relative =
//!   p_pilot ÷ p_ref − 1 with the Katz log risk-ratio interval, exp(ln RR ± z·√(1/k₁ − 1/n₁ +
//!   1/k₂ − 1/n₂)) − 1 (Katz et al. 1978);
//! - means, Welch t: absolute = x̄_pilot − x̄_ref with Welch's interval; relative =
//!   x̄_pilot ÷ x̄_ref − 1 with the delta-method interval, se = R·√(s²_p/(n_p x̄²_p) +
//!   s²_r/(n_r x̄²_r));
//! - Mann-Whitney: absolute = Hodges-Lehmann shift with its distribution-free interval;
//!   relative = the shift and its interval divided by the reference median (the reference
//!   median treated as fixed — stated in the report's method).
//!
//! Events still needed when the effect's interval straddles the threshold: the pilot sample
//! size scaled by (half-width ÷ distance to the threshold)², both sides assumed to grow alike.
//!
//! Sample-ratio mismatch: with `assigned_pilot_share`, the distinct users per cohort (the
//! `user` role must be mapped) are tested with a chi-square goodness of fit; p < 0.001 flags
//! it.

use crate::engine::{Side, quantile};
use stagegate_core::card::{Against, Compare, EffectScale, TestKind};
use stagegate_core::metric::MetricSpec;
use stagegate_core::review::{ComparisonSummary, Interval, Measurement, Srm};
use stagegate_stats::compare::{
    Summary, mann_whitney, sample_ratio_mismatch, two_proportions, welch,
};
use stagegate_stats::z_two_sided;

/// SRM alarm level (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch").
pub const SRM_ALPHA: f64 = 0.001;

/// Judges the pilot side against the reference side. `units` are the distinct users (or
/// rows) seen on (reference, pilot), for the sample-ratio-mismatch check.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    spec: &MetricSpec,
    cmp: &Compare,
    reference: Side,
    pilot: Side,
    units: (u64, u64),
    confidence: f64,
    threshold: f64,
) -> Measurement {
    let Some(test) = cmp.test_for(spec.kind) else {
        return Measurement {
            note: Some("this metric kind cannot be compared".into()),
            ..Measurement::default()
        };
    };
    let relative = cmp.effect == EffectScale::Relative;
    let z = z_two_sided(confidence);
    let (ref_value, pilot_value, ref_n, pilot_n, effect, interval, p, method) = match (
        test, reference, pilot,
    ) {
        (TestKind::TwoProportions, Side::Rate(k1, n1), Side::Rate(k2, n2)) => {
            let r = two_proportions(k1, n1, k2, n2, confidence);
            let (p1, p2) = (ratio(k1, n1), ratio(k2, n2));
            let (effect, interval) = match (&r, relative) {
                (Some(r), false) => (Some(r.effect), Some(r.interval)),
                (Some(_), true) if k1 > 0 && k2 > 0 => {
                    let rr = p2.unwrap_or(0.0) / p1.unwrap_or(1.0);
                    let se = (1.0 / k1 as f64 - 1.0 / n1 as f64 + 1.0 / k2 as f64
                        - 1.0 / n2 as f64)
                        .sqrt();
                    (
                        Some(rr - 1.0),
                        Some(Interval {
                            low: (rr.ln() - z * se).exp() - 1.0,
                            high: (rr.ln() + z * se).exp() - 1.0,
                            confidence,
                        }),
                    )
                }
                _ => (None, None),
            };
            let method = if relative {
                "two-proportion z, Katz log risk ratio"
            } else {
                "two-proportion z, Newcombe"
            };
            (
                p1,
                p2,
                n1,
                n2,
                effect,
                interval,
                r.map(|r| r.p_value),
                method,
            )
        }
        (TestKind::Welch, Side::Summary(nx, mx, vx), Side::Summary(ny, my, vy)) => {
            let (sx, sy) = (
                Summary {
                    n: nx,
                    mean: mx,
                    var: vx,
                },
                Summary {
                    n: ny,
                    mean: my,
                    var: vy,
                },
            );
            let r = welch(sx, sy, confidence);
            let (effect, interval) = match (&r, relative) {
                (Some(r), false) => (Some(r.effect), Some(r.interval)),
                (Some(_), true) if sx.mean != 0.0 && sy.mean != 0.0 => {
                    let ratio = sy.mean / sx.mean;
                    let se = ratio.abs()
                        * (sy.var / (sy.n as f64 * sy.mean * sy.mean)
                            + sx.var / (sx.n as f64 * sx.mean * sx.mean))
                            .sqrt();
                    (
                        Some(ratio - 1.0),
                        Some(Interval {
                            low: ratio - 1.0 - z * se,
                            high: ratio - 1.0 + z * se,
                            confidence,
                        }),
                    )
                }
                _ => (None, None),
            };
            let method = if relative {
                "Welch t, delta-method ratio of means"
            } else {
                "Welch t"
            };
            (
                (nx > 0).then_some(mx),
                (ny > 0).then_some(my),
                nx,
                ny,
                effect,
                interval,
                r.map(|r| r.p_value),
                method,
            )
        }
        (TestKind::MannWhitney, Side::Values(mut x), Side::Values(mut y)) => {
            let q = spec.q.unwrap_or(0.5);
            let r = mann_whitney(&x, &y, confidence);
            let ref_median = quantile(&mut x, 0.5);
            let (rq, pq) = (quantile(&mut x, q), quantile(&mut y, q));
            let (effect, interval) = match (&r, relative, ref_median) {
                (Some(r), false, _) => (Some(r.effect), Some(r.interval)),
                (Some(r), true, Some(m)) if m != 0.0 => (
                    Some(r.effect / m),
                    Some(Interval {
                        low: r.interval.low / m,
                        high: r.interval.high / m,
                        confidence,
                    }),
                ),
                _ => (None, None),
            };
            let method = match (relative, r.as_ref().is_some_and(|r| r.approximate)) {
                (false, false) => "Mann-Whitney U, Hodges-Lehmann shift",
                (false, true) => {
                    "Mann-Whitney U, Hodges-Lehmann shift (approximate: thinned samples)"
                }
                (true, _) => {
                    "Mann-Whitney U, Hodges-Lehmann shift ÷ reference median (median held fixed)"
                }
            };
            (
                rq,
                pq,
                x.len() as u64,
                y.len() as u64,
                effect,
                interval,
                r.map(|r| r.p_value),
                method,
            )
        }
        _ => {
            return Measurement {
                note: Some("internal: comparison sides do not match the test".into()),
                ..Measurement::default()
            };
        }
    };
    let srm = cmp.assigned_pilot_share.and_then(|share| srm(units, share));
    let more = match (effect, interval) {
        (Some(e), Some(i)) if i.contains(threshold) && e != threshold => {
            let half = (i.high - i.low) / 2.0;
            let factor = (half / (e - threshold).abs()).powi(2);
            Some(((pilot_n as f64) * (factor - 1.0)).ceil().max(1.0) as u64)
        }
        _ => None,
    };
    let against = match cmp.against {
        Against::Baseline => "baseline",
        Against::Control => "control",
    };
    let note = if effect.is_none() {
        Some(format!(
            "comparison undefined: {ref_n} {against} and {pilot_n} pilot rows with a value{}",
            if relative {
                " (a relative effect needs a non-zero reference)"
            } else {
                ""
            }
        ))
    } else {
        None
    };
    Measurement {
        value: effect,
        rows: pilot_n,
        series: Vec::new(),
        note,
        interval,
        interval_method: Some(method.to_owned()),
        more_events: more,
        comparison: Some(ComparisonSummary {
            against: against.to_owned(),
            test: match test {
                TestKind::TwoProportions => "two-proportion z",
                TestKind::Welch => "Welch t",
                TestKind::MannWhitney => "Mann-Whitney U",
            }
            .to_owned(),
            effect_scale: if relative { "relative" } else { "absolute" }.to_owned(),
            reference_value: ref_value,
            pilot_value,
            reference_rows: ref_n,
            pilot_rows: pilot_n,
            p_value: p,
            srm,
        }),
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
