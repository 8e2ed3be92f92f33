//! One server connection and what Switchyard knows about it: its backend key (for cancels),
//! the parameter values it reported, the session settings applied on it for clients, and
//! whether it is still clean enough to reuse.

use super::cancel::CancelTarget;
use crate::net::Stream;
use crate::params::ParamMap;
use crate::prepared::{ExpectQueue, ServerStatements};
use std::collections::HashMap;
use std::sync::Arc;

pub struct ServerConn {
    pub stream: Stream,
    /// "host:port" this connection goes to.
    pub addr: std::sync::Arc<str>,
    /// Its backend key (BackendKeyData), with its address.
    pub cancel: Arc<CancelTarget>,
    /// Values from ParameterStatus, as the server last reported them (original name case).
    pub reported: HashMap<String, String>,
    /// Settings applied on top of the login defaults for the clients it served.
    pub applied: ParamMap,
    /// Version of the client state `applied` was last brought in line with (0: none).
    pub applied_version: u64,
    /// The server said `in_hot_standby = on` at login: it is a replica.
    pub in_hot_standby: bool,
    /// Prepared statements this connection holds (server names).
    pub prepared: ServerStatements,
    /// The replies this connection owes for what was sent to it.
    pub queue: ExpectQueue,
    /// Set when its protocol state is unknown or it failed: never reuse.
    pub broken: bool,
    /// When it was opened and last returned to its pool ([`coarse_clock`] readings).
    ///
    /// [`coarse_clock`]: crate::util::coarse_clock
    pub created_at: u64,
    /// The host's role generation when this connection was made.
    pub generation: u64,
    pub returned_at: u64,
}

impl ServerConn {
    /// Records a ParameterStatus value.
    pub fn note_parameter(&mut self, name: &str, value: &str) {
        if name == "in_hot_standby" {
            self.in_hot_standby = value == "on";
        }
        match self.reported.get_mut(name) {
            Some(v) => {
                if v != value {
                    v.clear();
                    v.push_str(value);
                }
            }
            None => {
                self.reported.insert(name.to_string(), value.to_string());
            }
        }
    }

    /// True when the socket has no unread bytes and is not closed (checked without blocking).
    pub fn is_quiet(&self) -> bool {
        self.stream.is_quiet()
    }
}
