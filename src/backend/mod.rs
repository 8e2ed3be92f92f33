//! Server side: one connection to PostgreSQL (connect, login, ParameterStatus, state flags),
//! Switchyard's own queries and cancel requests on it, and the pools of such connections,
//! one per (database, user, host), with direct hand-off to waiting checkouts. Which host to
//! ask is the topology's business (one layer up).

pub mod cancel;
pub mod conn;
pub mod login;
pub mod own_queries;
pub mod pool;
pub mod server_frames;
pub mod server_scram;

pub use cancel::{send_cancel, CancelTarget};
pub use conn::ServerConn;
pub use login::BackendError;
pub use pool::{Checkout, ServerPool};
