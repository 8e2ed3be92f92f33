//! Verdicts per query shape: for each fingerprint, whether its reads may be cached (the
//! router's scan, then `tables` / `exclude_tables`) and what its writes invalidate. Made
//! once per shape and kept in a sharded LRU, so the text is scanned once, not per run.

use super::reject::Reject;
use crate::config::CacheConfig;
use crate::router::{read_shape, write_targets, Fingerprint, ReadShape, WriteTargets};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

const SHARDS: usize = 16;

pub struct Shape {
    /// The relations a cacheable read reads, or why it is not cacheable.
    read: Result<Arc<[String]>, Reject>,
    /// What it changes when it runs as a write.
    pub writes: WriteTargets,
}

impl Shape {
    pub fn of(sql: &str, fp: &Fingerprint, config: &CacheConfig) -> Shape {
        let read = match read_shape(sql, fp.cache_hint, &config.immutable_functions) {
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
                    Ok(relations.into())
                }
            }
        };
        Shape {
            read,
            writes: write_targets(sql),
        }
    }

    /// The relations read, if cacheable.
    pub fn relations(&self) -> Option<&Arc<[String]>> {
        self.read.as_ref().ok()
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
