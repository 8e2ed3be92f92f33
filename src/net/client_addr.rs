//! Where a client connected from: an IP address and port, or a Unix-domain socket (which has
//! no address; shown as "[local]", as PostgreSQL's logs do).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAddr {
    Tcp(SocketAddr),
    /// A connection to `listen_unix_dir`'s socket.
    Unix,
}

impl ClientAddr {
    /// The client's IP address (None over a Unix-domain socket).
    pub fn ip(self) -> Option<IpAddr> {
        self.tcp().map(|a| a.ip())
    }

    /// The client's IP address and port (None over a Unix-domain socket).
    pub fn tcp(self) -> Option<SocketAddr> {
        match self {
            ClientAddr::Tcp(a) => Some(a),
            ClientAddr::Unix => None,
        }
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAddr::Tcp(a) => a.fmt(f),
            ClientAddr::Unix => f.write_str("[local]"),
        }
    }
}

impl From<SocketAddr> for ClientAddr {
    fn from(a: SocketAddr) -> Self {
        ClientAddr::Tcp(a)
    }
}
