//! SCRAM-SHA-256 toward a server, with what Switchyard holds for the user: the plaintext
//! password (postgres-protocol's client), or only the verifier plus the ClientKey learnt from
//! a client's login ([`KeyedScramClient`]).

use crate::auth::{KeyedScramClient, ServerSecret};
use postgres_protocol::authentication::sasl::{
    ChannelBinding, ScramSha256, SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
};

/// Why the exchange cannot go on: no secret that fits, or a protocol problem.
pub enum ScramLoginError {
    NoSecret(String),
    Protocol(String),
}

pub enum ServerScram {
    Password(ScramSha256),
    Keys(KeyedScramClient),
}

impl ServerScram {
    /// Starts the exchange the server asked for (its list of `mechanisms`); returns the
    /// mechanism to name and the client-first-message. `tls` is the server certificate's
    /// channel-binding hash when the connection is TLS: SCRAM-SHA-256-PLUS is used when the
    /// server offers it.
    pub fn start(
        secret: &ServerSecret,
        user: &str,
        mechanisms: &[u8],
        tls: Option<Vec<u8>>,
    ) -> Result<(ServerScram, &'static str, Vec<u8>), ScramLoginError> {
        let offers = |m: &str| mechanisms.split(|&b| b == 0).any(|x| x == m.as_bytes());
        if !offers(SCRAM_SHA_256) && !offers(SCRAM_SHA_256_PLUS) {
            return Err(ScramLoginError::Protocol(
                "server offers no SASL mechanism we support".into(),
            ));
        }
        // Bind when both sides can; over TLS without PLUS say so (`y`), as libpq does.
        let bound = tls.clone().filter(|_| offers(SCRAM_SHA_256_PLUS));
        let mechanism = if bound.is_some() {
            SCRAM_SHA_256_PLUS
        } else {
            SCRAM_SHA_256
        };
        match secret {
            ServerSecret::Password(pw) => {
                let binding = match (&bound, &tls) {
                    (Some(h), _) => ChannelBinding::tls_server_end_point(h.clone()),
                    (None, Some(_)) => ChannelBinding::unrequested(),
                    (None, None) => ChannelBinding::unsupported(),
                };
                let s = ScramSha256::new(pw.as_bytes(), binding);
                let first = s.message().to_vec();
                Ok((ServerScram::Password(s), mechanism, first))
            }
            ServerSecret::Verifier(learnt) => match learnt.client_key() {
                Some(key) => {
                    let c = match tls {
                        Some(_) => KeyedScramClient::over_tls(key, &learnt.verifier, bound),
                        None => KeyedScramClient::new(key, &learnt.verifier),
                    };
                    let first = c.client_first();
                    Ok((ServerScram::Keys(c), mechanism, first))
                }
                None => Err(ScramLoginError::NoSecret(format!(
                    "server asks for SCRAM-SHA-256 authentication of user \"{user}\", for whom \
                     Switchyard holds only a SCRAM verifier: it can log in once a client has \
                     logged in as \"{user}\" with SCRAM (or configure the plaintext password)"
                ))),
            },
            _ => Err(ScramLoginError::NoSecret(format!(
                "server asks for SCRAM-SHA-256 authentication of user \"{user}\", but \
                 Switchyard has no password for that user (configure the plaintext password \
                 or the SCRAM verifier from pg_authid)"
            ))),
        }
    }

    /// The client-final-message answering the server-first-message.
    pub fn answer(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramLoginError> {
        match self {
            ServerScram::Password(s) => {
                s.update(server_first)
                    .map_err(|e| ScramLoginError::Protocol(e.to_string()))?;
                Ok(s.message().to_vec())
            }
            ServerScram::Keys(c) => c
                .client_final(server_first)
                .map_err(|e| ScramLoginError::NoSecret(e.to_string())),
        }
    }

    /// Checks the server-final-message.
    pub fn finish(&mut self, server_final: &[u8]) -> Result<(), ScramLoginError> {
        let r = match self {
            ServerScram::Password(s) => s.finish(server_final).map_err(|e| e.to_string()),
            ServerScram::Keys(c) => c
                .verify_server_final(server_final)
                .map_err(|e| e.to_string()),
        };
        r.map_err(ScramLoginError::Protocol)
    }
}
