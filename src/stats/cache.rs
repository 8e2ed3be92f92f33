//! The result cache's figures for one database: lookups, stores, rejects by reason (the
//! cache layer names the slots), evictions, invalidations by source, and gauges for the
//! bytes and entries held and the change stream's state.

use super::{Counter, StripedCounter};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Number of reject-reason slots (the cache layer's `RejectReason` fits in them).
pub const CACHE_REJECT_SLOTS: usize = 24;

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: StripedCounter,
    /// Cacheable requests that found no (live) entry.
    pub misses: StripedCounter,
    /// Results stored.
    pub stores: Counter,
    /// Requests not served from or stored in the cache, by reason slot.
    pub rejects: Vec<Counter>,
    /// Entries pushed out by the byte budget.
    pub evictions: Counter,
    /// Entries found older than `ttl_ms`.
    pub expired: Counter,
    /// Tables invalidated by the change stream, by writes seen passing through, and whole
    /// flushes (DDL, a broken stream, a new primary).
    pub invalidations_wal: Counter,
    pub invalidations_local: Counter,
    pub flushes: Counter,
    /// Bytes and entries held now.
    pub bytes: Gauge,
    pub entries: Gauge,
    /// The change stream: 1 while it runs (wal mode), 0 otherwise.
    pub stream_up: Gauge,
    /// WAL position the change stream has decoded up to.
    pub stream_lsn: AtomicU64,
    /// Bytes of WAL between the primary's position (last health check) and the stream's.
    pub stream_lag_bytes: Gauge,
    /// 1 when invalidation runs in wal mode, 0 in local mode (after `auto` decided).
    pub wal_mode: Gauge,
}

impl CacheStats {
    pub fn new(stripes: usize) -> CacheStats {
        CacheStats {
            hits: StripedCounter::new(stripes),
            misses: StripedCounter::new(stripes),
            stores: Counter::default(),
            rejects: (0..CACHE_REJECT_SLOTS)
                .map(|_| Counter::default())
                .collect(),
            evictions: Counter::default(),
            expired: Counter::default(),
            invalidations_wal: Counter::default(),
            invalidations_local: Counter::default(),
            flushes: Counter::default(),
            bytes: Gauge::default(),
            entries: Gauge::default(),
            stream_up: Gauge::default(),
            stream_lsn: AtomicU64::new(0),
            stream_lag_bytes: Gauge::default(),
            wal_mode: Gauge::default(),
        }
    }
}
