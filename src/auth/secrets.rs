//! What a user proves, both ways: what Switchyard can prove to a server for a user
//! ([`ServerSecret`]: a password, an md5 digest, a ClientKey learnt from a client's SCRAM
//! proof, or a cell a lookup refreshes) and a user's pair of secrets ([`UserEntry`]).

use super::{ScramVerifier, UserSecret};
use std::sync::{Arc, Mutex};

/// What Switchyard can prove to a server for a user.
#[derive(Clone)]
pub enum ServerSecret {
    Password(String),
    /// The hex digest of md5(password || user), enough for md5 server auth.
    Md5Digest(String),
    /// Only a SCRAM verifier is configured: once a client has logged in with SCRAM, its
    /// ClientKey (learnt from its proof) logs in to servers holding the same verifier.
    Verifier(Arc<LearntKey>),
    /// A secret fetched by `auth_query`: pools keep this cell, so a password changed on the
    /// server reaches them when the lookup is refreshed.
    Fetched(Arc<SecretCell>),
    /// Nothing to prove: works for `trust` servers only.
    None,
}

/// A server secret that can be replaced in place (see [`ServerSecret::Fetched`]).
pub struct SecretCell(Mutex<ServerSecret>);

impl SecretCell {
    pub fn new(secret: ServerSecret) -> SecretCell {
        SecretCell(Mutex::new(secret))
    }

    pub fn get(&self) -> ServerSecret {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, secret: ServerSecret) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = secret;
    }
}

/// A user's SCRAM verifier and the ClientKey learnt from the first client that proved it.
pub struct LearntKey {
    pub verifier: ScramVerifier,
    key: Mutex<Option<[u8; 32]>>,
}

impl LearntKey {
    pub fn new(verifier: ScramVerifier) -> LearntKey {
        LearntKey {
            verifier,
            key: Mutex::new(None),
        }
    }

    /// The ClientKey, once a client has logged in with SCRAM.
    pub fn client_key(&self) -> Option<[u8; 32]> {
        *self.key.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the ClientKey a client proved (it matches the verifier's StoredKey).
    pub fn learn(&self, key: [u8; 32]) {
        *self.key.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
    }
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerSecret::Password(_) => "Password(..)",
            ServerSecret::Md5Digest(_) => "Md5Digest(..)",
            ServerSecret::Verifier(_) => "Verifier(..)",
            ServerSecret::Fetched(_) => "Fetched(..)",
            ServerSecret::None => "None",
        })
    }
}

impl ServerSecret {
    /// What a client-side secret lets Switchyard prove to a server.
    pub fn from_user_secret(client: &UserSecret) -> ServerSecret {
        match client {
            UserSecret::Plain { password, .. } => ServerSecret::Password(password.clone()),
            UserSecret::Md5(digest) => {
                ServerSecret::Md5Digest(digest.iter().map(|b| format!("{b:02x}")).collect())
            }
            UserSecret::Scram(v) => ServerSecret::Verifier(Arc::new(LearntKey::new(v.clone()))),
        }
    }

    /// The secret to log in with now (a fetched one as it was last looked up).
    pub fn current(&self) -> ServerSecret {
        match self {
            ServerSecret::Fetched(cell) => cell.get(),
            other => other.clone(),
        }
    }

    /// A client proved this ClientKey: a verifier-only secret logs in with it from now on.
    pub fn learn(&self, key: [u8; 32]) {
        match self {
            ServerSecret::Verifier(learnt) => learnt.learn(key),
            ServerSecret::Fetched(cell) => cell.get().learn(key),
            _ => {}
        }
    }
}

/// A user's secrets both ways.
#[derive(Clone)]
pub struct UserEntry {
    pub client: UserSecret,
    pub server: ServerSecret,
}
