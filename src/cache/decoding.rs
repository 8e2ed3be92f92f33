//! Reading the change stream's messages: which tables a decoded transaction touched, from
//! `test_decoding`'s text lines (`BEGIN`, `table public.t: UPDATE: ...`, `table a, b:
//! TRUNCATE: ...`, `COMMIT`) or from `pgoutput`'s binary messages (Relation, Insert,
//! Update, Delete, Truncate, Commit). Table names come out bare, as the cache compares them.

use std::collections::HashMap;

/// What one decoded message means for invalidation.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// These tables changed in the open transaction.
    Changed(Vec<String>),
    /// The open transaction committed; its changes count from `end_lsn` on (0: use the
    /// message's WAL position).
    Commit { end_lsn: u64 },
    /// Nothing for the cache.
    Other,
}

/// One identifier of a qualified name starting at `s`: its text and the rest.
fn ident(s: &str) -> Option<(String, &str)> {
    if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if rest[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                } else {
                    return Some((out, &rest[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        None
    } else {
        let end = s.find(['.', ',', ':', ' ']).unwrap_or(s.len());
        Some((s[..end].to_string(), &s[end..]))
    }
}

/// The tables a `test_decoding` change line names (`table a, s.b: ...`) and the rest of
/// the line after them (starting at `:`).
fn table_list(line: &str) -> Option<(Vec<String>, &str)> {
    let mut rest = line.strip_prefix("table ")?;
    let mut tables = Vec::new();
    loop {
        // schema.name: the last part is the table.
        let last = loop {
            let (part, after) = ident(rest)?;
            rest = after;
            match rest.strip_prefix('.') {
                Some(after) => rest = after,
                None => break part,
            }
        };
        tables.push(last);
        match rest.strip_prefix(", ") {
            Some(after) => rest = after,
            None => break,
        }
    }
    rest.starts_with(':').then_some((tables, rest))
}

/// A `test_decoding` line.
pub fn test_decoding_line(line: &str) -> Decoded {
    if line == "COMMIT" || line.starts_with("COMMIT ") {
        return Decoded::Commit { end_lsn: 0 };
    }
    match table_list(line) {
        Some((tables, _)) => Decoded::Changed(tables),
        None => Decoded::Other,
    }
}

/// The values of integer column `column` in an INSERT, UPDATE (old key and new tuple) or
/// DELETE line of `test_decoding` (`table public.t: UPDATE: id[integer]:5 v[text]:'x'`);
/// None unless the whole line reads cleanly and names the column with an integer.
pub fn row_key_values(line: &str, column: &str) -> Option<Vec<i64>> {
    let (tables, rest) = table_list(line)?;
    if tables.len() != 1 {
        return None;
    }
    let rest = rest.strip_prefix(": ")?;
    let (op, mut tuple) = rest.split_once(": ")?;
    if !matches!(op, "INSERT" | "UPDATE" | "DELETE") {
        return None;
    }
    let mut found = Vec::new();
    loop {
        tuple = tuple.trim_start_matches(' ');
        if tuple.is_empty() {
            break;
        }
        if let Some(after) = tuple
            .strip_prefix("old-key: ")
            .or(tuple.strip_prefix("new-tuple: "))
        {
            tuple = after;
            continue;
        }
        let (name, after) = column_name(tuple)?;
        let after = after.strip_prefix('[')?;
        let (_type, after) = after.split_once("]:")?;
        let (value, after) = column_value(after)?;
        if name == column {
            found.push(value.parse::<i64>().ok()?);
        }
        tuple = after;
    }
    (!found.is_empty()).then_some(found)
}

/// A column name before its `[type]`: quoted (as `quote_identifier` writes it) or bare.
fn column_name(s: &str) -> Option<(String, &str)> {
    if s.starts_with('"') {
        return ident(s);
    }
    let end = s.find(['[', ' '])?;
    Some((s[..end].to_string(), &s[end..]))
}

/// A value: `'quoted'` (with `''` inside) or a bare word up to the next space.
fn column_value(s: &str) -> Option<(&str, &str)> {
    let Some(body) = s.strip_prefix('\'') else {
        let end = s.find(' ').unwrap_or(s.len());
        return Some((&s[..end], &s[end..]));
    };
    let mut i = 0;
    let b = body.as_bytes();
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some((&s[..i + 2], &body[i + 1..]));
        }
        i += 1;
    }
    None
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A NUL-terminated string at `at`: its text and the index after the NUL.
fn cstr_at(b: &[u8], at: usize) -> Option<(String, usize)> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some((
        String::from_utf8_lossy(&rest[..end]).into_owned(),
        at + end + 1,
    ))
}

/// `pgoutput` (protocol version 1) messages; remembers relation ids from Relation messages.
#[derive(Default)]
pub struct PgOutput {
    relations: HashMap<u32, String>,
}

impl PgOutput {
    pub fn message(&mut self, m: &[u8]) -> Decoded {
        let name = |id: Option<u32>, me: &Self| -> Vec<String> {
            // An id never described (cannot happen in protocol 1): be safe, name nothing
            // the caller could miss — the caller treats an empty change as "flush".
            id.and_then(|i| me.relations.get(&i).cloned())
                .into_iter()
                .collect()
        };
        match m.first() {
            Some(b'R') => {
                let parsed = u32_at(m, 1).and_then(|id| {
                    let (_schema, at) = cstr_at(m, 5)?;
                    let (rel, _) = cstr_at(m, at)?;
                    Some((id, rel))
                });
                if let Some((id, rel)) = parsed {
                    self.relations.insert(id, rel);
                }
                Decoded::Other
            }
            Some(b'I' | b'U' | b'D') => Decoded::Changed(name(u32_at(m, 1), self)),
            Some(b'T') => {
                let n = u32_at(m, 1).unwrap_or(0) as usize;
                let tables = (0..n.min(m.len() / 4))
                    .flat_map(|k| name(u32_at(m, 6 + 4 * k), self))
                    .collect();
                Decoded::Changed(tables)
            }
            Some(b'C') => Decoded::Commit {
                end_lsn: u64_at(m, 10).unwrap_or(0),
            },
            _ => Decoded::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_decoding_lines() {
        let changed = |v: &[&str]| Decoded::Changed(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            test_decoding_line("table public.pgbench_accounts: UPDATE: aid[integer]:1"),
            changed(&["pgbench_accounts"])
        );
        assert_eq!(
            test_decoding_line("table public.\"My \"\"odd\"\" t\": INSERT: a[text]:'x: y'"),
            changed(&["My \"odd\" t"])
        );
        assert_eq!(
            test_decoding_line("table public.a, s.b: TRUNCATE: (no-flags)"),
            changed(&["a", "b"])
        );
        assert_eq!(test_decoding_line("COMMIT"), Decoded::Commit { end_lsn: 0 });
        assert_eq!(
            test_decoding_line("COMMIT 734"),
            Decoded::Commit { end_lsn: 0 }
        );
        assert_eq!(test_decoding_line("BEGIN"), Decoded::Other);
        assert_eq!(test_decoding_line("table \"unterminated"), Decoded::Other);
    }

    #[test]
    fn row_keys_in_change_lines() {
        let k = |l: &str| row_key_values(l, "id");
        assert_eq!(
            k("table public.t: UPDATE: id[integer]:5 v[text]:'it''s id[integer]:9' w[integer[]]:'{1}'"),
            Some(vec![5])
        );
        assert_eq!(
            k("table s.t: UPDATE: old-key: id[bigint]:3 new-tuple: id[bigint]:-7 v[text]:null"),
            Some(vec![3, -7])
        );
        assert_eq!(k("table public.t: DELETE: id[integer]:12"), Some(vec![12]));
        assert_eq!(
            k("table public.t: INSERT: \"Odd\"\"\"[text]:'x' id[smallint]:1"),
            Some(vec![1])
        );
        assert_eq!(k("table public.t: DELETE: (no-tuple-data)"), None);
        assert_eq!(k("table public.t: UPDATE: v[text]:'x'"), None, "no key");
        assert_eq!(k("table public.t: UPDATE: id[integer]:null"), None);
        assert_eq!(k("table public.t: UPDATE: v[text]:'unterminated"), None);
        assert_eq!(k("table public.a, public.b: TRUNCATE: (no-flags)"), None);
        assert_eq!(k("BEGIN 12"), None);
    }

    #[test]
    fn pgoutput_messages() {
        let mut p = PgOutput::default();
        let mut rel = vec![b'R', 0, 0, 0, 7];
        rel.extend_from_slice(b"public\0Orders\0");
        rel.extend_from_slice(&[b'd', 0, 0]);
        assert_eq!(p.message(&rel), Decoded::Other);
        assert_eq!(
            p.message(&[b'U', 0, 0, 0, 7, b'N']),
            Decoded::Changed(vec!["Orders".into()])
        );
        let t = [b'T', 0, 0, 0, 1, 0, 0, 0, 0, 7];
        assert_eq!(p.message(&t), Decoded::Changed(vec!["Orders".into()]));
        let mut c = vec![b'C', 0];
        c.extend_from_slice(&5u64.to_be_bytes());
        c.extend_from_slice(&9u64.to_be_bytes());
        c.extend_from_slice(&0u64.to_be_bytes());
        assert_eq!(p.message(&c), Decoded::Commit { end_lsn: 9 });
        assert_eq!(p.message(&[b'I', 0, 0, 0, 8]), Decoded::Changed(vec![]));
    }
}
