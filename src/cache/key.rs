//! Cache keys: who asks (the login user; `SET ROLE` and every other setting are in the
//! settings digest), the digest of the session's settings, and the request's key bytes.

use super::store::Key;
use std::hash::{Hash, Hasher};

/// A 128-bit digest of a session's settings (two independent 64-bit hashes).
pub fn settings_digest(settings: &impl Hash) -> [u8; 16] {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    let mut b = std::collections::hash_map::DefaultHasher::new();
    b.write_u64(0x5eed_5eed_5eed_5eed);
    settings.hash(&mut a);
    settings.hash(&mut b);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.finish().to_le_bytes());
    out[8..].copy_from_slice(&b.finish().to_le_bytes());
    out
}

/// The key of a request: `request` is its key bytes (a whole Query frame, or an extended
/// execution with names replaced by what they stand for).
pub fn request_key(user: &str, settings: &[u8; 16], query: &[u8]) -> Key {
    let mut bytes = Vec::with_capacity(user.len() + 1 + 16 + query.len());
    bytes.extend_from_slice(user.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(settings);
    bytes.extend_from_slice(query);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(&bytes);
    Key {
        hash: h.finish(),
        bytes: bytes.into_boxed_slice(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_settings_and_text_all_count() {
        let s1 = settings_digest(&vec![("search_path", "a")]);
        let s2 = settings_digest(&vec![("search_path", "b")]);
        assert_ne!(s1, s2);
        let k = request_key("u", &s1, b"Qx");
        assert_eq!(k, request_key("u", &s1, b"Qx"));
        assert_ne!(k, request_key("v", &s1, b"Qx"));
        assert_ne!(k, request_key("u", &s2, b"Qx"));
        assert_ne!(k, request_key("u", &s1, b"Qy"));
        assert_ne!(request_key("ab", &s1, b"c"), request_key("a", &s1, b"bc"));
    }
}
