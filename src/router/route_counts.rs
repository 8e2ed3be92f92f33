//! The router's side of the routing counters kept in [`RouteCounters`]: which counter slot
//! each reason has, counting a decision, and turning the counts back into names for reports.

use super::{Reason, Target};
use crate::stats::RouteCounters;

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

/// The shape of the counters [`count_route`] fills: (targets, reason slots).
pub const ROUTE_COUNTER_SHAPE: (usize, usize) = (TARGETS.len(), SIMPLE.len());

fn target_index(t: Target) -> usize {
    usize::from(t == Target::Replica)
}

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

/// Counts one routing decision: one atomic add for a reason without data; a reason that
/// carries a name (or a slot the counters lack) is counted by its text.
pub fn count_route(counters: &RouteCounters, target: Target, reason: &Reason) {
    let t = target_index(target);
    let counted = slot(reason).is_some_and(|i| counters.add(t, i));
    if !counted {
        counters.add_named(t, &reason.to_string());
    }
}

/// (target, reason text, count) for every non-zero count, sorted, for reports and tests.
pub fn route_counts(counters: &RouteCounters) -> Vec<(Target, String, u64)> {
    let mut v: Vec<(Target, String, u64)> = counters
        .named_counts()
        .into_iter()
        .filter_map(|(t, name, n)| Some((*TARGETS.get(t)?, name, n)))
        .collect();
    for (t, i, n) in counters.slot_counts() {
        if let (Some(t), Some(r)) = (TARGETS.get(t), SIMPLE.get(i)) {
            v.push((*t, r.to_string(), n));
        }
    }
    v.sort_by(|a, b| (format!("{:?}", a.0), &a.1).cmp(&(format!("{:?}", b.0), &b.1)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_simple_and_named_reasons() {
        let (targets, slots) = ROUTE_COUNTER_SHAPE;
        let s = RouteCounters::new(targets, slots);
        count_route(&s, Target::Primary, &Reason::PrimaryOnly);
        count_route(&s, Target::Primary, &Reason::PrimaryOnly);
        count_route(&s, Target::Replica, &Reason::ReadOnlySelect);
        count_route(
            &s,
            Target::Primary,
            &Reason::WriteFunction(crate::router::FunctionName::new("nextval")),
        );
        let snap = route_counts(&s);
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
