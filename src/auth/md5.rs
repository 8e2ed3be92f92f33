//! PostgreSQL's legacy `md5` password exchange, server side: the stored form
//! `md5` + hex(md5(password + user)), the response a client computes from a
//! 4-byte salt, and checking that response against a [`UserSecret`].

use ::md5::{Digest, Md5};
use rand::RngCore;

use super::{constant_time_eq, UserSecret};

/// The stored form of a password: `"md5"` + hex(md5(password + user)), as in
/// `pg_authid.rolpassword` under `password_encryption = md5`.
pub fn md5_hash(user: &str, password: &str) -> String {
    format!(
        "md5{}",
        hex(&md5_digest(password.as_bytes(), user.as_bytes()))
    )
}

/// What a client sends in its `PasswordMessage` for `salt`, given the stored
/// hash (with or without its `md5` prefix): `"md5"` +
/// hex(md5(hex(md5(password + user)) + salt)).
pub fn md5_response(stored_hash: &str, salt: [u8; 4]) -> String {
    let hex_hash = stored_hash.strip_prefix("md5").unwrap_or(stored_hash);
    salted_response(hex_hash.to_ascii_lowercase().as_bytes(), salt)
}

/// Check a client's md5 response (the `PasswordMessage` payload without its
/// trailing NUL) for `salt` against `secret`. Works for plaintext and md5
/// secrets; always false for a SCRAM verifier, which cannot do md5. `user`
/// is the user name of the startup message (the md5 hash is salted with it).
pub fn md5_verify(secret: &UserSecret, user: &str, salt: [u8; 4], client_response: &[u8]) -> bool {
    let digest = match secret {
        UserSecret::Plain { password, .. } => md5_digest(password.as_bytes(), user.as_bytes()),
        UserSecret::Md5(digest) => *digest,
        UserSecret::Scram(_) => return false,
    };
    let expected = salted_response(hex(&digest).as_bytes(), salt);
    constant_time_eq(expected.as_bytes(), client_response)
}

/// A random salt for `AuthenticationMD5Password`.
pub fn generate_salt() -> [u8; 4] {
    let mut salt = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

/// md5(password + user), raw.
pub(super) fn md5_digest(password: &[u8], user: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(password);
    md5.update(user);
    md5.finalize().into()
}

/// The raw hash of a configured `md5<32 hex digits>` secret, or `None` when
/// `configured` is not of that form (then it is a plaintext password).
pub(super) fn parse_md5_secret(configured: &str) -> Option<[u8; 16]> {
    let hex = configured.strip_prefix("md5")?;
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *byte = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}

fn salted_response(hex_hash: &[u8], salt: [u8; 4]) -> String {
    let mut md5 = Md5::new();
    md5.update(hex_hash);
    md5.update(salt);
    format!("md5{}", hex(&md5.finalize()))
}

fn nibble(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::ScramVerifier;
    use super::*;
    use postgres_protocol::authentication::md5_hash as client_md5_response;

    // Produced by PostgreSQL 15.18: SET password_encryption = 'md5';
    // CREATE ROLE alice PASSWORD 'secret'; SELECT rolpassword ...
    const PG15_ALICE_SECRET: &str = "md54a0a68b43b6cd5cf266fa02f196e2371";

    #[test]
    fn md5_hash_matches_postgres() {
        assert_eq!(md5_hash("alice", "secret"), PG15_ALICE_SECRET);
        assert_eq!(
            md5_hash("alice", "secret"),
            postgres_protocol::password::md5(b"secret", "alice")
        );
        assert_ne!(md5_hash("bob", "secret"), PG15_ALICE_SECRET);
    }

    #[test]
    fn md5_response_matches_client() {
        let salt = [0x2a, 0x3d, 0x8f, 0xe0];
        let expected = client_md5_response(b"alice", b"secret", salt);
        assert_eq!(md5_response(PG15_ALICE_SECRET, salt), expected);
        assert_eq!(md5_response(&PG15_ALICE_SECRET[3..], salt), expected);
        assert_eq!(
            md5_response(&PG15_ALICE_SECRET.to_uppercase()[3..], salt),
            expected
        );
        // The client library's own test vector.
        assert_eq!(
            md5_response(&md5_hash("md5_user", "password"), salt),
            "md562af4dd09bbb41884907a838a3233294"
        );
    }

    #[test]
    fn md5_verify_plain_and_md5_secrets() {
        let plain = UserSecret::parse("alice", "secret").unwrap();
        let hashed = UserSecret::parse("alice", PG15_ALICE_SECRET).unwrap();
        for salt in [
            [0, 0, 0, 0],
            [1, 2, 3, 4],
            [0xff, 0xfe, 0x00, 0x80],
            generate_salt(),
        ] {
            let right = client_md5_response(b"alice", b"secret", salt);
            let wrong = client_md5_response(b"alice", b"Secret", salt);
            let other_user = client_md5_response(b"bob", b"secret", salt);
            for secret in [&plain, &hashed] {
                assert!(md5_verify(secret, "alice", salt, right.as_bytes()));
                assert!(!md5_verify(secret, "alice", salt, wrong.as_bytes()));
                assert!(!md5_verify(secret, "alice", salt, other_user.as_bytes()));
                // Replayed with another salt.
                let other_salt = [salt[0] ^ 1, salt[1], salt[2], salt[3]];
                assert!(!md5_verify(secret, "alice", other_salt, right.as_bytes()));
            }
            // A plaintext secret is salted with whichever user logs in.
            let bob = client_md5_response(b"bob", b"secret", salt);
            assert!(md5_verify(&plain, "bob", salt, bob.as_bytes()));
            // An md5 secret is bound to the user it was made for.
            assert!(!md5_verify(&hashed, "bob", salt, bob.as_bytes()));
        }
    }

    #[test]
    fn md5_verify_is_false_for_scram() {
        let scram = UserSecret::Scram(ScramVerifier::generate("secret"));
        let salt = [1, 2, 3, 4];
        let right = client_md5_response(b"alice", b"secret", salt);
        assert!(!md5_verify(&scram, "alice", salt, right.as_bytes()));
    }

    #[test]
    fn malformed_md5_responses_are_rejected() {
        let secret = UserSecret::parse("alice", "secret").unwrap();
        let salt = [9, 8, 7, 6];
        let right = client_md5_response(b"alice", b"secret", salt);
        let mut bad: Vec<Vec<u8>> = vec![
            vec![],
            b"md5".to_vec(),
            right.as_bytes()[3..].to_vec(),
            right.to_uppercase().into_bytes(),
            format!("{right}\0").into_bytes(),
            format!("{right}0").into_bytes(),
            vec![0xff; 35],
            b"secret".to_vec(),
        ];
        bad.extend((0..right.len()).map(|i| right.as_bytes()[..i].to_vec()));
        for b in bad {
            assert!(
                !md5_verify(&secret, "alice", salt, &b),
                "{}",
                String::from_utf8_lossy(&b)
            );
        }
        assert!(md5_verify(&secret, "alice", salt, right.as_bytes()));
    }

    #[test]
    fn md5_secret_parsing() {
        let raw = parse_md5_secret(PG15_ALICE_SECRET).unwrap();
        assert_eq!(format!("md5{}", hex(&raw)), PG15_ALICE_SECRET);
        assert_eq!(raw, md5_digest(b"secret", b"alice"));
        assert_eq!(parse_md5_secret("md5"), None);
        assert_eq!(parse_md5_secret(&PG15_ALICE_SECRET[..34]), None);
        assert_eq!(parse_md5_secret(&format!("{PG15_ALICE_SECRET}0")), None);
        assert_eq!(parse_md5_secret(&PG15_ALICE_SECRET.replace('a', "x")), None);
        // 32 bytes but multi-byte UTF-8: not hex, and no panic.
        assert_eq!(parse_md5_secret(&format!("md5{}", "é".repeat(16))), None);
        assert_eq!(parse_md5_secret(&format!("md5{}", "+1".repeat(16))), None);
    }
}
