//! The figures of one attached server connection (queries, transactions, bytes, time in
//! queries and transactions), kept in the session and added to the database's traffic
//! counters when a transaction ends, so the hot path touches shared counters once per
//! transaction. Two clock readings per request: when it is sent, and when its last
//! ReadyForQuery comes. A single-request transaction's time is its query's (no third
//! subtraction); a query's duration goes into the histogram as it ends (one bucket).

use crate::stats::{duration_bucket, Traffic};
use std::time::Instant;

#[derive(Default)]
pub struct Accounting {
    /// How long the checkout of this connection waited (µs), until flushed.
    pub checkout_wait_us: Option<u64>,
    /// SQLSTATEs of the server's errors.
    pub errors: Vec<[u8; 5]>,
    /// The transaction's first request was sent then.
    xact_since: Option<Instant>,
    /// The request being answered was sent then.
    busy_since: Option<Instant>,
    /// The last request was answered then.
    last_ready: Option<Instant>,
    queries: u64,
    xacts: u64,
    query_us: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Microseconds from `start` to `end` (0 if the clock went backwards).
fn between(start: Instant, end: Instant) -> u64 {
    u64::try_from(end.saturating_duration_since(start).as_micros()).unwrap_or(u64::MAX)
}

impl Accounting {
    /// A connection just checked out, after waiting `waited_us` for it.
    pub fn after_checkout(waited_us: u64) -> Accounting {
        Accounting {
            checkout_wait_us: Some(waited_us),
            ..Accounting::default()
        }
    }

    /// When the request in flight was sent, if one is.
    pub fn busy_since(&self) -> Option<Instant> {
        self.busy_since
    }

    /// A request (a sync point) went to the server.
    pub fn request_sent(&mut self) {
        if self.busy_since.is_none() {
            let now = Instant::now();
            self.busy_since = Some(now);
            self.xact_since.get_or_insert(now);
        }
    }

    /// A ReadyForQuery came: `idle` if it ends a transaction, `all_answered` if no other
    /// request is in flight.
    pub fn ready(&mut self, idle: bool, all_answered: bool, traffic: &Traffic) {
        self.queries += 1;
        if all_answered {
            if let Some(since) = self.busy_since.take() {
                let now = Instant::now();
                let us = between(since, now);
                self.query_us += us;
                traffic.query_duration.add(duration_bucket(us), 1, us);
                self.last_ready = Some(now);
            }
        }
        if idle {
            self.xacts += 1;
        }
    }

    /// Adds what was counted to `traffic` and starts afresh (at a transaction's end, or
    /// when the connection goes).
    pub fn flush(&mut self, traffic: &Traffic) {
        let xact_us = match (self.xact_since, self.last_ready) {
            _ if self.queries == 1 => self.query_us,
            (Some(start), Some(end)) => between(start, end),
            _ => 0,
        };
        traffic.xact_us.add(xact_us);
        traffic.xacts.add(self.xacts);
        traffic.queries.add(self.queries);
        traffic.query_us.add(self.query_us);
        traffic.bytes_received.add(self.bytes_in);
        traffic.bytes_sent.add(self.bytes_out);
        if let Some(us) = self.checkout_wait_us.take() {
            traffic.checkout_wait.add(duration_bucket(us), 1, us);
        }
        for code in self.errors.drain(..) {
            traffic.count_error(&code);
        }
        self.xact_since = None;
        self.busy_since = None;
        self.last_ready = None;
        (self.queries, self.xacts, self.query_us) = (0, 0, 0);
        (self.bytes_in, self.bytes_out) = (0, 0);
    }
}
