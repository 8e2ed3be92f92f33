//! Routing counters: requests per (target, reason). Reasons that carry no data have a slot
//! each, counted with one atomic add and no lock; reasons that carry a name (a write
//! function) are counted by name under a lock. Targets and slots are plain indices: the
//! router says which reason has which slot and names them in reports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug)]
pub struct RouteCounters {
    targets: usize,
    slots: usize,
    /// Indexed by `target * slots + slot`.
    simple: Box<[AtomicU64]>,
    /// Counts of named reasons: per name, one count per target.
    named: Mutex<HashMap<String, Box<[u64]>>>,
}

impl RouteCounters {
    pub fn new(targets: usize, slots: usize) -> RouteCounters {
        RouteCounters {
            targets,
            slots,
            simple: (0..targets * slots).map(|_| AtomicU64::new(0)).collect(),
            named: Mutex::default(),
        }
    }

    /// Counts one request in `slot` for `target`; false (nothing counted) if either is out
    /// of range, so the caller can count it by name instead.
    pub fn add(&self, target: usize, slot: usize) -> bool {
        if slot >= self.slots {
            return false;
        }
        match self.simple.get(target * self.slots + slot) {
            Some(n) => {
                n.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Counts one request whose reason is known by `name`.
    pub fn add_named(&self, target: usize, name: &str) {
        if target >= self.targets {
            return;
        }
        let mut m = self.named.lock().unwrap_or_else(|p| p.into_inner());
        // Looked up by `&str` first: a name seen before costs no allocation.
        match m.get_mut(name) {
            Some(per_target) => per_target[target] += 1,
            None => {
                let mut per_target = vec![0; self.targets].into_boxed_slice();
                per_target[target] = 1;
                m.insert(name.to_string(), per_target);
            }
        }
    }

    /// Non-zero slot counts as (target, slot, count).
    pub fn slot_counts(&self) -> Vec<(usize, usize, u64)> {
        self.simple
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let n = n.load(Ordering::Relaxed);
                (n > 0).then_some((i / self.slots, i % self.slots, n))
            })
            .collect()
    }

    /// Named counts as (target, name, count).
    pub fn named_counts(&self) -> Vec<(usize, String, u64)> {
        let m = self.named.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .flat_map(|(name, per_target)| {
                per_target
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(move |(t, n)| (t, name.clone(), *n))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_slots_and_names() {
        let c = RouteCounters::new(2, 3);
        assert!(c.add(0, 1));
        assert!(c.add(0, 1));
        assert!(c.add(1, 2));
        assert!(!c.add(0, 3), "slot out of range");
        assert!(!c.add(2, 0), "target out of range");
        c.add_named(1, "nextval");
        c.add_named(1, "nextval");
        let mut slots = c.slot_counts();
        slots.sort();
        assert_eq!(slots, vec![(0, 1, 2), (1, 2, 1)]);
        assert_eq!(c.named_counts(), vec![(1, "nextval".to_string(), 2)]);
    }
}
