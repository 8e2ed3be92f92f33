//! What went through a database, as PgBouncer's SHOW STATS counts it: transactions and
//! queries served by its servers, bytes from and to clients, and microseconds spent in
//! transactions, in queries, and waiting for a server connection; with histograms of query
//! durations and checkout waits, and errors by SQLSTATE class. Sessions add a whole
//! transaction's figures at once, at its end.

use super::Counter;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Upper bounds (µs) of the duration histograms' buckets; one more bucket takes the rest.
pub const DURATION_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Buckets of a duration histogram (the last is unbounded).
pub const DURATION_BUCKETS: usize = DURATION_BOUNDS_US.len() + 1;

/// The bucket a duration falls in.
pub fn duration_bucket(us: u64) -> usize {
    DURATION_BOUNDS_US.partition_point(|&b| b < us)
}

/// A histogram of durations: per-bucket counts (not cumulative) and the sum.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [Counter; DURATION_BUCKETS],
    sum_us: Counter,
}

impl Histogram {
    /// Adds `n` observations to bucket `i` and `sum_us` to the sum.
    pub fn add(&self, i: usize, n: u64, sum_us: u64) {
        if let Some(b) = self.buckets.get(i) {
            b.add(n);
            self.sum_us.add(sum_us);
        }
    }

    /// (per-bucket counts, sum in µs).
    pub fn reading(&self) -> ([u64; DURATION_BUCKETS], u64) {
        (
            std::array::from_fn(|i| self.buckets[i].get()),
            self.sum_us.get(),
        )
    }
}

#[derive(Debug, Default)]
pub struct Traffic {
    pub xacts: Counter,
    pub queries: Counter,
    /// Bytes received from clients (forwarded to servers).
    pub bytes_received: Counter,
    /// Bytes sent to clients (from servers).
    pub bytes_sent: Counter,
    pub xact_us: Counter,
    pub query_us: Counter,
    /// Time clients waited for a server connection.
    pub wait_us: Counter,
    /// Checkouts that had to wait (or open a connection).
    pub waits: Counter,
    pub query_duration: Histogram,
    /// Every checkout's wait (0 for an idle connection at hand).
    pub checkout_wait: Histogram,
    /// ErrorResponses sent to clients, by SQLSTATE class (two characters).
    errors: Mutex<BTreeMap<[u8; 2], u64>>,
}

/// A reading of [`Traffic`], for reports and for averages over a period.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TrafficTotals {
    pub xacts: u64,
    pub queries: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub xact_us: u64,
    pub query_us: u64,
    pub wait_us: u64,
    pub waits: u64,
}

impl Traffic {
    /// Counts an error of SQLSTATE `code` (its class: the first two characters).
    pub fn count_error(&self, code: &[u8; 5]) {
        let mut m = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry([code[0], code[1]]).or_insert(0) += 1;
    }

    /// (SQLSTATE class, count) of the errors counted.
    pub fn errors(&self) -> Vec<(String, u64)> {
        let m = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .map(|(c, n)| (String::from_utf8_lossy(c).into_owned(), *n))
            .collect()
    }

    pub fn totals(&self) -> TrafficTotals {
        TrafficTotals {
            xacts: self.xacts.get(),
            queries: self.queries.get(),
            bytes_received: self.bytes_received.get(),
            bytes_sent: self.bytes_sent.get(),
            xact_us: self.xact_us.get(),
            query_us: self.query_us.get(),
            wait_us: self.wait_us.get(),
            waits: self.waits.get(),
        }
    }
}

impl TrafficTotals {
    /// What was added between `earlier` and this reading.
    pub fn since(&self, earlier: &TrafficTotals) -> TrafficTotals {
        TrafficTotals {
            xacts: self.xacts.saturating_sub(earlier.xacts),
            queries: self.queries.saturating_sub(earlier.queries),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            xact_us: self.xact_us.saturating_sub(earlier.xact_us),
            query_us: self.query_us.saturating_sub(earlier.query_us),
            wait_us: self.wait_us.saturating_sub(earlier.wait_us),
            waits: self.waits.saturating_sub(earlier.waits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_their_buckets() {
        assert_eq!(duration_bucket(0), 0);
        assert_eq!(duration_bucket(100), 0);
        assert_eq!(duration_bucket(101), 1);
        assert_eq!(duration_bucket(10_000_000), 15);
        assert_eq!(duration_bucket(u64::MAX), 16);
        let t = Traffic::default();
        t.count_error(b"42P01");
        t.count_error(b"42601");
        t.count_error(b"08006");
        assert_eq!(
            t.errors(),
            vec![("08".to_string(), 1), ("42".to_string(), 2)]
        );
    }
}
