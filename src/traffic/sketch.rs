//! Thin wrappers over the Apache DataSketches port (`datasketches`): HLL for cardinality,
//! KLL for quantiles, frequent items for heavy hitters. They fix the parameters in one place
//! and give the tie rule of the reports (value descending, then key ascending).

use datasketches::common::SearchCriteria;
use datasketches::frequencies::{ErrorType, FrequentItemsSketch};
use datasketches::hll::{HllSketch, HllType, HllUnion};
use datasketches::kll::KllSketch;
use std::borrow::Borrow;
use std::hash::Hash;

/// lg(K) of the HLL sketches: 2^14 buckets, about 0.8 % standard error, exact-ish (coupon
/// list) below about 1500 distinct items; 16 KiB when full.
const HLL_LG_K: u8 = 14;

pub fn hll() -> HllSketch {
    // Fixed, valid parameters: this cannot fail.
    HllSketch::new(HLL_LG_K, HllType::Hll8).unwrap_or_else(|_| unreachable!("valid HLL params"))
}

/// The HLL estimate as an integer (the sketch is exact up to rounding for small counts).
pub fn hll_count(s: &HllSketch) -> u64 {
    s.estimate().round().max(0.0) as u64
}

/// Folds `other` into `into` (HLL union; the result keeps our parameters).
pub fn hll_merge(into: &mut HllSketch, other: &HllSketch) {
    let mut u = HllUnion::new(HLL_LG_K).unwrap_or_else(|_| unreachable!("valid HLL params"));
    u.update(into);
    u.update(other);
    *into = u.to_sketch(HllType::Hll8);
}

/// Heavy hitters: a frequent-items sketch. Counts are exact while the number of distinct
/// keys stays below 3/4 of the map size; beyond that they are estimates with a bounded error.
pub struct TopN<T: Eq + Hash> {
    sketch: FrequentItemsSketch<T>,
}

impl<T: Eq + Hash + Clone + Ord> TopN<T> {
    /// Map size for keys with many distinct values (IPs, qnames).
    pub const LARGE: usize = 8192;
    /// Map size for ports.
    pub const SMALL: usize = 4096;

    pub fn new(max_map_size: usize) -> Self {
        TopN {
            sketch: FrequentItemsSketch::new(max_map_size)
                .unwrap_or_else(|_| unreachable!("map size is a power of two")),
        }
    }

    pub fn add(&mut self, item: T, count: u64) {
        self.sketch.update_with_count(item, count);
    }

    /// Like [`TopN::add`], allocating an owned key only when the key is new.
    pub fn add_ref<Q>(&mut self, item: &Q, count: u64)
    where
        T: Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = T> + ?Sized,
    {
        self.sketch.update_with_count_ref(item, count);
    }

    /// The `n` heaviest keys, ordered by estimate descending, then key ascending.
    pub fn top(&self, n: usize) -> Vec<(T, u64)> {
        let mut rows: Vec<(T, u64)> = self
            .sketch
            .frequent_items(ErrorType::NoFalseNegatives)
            .into_iter()
            .map(|r| (r.item().clone(), r.estimate()))
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(n);
        rows
    }

    /// Adds another sketch's counts (DataSketches merge: the error bounds add up).
    pub fn merge_from(&mut self, other: &TopN<T>) {
        self.sketch.merge(&other.sketch);
    }

    /// True while every count is exact (no key has been purged).
    pub fn is_exact(&self) -> bool {
        self.sketch.maximum_error() == 0
    }
}

/// Packet sizes on their way into a KLL [`Quantiles`]: exact counts per size below
/// [`PendingSizes::SMALL`] bytes (nearly every packet), fed to the sketch in ascending order
/// when flushed. The sketch then sees the same items as with one update per packet (KLL's
/// error bound holds for any arrival order), but a counter increment per packet replaces
/// a sketch update, and the sorted batches make the sketch's own sorting before each
/// compaction nearly free. Larger sizes go straight to the sketch.
pub struct PendingSizes {
    counts: Box<[u32; Self::SMALL]>,
    pending: u32,
}

impl Default for PendingSizes {
    fn default() -> Self {
        PendingSizes {
            counts: Box::new([0; Self::SMALL]),
            pending: 0,
        }
    }
}

impl PendingSizes {
    /// Sizes counted exactly; Ethernet frames up to jumbo-ish MTUs fit.
    pub const SMALL: usize = 2048;

    pub fn add(&mut self, q: &mut Quantiles, size: u64) {
        match self.counts.get_mut(size as usize) {
            Some(c) => {
                *c += 1;
                self.pending += 1;
                // Far below u32::MAX: no count can overflow between flushes.
                if self.pending >= 1 << 30 {
                    self.flush(q);
                }
            }
            None => q.add(size),
        }
    }

    /// Feeds every pending size to `q`, smallest first.
    pub fn flush(&mut self, q: &mut Quantiles) {
        if self.pending == 0 {
            return;
        }
        for (size, c) in self.counts.iter_mut().enumerate() {
            for _ in 0..*c {
                q.add(size as u64);
            }
            *c = 0;
        }
        self.pending = 0;
    }
}

/// Quantiles of an integer stream (packet sizes, per-second rates).
pub struct Quantiles {
    sketch: KllSketch<u64>,
}

impl Quantiles {
    /// k = 4096: exact below about 4000 items, then a normalised rank error near 0.1 %.
    pub const FINE: u16 = 4096;
    /// k = 200, DataSketches' default (about 1.3 % rank error).
    pub const COARSE: u16 = 200;

    pub fn new(k: u16) -> Self {
        Quantiles {
            sketch: KllSketch::new(k).unwrap_or_else(|_| unreachable!("k is in range")),
        }
    }

    pub fn add(&mut self, v: u64) {
        self.sketch.update(v);
    }

    /// Merges another sketch of the same `k` (KLL merge). Sketches of different `k` only
    /// come from a programming error; the other one is then ignored.
    pub fn merge_from(&mut self, other: &Quantiles) {
        let _ = self.sketch.merge(&other.sketch);
    }

    pub fn count(&self) -> u64 {
        self.sketch.n()
    }

    /// Nearest-rank quantile (`rank` in 0..=1), `None` when empty.
    pub fn quantile(&self, rank: f64) -> Option<u64> {
        self.sketch
            .quantile(rank, SearchCriteria::Inclusive)
            .ok()
            .flatten()
    }

    pub fn min(&self) -> Option<u64> {
        self.sketch.min_item().copied()
    }

    pub fn max(&self) -> Option<u64> {
        self.sketch.max_item().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_orders_ties_by_key() {
        let mut t = TopN::<u16>::new(TopN::<u16>::SMALL);
        for (k, c) in [(443, 5), (53, 5), (80, 7), (22, 1)] {
            t.add(k, c);
        }
        assert_eq!(t.top(3), vec![(80, 7), (53, 5), (443, 5)]);
        assert!(t.is_exact());
    }

    #[test]
    fn quantiles_are_nearest_rank_when_small() {
        let mut q = Quantiles::new(Quantiles::FINE);
        for v in [10, 20, 30, 40] {
            q.add(v);
        }
        assert_eq!(q.quantile(0.5), Some(20));
        assert_eq!(q.quantile(0.9), Some(40));
        assert_eq!(Quantiles::new(200).quantile(0.5), None);
    }

    #[test]
    fn merges_equal_the_whole_stream() {
        let (mut a, mut b, mut whole) = (hll(), hll(), hll());
        let (mut qa, mut qb, mut qw) = (Quantiles::new(200), Quantiles::new(200), Quantiles::new(200));
        let (mut ta, mut tb) = (TopN::<u16>::new(64), TopN::<u16>::new(64));
        for i in 0..20_000u32 {
            let (h, q, t) = if i % 3 == 0 {
                (&mut a, &mut qa, &mut ta)
            } else {
                (&mut b, &mut qb, &mut tb)
            };
            h.update(i);
            whole.update(i);
            q.add(u64::from(i));
            qw.add(u64::from(i));
            t.add((i % 7) as u16, 1);
        }
        hll_merge(&mut a, &b);
        let (m, w) = (hll_count(&a) as f64, hll_count(&whole) as f64);
        assert!(
            (m - w).abs() < 0.01 * w && (m - 20_000.0).abs() < 0.02 * 20_000.0,
            "{m} vs {w}"
        );
        qa.merge_from(&qb);
        assert_eq!(qa.count(), 20_000);
        let (m, w) = (qa.quantile(0.5).unwrap() as f64, qw.quantile(0.5).unwrap() as f64);
        assert!((m - w).abs() < 0.02 * 20_000.0, "{m} vs {w}");
        ta.merge_from(&tb);
        assert_eq!(ta.top(1), vec![(0, 2858)]);
    }

    #[test]
    fn hll_is_exact_for_small_sets_and_close_for_large() {
        let mut h = hll();
        for i in 0..99u32 {
            h.update(i);
        }
        assert_eq!(hll_count(&h), 99);
        for i in 0..50_000u32 {
            h.update(i);
        }
        let e = hll_count(&h) as f64;
        assert!((e - 50_000.0).abs() < 1000.0, "{e}");
    }
}
