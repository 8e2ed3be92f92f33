//! The result cache's metrics: lookups, stores, rejects by reason, evictions, expiries,
//! invalidations by source, flushes, bytes and entries held, and the change stream's state
//! and lag, per database with the cache on.

use super::{counters, db, gauges, i, Labels};
use crate::cache::{ResultCache, ALL_REJECTS};
use crate::frontend::admin::Snapshot;
use prometheus_client::registry::{Registry, Unit};

type Caches<'a> = [(&'a str, &'a ResultCache)];

pub(super) fn cache(r: &mut Registry, s: &Snapshot) {
    let caches: Vec<(&str, &ResultCache)> = s
        .databases
        .iter()
        .filter_map(|d| Some((d.name.as_str(), d.cluster.cache.as_deref()?)))
        .collect();
    if caches.is_empty() {
        return;
    }
    plain_counters(r, &caches);
    labelled_counters(r, &caches);
    levels(r, &caches);
}

/// Counters with the database as their only label.
fn plain_counters(r: &mut Registry, caches: &Caches<'_>) {
    type Read = fn(&ResultCache) -> u64;
    let list: [(&str, &str, Read); 6] = [
        (
            "cache_hits",
            "Requests answered from the result cache",
            |c| c.stats.cache.hits.get(),
        ),
        (
            "cache_misses",
            "Cacheable requests that found no live entry",
            |c| c.stats.cache.misses.get(),
        ),
        ("cache_stores", "Results stored in the cache", |c| {
            c.stats.cache.stores.get()
        }),
        ("cache_evictions", "Entries pushed out by max_bytes", |c| {
            c.stats.cache.evictions.get()
        }),
        ("cache_expired", "Entries found older than ttl_ms", |c| {
            c.stats.cache.expired.get()
        }),
        (
            "cache_flushes",
            "Whole-cache flushes (DDL, stream broken, new primary)",
            |c| c.stats.cache.flushes.get(),
        ),
    ];
    for (name, help, read) in list {
        let values = caches.iter().map(|(n, c)| (db(n), read(c))).collect();
        r.register(name, help, counters(values));
    }
}

/// Rejects by reason and invalidations by source.
fn labelled_counters(r: &mut Registry, caches: &Caches<'_>) {
    let label = |name: &str, key: &'static str, value: &str| -> Labels {
        vec![("database", name.to_string()), (key, value.to_string())]
    };
    let mut rejects = Vec::new();
    let mut invalidations = Vec::new();
    for (name, c) in caches {
        for (why, n) in ALL_REJECTS.iter().zip(&c.stats.cache.rejects) {
            rejects.push((label(name, "reason", why.as_str()), n.get()));
        }
        for (source, n) in [
            ("wal", &c.stats.cache.invalidations_wal),
            ("local", &c.stats.cache.invalidations_local),
        ] {
            invalidations.push((label(name, "source", source), n.get()));
        }
    }
    r.register(
        "cache_rejects",
        "Requests not served from or stored in the cache, by reason",
        counters(rejects),
    );
    r.register(
        "cache_invalidations",
        "Tables or rows invalidated, by source",
        counters(invalidations),
    );
}

/// Gauges: size, entries, serving, wal mode, stream lag.
fn levels(r: &mut Registry, caches: &Caches<'_>) {
    type Read = fn(&ResultCache) -> i64;
    let list: [(&str, &str, Option<Unit>, Read); 5] = [
        (
            "cache_size",
            "Bytes held by cache entries",
            Some(Unit::Bytes),
            |c| i(c.usage().0),
        ),
        ("cache_entries", "Entries held", None, |c| i(c.usage().1)),
        (
            "cache_serving",
            "1 while the cache answers requests",
            None,
            |c| i64::from(c.is_serving()),
        ),
        (
            "cache_wal_mode",
            "1 when invalidation follows the primary's WAL",
            None,
            |c| i64::from(c.is_wal_mode()),
        ),
        (
            "cache_stream_lag",
            "WAL between the primary's position and the change stream's",
            Some(Unit::Bytes),
            |c| c.stats.cache.stream_lag_bytes.get(),
        ),
    ];
    for (name, help, unit, read) in list {
        let values = gauges(caches.iter().map(|(n, c)| (db(n), read(c))).collect());
        match unit {
            Some(u) => r.register_with_unit(name, help, u, values),
            None => r.register(name, help, values),
        }
    }
}
