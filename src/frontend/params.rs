//! Session parameters under transaction pooling: what each client expects (its startup
//! parameters plus its own SETs), what each server connection has had applied, the SQL that
//! brings a server connection in line with a client, and spotting SET/RESET/DISCARD in SQL.

pub use super::param_map::{ParamMap, ParamValue, SharedMaps};
use crate::router::statement_text::{statements, tokens, Token};

/// A client's wanted parameters with a version: a server connection whose applied version
/// equals it needs no comparison. Versions are random 64-bit values (at login, a keyed hash
/// of the settings), so equal versions mean the same settings (changes made in lockstep on
/// both sides get one new version).
#[derive(Debug, Clone)]
pub struct Wanted {
    pub map: ParamMap,
    pub version: u64,
}

impl Wanted {
    /// A client's state at login. Its version is a keyed hash of the settings, so clients
    /// that log in with the same settings share it, and a connection one of them left in
    /// line needs no comparison for the next (as likely to collide as random versions).
    pub fn new(map: ParamMap, hasher: &impl std::hash::BuildHasher) -> Wanted {
        Wanted {
            version: hasher.hash_one(&map) | 1,
            map,
        }
    }
}

/// A new parameter-state version (never 0, which marks a connection with nothing applied).
pub fn fresh_version() -> u64 {
    rand::random::<u64>() | 1
}

/// A session-level change found in client SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamChange {
    Set(String, ParamValue),
    Reset(String),
    /// `RESET ALL` or `DISCARD ALL`.
    ResetAll,
}

/// Startup-packet keys that are not run-time parameters.
const NOT_PARAMS: &[&str] = &["user", "database", "replication", "options"];

/// Reported parameters a client cannot set; never tracked from ParameterStatus.
const READ_ONLY_REPORTED: &[&str] = &[
    "server_version",
    "server_encoding",
    "integer_datetimes",
    "in_hot_standby",
    "is_superuser",
    "session_authorization",
];

/// Whether a ParameterStatus of this name reflects a setting the client can change.
pub fn is_tracked_report(name: &str) -> bool {
    !READ_ONLY_REPORTED
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// The run-time parameters in a client's startup packet, including `-c name=value` pairs in
/// `options`.
pub fn startup_params(params: &[(String, String)]) -> ParamMap {
    let mut map = ParamMap::new();
    for (k, v) in params {
        if k == "options" {
            for (name, value) in parse_options(v) {
                map.insert(name, ParamValue::Literal(value));
            }
        } else if !NOT_PARAMS.contains(&k.as_str()) && !k.starts_with("_pq_.") {
            map.insert(k.to_ascii_lowercase(), ParamValue::Literal(v.clone()));
        }
    }
    map
}

/// `-c a=b --c=d` in the startup `options` value (backslash escapes a space).
fn parse_options(s: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let pair = if w == "-c" {
            it.next()
        } else if let Some(p) = w.strip_prefix("-c") {
            Some(p.to_string())
        } else {
            w.strip_prefix("--").map(str::to_string)
        };
        if let Some((k, v)) = pair.as_deref().and_then(|p| p.split_once('=')) {
            out.push((k.replace('-', "_").to_ascii_lowercase(), v.to_string()));
        }
    }
    out
}

/// SQL that makes a server connection whose applied settings are `applied` match `wanted`:
/// SET for every differing value, RESET for what a previous client left behind.
pub fn sync_sql(wanted: &ParamMap, applied: &ParamMap) -> Option<String> {
    let mut sql = String::new();
    for (name, value) in wanted.iter() {
        if applied.get(name) != Some(value) {
            push_set(&mut sql, name, value);
        }
    }
    for name in applied.keys().filter(|k| !wanted.contains_key(k)) {
        push_reset(&mut sql, name);
    }
    (!sql.is_empty()).then_some(sql)
}

fn push_set(sql: &mut String, name: &str, value: &ParamValue) {
    let value_sql = match value {
        ParamValue::Literal(v) => quote_literal(v),
        ParamValue::Raw(v) => v.clone(),
    };
    match name {
        "role" => sql.push_str("SET ROLE "),
        "session_authorization" => sql.push_str("SET SESSION AUTHORIZATION "),
        _ => {
            sql.push_str("SET ");
            sql.push_str(&quote_name(name));
            sql.push_str(" TO ");
        }
    }
    sql.push_str(&value_sql);
    sql.push_str(";\n");
}

fn push_reset(sql: &mut String, name: &str) {
    match name {
        "role" => sql.push_str("RESET ROLE;\n"),
        "session_authorization" => sql.push_str("RESET SESSION AUTHORIZATION;\n"),
        _ => {
            sql.push_str("RESET ");
            sql.push_str(&quote_name(name));
            sql.push_str(";\n");
        }
    }
}

fn quote_literal(v: &str) -> String {
    let escaped = v.replace('\'', "''");
    if v.contains('\\') {
        format!("E'{}'", escaped.replace('\\', "\\\\"))
    } else {
        format!("'{escaped}'")
    }
}

fn quote_name(name: &str) -> String {
    let plain = name.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    });
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Cheap test: can this query text hold a session-level SET/RESET/DISCARD at all?
pub fn may_change_params(sql: &str) -> bool {
    crate::router::statement_text::statement_starts_any(
        sql.as_bytes(),
        &[b"set", b"reset", b"discard"],
    )
}

/// The session-level parameter changes made by the statements in `sql`, in order.
pub fn scan_changes(sql: &str, out: &mut Vec<ParamChange>) {
    if !may_change_params(sql) {
        return;
    }
    for stmt in statements(sql) {
        if let Some(change) = statement_change(stmt) {
            out.push(change);
        }
    }
}

fn word_is(t: Option<Token<'_>>, w: &str) -> bool {
    matches!(t, Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
}

fn name_of(t: Token<'_>) -> Option<String> {
    match t {
        Token::Word(w) => Some(w.to_ascii_lowercase()),
        Token::QuotedIdent(q) => Some(q[1..q.len().saturating_sub(1).max(1)].replace("\"\"", "\"")),
        _ => None,
    }
}

fn statement_change(stmt: &str) -> Option<ParamChange> {
    let mut t = tokens(stmt);
    let first = t.next()?;
    if word_is(Some(first), "discard") {
        return word_is(t.next(), "all").then_some(ParamChange::ResetAll);
    }
    if word_is(Some(first), "reset") {
        let tok = t.next()?;
        if word_is(Some(tok), "all") {
            return Some(ParamChange::ResetAll);
        }
        if word_is(Some(tok), "time") {
            return Some(ParamChange::Reset("timezone".into()));
        }
        if word_is(Some(tok), "session") {
            return Some(ParamChange::Reset("session_authorization".into()));
        }
        return name_of(tok).map(|n| ParamChange::Reset(dotted(n, &mut t)));
    }
    if !word_is(Some(first), "set") {
        return None;
    }
    let mut tok = t.next()?;
    if word_is(Some(tok), "local") {
        return None;
    }
    if word_is(Some(tok), "session") {
        tok = t.next()?;
        if word_is(Some(tok), "authorization") {
            return Some(value_change("session_authorization", t.rest()));
        }
        if word_is(Some(tok), "characteristics") {
            return None;
        }
    }
    if word_is(Some(tok), "transaction") || word_is(Some(tok), "constraints") {
        return None;
    }
    if word_is(Some(tok), "time") {
        return word_is(t.next(), "zone").then(|| {
            let rest = t.rest();
            if rest.eq_ignore_ascii_case("local") || rest.eq_ignore_ascii_case("default") {
                ParamChange::Reset("timezone".into())
            } else {
                value_change("timezone", rest)
            }
        });
    }
    if word_is(Some(tok), "role") {
        return Some(value_change("role", t.rest()));
    }
    if word_is(Some(tok), "names") {
        return Some(value_change("client_encoding", t.rest()));
    }
    if word_is(Some(tok), "schema") {
        return Some(value_change("search_path", t.rest()));
    }
    let name = dotted(name_of(tok)?, &mut t);
    match t.next()? {
        Token::Punct(b'=') => {}
        Token::Word(w) if w.eq_ignore_ascii_case("to") => {}
        _ => return None,
    }
    Some(value_change(&name, t.rest()))
}

/// Completes a `prefix.name` custom parameter name.
fn dotted(mut name: String, t: &mut crate::router::statement_text::Tokens<'_>) -> String {
    let mut probe = t.clone();
    while let Some(Token::Punct(b'.')) = probe.next() {
        match probe.next().and_then(name_of) {
            Some(part) => {
                name.push('.');
                name.push_str(&part);
                *t = probe.clone();
                probe = t.clone();
            }
            None => break,
        }
    }
    name
}

fn value_change(name: &str, value: &str) -> ParamChange {
    if value.eq_ignore_ascii_case("default") || value.is_empty() {
        ParamChange::Reset(name.to_string())
    } else {
        ParamChange::Set(name.to_string(), ParamValue::Raw(value.to_string()))
    }
}

/// Applies a change to a parameter map; `startup` is what RESET ALL goes back to.
pub fn apply_change(map: &mut ParamMap, change: &ParamChange, startup: &ParamMap) {
    match change {
        ParamChange::Set(n, v) => {
            map.insert(n.clone(), v.clone());
        }
        ParamChange::Reset(n) => match startup.get(n) {
            Some(v) => {
                map.insert(n.clone(), v.clone());
            }
            None => {
                map.remove(n);
            }
        },
        ParamChange::ResetAll => *map = startup.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(sql: &str) -> Vec<ParamChange> {
        let mut v = Vec::new();
        scan_changes(sql, &mut v);
        v
    }

    fn raw(n: &str, v: &str) -> ParamChange {
        ParamChange::Set(n.into(), ParamValue::Raw(v.into()))
    }

    #[test]
    fn finds_session_sets() {
        assert_eq!(
            changes("SET search_path TO a, \"B\""),
            vec![raw("search_path", "a, \"B\"")]
        );
        assert_eq!(
            changes("set SESSION statement_timeout = 5000;"),
            vec![raw("statement_timeout", "5000")]
        );
        assert_eq!(
            changes("SET TIME ZONE 'UTC'"),
            vec![raw("timezone", "'UTC'")]
        );
        assert_eq!(
            changes("SET \"DateStyle\" TO iso"),
            vec![raw("DateStyle", "iso")]
        );
        assert_eq!(
            changes("SET myapp.tenant = '7'"),
            vec![raw("myapp.tenant", "'7'")]
        );
        assert_eq!(changes("SET ROLE admin"), vec![raw("role", "admin")]);
        assert_eq!(
            changes("select 1; RESET search_path; DISCARD ALL; reset all"),
            vec![
                ParamChange::Reset("search_path".into()),
                ParamChange::ResetAll,
                ParamChange::ResetAll
            ]
        );
        assert_eq!(
            changes("SET x TO DEFAULT"),
            vec![ParamChange::Reset("x".into())]
        );
    }

    #[test]
    fn ignores_local_and_transaction_scoped() {
        for sql in [
            "SET LOCAL search_path TO x",
            "SET TRANSACTION READ ONLY",
            "SET CONSTRAINTS ALL DEFERRED",
            "SELECT 'SET x = 1'",
            "select offset_set from t",
            "UPDATE t SET a = 1",
            "DISCARD PLANS",
        ] {
            assert_eq!(changes(sql), vec![], "{sql}");
        }
    }

    #[test]
    fn sync_sql_sets_and_resets() {
        let mut wanted = ParamMap::new();
        wanted.insert(
            "application_name".into(),
            ParamValue::Literal("it's".into()),
        );
        wanted.insert("search_path".into(), ParamValue::Raw("a, b".into()));
        let mut applied = ParamMap::new();
        applied.insert("search_path".into(), ParamValue::Raw("a, b".into()));
        applied.insert("timezone".into(), ParamValue::Literal("UTC".into()));
        assert_eq!(
            sync_sql(&wanted, &applied).unwrap(),
            "SET application_name TO 'it''s';\nRESET timezone;\n"
        );
        assert_eq!(sync_sql(&applied, &applied), None);
        let mut w = ParamMap::new();
        w.insert("DateStyle".into(), ParamValue::Literal("a\\b".into()));
        assert_eq!(
            sync_sql(&w, &ParamMap::new()).unwrap(),
            "SET \"DateStyle\" TO E'a\\\\b';\n"
        );
    }

    #[test]
    fn startup_options() {
        let p = startup_params(&[
            ("user".into(), "u".into()),
            (
                "options".into(),
                "-c search_path=x --statement-timeout=5 -cwork_mem=1MB".into(),
            ),
            ("application_name".into(), "psql".into()),
            ("_pq_.foo".into(), "1".into()),
        ]);
        assert_eq!(p.len(), 4);
        assert_eq!(p.get("search_path"), Some(&ParamValue::Literal("x".into())));
        assert_eq!(
            p.get("statement_timeout"),
            Some(&ParamValue::Literal("5".into()))
        );
        assert_eq!(p.get("work_mem"), Some(&ParamValue::Literal("1MB".into())));
    }

    #[test]
    fn reset_all_goes_back_to_startup() {
        let mut startup = ParamMap::new();
        startup.insert("application_name".into(), ParamValue::Literal("a".into()));
        let mut m = startup.clone();
        apply_change(&mut m, &raw("application_name", "'b'"), &startup);
        apply_change(&mut m, &raw("x", "1"), &startup);
        apply_change(
            &mut m,
            &ParamChange::Reset("application_name".into()),
            &startup,
        );
        assert_eq!(
            m.get("application_name"),
            Some(&ParamValue::Literal("a".into()))
        );
        apply_change(&mut m, &ParamChange::ResetAll, &startup);
        assert_eq!(m, startup);
    }
}
