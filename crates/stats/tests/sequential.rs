//! A/A simulation of the always-valid test: looking after every 100 events never pushes the
//! false-alarm rate above α. Deterministic (seeded ChaCha8), so it cannot flake.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use stagegate_stats::sequential::Msprt;

const ALPHA: f64 = 0.05;
const P0: f64 = 0.02; // baseline error rate
const LOOK_EVERY: u64 = 100;

/// Runs `runs` streams of `events` Bernoulli(p_true) events, looking every 100, and returns the
/// share that ever rejected H0: p = P0.
fn rejection_rate(p_true: f64, runs: u32, events: u64, seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let batch = Binomial::new(LOOK_EVERY, p_true).unwrap();
    let tau2 = (0.05 * P0).powi(2); // the effect we care about: a 5% relative rise
    let mut rejected = 0u32;
    for _ in 0..runs {
        let mut t = Msprt::new(P0, P0 * (1.0 - P0), tau2, ALPHA);
        for _ in 0..events / LOOK_EVERY {
            let errors = batch.sample(&mut rng) as f64;
            if t.observe_batch(errors, LOOK_EVERY).rejected_at.is_some() {
                rejected += 1;
                break;
            }
        }
    }
    f64::from(rejected) / f64::from(runs)
}

#[test]
fn aa_false_alarm_rate_stays_below_alpha_with_a_look_every_100_events() {
    let rate = rejection_rate(P0, 1000, 50_000, 7);
    println!("A/A: false-alarm rate {rate:.4} over 1000 runs × 500 looks (α = {ALPHA})");
    assert!(rate <= ALPHA, "false-alarm rate {rate} exceeds α = {ALPHA}");
}

#[test]
fn a_real_regression_is_caught() {
    // Error rate doubles: caught in nearly every run within 50,000 events.
    let rate = rejection_rate(2.0 * P0, 200, 50_000, 11);
    println!("A/B: detection rate {rate:.3} for a 2% → 4% error rate within 50,000 events");
    assert!(rate > 0.95, "{rate}");
}

#[test]
fn naive_peeking_at_a_fixed_horizon_test_inflates_false_alarms() {
    // The contrast that motivates the sequential test: a plain z test at α = 0.05, re-run
    // after every 100 events, alarms far more often than 5% on A/A data.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let batch = Binomial::new(LOOK_EVERY, P0).unwrap();
    let z_crit = stagegate_stats::z_two_sided(1.0 - ALPHA);
    let runs = 1000;
    let mut alarms = 0;
    for _ in 0..runs {
        let (mut n, mut k) = (0u64, 0u64);
        for _ in 0..500 {
            k += batch.sample(&mut rng);
            n += LOOK_EVERY;
            let p = k as f64 / n as f64;
            let z = (p - P0) / (P0 * (1.0 - P0) / n as f64).sqrt();
            if z.abs() > z_crit {
                alarms += 1;
                break;
            }
        }
    }
    let rate = f64::from(alarms) / f64::from(runs);
    println!("naive peeking: false-alarm rate {rate:.3} (α = {ALPHA})");
    assert!(rate > 2.0 * ALPHA, "{rate}");
}
