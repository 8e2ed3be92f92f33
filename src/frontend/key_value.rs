//! The integer value a key term (`id = 5`, `id = $1`) has in one execution, for the result
//! cache's per-row invalidation: a literal of a simple query's text, or a Bind parameter —
//! text digits, or binary int2 / int4 / int8 as the Parse declared it (or left it to the
//! server, which then takes the key column's own integer type). Anything else has no value
//! here, and the cache falls back to invalidating the whole table.

use crate::protocol::frame::read_cstr;
use crate::router::{nth_literal, KeyAt};

const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;

/// The value of `at` in a simple query's text.
pub fn literal_value(sql: &str, at: KeyAt) -> Option<i64> {
    match at {
        KeyAt::Literal(n) => nth_literal(sql, n)?.parse().ok(),
        KeyAt::Param(_) => None,
    }
}

/// The value of `at` in a Bind message (`bind`: its body, after the header) whose statement was parsed
/// with `parse_tail` (query text, NUL, parameter type list).
pub fn bind_value(bind: &[u8], parse_tail: &[u8], at: KeyAt) -> Option<i64> {
    let KeyAt::Param(n) = at else {
        return None;
    };
    let (_portal, rest) = read_cstr(bind)?;
    let (_stmt, b) = read_cstr(rest)?;
    let u16_at = |at: usize| -> Option<usize> {
        Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]) as usize)
    };
    let nfmt = u16_at(0)?;
    let format = match nfmt {
        0 => 0,
        1 => u16_at(2)?,
        _ => u16_at(2 + 2 * n)?,
    };
    let mut at = 2 + 2 * nfmt;
    if n >= u16_at(at)? {
        return None;
    }
    at += 2;
    for _ in 0..n {
        let len = i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?);
        at += 4 + usize::try_from(len).unwrap_or(0);
    }
    let len = usize::try_from(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?)).ok()?;
    let value = b.get(at + 4..at + 4 + len)?;
    match format {
        0 => std::str::from_utf8(value).ok()?.parse().ok(),
        1 => binary_int(value, declared_type(parse_tail, n)?),
        _ => None,
    }
}

/// The type OID the Parse gave parameter `n` (0: left to the server).
fn declared_type(parse_tail: &[u8], n: usize) -> Option<u32> {
    let (_, types) = read_cstr(parse_tail)?;
    let count = u16::from_be_bytes([*types.first()?, *types.get(1)?]) as usize;
    if n >= count {
        return Some(0);
    }
    let at = 2 + 4 * n;
    Some(u32::from_be_bytes(types.get(at..at + 4)?.try_into().ok()?))
}

fn binary_int(v: &[u8], oid: u32) -> Option<i64> {
    match (oid, v.len()) {
        (INT2 | 0, 2) => Some(i64::from(i16::from_be_bytes(v.try_into().ok()?))),
        (INT4 | 0, 4) => Some(i64::from(i32::from_be_bytes(v.try_into().ok()?))),
        (INT8 | 0, 8) => Some(i64::from_be_bytes(v.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::write_message;
    use bytes::BytesMut;

    fn bind(formats: &[u16], values: &[&[u8]]) -> Vec<u8> {
        let mut out = BytesMut::new();
        write_message(&mut out, b'B', |b| {
            b.extend_from_slice(b"\0s\0");
            b.extend_from_slice(&(formats.len() as u16).to_be_bytes());
            formats
                .iter()
                .for_each(|f| b.extend_from_slice(&f.to_be_bytes()));
            b.extend_from_slice(&(values.len() as u16).to_be_bytes());
            for v in values {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            b.extend_from_slice(&[0, 0]);
        });
        out[5..].to_vec()
    }

    fn tail(types: &[u32]) -> Vec<u8> {
        let mut t = b"SELECT $1, $2\0".to_vec();
        t.extend_from_slice(&(types.len() as u16).to_be_bytes());
        types
            .iter()
            .for_each(|o| t.extend_from_slice(&o.to_be_bytes()));
        t
    }

    #[test]
    fn parameters_by_format_and_type() {
        let b = bind(&[], &[b"x", b"+0042"]);
        assert_eq!(bind_value(&b, &tail(&[]), KeyAt::Param(1)), Some(42));
        assert_eq!(bind_value(&b, &tail(&[]), KeyAt::Param(0)), None);
        assert_eq!(bind_value(&b, &tail(&[]), KeyAt::Param(2)), None);
        let b = bind(&[1], &[&7i32.to_be_bytes(), &(-9i64).to_be_bytes()]);
        assert_eq!(
            bind_value(&b, &tail(&[INT4, INT8]), KeyAt::Param(0)),
            Some(7)
        );
        assert_eq!(bind_value(&b, &tail(&[]), KeyAt::Param(1)), Some(-9));
        assert_eq!(
            bind_value(&b, &tail(&[INT4, 701]), KeyAt::Param(1)),
            None,
            "float8"
        );
        assert_eq!(
            bind_value(&b, &tail(&[INT2]), KeyAt::Param(0)),
            None,
            "length"
        );
        let b = bind(&[0, 1], &[b"5", &3i16.to_be_bytes()]);
        assert_eq!(bind_value(&b, &tail(&[0, INT2]), KeyAt::Param(0)), Some(5));
        assert_eq!(bind_value(&b, &tail(&[0, INT2]), KeyAt::Param(1)), Some(3));
        assert_eq!(
            bind_value(&bind(&[], &[b"5.0"]), &tail(&[]), KeyAt::Param(0)),
            None
        );
        assert_eq!(
            bind_value(&b[..4], &tail(&[]), KeyAt::Param(1)),
            None,
            "cut"
        );
    }

    #[test]
    fn literals_of_the_text() {
        let sql = "SELECT v FROM t WHERE k = 'a' AND id = 0017";
        assert_eq!(literal_value(sql, KeyAt::Literal(1)), Some(17));
        assert_eq!(literal_value(sql, KeyAt::Literal(0)), None);
        assert_eq!(literal_value(sql, KeyAt::Param(0)), None);
    }
}
