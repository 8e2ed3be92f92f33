//! The query fingerprint: the tokens of the one lexer ([`super::lexer`]) hashed in normalised
//! form (literals and parameters become one placeholder, words are lower-cased, whitespace
//! and comments vanish) into the 64-bit route-cache key, with the routing hint found in the
//! query's comments.

use super::lexer::{Lexer, Tok};
use super::Target;

/// The cache key of a query text and the routing hint found in its comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub hash: u64,
    pub hint: Option<Target>,
    /// `switchyard: cache` (true) or `switchyard: no-cache` (false).
    pub cache_hint: Option<bool>,
    /// A string literal reads `now`, `today`, `tomorrow` or `yesterday`: as a date or time
    /// it is the moment the query runs, so the result must not be cached.
    pub time_word: bool,
}

/// Whether a string literal (as written, quotes included) is one of the date/time input
/// words that mean "when the query runs".
pub fn is_time_word_literal(lit: &[u8]) -> bool {
    if lit.len() > 24 {
        return false;
    }
    let body = match lit {
        [b'e' | b'E', b'\'', rest @ ..] | [b'\'', rest @ ..] => rest.strip_suffix(b"'"),
        [b'$', ..] => {
            let open = lit.iter().skip(1).position(|&c| c == b'$').map(|p| p + 2);
            open.and_then(|o| lit.get(o..lit.len().saturating_sub(o)))
        }
        _ => None,
    };
    let Some(body) = body else {
        return false;
    };
    let word = body.trim_ascii();
    [&b"now"[..], b"today", b"tomorrow", b"yesterday"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
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
    let mut time_word = false;
    for t in lx.by_ref() {
        n += 1;
        let text = &b[t.start..t.end];
        h = match t.kind {
            Tok::Word => mix_bytes(mix(h, 1), text, true),
            Tok::QuotedIdent => mix_bytes(mix(h, 2), text, false),
            Tok::Literal => {
                time_word |= text.len() <= 24 && is_time_word_literal(text);
                mix(h, 3)
            }
            Tok::Param => mix(h, 3),
            Tok::Op => mix_bytes(mix(h, 4), text, false),
            Tok::Punct => mix(h, 5 ^ (u64::from(text[0]) << 8)),
        };
    }
    let hint = lx.hint;
    let tag = match hint {
        None => 0,
        Some(Target::Primary) => 1,
        Some(Target::Replica) => 2,
    } + match lx.cache_hint {
        None => 0,
        Some(true) => 4,
        Some(false) => 8,
    };
    Fingerprint {
        hash: fmix64(mix(mix(h, n), tag)),
        hint,
        cache_hint: lx.cache_hint,
        time_word,
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
    fn time_words_and_cache_hints() {
        let f = fingerprint("SELECT * FROM t WHERE d > ' Now '::date /* switchyard: cache */");
        assert!(f.time_word);
        assert_eq!(f.cache_hint, Some(true));
        assert!(fingerprint("SELECT $$today$$::date").time_word);
        assert!(fingerprint("SELECT E'YESTERDAY'").time_word);
        assert!(!fingerprint("SELECT 'known', 'nowhere', now").time_word);
        let n = fingerprint("SELECT 1 /* switchyard: cache */ -- switchyard: no-cache");
        assert_eq!(n.cache_hint, Some(false));
        assert_ne!(n.hash, fingerprint("SELECT 1").hash);
        assert_eq!(fingerprint("SELECT 1").cache_hint, None);
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
            let _: Vec<_> = super::super::lexer::Lexer::new(s).collect();
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
