//! Data drift: the population stability index of a numeric column against a reference period,
//! and missing rates.
//!
//! PSI = Σᵢ (cᵢ − rᵢ) · ln(cᵢ / rᵢ) over bins cut at the reference's deciles, with shares floored
//! at 0.0001 so an empty bin does not divide by zero. Conventional reading (Siddiqi 2006,
//! "Credit Risk Scorecards", ch. 8): below 0.1 stable, 0.1–0.25 moderate shift, above 0.25
//! significant shift.

/// PSI threshold above which a shift is flagged as moderate.
pub const PSI_MODERATE: f64 = 0.1;
/// PSI threshold above which a shift is flagged as significant.
pub const PSI_SIGNIFICANT: f64 = 0.25;
/// Missing-rate change (absolute, 0–1) against the reference above which a column is flagged.
pub const MISSING_RATE_DELTA: f64 = 0.05;

const FLOOR: f64 = 1e-4;

/// Bin edges at the deciles of `reference` (sorted copy; duplicates removed). Values equal to
/// an edge fall in the upper bin.
pub fn decile_edges(reference: &[f64]) -> Vec<f64> {
    let mut r = reference.to_vec();
    r.sort_by(f64::total_cmp);
    if r.is_empty() {
        return Vec::new();
    }
    let mut edges: Vec<f64> = (1..10)
        .map(|i| r[(i * r.len() / 10).min(r.len() - 1)])
        .collect();
    edges.dedup();
    edges
}

/// Share of `values` in each bin defined by `edges` (`edges.len() + 1` bins).
pub fn bin_shares(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut counts = vec![0u64; edges.len() + 1];
    for &v in values {
        let bin = edges.partition_point(|&e| e <= v);
        counts[bin] += 1;
    }
    let n = values.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / n).collect()
}

/// PSI of `current` against `reference`. `None` when either is empty.
pub fn psi(reference: &[f64], current: &[f64]) -> Option<f64> {
    if reference.is_empty() || current.is_empty() {
        return None;
    }
    let edges = decile_edges(reference);
    let r = bin_shares(reference, &edges);
    let c = bin_shares(current, &edges);
    Some(
        r.iter()
            .zip(&c)
            .map(|(&r, &c)| {
                let (r, c) = (r.max(FLOOR), c.max(FLOOR));
                (c - r) * (c / r).ln()
            })
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_distribution_is_stable_shift_is_flagged() {
        let reference: Vec<f64> = (0..1000).map(|i| f64::from(i % 100)).collect();
        assert!(psi(&reference, &reference).unwrap() < 1e-12);
        let shifted: Vec<f64> = reference.iter().map(|x| x + 30.0).collect();
        assert!(psi(&reference, &shifted).unwrap() > PSI_SIGNIFICANT);
        assert!(psi(&[], &reference).is_none());
    }

    #[test]
    fn hand_computed_two_bins() {
        // Reference 0..9 has deciles 1..9; current all 0 → bin 0 share 1 vs reference 0.1.
        let reference: Vec<f64> = (0..10).map(f64::from).collect();
        let current = vec![0.0; 10];
        let got = psi(&reference, &current).unwrap();
        // bin 0: (1 − 0.1)·ln(10); nine bins: (0.0001 − 0.1)·ln(0.001)
        let want = 0.9 * 10f64.ln() + 9.0 * (0.0001 - 0.1) * (0.0001f64 / 0.1).ln();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}
