//! Counter cells: a plain relaxed atomic, and one split into cache-line-sized stripes for
//! counts that many threads bump at once (each adds to its own stripe; a report sums them).

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn incr(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One stripe, alone on its cache lines (128 bytes: adjacent-line prefetch pairs lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicU64);

/// A count bumped from many threads: the caller picks a stripe (e.g. the shard it already
/// locked), so threads working on different stripes never share a cache line.
#[derive(Debug)]
pub struct StripedCounter {
    stripes: Box<[Stripe]>,
}

impl StripedCounter {
    pub fn new(stripes: usize) -> StripedCounter {
        StripedCounter {
            stripes: (0..stripes.max(1)).map(|_| Stripe::default()).collect(),
        }
    }

    /// Adds one on `stripe` (taken modulo the number of stripes).
    pub fn incr(&self, stripe: usize) {
        self.stripes[stripe % self.stripes.len()]
            .0
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_add_up() {
        let c = StripedCounter::new(4);
        for i in 0..10 {
            c.incr(i);
        }
        c.incr(1_000_003);
        assert_eq!(c.get(), 11);
        assert_eq!(std::mem::align_of::<Stripe>(), 128);
        let plain = Counter::default();
        plain.incr();
        plain.add(2);
        assert_eq!(plain.get(), 3);
    }
}
