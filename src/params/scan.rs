//! Spotting session-level SET/RESET/DISCARD in client SQL (read with the router's statement
//! text helpers), as [`ParamChange`]s to apply when their transaction ends well.

use super::{ParamChange, ParamValue};
use crate::router::statement_text::{statements, tokens, Token, Tokens};

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
fn dotted(mut name: String, t: &mut Tokens<'_>) -> String {
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
}
