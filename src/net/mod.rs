//! Sockets: the one stream type every layer above reads and writes through (plain TCP, a
//! Unix-domain socket, or TLS, chosen once at accept or connect), the listeners that accept
//! clients, where a client is, and the TLS settings built from the config.

mod client_addr;
mod listener;
mod plain;
mod stream;
pub mod tls;

pub use client_addr::ClientAddr;
pub use listener::Listener;
pub use stream::{unix_socket_file, unix_socket_path, Stream};
pub use tls::{ClientTlsConfig, ServerTlsConfig};
