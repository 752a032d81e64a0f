//! Calendar dates as cards and records write them: `YYYY-MM-DD`.
//!
//! A `serde(deserialize_with)` adaptor for [`jiff::civil::Date`] fields whose error says the
//! expected format, e.g. "`12/06/2026` is not a date in the form YYYY-MM-DD". The date itself is
//! parsed by jiff; its reason is kept for dates that are well-formed but impossible
//! (`2026-02-30`). The JSON Schema is unchanged (schemars reads the field's type).

use jiff::civil::Date;
use serde::{Deserialize, Deserializer};

/// What every date error says is expected.
pub const EXPECTED: &str = "YYYY-MM-DD";

/// Parses a `YYYY-MM-DD` date, explaining a wrong one.
///
/// # Errors
/// A message naming the expected format and, when jiff has one, why the text is not a date.
pub fn parse(s: &str) -> Result<Date, String> {
    let well_formed = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    match s.parse::<Date>() {
        Ok(d) if well_formed => Ok(d),
        Ok(_) => Err(format!("`{s}` is not a date in the form {EXPECTED}")),
        Err(e) if well_formed => Err(format!("`{s}` is not a valid date ({e})")),
        Err(_) => Err(format!("`{s}` is not a date in the form {EXPECTED}")),
    }
}

/// `deserialize_with` for a `Date` field.
///
/// # Errors
/// The deserializer's error, or a custom one from [`parse`].
pub fn date<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map_err(serde::de::Error::custom)
}

/// `deserialize_with` for an `Option<Date>` field (use with `#[serde(default)]`).
///
/// # Errors
/// As [`date`].
pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_the_format() {
        assert_eq!(parse("2026-06-12").unwrap().to_string(), "2026-06-12");
        for bad in [
            "12/06/2026",
            "2026/06/12",
            "2026-6-12",
            "notadate",
            "20260612",
            "2026-06-12T00:00:00Z",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("YYYY-MM-DD") && e.contains(bad), "{e}");
        }
        let e = parse("2026-02-30").unwrap_err();
        assert!(e.starts_with("`2026-02-30` is not a valid date ("), "{e}");
    }
}
