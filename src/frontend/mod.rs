//! One client session: the startup packet (SSL/GSS refused for now, cancel requests),
//! authentication, login, then the request loop that attaches server connections according
//! to the pool mode and keeps the client's session parameters in place on each of them.

pub mod aborted;
pub mod auth;
pub mod cancel;
pub mod client_io;
pub mod login;
pub mod routing;
pub mod server_input;
pub mod session;

pub use login::handle_client;
