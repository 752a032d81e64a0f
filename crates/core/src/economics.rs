//! Economics of scaling (issue "main job" §10; seed 004 "Value and cost questions").
//!
//! - annual value (USD) = volume per month × 12 × baseline minutes per unit × cost per minute
//!   (USD) × improvement (fraction of the baseline minutes saved)
//! - net (USD/year) = annual value − annual run cost; a negative net is a loss
//! - payback (months) = one-off costs ÷ (net ÷ 12); none when net ≤ 0
//!
//! The improvement is a *benefit*: positive when the agent saves time, whatever way the
//! criterion is written. Its direction comes from the criterion's comparator (`<`, `<=`: lower
//! is better, so a reduction is a gain; `>`, `>=`: higher is better), and its size from:
//!
//! - a comparison with a relative effect (pilot ÷ reference − 1): the effect itself, e.g. −11.6%
//!   handle time under "at least 10% below baseline" is an improvement of 0.116;
//! - a comparison with an absolute effect: the effect divided by the reference side's value
//!   (−0.77 min against a 6.63 min baseline is 0.116);
//! - a criterion with a declared `baseline`: (actual − baseline) ÷ baseline, in the direction of
//!   benefit;
//! - otherwise a higher-is-better criterion's actual, read as the fraction saved (only a
//!   criterion in `unit: ratio`);
//! - or the declared `economics.improvement`.
//!
//! Every measured improvement is a range: the point estimate, and the *conservative* value from
//! the end of the criterion's confidence interval least favourable to the agent (issue
//! "verdicts that hold at any size" §6). An improvement above 1 (more than every minute saved)
//! is refused, not priced. Money is rounded to cents, months to one decimal.

use crate::card::{Comparator, Economics};
use crate::review::CriterionResult;
use serde::Serialize;

/// Where the improvement came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImprovementSource {
    /// A criterion's measured value or effect.
    Measured {
        /// The criterion id.
        criterion: String,
        /// How the value became a fraction saved, e.g. "relative effect against the baseline".
        basis: String,
    },
    /// Declared in the card, not measured.
    Declared,
    /// The named criterion has no measured value; economics could not be computed.
    Unmeasured {
        /// The criterion id.
        criterion: String,
    },
    /// The criterion's improvement is above 1 — more than every baseline minute saved — so it
    /// does not measure minutes saved; economics could not be computed.
    Implausible {
        /// The criterion id.
        criterion: String,
        /// The improvement it gave.
        improvement: f64,
    },
}

/// A point estimate and its conservative counterpart (from the least favourable interval end;
/// `None` when the criterion has no interval bound on that side, e.g. an unbounded ratio).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// At the point estimate.
    pub point: f64,
    /// At the conservative bound.
    pub conservative: Option<f64>,
}

impl Estimate {
    fn map(self, f: impl Fn(f64) -> f64) -> Estimate {
        Estimate {
            point: f(self.point),
            conservative: self.conservative.map(&f),
        }
    }
}

/// Computed economics. Money in USD (rounded to cents), per year unless said otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EconomicsResult {
    /// Improvement used, as a fraction of baseline minutes saved (positive = saving); `None`
    /// when unmeasured.
    pub improvement: Option<Estimate>,
    /// Where it came from.
    pub improvement_source: ImprovementSource,
    /// Annual value, USD.
    pub annual_value_usd: Option<Estimate>,
    /// Annual run cost, USD.
    pub annual_run_cost_usd: f64,
    /// Net annual value, USD (negative: a loss).
    pub net_annual_usd: Option<Estimate>,
    /// One-off costs, USD.
    pub one_off_costs_usd: f64,
    /// Months until one-off costs are paid back at the point estimate (one decimal); `None`
    /// when net ≤ 0 or unmeasured.
    pub payback_months: Option<f64>,
    /// Months until payback at the conservative bound; `None` when that net is ≤ 0 or unknown.
    pub payback_months_conservative: Option<f64>,
    /// Set when the net annual value is a loss at the point estimate or at the conservative
    /// bound: the sentence the decision carries.
    pub loss: Option<String>,
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Annual value in USD (formula in the module docs), unrounded.
pub fn annual_value(e: &Economics, improvement: f64) -> f64 {
    e.volume_per_month * 12.0 * e.baseline_minutes_per_unit * e.cost_per_minute_usd * improvement
}

/// Payback in months: one-off ÷ (net ÷ 12), to one decimal; `None` when `net_annual` ≤ 0.
pub fn payback_months(one_off: f64, net_annual: f64) -> Option<f64> {
    (net_annual > 0.0).then(|| tenth(one_off / (net_annual / 12.0)))
}

fn benefit_sign(comparator: Comparator) -> Option<f64> {
    match comparator {
        Comparator::Ge | Comparator::Gt => Some(1.0),
        Comparator::Le | Comparator::Lt => Some(-1.0),
        Comparator::Eq => None,
    }
}

/// Why a criterion's value cannot be read as a fraction of minutes saved, if it cannot; card
/// validation reports it on `economics.improvement_criterion`.
pub fn improvement_unreadable(c: &crate::card::Criterion) -> Option<&'static str> {
    if benefit_sign(c.comparator).is_none() {
        return Some("has no direction of benefit (`==`); name a criterion with <, <=, > or >=");
    }
    if c.compare.is_none() && c.baseline.is_none() && benefit_sign(c.comparator) == Some(-1.0) {
        return Some(
            "is lower-is-better with neither a `baseline` nor a comparison: its value is not a fraction saved",
        );
    }
    if c.compare.is_none() && c.baseline == Some(0.0) {
        return Some("has a zero `baseline`: no relative saving can be computed");
    }
    if c.compare.is_none() && c.baseline.is_none() && c.unit.as_deref() != Some("ratio") {
        return Some(
            "has neither a `baseline` nor a comparison, so its value itself would be the fraction of minutes saved — only with `unit: ratio`",
        );
    }
    None
}

/// The improvement a criterion shows, positive when it benefits (rule in the module docs), with
/// the basis of the computation; `None` when unmeasured or undefined (zero reference).
pub fn measured_improvement(c: &CriterionResult) -> Option<(Estimate, String)> {
    let comparator = Comparator::from_symbol(&c.comparator)?;
    let sign = benefit_sign(comparator)?;
    let actual = c.actual?;
    // The interval end least favourable to the agent.
    let worst = c.interval.and_then(|i| {
        let b = if sign > 0.0 { i.low } else { i.high };
        b.is_finite().then_some(b)
    });
    let scale = |f: &dyn Fn(f64) -> f64| Estimate {
        point: f(actual),
        conservative: worst.map(f),
    };
    match (&c.comparison, c.baseline) {
        (Some(k), _) if k.effect_scale == "relative" => Some((
            scale(&|e| sign * e),
            format!("relative effect against the {}", k.against),
        )),
        (Some(k), _) => {
            let r = k.reference_value.filter(|r| *r > 0.0)?;
            Some((
                scale(&|e| sign * e / r),
                format!(
                    "absolute effect ÷ the {} value {}",
                    k.against,
                    crate::items::fmt_value(r)
                ),
            ))
        }
        (None, Some(b)) if b != 0.0 => Some((
            scale(&|a| sign * (a - b) / b.abs()),
            format!(
                "change against the declared baseline {}",
                crate::items::fmt_value(b)
            ),
        )),
        (None, Some(_)) => None,
        (None, None) if sign > 0.0 => Some((scale(&|a| a), "the measured value itself".into())),
        (None, None) => None,
    }
}

/// Computes the economics from the card's inputs and the measured criteria.
pub fn compute(e: &Economics, criteria: &[CriterionResult]) -> EconomicsResult {
    let (improvement, source) = match &e.improvement_criterion {
        Some(id) => match criteria
            .iter()
            .find(|c| &c.id == id)
            .and_then(measured_improvement)
        {
            Some((v, _)) if v.point > 1.0 => (
                None,
                ImprovementSource::Implausible {
                    criterion: id.clone(),
                    improvement: v.point,
                },
            ),
            Some((v, basis)) => (
                Some(v),
                ImprovementSource::Measured {
                    criterion: id.clone(),
                    basis,
                },
            ),
            None => (
                None,
                ImprovementSource::Unmeasured {
                    criterion: id.clone(),
                },
            ),
        },
        None => (
            e.improvement.map(|i| Estimate {
                point: i,
                conservative: Some(i),
            }),
            ImprovementSource::Declared,
        ),
    };
    let value = improvement.map(|i| i.map(|x| cents(annual_value(e, x))));
    let net = value.map(|v| v.map(|x| cents(x - e.annual_run_cost_usd)));
    let loss = net.and_then(|n| {
        let money = |x: f64| format!("${}", crate::items::fmt_money(-x));
        if n.point < 0.0 {
            Some(format!(
                "economics: the net annual value is a loss of {} at the measured improvement",
                money(n.point)
            ))
        } else {
            n.conservative.filter(|c| *c < 0.0).map(|c| {
                format!(
                    "economics: at the conservative end of the improvement's interval the net annual value is a loss of {}",
                    money(c)
                )
            })
        }
    });
    EconomicsResult {
        improvement,
        improvement_source: source,
        annual_value_usd: value,
        annual_run_cost_usd: cents(e.annual_run_cost_usd),
        net_annual_usd: net,
        one_off_costs_usd: cents(e.one_off_costs_usd),
        payback_months: net.and_then(|n| payback_months(e.one_off_costs_usd, n.point)),
        payback_months_conservative: net
            .and_then(|n| n.conservative)
            .and_then(|c| payback_months(e.one_off_costs_usd, c)),
        loss,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{ComparisonSummary, Interval, Verdict};

    fn inputs(improvement: Option<f64>) -> Economics {
        Economics {
            volume_per_month: 4000.0,
            baseline_minutes_per_unit: 6.0,
            cost_per_minute_usd: 1.25,
            improvement_criterion: None,
            improvement,
            annual_run_cost_usd: 24_000.0,
            one_off_costs_usd: 60_000.0,
        }
    }

    fn criterion(comparator: &str, actual: f64) -> CriterionResult {
        CriterionResult {
            id: "aht".into(),
            description: String::new(),
            metric: String::new(),
            comparator: comparator.into(),
            threshold: 0.0,
            unit: None,
            baseline: None,
            actual: Some(actual),
            rows: 10,
            met: Some(true),
            verdict: Verdict::Met,
            hypothesis: None,
            note: None,
            interval: None,
            interval_method: None,
            more_events: None,
            comparison: None,
            indicator: None,
            series: vec![],
            evidence: None,
        }
    }

    fn compared(scale: &str, reference: f64) -> ComparisonSummary {
        ComparisonSummary {
            against: "baseline".into(),
            test: "Welch t".into(),
            effect_scale: scale.into(),
            reference_value: Some(reference),
            pilot_value: None,
            reference_rows: 100,
            pilot_rows: 100,
            p_value: None,
            srm: None,
            unit: None,
            cuped: None,
        }
    }

    #[test]
    fn hand_computed_values() {
        // 4000 × 12 × 6 × 1.25 × 0.5 = 180,000; net = 156,000; payback = 60,000 / 13,000.
        let r = compute(&inputs(Some(0.5)), &[]);
        assert_eq!(r.annual_value_usd.map(|v| v.point), Some(180_000.0));
        assert_eq!(r.net_annual_usd.map(|v| v.point), Some(156_000.0));
        assert_eq!(
            r.payback_months,
            Some(4.6),
            "60,000 / 13,000 = 4.615… → 4.6"
        );
        assert_eq!(r.improvement_source, ImprovementSource::Declared);
        assert_eq!(r.loss, None);
    }

    #[test]
    fn a_loss_is_said() {
        // 4000 × 12 × 6 × 1.25 × 0.05 = 18,000 < 24,000 run cost.
        let r = compute(&inputs(Some(0.05)), &[]);
        assert_eq!(r.annual_value_usd.map(|v| v.point), Some(18_000.0));
        assert_eq!(r.net_annual_usd.map(|v| v.point), Some(-6_000.0));
        assert_eq!(r.payback_months, None);
        assert!(r.loss.unwrap().contains("loss of $6,000"));
        assert_eq!(payback_months(1.0, 0.0), None);
    }

    /// Handle time 6.63 → 5.861 min (−11.6%), written three ways, saves the same money.
    #[test]
    fn reduction_written_three_ways_saves_the_same() {
        let (base, pilot) = (6.63, 5.861_08);
        let rel = pilot / base - 1.0;
        let mut relative = criterion("<=", rel);
        relative.comparison = Some(compared("relative", base));
        relative.interval = Some(Interval::nominal(rel - 0.02, rel + 0.02, 0.95));
        let mut absolute = criterion("<=", pilot - base);
        absolute.comparison = Some(compared("absolute", base));
        absolute.interval = Some(Interval::nominal(
            (rel - 0.02) * base,
            (rel + 0.02) * base,
            0.95,
        ));
        let mut e = inputs(None);
        e.improvement_criterion = Some("aht".into());
        let r_rel = compute(&e, std::slice::from_ref(&relative));
        let r_abs = compute(&e, std::slice::from_ref(&absolute));
        let r_dec = compute(&inputs(Some(-rel)), &[]);
        let value = |r: &EconomicsResult| r.annual_value_usd.unwrap().point;
        // 4000 × 12 × 6 × 1.25 × 0.116 = 41,760 (positive: a saving).
        assert!(
            value(&r_rel) > 41_700.0 && value(&r_rel) < 41_800.0,
            "{r_rel:?}"
        );
        assert_eq!(value(&r_rel), value(&r_abs));
        assert_eq!(value(&r_rel), value(&r_dec));
        // The conservative end is the interval's high end (the smaller reduction, 9.6%).
        let cons = r_rel.annual_value_usd.unwrap().conservative.unwrap();
        assert!(
            (cons - cents(annual_value(&e, -(rel + 0.02)))).abs() < 0.011,
            "{cons}"
        );
        assert_eq!(
            r_abs.annual_value_usd.unwrap().conservative,
            Some(cons),
            "the absolute interval scaled by the baseline gives the same bound"
        );
        // A lower-is-better value with a declared baseline.
        let mut declared_base = criterion("<=", pilot);
        declared_base.baseline = Some(base);
        let (imp, _) = measured_improvement(&declared_base).unwrap();
        assert!((imp.point + rel).abs() < 1e-12);
    }

    #[test]
    fn higher_is_better_without_baseline_reads_the_fraction() {
        let mut e = inputs(None);
        e.improvement_criterion = Some("aht".into());
        let mut c = criterion(">=", 0.25);
        c.interval = Some(Interval::nominal(0.2, 0.3, 0.95));
        let r = compute(&e, std::slice::from_ref(&c));
        // 4000 × 12 × 6 × 1.25 × 0.25 = 90,000; conservatively 0.2 → 72,000.
        assert_eq!(
            r.annual_value_usd,
            Some(Estimate {
                point: 90_000.0,
                conservative: Some(72_000.0)
            })
        );
        c.actual = Some(1.48);
        let r = compute(&e, std::slice::from_ref(&c));
        assert_eq!(
            r.annual_value_usd, None,
            "148% of the minutes cannot be saved"
        );
        assert!(matches!(
            r.improvement_source,
            ImprovementSource::Implausible { .. }
        ));
        c.actual = None;
        let r = compute(&e, &[c]);
        assert_eq!(r.annual_value_usd, None);
        assert!(matches!(
            r.improvement_source,
            ImprovementSource::Unmeasured { .. }
        ));
    }
}
