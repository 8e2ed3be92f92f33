//! Per-request routing in the session: which SQL text decides (the first Query or Parse of
//! the request), the classification, read-your-writes state, and the resulting target.

use crate::config::{Database, PoolMode, ReadYourWrites, Routing};
use crate::prepared::ClientStatements;
use crate::protocol::client_msgs::{bind_statement, sql_of};
use crate::protocol::frame::Frames;
use crate::router::{Classification, Classifier, Kind, Reason, Target};
use std::time::{Duration, Instant};

/// What a client's earlier writes require of the replicas its reads go to.
#[derive(Default)]
pub struct ReadYourWritesState {
    /// A replica must have replayed this WAL position (`read_your_writes = "lsn"`).
    pub min_lsn: u64,
    /// Reads go to the primary until then (`read_your_writes = "window"`).
    pub primary_until: Option<Instant>,
}

impl ReadYourWritesState {
    /// Records a committed write.
    pub fn wrote(&mut self, mode: ReadYourWrites, window: Duration, lsn: Option<u64>) {
        match mode {
            ReadYourWrites::Lsn => {
                if let Some(l) = lsn {
                    self.min_lsn = self.min_lsn.max(l);
                }
            }
            ReadYourWrites::Window => self.primary_until = Some(Instant::now() + window),
            ReadYourWrites::Off => {}
        }
    }
}

/// A routing decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub target: Target,
    pub reason: Reason,
    /// The transaction may write: its commit must be waited for before the client reads
    /// from replicas again.
    pub may_write: bool,
    /// A replica must have replayed this position (0: any replica).
    pub min_lsn: u64,
}

impl Decision {
    fn primary(reason: Reason, may_write: bool) -> Decision {
        Decision {
            target: Target::Primary,
            reason,
            may_write,
            min_lsn: 0,
        }
    }
}

/// How the buffered request reads, taken as a whole.
struct BatchView {
    /// The classification of its first statement (decides the reason and hints).
    first: Option<Classification>,
    /// Every statement in it is a read (or it opens a read-only transaction).
    all_reads: bool,
    /// Some statement carries a primary hint.
    primary_hint: bool,
    /// The last complete frame is a sync point (Query, Sync, FunctionCall): the request is
    /// whole, so whatever server it lands on is released at its end.
    complete: bool,
}

/// Classifies every statement of the complete frames in `buf` (Query and Parse texts, and
/// the texts of named statements a Bind uses).
fn view_batch(
    buf: &[u8],
    max: usize,
    classifier: &Classifier,
    statements: &ClientStatements,
) -> BatchView {
    let mut v = BatchView {
        first: None,
        all_reads: true,
        primary_hint: false,
        complete: false,
    };
    let note = |c: Classification, v: &mut BatchView| {
        let first = v.first.is_none();
        let read = match c.kind {
            Kind::Read => true,
            Kind::BeginReadOnly => first,
            _ => false,
        };
        v.all_reads &= read || c.hint == Some(Target::Replica);
        v.primary_hint |= c.hint == Some(Target::Primary);
        if first {
            v.first = Some(c);
        }
    };
    for f in Frames::new(buf, max) {
        let Ok((h, frame)) = f else {
            break;
        };
        v.complete = matches!(h.tag, b'Q' | b'S' | b'F');
        let text = match h.tag {
            b'Q' | b'P' => sql_of(h.tag, frame),
            b'B' => {
                match bind_statement(frame) {
                    // Unnamed: its Parse was classified already (or it is unknown).
                    Some("") => continue,
                    Some(n) => match statements.get(n) {
                        Some(info) => {
                            note(classifier.classify(info.query()), &mut v);
                            continue;
                        }
                        None => {
                            v.all_reads = false;
                            continue;
                        }
                    },
                    None => None,
                }
            }
            b'F' => {
                v.all_reads = false;
                continue;
            }
            _ => continue,
        };
        match text {
            Some(sql) => note(classifier.classify(sql), &mut v),
            None => v.all_reads = false,
        }
    }
    v
}

/// Whether the complete frames in `buf` only read (used to keep a replica connection from
/// receiving a pipelined write).
pub fn batch_only_reads(
    buf: &[u8],
    max: usize,
    classifier: &Classifier,
    statements: &ClientStatements,
) -> bool {
    let v = view_batch(buf, max, classifier, statements);
    v.all_reads && !v.primary_hint
}

/// Decides where the request at the front of `buf` goes.
pub fn decide(
    db: &Database,
    classifier: &Classifier,
    ryw: &ReadYourWritesState,
    statements: &ClientStatements,
    replicas: impl FnOnce() -> bool,
    buf: &[u8],
    max: usize,
) -> Decision {
    if db.routing == Routing::PrimaryOnly || db.pool_mode == PoolMode::Session || !replicas() {
        // Nothing to choose: no parse at all.
        let may_write = db.routing == Routing::ReadWrite
            && db.pool_mode == PoolMode::Transaction
            && db.hosts.len() > 1;
        return Decision::primary(Reason::PrimaryOnly, may_write);
    }
    let v = view_batch(buf, max, classifier, statements);
    let Some(c) = v.first else {
        return Decision::primary(Reason::ServerState, true);
    };
    let reason = c.route_reason();
    if !v.complete {
        // An extended-protocol sequence without its Sync yet (e.g. Parse/Describe/Flush):
        // the connection stays attached until the Sync, and what follows may write.
        return Decision::primary(Reason::IncompleteRequest, true);
    }
    if !v.all_reads || v.primary_hint {
        let reason = if !v.primary_hint && matches!(c.kind, Kind::Read | Kind::BeginReadOnly) {
            // The first statement reads, a later one in the same request does not.
            Reason::MultiStatementWrite
        } else {
            reason
        };
        // Conservative: anything that is not all reads may have written.
        return Decision::primary(reason, true);
    }
    if db.read_your_writes == ReadYourWrites::Window
        && ryw.primary_until.is_some_and(|t| Instant::now() < t)
    {
        return Decision::primary(reason, false);
    }
    Decision {
        target: Target::Replica,
        reason,
        may_write: false,
        min_lsn: if db.read_your_writes == ReadYourWrites::Lsn {
            ryw.min_lsn
        } else {
            0
        },
    }
}
