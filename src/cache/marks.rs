//! Invalidation marks: per table (bare name), the sequence number of its last invalidation
//! and the WAL position of the change that caused it. An entry keeps the marks of the
//! tables it read and the sequence number at the time its query started: once a mark moves
//! past that number the entry is dead. Marks are created on first use and never removed
//! (one per table name).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct Mark {
    seq: AtomicU64,
    lsn: AtomicU64,
}

impl Mark {
    /// Sequence number of the last invalidation.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// WAL position of the last change (u64::MAX: unknown, no replica read is trusted).
    pub fn lsn(&self) -> u64 {
        self.lsn.load(Ordering::Acquire)
    }
}

#[derive(Default)]
pub struct Marks {
    /// Bumped by every invalidation; an entry's query records it when it starts.
    seq: AtomicU64,
    by_table: RwLock<HashMap<String, Arc<Mark>>>,
}

impl Marks {
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// The mark of `table`, created if new.
    pub fn mark(&self, table: &str) -> Arc<Mark> {
        if let Some(m) = self.read().get(table) {
            return m.clone();
        }
        let mut map = self.by_table.write().unwrap_or_else(|e| e.into_inner());
        map.entry(table.to_string()).or_default().clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Mark>>> {
        self.by_table.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Invalidates `table` for a change at WAL position `lsn`.
    pub fn invalidate(&self, table: &str, lsn: u64) {
        let mark = self.mark(table);
        let seq = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
        mark.lsn.fetch_max(lsn, Ordering::AcqRel);
        mark.seq.store(seq, Ordering::Release);
    }

    /// After a flush, the WAL positions of the old marks say nothing about what a replica
    /// has: they stay (a read from a replica behind them is still not stored).
    pub fn bump(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::AcqRel) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidation_moves_the_mark_past_earlier_starts() {
        let m = Marks::default();
        let t = m.mark("t");
        let start = m.seq();
        assert!(t.seq() <= start);
        m.invalidate("t", 100);
        assert!(t.seq() > start);
        assert_eq!(t.lsn(), 100);
        m.invalidate("t", 50);
        assert_eq!(t.lsn(), 100, "positions only move forward");
        assert!(Arc::ptr_eq(&t, &m.mark("t")));
    }
}
