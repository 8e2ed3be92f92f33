//! The listening sockets: TCP (`listen`) and the Unix-domain socket in `listen_unix_dir`
//! (`.s.PGSQL.<port>`, as PostgreSQL names it); each accepted connection is a [`Stream`].

use super::stream::unix_socket_file;
use super::{ClientAddr, Stream};
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::{TcpListener, TcpSocket, UnixListener};

/// Connections the kernel queues before they are accepted.
const BACKLOG: u32 = 1024;

pub struct Listener {
    socket: Socket,
}

enum Socket {
    Tcp(TcpListener),
    /// The socket file, and its (device, inode) when bound: removed on drop only if it is
    /// still this listener's (a newer process may have taken the path over).
    Unix {
        socket: UnixListener,
        path: PathBuf,
        id: (u64, u64),
    },
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
            socket: Socket::Tcp(socket.listen(BACKLOG)?),
        })
    }

    /// Binds `dir/.s.PGSQL.<port>`, readable and writable by every local user (as
    /// PostgreSQL's default `unix_socket_permissions`; access is the login's business). A
    /// socket file left by a process that is gone is replaced; one a live process listens
    /// on is an error, unless `take_over` (a rolling upgrade: the new process takes the
    /// path, the old one keeps serving the clients it has).
    pub fn bind_unix(dir: &Path, port: u16, take_over: bool) -> io::Result<Listener> {
        let path = unix_socket_file(dir, port);
        if path.exists() {
            let live = std::os::unix::net::UnixStream::connect(&path).is_ok();
            if live && !take_over {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by another server", path.display()),
                ));
            }
            std::fs::remove_file(&path)?;
        }
        let socket = UnixListener::bind(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
        let meta = std::fs::metadata(&path)?;
        Ok(Listener {
            socket: Socket::Unix {
                socket,
                path,
                id: (meta.dev(), meta.ino()),
            },
        })
    }

    /// The TCP address (an error for a Unix-domain listener).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.socket {
            Socket::Tcp(s) => s.local_addr(),
            Socket::Unix { .. } => Err(io::Error::other("a Unix-domain socket has no address")),
        }
    }

    /// The socket file of a Unix-domain listener.
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.socket {
            Socket::Tcp(_) => None,
            Socket::Unix { path, .. } => Some(path),
        }
    }

    /// The next client and where it is.
    pub async fn accept(&self) -> io::Result<(Stream, ClientAddr)> {
        match &self.socket {
            Socket::Tcp(s) => {
                let (socket, peer) = s.accept().await?;
                Ok((Stream::plain(socket)?, ClientAddr::Tcp(peer)))
            }
            Socket::Unix { socket, .. } => {
                let (socket, _) = socket.accept().await?;
                Ok((Stream::unix(socket)?, ClientAddr::Unix))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Socket::Unix { path, id, .. } = &self.socket {
            let ours = std::fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == *id);
            if ours {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_socket_file_is_taken_only_from_the_dead_and_removed_when_done() {
        let dir = std::env::temp_dir().join(format!("sy-listener-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".s.PGSQL.7001");

        // A file left by a process that is gone: replaced.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let first = Listener::bind_unix(&dir, 7001, false).expect("stale file replaced");
        // A live one: refused, unless taking over.
        let err = Listener::bind_unix(&dir, 7001, false)
            .err()
            .expect("in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let second = Listener::bind_unix(&dir, 7001, true).expect("taken over");
        // The first one's drop leaves the second one's file alone.
        drop(first);
        assert!(path.exists(), "the newer listener's socket stays");
        drop(second);
        assert!(!path.exists(), "removed by its owner");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
