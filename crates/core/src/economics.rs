//! Economics of scaling (issue "main job" §10; seed 004 "Value and cost questions").
//!
//! - annual value (USD) = volume per month × 12 × baseline minutes per unit × cost per minute
//!   (USD) × improvement (fraction 0–1)
//! - net (USD/year) = annual value − annual run cost
//! - payback (months) = one-off costs ÷ (net ÷ 12); none when net ≤ 0
//!
//! The improvement is measured from the criterion `improvement_criterion` names — its relative
//! change against its baseline, `(baseline − actual) ÷ baseline` when lower is better (`<`, `<=`)
//! or `(actual − baseline) ÷ baseline` when higher is better (`>`, `>=`), or its actual itself
//! when it has no baseline — or it is the declared `improvement`. The report says which.

use crate::card::Economics;
use crate::review::CriterionResult;
use serde::Serialize;

/// Where the improvement came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImprovementSource {
    /// A criterion's measured actual.
    Measured {
        /// The criterion id.
        criterion: String,
    },
    /// Declared in the card, not measured.
    Declared,
    /// The named criterion has no measured value; economics could not be computed.
    Unmeasured {
        /// The criterion id.
        criterion: String,
    },
}

/// Computed economics. Money in USD, per year unless said otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EconomicsResult {
    /// Improvement used, fraction 0–1 (`None` when unmeasured).
    pub improvement: Option<f64>,
    /// Where it came from.
    pub improvement_source: ImprovementSource,
    /// Annual value, USD.
    pub annual_value_usd: Option<f64>,
    /// Annual run cost, USD.
    pub annual_run_cost_usd: f64,
    /// Net annual value, USD.
    pub net_annual_usd: Option<f64>,
    /// One-off costs, USD.
    pub one_off_costs_usd: f64,
    /// Months until one-off costs are paid back; `None` when net ≤ 0 or unmeasured.
    pub payback_months: Option<f64>,
}

/// Annual value in USD (formula in the module docs).
pub fn annual_value(e: &Economics, improvement: f64) -> f64 {
    e.volume_per_month * 12.0 * e.baseline_minutes_per_unit * e.cost_per_minute_usd * improvement
}

/// Payback in months: one-off ÷ (net ÷ 12); `None` when `net_annual` ≤ 0.
pub fn payback_months(one_off: f64, net_annual: f64) -> Option<f64> {
    (net_annual > 0.0).then(|| one_off / (net_annual / 12.0))
}

/// The improvement a criterion shows (rule in the module docs); `None` when unmeasured or
/// the baseline is zero.
pub fn measured_improvement(c: &CriterionResult) -> Option<f64> {
    let actual = c.actual?;
    match c.baseline {
        None => Some(actual),
        Some(0.0) => None,
        Some(b) if c.comparator.starts_with('<') => Some((b - actual) / b),
        Some(b) => Some((actual - b) / b),
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
            Some(v) => (
                Some(v),
                ImprovementSource::Measured {
                    criterion: id.clone(),
                },
            ),
            None => (
                None,
                ImprovementSource::Unmeasured {
                    criterion: id.clone(),
                },
            ),
        },
        None => (e.improvement, ImprovementSource::Declared),
    };
    let value = improvement.map(|i| annual_value(e, i));
    let net = value.map(|v| v - e.annual_run_cost_usd);
    EconomicsResult {
        improvement,
        improvement_source: source,
        annual_value_usd: value,
        annual_run_cost_usd: e.annual_run_cost_usd,
        net_annual_usd: net,
        one_off_costs_usd: e.one_off_costs_usd,
        payback_months: net.and_then(|n| payback_months(e.one_off_costs_usd, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn hand_computed_values() {
        // 4000 × 12 × 6 × 1.25 × 0.5 = 180,000; net = 156,000; payback = 60,000 / 13,000.
        let r = compute(&inputs(Some(0.5)), &[]);
        assert_eq!(r.annual_value_usd, Some(180_000.0));
        assert_eq!(r.net_annual_usd, Some(156_000.0));
        let p = r.payback_months.unwrap();
        assert!((p - 60_000.0 / 13_000.0).abs() < 1e-12, "{p}");
        assert!((p - 4.615_384_615).abs() < 1e-9);
        assert_eq!(r.improvement_source, ImprovementSource::Declared);
    }

    #[test]
    fn no_payback_when_net_is_not_positive() {
        // 4000 × 12 × 6 × 1.25 × 0.05 = 18,000 < 24,000 run cost.
        let r = compute(&inputs(Some(0.05)), &[]);
        assert_eq!(r.annual_value_usd, Some(18_000.0));
        assert_eq!(r.net_annual_usd, Some(-6_000.0));
        assert_eq!(r.payback_months, None);
        assert_eq!(payback_months(1.0, 0.0), None);
    }

    #[test]
    fn measured_improvement_comes_from_the_criterion() {
        let mut e = inputs(None);
        e.improvement_criterion = Some("aht_reduction".into());
        let c = CriterionResult {
            id: "aht_reduction".into(),
            description: String::new(),
            metric: String::new(),
            comparator: ">=".into(),
            threshold: 0.1,
            unit: None,
            baseline: None,
            actual: Some(0.25),
            rows: 10,
            met: Some(true),
            verdict: crate::review::Verdict::Met,
            interval: None,
            interval_method: None,
            more_events: None,
            comparison: None,
            indicator: None,
            series: vec![],
            evidence: None,
        };
        let r = compute(&e, std::slice::from_ref(&c));
        // 4000 × 12 × 6 × 1.25 × 0.25 = 90,000.
        assert_eq!(r.annual_value_usd, Some(90_000.0));
        // With a baseline, lower-is-better: handle time 6.0 → 4.5 minutes is a 25% improvement.
        let mut handle = c.clone();
        handle.comparator = "<=".into();
        handle.baseline = Some(6.0);
        handle.actual = Some(4.5);
        assert_eq!(measured_improvement(&handle), Some(0.25));
        handle.comparator = ">=".into();
        handle.baseline = Some(0.5);
        handle.actual = Some(0.6);
        assert!((measured_improvement(&handle).unwrap() - 0.2).abs() < 1e-12);
        handle.baseline = Some(0.0);
        assert_eq!(measured_improvement(&handle), None);
        let mut unmeasured = c;
        unmeasured.actual = None;
        let r = compute(&e, &[unmeasured]);
        assert_eq!(r.annual_value_usd, None);
        assert!(matches!(
            r.improvement_source,
            ImprovementSource::Unmeasured { .. }
        ));
    }
}
