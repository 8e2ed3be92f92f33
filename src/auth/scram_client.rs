//! SCRAM-SHA-256 as a client that holds keys instead of a password. A client that logs in to
//! Switchyard with SCRAM proves its ClientKey (the proof XOR the signature gives it back);
//! with that key and the verifier's StoredKey and ServerKey, Switchyard can log in to a server
//! that holds the same verifier (same salt and iterations) without ever knowing the password.
//! Sans-IO: the caller frames the messages.

use super::scram::{attr, hmac, protocol, text, xor_into, ScramVerifier};
use super::AuthError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;

/// The exchange as the client, from the client-first-message to the server's signature.
pub struct KeyedScramClient {
    client_key: [u8; 32],
    verifier: ScramVerifier,
    /// `n,,`, `y,,` or `p=tls-server-end-point,,`.
    gs2_header: &'static str,
    /// The server certificate's hash with `p=...`; empty otherwise.
    cbind_data: Vec<u8>,
    nonce: String,
    /// Set once the client-final-message is made: what the server must have signed.
    auth_message: Option<Vec<u8>>,
}

impl KeyedScramClient {
    /// Without channel binding (`n`: no TLS).
    pub fn new(client_key: [u8; 32], verifier: &ScramVerifier) -> KeyedScramClient {
        Self::with_gs2(client_key, verifier, "n,,", Vec::new())
    }

    /// Over TLS: bound to the server certificate's hash when the server offered
    /// SCRAM-SHA-256-PLUS (`Some`), otherwise flag `y` (we could bind, the server cannot).
    pub fn over_tls(
        client_key: [u8; 32],
        verifier: &ScramVerifier,
        cert_hash: Option<Vec<u8>>,
    ) -> KeyedScramClient {
        match cert_hash {
            Some(h) => Self::with_gs2(client_key, verifier, "p=tls-server-end-point,,", h),
            None => Self::with_gs2(client_key, verifier, "y,,", Vec::new()),
        }
    }

    fn with_gs2(
        client_key: [u8; 32],
        verifier: &ScramVerifier,
        gs2_header: &'static str,
        cbind_data: Vec<u8>,
    ) -> KeyedScramClient {
        let mut raw = [0u8; 18];
        rand::thread_rng().fill_bytes(&mut raw);
        KeyedScramClient {
            client_key,
            verifier: verifier.clone(),
            gs2_header,
            cbind_data,
            nonce: STANDARD.encode(raw),
            auth_message: None,
        }
    }

    fn client_first_bare(&self) -> String {
        // The user name is taken from the startup message, as libpq does.
        format!("n=,r={}", self.nonce)
    }

    /// The client-first-message.
    pub fn client_first(&self) -> Vec<u8> {
        format!("{}{}", self.gs2_header, self.client_first_bare()).into_bytes()
    }

    /// Answers the server-first-message with the client-final-message. The server must use
    /// the verifier's salt and iteration count: otherwise it holds another verifier, and the
    /// keys cannot prove anything to it.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, AuthError> {
        let msg = text(server_first, "server-first-message")?;
        let mut parts = msg.split(',');
        let nonce = match attr(parts.next())? {
            (b'r', n) if n.starts_with(&self.nonce) && n.len() > self.nonce.len() => n,
            _ => return Err(protocol("server-first-message: bad nonce")),
        };
        let salt = match attr(parts.next())? {
            (b's', s) => STANDARD
                .decode(s)
                .map_err(|_| protocol("server-first-message: salt is not base64"))?,
            _ => return Err(protocol("server-first-message: expected attribute 's'")),
        };
        let iterations: u32 = match attr(parts.next())? {
            (b'i', i) => i
                .parse()
                .map_err(|_| protocol("server-first-message: bad iteration count"))?,
            _ => return Err(protocol("server-first-message: expected attribute 'i'")),
        };
        if salt != self.verifier.salt || iterations != self.verifier.iterations {
            return Err(AuthError::BadVerifier(
                "the server's SCRAM salt or iteration count differs from the configured \
                 verifier's: configure the verifier exactly as stored in the server's \
                 pg_authid.rolpassword (or the plaintext password)"
                    .into(),
            ));
        }
        let cbind = [self.gs2_header.as_bytes(), &self.cbind_data].concat();
        let without_proof = format!("c={},r={nonce}", STANDARD.encode(cbind));
        let auth_message = [
            self.client_first_bare().as_bytes(),
            b",",
            msg.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ]
        .concat();
        let mut proof = self.client_key;
        xor_into(
            &mut proof,
            &hmac(&self.verifier.stored_key, &[&auth_message]),
        );
        self.auth_message = Some(auth_message);
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }

    /// Checks the server-final-message: the server proved it holds the ServerKey.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), AuthError> {
        let msg = text(server_final, "server-final-message")?;
        let auth_message = self
            .auth_message
            .as_ref()
            .ok_or_else(|| protocol("server-final-message before the client-final-message"))?;
        match attr(Some(msg))? {
            (b'v', v) => {
                let want = hmac(&self.verifier.server_key, &[auth_message]);
                if STANDARD.decode(v).ok().as_deref() == Some(&want[..]) {
                    Ok(())
                } else {
                    Err(protocol("the server's SCRAM signature does not verify"))
                }
            }
            (b'e', e) => Err(AuthError::Protocol(format!("server SCRAM error: {e}"))),
            _ => Err(protocol("malformed server-final-message")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ScramExchange;
    use super::*;

    /// Learns a client key through our own server side, then uses it against a second
    /// server side holding the same verifier (as a PostgreSQL server would).
    #[test]
    fn a_learnt_key_logs_in_where_the_verifier_is_held() {
        let verifier = ScramVerifier::generate("hunter2");
        let mut password_client = postgres_protocol::authentication::sasl::ScramSha256::new(
            b"hunter2",
            postgres_protocol::authentication::sasl::ChannelBinding::unsupported(),
        );
        let (exchange, server_first) =
            ScramExchange::start(&verifier, password_client.message()).expect("client-first");
        password_client.update(server_first.as_bytes()).unwrap();
        let learnt = exchange
            .finish(password_client.message())
            .unwrap()
            .client_key;

        let mut keyed = KeyedScramClient::new(learnt, &verifier);
        let (server, server_first) =
            ScramExchange::start(&verifier, &keyed.client_first()).unwrap();
        let client_final = keyed.client_final(server_first.as_bytes()).unwrap();
        let done = server
            .finish(&client_final)
            .expect("the keys prove the password");
        keyed
            .verify_server_final(done.server_final.as_bytes())
            .unwrap();
        assert!(keyed.verify_server_final(b"v=AAAA").is_err());

        // Another verifier of the same password (another salt): refused with a clear error.
        let other = ScramVerifier::generate("hunter2");
        let mut keyed = KeyedScramClient::new(learnt, &verifier);
        let (_, first) = ScramExchange::start(&other, &keyed.client_first()).unwrap();
        let err = keyed.client_final(first.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("pg_authid"), "{err}");
        // Bound to a certificate hash, against a server side that expects the same hash.
        let hash = vec![9u8; 32];
        let mut keyed = KeyedScramClient::over_tls(learnt, &verifier, Some(hash.clone()));
        let (server, first) = ScramExchange::start_with(
            &verifier,
            &keyed.client_first(),
            crate::auth::scram::Binding::Required(&hash),
        )
        .unwrap();
        let fin = keyed.client_final(first.as_bytes()).unwrap();
        server.finish(&fin).expect("bound to the same certificate");
        // ... and another certificate (a man in the middle) fails.
        let mut keyed = KeyedScramClient::over_tls(learnt, &verifier, Some(vec![8u8; 32]));
        let (server, first) = ScramExchange::start_with(
            &verifier,
            &keyed.client_first(),
            crate::auth::scram::Binding::Required(&hash),
        )
        .unwrap();
        let fin = keyed.client_final(first.as_bytes()).unwrap();
        assert!(server.finish(&fin).is_err(), "another certificate's hash");
        // A wrong key does not log in.
        let mut keyed = KeyedScramClient::new([7; 32], &verifier);
        let (server, first) = ScramExchange::start(&verifier, &keyed.client_first()).unwrap();
        let fin = keyed.client_final(first.as_bytes()).unwrap();
        assert!(server.finish(&fin).is_err());
    }
}
