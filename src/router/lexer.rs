//! The one SQL lexer: an allocation-free pass over a query's bytes that follows PostgreSQL's
//! lexical rules (quotes, `E''` escapes, dollar quotes, nested comments, `$n` parameters,
//! numbers, operators) and records any `switchyard:` hint comment. The fingerprint, the
//! classifier's keyword scan and statement splitting ([`super::statement_text`]) all read
//! query text through it, so they agree on where strings, comments and statements are.
//!
//! Assumes `standard_conforming_strings = on` (PostgreSQL's default): `'\'` is a whole string.

use super::Target;

/// What kind of token the lexer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Keyword or bare identifier (compare case-insensitively).
    Word,
    /// `"Quoted"` identifier, quotes included.
    QuotedIdent,
    /// String (any prefix), dollar-quoted string, bit string or number.
    Literal,
    /// `$1`, `$2`, ...
    Param,
    /// A run of operator characters (`<>`, `::` is two `:` puncts).
    Op,
    /// Any other single byte: `( ) , ; [ ] . :` and strays.
    Punct,
}

/// A token's kind and byte range in the lexed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// Iterates over the tokens of a SQL text, skipping whitespace and comments and recording
/// any routing hint found in a comment (`primary` wins over `replica`).
#[derive(Clone)]
pub(crate) struct Lexer<'a> {
    b: &'a [u8],
    pos: usize,
    pub hint: Option<Target>,
    /// `switchyard: cache` (true) or `switchyard: no-cache` (false); no-cache wins.
    pub cache_hint: Option<bool>,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer::at_offset(text.as_bytes(), 0)
    }

    /// A lexer over `b` that starts at byte `pos` (which must not be inside a token).
    pub fn at_offset(b: &'a [u8], pos: usize) -> Lexer<'a> {
        Lexer {
            b,
            pos,
            hint: None,
            cache_hint: None,
        }
    }

    /// Where the next token (or blank) starts.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The byte at `i`, or 0 past the end.
    #[inline]
    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    /// The first index from `k` on whose byte fails `f` (or the end).
    #[inline]
    fn run(&self, mut k: usize, f: impl Fn(u8) -> bool) -> usize {
        while k < self.b.len() && f(self.b[k]) {
            k += 1;
        }
        k
    }

    /// Skips whitespace and comments; returns false at the end of input.
    pub fn skip_blank(&mut self) -> bool {
        loop {
            let c = self.at(self.pos);
            if c.is_ascii_whitespace() {
                self.pos += 1;
            } else if c == b'-' && self.at(self.pos + 1) == b'-' {
                let start = self.pos + 2;
                self.pos = self.run(start, |c| c != b'\n');
                self.note_hint(start, self.pos);
            } else if c == b'/' && self.at(self.pos + 1) == b'*' {
                let start = self.pos + 2;
                let mut depth = 0usize;
                let mut end = self.b.len();
                while self.pos < self.b.len() {
                    if self.b[self.pos..].starts_with(b"/*") {
                        depth += 1;
                        self.pos += 2;
                    } else if self.b[self.pos..].starts_with(b"*/") {
                        depth -= 1;
                        self.pos += 2;
                        if depth == 0 {
                            end = self.pos - 2;
                            break;
                        }
                    } else {
                        self.pos += 1;
                    }
                }
                self.note_hint(start, end.min(self.pos));
            } else {
                return self.pos < self.b.len();
            }
        }
    }

    fn note_hint(&mut self, start: usize, end: usize) {
        let body = self.b.get(start..end).unwrap_or(&[]);
        if let Some(t) = parse_hint(body) {
            if self.hint != Some(Target::Primary) {
                self.hint = Some(t);
            }
        }
        if let Some(c) = parse_cache_hint(body) {
            if self.cache_hint != Some(false) {
                self.cache_hint = Some(c);
            }
        }
    }

    /// Advances past a quoted run starting at the opening quote `self.pos`.
    fn skip_quoted(&mut self, q: u8, backslash: bool) {
        let mut k = self.pos + 1;
        while k < self.b.len() {
            let c = self.b[k];
            if backslash && c == b'\\' {
                k += 2;
            } else if c == q {
                if self.at(k + 1) == q {
                    k += 2;
                } else {
                    self.pos = k + 1;
                    return;
                }
            } else {
                k += 1;
            }
        }
        self.pos = self.b.len();
    }

    /// At a `$`: a parameter, a dollar-quoted string, or a lone `$` (an operator character).
    fn dollar(&mut self) -> Tok {
        let b = self.b;
        if self.at(self.pos + 1).is_ascii_digit() {
            self.pos = self.run(self.pos + 1, |c| c.is_ascii_digit());
            return Tok::Param;
        }
        let k = self.run(self.pos + 1, |c| is_ident_char(c) && c != b'$');
        if self.at(k) != b'$' {
            self.pos += 1;
            return Tok::Op;
        }
        let tag = &b[self.pos..=k];
        let close = (k + 1..b.len()).find(|&m| b[m] == b'$' && b[m..].starts_with(tag));
        self.pos = close.map_or(b.len(), |m| m + tag.len());
        Tok::Literal
    }

    /// A number: decimal with fraction/exponent, or `0x`/`0o`/`0b` with underscores.
    fn number(&mut self) {
        let k = self.pos;
        let digit = |c: u8| c.is_ascii_digit() || c == b'_';
        let radix = matches!(self.at(k + 1) | 0x20, b'x' | b'o' | b'b');
        let first = self.at(k + 2);
        if self.at(k) == b'0' && radix && (first.is_ascii_hexdigit() || first == b'_') {
            self.pos = self.run(k + 2, |c| c.is_ascii_hexdigit() || c == b'_');
            return;
        }
        let mut k = self.run(k, digit);
        if self.at(k) == b'.' && self.at(k + 1) != b'.' {
            k = self.run(k + 1, digit);
        }
        let sign = usize::from(matches!(self.at(k + 1), b'+' | b'-'));
        if self.at(k) | 0x20 == b'e' && self.at(k + 1 + sign).is_ascii_digit() {
            k = self.run(k + 1 + sign, |c| c.is_ascii_digit());
        }
        self.pos = k;
    }
}

impl Iterator for Lexer<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        if !self.skip_blank() {
            return None;
        }
        let start = self.pos;
        let c = self.b[start];
        let kind = if is_ident_start(c) {
            self.pos = self.run(start + 1, is_ident_char);
            let one = self.pos == start + 1;
            let next = self.at(self.pos);
            if one && next == b'\'' && matches!(c | 0x20, b'e' | b'b' | b'x' | b'n') {
                self.skip_quoted(b'\'', c | 0x20 == b'e');
                Tok::Literal
            } else if one && c | 0x20 == b'u' && next == b'&' && self.at(self.pos + 1) == b'\'' {
                self.pos += 1;
                self.skip_quoted(b'\'', false);
                Tok::Literal
            } else {
                Tok::Word
            }
        } else if c.is_ascii_digit() || (c == b'.' && self.at(start + 1).is_ascii_digit()) {
            self.number();
            Tok::Literal
        } else if c == b'\'' {
            self.skip_quoted(b'\'', false);
            Tok::Literal
        } else if c == b'"' {
            self.skip_quoted(b'"', false);
            Tok::QuotedIdent
        } else if c == b'$' {
            self.dollar()
        } else if is_op_char(c) {
            self.pos += 1;
            while self.pos < self.b.len() && is_op_char(self.b[self.pos]) {
                let two = &self.b[self.pos..];
                if two.starts_with(b"--") || two.starts_with(b"/*") {
                    break;
                }
                self.pos += 1;
            }
            self.trim_operator(start);
            Tok::Op
        } else {
            self.pos += 1;
            Tok::Punct
        };
        Some(Span {
            kind,
            start,
            end: self.pos,
        })
    }
}

impl Lexer<'_> {
    /// PostgreSQL's rule for an operator run: it does not end in `+` or `-` unless it holds
    /// one of ``~!@#%^&|`?`` (so `=-1` is `=` then `-1`), as the server's lexer splits it.
    fn trim_operator(&mut self, start: usize) {
        let op = &self.b[start..self.pos];
        if op.len() > 1 && !op.iter().any(|c| b"~!@#%^&|`?".contains(c)) {
            while self.pos > start + 1 && matches!(self.b[self.pos - 1], b'+' | b'-') {
                self.pos -= 1;
            }
        }
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn is_op_char(c: u8) -> bool {
    b"+-*/<>=~!@#%^&|`?".contains(&c)
}

/// The word after each `switchyard:` in a comment body (case-insensitive, blanks allowed).
fn hint_words(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    const KEY: &[u8] = b"switchyard";
    let trim = |s: &[u8]| {
        s.iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(s.len())
    };
    (0..body.len()).filter_map(move |i| {
        let rest = body.get(i..).filter(|r| hint_is(r, KEY))?;
        let rest = &rest[KEY.len()..];
        let rest = rest[trim(rest)..].strip_prefix(b":")?;
        Some(&rest[trim(rest)..])
    })
}

/// `s` starts with the word `w` (ignoring case) and no identifier character follows it.
fn hint_is(s: &[u8], w: &[u8]) -> bool {
    s.get(..w.len()).is_some_and(|p| p.eq_ignore_ascii_case(w))
        && !s.get(w.len()).is_some_and(|&c| is_ident_char(c))
}

/// Finds `switchyard: cache|no-cache` in a comment body (no-cache wins).
fn parse_cache_hint(body: &[u8]) -> Option<bool> {
    let mut found = None;
    for rest in hint_words(body) {
        if hint_is(rest, b"no-cache") {
            return Some(false);
        }
        if hint_is(rest, b"cache") {
            found = Some(true);
        }
    }
    found
}

/// Finds `switchyard: primary|replica` (case-insensitive, blanks allowed) in a comment body.
fn parse_hint(body: &[u8]) -> Option<Target> {
    let mut found = None;
    for rest in hint_words(body) {
        if hint_is(rest, b"primary") {
            return Some(Target::Primary);
        }
        if hint_is(rest, b"replica") {
            found = Some(Target::Replica);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sql` lexed and shown as `Kind:text` tokens.
    pub(crate) fn show(s: &str) -> String {
        let t: Vec<String> = Lexer::new(s)
            .map(|t| format!("{:?}:{}", t.kind, &s[t.start..t.end]))
            .collect();
        t.join(" ")
    }
    #[test]
    fn lexes_like_postgres() {
        let sql = "select a$1, $1, $$x$$, $a$ ' $a$, E'\\'', u&'x', \"q\"\"\"::int";
        let want = "Word:select Word:a$1 Punct:, Param:$1 Punct:, Literal:$$x$$ Punct:, Literal:$a$ ' $a$ Punct:, Literal:E'\\'' Punct:, Literal:u&'x' Punct:, QuotedIdent:\"q\"\"\" Punct:: Punct:: Word:int";
        assert_eq!(show(sql), want);
        assert_eq!(
            show("x=-1 a<=+b c@-d"),
            "Word:x Op:= Op:- Literal:1 Word:a Op:<= Op:+ Word:b Word:c Op:@- Word:d"
        );
        assert_eq!(
            show("a<>-- c\n1/*x/*y*/*/.5"),
            "Word:a Op:<> Literal:1 Literal:.5"
        );
        assert_eq!(
            show("1for 0b_1 1e+5x"),
            "Literal:1 Word:for Literal:0b_1 Literal:1e+5 Word:x"
        );
    }
}
