//! Pooler-side client authentication: the secrets configured for users
//! ([`UserSecret`]) and verification of what a connecting client sends, with
//! the pooler playing the PostgreSQL server's role. Sans-IO: the connection
//! code frames the protocol messages and feeds their payloads in here.
//!
//! * [`scram`]: server side of SCRAM-SHA-256 (no channel binding).
//! * [`md5`]: PostgreSQL's legacy `md5` password exchange.
//! * [`secrets`]: what Switchyard proves to servers for a user, and a user's two secrets.
//! * [`users`]: every configured user's secrets, for clients and for servers.
//! * [`fetched`]: users looked up by `auth_query`, with the time of the lookup.

pub mod fetched;
pub mod md5;
pub mod scram;
pub mod scram_client;
pub mod secrets;
pub mod users;

use std::fmt;

pub use self::fetched::{FetchedUsers, Freshness};
pub use self::scram::{ScramExchange, ScramSuccess, ScramVerifier};
pub use self::scram_client::KeyedScramClient;
pub use self::secrets::{LearntKey, SecretCell, ServerSecret, UserEntry};
pub use self::users::Users;

/// Why a client's authentication attempt failed, or why a configured secret
/// is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The client's proof/response does not match the configured secret.
    #[error("password authentication failed")]
    WrongPassword,
    /// The client sent a malformed or unsupported authentication message.
    #[error("invalid authentication message: {0}")]
    Protocol(String),
    /// A configured secret looks like a SCRAM verifier but cannot be parsed.
    #[error("invalid password verifier: {0}")]
    BadVerifier(String),
}

/// The secret configured for a user: the `password` key of a `[[users]]`
/// entry. It is one of
///
/// * a PostgreSQL SCRAM verifier
///   `SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>`
///   (as stored in `pg_authid.rolpassword`),
/// * a PostgreSQL md5 hash `md5<32 hex digits>` (`md5(password || username)`),
/// * anything else: a plaintext password.
///
/// Build it once per user with [`UserSecret::parse`] and keep it: for a
/// plaintext password, parsing derives the SCRAM verifier (4096 PBKDF2
/// iterations), so that each later SCRAM login only costs a few HMACs.
///
/// `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum UserSecret {
    /// A plaintext password, with a SCRAM verifier derived from it (random
    /// salt, 4096 iterations). Build it with [`UserSecret::plain`] or
    /// [`UserSecret::parse`] so that the two agree.
    Plain {
        password: String,
        verifier: ScramVerifier,
    },
    /// A SCRAM-SHA-256 verifier. Such a user can log in with SCRAM (or a
    /// cleartext password), not with md5.
    Scram(ScramVerifier),
    /// The 16 raw bytes of a PostgreSQL md5 hash `md5(password || username)`.
    /// Such a user can log in with md5 (or a cleartext password), not with
    /// SCRAM.
    Md5([u8; 16]),
}

impl UserSecret {
    /// Recognise the format of the `password` configured for `user`.
    ///
    /// A string that starts with `SCRAM-SHA-256$` but is not a well-formed
    /// verifier is an error ([`AuthError::BadVerifier`]) rather than a
    /// plaintext password, so that a mangled verifier is noticed at load time.
    /// `md5` followed by exactly 32 hex digits is an md5 hash; anything else
    /// is a plaintext password.
    pub fn parse(user: &str, configured: &str) -> Result<UserSecret, AuthError> {
        if configured.starts_with(scram::VERIFIER_PREFIX) {
            return ScramVerifier::parse(configured)
                .map(UserSecret::Scram)
                .map_err(|e| match e {
                    AuthError::BadVerifier(msg) => {
                        AuthError::BadVerifier(format!("user \"{user}\": {msg}"))
                    }
                    other => other,
                });
        }
        if let Some(hash) = md5::parse_md5_secret(configured) {
            return Ok(UserSecret::Md5(hash));
        }
        Ok(UserSecret::plain(configured))
    }

    /// A plaintext secret, deriving its SCRAM verifier now (random salt,
    /// 4096 iterations).
    pub fn plain(password: &str) -> UserSecret {
        UserSecret::Plain {
            password: password.to_owned(),
            verifier: ScramVerifier::generate(password),
        }
    }

    /// The SCRAM verifier to use when a client logs in with SCRAM-SHA-256.
    /// `None` for an md5 secret: an md5 hash cannot do SCRAM.
    pub fn scram_verifier(&self) -> Option<&ScramVerifier> {
        match self {
            UserSecret::Plain { verifier, .. } | UserSecret::Scram(verifier) => Some(verifier),
            UserSecret::Md5(_) => None,
        }
    }

    /// The plaintext password, if one was configured.
    pub fn plaintext(&self) -> Option<&str> {
        match self {
            UserSecret::Plain { password, .. } => Some(password),
            UserSecret::Scram(_) | UserSecret::Md5(_) => None,
        }
    }

    /// Whether the client can log in with the md5 exchange (plaintext or md5
    /// secrets).
    pub fn supports_md5(&self) -> bool {
        !matches!(self, UserSecret::Scram(_))
    }

    /// Check a password sent in cleartext (a `PasswordMessage` answering
    /// `AuthenticationCleartextPassword`; without the trailing NUL) against
    /// this secret, as PostgreSQL's `password` method does. Works for every
    /// kind of secret. For a SCRAM verifier this runs the verifier's PBKDF2
    /// iterations (like PostgreSQL does), so it costs milliseconds.
    pub fn verify_cleartext(&self, user: &str, client_password: &[u8]) -> bool {
        match self {
            UserSecret::Plain { password, .. } => {
                constant_time_eq(password.as_bytes(), client_password)
            }
            UserSecret::Md5(hash) => {
                let computed = md5::md5_digest(client_password, user.as_bytes());
                constant_time_eq(&computed, hash)
            }
            UserSecret::Scram(verifier) => verifier.verify_password(client_password),
        }
    }
}

/// Equality of two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserSecret::Plain { .. } => f.write_str("UserSecret::Plain(<redacted>)"),
            UserSecret::Scram(_) => f.write_str("UserSecret::Scram(<redacted>)"),
            UserSecret::Md5(_) => f.write_str("UserSecret::Md5(<redacted>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Produced by PostgreSQL 15.18: CREATE ROLE x PASSWORD 'secret'.
    const PG15_SCRAM_SECRET: &str = "SCRAM-SHA-256$4096:/Z1k+4D1uvKok47isBFbHA==$bBKK4I/v6itS8K4VTVz+VXAYa3w95YGuaUvJladWsAw=:xzAvxdFrn/4cyJqzKAwidvBs92bb1il7gJ+DJMUWJK8=";
    // Produced by PostgreSQL 15.18: SET password_encryption='md5';
    // CREATE ROLE alice PASSWORD 'secret'.
    const PG15_MD5_ALICE_SECRET: &str = "md54a0a68b43b6cd5cf266fa02f196e2371";

    #[test]
    fn parse_recognises_plaintext() {
        let s = UserSecret::parse("bob", "hunter2").unwrap();
        assert_eq!(s.plaintext(), Some("hunter2"));
        assert!(s.supports_md5());
        let v = s.scram_verifier().unwrap();
        assert_eq!(v.iterations, 4096);
        assert_eq!(v.salt.len(), 16);
        // The cached verifier really is derived from the plaintext.
        assert_eq!(
            *v,
            ScramVerifier::from_password("hunter2", &v.salt, v.iterations)
        );
        // A fresh random salt each time.
        let s2 = UserSecret::parse("bob", "hunter2").unwrap();
        assert_ne!(s2.scram_verifier().unwrap().salt, v.salt);
    }

    #[test]
    fn parse_recognises_scram() {
        let s = UserSecret::parse("x", PG15_SCRAM_SECRET).unwrap();
        assert!(matches!(s, UserSecret::Scram(_)));
        assert_eq!(s.plaintext(), None);
        assert!(!s.supports_md5());
        assert_eq!(s.scram_verifier().unwrap().iterations, 4096);
    }

    #[test]
    fn parse_recognises_md5() {
        let s = UserSecret::parse("alice", PG15_MD5_ALICE_SECRET).unwrap();
        assert!(matches!(s, UserSecret::Md5(_)));
        assert!(s.scram_verifier().is_none());
        assert_eq!(s.plaintext(), None);
        let upper = PG15_MD5_ALICE_SECRET
            .to_uppercase()
            .replacen("MD5", "md5", 1);
        assert_eq!(UserSecret::parse("alice", &upper).unwrap(), s);
    }

    #[test]
    fn almost_md5_is_plaintext() {
        for pw in [
            "md5",
            "md54a0a68b43b6cd5cf266fa02f196e237",   // 31 digits
            "md54a0a68b43b6cd5cf266fa02f196e23711", // 33 digits
            "md54a0a68b43b6cd5cf266fa02f196e237g",  // not hex
            "MD54a0a68b43b6cd5cf266fa02f196e2371",  // prefix is case-sensitive
        ] {
            let s = UserSecret::parse("alice", pw).unwrap();
            assert_eq!(s.plaintext(), Some(pw), "{pw}");
        }
    }

    #[test]
    fn malformed_scram_secret_is_an_error() {
        for bad in [
            "SCRAM-SHA-256$",
            "SCRAM-SHA-256$4096:c2FsdA==",
            "SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA",
            "SCRAM-SHA-256$x:c2FsdA==$bBKK4I/v6itS8K4VTVz+VXAYa3w95YGuaUvJladWsAw=:xzAvxdFrn/4cyJqzKAwidvBs92bb1il7gJ+DJMUWJK8=",
        ] {
            match UserSecret::parse("x", bad) {
                Err(AuthError::BadVerifier(msg)) => assert!(msg.contains("\"x\""), "{msg}"),
                other => panic!("{bad}: expected BadVerifier, got {other:?}"),
            }
        }
    }

    #[test]
    fn debug_does_not_leak_secrets() {
        for (user, configured, needles) in [
            ("bob", "hunter2-very-secret", vec!["hunter2"]),
            ("x", PG15_SCRAM_SECRET, vec!["bBKK4I", "xzAvxd", "/Z1k"]),
            ("alice", PG15_MD5_ALICE_SECRET, vec!["4a0a68b4", "74, 10"]),
        ] {
            let s = UserSecret::parse(user, configured).unwrap();
            let dbg = format!("{s:?} {:?}", s.scram_verifier());
            for needle in needles {
                assert!(!dbg.contains(needle), "{dbg} leaks {needle}");
            }
            if let Some(v) = s.scram_verifier() {
                for key in [v.stored_key, v.server_key] {
                    let bytes = format!("{}, {}, {}", key[0], key[1], key[2]);
                    assert!(!dbg.contains(&bytes), "{dbg} leaks a key");
                }
            }
        }
    }

    #[test]
    fn verify_cleartext_for_every_kind() {
        let plain = UserSecret::parse("x", "secret").unwrap();
        let scram = UserSecret::parse("x", PG15_SCRAM_SECRET).unwrap();
        let md5 = UserSecret::parse("alice", PG15_MD5_ALICE_SECRET).unwrap();
        assert!(plain.verify_cleartext("x", b"secret"));
        assert!(!plain.verify_cleartext("x", b"secreT"));
        assert!(!plain.verify_cleartext("x", b""));
        assert!(scram.verify_cleartext("x", b"secret"));
        assert!(!scram.verify_cleartext("x", b"wrong"));
        assert!(!scram.verify_cleartext("x", b"\xff\xfe"));
        assert!(md5.verify_cleartext("alice", b"secret"));
        assert!(!md5.verify_cleartext("alice", b"wrong"));
        // The md5 hash is salted with the user name.
        assert!(!md5.verify_cleartext("bob", b"secret"));
    }
}
