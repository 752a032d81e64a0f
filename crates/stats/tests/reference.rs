//! stagegate-stats against reference values computed independently with scipy, statsmodels and
//! numpy (`tests/reference/make_fixtures.py`, implementations in
//! `tools/crosscheck/reference.py`, output `tests/reference/fixtures.json`), including the edge
//! cases: 0 and all successes, n = 1, ties, all values tied, sizes up to 10¹⁰.

use serde_json::Value;
use stagegate_stats::compare::{
    Summary, mann_whitney, mann_whitney_null_cdf, quantile_difference, ratio_of_means, risk_ratio,
    sample_ratio_mismatch, two_proportions, welch,
};
use stagegate_stats::dist;
use stagegate_stats::interval::{mean_t, quantile_ranks, wilson};
use stagegate_stats::units::{self, ArmUnit, Sums};

fn fixtures() -> Value {
    serde_json::from_str(include_str!("reference/fixtures.json")).expect("fixtures parse")
}

/// Agreement to 1e-9 relative (1e-12 absolute near zero) — the bar for distributions.
fn close(what: &str, got: f64, want: f64) {
    close_to(what, got, want, 1e-9);
}

fn close_to(what: &str, got: f64, want: f64, rel: f64) {
    let tol = rel * want.abs() + 1e-12;
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, reference says {want} (relative error {:e})",
        ((got - want) / want).abs()
    );
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// A bound: `null` in the fixtures is unbounded.
fn bound(v: &Value, inf: f64) -> f64 {
    v.as_f64().unwrap_or(inf)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

#[test]
fn t_quantiles_match_scipy_at_every_size() {
    for row in rows(&fixtures()["t_upper"]) {
        let (df, a, want) = (row[0], row[1], row[2]);
        close(&format!("t.isf({a}, {df})"), dist::t_upper(a, df), want);
    }
}

#[test]
fn t_tails_match_scipy_at_every_size() {
    for row in rows(&fixtures()["t_sf"]) {
        let (df, x, want) = (row[0], row[1], row[2]);
        close(&format!("t.sf({x}, {df})"), dist::t_sf(x, df), want);
    }
}

#[test]
fn chi_square_matches_scipy() {
    for row in rows(&fixtures()["chi2_upper"]) {
        let (df, a, want) = (row[0], row[1], row[2]);
        close(
            &format!("chi2.isf({a}, {df})"),
            dist::chi2_upper(a, df),
            want,
        );
    }
    for row in rows(&fixtures()["chi2_sf"]) {
        let (df, x, want) = (row[0], row[1], row[2]);
        close(&format!("chi2.sf({x}, {df})"), dist::chi2_sf(x, df), want);
    }
}

#[test]
fn normal_and_binomial_quantiles_match_scipy() {
    for row in rows(&fixtures()["normal_upper"]) {
        close(
            &format!("norm.isf({})", row[0]),
            dist::normal_upper(row[0]),
            row[1],
        );
    }
    for row in rows(&fixtures()["binomial_quantile"]) {
        let (n, q, a, want) = (row[0] as u64, row[1], row[2], row[3] as u64);
        assert_eq!(
            dist::binomial_quantile(a, n, q),
            Some(want),
            "binom.ppf({a}, {n}, {q})"
        );
    }
}

#[test]
fn wilson_matches_statsmodels() {
    for c in fixtures()["wilson"].as_array().unwrap() {
        let (k, n) = (c["k"].as_u64().unwrap(), c["n"].as_u64().unwrap());
        let w = wilson(k, n, f(&c["confidence"])).unwrap();
        close(&format!("wilson {k}/{n} low"), w.low, f(&c["low"]));
        close(&format!("wilson {k}/{n} high"), w.high, f(&c["high"]));
        assert!(!w.coverage_exact && w.coverage == w.confidence);
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

/// The case that hung `review`: a mean at its threshold over up to 10¹⁰ values.
#[test]
fn mean_t_matches_scipy_at_every_size() {
    for c in fixtures()["mean_t_summary"].as_array().unwrap() {
        let n = c["n"].as_u64().unwrap();
        let i = mean_t(n, f(&c["mean"]), f(&c["sd"]), f(&c["confidence"])).unwrap();
        close(&format!("t interval n={n} low"), i.low, f(&c["low"]));
        close(&format!("t interval n={n} high"), i.high, f(&c["high"]));
    }
}

#[test]
fn quantile_ranks_and_coverage_match_the_binomial() {
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
fn two_proportions_match_statsmodels() {
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
        check_comparison(&name, &r, c);
    }
}

#[test]
fn risk_ratio_matches_the_inverted_statsmodels_score_test() {
    for c in fixtures()["risk_ratio"].as_array().unwrap() {
        let g = |k: &str| c[k].as_u64().unwrap();
        let r = risk_ratio(
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
        assert_eq!(
            r.effect.is_some(),
            c["effect"].is_number(),
            "{name} effect defined"
        );
        if let Some(e) = r.effect {
            close(&format!("{name} effect"), e, f(&c["effect"]));
        }
        // brentq and bisection each stop near 1e-14 in ln θ.
        close_to(
            &format!("{name} low"),
            r.interval.low,
            bound(&c["low"], f64::NEG_INFINITY),
            1e-9,
        );
        let high = bound(&c["high"], f64::INFINITY);
        if high.is_infinite() {
            assert_eq!(r.interval.high, high, "{name} unbounded above");
        } else {
            close(&format!("{name} high"), r.interval.high, high);
        }
        close(&format!("{name} p"), r.p_value.unwrap(), f(&c["p"]));
    }
}

#[test]
fn welch_and_ratio_of_means_match_scipy() {
    for c in fixtures()["welch"].as_array().unwrap() {
        let (rf, pl) = (
            Summary::of(&floats(&c["reference"])),
            Summary::of(&floats(&c["pilot"])),
        );
        let conf = f(&c["confidence"]);
        let r = welch(rf, pl, conf).unwrap();
        let name = format!("welch {}v{}", rf.n, pl.n);
        close(&format!("{name} t"), r.statistic, f(&c["t"]));
        close(&format!("{name} p"), r.p_value.unwrap(), f(&c["p"]));
        close(&format!("{name} df"), r.df.unwrap(), f(&c["df"]));
        close(
            &format!("{name} effect"),
            r.effect.unwrap(),
            f(&c["effect"]),
        );
        close(&format!("{name} low"), r.interval.low, f(&c["low"]));
        close(&format!("{name} high"), r.interval.high, f(&c["high"]));
        let q = ratio_of_means(rf, pl, conf).unwrap();
        close(
            &format!("{name} rel"),
            q.effect.unwrap(),
            f(&c["rel_effect"]),
        );
        close(&format!("{name} rel low"), q.interval.low, f(&c["rel_low"]));
        close(
            &format!("{name} rel high"),
            q.interval.high,
            f(&c["rel_high"]),
        );
    }
}

#[test]
fn mann_whitney_matches_scipy_and_the_exact_distribution() {
    for c in fixtures()["mann_whitney"].as_array().unwrap() {
        let (rf, pl) = (floats(&c["reference"]), floats(&c["pilot"]));
        let r = mann_whitney(&rf, &pl, f(&c["confidence"])).unwrap();
        let name = format!("MW {}v{}", rf.len(), pl.len());
        close(&format!("{name} U"), r.statistic, f(&c["u"]));
        close(&format!("{name} p"), r.p_value.unwrap(), f(&c["p"]));
        close(&format!("{name} HL"), r.effect.unwrap(), f(&c["effect"]));
        close(&format!("{name} low"), r.interval.low, f(&c["low"]));
        close(&format!("{name} high"), r.interval.high, f(&c["high"]));
        close(
            &format!("{name} coverage"),
            r.interval.coverage,
            f(&c["coverage"]),
        );
        assert_eq!(
            r.interval.coverage_exact,
            c["coverage_exact"].as_bool().unwrap(),
            "{name} exactness"
        );
    }
    for c in fixtures()["mw_null_cdf"].as_array().unwrap() {
        let (a, b) = (
            c["n1"].as_u64().unwrap() as usize,
            c["n2"].as_u64().unwrap() as usize,
        );
        let got = mann_whitney_null_cdf(a, b);
        let want = floats(&c["cdf"]);
        assert_eq!(got.len(), want.len());
        for (u, (g, w)) in got.iter().zip(&want).enumerate() {
            close(&format!("P(U <= {u}) for {a}, {b}"), *g, *w);
        }
    }
}

#[test]
fn quantile_differences_match_the_order_statistic_construction() {
    for c in fixtures()["quantile_difference"].as_array().unwrap() {
        let (rf, pl) = (floats(&c["reference"]), floats(&c["pilot"]));
        let (q, relative) = (f(&c["q"]), c["relative"].as_bool().unwrap());
        let r = quantile_difference(&rf, &pl, q, relative, f(&c["confidence"])).unwrap();
        let name = format!(
            "p{} {}v{} relative={relative}",
            q * 100.0,
            rf.len(),
            pl.len()
        );
        close(
            &format!("{name} effect"),
            r.effect.unwrap(),
            f(&c["effect"]),
        );
        close(&format!("{name} low"), r.interval.low, f(&c["low"]));
        close(&format!("{name} high"), r.interval.high, f(&c["high"]));
        close(
            &format!("{name} coverage"),
            r.interval.coverage,
            f(&c["coverage"]),
        );
        assert!(r.interval.coverage_exact && r.p_value.is_none());
    }
    // 30 values a side cannot bound a p99 at √0.95 each: the product falls short.
    let x: Vec<f64> = (0..30).map(f64::from).collect();
    let r = quantile_difference(&x, &x, 0.99, false, 0.95).unwrap();
    assert!(!r.interval.reaches_confidence());
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
        close("chi2", chi2, f(&c["chi2"]));
        close("p", p, f(&c["p"]));
    }
}

/// The effect, both bounds and the p-value of `r` against a fixture case.
fn check_comparison(name: &str, r: &stagegate_stats::compare::Comparison, c: &Value) {
    close(
        &format!("{name} effect"),
        r.effect.unwrap(),
        f(&c["effect"]),
    );
    close(&format!("{name} low"), r.interval.low, f(&c["low"]));
    close(&format!("{name} high"), r.interval.high, f(&c["high"]));
    close(&format!("{name} p"), r.p_value.unwrap(), f(&c["p"]));
}

#[test]
fn per_unit_comparisons_match_the_covariance_matrix_form() {
    let arm = |v: &Value| -> Vec<ArmUnit> {
        rows(v)
            .iter()
            .map(|r| ArmUnit {
                metric: Sums { y: r[0], n: r[1] },
                covariate: Sums { y: r[2], n: r[3] },
            })
            .collect()
    };
    for c in fixtures()["units_independent"].as_array().unwrap() {
        let (relative, cuped) = (
            c["relative"].as_bool().unwrap(),
            c["cuped"].as_bool().unwrap(),
        );
        let r = units::independent(
            &arm(&c["reference"]),
            &arm(&c["pilot"]),
            relative,
            cuped,
            f(&c["confidence"]),
        )
        .unwrap();
        let name = format!("independent relative={relative} cuped={cuped}");
        check_comparison(&name, &r.comparison, c);
        assert_eq!(
            r.theta.is_some(),
            c["theta"].is_number(),
            "{name}: CUPED applied?"
        );
        if c["theta"].is_number() {
            close(&format!("{name} θ"), r.theta.unwrap(), f(&c["theta"]));
            close(
                &format!("{name} reduction"),
                r.variance_reduction.unwrap(),
                f(&c["variance_reduction"]),
            );
            close(
                &format!("{name} unadjusted"),
                r.unadjusted_effect.unwrap(),
                f(&c["unadjusted_effect"]),
            );
        }
    }
    for c in fixtures()["units_paired"].as_array().unwrap() {
        let relative = c["relative"].as_bool().unwrap();
        let pairs: Vec<(Sums, Sums)> = rows(&c["units"])
            .iter()
            .map(|r| (Sums { y: r[0], n: r[1] }, Sums { y: r[2], n: r[3] }))
            .collect();
        let r = units::paired(&pairs, relative, f(&c["confidence"])).unwrap();
        let name = format!("paired relative={relative}");
        check_comparison(&name, &r.comparison, c);
        assert_eq!(r.reference_units, c["reference_units"].as_u64().unwrap());
        assert_eq!(r.pilot_units, c["pilot_units"].as_u64().unwrap());
    }
}

#[test]
fn hodges_lehmann_matches_brute_force_at_20_by_20() {
    let c = &fixtures()["hodges_lehmann_20"];
    let (mut x, mut y) = (floats(&c["reference"]), floats(&c["pilot"]));
    x.sort_by(f64::total_cmp);
    y.sort_by(f64::total_cmp);
    close(
        "HL 20x20",
        stagegate_stats::hodges_lehmann::shift(&x, &y).unwrap(),
        f(&c["shift"]),
    );
    for (k, want) in c["order_statistics"].as_object().unwrap() {
        let k: u64 = k.parse().unwrap();
        let got = stagegate_stats::hodges_lehmann::select(&x, &y, k).unwrap();
        close(&format!("d[{k}]"), got, f(want));
    }
}
