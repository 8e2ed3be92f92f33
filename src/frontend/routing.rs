//! Per-request routing in the session: which SQL text decides (the first Query or Parse of
//! the request), the classification, read-your-writes state, and the resulting target.

use crate::config::{Database, PoolMode, ReadYourWrites, Routing};
use crate::prepared::ClientStatements;
use crate::protocol::frame::{read_cstr, Frames, HEADER_LEN};
use crate::router::{Classifier, Kind, Reason, Target};
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

/// What the first statement-bearing frame of a request says.
enum FirstSql<'a> {
    Text(&'a str),
    /// A Bind/Describe/Execute of a statement prepared in an earlier request.
    Statement(&'a str),
    None,
}

fn first_sql(buf: &[u8], max: usize) -> FirstSql<'_> {
    for f in Frames::new(buf, max) {
        let Ok((h, frame)) = f else {
            return FirstSql::None;
        };
        let body = &frame[HEADER_LEN..];
        match h.tag {
            b'Q' => {
                return match read_cstr(body).and_then(|(s, _)| std::str::from_utf8(s).ok()) {
                    Some(sql) => FirstSql::Text(sql),
                    None => FirstSql::None,
                }
            }
            b'P' => {
                let sql = read_cstr(body)
                    .and_then(|(_, rest)| read_cstr(rest))
                    .and_then(|(s, _)| std::str::from_utf8(s).ok());
                return match sql {
                    Some(sql) => FirstSql::Text(sql),
                    None => FirstSql::None,
                };
            }
            b'B' => {
                // portal name, then statement name
                let name = read_cstr(body)
                    .and_then(|(_, rest)| read_cstr(rest))
                    .and_then(|(s, _)| std::str::from_utf8(s).ok());
                return match name {
                    Some(n) => FirstSql::Statement(n),
                    None => FirstSql::None,
                };
            }
            _ => {}
        }
    }
    FirstSql::None
}

/// Decides where the request at the front of `buf` goes.
pub fn decide(
    db: &Database,
    classifier: &Classifier,
    ryw: &ReadYourWritesState,
    statements: &ClientStatements,
    replicas: bool,
    buf: &[u8],
    max: usize,
) -> Decision {
    if db.routing == Routing::PrimaryOnly || db.pool_mode == PoolMode::Session || !replicas {
        // Nothing to choose: no parse at all.
        let may_write = db.routing == Routing::ReadWrite
            && db.pool_mode == PoolMode::Transaction
            && db.hosts.len() > 1;
        return Decision::primary(Reason::PrimaryOnly, may_write);
    }
    let c = match first_sql(buf, max) {
        FirstSql::Text(sql) => classifier.classify(sql),
        FirstSql::Statement(name) => match statements.get(name) {
            Some(info) => classifier.classify(info.query()),
            None => return Decision::primary(Reason::ServerState, true),
        },
        FirstSql::None => return Decision::primary(Reason::ServerState, true),
    };
    let reason = c.route_reason();
    let wants_replica = match c.hint {
        Some(t) => t == Target::Replica,
        None => matches!(c.kind, Kind::Read | Kind::BeginReadOnly),
    };
    if !wants_replica {
        let may_write = !matches!(c.kind, Kind::Read | Kind::Neutral | Kind::End);
        return Decision::primary(reason, may_write);
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
