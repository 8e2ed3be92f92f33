//! Server side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL speaks it:
//! SCRAM verifiers ([`ScramVerifier`], the `SCRAM-SHA-256$...` format of
//! `pg_authid`) and the two-step exchange with a connecting client
//! ([`ScramExchange`]), with `tls-server-end-point` channel binding
//! (SCRAM-SHA-256-PLUS) when the client connection is TLS ([`Binding`]).
//!
//! Known limitation: PostgreSQL and libpq apply SASLprep (RFC 4013) to
//! passwords before hashing them. This module does not, which is exact for
//! ASCII passwords (SASLprep leaves them unchanged) but not for every
//! non-ASCII password (e.g. ones that NFKC normalisation changes). A verifier
//! produced by PostgreSQL itself is always exact.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{constant_time_eq, AuthError};

/// The mechanism name, as listed in `AuthenticationSASL`.
pub const MECHANISM: &str = "SCRAM-SHA-256";
/// How a verifier string starts.
pub const VERIFIER_PREFIX: &str = "SCRAM-SHA-256$";
/// PBKDF2 iterations used for generated verifiers (PostgreSQL's default).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// Salt length used for generated verifiers (PostgreSQL's default).
pub const DEFAULT_SALT_LEN: usize = 16;
/// Random bytes in the server's part of the nonce (as PostgreSQL).
const SERVER_NONCE_LEN: usize = 18;
/// SHA-256's block size, for keying HMAC.
const SHA256_BLOCK_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// A SCRAM-SHA-256 verifier: what the server stores instead of a password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramVerifier {
    /// Parse PostgreSQL's format
    /// `SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>`.
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let bad = |msg: &str| AuthError::BadVerifier(msg.to_owned());
        let rest = s
            .strip_prefix(VERIFIER_PREFIX)
            .ok_or_else(|| bad("does not start with SCRAM-SHA-256$"))?;
        let (iter_salt, keys) = rest
            .split_once('$')
            .ok_or_else(|| bad("expected <iterations>:<salt>$<StoredKey>:<ServerKey>"))?;
        let (iterations, salt) = iter_salt
            .split_once(':')
            .ok_or_else(|| bad("expected <iterations>:<salt> before the second '$'"))?;
        let (stored_key, server_key) = keys
            .split_once(':')
            .ok_or_else(|| bad("expected <StoredKey>:<ServerKey> after the second '$'"))?;

        let iterations: u32 = iterations
            .parse()
            .map_err(|_| bad("iteration count is not a number"))?;
        if iterations == 0 {
            return Err(bad("iteration count is zero"));
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| bad("salt is not valid base64"))?;
        if salt.is_empty() {
            return Err(bad("salt is empty"));
        }
        let key = |b64: &str, what: &str| -> Result<[u8; 32], AuthError> {
            STANDARD
                .decode(b64)
                .ok()
                .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
                .ok_or_else(|| AuthError::BadVerifier(format!("{what} is not 32 bytes of base64")))
        };
        Ok(ScramVerifier {
            iterations,
            salt,
            stored_key: key(stored_key, "StoredKey")?,
            server_key: key(server_key, "ServerKey")?,
        })
    }

    /// Format in PostgreSQL's `pg_authid` format (the inverse of
    /// [`ScramVerifier::parse`]). The result is a secret: do not log it.
    pub fn to_verifier_string(&self) -> String {
        format!(
            "{VERIFIER_PREFIX}{}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key),
        )
    }

    /// Derive the verifier of `password` with the given salt and iteration
    /// count (an iteration count of 0 is taken as 1). Costs `iterations`
    /// HMACs. See the module comment about SASLprep.
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Self {
        Self::from_password_bytes(password.as_bytes(), salt, iterations)
    }

    /// Derive a verifier with a fresh random 16-byte salt and 4096 iterations,
    /// as PostgreSQL does for `CREATE ROLE ... PASSWORD`.
    pub fn generate(password: &str) -> Self {
        let mut salt = [0u8; DEFAULT_SALT_LEN];
        rand::thread_rng().fill_bytes(&mut salt);
        Self::from_password(password, &salt, DEFAULT_ITERATIONS)
    }

    /// Whether `password` (e.g. sent in cleartext) matches this verifier.
    /// Runs the verifier's PBKDF2 iterations.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let candidate = Self::from_password_bytes(password, &self.salt, self.iterations);
        constant_time_eq(&candidate.stored_key, &self.stored_key)
            & constant_time_eq(&candidate.server_key, &self.server_key)
    }

    fn from_password_bytes(password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let iterations = iterations.max(1);
        let salted_password = hi(password, salt, iterations);
        let client_key = hmac(&salted_password, &[b"Client Key"]);
        ScramVerifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted_password, &[b"Server Key"]),
        }
    }
}

impl fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .finish_non_exhaustive()
    }
}

/// A SCRAM exchange after the client-first-message: waiting for the
/// client-final-message.
pub struct ScramExchange {
    stored_key: [u8; 32],
    server_key: [u8; 32],
    /// The `c=` value the client must send: base64 of its gs2 header (and, with channel
    /// binding, of the certificate hash).
    expected_cbind: String,
    /// Client nonce followed by server nonce.
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

/// Channel binding as the mechanism the client chose allows it.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'a> {
    /// No TLS: SCRAM-SHA-256 only (gs2 flags `n` and `y`).
    None,
    /// TLS, SCRAM-SHA-256-PLUS offered but the client chose SCRAM-SHA-256: flag `n` only (a
    /// `y` means the client thinks the server cannot bind: a downgrade).
    Declined,
    /// The client chose SCRAM-SHA-256-PLUS: flag `p=tls-server-end-point`, bound to this
    /// hash of the server's certificate.
    Required(&'a [u8]),
}

/// The `c=` value that matches the client's gs2 flag under `binding`.
fn expected_cbind(flag: &str, binding: Binding<'_>) -> Result<String, AuthError> {
    match (flag, binding) {
        ("n", Binding::None | Binding::Declined) => Ok("biws".into()), // base64("n,,")
        ("y", Binding::None) => Ok("eSws".into()),                     // base64("y,,")
        ("y", _) => Err(protocol(
            "SCRAM channel binding negotiation error: the client supports channel binding \
             but thinks the server does not, yet it does",
        )),
        ("p=tls-server-end-point", Binding::Required(hash)) => {
            let mut data = b"p=tls-server-end-point,,".to_vec();
            data.extend_from_slice(hash);
            Ok(STANDARD.encode(data))
        }
        (f, Binding::Required(_)) if !f.starts_with("p=") => Err(protocol(
            "SCRAM-SHA-256-PLUS was selected, but the client did not ask for channel binding",
        )),
        (f, _) if f.starts_with("p=") => Err(protocol(
            "unsupported channel binding type (only tls-server-end-point), or channel \
             binding without SCRAM-SHA-256-PLUS",
        )),
        _ => Err(protocol("malformed client-first-message: bad gs2 flag")),
    }
}

/// A successful SCRAM exchange.
pub struct ScramSuccess {
    /// The server-final-message (`v=...`), to send in `AuthenticationSASLFinal`.
    pub server_final: String,
    /// The client's ClientKey (ClientProof XOR ClientSignature), proven to
    /// match the verifier's StoredKey. With it the pooler can in turn log in
    /// with SCRAM to a server holding the same verifier. A secret.
    pub client_key: [u8; 32],
}

impl ScramExchange {
    /// Start the exchange. `client_first` is the payload of the client's
    /// `SASLInitialResponse` after the mechanism name and length, i.e. the
    /// `n,,n=...,r=...` message. Returns the exchange and the
    /// server-first-message to send in `AuthenticationSASLContinue`.
    ///
    /// The `n=` user name is ignored, as PostgreSQL does (libpq sends an
    /// empty one): the user is the one of the startup message.
    pub fn start(
        verifier: &ScramVerifier,
        client_first: &[u8],
    ) -> Result<(ScramExchange, String), AuthError> {
        Self::start_with(verifier, client_first, Binding::None)
    }

    /// [`ScramExchange::start`] where channel binding may be in play: see [`Binding`].
    pub fn start_with(
        verifier: &ScramVerifier,
        client_first: &[u8],
        binding: Binding<'_>,
    ) -> Result<(ScramExchange, String), AuthError> {
        let msg = text(client_first, "client-first-message")?;

        // gs2-header: gs2-cbind-flag "," [ authzid ] ","
        let (cbind_flag, rest) = msg
            .split_once(',')
            .ok_or_else(|| protocol("malformed client-first-message: no gs2 header"))?;
        let expected_cbind = expected_cbind(cbind_flag, binding)?;
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or_else(|| protocol("malformed client-first-message: truncated gs2 header"))?;
        if authzid.starts_with("a=") {
            return Err(protocol("authorization identity (a=) is not supported"));
        } else if !authzid.is_empty() {
            return Err(protocol("malformed client-first-message: bad gs2 header"));
        }

        // client-first-message-bare: [reserved-mext ","] username "," nonce ["," extensions]
        let mut attrs = bare.split(',');
        match attr(attrs.next())? {
            (b'm', _) => {
                return Err(protocol("client requires an unsupported SCRAM extension"));
            }
            (b'n', _username) => {}
            _ => return Err(protocol("client-first-message: expected attribute 'n'")),
        }
        let client_nonce = expect_attr(attrs.next(), b'r', "client-first-message")?;
        if client_nonce.is_empty() {
            return Err(protocol("client-first-message: empty nonce"));
        }
        if !client_nonce.bytes().all(is_printable) {
            return Err(protocol("client-first-message: non-printable nonce"));
        }
        // Optional extensions: none are supported, so they are ignored.
        for ext in attrs {
            attr(Some(ext))?;
        }

        let mut server_nonce = [0u8; SERVER_NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut server_nonce);
        let nonce = format!("{client_nonce}{}", STANDARD.encode(server_nonce));
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&verifier.salt),
            verifier.iterations
        );

        let exchange = ScramExchange {
            stored_key: verifier.stored_key,
            server_key: verifier.server_key,
            expected_cbind,
            nonce,
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
        };
        Ok((exchange, server_first))
    }

    /// The server-first-message returned by [`ScramExchange::start`].
    pub fn server_first(&self) -> &str {
        &self.server_first
    }

    /// Finish the exchange. `client_final` is the payload of the client's
    /// `SASLResponse`. On success, returns the server-final-message to send in
    /// `AuthenticationSASLFinal` (and the client's ClientKey); a wrong
    /// password gives [`AuthError::WrongPassword`], a malformed message
    /// [`AuthError::Protocol`].
    pub fn finish(self, client_final: &[u8]) -> Result<ScramSuccess, AuthError> {
        const WHAT: &str = "client-final-message";
        let msg = text(client_final, WHAT)?;

        // channel-binding "," nonce ["," extensions] "," proof
        let mut parts = msg.split(',');
        let cbind = expect_attr(parts.next(), b'c', WHAT)?;
        if cbind != self.expected_cbind {
            return Err(protocol(
                "client-final-message: channel binding does not match the gs2 header",
            ));
        }
        let nonce = expect_attr(parts.next(), b'r', WHAT)?;
        if nonce != self.nonce {
            return Err(protocol("client-final-message: nonce mismatch"));
        }
        let mut proof_b64 = None;
        for part in parts {
            if proof_b64.is_some() {
                return Err(protocol("client-final-message: data after the proof"));
            }
            if let (b'p', value) = attr(Some(part))? {
                proof_b64 = Some(value);
            }
        }
        let proof_b64 =
            proof_b64.ok_or_else(|| protocol("client-final-message: missing proof (p=)"))?;
        let without_proof = msg
            .strip_suffix(proof_b64)
            .and_then(|m| m.strip_suffix(",p="))
            .ok_or_else(|| protocol("client-final-message: malformed proof"))?;
        let proof: [u8; 32] = STANDARD
            .decode(proof_b64)
            .ok()
            .and_then(|p| <[u8; 32]>::try_from(p.as_slice()).ok())
            .ok_or_else(|| protocol("client-final-message: proof is not 32 bytes of base64"))?;

        let auth_message = [
            self.client_first_bare.as_bytes(),
            b",",
            self.server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = hmac(&self.stored_key, &auth_message);
        let mut client_key = proof;
        xor_into(&mut client_key, &client_signature);
        if !constant_time_eq(&Sha256::digest(client_key), &self.stored_key) {
            return Err(AuthError::WrongPassword);
        }
        let server_signature = hmac(&self.server_key, &auth_message);
        Ok(ScramSuccess {
            server_final: format!("v={}", STANDARD.encode(server_signature)),
            client_key,
        })
    }
}

impl fmt::Debug for ScramExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramExchange")
            .field("server_first", &self.server_first)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ScramSuccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSuccess")
            .field("server_final", &self.server_final)
            .finish_non_exhaustive()
    }
}

pub(super) fn protocol(msg: &str) -> AuthError {
    AuthError::Protocol(msg.to_owned())
}

/// The message as text: UTF-8 without NUL bytes.
pub(super) fn text<'a>(msg: &'a [u8], what: &str) -> Result<&'a str, AuthError> {
    if msg.is_empty() {
        return Err(AuthError::Protocol(format!("empty {what}")));
    }
    let s = std::str::from_utf8(msg)
        .map_err(|_| AuthError::Protocol(format!("{what} is not valid UTF-8")))?;
    if s.contains('\0') {
        return Err(AuthError::Protocol(format!("{what} contains a NUL byte")));
    }
    Ok(s)
}

/// Split an `x=value` attribute into its name and value.
pub(super) fn attr(part: Option<&str>) -> Result<(u8, &str), AuthError> {
    let part = part.ok_or_else(|| protocol("SCRAM message truncated: missing attribute"))?;
    match part.as_bytes() {
        [name, b'=', ..] if name.is_ascii_alphabetic() => Ok((*name, part.get(2..).unwrap_or(""))),
        _ => Err(protocol("malformed SCRAM attribute")),
    }
}

/// The value of the next attribute, which must be called `name`.
fn expect_attr<'a>(part: Option<&'a str>, name: u8, what: &str) -> Result<&'a str, AuthError> {
    match attr(part) {
        Ok((n, value)) if n == name => Ok(value),
        _ => Err(AuthError::Protocol(format!(
            "{what}: expected attribute '{}'",
            char::from(name)
        ))),
    }
}

/// RFC 5802 `printable`: %x21-2B / %x2D-7E (visible ASCII except ',').
fn is_printable(b: u8) -> bool {
    matches!(b, 0x21..=0x2b | 0x2d..=0x7e)
}

/// HMAC-SHA-256 keyed with `key`. Built with the infallible constructor: a
/// key of exactly the block size is used as is, and zero-padding a shorter
/// key (or hashing a longer one first) is what HMAC does anyway (RFC 2104).
fn hmac_with_key(key: &[u8]) -> HmacSha256 {
    let mut block = [0u8; SHA256_BLOCK_LEN];
    if key.len() > SHA256_BLOCK_LEN {
        let digest = Sha256::digest(key);
        block
            .iter_mut()
            .zip(digest.iter())
            .for_each(|(b, d)| *b = *d);
    } else {
        block.iter_mut().zip(key).for_each(|(b, k)| *b = *k);
    }
    <HmacSha256 as KeyInit>::new(&block.into())
}

pub(super) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = hmac_with_key(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Hi() of RFC 5802: PBKDF2-HMAC-SHA-256 with a single output block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let prf = hmac_with_key(password);
    let mut mac = prf.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        let mut mac = prf.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        xor_into(&mut out, &u);
    }
    out
}

pub(super) fn xor_into(acc: &mut [u8; 32], other: &[u8; 32]) {
    acc.iter_mut().zip(other).for_each(|(a, b)| *a ^= b);
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
