//! Server side: one connection to PostgreSQL (connect, login, ParameterStatus, state flags),
//! reading whole frames from it, and the pools of such connections keyed by
//! (database, user, host), with direct hand-off to waiting checkouts.

pub mod cluster;
pub mod conn;
pub mod io;
pub mod login;
pub mod pool;
pub mod query;

pub use conn::ServerConn;
pub use login::{BackendError, ServerSecret};
pub use pool::{Checkout, ServerPool};
