//! Values in their units, for the report and the scaling plan.
//!
//! Seed 001's worked example writes actuals as a reader says them — "92% acceptance", "p95
//! 13s", "5 hrs/week saved" — not as stored (`0.9201 ratio`, `13105 ms`). A criterion's `unit`
//! (Agent Card §12, as the card writes it) decides how its numbers are shown:
//!
//! | card `unit` | shown as | example |
//! |---|---|---|
//! | `ratio` (a fraction 0–1) | percent | `0.9201` → `92.01%` |
//! | `pp` (a difference of two rates, report only) | percentage points | `-0.0012` → `-0.12 pp` |
//! | `ms`, when the criterion's threshold is 1 s or more | seconds | `13105` → `13.11 s` |
//! | a currency code (`USD`, `EUR`, `GBP`, …) | money, to cents | `73538.987` → `$73,538.99` |
//! | `count` | the bare number | `0` → `0` |
//! | anything else (`min`, `h/week`, `tokens`, …) | number and unit | `4.298 min` |
//!
//! Money is rounded to cents (issue "main job" §10); a price below one dollar that is not a
//! whole number of cents (a cost per request of $0.004998) keeps its significant digits, since
//! cents would show it as $0.00. Seconds are chosen per criterion from its threshold, so a
//! criterion's target, actual and interval are always in the same unit.

use crate::items::{fmt_money, fmt_value};

/// How many digits a value keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Four significant digits ([`fmt_value`]); percentages to two decimals. For tables that
    /// sit beside a verdict, so a value just short of a threshold never prints as the threshold.
    Full,
    /// Three significant digits (integers from 1,000 up kept whole); for prose such as the
    /// checklist's evidence column ("92% acceptance, p95 13.1 s").
    Compact,
}

/// The unit a value is shown in (table in the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// A fraction shown as a percentage.
    Percent,
    /// A difference of two fractions, in percentage points.
    PercentPoints,
    /// Milliseconds shown as seconds.
    Seconds,
    /// Money in the currency with this ISO 4217 code.
    Money(String),
    /// A count: the bare number.
    Count,
    /// Any other unit, written after the number.
    Plain(String),
    /// No unit.
    Bare,
}

/// ISO 4217 codes read as money (the cards' `unit` and the economics inputs are in USD).
const CURRENCIES: &[&str] = &[
    "USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "INR", "CNY",
];

impl Shown {
    /// The display unit for a card `unit`; `reference` is the criterion's threshold (in the
    /// card's unit), which decides whether milliseconds read better as seconds (≥ 1,000 ms).
    pub fn of(unit: Option<&str>, reference: f64) -> Shown {
        match unit.map(str::trim) {
            None | Some("") => Shown::Bare,
            Some("ratio") => Shown::Percent,
            Some("pp") => Shown::PercentPoints,
            Some("ms") if reference.abs() >= 1000.0 => Shown::Seconds,
            Some("count") => Shown::Count,
            Some(u) if CURRENCIES.contains(&u.to_ascii_uppercase().as_str()) => {
                Shown::Money(u.to_ascii_uppercase())
            }
            Some(u) => Shown::Plain(u.to_owned()),
        }
    }

    /// `v` (in the card's unit) in this display unit, e.g. `92.01%`, `13.11 s`, `$1,234.50`.
    pub fn fmt(&self, v: f64, p: Precision) -> String {
        let num = |x: f64| match p {
            Precision::Full => fmt_value(x),
            Precision::Compact => compact(x),
        };
        match self {
            Shown::Percent | Shown::PercentPoints => {
                let pct = v * 100.0;
                let pct = match p {
                    // Two decimals of a percent, as the report has always shown rates.
                    Precision::Full if pct.is_finite() => (pct * 100.0).round() / 100.0,
                    _ => pct,
                };
                if matches!(self, Shown::Percent) {
                    format!("{}%", num(pct))
                } else {
                    format!("{} pp", num(pct))
                }
            }
            Shown::Seconds => format!("{} s", num(v / 1000.0)),
            Shown::Money(code) => money(v, code, p),
            Shown::Count | Shown::Bare => num(v),
            Shown::Plain(u) => format!("{} {u}", num(v)),
        }
    }
}

/// `v` of a criterion in `unit` with threshold `reference`, e.g. `quantity(13105.0,
/// Some("ms"), 20000.0, Precision::Compact)` = `13.1 s`.
pub fn quantity(v: f64, unit: Option<&str>, reference: f64, p: Precision) -> String {
    Shown::of(unit, reference).fmt(v, p)
}

/// Money to cents with its currency: `$73,538.99` for USD, `1,250.00 EUR` otherwise; a
/// sub-dollar amount that is not a whole number of cents keeps its significant digits
/// (`$0.004998`).
pub fn money(v: f64, code: &str, p: Precision) -> String {
    if !v.is_finite() {
        return format!("{} {code}", fmt_value(v));
    }
    let whole_cents = ((v * 100.0).round() - v * 100.0).abs() < 1e-6;
    let digits = if v.abs() >= 1.0 || whole_cents || v == 0.0 {
        fmt_money(v.abs())
    } else {
        match p {
            Precision::Full => fmt_value(v.abs()),
            Precision::Compact => compact(v.abs()),
        }
    };
    let sign = if v < 0.0 && digits.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    if code == "USD" {
        format!("{sign}${digits}")
    } else {
        format!("{sign}{digits} {code}")
    }
}

/// Money in USD to cents, e.g. `$55,538.99`, `-$1,200.00`.
pub fn usd(v: f64) -> String {
    money(v, "USD", Precision::Full)
}

/// Months to one decimal, e.g. `9.7 months` (issue "main job" §10: "months to one decimal").
pub fn months(m: f64) -> String {
    let t = (m * 10.0).round() / 10.0;
    format!("{t:.1} months")
}

/// Days as the period a reader names: whole years of 365 days (`2555` → `7 years`), whole
/// months of 30 days (`180` → `6 months`), else days.
pub fn period_days(days: u32) -> String {
    let plural = |n: u32, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if days >= 365 && days.is_multiple_of(365) {
        plural(days / 365, "year")
    } else if days >= 30 && days.is_multiple_of(30) {
        plural(days / 30, "month")
    } else {
        plural(days, "day")
    }
}

/// A comparator as prose writes it: `≥`, `≤`, `<`, `>`, `=`.
pub fn comparator_sign(symbol: &str) -> &str {
    match symbol {
        ">=" => "≥",
        "<=" => "≤",
        "==" => "=",
        other => other,
    }
}

/// Three significant digits, integers of 1,000 and more kept whole, trailing zeros trimmed:
/// `92.01` → `92`, `91.667` → `91.7`, `13.105` → `13.1`, `0.004998` → `0.005`, `13105` →
/// `13105`.
pub fn compact(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return fmt_value(x);
    }
    if x.abs() >= 1000.0 {
        return fmt_value(x.round());
    }
    if x.abs() < 1e-6 {
        return fmt_value(x);
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 8) as usize;
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_seconds_money_and_counts() {
        let c = Precision::Compact;
        let f = Precision::Full;
        // The worked example's actuals (seed 001): 92% acceptance, p95 13 s, 5 hrs/week.
        assert_eq!(quantity(0.9201, Some("ratio"), 0.9, c), "92%");
        assert_eq!(quantity(0.9201, Some("ratio"), 0.9, f), "92.01%");
        assert_eq!(quantity(13105.0, Some("ms"), 20000.0, c), "13.1 s");
        assert_eq!(quantity(13105.0, Some("ms"), 20000.0, f), "13.11 s");
        assert_eq!(quantity(450.0, Some("ms"), 800.0, f), "450 ms");
        assert_eq!(quantity(5.0, Some("h/week"), 4.0, c), "5 h/week");
        assert_eq!(quantity(0.0, Some("count"), 0.0, c), "0");
        assert_eq!(quantity(-0.0012, Some("pp"), 0.0, f), "-0.12 pp");
        assert_eq!(quantity(73538.987, Some("USD"), 0.0, f), "$73,538.99");
        assert_eq!(quantity(0.004998, Some("USD"), 0.006, f), "$0.004998");
        assert_eq!(quantity(0.05, Some("usd"), 0.0, f), "$0.05");
        assert_eq!(quantity(-1200.0, Some("EUR"), 0.0, f), "-1,200.00 EUR");
    }

    #[test]
    fn compact_digits() {
        assert_eq!(compact(92.01), "92");
        assert_eq!(compact(91.667), "91.7");
        assert_eq!(compact(-28.2), "-28.2");
        assert_eq!(compact(0.004998), "0.005");
        assert_eq!(compact(13105.4), "13105");
        assert_eq!(compact(4.298), "4.3");
    }

    #[test]
    fn periods_and_months() {
        assert_eq!(period_days(2555), "7 years");
        assert_eq!(period_days(180), "6 months");
        assert_eq!(period_days(45), "45 days");
        assert_eq!(period_days(1), "1 day");
        assert_eq!(months(9.66), "9.7 months");
        assert_eq!(months(10.0), "10.0 months");
    }
}
