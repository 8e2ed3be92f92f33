//! Sockets: the one stream type every layer above reads and writes through (plain TCP or
//! TLS, chosen once at accept or connect), the listener that accepts clients, and the TLS
//! settings built from the config.

mod listener;
mod stream;
pub mod tls;

pub use listener::Listener;
pub use stream::Stream;
pub use tls::{ClientTlsConfig, ServerTlsConfig};
