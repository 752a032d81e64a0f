//! stagegate-stats against reference values computed independently with scipy and numpy
//! (`tests/reference/make_fixtures.py`, output `tests/reference/fixtures.json`), including the
//! edge cases: 0 and all successes, n = 1, ties, all values tied.

use serde_json::Value;
use stagegate_stats::compare::{
    Summary, mann_whitney, sample_ratio_mismatch, two_proportions, welch,
};
use stagegate_stats::interval::{mean_t, quantile_ranks, wilson};

fn fixtures() -> Value {
    serde_json::from_str(include_str!("reference/fixtures.json")).expect("fixtures parse")
}

fn close(what: &str, got: f64, want: f64) {
    let tol = 1e-7 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, scipy says {want}"
    );
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

#[test]
fn wilson_matches_scipy() {
    for c in fixtures()["wilson"].as_array().unwrap() {
        let (k, n) = (c["k"].as_u64().unwrap(), c["n"].as_u64().unwrap());
        let w = wilson(k, n, f(&c["confidence"])).unwrap();
        close(&format!("wilson {k}/{n} low"), w.low, f(&c["low"]));
        close(&format!("wilson {k}/{n} high"), w.high, f(&c["high"]));
    }
}

#[test]
fn mean_t_matches_scipy() {
    for c in fixtures()["mean_t"].as_array().unwrap() {
        let s = Summary::of(&floats(&c["values"]));
        let i = mean_t(s.n, s.mean, s.var.sqrt(), f(&c["confidence"])).unwrap();
        close(&format!("t interval n={} low", s.n), i.low, f(&c["low"]));
        close(&format!("t interval n={} high", s.n), i.high, f(&c["high"]));
    }
    assert!(
        mean_t(1, 3.0, f64::NAN, 0.95).is_none(),
        "n = 1 has no interval"
    );
}

#[test]
fn quantile_ranks_match_the_binomial() {
    for c in fixtures()["quantile_ranks"].as_array().unwrap() {
        let n = c["n"].as_u64().unwrap();
        let (l, u, cov) = quantile_ranks(n, f(&c["q"]), f(&c["confidence"])).unwrap();
        assert_eq!(
            (l, u),
            (c["l"].as_u64().unwrap(), c["u"].as_u64().unwrap()),
            "n={n} q={}",
            c["q"]
        );
        close(&format!("coverage n={n}"), cov, f(&c["coverage"]));
    }
}

#[test]
fn two_proportions_match_scipy() {
    for c in fixtures()["two_proportions"].as_array().unwrap() {
        let g = |k: &str| c[k].as_u64().unwrap();
        let r = two_proportions(
            g("k_ref"),
            g("n_ref"),
            g("k_pilot"),
            g("n_pilot"),
            f(&c["confidence"]),
        )
        .unwrap();
        let name = format!(
            "{}/{} vs {}/{}",
            g("k_ref"),
            g("n_ref"),
            g("k_pilot"),
            g("n_pilot")
        );
        close(&format!("{name} effect"), r.effect, f(&c["effect"]));
        close(&format!("{name} z"), r.statistic, f(&c["z"]));
        close(&format!("{name} p"), r.p_value, f(&c["p"]));
        close(&format!("{name} low"), r.interval.low, f(&c["low"]));
        close(&format!("{name} high"), r.interval.high, f(&c["high"]));
    }
}

#[test]
fn welch_matches_scipy() {
    for c in fixtures()["welch"].as_array().unwrap() {
        let (x, y) = (floats(&c["reference"]), floats(&c["pilot"]));
        let r = welch(Summary::of(&x), Summary::of(&y), f(&c["confidence"])).unwrap();
        let name = format!("welch {}v{}", x.len(), y.len());
        close(&format!("{name} t"), r.statistic, f(&c["t"]));
        close(&format!("{name} p"), r.p_value, f(&c["p"]));
        close(&format!("{name} df"), r.df.unwrap(), f(&c["df"]));
        close(&format!("{name} effect"), r.effect, f(&c["effect"]));
        close(&format!("{name} low"), r.interval.low, f(&c["low"]));
        close(&format!("{name} high"), r.interval.high, f(&c["high"]));
    }
}

#[test]
fn mann_whitney_and_hodges_lehmann_match_scipy_and_numpy() {
    for c in fixtures()["mann_whitney"].as_array().unwrap() {
        let (x, y) = (floats(&c["reference"]), floats(&c["pilot"]));
        let r = mann_whitney(&x, &y, f(&c["confidence"])).unwrap();
        let name = format!("MWU {}v{}", x.len(), y.len());
        close(&format!("{name} U"), r.statistic, f(&c["u"]));
        close(&format!("{name} p"), r.p_value, f(&c["p"]));
        close(&format!("{name} HL"), r.effect, f(&c["effect"]));
        close(&format!("{name} low"), r.interval.low, f(&c["low"]));
        close(&format!("{name} high"), r.interval.high, f(&c["high"]));
        assert!(!r.approximate);
    }
}

#[test]
fn srm_matches_scipy() {
    for c in fixtures()["srm"].as_array().unwrap() {
        let obs: Vec<u64> = c["observed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let (chi2, p) = sample_ratio_mismatch(&obs, &floats(&c["shares"])).unwrap();
        close(&format!("srm {obs:?} chi2"), chi2, f(&c["chi2"]));
        close(&format!("srm {obs:?} p"), p, f(&c["p"]));
    }
}
