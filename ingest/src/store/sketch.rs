//! Mergeable summaries kept in the rollups (`rollup.rs`): a DDSketch for percentiles and a HyperLogLog for
//! distinct sessions. Both merge by adding (max-ing) their parts, so minutes add up to hours and days, and
//! partial rows written by several nodes add up to the same result in any order.
//!
//! # Percentile error
//! [`Sketch`] is a DDSketch (Masson, Rim, Lee, VLDB 2019) with relative accuracy [`RELATIVE_ACCURACY`]: a
//! positive value `v` falls in bucket `i = ceil(log_γ v)`, `γ = (1 + α) / (1 - α)`, and a bucket answers
//! with `2 γ^i / (γ + 1)`, which is within `α · v` of every value in it. Percentiles use the same
//! nearest-rank definition as the raw-event queries (`stats.rs`): the bucket holding the value at rank
//! `ceil(p · n / 100)`. So a sketch's p-th percentile is within 1 % of the exact nearest-rank percentile of
//! the same values, whatever their distribution and however the sketch was merged (tested below against
//! exact percentiles). Values at or below [`MIN_POSITIVE`] (zero CLS, a 0 ms timing) are counted exactly
//! as 0.
//!
//! # Distinct-count error
//! [`Distinct`] is a HyperLogLog with 2^[`HLL_BITS`] registers: a standard error of 1.04 / sqrt(1024), about
//! 3.3 %; below a hundred or so (linear counting) it is off by a few at most, and exact for a handful. Session ids are hashed with a
//! fixed function ([`hash64`]), so every node and every version fills the same registers.

/// α: every percentile a sketch answers is within this fraction of the exact value.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Values at or below this count as zero (no timing or vital is meaningful below it).
pub const MIN_POSITIVE: f64 = 1e-6;
/// Highest bucket index kept: values above `γ^MAX_INDEX` (about 10^17) share the top bucket. Keeps a
/// sketch's size bounded whatever values arrive.
const MAX_INDEX: i32 = 2_000;
const MIN_INDEX: i32 = -700; // γ^-700 ≈ 8e-7 < MIN_POSITIVE

/// Encoding version of a stored sketch (first byte).
const SKETCH_V1: u8 = 1;
/// Encoding versions of a stored distinct count (first byte): sparse pairs or all registers.
const HLL_SPARSE: u8 = 1;
const HLL_DENSE: u8 = 2;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// A stored summary that does not decode: the store says which row kind, never panics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub &'static str);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "corrupt {} in rollups", self.0)
    }
}

/// A DDSketch: counts per logarithmic bucket.
///
/// The buckets are kept dense, as DDSketch's own dense store: one count per bucket from the lowest to the
/// highest one used. A stats window merges tens of thousands of stored sketches per answer, and adding a
/// run of counts to a slice is several times cheaper than an ordered map's insert per bucket. The span is
/// bounded by [`MIN_INDEX`]..=[`MAX_INDEX`], so a sketch never holds more than 2,701 counts (21.6 KB),
/// whatever values arrive; real ones (1 ms to a minute) span about 550.
#[derive(Debug, Clone, Default)]
pub struct Sketch {
    zero: u64,
    /// The bucket index of `counts[0]`.
    offset: i32,
    /// Counts of buckets `offset..offset + counts.len()`; empty, or its first and last counts non-zero.
    counts: Vec<u64>,
}

impl PartialEq for Sketch {
    fn eq(&self, other: &Self) -> bool {
        self.zero == other.zero && self.bins().eq(other.bins())
    }
}

impl Sketch {
    /// Adds one value; NaN and infinities are not values and are ignored.
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        if v <= MIN_POSITIVE {
            self.zero += 1;
            return;
        }
        let i = (v.ln() / gamma().ln()).ceil();
        let i = if i.is_nan() {
            0
        } else {
            (i as i64).clamp(MIN_INDEX.into(), MAX_INDEX.into()) as i32
        };
        self.add_at(i, 1);
    }

    /// Adds `n` (> 0) to bucket `i` (within `MIN_INDEX..=MAX_INDEX`), widening the range to hold it.
    fn add_at(&mut self, i: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = i;
            self.counts.push(n);
            return;
        }
        if i < self.offset {
            let grow = (self.offset - i) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = i;
        }
        let at = (i - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] = self.counts[at].saturating_add(n);
    }

    /// The non-empty buckets, lowest first: (index, count).
    fn bins(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        (self.offset..)
            .zip(self.counts.iter().copied())
            .filter(|(_, c)| *c > 0)
    }

    pub fn count(&self) -> u64 {
        self.zero + self.counts.iter().sum::<u64>()
    }

    pub fn merge(&mut self, other: &Sketch) {
        self.zero = self.zero.saturating_add(other.zero);
        let Some(last) = other.counts.len().checked_sub(1) else {
            return;
        };
        // Widen once to cover both ranges, then add the slices.
        self.add_at(other.offset, 0);
        self.add_at(other.offset + last as i32, 0);
        let at = (other.offset - self.offset) as usize;
        for (a, b) in self.counts[at..].iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
    }

    /// The nearest-rank `p`-th percentile (0 < p <= 100), `None` when empty.
    pub fn percentile(&self, p: u32) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (u64::from(p) * n).div_ceil(100).max(1);
        let mut seen = self.zero;
        if seen >= rank {
            return Some(0.0);
        }
        let g = gamma();
        let value = |i: i32| 2.0 * g.powi(i) / (g + 1.0);
        for (i, c) in self.bins() {
            seen += c;
            if seen >= rank {
                return Some(value(i));
            }
        }
        // Unreachable: rank <= n and the counts add up to n.
        self.bins().last().map(|(i, _)| value(i))
    }

    /// Version byte, zero count, bucket count, then per bucket the index delta (zigzag) and count, varints.
    pub fn encode(&self) -> Vec<u8> {
        let used = self.counts.iter().filter(|c| **c > 0).count();
        let mut out = Vec::with_capacity(4 + used * 3);
        out.push(SKETCH_V1);
        put_varint(&mut out, self.zero);
        put_varint(&mut out, used as u64);
        let mut last = 0i64;
        for (i, c) in self.bins() {
            let d = i64::from(i) - last;
            put_varint(&mut out, ((d << 1) ^ (d >> 63)) as u64);
            put_varint(&mut out, c);
            last = i64::from(i);
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, Corrupt> {
        let mut s = Self::default();
        s.merge_encoded(b)?;
        Ok(s)
    }

    /// Adds an encoded sketch ([`Self::encode`]) to this one without building it first: how a window's
    /// stored rows are summed. On `Err` this sketch holds part of the blob's counts.
    pub fn merge_encoded(&mut self, b: &[u8]) -> Result<(), Corrupt> {
        const W: Corrupt = Corrupt("sketch");
        let mut r = Cursor(b);
        if r.byte().ok_or(W)? != SKETCH_V1 {
            return Err(W);
        }
        let zero = r.varint().ok_or(W)?;
        let n = r.varint().ok_or(W)?;
        if n > (MAX_INDEX - MIN_INDEX + 1) as u64 {
            return Err(W);
        }
        self.zero = self.zero.saturating_add(zero);
        let mut last = 0i64;
        for _ in 0..n {
            let z = r.varint().ok_or(W)?;
            let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
            last = last.checked_add(d).ok_or(W)?;
            let i = i32::try_from(last)
                .ok()
                .filter(|i| (MIN_INDEX..=MAX_INDEX).contains(i))
                .ok_or(W)?;
            let c = r.varint().ok_or(W)?;
            // (An empty bucket is never written; skipping one keeps the range's ends non-zero.)
            if c > 0 {
                self.add_at(i, c);
            }
        }
        if !r.0.is_empty() {
            return Err(W);
        }
        Ok(())
    }
}

/// log2 of the number of HyperLogLog registers.
pub const HLL_BITS: u32 = 10;
const REGISTERS: usize = 1 << HLL_BITS;
/// Above this many set registers the dense form (one byte each) is smaller than pairs of three bytes.
const SPARSE_MAX: usize = REGISTERS / 3;

/// A HyperLogLog distinct count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distinct {
    /// Empty until the first value: most rollup rows never see one.
    registers: Vec<u8>,
}

impl Distinct {
    pub fn add(&mut self, value: &str) {
        if self.registers.is_empty() {
            self.registers = vec![0; REGISTERS];
        }
        let h = hash64(value.as_bytes());
        let idx = (h >> (64 - HLL_BITS)) as usize;
        let rest = (h << HLL_BITS) | (1 << (HLL_BITS - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if self.registers[idx] < rank {
            self.registers[idx] = rank;
        }
    }

    pub fn merge(&mut self, other: &Distinct) {
        if other.registers.is_empty() {
            return;
        }
        if self.registers.is_empty() {
            self.registers = other.registers.clone();
            return;
        }
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    /// The estimated number of distinct values added, rounded.
    pub fn estimate(&self) -> u64 {
        if self.registers.is_empty() {
            return 0;
        }
        let m = REGISTERS as f64;
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let sum: f64 = self
            .registers
            .iter()
            .map(|r| 2f64.powi(-i32::from(*r)))
            .sum();
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let e = if raw <= 2.5 * m && zeros > 0 {
            // Linear counting: nearly exact while most registers are still empty.
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        e.round() as u64
    }

    /// Empty: nothing. Few registers set: (index u16 LE, value) pairs. Else all registers.
    pub fn encode(&self) -> Vec<u8> {
        if self.registers.is_empty() {
            return Vec::new();
        }
        let set: Vec<(usize, u8)> = self
            .registers
            .iter()
            .enumerate()
            .filter(|(_, r)| **r > 0)
            .map(|(i, r)| (i, *r))
            .collect();
        if set.len() <= SPARSE_MAX {
            let mut out = Vec::with_capacity(1 + set.len() * 3);
            out.push(HLL_SPARSE);
            for (i, r) in set {
                out.extend_from_slice(&(i as u16).to_le_bytes());
                out.push(r);
            }
            out
        } else {
            let mut out = Vec::with_capacity(1 + REGISTERS);
            out.push(HLL_DENSE);
            out.extend_from_slice(&self.registers);
            out
        }
    }

    pub fn decode(b: &[u8]) -> Result<Self, Corrupt> {
        let mut d = Self::default();
        d.merge_encoded(b)?;
        Ok(d)
    }

    /// Merges an encoded distinct count ([`Self::encode`]) into this one without building it first: how a
    /// window's stored rows are summed (a sparse one touches only its registers). On `Err` this count
    /// holds part of the blob's registers.
    pub fn merge_encoded(&mut self, b: &[u8]) -> Result<(), Corrupt> {
        const W: Corrupt = Corrupt("distinct count");
        let max_rank = (64 - HLL_BITS + 1) as u8;
        let Some((&kind, rest)) = b.split_first() else {
            return Ok(());
        };
        let valid = match kind {
            HLL_SPARSE => rest.len() % 3 == 0,
            HLL_DENSE => rest.len() == REGISTERS,
            _ => false,
        };
        if !valid {
            return Err(W);
        }
        if self.registers.is_empty() {
            self.registers = vec![0; REGISTERS];
        }
        if kind == HLL_SPARSE {
            for p in rest.chunks_exact(3) {
                let i = usize::from(u16::from_le_bytes([p[0], p[1]]));
                if i >= REGISTERS || p[2] == 0 || p[2] > max_rank {
                    return Err(W);
                }
                self.registers[i] = self.registers[i].max(p[2]);
            }
        } else {
            if rest.iter().any(|r| *r > max_rank) {
                return Err(W);
            }
            for (a, b) in self.registers.iter_mut().zip(rest) {
                *a = (*a).max(*b);
            }
        }
        Ok(())
    }
}

/// A fixed 64-bit hash (FNV-1a, then MurmurHash3's finalizer to spread FNV's weak low bits): stable across
/// processes, nodes and Rust versions, which `std`'s hashers do not promise.
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact nearest-rank percentile, as `stats.rs` defines it.
    fn exact(sorted: &[f64], p: u64) -> f64 {
        let n = sorted.len() as u64;
        sorted[((p * n).div_ceil(100).max(1) - 1) as usize]
    }

    /// A deterministic pseudo-random sequence (xorshift), so failures reproduce.
    fn values(seed: u64, n: usize, shape: impl Fn(f64) -> f64) -> Vec<f64> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                shape((s >> 11) as f64 / (1u64 << 53) as f64)
            })
            .collect()
    }

    #[test]
    fn percentiles_within_relative_accuracy_of_exact_ones_on_several_distributions() {
        type Shape = Box<dyn Fn(f64) -> f64>;
        let shapes: [(&str, Shape); 4] = [
            ("uniform ms", Box::new(|u| 1.0 + u * 5_000.0)),
            ("long tail ms", Box::new(|u| 50.0 / (1.0 - u).max(1e-6))),
            ("cls", Box::new(|u| if u < 0.3 { 0.0 } else { u * u * 0.8 })),
            ("integers", Box::new(|u| (u * 20.0).floor() * 100.0)),
        ];
        for (seed, (what, shape)) in shapes.iter().enumerate() {
            for n in [1, 2, 3, 10, 999, 20_000] {
                let mut v = values(seed as u64 + 7, n, shape);
                // Built from pieces and merged, like minutes into an hour.
                let mut merged = Sketch::default();
                for chunk in v.chunks(97) {
                    let mut s = Sketch::default();
                    chunk.iter().for_each(|x| s.add(*x));
                    merged.merge(&Sketch::decode(&s.encode()).unwrap());
                }
                v.sort_by(f64::total_cmp);
                assert_eq!(merged.count(), n as u64);
                for p in [1, 50, 75, 95, 99, 100] {
                    let (want, got) = (exact(&v, p), merged.percentile(p as u32).unwrap());
                    let bound = if want <= MIN_POSITIVE {
                        0.0
                    } else {
                        RELATIVE_ACCURACY * want
                    };
                    assert!(
                        (got - want).abs() <= bound * (1.0 + 1e-9),
                        "{what} n={n} p{p}: exact {want}, sketch {got}"
                    );
                }
            }
        }
    }

    #[test]
    fn merging_encoded_sketches_equals_merging_built_ones() {
        // Ranges below, above, inside and around what has been merged so far, an empty one, zeros.
        let ranges = [
            (100.0, 300.0),
            (1.0, 3.0),
            (5_000.0, 9_000.0),
            (150.0, 160.0),
            (0.5, 20_000.0),
        ];
        let in_range = |seed: usize, (lo, hi): (f64, f64)| {
            values(seed as u64 + 3, 50, move |u| lo + u * (hi - lo))
        };
        let mut parts: Vec<Sketch> = ranges
            .iter()
            .enumerate()
            .map(|(seed, range)| {
                let mut s = Sketch::default();
                in_range(seed, *range).iter().for_each(|v| s.add(*v));
                s
            })
            .collect();
        parts.push(Sketch::default());
        let mut zeros = Sketch::default();
        zeros.add(0.0);
        parts.push(zeros);
        let (mut built, mut from_bytes) = (Sketch::default(), Sketch::default());
        for p in &parts {
            built.merge(p);
            from_bytes.merge_encoded(&p.encode()).unwrap();
            assert_eq!(from_bytes, built);
            assert_eq!(Sketch::decode(&built.encode()).unwrap(), built);
        }
        assert_eq!(built.count(), 5 * 50 + 1);
        // The range is exactly the buckets used: a merged sketch re-encodes to what it would have been
        // had its values been added one by one.
        let mut one_by_one = Sketch::default();
        for (seed, range) in ranges.iter().enumerate() {
            in_range(seed, *range)
                .iter()
                .for_each(|v| one_by_one.add(*v));
        }
        one_by_one.add(0.0);
        assert_eq!(built.encode(), one_by_one.encode());
        assert_eq!(built.counts.first().copied().map(|c| c > 0), Some(true));
        assert_eq!(built.counts.last().copied().map(|c| c > 0), Some(true));
    }

    #[test]
    fn merging_encoded_distinct_counts_equals_merging_built_ones() {
        let mut parts = Vec::new();
        for n in [0usize, 3, 40, 2_000] {
            let mut d = Distinct::default();
            (0..n).for_each(|i| d.add(&format!("s{n}-{i}")));
            parts.push(d);
        }
        let (mut built, mut from_bytes) = (Distinct::default(), Distinct::default());
        for d in &parts {
            built.merge(d);
            from_bytes.merge_encoded(&d.encode()).unwrap();
            assert_eq!(from_bytes, built);
        }
    }

    #[test]
    fn empty_sketch_has_no_percentile_and_round_trips() {
        let s = Sketch::default();
        assert_eq!(s.percentile(50), None);
        assert_eq!(Sketch::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn extreme_and_non_finite_values_stay_bounded() {
        let mut s = Sketch::default();
        for v in [f64::NAN, f64::INFINITY, -5.0, 0.0, 1e300, f64::MAX, 1e-300] {
            s.add(v);
        }
        assert_eq!(s.count(), 5, "NaN and infinity are not values");
        assert_eq!(s.percentile(50), Some(0.0), "-5, 0, 1e-300 count as zero");
        assert!(s.encode().len() < 16);
    }

    #[test]
    fn corrupt_blobs_are_errors_not_panics() {
        let good = {
            let mut s = Sketch::default();
            [1.0, 10.0, 100.0].iter().for_each(|v| s.add(*v));
            s.encode()
        };
        for len in 0..good.len() {
            assert!(Sketch::decode(&good[..len]).is_err(), "truncated at {len}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert!(Sketch::decode(&extra).is_err());
        assert!(Sketch::decode(&[SKETCH_V1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(Sketch::decode(&[9]).is_err());
        assert!(Distinct::decode(&[HLL_SPARSE, 0xff, 0xff, 1]).is_err());
        assert!(Distinct::decode(&[HLL_DENSE, 1, 2]).is_err());
        assert!(Distinct::decode(&[7]).is_err());
    }

    #[test]
    fn distinct_counts_are_exact_when_small_and_close_when_large() {
        for n in [0usize, 1, 2, 3, 17] {
            let mut d = Distinct::default();
            for i in 0..n {
                d.add(&format!("session-{i}"));
                d.add(&format!("session-{i}")); // twice: counted once
            }
            assert_eq!(Distinct::decode(&d.encode()).unwrap().estimate(), n as u64);
        }
        for n in [100usize, 1_000, 20_000, 200_000] {
            let (mut a, mut b) = (Distinct::default(), Distinct::default());
            for i in 0..n {
                // Two halves overlapping by a third, merged.
                if i < n * 2 / 3 {
                    a.add(&format!("s{i}"));
                }
                if i >= n / 3 {
                    b.add(&format!("s{i}"));
                }
            }
            a.merge(&Distinct::decode(&b.encode()).unwrap());
            let e = a.estimate() as f64;
            let err = (e - n as f64).abs() / n as f64;
            assert!(err < 4.0 * 1.04 / (REGISTERS as f64).sqrt(), "n={n}: {e}");
        }
    }

    #[test]
    fn hash_is_fixed() {
        // Registers written by one version are read by the next: the function must never change.
        assert_eq!(hash64(b""), 0xefd01f60ba992926);
        assert_eq!(hash64(b"session-1"), 0xf267abb32d450b1f);
        assert_ne!(hash64(b"a"), hash64(b"b"));
    }
}
