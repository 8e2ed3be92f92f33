//! Cancel keys: each client gets Switchyard's own (pid, secret); while it has a server
//! connection, its key maps to that server's key, so a CancelRequest reaches the right backend.

use bytes::BytesMut;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Where a cancel for a client goes right now.
#[derive(Debug, Clone)]
pub struct CancelTarget {
    pub addr: Arc<str>,
    pub pid: i32,
    pub secret: i32,
}

type Slot = Arc<Mutex<Option<CancelTarget>>>;

#[derive(Default)]
pub struct CancelRegistry {
    entries: Mutex<HashMap<i32, (i32, Slot)>>,
}

/// A client's registration; removed from the registry when dropped.
pub struct CancelHandle {
    registry: Arc<CancelRegistry>,
    pub pid: i32,
    pub secret: i32,
    slot: Slot,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CancelRegistry {
    /// Registers a new client under a fresh random key.
    pub fn register(self: &Arc<Self>) -> CancelHandle {
        let slot: Slot = Arc::default();
        let mut entries = lock(&self.entries);
        loop {
            let pid = rand::random::<i32>() & 0x7fff_ffff;
            if pid == 0 || entries.contains_key(&pid) {
                continue;
            }
            let secret = rand::random::<i32>();
            entries.insert(pid, (secret, slot.clone()));
            return CancelHandle {
                registry: self.clone(),
                pid,
                secret,
                slot,
            };
        }
    }

    /// The server to cancel for a client key, if the key is valid and the client is busy.
    pub fn target(&self, pid: i32, secret: i32) -> Option<CancelTarget> {
        let entries = lock(&self.entries);
        let (s, slot) = entries.get(&pid)?;
        if *s != secret {
            return None;
        }
        let t = lock(slot).clone();
        t
    }

    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CancelHandle {
    pub fn set(&self, target: Option<CancelTarget>) {
        *lock(&self.slot) = target;
    }
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        lock(&self.registry.entries).remove(&self.pid);
    }
}

/// Sends a CancelRequest to a server (best effort, bounded by a timeout).
pub async fn send_cancel(target: &CancelTarget) {
    let mut buf = BytesMut::new();
    postgres_protocol::message::frontend::cancel_request(target.pid, target.secret, &mut buf);
    let attempt = async {
        let mut s = TcpStream::connect(&*target.addr).await?;
        s.write_all(&buf).await?;
        s.shutdown().await
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(())) => tracing::debug!(server = %target.addr, pid = target.pid, "cancel sent"),
        Ok(Err(e)) => tracing::warn!(server = %target.addr, error = %e, "cancel failed"),
        Err(_) => tracing::warn!(server = %target.addr, "cancel timed out"),
    }
}
