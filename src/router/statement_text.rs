//! Reading statements out of a query string with the one lexer ([`super::lexer`]): splitting at
//! top-level semicolons, a cheap "may a statement start with one of these words" pre-check
//! for the hot path, and the leading tokens of a statement (for spotting SET/RESET/DISCARD,
//! PREPARE/EXECUTE/DEALLOCATE and transaction ends without a full parse).

use super::lexer::{Lexer, Span, Tok};

/// A token of a statement: a bare word (compare case-insensitively), a quoted identifier
/// (quotes included), a literal (string, number or `$n` parameter, as written), or one
/// byte of punctuation or operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    Word(&'a str),
    QuotedIdent(&'a str),
    Literal(&'a str),
    Punct(u8),
}

/// Splits `sql` at top-level semicolons (outside quotes, comments and parentheses) and
/// returns each statement's text from its first token to its end (trailing blanks and
/// comments included); statements without tokens are dropped.
pub fn statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut depth = 0usize;
    for t in Lexer::new(sql) {
        if t.kind == Tok::Punct {
            match sql.as_bytes().get(t.start) {
                Some(b'(') => depth += 1,
                Some(b')') => depth = depth.saturating_sub(1),
                Some(b';') if depth == 0 => {
                    if let Some(s) = start.take() {
                        out.push(sql.get(s..t.start).unwrap_or(""));
                    }
                    continue;
                }
                _ => {}
            }
        }
        start.get_or_insert(t.start);
    }
    if let Some(s) = start {
        out.push(sql.get(s..).unwrap_or(""));
    }
    out
}

/// Strips leading whitespace and comments.
pub fn skip_space(s: &str) -> &str {
    let mut lx = Lexer::new(s);
    lx.skip_blank();
    s.get(lx.pos()..).unwrap_or("")
}

/// Cheap pre-check: whether a statement of `text` may begin with one of `words` (lower-case
/// ASCII prefixes, not empty), ignoring case. Every statement begins at the start of the
/// text or after a `;` (quoted ones included, so this can only say yes too often), past
/// white space and comments: only those places are looked at, found with SIMD by memchr.
pub fn statement_starts_any(text: &[u8], words: &[&[u8]]) -> bool {
    let word_at = |i: usize| {
        let mut lx = Lexer::at_offset(text, i);
        lx.skip_blank();
        let rest = text.get(lx.pos()..).unwrap_or(&[]);
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

/// The leading words that make a Query text worth a closer look, found in one pass over the
/// places a statement can begin (see [`statement_starts_any`]): a bit set of [`Heads`]
/// constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Heads(u8);

impl Heads {
    pub const SET: u8 = 1;
    pub const RESET: u8 = 2;
    pub const DISCARD: u8 = 4;
    /// `dealloc...` (DEALLOCATE).
    pub const DEALLOCATE: u8 = 8;
    pub const PREPARE: u8 = 16;
    pub const EXECUTE: u8 = 32;
    /// Session-level parameter changes: SET, RESET, DISCARD.
    pub const PARAMS: u8 = Self::SET | Self::RESET | Self::DISCARD;
    /// What can drop prepared statements: DISCARD, DEALLOCATE.
    pub const CLEARS: u8 = Self::DISCARD | Self::DEALLOCATE;
    /// SQL-level prepared statements: PREPARE, EXECUTE, DEALLOCATE.
    pub const SQL_PREPARED: u8 = Self::PREPARE | Self::EXECUTE | Self::DEALLOCATE;

    /// Whether a statement may begin with one of the words in `mask`.
    pub fn any(self, mask: u8) -> bool {
        self.0 & mask != 0
    }
}

/// The words of [`Heads`] with which a statement of `text` may begin (quoted `;` included,
/// so this can only say yes too often): one memchr pass for `;` and a look at each start.
pub fn statement_heads(text: &[u8]) -> Heads {
    const WORDS: [(&[u8], u8); 6] = [
        (b"set", Heads::SET),
        (b"reset", Heads::RESET),
        (b"discard", Heads::DISCARD),
        (b"dealloc", Heads::DEALLOCATE),
        (b"prepare", Heads::PREPARE),
        (b"execute", Heads::EXECUTE),
    ];
    let head_at = |i: usize| -> u8 {
        let mut lx = Lexer::at_offset(text, i);
        lx.skip_blank();
        let rest = text.get(lx.pos()..).unwrap_or(&[]);
        let Some(first) = rest.first().map(u8::to_ascii_lowercase) else {
            return 0;
        };
        // Most statements begin with a word none of these start with (SELECT, INSERT, ...).
        if !matches!(first, b's' | b'r' | b'd' | b'p' | b'e') {
            return 0;
        }
        WORDS
            .iter()
            .filter(|(w, _)| {
                w[0] == first
                    && rest.len() >= w.len()
                    && rest[1..w.len()].eq_ignore_ascii_case(&w[1..])
            })
            .fold(0, |acc, (_, bit)| acc | bit)
    };
    let mut bits = head_at(0);
    for i in memchr::memchr_iter(b';', text) {
        bits |= head_at(i + 1);
    }
    Heads(bits)
}

/// The tokens of one statement (as returned by [`statements`]).
pub fn tokens(stmt: &str) -> Tokens<'_> {
    Tokens {
        s: stmt,
        lx: Lexer::new(stmt),
    }
}

/// Iterator over a statement's tokens; clone it to look ahead.
#[derive(Clone)]
pub struct Tokens<'a> {
    s: &'a str,
    lx: Lexer<'a>,
}

impl<'a> Tokens<'a> {
    /// The unparsed rest of the statement after the tokens taken so far, trimmed.
    pub fn rest(&self) -> &'a str {
        skip_space(self.s.get(self.lx.pos()..).unwrap_or("")).trim_end()
    }

    fn token(&self, t: Span) -> Token<'a> {
        let text = self.s.get(t.start..t.end).unwrap_or("");
        match t.kind {
            Tok::Word => Token::Word(text),
            Tok::QuotedIdent => Token::QuotedIdent(text),
            Tok::Literal | Tok::Param => Token::Literal(text),
            Tok::Op | Tok::Punct => Token::Punct(text.as_bytes().first().copied().unwrap_or(0)),
        }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let t = self.lx.next()?;
        Some(self.token(t))
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
        assert_eq!(statements(" ;; select 1;"), vec!["select 1"]);
        assert_eq!(
            statements("create rule r as on insert to t do (select 1; select 2); x"),
            vec![
                "create rule r as on insert to t do (select 1; select 2)",
                "x"
            ]
        );
    }

    #[test]
    fn statement_heads_are_read_in_one_pass() {
        let h = |t: &str| statement_heads(t.as_bytes());
        assert_eq!(
            h("SELECT abalance FROM pgbench_accounts WHERE aid = 1;"),
            Heads::default()
        );
        assert!(h("/* x */ Set search_path = a").any(Heads::SET));
        assert!(!h("SELECT 1").any(Heads::PARAMS | Heads::SQL_PREPARED | Heads::CLEARS));
        let many = h("select 1; reset all;\n deallocate p; PREPARE q AS select 1; execute q");
        assert!(many.any(Heads::RESET) && many.any(Heads::DEALLOCATE));
        assert!(many.any(Heads::PREPARE) && many.any(Heads::EXECUTE));
        assert!(!many.any(Heads::SET | Heads::DISCARD));
        assert!(h("discard all").any(Heads::CLEARS) && h("discard all").any(Heads::PARAMS));
        assert!(
            h("select ';'; set x = 1").any(Heads::SET),
            "a quoted ; may say yes too often"
        );
        assert_eq!(h(""), Heads::default());
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
        let mut t = tokens("set x=-1");
        t.next();
        t.next();
        assert_eq!(t.next(), Some(Token::Punct(b'=')));
        assert_eq!(t.rest(), "-1");
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for s in [
            "'abc", "\"abc", "$a$ abc", "/* abc", "E'\\", "$", "$1", "é'",
        ] {
            let _ = statements(s);
            let _ = skip_space(s);
            let _ = statement_starts_any(s.as_bytes(), &[b"set"]);
            let _: Vec<_> = tokens(s).collect();
        }
    }
}
