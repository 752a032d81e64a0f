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

#[test]
fn events_needed_at_80_percent_power_next_to_a_fixed_horizon() {
    // A 25% relative rise (2.0% → 2.5%): the events by which 80% of 200 simulated regressions
    // were flagged while looking every 100 events, against the fixed-horizon sample size.
    // (BENCHMARKS.md has the 5% case from `cargo run --release --example power`.)
    let p1 = P0 * 1.25;
    let fixed = stagegate_stats::sequential::fixed_horizon_events(P0, p1, ALPHA, 0.8);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let batch = Binomial::new(LOOK_EVERY, p1).unwrap();
    let mut detected: Vec<u64> = Vec::new();
    for _ in 0..200 {
        let mut t = Msprt::new(P0, P0 * (1.0 - P0), (p1 - P0).powi(2), ALPHA);
        let mut n = 0;
        while n < 100_000 {
            n += LOOK_EVERY;
            if t.observe_batch(batch.sample(&mut rng) as f64, LOOK_EVERY)
                .rejected_at
                .is_some()
            {
                detected.push(n);
                break;
            }
        }
    }
    detected.sort_unstable();
    let sequential = detected[159] as f64; // the 160th of 200: 80% power
    println!(
        "2.0% → 2.5% error rate at 80% power: mSPRT {sequential} events, fixed horizon {fixed:.0} ({:.2}×)",
        sequential / fixed
    );
    assert!(
        detected.len() >= 160,
        "fewer than 80% detected within 100,000 events"
    );
    assert!(
        sequential > fixed && sequential < 3.0 * fixed,
        "{sequential} vs {fixed}"
    );
}

#[test]
fn asymptotic_cs_keeps_its_time_uniform_coverage_with_skewed_data_and_a_look_every_50() {
    // Exponential data (skewed, mean 2), looked at after every 50 values up to 20,000: the
    // share of runs in which any look's sequence misses the true mean stays at most α.
    use rand_distr::Exp;
    use stagegate_stats::sequential::{Moments, asymptotic_cs, rho2_for};
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let exp = Exp::new(0.5).unwrap();
    let rho2 = rho2_for(500, ALPHA);
    let runs = 1000;
    let mut missed = 0;
    for _ in 0..runs {
        let mut m = Moments::default();
        for _ in 0..400 {
            for _ in 0..50 {
                m.push(exp.sample(&mut rng));
            }
            // Burn-in of 100 values, as the rollout controller uses.
            if m.n >= 100 && asymptotic_cs(m, rho2, ALPHA).is_some_and(|cs| !cs.contains(2.0)) {
                missed += 1;
                break;
            }
        }
    }
    let rate = f64::from(missed) / f64::from(runs);
    println!("asymptotic CS: ever-miss rate {rate:.4} over {runs} runs × 400 looks (α = {ALPHA})");
    assert!(rate <= ALPHA, "ever-miss rate {rate} exceeds α = {ALPHA}");
}
