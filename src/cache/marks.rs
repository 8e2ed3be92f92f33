//! Invalidation marks: per table (bare name), the sequence number of its last invalidation
//! and the WAL position of the change that caused it. An entry keeps the marks of the
//! tables it read and the sequence number at the time its query started: once a mark moves
//! past that number the entry is dead. Marks are created on first use and never removed
//! (one per table name). A table whose changes name their rows (an integer primary key)
//! is also invalidated per row: a row's change moves one of [`ROW_SLOTS`] row slots (picked
//! by a hash of table and key; two rows sharing a slot only drop each other's entries) and
//! the table's any-change mark, not its whole-table mark. An entry read by key checks the
//! whole-table mark and its row slot; any other entry checks the any-change mark.
//!
//! A mark also counts its invalidations per clock tick: a table invalidated
//! [`BUSY_PER_TICK`] times within one 50 ms tick is "busy", and reads of it bypass the
//! cache (their entries would die before anyone read them); for reads by key only
//! whole-table invalidations count.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Invalidations within one coarse clock tick (50 ms) that make a table busy.
pub const BUSY_PER_TICK: u64 = 8;

/// Row slots per database.
pub const ROW_SLOTS: usize = 16384;

/// The sequence number and WAL position of the last invalidation of something.
#[derive(Debug, Default)]
pub struct Stamp {
    seq: AtomicU64,
    lsn: AtomicU64,
}

impl Stamp {
    /// Sequence number of the last invalidation.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// WAL position of the last change (u64::MAX: unknown, no replica read is trusted).
    pub fn lsn(&self) -> u64 {
        self.lsn.load(Ordering::Acquire)
    }

    fn set(&self, seq: u64, lsn: u64) {
        self.lsn.fetch_max(lsn, Ordering::AcqRel);
        self.seq.store(seq, Ordering::Release);
    }
}

/// Invalidations counted per coarse clock tick.
#[derive(Debug, Default)]
struct TickCount {
    tick: AtomicU64,
    n: AtomicU64,
}

impl TickCount {
    fn is_busy(&self, now_tick: u64) -> bool {
        now_tick.saturating_sub(self.tick.load(Ordering::Relaxed)) <= 1
            && self.n.load(Ordering::Relaxed) >= BUSY_PER_TICK
    }

    fn count(&self, now_tick: u64) {
        if self.tick.swap(now_tick, Ordering::Relaxed) == now_tick {
            self.n.fetch_add(1, Ordering::Relaxed);
        } else {
            self.n.store(1, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, Default)]
pub struct Mark {
    /// Any change to the table, by row or whole.
    any: Stamp,
    /// Changes not told apart by row.
    whole: Stamp,
    any_count: TickCount,
    whole_count: TickCount,
}

impl Mark {
    /// Sequence number of the last invalidation of any kind.
    pub fn seq(&self) -> u64 {
        self.any.seq()
    }

    /// WAL position of the last change of any kind.
    pub fn lsn(&self) -> u64 {
        self.any.lsn()
    }

    /// The last invalidation not told apart by row.
    pub fn whole(&self) -> &Stamp {
        &self.whole
    }

    /// Invalidated often enough, in this tick or the last, that caching its reads is waste
    /// (`by_row`: for a read of one row, which only whole-table invalidations kill).
    pub fn is_busy(&self, now_tick: u64, by_row: bool) -> bool {
        if by_row {
            self.whole_count.is_busy(now_tick)
        } else {
            self.any_count.is_busy(now_tick)
        }
    }
}

/// The coarse clock's tick now.
pub fn tick_now() -> u64 {
    crate::util::coarse_clock::now_ms() / 50
}

pub struct Marks {
    /// Bumped by every invalidation; an entry's query records it when it starts.
    seq: AtomicU64,
    by_table: RwLock<HashMap<String, Arc<Mark>>>,
    rows: Box<[Stamp]>,
}

impl Default for Marks {
    fn default() -> Marks {
        Marks {
            seq: AtomicU64::new(0),
            by_table: RwLock::default(),
            rows: (0..ROW_SLOTS).map(|_| Stamp::default()).collect(),
        }
    }
}

impl Marks {
    /// The row slot of `key` in `table`.
    pub fn row_slot(table: &str, key: i64) -> u32 {
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one((table, key));
        (h % ROW_SLOTS as u64) as u32
    }

    /// The stamp of row slot `slot`.
    pub fn row(&self, slot: u32) -> &Stamp {
        &self.rows[slot as usize % ROW_SLOTS]
    }

    /// Invalidates one row of `table` (by its key) for a change at `lsn`.
    pub fn invalidate_row(&self, table: &str, key: i64, lsn: u64) {
        let mark = self.mark(table);
        let seq = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
        self.row(Marks::row_slot(table, key)).set(seq, lsn);
        mark.any.set(seq, lsn);
        mark.any_count.count(tick_now());
    }

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
        mark.whole.set(seq, lsn);
        mark.any.set(seq, lsn);
        let now = tick_now();
        mark.whole_count.count(now);
        mark.any_count.count(now);
    }

    /// Whether nothing an entry read (`marks`, and `row` for a read by key of the one table
    /// in `marks`) was invalidated after sequence number `start`.
    pub fn unchanged_since(&self, marks: &[Arc<Mark>], row: Option<u32>, start: u64) -> bool {
        match row {
            Some(slot) => {
                self.row(slot).seq() <= start && marks.iter().all(|m| m.whole.seq() <= start)
            }
            None => marks.iter().all(|m| m.seq() <= start),
        }
    }

    /// The WAL position of the newest change an entry depends on.
    pub fn newest_lsn(&self, marks: &[Arc<Mark>], row: Option<u32>) -> u64 {
        match row {
            Some(slot) => marks
                .iter()
                .map(|m| m.whole.lsn())
                .fold(self.row(slot).lsn(), u64::max),
            None => marks.iter().map(|m| m.lsn()).fold(0, u64::max),
        }
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

    #[test]
    fn many_invalidations_in_a_tick_make_a_table_busy() {
        let c = TickCount::default();
        for _ in 0..BUSY_PER_TICK - 1 {
            c.count(10);
        }
        assert!(!c.is_busy(10));
        c.count(10);
        assert!(c.is_busy(10) && c.is_busy(11));
        assert!(!c.is_busy(12), "quiet for a whole tick");
        c.count(12);
        assert!(!c.is_busy(12), "the count starts over");
    }

    #[test]
    fn a_row_change_moves_its_slot_and_the_any_mark_only() {
        let m = Marks::default();
        let t = m.mark("t");
        let start = m.seq();
        let (five, six) = (Marks::row_slot("t", 5), Marks::row_slot("t", 6));
        assert_ne!(five, six, "a fixed hash: these two do not collide");
        m.invalidate_row("t", 5, 70);
        assert!(m.row(five).seq() > start && m.row(five).lsn() == 70);
        assert!(m.row(six).seq() <= start);
        assert!(t.seq() > start && t.lsn() == 70);
        assert!(t.whole().seq() <= start);
        m.invalidate("t", 80);
        assert!(t.whole().seq() > start && t.whole().lsn() == 80);
    }
}
