//! Rewriting one client frame for the attached server connection: named statements are
//! mapped to their server names, a missing statement's Parse is prepended, a Parse the
//! connection already holds and a Close of a named statement are answered locally, and every
//! reply the server will send is recorded in order.

use super::expect::{Expect, ExpectQueue, CLOSE_COMPLETE, PARSE_COMPLETE};
use super::registry::{ClientStatements, Registry, StatementInfo};
use super::server_set::ServerStatements;
use crate::protocol::client_msgs::query_bytes;
use crate::protocol::frame::{read_cstr, HEADER_LEN};
use crate::protocol::messages::{write_message, PgError};
use crate::protocol::SqlState;
use crate::router::statement_text::{statement_heads, statements, tokens, Heads, Token};
use bytes::{BufMut, BytesMut};
use std::sync::Arc;

/// Everything a rewrite touches.
pub struct Rewriter<'a> {
    pub registry: &'a Registry,
    pub client: &'a mut ClientStatements,
    pub held: &'a mut ServerStatements,
    pub queue: &'a mut ExpectQueue,
    /// Map names (transaction mode); otherwise frames pass through unchanged.
    pub map_names: bool,
    /// The statement heads of the next Query frame, when the caller has read them already
    /// (taken by that frame; None: read them here).
    pub heads: Option<Heads>,
}

fn malformed(what: &str) -> PgError {
    PgError::fatal(
        SqlState::PROTOCOL_VIOLATION,
        format!("invalid {what} message"),
    )
}

impl Rewriter<'_> {
    /// Writes what the server must get for this frame into `out`.
    pub fn frame(&mut self, tag: u8, frame: &[u8], out: &mut BytesMut) -> Result<(), PgError> {
        let body = &frame[HEADER_LEN..];
        match tag {
            b'P' => self.parse(frame, body, out),
            b'B' => self.bind(frame, body, out),
            b'D' => self.describe(frame, body, out),
            b'C' => self.close(frame, body, out),
            _ => {
                self.pass(tag, frame);
                out.extend_from_slice(frame);
                Ok(())
            }
        }
    }

    /// Whether frames with this tag always go to the server unchanged (see [`Self::pass`]).
    pub fn passes_through(tag: u8) -> bool {
        !matches!(tag, b'P' | b'B' | b'D' | b'C')
    }

    /// Records the replies to a frame that goes to the server unchanged, without copying
    /// it (the caller sends it from where it is).
    pub fn pass(&mut self, tag: u8, frame: &[u8]) {
        match tag {
            b'E' => self.queue.push(Expect::Execute),
            b'S' | b'F' => self.queue.push(Expect::Ready { simple: false }),
            b'Q' => {
                self.queue.push(Expect::Ready { simple: true });
                // Heads read by the caller that rule out DISCARD/DEALLOCATE: nothing to look at.
                let may_clear = self.heads.take().is_none_or(|h| h.any(Heads::CLEARS));
                if self.map_names && may_clear {
                    if let Some(sql) = query_bytes(frame) {
                        if statement_heads(sql).any(Heads::CLEARS) && clears_statements(sql) {
                            // The server forgets every statement; so does the client.
                            self.held.clear();
                            self.client.clear();
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Makes sure the connection holds `info`, prepending its Parse if not.
    fn ensure(&mut self, info: &Arc<StatementInfo>, out: &mut BytesMut) {
        if self.held.contains(&info.server_name) {
            return;
        }
        if let Some(evicted) = self.held.insert(&info.server_name) {
            write_close(out, &evicted);
            self.queue.push(Expect::Close { swallow: true });
        }
        info.write_parse(out);
        self.queue.push(Expect::Parse {
            swallow: true,
            track: Some(info.clone()),
        });
    }

    fn parse(&mut self, frame: &[u8], body: &[u8], out: &mut BytesMut) -> Result<(), PgError> {
        let (name, tail) = read_cstr(body).ok_or_else(|| malformed("Parse"))?;
        if !self.map_names || name.is_empty() || !valid_parse_tail(tail) {
            self.queue.push(Expect::Parse {
                swallow: false,
                track: None,
            });
            out.extend_from_slice(frame);
            return Ok(());
        }
        let name = std::str::from_utf8(name).map_err(|_| malformed("Parse"))?;
        let info = self.registry.get_or_insert(tail);
        if !self.client.insert(name, info.clone()) {
            return Err(PgError::error(
                SqlState::CONFIGURATION_LIMIT,
                "too many prepared statements on this connection",
            ));
        }
        if self.held.contains(&info.server_name) {
            self.queue.push(Expect::Synthetic(PARSE_COMPLETE));
            return Ok(());
        }
        if let Some(evicted) = self.held.insert(&info.server_name) {
            write_close(out, &evicted);
            self.queue.push(Expect::Close { swallow: true });
        }
        info.write_parse(out);
        self.queue.push(Expect::Parse {
            swallow: false,
            track: Some(info),
        });
        Ok(())
    }

    fn bind(&mut self, frame: &[u8], body: &[u8], out: &mut BytesMut) -> Result<(), PgError> {
        let (portal, rest) = read_cstr(body).ok_or_else(|| malformed("Bind"))?;
        let (stmt, rest) = read_cstr(rest).ok_or_else(|| malformed("Bind"))?;
        let info = self.lookup(stmt);
        let Some(info) = info else {
            self.queue.push(Expect::Bind { stmt: None });
            out.extend_from_slice(frame);
            return Ok(());
        };
        self.ensure(&info, out);
        write_message(out, b'B', |b| {
            b.put_slice(portal);
            b.put_u8(0);
            b.put_slice(info.server_name.as_bytes());
            b.put_u8(0);
            b.put_slice(rest);
        });
        self.queue.push(Expect::Bind { stmt: Some(info) });
        Ok(())
    }

    fn describe(&mut self, frame: &[u8], body: &[u8], out: &mut BytesMut) -> Result<(), PgError> {
        let (&kind, rest) = body.split_first().ok_or_else(|| malformed("Describe"))?;
        let (name, _) = read_cstr(rest).ok_or_else(|| malformed("Describe"))?;
        if kind != b'S' {
            self.queue.push(Expect::DescribePortal);
            out.extend_from_slice(frame);
            return Ok(());
        }
        let Some(info) = self.lookup(name) else {
            self.queue.push(Expect::DescribeStatement { stmt: None });
            out.extend_from_slice(frame);
            return Ok(());
        };
        self.ensure(&info, out);
        write_message(out, b'D', |b| {
            b.put_u8(b'S');
            b.put_slice(info.server_name.as_bytes());
            b.put_u8(0);
        });
        self.queue
            .push(Expect::DescribeStatement { stmt: Some(info) });
        Ok(())
    }

    fn close(&mut self, frame: &[u8], body: &[u8], out: &mut BytesMut) -> Result<(), PgError> {
        let (&kind, rest) = body.split_first().ok_or_else(|| malformed("Close"))?;
        let (name, _) = read_cstr(rest).ok_or_else(|| malformed("Close"))?;
        if kind == b'S' && self.map_names && !name.is_empty() {
            // Other clients may share the server copy: only the client's name goes.
            if let Ok(n) = std::str::from_utf8(name) {
                self.client.remove(n);
            }
            self.queue.push(Expect::Synthetic(CLOSE_COMPLETE));
            return Ok(());
        }
        self.queue.push(Expect::Close { swallow: false });
        out.extend_from_slice(frame);
        Ok(())
    }

    fn lookup(&self, name: &[u8]) -> Option<Arc<StatementInfo>> {
        if !self.map_names || name.is_empty() {
            return None;
        }
        std::str::from_utf8(name)
            .ok()
            .and_then(|n| self.client.get(n))
            .cloned()
    }
}

/// A request made only of named Parse messages and a final Sync (libpq's `PQprepare`,
/// pgbench -M prepared) needs no server: the statements are registered for the client and
/// ParseComplete/ReadyForQuery are answered here. A statement that does not parse reports
/// its error at first use. Returns the bytes consumed, or None if the request is anything
/// else.
pub fn answer_prepare_only(
    buf: &[u8],
    max: usize,
    registry: &Registry,
    client: &mut ClientStatements,
    out: &mut BytesMut,
) -> Option<usize> {
    let mut parses = Vec::new();
    let mut end = None;
    for f in crate::protocol::frame::Frames::new(buf, max) {
        let (h, frame) = f.ok()?;
        match h.tag {
            b'P' => {
                let (name, tail) = read_cstr(&frame[HEADER_LEN..])?;
                if name.is_empty() || !valid_parse_tail(tail) {
                    return None;
                }
                parses.push((std::str::from_utf8(name).ok()?, tail));
            }
            b'S' => {
                end = Some(h);
                break;
            }
            _ => return None,
        }
    }
    let sync = end?;
    if parses.is_empty() || client.len() + parses.len() > super::registry::MAX_PER_CLIENT {
        return None;
    }
    let mut consumed = 0;
    for (name, tail) in parses {
        client.insert(name, registry.get_or_insert(tail));
        out.extend_from_slice(PARSE_COMPLETE);
        consumed += 1 + 4 + name.len() + 1 + tail.len();
    }
    crate::protocol::messages::ready_for_query(out, crate::protocol::messages::TxStatus::Idle);
    Some(consumed + sync.total_len)
}

fn write_close(out: &mut BytesMut, server_name: &str) {
    write_message(out, b'C', |b| {
        b.put_u8(b'S');
        b.put_slice(server_name.as_bytes());
        b.put_u8(0);
    });
}

/// Query text, NUL, then a parameter type count and exactly that many OIDs.
fn valid_parse_tail(tail: &[u8]) -> bool {
    let Some((_, rest)) = read_cstr(tail) else {
        return false;
    };
    if rest.len() < 2 {
        return false;
    }
    let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
    rest.len() == 2 + 4 * n
}

fn first_words(stmt: &str) -> (Option<String>, Option<String>) {
    let mut t = tokens(stmt);
    let word = |t: Option<Token<'_>>| match t {
        Some(Token::Word(w)) => Some(w.to_ascii_lowercase()),
        _ => None,
    };
    (word(t.next()), word(t.next()))
}

/// `DISCARD ALL` or `DEALLOCATE [PREPARE] ALL` among the statements of a query.
fn clears_statements(sql: &[u8]) -> bool {
    let Ok(sql) = std::str::from_utf8(sql) else {
        return false;
    };
    statements(sql).into_iter().any(|s| {
        let (a, b) = first_words(s);
        match (a.as_deref(), b.as_deref()) {
            (Some("discard"), Some("all")) => true,
            (Some("deallocate"), Some("all")) => true,
            (Some("deallocate"), Some("prepare")) => {
                let mut t = tokens(s);
                t.next();
                t.next();
                matches!(t.next(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("all"))
            }
            _ => false,
        }
    })
}

/// SQL-level prepared statement commands, which transaction pooling cannot honour as-is.
#[derive(Debug, PartialEq, Eq)]
pub enum SqlPrepared {
    /// `PREPARE name ...` or `EXECUTE name ...`.
    Unsupported(&'static str),
    /// `DEALLOCATE [PREPARE] name` (not ALL).
    Deallocate(String),
}

/// Recognises a single-statement `PREPARE`, `EXECUTE` or `DEALLOCATE name`.
pub fn sql_prepared(sql: &str) -> Option<SqlPrepared> {
    let b = sql.as_bytes();
    let head = crate::router::statement_text::skip_space(sql).as_bytes();
    let starts = |w: &[u8]| head.len() >= w.len() && head[..w.len()].eq_ignore_ascii_case(w);
    if !(starts(b"prepare") || starts(b"execute") || starts(b"deallocate")) || b.is_empty() {
        return None;
    }
    let stmts: Vec<&str> = statements(sql)
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let [stmt] = stmts.as_slice() else {
        return None;
    };
    let mut t = tokens(stmt);
    let first = match t.next() {
        Some(Token::Word(w)) => w.to_ascii_lowercase(),
        _ => return None,
    };
    match first.as_str() {
        "prepare" => {
            // PREPARE TRANSACTION is two-phase commit, not a statement.
            match t.next() {
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("transaction") => None,
                _ => Some(SqlPrepared::Unsupported("PREPARE")),
            }
        }
        "execute" => Some(SqlPrepared::Unsupported("EXECUTE")),
        "deallocate" => {
            let mut name = t.next();
            if matches!(name, Some(Token::Word(w)) if w.eq_ignore_ascii_case("prepare")) {
                name = t.next();
            }
            match name {
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("all") => None,
                Some(Token::Word(w)) => Some(SqlPrepared::Deallocate(w.to_ascii_lowercase())),
                Some(Token::QuotedIdent(q)) => Some(SqlPrepared::Deallocate(
                    q.trim_matches('"').replace("\"\"", "\""),
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_sql_level_commands() {
        assert_eq!(
            sql_prepared("PREPARE p AS SELECT 1"),
            Some(SqlPrepared::Unsupported("PREPARE"))
        );
        assert_eq!(
            sql_prepared(" execute p(1)"),
            Some(SqlPrepared::Unsupported("EXECUTE"))
        );
        assert_eq!(
            sql_prepared("DEALLOCATE p"),
            Some(SqlPrepared::Deallocate("p".into()))
        );
        assert_eq!(
            sql_prepared("deallocate prepare \"My\""),
            Some(SqlPrepared::Deallocate("My".into()))
        );
        assert_eq!(sql_prepared("DEALLOCATE ALL"), None);
        assert_eq!(sql_prepared("PREPARE TRANSACTION 'x'"), None);
        assert_eq!(sql_prepared("SELECT 1"), None);
        assert!(clears_statements(b"DISCARD ALL"));
        assert!(clears_statements(b"select 1; deallocate prepare all"));
        assert!(!clears_statements(b"DEALLOCATE p"));
    }

    fn parse_frame(name: &str, sql: &str) -> Vec<u8> {
        let mut b = BytesMut::new();
        postgres_protocol::message::frontend::parse(name, sql, std::iter::empty(), &mut b).unwrap();
        b.to_vec()
    }

    #[test]
    fn parse_once_per_connection_and_prepend_when_missing() {
        let reg = Registry::new(100);
        let mut client = ClientStatements::default();
        let mut held = ServerStatements::new(100);
        let mut queue = ExpectQueue::default();
        let mut out = BytesMut::new();
        let mut rw = Rewriter {
            registry: &reg,
            client: &mut client,
            held: &mut held,
            queue: &mut queue,
            map_names: true,
            heads: None,
        };
        let p = parse_frame("s1", "select 1");
        rw.frame(b'P', &p, &mut out).unwrap();
        assert_eq!(out[0], b'P');
        assert!(out.windows(5).any(|w| w == b"sy_1\0"), "renamed");
        out.clear();
        // Same statement again on the same connection: answered locally.
        rw.frame(b'P', &parse_frame("s2", "select 1"), &mut out)
            .unwrap();
        assert!(out.is_empty());
        // A fresh connection gets the Parse prepended to a Bind.
        let mut held2 = ServerStatements::new(100);
        let mut rw = Rewriter {
            registry: &reg,
            client: &mut client,
            held: &mut held2,
            queue: &mut queue,
            map_names: true,
            heads: None,
        };
        let mut bind = BytesMut::new();
        write_message(&mut bind, b'B', |b| {
            b.put_slice(b"\0s2\0");
            b.put_u16(0);
            b.put_u16(0);
            b.put_u16(0);
        });
        rw.frame(b'B', &bind, &mut out).unwrap();
        assert_eq!(out[0], b'P');
        let parse_len = u32::from_be_bytes(out[1..5].try_into().unwrap()) as usize + 1;
        assert_eq!(out[parse_len], b'B');
        assert!(out[parse_len..].windows(5).any(|w| w == b"sy_1\0"));
    }
}
