//! The router's lexer and query fingerprint: one allocation-free pass over the bytes that
//! follows PostgreSQL's lexical rules (quotes, `E''` escapes, dollar quotes, nested comments,
//! `$n` parameters, numbers), finds `switchyard:` hint comments, and hashes the normalised
//! token stream (literals and parameters become one placeholder, words are lower-cased,
//! whitespace and comments vanish) into the 64-bit route-cache key. Statement splitting and
//! the keyword pre-check in `classify` use the same lexer, so the key and the classification
//! always agree on where strings, comments and statements start and end.
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

/// A token: its kind and byte range in the lexed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// Iterates over the tokens of a SQL text, skipping whitespace and comments and recording
/// any routing hint found in a comment (`primary` wins over `replica`).
pub(crate) struct Lexer<'a> {
    b: &'a [u8],
    pos: usize,
    pub hint: Option<Target>,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            b: text.as_bytes(),
            pos: 0,
            hint: None,
        }
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
    fn skip_blank(&mut self) -> bool {
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
        if let Some(t) = parse_hint(self.b.get(start..end).unwrap_or(&[])) {
            if self.hint != Some(Target::Primary) {
                self.hint = Some(t);
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
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
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
            Tok::Op
        } else {
            self.pos += 1;
            Tok::Punct
        };
        Some(Token {
            kind,
            start,
            end: self.pos,
        })
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

/// Finds `switchyard: primary|replica` (case-insensitive, blanks allowed) in a comment body.
fn parse_hint(body: &[u8]) -> Option<Target> {
    const KEY: &[u8] = b"switchyard";
    let trim = |s: &[u8]| {
        s.iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(s.len())
    };
    let is = |s: &[u8], w: &[u8]| {
        s.get(..w.len()).is_some_and(|p| p.eq_ignore_ascii_case(w))
            && !s.get(w.len()).is_some_and(|&c| is_ident_char(c))
    };
    let mut found = None;
    for i in 0..body.len() {
        let Some(rest) = body.get(i..).filter(|r| is(r, KEY)) else {
            continue;
        };
        let rest = &rest[KEY.len()..];
        let Some(rest) = rest[trim(rest)..].strip_prefix(b":") else {
            continue;
        };
        let rest = &rest[trim(rest)..];
        if is(rest, b"primary") {
            return Some(Target::Primary);
        }
        if is(rest, b"replica") {
            found = Some(Target::Replica);
        }
    }
    found
}

/// The cache key of a query text and the routing hint found in its comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub hash: u64,
    pub hint: Option<Target>,
}

const K: u64 = 0x517c_c1b7_2722_0a95;

#[inline]
fn mix(h: u64, x: u64) -> u64 {
    (h.rotate_left(5) ^ x).wrapping_mul(K)
}

/// Hashes `bytes` eight at a time, ASCII-lower-cased if `lower`.
#[inline]
fn mix_bytes(mut h: u64, bytes: &[u8], lower: bool) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if lower {
            w.make_ascii_lowercase();
        }
        h = mix(h, u64::from_le_bytes(w));
    }
    let rem = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rem.len()].copy_from_slice(rem);
    if lower {
        w.make_ascii_lowercase();
    }
    mix(h, u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 56))
}

/// Fingerprints `sql`: `WHERE aid = 1` and `where  AID = $7 -- x` hash alike; `FROM t` and
/// `FROM u`, or `"T"` and `t`, do not. The hint is part of the hash.
pub fn fingerprint(sql: &str) -> Fingerprint {
    let b = sql.as_bytes();
    let mut lx = Lexer::new(sql);
    let mut h: u64 = 0;
    let mut n: u64 = 0;
    for t in lx.by_ref() {
        n += 1;
        let text = &b[t.start..t.end];
        h = match t.kind {
            Tok::Word => mix_bytes(mix(h, 1), text, true),
            Tok::QuotedIdent => mix_bytes(mix(h, 2), text, false),
            Tok::Literal | Tok::Param => mix(h, 3),
            Tok::Op => mix_bytes(mix(h, 4), text, false),
            Tok::Punct => mix(h, 5 ^ (u64::from(text[0]) << 8)),
        };
    }
    let hint = lx.hint;
    let tag = match hint {
        None => 0,
        Some(Target::Primary) => 1,
        Some(Target::Replica) => 2,
    };
    Fingerprint {
        hash: fmix64(mix(mix(h, n), tag)),
        hint,
    }
}

/// MurmurHash3's finaliser: spreads every input bit over the whole key.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(s: &str) -> u64 {
        fingerprint(s).hash
    }

    /// `sql` lexed and shown as `Kind:text` tokens.
    fn show(s: &str) -> String {
        let t: Vec<String> = Lexer::new(s)
            .map(|t| format!("{:?}:{}", t.kind, &s[t.start..t.end]))
            .collect();
        t.join(" ")
    }

    #[test]
    fn literals_and_params_share_a_key() {
        let a = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;";
        assert_eq!(
            fp(a),
            fp("select  ABALANCE from pgbench_accounts\n where aid=2;")
        );
        assert_eq!(
            fp(a),
            fp("SELECT abalance FROM pgbench_accounts WHERE aid = $1;")
        );
        assert_eq!(fp("WHERE aid = 1"), fp("WHERE aid = 2"));
        assert_eq!(fp("SELECT 'a'"), fp("SELECT 'b'"));
        assert_eq!(fp("SELECT $1"), fp("SELECT $2"));
        assert_eq!(fp("SELECT E'\\'x'"), fp("SELECT $q$ it's $q$"));
        assert_eq!(fp("SELECT 1.5e-3, 0x1F"), fp("SELECT 7, 8 /* note */"));
        assert_eq!(fp("SELECT 'a' -- x"), fp("SELECT 'a -- x'"));
    }

    #[test]
    fn structure_changes_the_key() {
        let pairs = [
            ("SELECT * FROM t", "SELECT * FROM u"),
            ("SELECT * FROM t", "SELECT * FROM \"T\""),
            ("SELECT a b", "SELECT ab"),
            ("SELECT 1", "SELECT 1 FOR UPDATE"),
            ("SELECT a <> b", "SELECT a < > b"),
            ("SELECT 1", "SELECT 1;"),
            ("SELECT $1, $2", "SELECT $1"),
            ("SELECT 1", "/* switchyard: replica */ SELECT 1"),
            ("SELECT '--' FOR UPDATE", "SELECT '-- FOR UPDATE'"),
        ];
        for (a, b) in pairs {
            assert_ne!(fp(a), fp(b), "{a} / {b}");
        }
    }

    #[test]
    fn lexes_like_postgres() {
        let sql = "select a$1, $1, $$x$$, $a$ ' $a$, E'\\'', u&'x', \"q\"\"\"::int";
        let want = "Word:select Word:a$1 Punct:, Param:$1 Punct:, Literal:$$x$$ Punct:, Literal:$a$ ' $a$ Punct:, Literal:E'\\'' Punct:, Literal:u&'x' Punct:, QuotedIdent:\"q\"\"\" Punct:: Punct:: Word:int";
        assert_eq!(show(sql), want);
        assert_eq!(
            show("a<>-- c\n1/*x/*y*/*/.5"),
            "Word:a Op:<> Literal:1 Literal:.5"
        );
        assert_eq!(
            show("1for 0b_1 1e+5x"),
            "Literal:1 Word:for Literal:0b_1 Literal:1e+5 Word:x"
        );
    }

    #[test]
    fn hints() {
        let h = |s: &str| fingerprint(s).hint;
        assert_eq!(
            h("/* switchyard: replica */ SELECT 1"),
            Some(Target::Replica)
        );
        assert_eq!(h("SELECT 1 /*SwitchYard:PRIMARY*/"), Some(Target::Primary));
        assert_eq!(
            h("SELECT 1 -- switchyard :  replica"),
            Some(Target::Replica)
        );
        assert_eq!(
            h("/* app=x, switchyard: replica */ SELECT 1"),
            Some(Target::Replica)
        );
        let both = "/* switchyard: replica */ SELECT 1 /* switchyard: primary */";
        assert_eq!(h(both), Some(Target::Primary));
        let none = "SELECT '/* switchyard: replica */'|/* switchyard: replicas */|/* switchyard replica */|/* switchyard: ";
        for s in none.split('|') {
            assert_eq!(h(s), None, "{s}");
        }
    }

    #[test]
    fn unterminated_and_garbage_input() {
        let cases = r#"'abc|"abc|$a$ abc|/* abc /* x */|E'\|$|$1|0x|1e|u&|e'|--|/*|$$|.|é'|0b_|U&"#;
        for s in cases.split('|') {
            let _ = fingerprint(s);
            let _: Vec<_> = Lexer::new(s).collect();
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300 {
            let bytes: Vec<u8> = (0..200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"'\"$-/*eE1 ;(\\x\xff"[(x % 15) as usize]
                })
                .collect();
            let _ = fingerprint(&String::from_utf8_lossy(&bytes));
        }
    }
}
