//! Events needed to detect a 5% relative rise in an error rate (2.0% → 2.1%) at 80% power:
//! the always-valid mSPRT (looking every 100 events) against a fixed-horizon test that looks
//! once. Run: `cargo run --release -p stagegate-stats --example power`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use stagegate_stats::sequential::{Msprt, fixed_horizon_events};

fn main() {
    let (p0, alpha, power) = (0.02, 0.05, 0.8);
    println!("| regression | fixed horizon (events) | mSPRT, 80% detected by (events) | ratio |");
    println!("|---|---|---|---|");
    for rel in [0.05, 0.10, 0.25, 0.50] {
        let p1 = p0 * (1.0 + rel);
        let fixed = fixed_horizon_events(p0, p1, alpha, power).ceil();
        let runs = 400;
        let cap = (fixed * 20.0) as u64;
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let batch = Binomial::new(100, p1).unwrap();
        let mut detected_at: Vec<u64> = Vec::new();
        for _ in 0..runs {
            let mut t = Msprt::new(p0, p0 * (1.0 - p0), (p1 - p0).powi(2), alpha);
            let mut n = 0;
            while n < cap {
                n += 100;
                if t.observe_batch(batch.sample(&mut rng) as f64, 100)
                    .rejected_at
                    .is_some()
                {
                    detected_at.push(n);
                    break;
                }
            }
        }
        detected_at.sort_unstable();
        let need = (f64::from(runs) * power).ceil() as usize;
        let seq = detected_at.get(need - 1).copied();
        match seq {
            Some(s) => println!(
                "| {:.0}% ({:.2}% → {:.3}%) | {fixed:.0} | {s} | {:.2}× |",
                rel * 100.0,
                p0 * 100.0,
                p1 * 100.0,
                s as f64 / fixed
            ),
            None => println!("| {:.0}% | {fixed:.0} | > {cap} | — |", rel * 100.0),
        }
    }
}
