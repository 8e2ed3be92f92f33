//! Routing counters of one cluster: requests per (target, reason), and reads that had to go
//! to the primary because no replica was usable.

use crate::router::{Reason, Target};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct RouteStats {
    counts: Mutex<HashMap<(Target, Reason), u64>>,
    /// Reads meant for a replica that went to the primary (no replica usable or caught up).
    pub reads_on_primary: AtomicU64,
}

impl RouteStats {
    pub fn count(&self, target: Target, reason: Reason) {
        let mut m = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((target, reason)).or_insert(0) += 1;
    }

    /// (target, reason text, count), sorted, for reports and tests.
    pub fn snapshot(&self) -> Vec<(Target, String, u64)> {
        let m = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = m
            .iter()
            .map(|((t, r), n)| (*t, r.to_string(), *n))
            .collect();
        v.sort_by(|a, b| (format!("{:?}", a.0), &a.1).cmp(&(format!("{:?}", b.0), &b.1)));
        v
    }

    pub fn fallback(&self) {
        self.reads_on_primary.fetch_add(1, Ordering::Relaxed);
    }
}
