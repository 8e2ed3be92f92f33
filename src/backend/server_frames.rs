//! Reading whole frames from a server connection, for the exchanges Switchyard runs itself
//! (login, its own queries); client traffic streams through the session instead.

use crate::net::Stream;
use crate::protocol::frame::{complete_frame, peek_header, FrameHeader};
use bytes::BytesMut;
use std::io;
use tokio::io::AsyncReadExt;

/// Largest frame accepted from a server outside the forwarding path.
pub const SERVER_MAX_FRAME: usize = 1 << 30;

/// Reads until a whole frame is at the front of `buf` and returns its header.
pub async fn read_frame(stream: &mut Stream, buf: &mut BytesMut) -> io::Result<FrameHeader> {
    loop {
        match complete_frame(buf, SERVER_MAX_FRAME) {
            Ok(Some(h)) => return Ok(h),
            Ok(None) => {
                if let Ok(Some(h)) = peek_header(buf, SERVER_MAX_FRAME) {
                    buf.reserve(h.total_len.saturating_sub(buf.len()));
                } else {
                    buf.reserve(8192);
                }
                if stream.read_buf(buf).await? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    ));
                }
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
    }
}
