//! Query routing: classifies one query string (a simple-protocol Query text or an extended
//! protocol Parse text) into what read/write routing needs: [`Kind`], a [`Reason`] for logs
//! and metrics, and an optional `/* switchyard: primary|replica */` comment hint. Pure: no
//! session state. [`Classifier`] owns the write-function list and a route cache keyed by the
//! query's fingerprint (literals and parameters stripped), so sqlparser runs only on a miss.
//!
//! Submodules: `lexer` (the one SQL lexer, hint comments), `statement_text` (statement
//! splitting and leading tokens, also used by the session and prepared-statement layers),
//! `fingerprint` (cache key), `classify` (keyword pre-check, sqlparser analysis, function
//! lists), `cache` (sharded LRU), `route_counts` (the names of the routing counters).

mod cache;
mod cacheable;
#[cfg(test)]
mod cacheable_tests;
mod classify;
mod fingerprint;
mod lexer;
mod route_counts;
mod row_key;
pub mod statement_text;

pub use cacheable::{read_shape, write_targets, CacheReject, ReadShape, WriteTargets};
pub use fingerprint::{fingerprint, Fingerprint};
pub use route_counts::{count_route, route_counts, ROUTE_COUNTER_SHAPE};
pub use row_key::{nth_literal, read_row_key, write_row_key, KeyAt, RowKeyShape};

use crate::stats::ClusterStats;
use std::fmt;
use std::sync::Arc;

/// Where a request may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Primary,
    Replica,
}

/// What a query string is, for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Read-only statement(s): may run on a replica when the session is in autocommit.
    Read,
    /// Writes, DDL, anything unknown or unparsable: primary.
    Write,
    /// `BEGIN` / `START TRANSACTION ... READ ONLY`, alone in the string: the transaction may
    /// go to a replica.
    BeginReadOnly,
    /// `BEGIN` / `START TRANSACTION` without `READ ONLY` (alone in the string).
    Begin,
    /// `COMMIT` / `END` / `ROLLBACK` / `ABORT` (not `ROLLBACK TO`, not the two-phase forms).
    End,
    /// Changes no data and needs no particular server: `SET` (including `SET TRANSACTION`,
    /// see [`Classification::is_set_transaction_read_only`]), `RESET`, `DISCARD`,
    /// `DEALLOCATE`, `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`, and empty strings.
    Neutral,
}

/// The longest PostgreSQL identifier (NAMEDATALEN - 1).
const NAME_MAX: usize = 63;

/// A function name kept inline so [`Reason`] stays `Copy` (truncated at 63 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FunctionName {
    len: u8,
    bytes: [u8; NAME_MAX],
}

impl FunctionName {
    pub fn new(name: &str) -> FunctionName {
        let mut end = name.len().min(NAME_MAX);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; NAME_MAX];
        bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
        FunctionName {
            len: end as u8,
            bytes,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a query got its [`Kind`] (for logs and metrics; `Display` gives a short phrase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    ReadOnlySelect,
    ReadOnlyShow,
    Values,
    Table,
    ExplainRead,
    /// `COPY t TO STDOUT` / `COPY (read) TO STDOUT` (Read).
    CopyToStdout,
    Locking,
    DataModifyingCte,
    SelectInto,
    WriteFunction(FunctionName),
    WriteStatement,
    ParseFailed,
    /// Too many operators/keywords to parse without risking the stack (Write).
    TooComplex,
    MultiStatementWrite,
    /// Several statements, one of them BEGIN/COMMIT/ROLLBACK (Write).
    MultiStatementTransaction,
    BeginReadOnly,
    BeginReadWrite,
    TransactionEnd,
    /// `SAVEPOINT`, `RELEASE`, `ROLLBACK TO` (Neutral).
    Savepoint,
    /// `PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED` (Write).
    TwoPhaseCommit,
    SessionCommand,
    /// `SET TRANSACTION ... READ ONLY` (Neutral).
    SetTransactionReadOnly,
    /// `PREPARE`/`EXECUTE` and cursor commands: state that lives on one server (Write).
    ServerState,
    ListenNotify,
    HintPrimary,
    HintReplica,
    EmptyQuery,
    /// Routing is off or no replica is usable: not classified at all.
    PrimaryOnly,
    /// An extended-protocol sequence without its Sync yet (primary).
    IncompleteRequest,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Reason::WriteFunction(name) => return write!(f, "calls write function {name}"),
            Reason::ReadOnlySelect => "read-only select",
            Reason::ReadOnlyShow => "read-only show",
            Reason::Values => "values",
            Reason::Table => "table",
            Reason::ExplainRead => "explain of a read",
            Reason::CopyToStdout => "copy to stdout",
            Reason::Locking => "locking clause (FOR UPDATE/SHARE)",
            Reason::DataModifyingCte => "data-modifying CTE",
            Reason::SelectInto => "SELECT INTO",
            Reason::WriteStatement => "write statement",
            Reason::ParseFailed => "parse failed",
            Reason::TooComplex => "too complex to parse",
            Reason::MultiStatementWrite => "multi-statement with a write",
            Reason::MultiStatementTransaction => "multi-statement with transaction control",
            Reason::BeginReadOnly => "begin read only",
            Reason::BeginReadWrite => "begin read write",
            Reason::TransactionEnd => "transaction end",
            Reason::Savepoint => "savepoint",
            Reason::TwoPhaseCommit => "two-phase commit",
            Reason::SessionCommand => "session command",
            Reason::SetTransactionReadOnly => "set transaction read only",
            Reason::ServerState => "prepared statement or cursor",
            Reason::ListenNotify => "LISTEN/NOTIFY/UNLISTEN",
            Reason::HintPrimary => "hint: primary",
            Reason::HintReplica => "hint: replica",
            Reason::EmptyQuery => "empty query",
            Reason::PrimaryOnly => "primary only (routing off or no replica)",
            Reason::IncompleteRequest => "extended sequence without Sync",
        };
        f.write_str(s)
    }
}

/// What routing needs to know about one query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub kind: Kind,
    /// Why `kind` was chosen (never a hint reason: see [`Classification::route_reason`]).
    pub reason: Reason,
    /// A `/* switchyard: primary|replica */` (or `--`) comment anywhere in the string; it
    /// overrides the target. `primary` wins if both appear.
    pub hint: Option<Target>,
}

impl Classification {
    /// The reason to log for the routing decision: the hint if there is one.
    pub fn route_reason(&self) -> Reason {
        match self.hint {
            Some(Target::Primary) => Reason::HintPrimary,
            Some(Target::Replica) => Reason::HintReplica,
            None => self.reason,
        }
    }

    /// `SET TRANSACTION ... READ ONLY` (alone in the string; [`Kind::Neutral`]): the current
    /// transaction has just been made read-only.
    pub fn is_set_transaction_read_only(&self) -> bool {
        self.reason == Reason::SetTransactionReadOnly
    }
}

/// A database's stats, shaped for the router's counters (route reasons, cache shards).
pub fn cluster_stats() -> Arc<ClusterStats> {
    let (targets, slots) = ROUTE_COUNTER_SHAPE;
    Arc::new(ClusterStats::new(targets, slots, cache::SHARDS))
}

/// Classifies query strings, with a fingerprint-keyed LRU cache. Shareable across threads.
pub struct Classifier {
    functions: classify::Functions,
    cache: cache::RouteCache,
}

impl Classifier {
    /// `write_functions` add to the built-in list of functions with side effects;
    /// `read_only_functions` remove names from it. Names are case-insensitive and match a
    /// call by its last name part (`public.nextval` matches `nextval`) or by the full
    /// qualified name as configured. `cache_capacity` 0 disables the cache. Its hits and
    /// misses are counted in `stats`.
    pub fn new(
        write_functions: &[String],
        read_only_functions: &[String],
        cache_capacity: usize,
        stats: Arc<ClusterStats>,
    ) -> Classifier {
        Classifier {
            functions: classify::Functions::new(write_functions, read_only_functions),
            cache: cache::RouteCache::new(cache_capacity, stats),
        }
    }

    /// Classifies `sql` through the cache: the key is the fingerprint hash, so
    /// `WHERE aid = 1` and `WHERE aid = 2` share an entry; parses only on a miss.
    pub fn classify(&self, sql: &str) -> Classification {
        let fp = fingerprint(sql);
        if let Some(c) = self.cache.get(fp.hash) {
            return c;
        }
        let c = classify::classify(sql, fp.hint, &self.functions);
        self.cache.put(fp.hash, c);
        c
    }

    /// Classifies `sql` without touching the cache.
    pub fn classify_uncached(&self, sql: &str) -> Classification {
        classify::classify(sql, fingerprint(sql).hint, &self.functions)
    }

    /// Cache (hits, misses) since creation.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.stats()
    }

    /// Number of entries in the cache.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }
}

impl Default for Classifier {
    /// Built-in write functions only, 10,000 cache entries.
    fn default() -> Classifier {
        Classifier::new(&[], &[], 10_000, cluster_stats())
    }
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("write_functions", &self.functions.write_count())
            .field("cache_capacity", &self.cache.capacity())
            .field("cache_stats", &self.cache_stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{Classifier, Kind, Reason, Target};

    pub(crate) fn classifier() -> Classifier {
        let w = ["my_side_effect".to_string(), "app.Audit".to_string()];
        let r = [
            "pg_try_advisory_lock".to_string(),
            "public.currval".to_string(),
        ];
        Classifier::new(&w, &r, 100, super::cluster_stats())
    }

    /// One case per line: `sql => Kind | reason`.
    pub(crate) fn check(table: &str) {
        let c = classifier();
        for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (sql, want) = line.rsplit_once(" => ").expect("case line");
            let got = c.classify_uncached(sql);
            let got = format!("{:?} | {}", got.kind, got.reason);
            assert_eq!(got, want.trim(), "{sql}");
        }
    }

    #[test]
    fn reads() {
        check(
            "
            SELECT a FROM t WHERE b = 1 => Read | read-only select
            select 1 union select 2 except (select 3) => Read | read-only select
            WITH x AS (SELECT 1) SELECT * FROM x, (SELECT 2) y => Read | read-only select
            SELECT * FROM t WHERE a IN (SELECT b FROM u) => Read | read-only select
            VALUES (1), (2) => Read | values
            TABLE t => Read | table
            SHOW search_path => Read | read-only show
            EXPLAIN SELECT 1 => Read | explain of a read
            EXPLAIN ANALYZE SELECT * FROM t => Read | explain of a read
            SELECT pg_sleep(1), now(), count(*) FROM t => Read | read-only select
            SELECT nextval, currval FROM t => Read | read-only select
            SELECT pg_try_advisory_lock(1), public.currval('s') => Read | read-only select
            SELECT substring(a from 1 for key) FROM t => Read | read-only select
            SELECT ((((((((((((((((((((1)))))))))))))))))))) => Read | read-only select
            COPY t TO STDOUT => Read | copy to stdout
            COPY (SELECT a FROM t) TO STDOUT WITH (FORMAT csv) => Read | copy to stdout
            ",
        );
    }

    #[test]
    fn writes() {
        check(
            "
            SELECT nextval('s') => Write | calls write function nextval
            SELECT public.NEXTVAL('s') => Write | calls write function nextval
            SELECT \"nextval\" ('s') => Write | calls write function nextval
            SELECT currval('s') => Write | calls write function currval
            SELECT my_side_effect(1) => Write | calls write function my_side_effect
            SELECT * FROM t WHERE a = (SELECT my_side_effect(a)) => Write | calls write function my_side_effect
            WITH x AS (SELECT MY_SIDE_EFFECT()) SELECT * FROM x => Write | calls write function my_side_effect
            SELECT * FROM my_side_effect(1) AS f => Write | calls write function my_side_effect
            SELECT * FROM t, LATERAL (SELECT setval('s', 1)) x => Write | calls write function setval
            SELECT app.audit(1) => Write | calls write function app.audit
            VALUES (pg_advisory_lock(1)) => Write | calls write function pg_advisory_lock
            select * from t for update => Write | locking clause (FOR UPDATE/SHARE)
            SELECT * FROM t FOR NO KEY UPDATE => Write | locking clause (FOR UPDATE/SHARE)
            SELECT * FROM t FOR KEY SHARE => Write | locking clause (FOR UPDATE/SHARE)
            SELECT * FROM (SELECT * FROM t FOR SHARE) x => Write | locking clause (FOR UPDATE/SHARE)
            TABLE t FOR UPDATE => Write | locking clause (FOR UPDATE/SHARE)
            WITH x AS (UPDATE t SET a=1 RETURNING *) SELECT * FROM x => Write | data-modifying CTE
            WITH x AS (DELETE FROM t RETURNING *) SELECT 1 => Write | data-modifying CTE
            WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT 1 => Write | data-modifying CTE
            WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x => Write | write statement
            SELECT 1 INTO newtable => Write | SELECT INTO
            EXPLAIN ANALYZE DELETE FROM t => Write | write statement
            EXPLAIN SELECT nextval('s') => Write | calls write function nextval
            COPY t FROM STDIN => Write | write statement
            COPY t TO '/tmp/x' => Write | write statement
            LISTEN c => Write | LISTEN/NOTIFY/UNLISTEN
            NOTIFY c, 'x' => Write | LISTEN/NOTIFY/UNLISTEN
            UNLISTEN * => Write | LISTEN/NOTIFY/UNLISTEN
            PREPARE TRANSACTION 'x' => Write | two-phase commit
            COMMIT PREPARED 'x' => Write | two-phase commit
            ROLLBACK PREPARED 'x' => Write | two-phase commit
            PREPARE p AS SELECT 1 => Write | prepared statement or cursor
            EXECUTE p => Write | prepared statement or cursor
            MOVE NEXT c => Write | prepared statement or cursor
            INSERT INTO t VALUES (1) => Write | write statement
            UPDATE t SET a = 1 => Write | write statement
            DELETE FROM t => Write | write statement
            MERGE INTO t USING u ON t.a = u.a WHEN MATCHED THEN DELETE => Write | write statement
            CREATE TABLE t (a int) => Write | write statement
            DROP TABLE t => Write | write statement
            ALTER TABLE t ADD b int => Write | write statement
            TRUNCATE t => Write | write statement
            DO $$ BEGIN PERFORM 1; END $$ => Write | write statement
            VACUUM ANALYZE t => Write | write statement
            CHECKPOINT => Write | write statement
            REFRESH MATERIALIZED VIEW m => Write | write statement
            REINDEX TABLE t => Write | write statement
            CLUSTER t => Write | write statement
            ALTER SYSTEM SET x = 1 => Write | write statement
            GRANT SELECT ON t TO u => Write | write statement
            SELEC 1 => Write | parse failed
            SELECT ( => Write | parse failed
            ",
        );
    }

    #[test]
    fn hints() {
        let c = classifier();
        let r = c.classify("/* switchyard: replica */ SELECT nextval('s')");
        assert_eq!((r.kind, r.hint), (Kind::Write, Some(Target::Replica)));
        assert_eq!(r.route_reason(), Reason::HintReplica);
        assert_eq!(r.route_reason().to_string(), "hint: replica");
        let r = c.classify("SELECT 1 -- SwitchYard:Primary");
        assert_eq!((r.kind, r.hint), (Kind::Read, Some(Target::Primary)));
        assert_eq!(r.route_reason().to_string(), "hint: primary");
        assert_eq!(r.reason, Reason::ReadOnlySelect);
        assert_eq!(c.classify("SELECT 1").hint, None);
        assert_eq!(
            c.classify_uncached("BEGIN /*switchyard:replica*/").hint,
            Some(Target::Replica)
        );
    }

    #[test]
    fn deep_nesting_hits_the_recursion_limit() {
        let c = classifier();
        let deep = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(c.classify(&deep).reason, Reason::ParseFailed);
        assert_eq!(c.classify(&"(".repeat(10_000)).kind, Kind::Write);
        let sub = format!(
            "SELECT * FROM {}t{}",
            "(SELECT * FROM ".repeat(10_000),
            ") x".repeat(10_000)
        );
        assert_eq!(c.classify(&sub).kind, Kind::Write);
    }

    #[test]
    fn long_operator_chains_are_not_parsed() {
        let c = classifier();
        let ok = format!("SELECT 1{}", "+1".repeat(1_000));
        assert_eq!(c.classify(&ok).kind, Kind::Read);
        let long = format!("SELECT 1{}", "+1".repeat(20_000));
        assert_eq!(c.classify(&long).reason, Reason::TooComplex);
        let ors = format!("SELECT 1 FROM t WHERE a = 1{}", " OR a = 1".repeat(20_000));
        assert_eq!(c.classify(&ors).reason, Reason::TooComplex);
    }

    #[test]
    fn garbage_never_panics() {
        let c = classifier();
        for s in "'abc|SELECT 'abc|SELECT \"x|SELECT $a$ x|SELECT /* x|E'\\|$1|BEGIN 'x".split('|')
        {
            let _ = c.classify(s);
        }
        let words = [
            "SELECT ", "FROM ", "(", ")", "'", "$$", "WITH ", "FOR ", ";", "nextval(", "1",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..500 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            let _ = c.classify_uncached(&String::from_utf8_lossy(&bytes));
            let s: String = bytes
                .iter()
                .map(|b| words[*b as usize % words.len()])
                .collect();
            let _ = c.classify_uncached(&s);
        }
    }
}
