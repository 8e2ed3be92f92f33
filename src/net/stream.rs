//! The one stream type every layer above talks through, client or server side: a plain TCP
//! socket, a Unix-domain socket, or TLS toward a client or toward a server (chosen once, at
//! accept or connect, by an upgrade in place). The plain path keeps the hot path's shape:
//! writes are one `try_write` when the kernel takes the whole buffer (nearly always for a
//! pooler) and need no future, reads go through `read_buf` after readiness, and readiness
//! waits keep their waker in the socket's registration (no per-wait state in the caller).
//! Plain sockets are registered for reading only (`net::plain`).

use super::plain::{Plain, StdSocket};
use super::ClientAddr;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

/// A connection to a client or a server.
#[derive(Debug)]
pub enum Stream {
    Plain(Plain<std::net::TcpStream>),
    /// A Unix-domain socket (`listen_unix_dir`, or a server host given as a directory).
    Unix(Plain<std::os::unix::net::UnixStream>),
    /// TLS with a client: Switchyard is the TLS server.
    FromClient(Box<server::TlsStream<TcpStream>>),
    /// TLS to a PostgreSQL server: Switchyard is the TLS client.
    ToServer(Box<client::TlsStream<TcpStream>>),
    /// The socket went into a TLS handshake that failed.
    Closed,
}

fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")
}

impl Stream {
    /// Wraps an accepted or connected socket, with Nagle off (every write is a whole reply
    /// or request that must leave now).
    pub fn plain(socket: TcpStream) -> io::Result<Stream> {
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        Ok(Stream::Plain(Plain::new(socket.into_std()?)?))
    }

    /// Wraps an accepted or connected Unix-domain socket.
    pub fn unix(socket: UnixStream) -> io::Result<Stream> {
        Ok(Stream::Unix(Plain::new(socket.into_std()?)?))
    }

    /// Opens a plain connection to a server written as in `hosts`: `host:port` over TCP
    /// (names resolved now), or `/directory:port` to the server's Unix-domain socket there.
    pub async fn connect(addr: &str) -> io::Result<Stream> {
        match unix_socket_path(addr) {
            Some(path) => Stream::unix(UnixStream::connect(path).await?),
            None => Stream::plain(TcpStream::connect(addr).await?),
        }
    }

    /// Whether this is a Unix-domain socket (TLS is never used over one).
    pub fn is_unix(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }

    /// Where the peer of an accepted connection is.
    pub fn client_addr(&self) -> io::Result<ClientAddr> {
        match self {
            Stream::Unix(_) => Ok(ClientAddr::Unix),
            other => other.peer_addr().map(ClientAddr::Tcp),
        }
    }

    /// The TCP socket under a TLS stream.
    fn tls_tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::FromClient(s) => Some(s.get_ref().0),
            Stream::ToServer(s) => Some(s.get_ref().0),
            Stream::Plain(_) | Stream::Unix(_) | Stream::Closed => None,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::FromClient(_) | Stream::ToServer(_))
    }

    /// The protocol agreed by ALPN, for TLS.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            Stream::FromClient(s) => s.get_ref().1.alpn_protocol(),
            Stream::ToServer(s) => s.get_ref().1.alpn_protocol(),
            _ => None,
        }
    }

    /// The certificate a TLS client presented (DER), if any; it was verified in the
    /// handshake against `[tls] ca`.
    pub fn client_certificate(&self) -> Option<&[u8]> {
        match self {
            Stream::FromClient(s) => s
                .get_ref()
                .1
                .peer_certificates()?
                .first()
                .map(|c| c.as_ref()),
            _ => None,
        }
    }

    /// The certificate a server presented over TLS (DER), for channel binding.
    pub fn server_certificate(&self) -> Option<&[u8]> {
        match self {
            Stream::ToServer(s) => s
                .get_ref()
                .1
                .peer_certificates()?
                .first()
                .map(|c| c.as_ref()),
            _ => None,
        }
    }

    /// The peer's IP address and port (an error on a Unix-domain socket: see `client_addr`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Plain(s) => s.get_ref().ok_or_else(not_connected)?.peer_addr(),
            _ => self.tls_tcp().ok_or_else(|| self.no_ip())?.peer_addr(),
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Plain(s) => s.get_ref().ok_or_else(not_connected)?.local_addr(),
            _ => self.tls_tcp().ok_or_else(|| self.no_ip())?.local_addr(),
        }
    }

    fn no_ip(&self) -> io::Error {
        match self {
            Stream::Unix(_) => io::Error::other("a Unix-domain socket has no IP address"),
            _ => not_connected(),
        }
    }

    /// Runs the TLS handshake as the server of a client (the stream must be plain).
    pub async fn accept_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let Stream::Plain(plain) = std::mem::replace(self, Stream::Closed) else {
            return Err(io::Error::other("TLS on a stream that is not plain"));
        };
        let tcp = TcpStream::from_std(plain.into_std()?)?;
        *self = Stream::FromClient(Box::new(acceptor.accept(tcp).await?));
        Ok(())
    }

    /// Runs the TLS handshake as the client of a server named `name`.
    pub async fn connect_tls(
        &mut self,
        connector: &TlsConnector,
        name: ServerName<'static>,
    ) -> io::Result<()> {
        let Stream::Plain(plain) = std::mem::replace(self, Stream::Closed) else {
            return Err(io::Error::other("TLS on a stream that is not plain"));
        };
        let tcp = TcpStream::from_std(plain.into_std()?)?;
        *self = Stream::ToServer(Box::new(connector.connect(name, tcp).await?));
        Ok(())
    }

    /// Writes all of `buf`, waiting for room only when the socket is full. On a plain
    /// socket the common case (the kernel takes everything) is one system call and no
    /// future state; TLS encrypts and writes the records out before returning.
    pub async fn send_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => send_plain(s, buf).await,
            Stream::Unix(s) => send_plain(s, buf).await,
            Stream::FromClient(s) => send_tls(&mut **s, buf).await,
            Stream::ToServer(s) => send_tls(&mut **s, buf).await,
            Stream::Closed => Err(not_connected()),
        }
    }

    /// Ready when the peer sent something or closed; the waker stays in the socket's
    /// registration, so an idle wait costs the caller no state. Over TLS, data already
    /// decrypted (or a close already received) is ready without the socket.
    pub fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let pending_tls = match self {
            Stream::Plain(s) => return s.poll_read_ready(cx),
            Stream::Unix(s) => return s.poll_read_ready(cx),
            Stream::FromClient(s) => s.get_mut().1.process_new_packets(),
            Stream::ToServer(s) => s.get_mut().1.process_new_packets(),
            Stream::Closed => return Poll::Ready(Err(not_connected())),
        };
        match pending_tls {
            Ok(st) if st.plaintext_bytes_to_read() == 0 && !st.peer_has_closed() => {}
            _ => return Poll::Ready(Ok(())),
        }
        match self.tls_tcp() {
            Some(tcp) => tcp.poll_read_ready(cx),
            None => Poll::Ready(Err(not_connected())),
        }
    }

    /// True when nothing is waiting to be read and the peer has not closed, checked without
    /// blocking. On a plain socket a byte that is there is consumed: this is for idle pooled
    /// connections, which are closed when it says no.
    pub fn is_quiet(&self) -> bool {
        let mut probe = [0u8; 1];
        match self {
            Stream::Plain(s) => match s.try_read(&mut probe) {
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                Ok(_) => false,
            },
            Stream::Unix(s) => match s.try_read(&mut probe) {
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                Ok(_) => false,
            },
            // A TLS record must not be taken from under the TLS session: peek instead.
            Stream::FromClient(_) | Stream::ToServer(_) => {
                let Some(tcp) = self.tls_tcp() else {
                    return false;
                };
                let mut cx = Context::from_waker(Waker::noop());
                let mut buf = ReadBuf::new(&mut probe);
                tcp.poll_peek(&mut cx, &mut buf).is_pending()
            }
            Stream::Closed => false,
        }
    }

    /// Resolves when the peer has closed its side (or the socket failed); stays pending
    /// while it is open, also when it has sent bytes (they stay unread). Over TLS a
    /// close_notify counts as bytes: the close is seen when the client is next read.
    pub async fn closed(&self) {
        let open = match self {
            Stream::Plain(s) => s.has_bytes().await,
            Stream::Unix(s) => s.has_bytes().await,
            _ => self.peek_byte().await.map(|b| b.is_some()),
        };
        if let Ok(true) = open {
            std::future::pending::<()>().await
        }
    }

    /// The first byte the peer sent, without taking it (None: it closed). TCP only: a Unix
    /// socket is never asked (nothing decides on its first byte).
    pub async fn peek_byte(&self) -> io::Result<Option<u8>> {
        if let Stream::Plain(s) = self {
            return s.peek_byte().await;
        }
        let mut probe = [0u8; 1];
        let s = self.tls_tcp().ok_or_else(not_connected)?;
        Ok((s.peek(&mut probe).await? == 1).then_some(probe[0]))
    }
}

/// The socket file of a server written as `/directory:port` (PostgreSQL's naming:
/// `directory/.s.PGSQL.port`); None for a TCP address.
pub fn unix_socket_path(addr: &str) -> Option<PathBuf> {
    if !addr.starts_with('/') {
        return None;
    }
    let (dir, port) = addr.rsplit_once(':')?;
    Some(unix_socket_file(Path::new(dir), port))
}

/// `dir/.s.PGSQL.<port>`, where PostgreSQL and its clients look for a server's socket.
pub fn unix_socket_file(dir: &Path, port: impl std::fmt::Display) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

/// Writes all of `buf` to a plain socket: one system call when the kernel takes it all.
async fn send_plain<S: StdSocket>(stream: &mut Plain<S>, mut buf: &[u8]) -> io::Result<()>
where
    for<'a> &'a S: std::io::Read + std::io::Write,
{
    while !buf.is_empty() {
        match stream.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            // The first wait registers the socket for write space; then readiness is cleared
            // with the tick it was read at, so the wait cannot miss an event that came in
            // between. `poll_write_ready` keeps no wait state in this future, so the futures
            // that embed it stay small.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::future::poll_fn(|cx| stream.poll_write_ready(cx)).await?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn send_tls<S: tokio::io::AsyncWrite + Unpin>(s: &mut S, buf: &[u8]) -> io::Result<()> {
    s.write_all(buf).await?;
    s.flush().await
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => s.poll_read(cx, buf),
            Stream::Unix(s) => s.poll_read(cx, buf),
            Stream::FromClient(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Stream::ToServer(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Err(not_connected())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn sends_more_than_the_socket_buffer_holds() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut stream = Stream::connect(&addr.to_string()).await.unwrap();
        // Far more than a loopback socket buffers: some writes must wait for the reader.
        let data: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        stream.send_all(&data).await.unwrap();
        drop(stream);
        assert_eq!(reader.await.unwrap(), data);
    }

    #[tokio::test]
    async fn quiet_and_closed_probes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = Stream::connect(&addr.to_string()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let mut server = Stream::plain(accepted).unwrap();
        assert!(server.is_quiet());
        client.send_all(b"x").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let open = tokio::time::timeout(std::time::Duration::from_millis(50), server.closed());
        assert!(open.await.is_err(), "open with unread bytes: still pending");
        let mut got = [0u8; 1];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"x", "closed() left the byte in place");
        client.send_all(b"y").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!server.is_quiet(), "a byte was waiting");
        drop(client);
        tokio::time::timeout(std::time::Duration::from_secs(5), server.closed())
            .await
            .expect("closed() resolves once the peer has gone");
    }

    #[tokio::test]
    async fn unix_sockets_read_write_and_probe() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a, mut b) = (Stream::unix(a).unwrap(), Stream::unix(b).unwrap());
        assert!(b.is_quiet());
        // More than the socket buffers: writes wait for room, then go on.
        let data: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; expected.len()];
            b.read_exact(&mut got).await.unwrap();
            assert_eq!(got, expected);
            b
        });
        a.send_all(&data).await.unwrap();
        let mut b = reader.await.unwrap();
        a.send_all(b"z").await.unwrap();
        let open = tokio::time::timeout(std::time::Duration::from_millis(50), b.closed());
        assert!(open.await.is_err(), "open with unread bytes: still pending");
        let mut got = [0u8; 1];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"z", "closed() left the byte in place");
        drop(a);
        tokio::time::timeout(std::time::Duration::from_secs(5), b.closed())
            .await
            .expect("closed() resolves once the peer has gone");
    }
}
