//! The state of a server connection while a client uses it: sync points sent and answered,
//! the transaction status, the parameter changes waiting for their transaction's end, and
//! why the connection was chosen.

use super::super::route_request::Decision;
use super::accounting::Accounting;
use crate::backend::Checkout;
use crate::cache::Fill;
use crate::params::ParamChange;
use crate::protocol::messages::{PgError, TxStatus};
use crate::router::WriteTargets;

/// A server connection while a client uses it.
pub struct Attached {
    pub conn: Checkout,
    /// Sync points (Query, Sync, FunctionCall) sent and not yet answered by ReadyForQuery.
    pub pending: usize,
    /// Status of the last ReadyForQuery.
    pub status: TxStatus,
    /// Parameter changes seen in the client's SQL, each with the number of the request
    /// (sync point) it belongs to; settled when that request's transaction ends.
    pub changes: Vec<(u64, ParamChange)>,
    /// Sync points forwarded and ReadyForQuery messages received since attaching.
    pub sent: u64,
    pub answered: u64,
    /// An ErrorResponse came since the last settled ReadyForQuery.
    pub saw_error: bool,
    /// The last CommandComplete was ROLLBACK.
    pub last_rollback: bool,
    /// A FATAL the server sent before closing, held back to report as ERROR.
    pub fatal: Option<PgError>,
    /// Where and why this connection was chosen.
    pub decision: Decision,
    /// The batch that caused the checkout has not been forwarded yet (it was classified
    /// when routed, so it need not be checked again).
    pub fresh: bool,
    /// Queries, transactions, bytes and times, for the database's counters.
    pub acct: Accounting,
    /// `query_timeout_ms` cancelled the request numbered this (`sent` then).
    pub cancelled_at: Option<u64>,
    /// When a request sent after the cancelled one was first seen waiting (its timer).
    pub timer_from: Option<std::time::Instant>,
    /// The replies being recorded for the result cache (a cacheable request that missed).
    pub fill: Option<Box<Fill>>,
    /// What the statements forwarded in this transaction may change (result cache).
    pub cache_writes: Option<WriteTargets>,
    /// Rows (by key) the statements forwarded in this transaction change (result cache).
    pub cache_rows: Vec<crate::cache::RowChange>,
}
