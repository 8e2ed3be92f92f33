//! The client listener: accepts connections and runs one session task per client; on
//! shutdown it stops accepting and waits (bounded) for sessions to finish.

pub mod listener;

pub use listener::{serve, Server};
