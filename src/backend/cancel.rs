//! Cancelling a query on a server: where a CancelRequest for a connection goes (its address
//! and backend key), and sending one on a connection of its own.

use crate::net::Stream;
use bytes::BytesMut;
use std::sync::Arc;
use std::time::Duration;

/// Where a CancelRequest for a server connection goes: its address and backend key. Shared
/// (an `Arc`) with the cancel registration of the client using the connection.
#[derive(Debug)]
pub struct CancelTarget {
    pub addr: Arc<str>,
    pub pid: i32,
    pub secret: i32,
}

/// Sends a CancelRequest to a server (best effort, bounded by a timeout).
pub async fn send_cancel(target: &CancelTarget) {
    let mut buf = BytesMut::new();
    postgres_protocol::message::frontend::cancel_request(target.pid, target.secret, &mut buf);
    let attempt = async {
        let mut s = Stream::connect(&target.addr).await?;
        s.send_all(&buf).await
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(())) => tracing::debug!(server = %target.addr, pid = target.pid, "cancel sent"),
        Ok(Err(e)) => tracing::warn!(server = %target.addr, error = %e, "cancel failed"),
        Err(_) => tracing::warn!(server = %target.addr, "cancel timed out"),
    }
}
