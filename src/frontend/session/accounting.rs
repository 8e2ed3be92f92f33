//! The figures of one attached server connection (queries, transactions, bytes, time in
//! queries and transactions), kept in the session and added to the database's traffic
//! counters when a transaction ends, so the hot path touches shared counters once per
//! transaction. Two clock readings per request: when it is sent, and when its last
//! ReadyForQuery comes.

use crate::stats::{duration_bucket, Traffic, DURATION_BUCKETS};
use std::time::Instant;

#[derive(Default)]
pub struct Accounting {
    /// Queries answered, per duration bucket (few are non-zero; added at the flush).
    query_buckets: [u32; DURATION_BUCKETS],
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

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Accounting {
    /// A connection just checked out, after waiting `waited_us` for it.
    pub fn after_checkout(waited_us: u64) -> Accounting {
        Accounting {
            checkout_wait_us: Some(waited_us),
            ..Accounting::default()
        }
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
    pub fn ready(&mut self, idle: bool, all_answered: bool) {
        self.queries += 1;
        if all_answered {
            if let Some(since) = self.busy_since.take() {
                let now = Instant::now();
                let us = micros(now - since);
                self.query_us += us;
                self.query_buckets[duration_bucket(us)] += 1;
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
        if let (Some(start), Some(end)) = (self.xact_since, self.last_ready) {
            traffic
                .xact_us
                .add(micros(end.saturating_duration_since(start)));
        }
        traffic.xacts.add(self.xacts);
        traffic.queries.add(self.queries);
        traffic.query_us.add(self.query_us);
        traffic.bytes_received.add(self.bytes_in);
        traffic.bytes_sent.add(self.bytes_out);
        for (i, n) in self
            .query_buckets
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
        {
            // The sum goes with the first bucket: the histogram's sum is the total.
            traffic.query_duration.add(i, u64::from(*n), 0);
        }
        traffic.query_duration.add(0, 0, self.query_us);
        if let Some(us) = self.checkout_wait_us {
            traffic.checkout_wait.add(duration_bucket(us), 1, us);
        }
        for code in &self.errors {
            traffic.count_error(code);
        }
        *self = Accounting::default();
    }
}
