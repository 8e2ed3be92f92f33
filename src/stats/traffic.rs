//! What went through a database, as PgBouncer's SHOW STATS counts it: transactions and
//! queries served by its servers, bytes from and to clients, and microseconds spent in
//! transactions, in queries, and waiting for a server connection. Sessions add a whole
//! transaction's figures at once, at its end.

use super::Counter;

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
