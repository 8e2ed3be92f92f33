//! Writing to a socket without a future on the common path: a write that the kernel takes
//! whole (nearly every write of a pooler) is one `try_write`; only a full socket buffer
//! falls back to waiting for writability.

use std::io;
use tokio::net::TcpStream;

/// Writes all of `buf` to `stream`, waiting for room only when the socket is full.
pub async fn write_all(stream: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn writes_more_than_the_socket_buffer_holds() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        // Far more than a loopback socket buffers: some writes must wait for the reader.
        let data: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        write_all(&stream, &data).await.unwrap();
        drop(stream);
        assert_eq!(reader.await.unwrap(), data);
    }
}
