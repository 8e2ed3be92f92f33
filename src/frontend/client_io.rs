//! The client socket with its buffers: reading the startup packet and single frames during
//! login, and flushing what Switchyard writes.

use crate::net::Stream;
use crate::protocol::frame::{complete_frame, peek_header};
use crate::protocol::messages::PgError;
use crate::protocol::startup::{self, StartupPacket};
use crate::protocol::SqlState;
use crate::util::buffers::BufferSet;
use bytes::{Buf, BytesMut};
use std::io;
use tokio::io::AsyncReadExt;

pub struct ClientIo {
    pub stream: Stream,
    /// Client input (`cin`), Switchyard's own messages to the client (`cout`, sent by
    /// [`ClientIo::flush`]) and, in a session, the server side's buffers; none while idle.
    pub bufs: BufferSet,
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
    pub fn new(stream: Stream) -> Self {
        ClientIo {
            stream,
            bufs: BufferSet::default(),
        }
    }

    async fn fill(&mut self, want: usize) -> Result<(), ReadError> {
        let cin = &mut self.bufs.get().cin;
        cin.reserve(want.max(1024));
        if self.stream.read_buf(cin).await? == 0 {
            return Err(ReadError::Closed);
        }
        Ok(())
    }

    /// Reads one startup-phase packet (no type byte).
    pub async fn read_startup(&mut self) -> Result<StartupPacket, ReadError> {
        loop {
            let cin = &mut self.bufs.get().cin;
            let len = startup::packet_len(cin).map_err(|e| {
                ReadError::Protocol(PgError::fatal(SqlState::PROTOCOL_VIOLATION, e.to_string()))
            })?;
            match len {
                Some(len) if cin.len() >= len => {
                    let packet = cin.split_to(len);
                    return startup::decode(&packet).map_err(|e| {
                        ReadError::Protocol(PgError::fatal(
                            SqlState::PROTOCOL_VIOLATION,
                            e.to_string(),
                        ))
                    });
                }
                Some(len) => {
                    let want = len - cin.len();
                    self.fill(want).await?
                }
                None => self.fill(8).await?,
            }
        }
    }

    /// True if the client sent bytes right behind a packet we must answer before it may
    /// send more (e.g. behind an SSLRequest).
    pub fn has_buffered(&self) -> bool {
        !self.bufs.client_input().is_empty()
    }

    /// Reads one regular frame of at most `max` bytes and returns it whole.
    pub async fn read_frame(&mut self, max: usize) -> Result<BytesMut, ReadError> {
        loop {
            let cin = &mut self.bufs.get().cin;
            match complete_frame(cin, max) {
                Ok(Some(h)) => return Ok(cin.split_to(h.total_len)),
                Ok(None) => {
                    let want = match peek_header(cin, max) {
                        Ok(Some(h)) => h.total_len - cin.len(),
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

    /// Writes out everything in `cout`.
    pub async fn flush(&mut self) -> io::Result<()> {
        let out = &mut self.bufs.get().cout;
        if !out.is_empty() {
            self.stream.send_all(out).await?;
            out.clear();
        }
        Ok(())
    }

    /// Where Switchyard's own messages to the client are put before [`ClientIo::flush`].
    pub fn out(&mut self) -> &mut BytesMut {
        &mut self.bufs.get().cout
    }

    /// Sends an error (best effort) and, for FATAL, nothing after it.
    pub async fn send_error(&mut self, err: &PgError) {
        err.write(self.out());
        if let Err(e) = self.flush().await {
            tracing::debug!(error = %e, "could not send error to client");
        }
    }

    /// Drops `n` handled bytes from the input buffer.
    pub fn consume(&mut self, n: usize) {
        self.bufs.get().cin.advance(n);
    }
}
