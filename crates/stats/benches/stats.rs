//! Statistics time at every size. Run: `cargo bench -p stagegate-stats --bench stats`.
//!
//! - `mean_on_threshold`: the case that hung `review` (statrs 0.19's t quantile never returns
//!   past about 1.5·10⁷ degrees of freedom): the t interval and the "events still needed" search
//!   for a mean exactly on its threshold, at n = 20, 10⁶ and 2·10⁷.
//! - `mean_a_hair_off_threshold`: the same search when it must run to its 10¹² limit.
//! - `t_quantile`: one t quantile, at 10², 10⁷ and 10¹⁰ degrees of freedom.
//! - `hodges_lehmann_*`: the Hodges-Lehmann shift and Moses' interval by exact selection, against
//!   materialising and selecting among all n² differences (5,000 a side; at 200,000 and 10⁶ a
//!   side materialising would take 320 GB and 8 TB, so selection is timed alone).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use stagegate_stats::compare::mann_whitney;
use stagegate_stats::dist::t_upper;
use stagegate_stats::interval::{MoreEvents, Target, mean_t, more_events_mean};

fn main() {
    divan::main();
}

#[divan::bench(args = [20u64, 1_000_000, 20_000_000])]
fn mean_on_threshold(n: u64) -> bool {
    let (mean, sd) = (divan::black_box(6.63), 1.7);
    let i = mean_t(n, mean, sd, 0.95);
    let more = more_events_mean(n, mean, sd, Target::Limit(mean), 0.95);
    i.is_some() && matches!(more, MoreEvents::Never)
}

#[divan::bench(args = [20u64, 1_000_000, 20_000_000])]
fn mean_a_hair_off_threshold(n: u64) -> bool {
    let (mean, sd) = (divan::black_box(6.63), 1.7);
    let i = mean_t(n, mean, sd, 0.95);
    let more = more_events_mean(n, mean, sd, Target::Limit(6.630_000_01), 0.95);
    i.is_some() && matches!(more, MoreEvents::BeyondLimit { .. })
}

#[divan::bench(args = [1e2, 1e7, 1e10])]
fn t_quantile(df: f64) -> f64 {
    t_upper(divan::black_box(0.025), df)
}

fn samples(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let d = LogNormal::new(6.0, 0.7).expect("valid");
    let x = (0..n).map(|_| d.sample(&mut rng)).collect();
    let y = (0..n).map(|_| d.sample(&mut rng) * 0.93).collect();
    (x, y)
}

#[divan::bench(args = [5_000usize, 200_000, 1_000_000], sample_count = 3, sample_size = 1)]
fn hodges_lehmann_selection(bencher: divan::Bencher, n: usize) {
    let (x, y) = samples(n);
    bencher.bench(|| mann_whitney(&x, &y, 0.95));
}

#[divan::bench(args = [5_000usize], sample_count = 3, sample_size = 1)]
fn hodges_lehmann_materialised(bencher: divan::Bencher, n: usize) {
    let (x, y) = samples(n);
    bencher.bench(|| {
        // The shift and the two interval ends by selection among all n² differences.
        let mut d: Vec<f64> = y
            .iter()
            .flat_map(|b| x.iter().map(move |a| b - a))
            .collect();
        let m = d.len();
        let c = stagegate_stats::compare::moses_cut(n, n, 0.95)
            .0
            .unwrap_or(0) as usize;
        let lo = *d.select_nth_unstable_by(c, f64::total_cmp).1;
        let hi = *d.select_nth_unstable_by(m - 1 - c, f64::total_cmp).1;
        let a = *d.select_nth_unstable_by(m / 2 - 1, f64::total_cmp).1;
        let b = *d.select_nth_unstable_by(m / 2, f64::total_cmp).1;
        (lo, hi, (a + b) / 2.0)
    });
}
