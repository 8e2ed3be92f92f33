//! The listening socket: binds, and hands out each accepted connection as a [`Stream`].

use super::Stream;
use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel queues before they are accepted.
const BACKLOG: u32 = 1024;

pub struct Listener {
    socket: TcpListener,
}

impl Listener {
    /// Binds `addr` (port 0: any free port).
    pub async fn bind(addr: SocketAddr) -> io::Result<Listener> {
        Listener::bind_shared(addr, false)
    }

    /// Binds `addr`; with `reuse_port`, other processes (or listeners) that set it too can
    /// bind the same address, and the kernel spreads new connections over them (SO_REUSEPORT).
    pub fn bind_shared(addr: SocketAddr, reuse_port: bool) -> io::Result<Listener> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if reuse_port {
            socket.set_reuseport(true)?;
        }
        socket.bind(addr)?;
        Ok(Listener {
            socket: socket.listen(BACKLOG)?,
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
