//! The exact Hodges-Lehmann selection against two independent exact computations: sorting
//! every pairwise difference (20 × 20 is in `reference.rs` against numpy; 5,000 × 5,000 here),
//! and at 200,000 × 200,000 (4·10¹⁰ differences, too many to sort) a different exact
//! algorithm — bisection over the ordered bit patterns of `f64` with a linear-time count of the
//! differences at or below each candidate, which finds the smallest representable value with at
//! least k + 1 differences at or below it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use stagegate_stats::compare::mann_whitney;
use stagegate_stats::hodges_lehmann::{select, shift};

fn samples(n1: usize, n2: usize, seed: u64, ties: bool) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = LogNormal::new(6.0, 0.7).unwrap();
    let mut draw = |n: usize, scale: f64| -> Vec<f64> {
        let mut v: Vec<f64> = (0..n)
            .map(|_| {
                let x = d.sample(&mut rng) * scale;
                if ties { (x / 25.0).round() * 25.0 } else { x }
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let x = draw(n1, 1.0);
    let y = draw(n2, 0.93);
    let _ = rng.random::<u8>();
    (x, y)
}

/// How many computed differences `y_j − x_i` are `<= t`: one staircase walk.
fn count_le(x: &[f64], y: &[f64], t: f64) -> u64 {
    let mut i = 0usize; // number of x with y_j − x_i > t grows as j grows … walk from the top
    let mut count = 0u64;
    // For each y_j (ascending), the x_i with y_j − x_i <= t are those with x_i >= y_j − t:
    // a suffix of x whose start moves right as y_j grows.
    for &b in y {
        while i < x.len() && b - x[i] > t {
            i += 1;
        }
        count += (x.len() - i) as u64;
    }
    count
}

fn key(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    if b < 0 { !(b & i64::MAX) } else { b }
}

fn unkey(k: i64) -> f64 {
    if k < 0 {
        f64::from_bits((!k | i64::MIN) as u64)
    } else {
        f64::from_bits(k as u64)
    }
}

/// The k-th smallest difference by bisection on the total order of f64 (≤ 64 counts).
fn by_bisection(x: &[f64], y: &[f64], k: u64) -> f64 {
    let (mut lo, mut hi) = (key(y[0] - x[x.len() - 1]), key(y[y.len() - 1] - x[0]));
    // Invariant: count_le(unkey(hi)) > k; answer in (lo, hi] or lo itself.
    if count_le(x, y, unkey(lo)) > k {
        return unkey(lo);
    }
    while i128::from(hi) - i128::from(lo) > 1 {
        let mid = ((i128::from(lo) + i128::from(hi)) / 2) as i64;
        if count_le(x, y, unkey(mid)) > k {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    unkey(hi)
}

fn brute(x: &[f64], y: &[f64]) -> Vec<f64> {
    let mut d: Vec<f64> = y
        .iter()
        .flat_map(|b| x.iter().map(move |a| b - a))
        .collect();
    d.sort_unstable_by(f64::total_cmp);
    d
}

#[test]
fn matches_sorting_all_differences_at_5000_by_5000() {
    for ties in [false, true] {
        let (x, y) = samples(5000, 5000, 11, ties);
        let d = brute(&x, &y);
        let m = d.len();
        for k in [0, 1, m / 100, m / 2 - 1, m / 2, m - m / 100, m - 1] {
            assert_eq!(select(&x, &y, k as u64), Some(d[k]), "k={k} ties={ties}");
        }
        let want = (d[m / 2 - 1] + d[m / 2]) / 2.0;
        let got = shift(&x, &y).unwrap();
        assert!((got - want).abs() <= 1e-9 * want.abs(), "{got} vs {want}");
        assert_eq!(got, want, "exact, not merely close");
    }
}

#[test]
fn bisection_reference_agrees_with_sorting() {
    // The second reference is itself checked against brute force before it is trusted.
    let (x, y) = samples(700, 900, 5, true);
    let d = brute(&x, &y);
    for k in [0, 1234, d.len() / 2, d.len() - 1] {
        assert_eq!(by_bisection(&x, &y, k as u64), d[k], "k={k}");
    }
}

#[test]
fn matches_an_independent_exact_algorithm_at_200000_by_200000() {
    let (x, y) = samples(200_000, 200_000, 3, false);
    let m = 200_000u64 * 200_000;
    for k in [0, m / 1000, m / 2 - 1, m / 2, m - m / 1000, m - 1] {
        assert_eq!(select(&x, &y, k), Some(by_bisection(&x, &y, k)), "k={k}");
    }
    // Moses' interval ends come from the same selection: both ends match too.
    let r = mann_whitney(&x, &y, 0.95).unwrap();
    let c = {
        let (a, b) = (200_000f64, 200_000f64);
        let z = stagegate_stats::dist::z_two_sided(0.95);
        (a * b / 2.0 - z * (a * b * (a + b + 1.0) / 12.0).sqrt()).floor() as u64
    };
    assert_eq!(r.interval.low, by_bisection(&x, &y, c));
    assert_eq!(r.interval.high, by_bisection(&x, &y, m - 1 - c));
    let hl = (by_bisection(&x, &y, m / 2 - 1) + by_bisection(&x, &y, m / 2)) / 2.0;
    assert!((r.effect.unwrap() - hl).abs() <= 1e-9 * hl.abs());
    // The interval is as narrow as the real sample size makes it: about ±1.96·σ·√(2/n).
    assert!(r.interval.high - r.interval.low < 10.0, "{:?}", r.interval);
}
