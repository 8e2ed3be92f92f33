//! The configured users' secrets, both ways: what a client must prove and what Switchyard
//! can prove to a server for that user (see `secrets`), plus a verifier no password matches,
//! for exchanges with unknown users. Users looked up by `auth_query` are kept beside them
//! (`fetched`).

use super::fetched::FetchedUsers;
use super::secrets::{ServerSecret, UserEntry};
use super::{ScramVerifier, UserSecret};
use std::collections::HashMap;

/// Every configured user's secrets, parsed once (a plaintext password's SCRAM verifier is
/// derived here, so logins cost a few HMACs).
pub struct Users {
    users: HashMap<String, UserEntry>,
    dummy: ScramVerifier,
    /// Users looked up by `auth_query`, per database (None: no `[auth_query]`).
    pub fetched: Option<FetchedUsers>,
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
            fetched: None,
        })
    }

    /// Whether `user` is listed in `[[users]]`.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// The secrets of `user` logging in to `database`: a listed user's, else one looked up by
    /// `auth_query` (None: no such user, or nothing looked up).
    pub fn entry(&self, database: &str, user: &str) -> Option<UserEntry> {
        match self.users.get(user) {
            Some(e) => Some(e.clone()),
            None => self.fetched.as_ref()?.entry(database, user),
        }
    }

    /// What Switchyard can prove to a server of `database` as `user`.
    pub fn server_secret(&self, database: &str, user: &str) -> ServerSecret {
        self.entry(database, user)
            .map(|e| e.server)
            .unwrap_or(ServerSecret::None)
    }

    /// A verifier no password matches, for exchanges with unknown users.
    pub fn dummy_verifier(&self) -> &ScramVerifier {
        &self.dummy
    }
}
