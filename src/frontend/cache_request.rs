//! Which buffered requests the result cache can answer, and their key bytes: one simple
//! Query alone, or one extended-protocol execution alone — `[Parse] Bind [Describe portal,
//! or the unnamed statement parsed in it] Execute Sync` on the unnamed portal, with the unnamed statement parsed in the same
//! request or a named one the client prepared earlier (a named Parse in the request is
//! left to the server, so the client's statement is registered as usual). The key bytes
//! replace statement and portal names by what they stand for: the statement's text and
//! parameter types, the parameter values and formats, the result formats.

use crate::prepared::ClientStatements;
use crate::protocol::frame::{read_cstr, Frames, HEADER_LEN};

/// A request the cache may answer.
pub struct CacheRequest<'a> {
    /// The statement's text (for its shape).
    pub sql: &'a str,
    /// What, besides user and settings, the key is made of.
    pub key: Vec<u8>,
    /// A text parameter value reads `now`, `today`, `tomorrow` or `yesterday`.
    pub time_word_param: bool,
    /// Bytes of client input the request takes.
    pub len: usize,
    /// An extended execution's Bind body and its statement's Parse tail (text, NUL, types).
    pub bind: Option<(&'a [u8], &'a [u8])>,
}

/// The request filling `input` (all of it), if the cache may answer it.
pub fn cache_request<'a>(
    input: &'a [u8],
    max: usize,
    statements: &'a ClientStatements,
) -> Option<CacheRequest<'a>> {
    let mut frames = Frames::new(input, max);
    let (h, first) = frames.next()?.ok()?;
    if h.tag == b'Q' {
        let sql = crate::protocol::client_msgs::query_sql(first)?;
        return (h.total_len == input.len()).then(|| CacheRequest {
            sql,
            key: first.to_vec(),
            time_word_param: false,
            len: input.len(),
            bind: None,
        });
    }
    let mut req = Extended::default();
    let mut len = 0;
    for f in Frames::new(input, max) {
        let (h, frame) = f.ok()?;
        len += h.total_len;
        req.frame(h.tag, frame.get(HEADER_LEN..)?, statements)?;
        if h.tag == b'S' {
            break;
        }
    }
    if len != input.len() || !req.complete() {
        return None;
    }
    Some(CacheRequest {
        sql: req.sql?,
        key: req.key,
        time_word_param: req.time_word,
        len,
        bind: req.bind.zip(req.parse_tail),
    })
}

/// An extended-protocol request being read.
#[derive(Default)]
struct Extended<'a> {
    sql: Option<&'a str>,
    key: Vec<u8>,
    parsed: bool,
    bound: bool,
    executed: bool,
    synced: bool,
    time_word: bool,
    bind: Option<&'a [u8]>,
    parse_tail: Option<&'a [u8]>,
}

impl<'a> Extended<'a> {
    fn complete(&self) -> bool {
        self.bound && self.executed && self.synced
    }

    /// Takes one frame body; None if the request is not one the cache answers.
    fn frame(&mut self, tag: u8, body: &'a [u8], statements: &'a ClientStatements) -> Option<()> {
        match tag {
            b'P' if !self.parsed && !self.bound => {
                let (name, rest) = read_cstr(body)?;
                if !name.is_empty() {
                    return None;
                }
                self.sql = Some(std::str::from_utf8(read_cstr(rest)?.0).ok()?);
                self.parse_tail = Some(rest);
                self.parsed = true;
                self.key.push(b'P');
                self.key.extend_from_slice(rest);
            }
            b'B' if !self.bound => {
                let (portal, rest) = read_cstr(body)?;
                let (stmt, values) = read_cstr(rest)?;
                if !portal.is_empty() {
                    return None;
                }
                self.key.push(b'B');
                if stmt.is_empty() {
                    if !self.parsed {
                        return None;
                    }
                } else {
                    let info = statements.get(std::str::from_utf8(stmt).ok()?)?;
                    self.sql = Some(info.query());
                    self.parse_tail = Some(&info.parse_tail);
                    self.key.extend_from_slice(&info.parse_tail);
                    self.key.push(0);
                }
                self.time_word = bind_has_time_word(values)?;
                self.bind = Some(body);
                self.key.extend_from_slice(values);
                self.bound = true;
            }
            // Describe of the unnamed portal, or of the unnamed statement parsed here
            // (tokio-postgres' query_typed sends Parse Bind Describe-statement Execute Sync).
            b'D' if self.bound
                && !self.executed
                && matches!(body.first(), Some(b'P') | Some(b'S') if self.parsed || body[0] == b'P')
                && read_cstr(&body[1..])?.0.is_empty() =>
            {
                self.key.push(b'D');
                self.key.push(body[0]);
            }
            b'E' if self.bound && !self.executed => {
                let (portal, rest) = read_cstr(body)?;
                if !portal.is_empty() || rest.get(..4)? != [0, 0, 0, 0] {
                    return None;
                }
                self.key.push(b'E');
                self.executed = true;
            }
            b'S' if self.executed => self.synced = true,
            _ => return None,
        }
        Some(())
    }
}

/// Whether a Bind's parameter values (after the names) hold a text value that is a
/// date/time word meaning "now"; None if malformed.
fn bind_has_time_word(b: &[u8]) -> Option<bool> {
    let n16 = |b: &[u8], at: usize| -> Option<usize> {
        Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]) as usize)
    };
    let nfmt = n16(b, 0)?;
    let formats: Vec<usize> = (0..nfmt)
        .map(|i| n16(b, 2 + 2 * i))
        .collect::<Option<_>>()?;
    let mut at = 2 + 2 * nfmt;
    let nparams = n16(b, at)?;
    at += 2;
    let mut found = false;
    for i in 0..nparams {
        let len = i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len < 0 {
            continue;
        }
        let v = b.get(at..at + len as usize)?;
        at += len as usize;
        let text = match formats.as_slice() {
            [] => true,
            [one] => *one == 0,
            all => all.get(i).is_some_and(|f| *f == 0),
        };
        if text && v.len() <= 16 {
            let w = v.trim_ascii();
            found |= [&b"now"[..], b"today", b"tomorrow", b"yesterday"]
                .iter()
                .any(|t| w.eq_ignore_ascii_case(t));
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::write_message;
    use bytes::BytesMut;

    fn msg(out: &mut BytesMut, tag: u8, parts: &[&[u8]]) {
        write_message(out, tag, |b| {
            parts.iter().for_each(|p| b.extend_from_slice(p))
        });
    }

    fn bind(out: &mut BytesMut, stmt: &[u8], value: &[u8]) {
        let len = (value.len() as u32).to_be_bytes();
        msg(
            out,
            b'B',
            &[b"\0", stmt, b"\0", &[0, 0, 0, 1], &len, value, &[0, 0]],
        );
    }

    #[test]
    fn unnamed_executions_are_keyed_by_text_and_values() {
        let reg = ClientStatements::default();
        let make = |value: &[u8]| {
            let mut b = BytesMut::new();
            msg(&mut b, b'P', &[b"\0SELECT $1\0", &[0, 0]]);
            bind(&mut b, b"", value);
            msg(&mut b, b'D', &[b"P\0"]);
            msg(&mut b, b'E', &[b"\0", &[0, 0, 0, 0]]);
            msg(&mut b, b'S', &[]);
            b
        };
        let a = make(b"1");
        let r = cache_request(&a, 1 << 20, &reg).expect("cacheable");
        assert_eq!(
            (r.sql, r.len, r.time_word_param),
            ("SELECT $1", a.len(), false)
        );
        let b = make(b"2");
        assert_ne!(
            r.key,
            cache_request(&b, 1 << 20, &reg).expect("cacheable").key
        );
        let now = make(b" NOW ");
        assert!(
            cache_request(&now, 1 << 20, &reg)
                .expect("cacheable")
                .time_word_param
        );
        assert!(
            cache_request(&a[..a.len() - 5], 1 << 20, &reg).is_none(),
            "no Sync"
        );
        let mut two = a.clone();
        two.extend_from_slice(&a);
        assert!(
            cache_request(&two, 1 << 20, &reg).is_none(),
            "two executions"
        );
        let mut unknown = BytesMut::new();
        bind(&mut unknown, b"s1", b"1");
        msg(&mut unknown, b'E', &[b"\0", &[0, 0, 0, 0]]);
        msg(&mut unknown, b'S', &[]);
        assert!(
            cache_request(&unknown, 1 << 20, &reg).is_none(),
            "unknown statement"
        );
        let mut q = BytesMut::new();
        msg(&mut q, b'Q', &[b"SELECT 1\0"]);
        assert_eq!(
            cache_request(&q, 1 << 20, &reg).map(|r| r.sql),
            Some("SELECT 1")
        );
    }
}
