//! The result cache of one database: replies to idempotent reads kept by key (user,
//! settings, request bytes) and replayed without a server. Owns the entries (`store`), the
//! per-table invalidation marks (`marks`), the per-query-shape verdicts (`shapes`), the
//! catalog of plain tables (`catalog`), recording a result (`fill`), and the change stream
//! that invalidates by the primary's WAL (`change_stream`, decoded by `decoding`).
//!
//! Never stale, as enforced here: an entry is stored only if no table it read was
//! invalidated since its query started (marks' sequence numbers), its server had replayed
//! every change already known for those tables (marks' WAL positions), and the cache's
//! epoch did not change (a flush: stream broken, new primary, DDL). In wal mode nothing is
//! served while the stream is down, and a client that wrote at W is served only once the
//! stream has passed W.

mod catalog;
mod change_stream;
mod decoding;
mod fill;
mod key;
mod marks;
mod reject;
mod shapes;
mod store;

pub use catalog::Catalog;
pub use change_stream::{run, StreamLogin};
pub use fill::Fill;
pub use key::{request_key, settings_digest};
pub use reject::{Reject, ALL_REJECTS};
pub use shapes::Shape;
pub use store::Key;

use crate::config::CacheConfig;
use crate::router::{read_row_key, write_row_key, Fingerprint, KeyAt, WriteTargets};
use crate::stats::ClusterStats;
use bytes::Bytes;
use marks::Marks;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use store::{Entry, Store, Stored};

/// A change to one row: table, key column, key (bare names).
pub type RowChange = (String, String, i64);

pub struct ResultCache {
    pub config: CacheConfig,
    store: Store,
    marks: Marks,
    shapes: shapes::Shapes,
    /// Bumped by every flush: entries and fills of an older epoch are dead.
    epoch: AtomicU64,
    serving: AtomicBool,
    /// Invalidation by the change stream (wal mode, decided at start for `auto`).
    wal_mode: AtomicBool,
    catalog: RwLock<Arc<Catalog>>,
    /// Asks the background task for a fresh catalog.
    pub catalog_wanted: tokio::sync::Notify,
    ttl: Option<Duration>,
    pub stats: Arc<ClusterStats>,
}

impl ResultCache {
    pub fn new(config: CacheConfig, stats: Arc<ClusterStats>) -> ResultCache {
        ResultCache {
            store: Store::new(config.max_bytes),
            marks: Marks::default(),
            shapes: shapes::Shapes::new(10_000),
            epoch: AtomicU64::new(1),
            serving: AtomicBool::new(false),
            wal_mode: AtomicBool::new(false),
            catalog: RwLock::new(Arc::new(Catalog::default())),
            catalog_wanted: tokio::sync::Notify::new(),
            ttl: (config.ttl_ms > 0).then(|| Duration::from_millis(config.ttl_ms)),
            config,
            stats,
        }
    }

    /// The verdict for a query text (cached per fingerprint).
    pub fn shape(&self, sql: &str, fp: &Fingerprint) -> Arc<Shape> {
        self.shapes
            .get_or_make(fp.hash, || Shape::of(sql, fp, &self.config, &self.marks))
    }

    /// Counts a request the cache did not take.
    pub fn reject(&self, why: Reject) {
        tracing::debug!(reason = why.as_str(), "not cached");
        if let Some(c) = self.stats.cache.rejects.get(why.slot()) {
            c.incr();
        }
    }

    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    pub fn is_wal_mode(&self) -> bool {
        self.wal_mode.load(Ordering::Acquire)
    }

    /// WAL position the change stream has decoded up to.
    pub fn stream_lsn(&self) -> u64 {
        self.stats.cache.stream_lsn.load(Ordering::Acquire)
    }

    /// The stored replies for `key` (without ReadyForQuery), if there is a live entry and
    /// the client's last write (`wrote_at`, 0 for none) is known to the cache.
    pub fn lookup(&self, key: &Key, wrote_at: u64) -> Option<Bytes> {
        let stripe = Store::shard_of(key.hash);
        if !self.is_serving() {
            self.reject(Reject::NotServing);
            return None;
        }
        if self.is_wal_mode() && wrote_at > self.stream_lsn() {
            self.reject(Reject::WriteNotSeen);
            return None;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let now = Instant::now();
        let ttl = self.ttl;
        let expired = std::cell::Cell::new(false);
        let (found, change) = self.store.get(key, |e| {
            let fresh = ttl.is_none_or(|t| now.duration_since(e.stored_at) < t);
            expired.set(!fresh);
            e.epoch == epoch && fresh && self.marks.unchanged_since(&e.marks, e.row, e.seq)
        });
        self.account(&change);
        if expired.get() {
            self.stats.cache.expired.incr();
        }
        match &found {
            Some(_) => self.stats.cache.hits.incr(stripe),
            None => self.stats.cache.misses.incr(stripe),
        }
        found
    }

    /// The row slot an execution of `shape` with text `sql` reads, if it reads one row of a
    /// table whose changes are told apart by row; `value` gives a key term's value in this
    /// execution. The text is scanned again: texts of one shape can differ in where the key
    /// term's value is (`a = $1 AND id = $2` and `a = $2 AND id = $1`).
    pub fn read_row(
        &self,
        shape: &Shape,
        sql: &str,
        value: impl FnOnce(KeyAt) -> Option<i64>,
    ) -> Option<u32> {
        if !shape.keyed_read {
            return None;
        }
        let rk = read_row_key(sql)?;
        let catalog = self.catalog();
        let at = rk.key_at(catalog.row_key(&rk.table)?)?;
        Some(Marks::row_slot(&rk.table, value(at)?))
    }

    /// The row an execution of write `shape` with text `sql` changes, if it changes one row
    /// (by key) of a table whose changes are told apart by row and the change stream is the
    /// authority (wal mode: it sees what triggers do besides); as [`ResultCache::read_row`].
    pub fn written_row(
        &self,
        shape: &Shape,
        sql: &str,
        value: impl FnOnce(KeyAt) -> Option<i64>,
    ) -> Option<RowChange> {
        if !shape.keyed_write || !self.is_wal_mode() {
            return None;
        }
        let wk = write_row_key(sql)?;
        let catalog = self.catalog();
        let column = catalog.row_key(&wk.table)?;
        let key = value(wk.key_at(column)?)?;
        Some((wk.table, column.to_string(), key))
    }

    fn account(&self, change: &Stored) {
        let c = &self.stats.cache;
        c.bytes.add(change.bytes);
        c.entries.add(change.entries);
        c.evictions.add(change.evicted);
    }

    /// Starts recording the result of a cacheable request that missed; `replayed` is the
    /// WAL position its server is known to have replayed (u64::MAX for the primary).
    /// `row` is the row slot of a read by key ([`ResultCache::read_row`]).
    pub fn begin_fill(
        &self,
        key: Key,
        shape: &Shape,
        replayed: u64,
        row: Option<u32>,
    ) -> Option<Box<Fill>> {
        let (relations, marks) = shape.relations()?;
        if !self.is_serving() {
            return None;
        }
        Some(Box::new(Fill {
            key,
            relations: relations.clone(),
            marks: marks.clone(),
            row,
            start_seq: self.marks.seq(),
            epoch: self.epoch.load(Ordering::Acquire),
            replayed,
            buf: Vec::new(),
            limit: usize::try_from(self.config.max_result_bytes)
                .unwrap_or(usize::MAX)
                .saturating_add(6),
            failed: None,
        }))
    }

    /// Stores what `fill` recorded, if it may be kept.
    pub fn finish_fill(&self, fill: Box<Fill>) {
        match self.check_fill(&fill) {
            Err(why) => self.reject(why),
            Ok(value) => {
                let entry = Entry {
                    key: fill.key.bytes.clone(),
                    value: Bytes::copy_from_slice(value),
                    marks: fill.marks.clone(),
                    row: fill.row,
                    seq: fill.start_seq,
                    epoch: fill.epoch,
                    stored_at: Instant::now(),
                };
                let change = self.store.put(fill.key.hash, entry);
                self.account(&change);
                if change.entries > 0 || change.bytes != 0 {
                    self.stats.cache.stores.incr();
                }
            }
        }
    }

    fn check_fill<'f>(&self, fill: &'f Fill) -> Result<&'f [u8], Reject> {
        if let Some(why) = fill.failed {
            return Err(why);
        }
        let value = fill::storable_replies(&fill.buf).ok_or(Reject::ServerReply)?;
        if fill.epoch != self.epoch.load(Ordering::Acquire) || !self.is_serving() {
            return Err(Reject::NotServing);
        }
        if !self
            .marks
            .unchanged_since(&fill.marks, fill.row, fill.start_seq)
        {
            return Err(Reject::InvalidatedInFlight);
        }
        if self.marks.newest_lsn(&fill.marks, fill.row) > fill.replayed {
            return Err(Reject::ReplicaBehind);
        }
        let catalog = self.catalog();
        if !fill.relations.iter().all(|r| catalog.is_table(r)) {
            self.catalog_wanted.notify_one();
            return Err(Reject::NotATable);
        }
        Ok(value)
    }

    /// Invalidates what a committed write through this instance changed (`lsn`: the
    /// primary's position after it, u64::MAX if unknown).
    pub fn invalidate_local(&self, targets: &WriteTargets, lsn: u64) {
        match targets {
            WriteTargets::Nothing => {}
            WriteTargets::Tables(tables) => {
                for t in tables {
                    self.invalidate_table(t, lsn);
                }
                self.stats
                    .cache
                    .invalidations_local
                    .add(tables.len() as u64);
            }
            WriteTargets::Everything => {
                self.flush("a statement that may change anything passed through");
                self.catalog_wanted.notify_one();
            }
        }
    }

    /// Invalidates rows of tables (by key) that a committed write through this instance
    /// changed; a table whose changes cannot be told apart by row is invalidated whole.
    pub fn invalidate_local_rows(&self, rows: &[RowChange], lsn: u64) {
        self.invalidate_rows(rows, lsn);
        self.stats.cache.invalidations_local.add(rows.len() as u64);
    }

    /// `(table, key column, key)` changes at `lsn`.
    fn invalidate_rows(&self, rows: &[RowChange], lsn: u64) {
        let catalog = self.catalog();
        for (table, column, key) in rows {
            if catalog.row_key(table) == Some(column.as_str()) {
                self.marks.invalidate_row(table, *key, lsn);
            } else {
                self.invalidate_table(table, lsn);
            }
        }
    }

    /// Invalidates `table` and its ancestors for a change at `lsn`.
    fn invalidate_table(&self, table: &str, lsn: u64) {
        self.marks.invalidate(table, lsn);
        let catalog = self.catalog();
        for a in catalog.ancestors(table) {
            self.marks.invalidate(a, lsn);
        }
    }

    /// Invalidates tables and rows (table, key column, key) a commit decoded from the change
    /// stream touched.
    pub(crate) fn invalidate_decoded(&self, tables: &[String], rows: &[RowChange], lsn: u64) {
        for t in tables {
            self.invalidate_table(t, lsn);
        }
        self.invalidate_rows(rows, lsn);
        self.stats
            .cache
            .invalidations_wal
            .add((tables.len() + rows.len()) as u64);
    }

    /// Drops every entry (and every fill in flight).
    pub fn flush(&self, why: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.marks.bump();
        self.store.clear();
        let c = &self.stats.cache;
        c.flushes.incr();
        c.bytes.set(0);
        c.entries.set(0);
        tracing::info!(why, "result cache flushed");
    }

    /// Starts or stops serving; either way the entries are dropped first.
    pub(crate) fn set_serving(&self, on: bool, why: &str) {
        self.serving.store(false, Ordering::Release);
        self.flush(why);
        self.serving.store(on, Ordering::Release);
    }

    pub(crate) fn set_wal_mode(&self, on: bool) {
        self.wal_mode.store(on, Ordering::Release);
        self.stats.cache.wal_mode.set(i64::from(on));
    }

    pub(crate) fn set_stream_lsn(&self, lsn: u64) {
        self.stats.cache.stream_lsn.fetch_max(lsn, Ordering::AcqRel);
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_catalog(&self, c: Catalog) {
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(c);
    }

    /// Bytes and entries held.
    pub fn usage(&self) -> (usize, usize) {
        self.store.usage()
    }
}
