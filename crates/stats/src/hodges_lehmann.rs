//! The Hodges-Lehmann shift and its distribution-free interval, exact at any sample size.
//!
//! Both need order statistics of the n₁·n₂ pairwise differences `yⱼ − xᵢ` (pilot minus
//! reference): the median, and the (c+1)-th smallest and largest for Moses' interval
//! (Hollander & Wolfe 1999, §4.3–4.4). With 200,000 values a side there are 4·10¹⁰ of them,
//! so they are never materialised. With both samples sorted, the differences form an implicit
//! matrix sorted along its rows and columns (row j: `y_j − x_{n₁−1−c}` for c = 0…n₁−1), and
//! floating-point subtraction is monotone, so the *computed* differences keep that order.
//!
//! [`select`] finds the k-th smallest by randomised selection in the implicit matrix (the
//! two-sample form of Monahan 1984, ACM TOMS Algorithm 616; Mirzaian & Arjomandi 1985), with
//! Floyd & Rivest's (1975) two-pivot sampling: keep per row the band of columns still in play,
//! draw 4,096 candidates uniformly from the bands (a fixed seed, so results are deterministic),
//! take the two sample values either side of the answer's expected position, count the
//! differences below and at each pivot in O(n₁ + n₂) staircase walks, and keep only the band
//! between them — about 1/21 of the candidates a round, so 4–6 rounds at 10⁶ a side. Once no
//! more than n₁ + n₂ candidates remain they are selected directly. Memory: a band (two `u32`)
//! and a prefix sum (`u64`) per pilot value — 16 bytes, about twice the values themselves. The answer is the exact k-th computed difference,
//! as sorting all of them would give.

/// Pairwise differences below this count are sorted directly (small samples).
const DIRECT: u64 = 4096;

/// Rounds of pivoting before the remaining candidates are selected directly; about 5 are
/// expected at 10⁶ a side, so this only bounds a pathological run.
const MAX_ROUNDS: u32 = 64;

/// The two sorted samples as an implicit matrix of differences.
struct Matrix<'a> {
    /// Reference values, ascending.
    x: &'a [f64],
    /// Pilot values, ascending.
    y: &'a [f64],
}

impl Matrix<'_> {
    /// Row j, column c: `y_j − x_{n₁−1−c}`, non-decreasing in both c and j.
    #[inline]
    fn at(&self, j: usize, c: usize) -> f64 {
        self.y[j] - self.x[self.x.len() - 1 - c]
    }

    /// The staircase walk, O(n₁ + n₂) overall: for every row j, the column `c` in its band
    /// `lo..hi` before which the values are `< p` (or `<= p` with `inclusive`). Returns the
    /// number of band entries before those columns; with `Set::Lo` or `Set::Hi` it also moves
    /// that end of every band to them (in place: a row's band is read before it is written).
    fn walk(&self, p: f64, inclusive: bool, bands: &mut [(u32, u32)], set: Set) -> u64 {
        let below = |v: f64| if inclusive { v <= p } else { v < p };
        // The boundary column is non-increasing in j (later rows hold larger values), and it
        // is never left of lo (band values there are below every pivot drawn from the band).
        let mut c = self.x.len();
        let mut count = 0u64;
        for (j, band) in bands.iter_mut().enumerate() {
            let (lo, hi) = (band.0 as usize, band.1 as usize);
            c = c.min(hi).max(lo);
            while c < hi && below(self.at(j, c)) {
                c += 1;
            }
            while c > lo && !below(self.at(j, c - 1)) {
                c -= 1;
            }
            count += (c - lo) as u64;
            match set {
                Set::Count => {}
                Set::Lo => band.0 = c as u32,
                Set::Hi => band.1 = c as u32,
            }
        }
        count
    }
}

/// Which end of the bands a walk moves.
#[derive(Clone, Copy)]
enum Set {
    Count,
    Lo,
    Hi,
}

/// A small deterministic generator (SplitMix64; Steele, Lea & Flood 2014) for pivot draws.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by Lemire's multiply-shift (bias below 2⁻⁶⁴·n).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// Candidates drawn per round to place the two pivots (Floyd & Rivest 1975).
const SAMPLE: usize = 4096;

/// Pivot offset either side of the target's position in the sorted sample: 1.5·√SAMPLE, three
/// standard deviations of that position, so the answer falls between the pivots with
/// probability about 0.997 and each round keeps about 2·96/4096 ≈ 1/21 of the candidates.
const GAP: usize = 96;

/// The `k`-th smallest (0-based) of the differences `y_j − x_i` over all pairs, for `x` and
/// `y` sorted ascending with finite values. `None` when a sample is empty or `k ≥ n₁n₂`.
pub fn select(x: &[f64], y: &[f64], k: u64) -> Option<f64> {
    let (n1, n2) = (x.len(), y.len());
    let total = (n1 as u64).checked_mul(n2 as u64)?;
    if n1 == 0 || n2 == 0 || k >= total {
        return None;
    }
    let m = Matrix { x, y };
    if total <= DIRECT {
        let mut d: Vec<f64> = (0..n2)
            .flat_map(|j| (0..n1).map(move |c| (j, c)))
            .map(|(j, c)| m.at(j, c))
            .collect();
        return Some(*d.select_nth_unstable_by(k as usize, f64::total_cmp).1);
    }
    // Candidates: in row j, the band of columns lo..hi; everything left of lo ranks below the
    // answer (`below` of them in all), everything from hi on above it. Bands and prefix sums
    // are 16 bytes a pilot value, about twice the values themselves.
    if u32::try_from(n1).is_err() {
        return None;
    }
    let mut bands = vec![(0u32, n1 as u32); n2];
    let mut below: u64 = 0;
    let mut rng = SplitMix(0x05EE_D0F5_7A6E_6A7E);
    let mut prefix = vec![0u64; n2 + 1];
    let mut sample = Vec::with_capacity(SAMPLE);
    for _ in 0..MAX_ROUNDS {
        for (j, &(lo, hi)) in bands.iter().enumerate() {
            prefix[j + 1] = prefix[j] + u64::from(hi - lo);
        }
        let remaining = prefix[n2];
        if remaining <= (n1 + n2).max(DIRECT as usize) as u64 {
            break;
        }
        // Two pivots from a sorted sample of candidates, bracketing the answer's position.
        sample.clear();
        for _ in 0..SAMPLE {
            let r = rng.below(remaining);
            let j = prefix.partition_point(|&p| p <= r) - 1;
            sample.push(m.at(j, bands[j].0 as usize + (r - prefix[j]) as usize));
        }
        sample.sort_unstable_by(f64::total_cmp);
        let pos = ((k - below) as f64 / remaining as f64 * SAMPLE as f64) as usize;
        let (p_lo, p_hi) = (
            sample[pos.saturating_sub(GAP)],
            sample[(pos + GAP).min(SAMPLE - 1)],
        );
        let lt_lo = below + m.walk(p_lo, false, &mut bands, Set::Count);
        let le_lo = below + m.walk(p_lo, true, &mut bands, Set::Count);
        let lt_hi = below + m.walk(p_hi, false, &mut bands, Set::Count);
        let le_hi = below + m.walk(p_hi, true, &mut bands, Set::Count);
        if lt_lo <= k && k < le_lo {
            return Some(p_lo);
        }
        if lt_hi <= k && k < le_hi {
            return Some(p_hi);
        }
        if k < lt_lo {
            m.walk(p_lo, false, &mut bands, Set::Hi);
        } else if k >= le_hi {
            m.walk(p_hi, true, &mut bands, Set::Lo);
            below = le_hi;
        } else {
            // Strictly between the pivots.
            m.walk(p_hi, false, &mut bands, Set::Hi);
            m.walk(p_lo, true, &mut bands, Set::Lo);
            below = le_lo;
        }
    }
    let mut rest: Vec<f64> = Vec::new();
    for (j, &(lo, hi)) in bands.iter().enumerate() {
        rest.extend((lo as usize..hi as usize).map(|c| m.at(j, c)));
    }
    let k = usize::try_from(k - below).ok()?;
    (k < rest.len()).then(|| *rest.select_nth_unstable_by(k, f64::total_cmp).1)
}

/// The median of the pairwise differences (the Hodges-Lehmann shift): the middle one, or the
/// mean of the two middle ones when n₁n₂ is even. Inputs sorted ascending, finite.
pub fn shift(x: &[f64], y: &[f64]) -> Option<f64> {
    let total = (x.len() as u64).checked_mul(y.len() as u64)?;
    if total == 0 {
        return None;
    }
    if total % 2 == 1 {
        select(x, y, total / 2)
    } else {
        Some((select(x, y, total / 2 - 1)? + select(x, y, total / 2)?) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(x: &[f64], y: &[f64]) -> Vec<f64> {
        let mut d: Vec<f64> = y
            .iter()
            .flat_map(|b| x.iter().map(move |a| b - a))
            .collect();
        d.sort_by(f64::total_cmp);
        d
    }

    #[test]
    fn selection_matches_sorting_with_ties() {
        let mut s = SplitMix(7);
        for (n1, n2) in [(1, 1), (3, 200), (97, 61), (150, 150)] {
            let mut x: Vec<f64> = (0..n1).map(|_| (s.below(20) as f64) * 0.5).collect();
            let mut y: Vec<f64> = (0..n2).map(|_| (s.below(25) as f64) * 0.5).collect();
            x.sort_by(f64::total_cmp);
            y.sort_by(f64::total_cmp);
            let d = brute(&x, &y);
            for k in [0, d.len() / 3, d.len() / 2, d.len() - 1] {
                assert_eq!(select(&x, &y, k as u64), Some(d[k]), "{n1}x{n2} k={k}");
            }
        }
        assert_eq!(select(&[], &[1.0], 0), None);
        assert_eq!(select(&[1.0], &[1.0], 1), None);
    }
}
