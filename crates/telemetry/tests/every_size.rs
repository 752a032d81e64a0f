//! The hang case where the statistics live: a mean exactly on its threshold, over 1, 20, 10⁶
//! and 2·10⁷ (and 10¹⁰) values, gives its t interval (scipy's, per stagegate-stats' fixtures)
//! and "no number of events decides it" — and returns. `bench/` times it.

use stagegate_core::review::{MoreEvents, Target};
use stagegate_telemetry::{Sufficient, interval_of};

#[test]
fn a_mean_on_its_threshold_returns_at_every_size() {
    let (mean, sd) = (6.63, 1.7);
    for n in [1u64, 20, 1_000_000, 20_000_000, 10_000_000_000] {
        let u = interval_of(
            &Sufficient::Mean { n, var: sd * sd },
            mean,
            0.95,
            Target::Limit(mean),
        );
        assert!(u.sampled);
        if n == 1 {
            assert_eq!(u.interval, None);
            assert_eq!(u.more_events, Some(MoreEvents::ForCoverage { events: 1 }));
            continue;
        }
        let i = u.interval.unwrap();
        let want = stagegate_stats::interval::mean_t(n, mean, sd, 0.95).unwrap();
        assert_eq!((i.low, i.high), (want.low, want.high));
        assert!(i.contains(mean));
        assert_eq!(u.more_events, Some(MoreEvents::Never), "n = {n}");
    }
}

#[test]
fn a_rate_and_a_ratio_on_their_thresholds_return_too() {
    for n in [1u64, 20, 1_000_000, 20_000_000, 10_000_000_000] {
        let u = interval_of(
            &Sufficient::Rate { hit: n / 2, n },
            (n / 2) as f64 / n as f64,
            0.95,
            Target::Limit((n / 2) as f64 / n as f64),
        );
        assert_eq!(u.more_events, Some(MoreEvents::Never), "rate n = {n}");
    }
    let u = interval_of(
        &Sufficient::Ratio {
            den: 2e7,
            syy: 1e6,
            sxx: 0.0,
            sxy: 0.0,
            n: 20_000_000,
        },
        2.0,
        0.95,
        Target::Limit(2.0),
    );
    assert_eq!(u.more_events, Some(MoreEvents::Never));
}
