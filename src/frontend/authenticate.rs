//! Client authentication against the configured users (and those `auth_query` found):
//! SCRAM-SHA-256 (default, -PLUS over TLS), md5 or a client certificate.
//! Unknown users go through the same exchange against a dummy secret, so the answer does not
//! reveal which user names exist.

use super::client_io::{ClientIo, ReadError};
use super::Shared;
use crate::auth::scram::{Binding, ScramExchange, ScramVerifier};
use crate::auth::UserSecret;
use crate::config::{AuthMethod, HbaMethod};
use crate::net::tls::common_name;
use crate::protocol::frame::{read_cstr, HEADER_LEN};
use crate::protocol::messages::{self, PgError};
use crate::protocol::SqlState;

const SCRAM: &str = "SCRAM-SHA-256";
const SCRAM_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// Largest authentication message accepted from a client.
const MAX_AUTH_MESSAGE: usize = 10_000;

/// Why a login failed; the FATAL error to send, if the client is still there.
pub enum AuthFailure {
    Fatal(PgError),
    Gone,
}

impl From<ReadError> for AuthFailure {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Protocol(p) => AuthFailure::Fatal(p),
            ReadError::Closed | ReadError::Io(_) => AuthFailure::Gone,
        }
    }
}

fn wrong_password(user: &str) -> AuthFailure {
    AuthFailure::Fatal(PgError::fatal(
        SqlState::INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    ))
}

fn protocol(msg: &str) -> AuthFailure {
    AuthFailure::Fatal(PgError::fatal(SqlState::PROTOCOL_VIOLATION, msg))
}

/// Runs the authentication exchange; on success nothing has been written yet but the
/// exchange itself (the caller sends AuthenticationOk).
/// `method` is what an `[[hba]]` rule says (None: `auth_method`).
pub async fn authenticate(
    io: &mut ClientIo,
    shared: &Shared,
    database: &str,
    user: &str,
    method: Option<HbaMethod>,
) -> Result<(), AuthFailure> {
    let md5_wanted = match method {
        Some(HbaMethod::Cert) => return certificate(io, user),
        Some(m) => m == HbaMethod::Md5,
        None => shared.config.auth_method == AuthMethod::Md5,
    };
    let entry = shared.users.entry(database, user);
    let secret = entry.as_ref().map(|e| &e.client);
    let scram_verifier = secret.and_then(UserSecret::scram_verifier);
    let use_md5 = md5_wanted && secret.is_some_and(|s| !matches!(s, UserSecret::Scram(_)));
    if use_md5 {
        md5_exchange(io, secret, user).await
    } else {
        if secret.is_some() && scram_verifier.is_none() {
            // Only an auth_query answer can be an md5 hash here (the config refuses one).
            tracing::info!(%user, "the user's secret is an md5 hash, which cannot answer SCRAM: set auth_method (or the [[hba]] method) to \"md5\" for such users");
        }
        let (verifier, known) = match scram_verifier {
            Some(v) => (v, true),
            None => (shared.users.dummy_verifier(), false),
        };
        let cert_hash = shared
            .tls
            .as_ref()
            .filter(|_| io.stream.is_tls())
            .map(|t| t.cert_hash.as_slice());
        match scram_exchange(io, verifier, cert_hash).await? {
            Some(client_key) if known => {
                if let Some(e) = &entry {
                    e.server.learn(client_key);
                }
                Ok(())
            }
            _ => Err(wrong_password(user)),
        }
    }
}

/// `method = "cert"`: the client certificate (verified in the TLS handshake) must name the
/// user as its common name; no password is asked.
fn certificate(io: &ClientIo, user: &str) -> Result<(), AuthFailure> {
    let cn = io.stream.client_certificate().and_then(common_name);
    if cn.as_deref() == Some(user) {
        return Ok(());
    }
    let why = match cn {
        None => "no client certificate was presented".to_string(),
        Some(cn) => format!("the certificate's common name is \"{cn}\""),
    };
    Err(AuthFailure::Fatal(PgError::fatal(
        SqlState::INVALID_AUTHORIZATION,
        format!("certificate authentication failed for user \"{user}\": {why}"),
    )))
}

async fn read_password_message(io: &mut ClientIo) -> Result<bytes::BytesMut, AuthFailure> {
    let frame = io.read_frame(MAX_AUTH_MESSAGE).await?;
    if frame[0] != b'p' {
        return Err(protocol(&format!(
            "expected password response, got message type {}",
            frame[0]
        )));
    }
    Ok(frame)
}

async fn md5_exchange(
    io: &mut ClientIo,
    secret: Option<&UserSecret>,
    user: &str,
) -> Result<(), AuthFailure> {
    let salt: [u8; 4] = rand::random();
    messages::auth_md5(io.out(), salt);
    io.flush().await.map_err(|_| AuthFailure::Gone)?;
    let frame = read_password_message(io).await?;
    let (answer, _) =
        read_cstr(&frame[HEADER_LEN..]).ok_or_else(|| protocol("malformed password message"))?;
    match secret {
        Some(s) if crate::auth::md5::md5_verify(s, user, salt, answer) => Ok(()),
        _ => Err(wrong_password(user)),
    }
}

/// The ClientKey the client proved, or None for a wrong password. Over TLS,
/// SCRAM-SHA-256-PLUS is offered first, bound to `cert_hash`.
async fn scram_exchange(
    io: &mut ClientIo,
    verifier: &ScramVerifier,
    cert_hash: Option<&[u8]>,
) -> Result<Option<[u8; 32]>, AuthFailure> {
    if cert_hash.is_some() {
        messages::auth_sasl(io.out(), &[SCRAM_PLUS, SCRAM]);
    } else {
        messages::auth_sasl(io.out(), &[SCRAM]);
    }
    io.flush().await.map_err(|_| AuthFailure::Gone)?;

    let frame = read_password_message(io).await?;
    let body = &frame[HEADER_LEN..];
    let (mechanism, rest) =
        read_cstr(body).ok_or_else(|| protocol("malformed SASLInitialResponse"))?;
    let binding = match (mechanism, cert_hash) {
        (m, Some(hash)) if m == SCRAM_PLUS.as_bytes() => Binding::Required(hash),
        (m, Some(_)) if m == SCRAM.as_bytes() => Binding::Declined,
        (m, None) if m == SCRAM.as_bytes() => Binding::None,
        _ => {
            return Err(protocol(
                "client selected an invalid SASL authentication mechanism",
            ))
        }
    };
    if rest.len() < 4 {
        return Err(protocol("malformed SASLInitialResponse"));
    }
    let declared = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let data = &rest[4..];
    if declared < 0 || declared as usize != data.len() {
        return Err(protocol("malformed SASLInitialResponse: bad data length"));
    }
    let (exchange, server_first) = match ScramExchange::start_with(verifier, data, binding) {
        Ok(x) => x,
        Err(e) => return Err(protocol(&format!("malformed SCRAM message: {e}"))),
    };
    messages::auth_sasl_continue(io.out(), server_first.as_bytes());
    io.flush().await.map_err(|_| AuthFailure::Gone)?;

    let frame = read_password_message(io).await?;
    match exchange.finish(&frame[HEADER_LEN..]) {
        Ok(done) => {
            messages::auth_sasl_final(io.out(), done.server_final.as_bytes());
            Ok(Some(done.client_key))
        }
        Err(crate::auth::AuthError::WrongPassword) => Ok(None),
        Err(e) => Err(protocol(&format!("malformed SCRAM message: {e}"))),
    }
}
