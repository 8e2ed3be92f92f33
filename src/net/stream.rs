//! The one stream type every layer above talks through, client or server side. Chosen once,
//! at accept or connect; today the only kind is a plain TCP socket (TLS will be a second
//! variant, so nothing above has to change). The plain path keeps the hot path's shape:
//! writes are one `try_write` when the kernel takes the whole buffer (nearly always for a
//! pooler) and need no future, reads go through `read_buf` after readiness, and readiness
//! waits keep their waker in the socket's registration (no per-wait state in the caller).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::{TcpStream, ToSocketAddrs};

/// A connection to a client or a server.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
}

impl Stream {
    /// Wraps an accepted or connected socket, with Nagle off (every write is a whole reply
    /// or request that must leave now).
    pub fn plain(socket: TcpStream) -> Stream {
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        Stream::Plain(socket)
    }

    /// Opens a plain connection to `addr`.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<Stream> {
        Ok(Stream::plain(TcpStream::connect(addr).await?))
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Plain(s) => s.peer_addr(),
        }
    }

    /// Writes all of `buf`, waiting for room only when the socket is full. The common case
    /// (the kernel takes everything) is one system call and no future state.
    pub async fn send_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        let Stream::Plain(stream) = self;
        while !buf.is_empty() {
            match stream.try_write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                // Readiness was cleared with the tick it was read at: the wait cannot miss an
                // event that came in between. `poll_write_ready` keeps no wait state in this
                // future, so the futures that embed it stay small.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::future::poll_fn(|cx| stream.poll_write_ready(cx)).await?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Ready when the peer sent something or closed; the waker stays in the socket's
    /// registration, so an idle wait costs the caller no state.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(s) => s.poll_read_ready(cx),
        }
    }

    /// True when nothing is waiting to be read and the peer has not closed, checked without
    /// blocking. A byte that is there is consumed: this is for idle pooled connections,
    /// which are closed when it says no.
    pub fn is_quiet(&self) -> bool {
        let mut probe = [0u8; 1];
        match self {
            Stream::Plain(s) => match s.try_read(&mut probe) {
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                Ok(_) => false,
            },
        }
    }

    /// Resolves when the peer has closed its side (or the socket failed); stays pending
    /// while it is open, also when it has sent bytes (they stay unread).
    pub async fn closed(&self) {
        let mut probe = [0u8; 1];
        let Stream::Plain(s) = self;
        match s.peek(&mut probe).await {
            Ok(0) | Err(_) => {}
            Ok(_) => std::future::pending::<()>().await,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
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
        let mut stream = Stream::connect(addr).await.unwrap();
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
        let mut client = Stream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let mut server = Stream::plain(accepted);
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
}
