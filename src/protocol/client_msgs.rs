//! Peeks into the client messages whose contents route or rewrite a request: the SQL text of
//! a Query or a Parse, and the statement a Bind uses. Each takes one whole frame (header
//! included), never reads past it, and says None for a malformed or non-UTF-8 one.

use super::frame::{read_cstr, HEADER_LEN};

fn text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

/// The SQL text of a Query frame.
pub fn query_sql(frame: &[u8]) -> Option<&str> {
    text(query_bytes(frame)?)
}

/// The SQL of a Query frame as bytes, not yet checked to be UTF-8 (for byte-level
/// pre-checks that are cheaper than the check).
pub fn query_bytes(frame: &[u8]) -> Option<&[u8]> {
    Some(read_cstr(frame.get(HEADER_LEN..)?)?.0)
}

/// The SQL text of a Parse frame (after the statement name).
pub fn parse_sql(frame: &[u8]) -> Option<&str> {
    let (_, rest) = read_cstr(frame.get(HEADER_LEN..)?)?;
    text(read_cstr(rest)?.0)
}

/// The SQL text of a Query or Parse frame (None for other types).
pub fn sql_of(tag: u8, frame: &[u8]) -> Option<&str> {
    match tag {
        b'Q' => query_sql(frame),
        b'P' => parse_sql(frame),
        _ => None,
    }
}

/// The prepared statement a Bind frame uses ("" for the unnamed one).
pub fn bind_statement(frame: &[u8]) -> Option<&str> {
    let (_, rest) = read_cstr(frame.get(HEADER_LEN..)?)?;
    text(read_cstr(rest)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::write_message;
    use bytes::BytesMut;

    fn frame(tag: u8, parts: &[&[u8]]) -> BytesMut {
        let mut out = BytesMut::new();
        write_message(&mut out, tag, |b| {
            for p in parts {
                b.extend_from_slice(p);
            }
        });
        out
    }

    #[test]
    fn reads_sql_and_names() {
        let q = frame(b'Q', &[b"select 1\0"]);
        assert_eq!(query_sql(&q), Some("select 1"));
        assert_eq!(sql_of(b'Q', &q), Some("select 1"));
        let p = frame(b'P', &[b"s1\0", b"select $1\0", &[0, 0]]);
        assert_eq!(parse_sql(&p), Some("select $1"));
        assert_eq!(sql_of(b'P', &p), Some("select $1"));
        let b = frame(b'B', &[b"\0", b"s1\0", &[0, 0, 0, 0, 0, 0]]);
        assert_eq!(bind_statement(&b), Some("s1"));
        assert_eq!(sql_of(b'B', &b), None);
        for bad in [
            frame(b'Q', &[b"no nul"]),
            frame(b'P', &[b"s1\0"]),
            frame(b'Q', &[&[0xff, 0]]),
        ] {
            assert_eq!(sql_of(bad[0], &bad), None);
        }
        assert_eq!(query_sql(&[b'Q', 0, 0]), None, "shorter than a header");
    }
}
