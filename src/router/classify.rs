//! Uncached classification: splits a query string into statements with the router's lexer,
//! settles the obvious ones with a keyword pre-check (transaction control, SET/SHOW, DDL/DML
//! keywords, and statements sqlparser cannot parse), and parses the rest (SELECT, WITH,
//! VALUES, EXPLAIN, COPY, ...) with sqlparser's PostgreSQL dialect to learn what the
//! statement is. What a read may not contain anywhere (locking clauses, `(INSERT|UPDATE|
//! DELETE|MERGE` as in data-modifying CTEs, `INTO`, a call `name(` of a write function) is
//! found by a token scan, which is conservative (it can only add writes) and, unlike
//! sqlparser's derived AST visitor, needs no deep recursion: that visitor takes tens of KiB
//! of stack per expression level in debug builds. Also owns the write-function list.
//!
//! Stack safety: sqlparser's recursion limit (50) bounds nesting; long left-deep chains
//! (`1+1+...`, `a OR b OR ...`, which the parser builds in a loop and drops recursively) are
//! not parsed beyond [`MAX_CHAIN`] operator/keyword tokens: Write, "too complex to parse".
//!
//! Decisions: `COPY ... TO STDOUT` of a table or a read query is Read (COPY TO a file or a
//! program is Write); `SET TRANSACTION ... READ ONLY` is Neutral with
//! [`Reason::SetTransactionReadOnly`]; EXPLAIN takes the kind of what it explains (with or
//! without ANALYZE), so only EXPLAIN of a read is Read; a string with several statements is
//! Read only if all are Read (Neutral if all are Neutral), otherwise Write.

use super::lexer::{Lexer, Tok};
use super::statement_text::statements;
use super::{Classification, FunctionName, Kind, Reason, Target};
use sqlparser::ast::{CopySource, CopyTarget, Query, SetExpr, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::collections::HashSet;

/// Most operator/keyword tokens a statement may hold to be parsed (see the module doc).
pub(crate) const MAX_CHAIN: usize = 5_000;

/// Built-in functions with side effects (or that must see the primary's state).
#[rustfmt::skip]
const DEFAULT_WRITE_FUNCTIONS: &[&str] = &[
    "nextval", "setval", "currval", "lastval", "pg_advisory_lock", "pg_advisory_xact_lock",
    "pg_advisory_lock_shared", "pg_advisory_xact_lock_shared", "pg_try_advisory_lock",
    "pg_try_advisory_xact_lock", "pg_try_advisory_lock_shared",
    "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock", "pg_advisory_unlock_shared",
    "pg_advisory_unlock_all", "pg_notify", "set_config", "txid_current", "pg_current_xact_id",
    "txid_current_if_assigned", "pg_current_xact_id_if_assigned", "lo_create", "lo_creat",
    "lo_import", "lo_export", "lo_unlink", "lo_open", "lo_write", "lo_put", "lo_truncate",
    "lo_from_bytea", "dblink_exec", "dblink", "pg_switch_wal", "pg_create_restore_point",
    "pg_start_backup", "pg_backup_start", "pg_stop_backup", "pg_backup_stop",
    "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
    "pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
    "pg_drop_replication_slot", "pg_stat_reset",
];

/// The write-function list: built-ins plus configured names, minus declared read-only ones.
pub(crate) struct Functions {
    write: HashSet<String>,
    read_only: HashSet<String>,
}

fn normalize(names: &[String]) -> impl Iterator<Item = String> + '_ {
    names
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
}

impl Functions {
    pub fn new(write: &[String], read_only: &[String]) -> Functions {
        let read_only: HashSet<String> = normalize(read_only).collect();
        let write = DEFAULT_WRITE_FUNCTIONS
            .iter()
            .map(|s| s.to_string())
            .chain(normalize(write))
            .filter(|n| !read_only.contains(n))
            .collect();
        Functions { write, read_only }
    }

    pub fn write_count(&self) -> usize {
        self.write.len()
    }

    /// The matching write-list name if calling the dotted name `parts` is a write.
    fn write_function(&self, parts: &[&str]) -> Option<FunctionName> {
        let mut qualified = String::new();
        let mut last = 0;
        for part in parts {
            if !qualified.is_empty() {
                qualified.push('.');
            }
            last = qualified.len();
            let part = part.strip_prefix('"').unwrap_or(part);
            qualified.push_str(&part.strip_suffix('"').unwrap_or(part).to_ascii_lowercase());
        }
        if self.read_only.contains(&qualified) {
            return None;
        }
        let last = qualified.get(last..).unwrap_or("");
        let found = [qualified.as_str(), last]
            .into_iter()
            .find(|n| self.write.contains(*n));
        found.map(FunctionName::new)
    }
}

/// Classifies `sql` (with the `hint` its fingerprint found) without the cache.
pub(crate) fn classify(sql: &str, hint: Option<Target>, f: &Functions) -> Classification {
    let (kind, reason) = classify_string(sql, f);
    Classification { kind, reason, hint }
}

fn classify_string(sql: &str, f: &Functions) -> (Kind, Reason) {
    let stmts = statements(sql);
    match stmts.as_slice() {
        [] => return (Kind::Neutral, Reason::EmptyQuery),
        [one] => return statement(one, f),
        _ => {}
    }
    let (mut first_read, mut all_read, mut all_neutral) = (None, true, true);
    let (mut txn, mut write) = (false, false);
    for s in stmts {
        // Once a write is seen the answer is Write: only look for transaction control.
        let (kind, reason) = if write {
            precheck(s).unwrap_or((Kind::Write, Reason::WriteStatement))
        } else {
            statement(s, f)
        };
        match kind {
            Kind::Read => {
                first_read.get_or_insert(reason);
            }
            Kind::Neutral => {}
            Kind::Begin | Kind::BeginReadOnly | Kind::End => txn = true,
            Kind::Write => write = true,
        }
        all_read &= kind == Kind::Read;
        all_neutral &= kind == Kind::Neutral;
    }
    if all_read {
        (Kind::Read, first_read.unwrap_or(Reason::ReadOnlySelect))
    } else if all_neutral {
        (Kind::Neutral, Reason::SessionCommand)
    } else if txn {
        (Kind::Write, Reason::MultiStatementTransaction)
    } else {
        (Kind::Write, Reason::MultiStatementWrite)
    }
}

/// One statement: the keyword pre-check, else the token scan and sqlparser.
fn statement(text: &str, f: &Functions) -> (Kind, Reason) {
    if let Some(r) = precheck(text) {
        return r;
    }
    let scan = Scan::new(text, f);
    if scan.locking {
        return (Kind::Write, Reason::Locking);
    }
    if scan.chain > MAX_CHAIN {
        return (Kind::Write, Reason::TooComplex);
    }
    let Ok(stmts) = Parser::parse_sql(&PostgreSqlDialect {}, text) else {
        return (Kind::Write, Reason::ParseFailed);
    };
    let mut result = (Kind::Write, Reason::ParseFailed);
    for (i, s) in stmts.iter().enumerate() {
        let r = analyze(s);
        if r.0 != Kind::Read {
            return r;
        }
        if i == 0 {
            result = r;
        }
    }
    if result.0 != Kind::Read {
        return result;
    }
    let with = words(text).next().is_some_and(|w| w == "with");
    match scan {
        Scan { dml: true, .. } if with => (Kind::Write, Reason::DataModifyingCte),
        Scan { dml: true, .. } => (Kind::Write, Reason::WriteStatement),
        Scan { into: true, .. } => (Kind::Write, Reason::SelectInto),
        Scan {
            write_fn: Some(name),
            ..
        } => (Kind::Write, Reason::WriteFunction(name)),
        _ => result,
    }
}

/// What a read may not contain, found by one pass over the tokens.
#[derive(Default)]
struct Scan {
    /// Operator, keyword/identifier, `.`, `:` and `[` tokens: a bound on left-deep nesting.
    chain: usize,
    /// `FOR UPDATE`, `FOR SHARE`, `FOR NO KEY UPDATE`, `FOR KEY SHARE`.
    locking: bool,
    /// `(` followed by INSERT/UPDATE/DELETE/MERGE.
    dml: bool,
    /// The keyword INTO.
    into: bool,
    /// The first `name(` or `schema.name(` whose name is on the write list.
    write_fn: Option<FunctionName>,
}

impl Scan {
    fn new(text: &str, f: &Functions) -> Scan {
        let mut scan = Scan::default();
        // The last three words (lower-cased, "" for other tokens) and the dotted name before.
        let mut prev: [&str; 3] = [""; 3];
        let mut name: Vec<&str> = Vec::new();
        let mut after_dot = false;
        for t in Lexer::new(text) {
            let raw = text.get(t.start..t.end).unwrap_or("");
            let c = raw.as_bytes().first().copied().unwrap_or(0);
            let word = match t.kind {
                Tok::Word => keyword(raw),
                _ => "",
            };
            match t.kind {
                Tok::Word | Tok::QuotedIdent => {
                    if !after_dot {
                        name.clear();
                    }
                    name.push(raw);
                }
                Tok::Punct if c == b'.' && !name.is_empty() => {}
                Tok::Punct if c == b'(' && !after_dot && !name.is_empty() => {
                    if scan.write_fn.is_none() {
                        scan.write_fn = f.write_function(&name);
                    }
                    name.clear();
                }
                _ => name.clear(),
            }
            after_dot = t.kind == Tok::Punct && c == b'.';
            if matches!(t.kind, Tok::Word | Tok::Op) || matches!(c, b'.' | b':' | b'[') {
                scan.chain += 1;
            }
            scan.into |= word == "into";
            scan.dml |= matches!(word, "insert" | "update" | "delete" | "merge") && prev[0] == "(";
            scan.locking |= matches!(
                (word, prev),
                ("update" | "share", ["for", ..])
                    | ("update", ["key", "no", "for"])
                    | ("share", ["key", "for", _])
            );
            let now = if t.kind == Tok::Punct && c == b'(' {
                "("
            } else {
                word
            };
            prev = [now, prev[0], prev[1]];
        }
        scan
    }
}

/// `raw` lower-cased if it is one of the scan's keywords, else "".
fn keyword(raw: &str) -> &'static str {
    const KEYWORDS: [&str; 9] = [
        "into", "insert", "update", "delete", "merge", "for", "no", "key", "share",
    ];
    KEYWORDS
        .into_iter()
        .find(|k| k.eq_ignore_ascii_case(raw))
        .unwrap_or("")
}

/// The statement's words, lower-cased (non-words become "").
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    Lexer::new(text).map(move |t| match t.kind {
        Tok::Word => text.get(t.start..t.end).unwrap_or("").to_ascii_lowercase(),
        _ => String::new(),
    })
}

/// Two consecutive words `a b` anywhere in the statement.
fn has_pair(text: &str, a: &str, b: &[&str]) -> bool {
    let mut prev = String::new();
    for w in words(text) {
        if prev == a && b.contains(&w.as_str()) {
            return true;
        }
        prev = w;
    }
    false
}

/// `FOR UPDATE`, `FOR SHARE`, `FOR NO KEY UPDATE`, `FOR KEY SHARE`.
fn has_locking_clause(text: &str) -> bool {
    has_pair(text, "for", &["update", "share", "no", "key"])
}

/// Classifies statements by their leading keywords, or returns None to parse them.
fn precheck(text: &str) -> Option<(Kind, Reason)> {
    let mut w = words(text);
    let first = w.next()?;
    let second = w.next().unwrap_or_default();
    let read_only = || has_pair(text, "read", &["only"]) && !has_pair(text, "read", &["write"]);
    let begin = || match read_only() {
        true => (Kind::BeginReadOnly, Reason::BeginReadOnly),
        false => (Kind::Begin, Reason::BeginReadWrite),
    };
    Some(match first.as_str() {
        "begin" => begin(),
        "start" if second == "transaction" => begin(),
        "commit" | "rollback" if second == "prepared" => (Kind::Write, Reason::TwoPhaseCommit),
        "prepare" if second == "transaction" => (Kind::Write, Reason::TwoPhaseCommit),
        "rollback" if second == "to" || w.next().is_some_and(|t| t == "to") => {
            (Kind::Neutral, Reason::Savepoint)
        }
        "commit" | "rollback" | "end" | "abort" => (Kind::End, Reason::TransactionEnd),
        "savepoint" | "release" => (Kind::Neutral, Reason::Savepoint),
        "set" if second == "transaction" && read_only() => {
            (Kind::Neutral, Reason::SetTransactionReadOnly)
        }
        "set" | "reset" | "discard" | "deallocate" => (Kind::Neutral, Reason::SessionCommand),
        "show" => (Kind::Read, Reason::ReadOnlyShow),
        "table" if has_locking_clause(text) => (Kind::Write, Reason::Locking),
        "table" => (Kind::Read, Reason::Table),
        "listen" | "notify" | "unlisten" => (Kind::Write, Reason::ListenNotify),
        "prepare" | "execute" | "declare" | "fetch" | "move" | "close" => {
            (Kind::Write, Reason::ServerState)
        }
        "insert" | "update" | "delete" | "merge" | "create" | "drop" | "alter" | "truncate"
        | "grant" | "revoke" | "comment" | "vacuum" | "analyze" | "analyse" | "cluster"
        | "reindex" | "refresh" | "checkpoint" | "do" | "call" | "lock" | "security" | "import"
        | "reassign" | "load" => (Kind::Write, Reason::WriteStatement),
        _ => return None,
    })
}

/// Classifies one parsed statement by what it is (the token scan checks what it contains).
fn analyze(stmt: &Statement) -> (Kind, Reason) {
    match stmt {
        Statement::Query(q) if is_dml(&q.body) => (Kind::Write, Reason::WriteStatement),
        Statement::Query(q) => (Kind::Read, read_reason(q)),
        Statement::Explain { statement, .. } => match analyze(statement) {
            (Kind::Read, _) => (Kind::Read, Reason::ExplainRead),
            (Kind::Write, r) => (Kind::Write, r),
            _ => (Kind::Write, Reason::WriteStatement),
        },
        Statement::Copy {
            source,
            to: true,
            target: CopyTarget::Stdout,
            ..
        } => match source {
            CopySource::Query(q) if is_dml(&q.body) => (Kind::Write, Reason::WriteStatement),
            _ => (Kind::Read, Reason::CopyToStdout),
        },
        _ => (Kind::Write, Reason::WriteStatement),
    }
}

fn read_reason(q: &Query) -> Reason {
    match q.body.as_ref() {
        SetExpr::Values(_) => Reason::Values,
        SetExpr::Table(_) => Reason::Table,
        _ => Reason::ReadOnlySelect,
    }
}

fn is_dml(body: &SetExpr) -> bool {
    matches!(
        body,
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_)
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::check;
    use super::super::Reason;

    #[test]
    fn transactions_and_session_commands() {
        check(
            "
            BEGIN READ ONLY => BeginReadOnly | begin read only
            start transaction read only => BeginReadOnly | begin read only
            BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY => BeginReadOnly | begin read only
            BEGIN => Begin | begin read write
            BEGIN READ WRITE => Begin | begin read write
            BEGIN ISOLATION LEVEL READ COMMITTED => Begin | begin read write
            START TRANSACTION => Begin | begin read write
            COMMIT => End | transaction end
            ROLLBACK => End | transaction end
            END => End | transaction end
            abort => End | transaction end
            ROLLBACK AND CHAIN => End | transaction end
            ROLLBACK TO SAVEPOINT a => Neutral | savepoint
            ROLLBACK WORK TO a => Neutral | savepoint
            SAVEPOINT a => Neutral | savepoint
            RELEASE SAVEPOINT a => Neutral | savepoint
            SET search_path TO a, b => Neutral | session command
            SET LOCAL statement_timeout = 5 => Neutral | session command
            SET TRANSACTION ISOLATION LEVEL SERIALIZABLE => Neutral | session command
            SET TRANSACTION READ ONLY => Neutral | set transaction read only
            SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY => Neutral | session command
            RESET ALL => Neutral | session command
            DISCARD ALL => Neutral | session command
            DEALLOCATE ALL => Neutral | session command
            ; -- nothing /* at all */ ; => Neutral | empty query
            ",
        );
        let c = super::super::tests::classifier();
        assert_eq!(c.classify("").reason, Reason::EmptyQuery);
        assert!(c
            .classify("set transaction read only")
            .is_set_transaction_read_only());
        assert!(!c
            .classify("set transaction read write")
            .is_set_transaction_read_only());
    }

    #[test]
    fn multi_statement() {
        check(
            "
            SELECT 1; SELECT 2 => Read | read-only select
            VALUES (1); SELECT 2; => Read | values
            SELECT 1; INSERT INTO t VALUES (1) => Write | multi-statement with a write
            SELECT 1; SELECT nextval('s') => Write | multi-statement with a write
            BEGIN; SELECT 1; COMMIT => Write | multi-statement with transaction control
            SET a = 1; RESET b => Neutral | session command
            SELECT ';'; SELECT $$;$$ /* ; */ => Read | read-only select
            ",
        );
    }
}
