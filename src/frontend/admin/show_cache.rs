//! SHOW CACHE: one row per database with its result cache's state and figures: whether it
//! is on and serving, the invalidation mode, entries and bytes against the budget, hits,
//! misses, stores, rejects, evictions, expiries, invalidations by source, flushes, and how
//! far the change stream has read.

use super::result_set::{bool_cell, cell, ResultSet, Type};
use super::Snapshot;
use crate::cache::ALL_REJECTS;

pub fn show_cache(s: &Snapshot) -> ResultSet {
    use Type::{Bool, Int8, Numeric, Text};
    let mut rs = ResultSet::new(&[
        ("database", Text),
        ("enabled", Bool),
        ("serving", Bool),
        ("invalidation", Text),
        ("entries", Int8),
        ("bytes", Int8),
        ("max_bytes", Numeric),
        ("hits", Numeric),
        ("misses", Numeric),
        ("stores", Numeric),
        ("rejects", Numeric),
        ("evictions", Numeric),
        ("expired", Numeric),
        ("invalidations_wal", Numeric),
        ("invalidations_local", Numeric),
        ("flushes", Numeric),
        ("stream_lsn", Text),
        ("stream_lag_bytes", Int8),
        ("top_reject", Text),
    ]);
    for db in &s.databases {
        let Some(cache) = db.cluster.cache.as_deref() else {
            let mut row = vec![
                cell(&db.name),
                bool_cell(false),
                bool_cell(false),
                cell("off"),
            ];
            row.extend(std::iter::repeat_n(None, 15));
            rs.row(row);
            continue;
        };
        let c = &cache.stats.cache;
        let mode = match (cache.is_serving(), cache.is_wal_mode()) {
            (false, _) => "starting",
            (true, true) => "wal",
            (true, false) => "local",
        };
        let (bytes, entries) = cache.usage();
        let rejects: Vec<u64> = c.rejects.iter().map(|r| r.get()).collect();
        let top = ALL_REJECTS
            .iter()
            .zip(&rejects)
            .filter(|(_, n)| **n > 0)
            .max_by_key(|(_, n)| **n)
            .map(|(r, _)| r.as_str());
        let lsn = cache.stream_lsn();
        rs.row(vec![
            cell(&db.name),
            bool_cell(true),
            bool_cell(cache.is_serving()),
            cell(mode),
            cell(entries),
            cell(bytes),
            cell(cache.config.max_bytes),
            cell(c.hits.get()),
            cell(c.misses.get()),
            cell(c.stores.get()),
            cell(rejects.iter().sum::<u64>()),
            cell(c.evictions.get()),
            cell(c.expired.get()),
            cell(c.invalidations_wal.get()),
            cell(c.invalidations_local.get()),
            cell(c.flushes.get()),
            (cache.is_wal_mode() && lsn > 0)
                .then(|| format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)),
            cell(c.stream_lag_bytes.get()),
            top.map(str::to_string),
        ]);
    }
    rs
}
