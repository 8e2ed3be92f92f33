//! Why a request was not answered from, or stored in, the result cache: one counter slot
//! per reason, with the names the metrics and the console show.

use crate::router::CacheReject;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not a read (routing sends it to the primary).
    Write,
    /// Inside an explicit transaction.
    InTransaction,
    /// Not one Query alone in the request.
    NotSingleQuery,
    /// The query text rules it out.
    Shape(CacheReject),
    /// Reads a table outside `tables`.
    NotListed,
    /// Reads a table in `exclude_tables`.
    Excluded,
    /// A literal `now` / `today` / ... as a date or time.
    TimeWord,
    /// Reads a relation that is not a plain table (view, function, unknown name).
    NotATable,
    /// The result is larger than `max_result_bytes`.
    TooLarge,
    /// The server answered with an error or with something that is not rows.
    ServerReply,
    /// A table it read was invalidated while the query ran.
    InvalidatedInFlight,
    /// It ran on a replica that had not replayed a table's last change.
    ReplicaBehind,
    /// The cache is not serving (change stream down, catalog not loaded yet).
    NotServing,
    /// The client wrote at a WAL position the change stream has not passed yet.
    WriteNotSeen,
    /// A table it reads is invalidated many times a second: its entries would not live.
    BusyTable,
}

const SHAPE_REJECTS: [CacheReject; 9] = [
    CacheReject::NotASelect,
    CacheReject::Function,
    CacheReject::ValueFunction,
    CacheReject::SystemCatalog,
    CacheReject::TempTable,
    CacheReject::TableSample,
    CacheReject::Locking,
    CacheReject::NoCacheHint,
    CacheReject::TooComplex,
];

/// Every reason, in slot order.
pub const ALL_REJECTS: [Reject; 23] = [
    Reject::Write,
    Reject::InTransaction,
    Reject::NotSingleQuery,
    Reject::Shape(SHAPE_REJECTS[0]),
    Reject::Shape(SHAPE_REJECTS[1]),
    Reject::Shape(SHAPE_REJECTS[2]),
    Reject::Shape(SHAPE_REJECTS[3]),
    Reject::Shape(SHAPE_REJECTS[4]),
    Reject::Shape(SHAPE_REJECTS[5]),
    Reject::Shape(SHAPE_REJECTS[6]),
    Reject::Shape(SHAPE_REJECTS[7]),
    Reject::Shape(SHAPE_REJECTS[8]),
    Reject::NotListed,
    Reject::Excluded,
    Reject::TimeWord,
    Reject::NotATable,
    Reject::TooLarge,
    Reject::ServerReply,
    Reject::InvalidatedInFlight,
    Reject::ReplicaBehind,
    Reject::NotServing,
    Reject::WriteNotSeen,
    Reject::BusyTable,
];

impl Reject {
    /// The counter slot.
    pub fn slot(self) -> usize {
        ALL_REJECTS.iter().position(|r| *r == self).unwrap_or(0)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Write => "write",
            Reject::InTransaction => "in_transaction",
            Reject::NotSingleQuery => "not_single_query",
            Reject::Shape(r) => r.as_str(),
            Reject::NotListed => "table_not_listed",
            Reject::Excluded => "table_excluded",
            Reject::TimeWord => "time_literal",
            Reject::NotATable => "not_a_table",
            Reject::TooLarge => "too_large",
            Reject::ServerReply => "server_reply",
            Reject::InvalidatedInFlight => "invalidated_in_flight",
            Reject::ReplicaBehind => "replica_behind",
            Reject::NotServing => "not_serving",
            Reject::WriteNotSeen => "write_not_seen",
            Reject::BusyTable => "busy_table",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_and_fit() {
        for (i, r) in ALL_REJECTS.iter().enumerate() {
            assert_eq!(r.slot(), i);
        }
        assert!(ALL_REJECTS.len() <= crate::stats::CACHE_REJECT_SLOTS);
    }
}
