//! The listening socket: binds, and hands out each accepted connection as a [`Stream`].

use super::Stream;
use std::io;
use std::net::SocketAddr;
use tokio::net::TcpListener;

pub struct Listener {
    socket: TcpListener,
}

impl Listener {
    /// Binds `addr` (port 0: any free port).
    pub async fn bind(addr: SocketAddr) -> io::Result<Listener> {
        Ok(Listener {
            socket: TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The next client and its address.
    pub async fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        let (socket, peer) = self.socket.accept().await?;
        Ok((Stream::plain(socket), peer))
    }
}
