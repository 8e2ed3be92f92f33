//! The client socket with its input buffer and output batch: reading the startup packet and
//! single frames during login, and flushing what Switchyard writes.

use crate::protocol::frame::{complete_frame, peek_header};
use crate::protocol::messages::PgError;
use crate::protocol::startup::{self, StartupPacket};
use crate::protocol::SqlState;
use bytes::{Buf, BytesMut};
use std::io;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

pub struct ClientIo {
    pub stream: TcpStream,
    /// Bytes read from the client and not yet handled.
    pub buf: BytesMut,
    /// Messages Switchyard writes to the client, sent by [`ClientIo::flush`].
    pub out: BytesMut,
}

/// Why reading from a client failed: the socket, or bytes that break the protocol.
#[derive(Debug)]
pub enum ReadError {
    Closed,
    Io(io::Error),
    Protocol(PgError),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl ClientIo {
    pub fn new(stream: TcpStream) -> Self {
        ClientIo {
            stream,
            buf: BytesMut::new(),
            out: BytesMut::new(),
        }
    }

    async fn fill(&mut self, want: usize) -> Result<(), ReadError> {
        self.buf.reserve(want.max(1024));
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(ReadError::Closed);
        }
        Ok(())
    }

    /// Reads one startup-phase packet (no type byte).
    pub async fn read_startup(&mut self) -> Result<StartupPacket, ReadError> {
        loop {
            let len = startup::packet_len(&self.buf).map_err(|e| {
                ReadError::Protocol(PgError::fatal(SqlState::PROTOCOL_VIOLATION, e.to_string()))
            })?;
            match len {
                Some(len) if self.buf.len() >= len => {
                    let packet = self.buf.split_to(len);
                    return startup::decode(&packet).map_err(|e| {
                        ReadError::Protocol(PgError::fatal(
                            SqlState::PROTOCOL_VIOLATION,
                            e.to_string(),
                        ))
                    });
                }
                Some(len) => self.fill(len - self.buf.len()).await?,
                None => self.fill(8).await?,
            }
        }
    }

    /// True if the client sent bytes right behind a packet we must answer before it may
    /// send more (e.g. behind an SSLRequest).
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Reads one regular frame of at most `max` bytes and returns it whole.
    pub async fn read_frame(&mut self, max: usize) -> Result<BytesMut, ReadError> {
        loop {
            match complete_frame(&self.buf, max) {
                Ok(Some(h)) => return Ok(self.buf.split_to(h.total_len)),
                Ok(None) => {
                    let want = match peek_header(&self.buf, max) {
                        Ok(Some(h)) => h.total_len - self.buf.len(),
                        _ => 5,
                    };
                    self.fill(want).await?
                }
                Err(e) => {
                    return Err(ReadError::Protocol(PgError::fatal(
                        SqlState::PROTOCOL_VIOLATION,
                        e.to_string(),
                    )))
                }
            }
        }
    }

    /// Writes out everything in `out`.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            crate::util::socket::write_all(&self.stream, &self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Sends an error (best effort) and, for FATAL, nothing after it.
    pub async fn send_error(&mut self, err: &PgError) {
        err.write(&mut self.out);
        if let Err(e) = self.flush().await {
            tracing::debug!(error = %e, "could not send error to client");
        }
    }

    /// Drops `n` handled bytes from the input buffer.
    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n);
    }
}
