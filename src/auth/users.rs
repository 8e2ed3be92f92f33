//! The configured users' secrets, both ways: what a client must prove ([`UserSecret`]) and
//! what Switchyard can prove to a server for that user ([`ServerSecret`]), plus a verifier no
//! password matches, for exchanges with unknown users.

use super::{ScramVerifier, UserSecret};
use std::collections::HashMap;
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
    /// Nothing to prove: works for `trust` servers only.
    None,
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
}

struct UserEntry {
    client: UserSecret,
    server: ServerSecret,
}

/// Every configured user's secrets, parsed once (a plaintext password's SCRAM verifier is
/// derived here, so logins cost a few HMACs).
pub struct Users {
    users: HashMap<String, UserEntry>,
    dummy: ScramVerifier,
}

impl Users {
    /// Parses `(name, password)` pairs; the error names the user whose secret is unusable.
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Users, String> {
        let mut users = HashMap::new();
        for (name, password) in entries {
            let client = UserSecret::parse(name, password)
                .map_err(|e| format!("users \"{name}\": password: {e}"))?;
            let server = ServerSecret::from_user_secret(&client);
            users.insert(name.to_string(), UserEntry { client, server });
        }
        Ok(Users {
            users,
            dummy: ScramVerifier::generate(&format!("{:x}", rand::random::<u128>())),
        })
    }

    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// What a client logging in as `user` must prove (None: no such user).
    pub fn client_secret(&self, user: &str) -> Option<&UserSecret> {
        self.users.get(user).map(|u| &u.client)
    }

    /// What Switchyard can prove to a server as `user`.
    pub fn server_secret(&self, user: &str) -> ServerSecret {
        self.users
            .get(user)
            .map(|u| u.server.clone())
            .unwrap_or(ServerSecret::None)
    }

    /// A client logged in as `user` with SCRAM and proved this ClientKey: for a user with only
    /// a verifier, it is what logs in to the servers from now on.
    pub fn learn_client_key(&self, user: &str, key: [u8; 32]) {
        if let Some(UserEntry {
            server: ServerSecret::Verifier(learnt),
            ..
        }) = self.users.get(user)
        {
            learnt.learn(key);
        }
    }

    /// A verifier no password matches, for exchanges with unknown users.
    pub fn dummy_verifier(&self) -> &ScramVerifier {
        &self.dummy
    }
}
