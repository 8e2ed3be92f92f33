//! Routing counters of one cluster: requests per (target, reason), and reads that had to go
//! to the primary because no replica was usable.

use crate::router::{Reason, Target};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Every reason that carries no data, the most frequent first: each has a plain counter per
/// target, so counting a request takes one atomic add and no lock.
const SIMPLE: [Reason; 28] = [
    Reason::PrimaryOnly,
    Reason::ReadOnlySelect,
    Reason::WriteStatement,
    Reason::TransactionEnd,
    Reason::BeginReadWrite,
    Reason::BeginReadOnly,
    Reason::SessionCommand,
    Reason::IncompleteRequest,
    Reason::ReadOnlyShow,
    Reason::Values,
    Reason::Table,
    Reason::ExplainRead,
    Reason::CopyToStdout,
    Reason::Locking,
    Reason::DataModifyingCte,
    Reason::SelectInto,
    Reason::ParseFailed,
    Reason::TooComplex,
    Reason::MultiStatementWrite,
    Reason::MultiStatementTransaction,
    Reason::Savepoint,
    Reason::TwoPhaseCommit,
    Reason::SetTransactionReadOnly,
    Reason::ServerState,
    Reason::ListenNotify,
    Reason::HintPrimary,
    Reason::HintReplica,
    Reason::EmptyQuery,
];

const TARGETS: [Target; 2] = [Target::Primary, Target::Replica];

/// The index of a reason in `SIMPLE` (None: it carries data). Exhaustive, so a new reason
/// must be given a place here.
fn slot(r: &Reason) -> Option<usize> {
    Some(match r {
        Reason::WriteFunction(_) => return None,
        Reason::PrimaryOnly => 0,
        Reason::ReadOnlySelect => 1,
        Reason::WriteStatement => 2,
        Reason::TransactionEnd => 3,
        Reason::BeginReadWrite => 4,
        Reason::BeginReadOnly => 5,
        Reason::SessionCommand => 6,
        Reason::IncompleteRequest => 7,
        Reason::ReadOnlyShow => 8,
        Reason::Values => 9,
        Reason::Table => 10,
        Reason::ExplainRead => 11,
        Reason::CopyToStdout => 12,
        Reason::Locking => 13,
        Reason::DataModifyingCte => 14,
        Reason::SelectInto => 15,
        Reason::ParseFailed => 16,
        Reason::TooComplex => 17,
        Reason::MultiStatementWrite => 18,
        Reason::MultiStatementTransaction => 19,
        Reason::Savepoint => 20,
        Reason::TwoPhaseCommit => 21,
        Reason::SetTransactionReadOnly => 22,
        Reason::ServerState => 23,
        Reason::ListenNotify => 24,
        Reason::HintPrimary => 25,
        Reason::HintReplica => 26,
        Reason::EmptyQuery => 27,
    })
}

pub struct RouteStats {
    /// Requests per (target, reason without data), indexed by target then `SIMPLE`.
    simple: [[AtomicU64; SIMPLE.len()]; TARGETS.len()],
    /// Requests whose reason carries data (a write function's name).
    named: Mutex<HashMap<(Target, Reason), u64>>,
    /// Reads meant for a replica that went to the primary (no replica usable or caught up).
    pub reads_on_primary: AtomicU64,
}

impl Default for RouteStats {
    fn default() -> Self {
        RouteStats {
            simple: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            named: Mutex::default(),
            reads_on_primary: AtomicU64::new(0),
        }
    }
}

impl RouteStats {
    pub fn count(&self, target: Target, reason: Reason) {
        let t = usize::from(target == Target::Replica);
        // A slot beyond `SIMPLE` (a reason given a place in `slot` but not listed) is
        // counted by name rather than indexing out of bounds.
        match slot(&reason).and_then(|i| self.simple[t].get(i)) {
            Some(n) => {
                n.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                let mut m = self.named.lock().unwrap_or_else(|p| p.into_inner());
                *m.entry((target, reason)).or_insert(0) += 1;
            }
        }
    }

    /// (target, reason text, count), sorted, for reports and tests.
    pub fn snapshot(&self) -> Vec<(Target, String, u64)> {
        let mut v: Vec<_> = {
            let m = self.named.lock().unwrap_or_else(|p| p.into_inner());
            m.iter()
                .map(|((t, r), n)| (*t, r.to_string(), *n))
                .collect()
        };
        for (t, counts) in TARGETS.iter().zip(&self.simple) {
            for (r, n) in SIMPLE.iter().zip(counts) {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    v.push((*t, r.to_string(), n));
                }
            }
        }
        v.sort_by(|a, b| (format!("{:?}", a.0), &a.1).cmp(&(format!("{:?}", b.0), &b.1)));
        v
    }

    pub fn fallback(&self) {
        self.reads_on_primary.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_simple_and_named_reasons() {
        let s = RouteStats::default();
        s.count(Target::Primary, Reason::PrimaryOnly);
        s.count(Target::Primary, Reason::PrimaryOnly);
        s.count(Target::Replica, Reason::ReadOnlySelect);
        s.count(
            Target::Primary,
            Reason::WriteFunction(crate::router::FunctionName::new("nextval")),
        );
        let snap = s.snapshot();
        let n = |t: Target, what: &str| {
            snap.iter()
                .find(|(tt, r, _)| *tt == t && r.contains(what))
                .map(|x| x.2)
        };
        assert_eq!(snap.len(), 3, "{snap:?}");
        assert_eq!(n(Target::Replica, "select"), Some(1));
        assert_eq!(n(Target::Primary, "nextval"), Some(1));
        assert_eq!(n(Target::Replica, "nextval"), None);
    }

    #[test]
    fn every_reason_without_data_has_its_own_counter() {
        for (i, r) in SIMPLE.iter().enumerate() {
            assert_eq!(slot(r), Some(i), "{r:?}");
        }
    }
}
