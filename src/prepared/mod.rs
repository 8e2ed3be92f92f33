//! Prepared statements under transaction pooling. Each distinct statement (query text plus
//! parameter types) gets one stable server-side name; each client maps its own names to
//! those; each server connection remembers which it holds (bounded LRU). Client requests are
//! rewritten in flight (`rewrite`): a missing statement's Parse is prepended in the same
//! write, a Parse the connection already holds is answered locally, and the replies the
//! client did not ask for are swallowed by following the expected replies (`expect`).

pub mod expect;
pub mod registry;
pub mod rewrite;
pub mod server_set;

pub use expect::{Expect, ExpectQueue};
pub use registry::{ClientStatements, Registry, StatementInfo};
pub use server_set::ServerStatements;
