//! The result cache's metrics: lookups, stores, rejects by reason, evictions, expiries,
//! invalidations by source, flushes, bytes and entries held, and the change stream's state
//! and lag, per database with the cache on.

use super::{counters, db, gauges, i, Labels};
use crate::cache::{ResultCache, ALL_REJECTS};
use crate::frontend::admin::Snapshot;
use prometheus_client::registry::{Registry, Unit};

pub(super) fn cache(r: &mut Registry, s: &Snapshot) {
    let caches: Vec<(&str, &ResultCache)> = s
        .databases
        .iter()
        .filter_map(|d| Some((d.name.as_str(), d.cluster.cache.as_deref()?)))
        .collect();
    if caches.is_empty() {
        return;
    }
    let per = |f: &dyn Fn(&ResultCache) -> u64| -> Vec<(Labels, u64)> {
        caches.iter().map(|(n, c)| (db(n), f(c))).collect()
    };
    let level = |f: &dyn Fn(&ResultCache) -> i64| -> Vec<(Labels, i64)> {
        caches.iter().map(|(n, c)| (db(n), f(c))).collect()
    };
    r.register(
        "cache_hits",
        "Requests answered from the result cache",
        counters(per(&|c| c.stats.cache.hits.get())),
    );
    r.register(
        "cache_misses",
        "Cacheable requests that found no live entry",
        counters(per(&|c| c.stats.cache.misses.get())),
    );
    r.register(
        "cache_stores",
        "Results stored in the cache",
        counters(per(&|c| c.stats.cache.stores.get())),
    );
    r.register(
        "cache_evictions",
        "Entries pushed out by max_bytes",
        counters(per(&|c| c.stats.cache.evictions.get())),
    );
    r.register(
        "cache_expired",
        "Entries found older than ttl_ms",
        counters(per(&|c| c.stats.cache.expired.get())),
    );
    r.register(
        "cache_flushes",
        "Whole-cache flushes (DDL, stream broken, new primary)",
        counters(per(&|c| c.stats.cache.flushes.get())),
    );
    let mut rejects = Vec::new();
    let mut invalidations = Vec::new();
    for (name, c) in &caches {
        for (why, n) in ALL_REJECTS.iter().zip(&c.stats.cache.rejects) {
            rejects.push((
                vec![
                    ("database", name.to_string()),
                    ("reason", why.as_str().to_string()),
                ],
                n.get(),
            ));
        }
        for (source, n) in [
            ("wal", &c.stats.cache.invalidations_wal),
            ("local", &c.stats.cache.invalidations_local),
        ] {
            invalidations.push((
                vec![
                    ("database", name.to_string()),
                    ("source", source.to_string()),
                ],
                n.get(),
            ));
        }
    }
    r.register(
        "cache_rejects",
        "Requests not served from or stored in the cache, by reason",
        counters(rejects),
    );
    r.register(
        "cache_invalidations",
        "Tables invalidated, by source",
        counters(invalidations),
    );
    r.register_with_unit(
        "cache_size",
        "Bytes held by cache entries",
        Unit::Bytes,
        gauges(level(&|c| i(c.usage().0))),
    );
    r.register(
        "cache_entries",
        "Entries held",
        gauges(level(&|c| i(c.usage().1))),
    );
    r.register(
        "cache_serving",
        "1 while the cache answers requests",
        gauges(level(&|c| i64::from(c.is_serving()))),
    );
    r.register(
        "cache_wal_mode",
        "1 when invalidation follows the primary's WAL",
        gauges(level(&|c| i64::from(c.is_wal_mode()))),
    );
    r.register_with_unit(
        "cache_stream_lag",
        "WAL between the primary's position and the change stream's",
        Unit::Bytes,
        gauges(level(&|c| c.stats.cache.stream_lag_bytes.get())),
    );
}
