//! Verdicts per query shape: for each fingerprint, whether its reads may be cached (the
//! router's scan, then `tables` / `exclude_tables`) and what its writes invalidate. Made
//! once per shape and kept in a sharded LRU, so the text is scanned once, not per run.
//! Where a read or a write picks rows of one table by `column = value` terms, the shape
//! keeps where the values are, for invalidation per row.

use super::marks::{tick_now, Mark, Marks};
use super::reject::Reject;
use crate::config::CacheConfig;
use crate::router::{
    read_row_key, read_shape, write_row_key, write_targets, Fingerprint, ReadShape, WriteTargets,
};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

const SHARDS: usize = 16;

/// The marks of the relations a read reads.
pub type MarkList = Arc<[Arc<Mark>]>;

/// A read's relations and their marks, or why it is not cacheable.
type ReadVerdict = Result<(Arc<[String]>, MarkList), Reject>;

pub struct Shape {
    /// The relations a cacheable read reads (with their invalidation marks), or why it is
    /// not cacheable.
    read: ReadVerdict,
    /// A cacheable read of one table picking rows by key terms (in the text the shape was
    /// made from: texts sharing a fingerprint can differ in where their values are, so
    /// each execution scans its own text again, see [`crate::router::read_row_key`]).
    pub keyed_read: bool,
    /// What it changes when it runs as a write.
    pub writes: WriteTargets,
    /// A write of one table picking rows by key terms (the same caveat).
    pub keyed_write: bool,
}

impl Shape {
    pub fn of(sql: &str, fp: &Fingerprint, config: &CacheConfig, marks: &Marks) -> Shape {
        let read: ReadVerdict = match read_shape(sql, fp.cache_hint, &config.immutable_functions) {
            ReadShape::Rejected(r, what) => {
                tracing::debug!(reason = r.as_str(), what = %what, "query shape not cacheable");
                Err(Reject::Shape(r))
            }
            ReadShape::Cacheable { relations } => {
                if relations.iter().any(|r| config.exclude_tables.contains(r)) {
                    Err(Reject::Excluded)
                } else if !config.tables.is_empty()
                    && !relations.iter().all(|r| config.tables.contains(r))
                {
                    Err(Reject::NotListed)
                } else {
                    let m = relations.iter().map(|r| marks.mark(r)).collect();
                    Ok((relations.into(), m))
                }
            }
        };
        let keyed_read = match &read {
            Ok((relations, _)) if relations.len() == 1 => read_row_key(sql).is_some(),
            _ => false,
        };
        let writes = write_targets(sql);
        let keyed_write = match &writes {
            WriteTargets::Tables(t) if t.len() == 1 => write_row_key(sql).is_some(),
            _ => false,
        };
        Shape {
            read,
            keyed_read,
            writes,
            keyed_write,
        }
    }

    /// The relations read and their marks, if cacheable.
    pub fn relations(&self) -> Option<(&Arc<[String]>, &MarkList)> {
        self.read.as_ref().ok().map(|(r, m)| (r, m))
    }

    /// A table it reads is busy (invalidated many times a tick): not worth caching now.
    /// `by_row`: this execution reads by key.
    pub fn is_busy(&self, by_row: bool) -> bool {
        let now = tick_now();
        self.read
            .as_ref()
            .is_ok_and(|(_, marks)| marks.iter().any(|m| m.is_busy(now, by_row)))
    }

    /// Why it is not cacheable.
    pub fn rejected(&self) -> Option<Reject> {
        self.read.as_ref().err().copied()
    }
}

type ShapeShard = Mutex<LruCache<u64, Arc<Shape>>>;

pub struct Shapes {
    shards: Box<[ShapeShard]>,
}

impl Shapes {
    pub fn new(capacity: usize) -> Shapes {
        let per = NonZeroUsize::new(capacity.div_ceil(SHARDS)).unwrap_or(NonZeroUsize::MIN);
        Shapes {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per)))
                .collect(),
        }
    }

    pub fn get_or_make(&self, hash: u64, make: impl FnOnce() -> Shape) -> Arc<Shape> {
        let shard = &self.shards[((hash >> 36) as usize) % SHARDS];
        if let Some(s) = shard.lock().unwrap_or_else(|e| e.into_inner()).get(&hash) {
            return s.clone();
        }
        let made = Arc::new(make());
        shard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(hash, made.clone());
        made
    }
}
