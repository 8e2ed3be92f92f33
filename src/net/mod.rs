//! Sockets: the one stream type every layer above reads and writes through (plain TCP
//! today; chosen once at accept or connect), and the listener that accepts clients.

mod listener;
mod stream;

pub use listener::Listener;
pub use stream::Stream;
