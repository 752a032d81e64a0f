//! flagd's `fractional` bucketing: the bucketing value is the flag key followed by the
//! targeting key (flagd's default when no bucket-by expression is given), hashed with
//! MurmurHash3 x86_32, seed 0, over its UTF-8 bytes; the bucket is `(hash × total weight) >>
//! 32`, and the variants are walked in order, the first whose cumulative weight exceeds the
//! bucket winning (flagd's fractional operation specification and `fractional.go`, the 2025
//! revision that replaced `abs(int32 hash) / MaxInt32 × 100`: weights need not sum to 100,
//! and every bucket gets exactly its share of the 2³² hashes).
//!
//! Because the first variant owns the hashes below `weight₀ / total × 2³²`, a targeting key in
//! the first variant at p% stays in it at every q ≥ p%: a rollout widens without reshuffling.

use std::io::Cursor;

/// MurmurHash3 x86_32 (seed 0) of `flag_key` followed by `targeting_key`.
pub fn bucket_hash(flag_key: &str, targeting_key: &str) -> u32 {
    let (f, t) = (flag_key.as_bytes(), targeting_key.as_bytes());
    let n = f.len() + t.len();
    // The usual keys fit on the stack: an evaluation allocates nothing.
    let mut on_stack = [0u8; 256];
    if n <= on_stack.len() {
        on_stack[..f.len()].copy_from_slice(f);
        on_stack[f.len()..n].copy_from_slice(t);
        return hash(&on_stack[..n]);
    }
    hash(&[f, t].concat())
}

/// MurmurHash3 x86_32 (seed 0) of a bucketing value's bytes (flagd's explicit bucket-by
/// expressions hash the value they produce).
pub fn hash(bytes: &[u8]) -> u32 {
    // Reading from memory cannot fail.
    murmur3::murmur3_32(&mut Cursor::new(bytes), 0).unwrap_or(0)
}

/// The bucket of `hash` among `total_weight` buckets: `(hash × total) >> 32`, in
/// `[0, total)` for a positive total.
pub fn bucket(hash: u32, total_weight: u64) -> u64 {
    ((u128::from(hash) * u128::from(total_weight)) >> 32) as u64
}

/// The variant `hash` falls in among `variants` (name, weight), or `None` when the weights sum
/// to 0.
pub fn pick(hash: u32, variants: &[(String, u32)]) -> Option<&str> {
    let total: u64 = variants.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let b = bucket(hash, total);
    let mut cumulative = 0u64;
    for (name, w) in variants {
        cumulative += u64::from(*w);
        if b < cumulative {
            return Some(name);
        }
    }
    None
}

/// The variant of `targeting_key` for `flag_key`'s fractional split.
pub fn fractional<'a>(
    flag_key: &str,
    targeting_key: &str,
    variants: &'a [(String, u32)],
) -> Option<&'a str> {
    pick(bucket_hash(flag_key, targeting_key), variants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn on_off(on: u32, total: u32) -> Vec<(String, u32)> {
        vec![("on".into(), on), ("off".into(), total - on)]
    }

    #[test]
    fn the_fifty_fifty_edge_is_at_two_to_the_31() {
        let v = on_off(50, 100);
        assert_eq!(pick((1u32 << 31) - 1, &v), Some("on"));
        assert_eq!(pick(1u32 << 31, &v), Some("off"));
        assert_eq!(pick(0, &v), Some("on"));
        assert_eq!(pick(u32::MAX, &v), Some("off"));
        assert_eq!(bucket(u32::MAX, 100), 99);
        assert_eq!(
            bucket(u32::MAX, u64::from(u32::MAX)),
            u64::from(u32::MAX) - 1
        );
        assert_eq!(pick(7, &on_off(0, 0)), None);
    }

    #[test]
    fn murmur3_matches_the_reference_vectors() {
        // MurmurHash3_x86_32 reference values (Appleby's SMHasher; also in the murmur3 crate's
        // and Guava's tests): "" → 0, "hello" → 0x248bfa47, "The quick brown fox jumps over the
        // lazy dog" → 0x2e4ff723, all with seed 0.
        assert_eq!(bucket_hash("", ""), 0);
        assert_eq!(bucket_hash("hel", "lo"), 0x248b_fa47);
        assert_eq!(
            bucket_hash("The quick brown fox ", "jumps over the lazy dog"),
            0x2e4f_f723
        );
    }

    /// The flagd test bed's `@fractional-v2` vectors (open-feature/flagd-testbed, commit
    /// 82ba89e, release 3.9.0: `evaluator/gherkin/fractional.feature` with the flags of
    /// `evaluator/flags/testkit-flags.json`): (bucketing value as flagd builds it, variants
    /// and weights, expected variant).
    #[test]
    fn flagd_testbed_fractional_v2_vectors() {
        let suits = |names: [&str; 4]| -> Vec<(String, u32)> {
            names.iter().map(|n| ((*n).to_owned(), 25)).collect()
        };
        let four = suits(["clubs", "diamonds", "hearts", "spades"]);
        // "fractional-flag": cat($flagd.flagKey, user.name), four suits at 25.
        for (name, want) in [
            ("jack", "hearts"),
            ("queen", "spades"),
            ("ten", "clubs"),
            ("nine", "diamonds"),
            ("3", "clubs"),
        ] {
            assert_eq!(
                fractional("fractional-flag", name, &four),
                Some(want),
                "{name}"
            );
        }
        // "fractional-flag-A-shared-seed" (and B): cat("shared-seed", user.name).
        for (name, want) in [
            ("seven", "hearts"),
            ("eight", "diamonds"),
            ("nine", "clubs"),
            ("two", "spades"),
        ] {
            let h = hash(format!("shared-seed{name}").as_bytes());
            assert_eq!(pick(h, &four), Some(want), "{name}");
        }
        // "fractional-flag-shorthand": flag key + targeting key, heads (weight 1 by default)
        // and tails at 1.
        let coin = vec![("heads".to_owned(), 1), ("tails".to_owned(), 1)];
        for (key, want) in [("jon@company.com", "heads"), ("jane@company.com", "tails")] {
            assert_eq!(
                fractional("fractional-flag-shorthand", key, &coin),
                Some(want),
                "{key}"
            );
        }
        // "fractional-single-entry-flag": one variant takes every hash.
        let single = vec![("single".to_owned(), 1)];
        assert_eq!(
            fractional(
                "fractional-single-entry-flag",
                "some-targeting-key",
                &single
            ),
            Some("single")
        );
        // "fractional-hash-edge-flag": the targeting key alone, lower/upper at 50; the keys were
        // searched so their hashes sit at the boundaries (0, 2³¹ − 1, 2³¹, 2³² − 1 …).
        let halves = vec![("lower".to_owned(), 50), ("upper".to_owned(), 50)];
        for (key, want) in [
            ("ejOoVL", "lower"),
            ("bY9fO-", "lower"),
            ("SI7p-", "lower"),
            ("6LvT0", "upper"),
            ("ceQdGm", "upper"),
        ] {
            assert_eq!(pick(hash(key.as_bytes()), &halves), Some(want), "{key}");
        }
        let edges: Vec<u32> = ["SI7p-", "6LvT0"]
            .iter()
            .map(|k| hash(k.as_bytes()))
            .collect();
        assert_eq!(
            edges,
            [(1u32 << 31) - 1, 1u32 << 31],
            "the 50/50 edge, end to end"
        );
    }

    proptest! {
        #[test]
        fn a_key_in_at_p_stays_in_at_every_larger_share(key in ".{0,40}", p in 0u32..=100, q in 0u32..=100) {
            let (lo, hi) = (p.min(q), p.max(q));
            let (at_lo, at_hi, fine) = (on_off(lo, 100), on_off(hi, 100), on_off(lo * 1000, 100_000));
            let lo_variant = fractional("flag", &key, &at_lo).map(str::to_owned);
            if lo_variant.as_deref() == Some("on") {
                prop_assert_eq!(fractional("flag", &key, &at_hi), Some("on"));
            }
            // The same split in thousandths of a percent puts the key in the same variant.
            prop_assert_eq!(lo_variant.as_deref(), fractional("flag", &key, &fine));
        }

        #[test]
        fn the_hash_is_of_the_keys_joined_whatever_their_length(flag in ".{0,200}", key in ".{0,200}") {
            // Either side of the 256-byte stack buffer.
            prop_assert_eq!(bucket_hash(&flag, &key), hash(format!("{flag}{key}").as_bytes()));
        }
    }

    #[test]
    fn shares_follow_the_weights_within_binomial_tolerance() {
        let n = 100_000u32;
        for pct in [1u32, 10, 25, 50, 90] {
            let on = (0..n)
                .filter(|i| {
                    fractional("rollout", &format!("user-{i}"), &on_off(pct, 100)) == Some("on")
                })
                .count() as f64;
            let p = f64::from(pct) / 100.0;
            let sd = (f64::from(n) * p * (1.0 - p)).sqrt();
            assert!((on - f64::from(n) * p).abs() < 5.0 * sd, "{pct}%: {on}");
        }
    }
}
