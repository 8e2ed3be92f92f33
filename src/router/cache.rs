//! The route cache: fingerprint hash -> [`Classification`], in 16 LRU shards each behind its
//! own `Mutex` so sessions on different threads rarely contend. Hits and misses are counted
//! in the cluster's stats on the stripe of the shard looked up, so threads working on
//! different shards share no counter cache line.

use super::Classification;
use crate::stats::ClusterStats;
use lru::LruCache;
use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) const SHARDS: usize = 16;

/// The keys are already well-mixed 64-bit hashes: use them as they are.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Lru = LruCache<u64, Classification, BuildHasherDefault<KeyHasher>>;

/// A sharded LRU of classifications keyed by fingerprint hash. Capacity 0 disables caching
/// (every lookup is a miss and nothing is stored).
pub(crate) struct RouteCache {
    shards: Box<[Mutex<Lru>]>,
    capacity: usize,
    stats: Arc<ClusterStats>,
}

impl RouteCache {
    /// A cache holding about `capacity` entries in total (rounded up to a multiple of the
    /// shard count, which is smaller than 16 for tiny capacities).
    pub fn new(capacity: usize, stats: Arc<ClusterStats>) -> RouteCache {
        let n = capacity.clamp(1, SHARDS);
        let per_shard = NonZeroUsize::new(capacity.div_ceil(n)).unwrap_or(NonZeroUsize::MIN);
        let shards = (0..n)
            .map(|_| {
                Mutex::new(LruCache::with_hasher(
                    per_shard,
                    BuildHasherDefault::default(),
                ))
            })
            .collect();
        RouteCache {
            shards,
            capacity,
            stats,
        }
    }

    /// The configured total capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn shard_index(&self, key: u64) -> usize {
        // Bits 32..: hashbrown uses the low bits for buckets and the top 7 for tags.
        ((key >> 32) as usize) % self.shards.len()
    }

    fn shard(&self, i: usize) -> MutexGuard<'_, Lru> {
        // Nothing panics while holding the lock, but a poisoned shard is still usable.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached classification for `key` (promoting it), counting a hit or a miss.
    pub fn get(&self, key: u64) -> Option<Classification> {
        let i = self.shard_index(key);
        let found = if self.capacity == 0 {
            None
        } else {
            self.shard(i).get(&key).copied()
        };
        match found {
            Some(_) => self.stats.route_cache_hits.incr(i),
            None => self.stats.route_cache_misses.incr(i),
        }
        found
    }

    /// Stores `c` under `key`, evicting the shard's least recently used entry if full.
    pub fn put(&self, key: u64, c: Classification) {
        if self.capacity > 0 {
            self.shard(self.shard_index(key)).put(key, c);
        }
    }

    /// Total hits and misses since creation.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.route_cache_hits.get(),
            self.stats.route_cache_misses.get(),
        )
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, Reason};
    use super::*;

    fn c(kind: Kind) -> Classification {
        Classification {
            kind,
            reason: Reason::WriteStatement,
            hint: None,
        }
    }

    #[test]
    fn counts_hits_and_misses() {
        let cache = RouteCache::new(100, crate::router::cluster_stats());
        assert_eq!(cache.get(42), None);
        cache.put(42, c(Kind::Write));
        assert_eq!(cache.get(42), Some(c(Kind::Write)));
        assert_eq!(cache.get(42).map(|c| c.kind), Some(Kind::Write));
        assert_eq!(cache.stats(), (2, 1));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn evicts_least_recently_used_within_capacity() {
        let cache = RouteCache::new(32, crate::router::cluster_stats());
        for k in 0..10_000u64 {
            cache.put(k.wrapping_mul(0x9e37_79b9_7f4a_7c15), c(Kind::Read));
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        let tiny = RouteCache::new(1, crate::router::cluster_stats());
        tiny.put(1, c(Kind::Read));
        tiny.put(2, c(Kind::Write));
        assert_eq!(tiny.get(1), None);
        assert_eq!(tiny.get(2), Some(c(Kind::Write)));
    }

    #[test]
    fn zero_capacity_disables_caching() {
        let cache = RouteCache::new(0, crate::router::cluster_stats());
        cache.put(7, c(Kind::Read));
        assert_eq!(cache.get(7), None);
        assert_eq!(cache.stats(), (0, 1));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn cache_shares_entries_by_fingerprint() {
        let c = super::super::tests::classifier();
        let q = |n: u32| format!("SELECT abalance FROM pgbench_accounts WHERE aid = {n};");
        assert_eq!(c.classify(&q(1)).kind, Kind::Read);
        assert_eq!(c.cache_stats(), (0, 1));
        for n in 2..12 {
            assert_eq!(c.classify(&q(n)).kind, Kind::Read);
        }
        let p = "select abalance from pgbench_accounts where aid = $1;";
        assert_eq!(c.classify(p).kind, Kind::Read);
        assert_eq!(c.cache_stats(), (11, 1));
        assert_eq!(c.classify("SELECT * FROM t").kind, Kind::Read);
        assert_eq!(c.classify("SELECT * FROM t FOR UPDATE").kind, Kind::Write);
        let hinted = "/* switchyard: replica */ SELECT * FROM t";
        assert_eq!(c.classify(hinted).hint, Some(super::super::Target::Replica));
        assert_eq!(c.classify("SELECT * FROM t").hint, None);
        assert_eq!(c.cache_stats(), (12, 4));
        assert_eq!(c.cache_len(), 4);
    }
}
