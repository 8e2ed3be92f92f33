//! The client side: from accept to an authenticated session (startup packet, SSL/GSS refused
//! for now, cancel requests, authentication), then the session's request loop, which
//! attaches server connections according to the pool mode and keeps the client's session
//! parameters in place on each of them, and the answers made without a server.

pub mod admin;
pub mod auth_query;
pub mod authenticate;
pub mod cache_request;
pub mod client_io;
pub mod clients;
pub mod control;
pub mod key_value;
pub mod local_answers;
pub mod login;
pub mod login_throttle;
pub mod route_request;
pub mod session;
pub mod shared;

pub use login::handle_client;
pub use shared::Shared;
