//! A small SQL lexer: splits a query string into top-level statements and yields their first
//! words, respecting quotes, dollar quotes and comments. Used to spot SET/RESET/DISCARD (and,
//! later, cheap routing keywords) without a full parse.

/// A token at the start of a statement: a bare word (lower-cased by the caller if needed),
/// a quoted identifier, a string literal, or a piece of punctuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    Word(&'a str),
    QuotedIdent(&'a str),
    Literal(&'a str),
    Punct(u8),
}

/// Cheap pre-check: whether a statement of `text` may begin with one of `words` (lower-case
/// ASCII prefixes, not empty), ignoring case. Every statement begins at the start of the
/// text or after a `;` (quoted ones included, so this can only say yes too often), past
/// white space and comments: only those places are looked at, found with SIMD by memchr.
pub fn statement_starts_any(text: &[u8], words: &[&[u8]]) -> bool {
    let word_at = |mut i: usize| {
        loop {
            let j = skip_blank(text, i);
            if j == i {
                break;
            }
            i = j;
        }
        let rest = &text[i.min(text.len())..];
        let Some(&first) = rest.first() else {
            return false;
        };
        let first = first.to_ascii_lowercase();
        words.iter().any(|w| {
            w.first() == Some(&first)
                && rest.len() >= w.len()
                && rest[1..w.len()].eq_ignore_ascii_case(&w[1..])
        })
    };
    word_at(0) || memchr::memchr_iter(b';', text).any(|i| word_at(i + 1))
}

/// Splits `sql` at top-level semicolons, returning each statement's text (trimmed of
/// leading whitespace and comments; may be empty).
pub fn statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b';' => {
                out.push(skip_space(&sql[start..i]));
                i += 1;
                start = i;
            }
            _ => i = skip_token(bytes, i),
        }
    }
    let tail = skip_space(&sql[start..]);
    if !tail.is_empty() {
        out.push(tail);
    }
    out
}

/// Strips leading whitespace and comments.
pub fn skip_space(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let j = skip_blank(b, i);
        if j == i {
            return &s[i..];
        }
        i = j;
    }
}

/// Advances past whitespace or one comment at `i`; returns `i` if there is none.
fn skip_blank(b: &[u8], mut i: usize) -> usize {
    if i >= b.len() {
        return i;
    }
    if b[i].is_ascii_whitespace() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        return i;
    }
    if b[i..].starts_with(b"--") {
        while i < b.len() && b[i] != b'\n' {
            i += 1;
        }
        return i;
    }
    if b[i..].starts_with(b"/*") {
        let mut depth = 0usize;
        while i < b.len() {
            if b[i..].starts_with(b"/*") {
                depth += 1;
                i += 2;
            } else if b[i..].starts_with(b"*/") {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            } else {
                i += 1;
            }
        }
        return i;
    }
    i
}

/// Returns the index just past the token (or single byte) starting at `i`.
fn skip_token(b: &[u8], i: usize) -> usize {
    let j = skip_blank(b, i);
    if j != i {
        return j;
    }
    match b[i] {
        b'\'' => {
            let escapes = i > 0 && (b[i - 1] == b'E' || b[i - 1] == b'e');
            skip_quoted(b, i, b'\'', escapes)
        }
        b'"' => skip_quoted(b, i, b'"', false),
        b'$' => skip_dollar(b, i),
        _ => i + 1,
    }
}

fn skip_quoted(b: &[u8], i: usize, q: u8, backslash_escapes: bool) -> usize {
    let mut k = i + 1;
    while k < b.len() {
        if backslash_escapes && b[k] == b'\\' {
            k += 2;
            continue;
        }
        if b[k] == q {
            if k + 1 < b.len() && b[k + 1] == q {
                k += 2;
                continue;
            }
            return k + 1;
        }
        k += 1;
    }
    b.len()
}

/// `$tag$ ... $tag$` (the tag may be empty); a `$` that does not open one (e.g. `$1`) is one byte.
fn skip_dollar(b: &[u8], i: usize) -> usize {
    let mut k = i + 1;
    while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
        if k == i + 1 && b[k].is_ascii_digit() {
            return i + 1;
        }
        k += 1;
    }
    if k >= b.len() || b[k] != b'$' {
        return i + 1;
    }
    let tag = &b[i..=k];
    let mut m = k + 1;
    while m + tag.len() <= b.len() {
        if &b[m..m + tag.len()] == tag {
            return m + tag.len();
        }
        m += 1;
    }
    b.len()
}

/// Tokenizes the start of one statement (as returned by [`statements`]).
pub fn tokens(stmt: &str) -> Tokens<'_> {
    Tokens { s: stmt, pos: 0 }
}

pub struct Tokens<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Tokens<'a> {
    /// A copy positioned where `other` is, for look-ahead.
    pub fn clone_at(other: &Tokens<'a>) -> Tokens<'a> {
        Tokens {
            s: other.s,
            pos: other.pos,
        }
    }

    /// The unparsed rest of the statement after the tokens taken so far, trimmed.
    pub fn rest(&self) -> &'a str {
        skip_space(&self.s[self.pos..]).trim_end()
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let b = self.s.as_bytes();
        let mut i = self.pos;
        loop {
            let j = skip_blank(b, i);
            if j == i {
                break;
            }
            i = j;
        }
        if i >= b.len() {
            self.pos = i;
            return None;
        }
        let c = b[i];
        let (tok, end) = if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let mut k = i;
            while k < b.len()
                && (b[k].is_ascii_alphanumeric() || b[k] == b'_' || b[k] >= 0x80 || b[k] == b'$')
            {
                k += 1;
            }
            if k < b.len() && b[k] == b'\'' && k == i + 1 && (c == b'E' || c == b'e') {
                let end = skip_quoted(b, k, b'\'', true);
                (Token::Literal(&self.s[i..end]), end)
            } else {
                (Token::Word(&self.s[i..k]), k)
            }
        } else if c == b'"' {
            let end = skip_quoted(b, i, b'"', false);
            (Token::QuotedIdent(&self.s[i..end]), end)
        } else if c == b'\'' {
            let end = skip_quoted(b, i, b'\'', false);
            (Token::Literal(&self.s[i..end]), end)
        } else {
            (Token::Punct(c), i + 1)
        };
        self.pos = end;
        Some(tok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_starts_any_looks_at_each_statement_start() {
        let any = |t: &[u8], w: &[&[u8]]| statement_starts_any(t, w);
        assert!(any(b"RESET ALL", &[b"set", b"reset"]));
        assert!(any(b"select 1; DisCard all", &[b"set", b"discard"]));
        assert!(any(b"select 1;set x=1", &[b"set"]));
        assert!(any(b"  /* c /* nested */ */SET x=1", &[b"set"]));
        assert!(any(b"--c\nSET x=1", &[b"set"]));
        assert!(any(b"select 'a;set' ", &[b"set"]), "may say yes too often");
        assert!(any(b"set", &[b"set"]));
        assert!(!any(b"RESET ALL", &[b"set"]));
        assert!(!any(
            b"SELECT abalance FROM t WHERE aid = 1 OFFSET 2;",
            &[b"set", b"discard"]
        ));
        assert!(!any(b"select x_set; 1set", &[b"set"]));
        assert!(!any(b"se", &[b"set"]));
        assert!(!any(b"", &[b"set"]));
        assert!(!any(b";", &[b"set"]));
    }

    #[test]
    fn splits_statements_outside_quotes_and_comments() {
        let sql = "SET a = 'x;y'; /* c; */ select $$ ; $$, \"q;\" -- tail;\n; ";
        assert_eq!(
            statements(sql),
            vec!["SET a = 'x;y'", "select $$ ; $$, \"q;\" -- tail;\n"]
        );
        assert_eq!(statements("select 1"), vec!["select 1"]);
        assert_eq!(
            statements("select $1; select 2"),
            vec!["select $1", "select 2"]
        );
        assert_eq!(statements("select E'a\\';b'"), vec!["select E'a\\';b'"]);
    }

    #[test]
    fn tokenizes() {
        let mut t = tokens("SET  search_path TO \"My\", public");
        assert_eq!(t.next(), Some(Token::Word("SET")));
        assert_eq!(t.next(), Some(Token::Word("search_path")));
        assert_eq!(t.next(), Some(Token::Word("TO")));
        assert_eq!(t.rest(), "\"My\", public");
        let mut t = tokens("set x = 'it''s'");
        t.next();
        t.next();
        assert_eq!(t.next(), Some(Token::Punct(b'=')));
        assert_eq!(t.next(), Some(Token::Literal("'it''s'")));
        assert_eq!(t.next(), None);
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for s in ["'abc", "\"abc", "$a$ abc", "/* abc", "E'\\", "$", "$1"] {
            let _ = statements(s);
            let _: Vec<_> = tokens(s).collect();
        }
    }
}
