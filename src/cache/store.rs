//! The entries: a byte-budgeted LRU (the `lru` crate) split into shards, each behind its
//! own mutex, so sessions on different threads rarely meet on one lock. An entry carries
//! its full key (a 64-bit hash collision is a miss, never a wrong answer), the reply bytes,
//! the invalidation marks of the tables it read, and when and in which epoch it was stored.

use super::marks::Mark;
use bytes::Bytes;
use lru::LruCache;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

const SHARDS: usize = 16;

/// Bytes an entry costs beyond its key and value (the LRU node, the entry, its marks).
const ENTRY_OVERHEAD: usize = 160;

/// A cache key: the full bytes that must match, and their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub hash: u64,
    pub bytes: Box<[u8]>,
}

pub struct Entry {
    pub key: Box<[u8]>,
    /// The replies, as the server sent them, without the final ReadyForQuery.
    pub value: Bytes,
    /// The invalidation marks of the tables read, and the sequence number they had to stay
    /// at or below for the entry to be live.
    pub marks: Arc<[Arc<Mark>]>,
    /// The row slot of a read by key (its table's whole-table mark and this slot decide).
    pub row: Option<u32>,
    pub seq: u64,
    pub epoch: u64,
    pub stored_at: Instant,
}

impl Entry {
    fn size(&self) -> usize {
        self.key.len() + self.value.len() + ENTRY_OVERHEAD + self.marks.len() * 8
    }
}

struct Shard {
    lru: LruCache<u64, Entry>,
    bytes: usize,
}

/// What a store did to the budget.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub evicted: u64,
    /// Change in bytes and entries held.
    pub bytes: i64,
    pub entries: i64,
}

pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    budget_per_shard: usize,
}

impl Store {
    pub fn new(max_bytes: u64) -> Store {
        let total = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        Store {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        lru: LruCache::unbounded(),
                        bytes: 0,
                    })
                })
                .collect(),
            budget_per_shard: (total / SHARDS).max(1),
        }
    }

    pub fn shard_of(hash: u64) -> usize {
        ((hash >> 40) as usize) % SHARDS
    }

    fn shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live entry for `key`, judged by `live` (an entry it rejects is removed; the
    /// removal's bytes are returned as a negative change).
    pub fn get(&self, key: &Key, live: impl Fn(&Entry) -> bool) -> (Option<Bytes>, Stored) {
        let mut shard = self.shard(Self::shard_of(key.hash));
        let mut change = Stored::default();
        let found = match shard.lru.get(&key.hash) {
            Some(e) if *e.key == *key.bytes && live(e) => return (Some(e.value.clone()), change),
            Some(_) => true,
            None => false,
        };
        if found {
            if let Some(e) = shard.lru.pop(&key.hash) {
                let size = e.size();
                shard.bytes -= size;
                change.bytes -= size as i64;
                change.entries -= 1;
            }
        }
        (None, change)
    }

    /// Stores `entry` under `hash`, evicting the least recently used entries of its shard
    /// to stay within the budget. An entry larger than a shard's budget is not stored.
    pub fn put(&self, hash: u64, entry: Entry) -> Stored {
        let size = entry.size();
        let mut change = Stored::default();
        if size > self.budget_per_shard {
            return change;
        }
        let mut shard = self.shard(Self::shard_of(hash));
        if let Some(old) = shard.lru.pop(&hash) {
            shard.bytes -= old.size();
            change.bytes -= old.size() as i64;
            change.entries -= 1;
        }
        while shard.bytes + size > self.budget_per_shard {
            let Some((_, old)) = shard.lru.pop_lru() else {
                break;
            };
            shard.bytes -= old.size();
            change.bytes -= old.size() as i64;
            change.entries -= 1;
            change.evicted += 1;
        }
        shard.bytes += size;
        shard.lru.put(hash, entry);
        change.bytes += size as i64;
        change.entries += 1;
        change
    }

    /// Drops every entry.
    pub fn clear(&self) {
        for i in 0..self.shards.len() {
            let mut shard = self.shard(i);
            shard.lru.clear();
            shard.bytes = 0;
        }
    }

    /// Bytes and entries held.
    pub fn usage(&self) -> (usize, usize) {
        (0..self.shards.len()).fold((0, 0), |(b, n), i| {
            let s = self.shard(i);
            (b + s.bytes, n + s.lru.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &[u8], len: usize) -> Entry {
        Entry {
            key: key.into(),
            value: Bytes::from(vec![0u8; len]),
            marks: Arc::new([]),
            row: None,
            seq: 0,
            epoch: 0,
            stored_at: Instant::now(),
        }
    }

    #[test]
    fn stays_within_the_budget_and_checks_the_whole_key() {
        let store = Store::new(16 * 4096);
        for i in 0..10_000u64 {
            let hash = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            store.put(hash, entry(&i.to_le_bytes(), 500));
        }
        let (bytes, entries) = store.usage();
        assert!(bytes <= 16 * 4096, "{bytes}");
        assert!(entries > 16, "{entries}");
        let hash = 7u64 << 40;
        store.put(hash, entry(b"a", 10));
        let key = |b: &[u8]| Key {
            hash,
            bytes: b.into(),
        };
        assert!(store.get(&key(b"a"), |_| true).0.is_some());
        assert!(store.get(&key(b"b"), |_| true).0.is_none());
        assert!(store.get(&key(b"a"), |_| false).0.is_none());
        assert!(
            store.get(&key(b"a"), |_| true).0.is_none(),
            "removed when not live"
        );
        assert_eq!(store.put(1, entry(b"big", 8192)), Stored::default());
    }
}
