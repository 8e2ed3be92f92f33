//! The registry of live clients. Each gets Switchyard's own cancel key (pid, secret); while
//! it has a server connection, its key maps to that server's key, so a CancelRequest reaches
//! the right backend. A client's registration is also where its task leaves its waker while
//! it waits between requests, so that shutdown can wake every such session: it is the one
//! entry per session that is shared anyway (a `Notify` wait instead was 80 bytes in every
//! idle client's task).

use crate::net::ClientAddr;
use crate::params::ParamMap;
use crate::topology::{Cluster, UserPools};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

pub use crate::backend::CancelTarget;

/// Who a logged-in client is, for SHOW CLIENTS and SHOW POOLS. Kept in the client's
/// registration slot (72 bytes), which every idle client holds: the local address is the
/// listener's, and the connect time is whole seconds.
#[derive(Clone)]
pub struct ClientInfo {
    pub cluster: Arc<Cluster>,
    /// Its user's pools (and name).
    pub pools: Arc<UserPools>,
    pub peer: ClientAddr,
    /// Seconds since the Unix epoch.
    pub connected_at: u64,
    pub tls: bool,
    /// Its login settings (application_name among them); shared with like clients.
    pub startup: ParamMap,
}

impl ClientInfo {
    pub fn connected_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(self.connected_at)
    }
}

/// What a client's registration holds under its lock.
#[derive(Default)]
struct SlotState {
    /// The server it is using, if any (shared with that server connection).
    target: Option<Arc<CancelTarget>>,
    /// Its task, left by [`Registration::poll_shutdown`].
    waker: Option<Waker>,
    /// Who it is (None until logged in, and in unit tests).
    info: Option<ClientInfo>,
}

/// A client's registration, shared by its session and the registry. The flags sit beside
/// the lock (in the space its padding took), so that the wait between requests reads them
/// without taking it.
#[derive(Default)]
struct SlotData {
    state: Mutex<SlotState>,
    /// It waits for a server connection.
    waiting: AtomicBool,
    /// The console's KILL: the session ends at its next wait.
    killed: AtomicBool,
    /// `state.waker` holds the session's waker. Set by the session; cleared by whoever takes
    /// the waker (KILL, shutdown) before waking it, so that the session leaves it again.
    waker_left: AtomicBool,
}

/// One client as [`ClientRegistry::clients`] reports it.
pub struct ClientRow {
    pub pid: i32,
    pub info: ClientInfo,
    /// The server connection it uses, if any.
    pub server: Option<Arc<CancelTarget>>,
    pub waiting: bool,
}

type Slot = Arc<SlotData>;

#[derive(Default)]
pub struct ClientRegistry {
    entries: Mutex<HashMap<i32, (i32, Slot)>>,
    /// Shutdown has begun.
    closing: AtomicBool,
}

/// A client's registration; removed from the registry when dropped.
pub struct Registration {
    registry: Arc<ClientRegistry>,
    pub pid: i32,
    pub secret: i32,
    slot: Slot,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ClientRegistry {
    /// Registers a new client under a fresh random key.
    pub fn register(self: &Arc<Self>) -> Registration {
        self.register_as(None)
    }

    /// Registers a logged-in client, with who it is.
    pub fn register_as(self: &Arc<Self>, info: Option<ClientInfo>) -> Registration {
        let slot: Slot = Arc::new(SlotData {
            state: Mutex::new(SlotState {
                info,
                ..SlotState::default()
            }),
            ..SlotData::default()
        });
        let mut entries = lock(&self.entries);
        loop {
            let pid = rand::random::<i32>() & 0x7fff_ffff;
            if pid == 0 || entries.contains_key(&pid) {
                continue;
            }
            let secret = rand::random::<i32>();
            entries.insert(pid, (secret, slot.clone()));
            return Registration {
                registry: self.clone(),
                pid,
                secret,
                slot,
            };
        }
    }

    /// The server to cancel for a client key, if the key is valid and the client is busy.
    pub fn target(&self, pid: i32, secret: i32) -> Option<Arc<CancelTarget>> {
        let entries = lock(&self.entries);
        let (s, slot) = entries.get(&pid)?;
        if *s != secret {
            return None;
        }
        let t = lock(&slot.state).target.clone();
        t
    }

    /// Shutdown has begun: wakes every session that waits in [`Registration::poll_shutdown`]
    /// (and those that will: they see the flag).
    pub fn wake_all(&self) {
        // Set before the wake-ups: a session that left its waker after the scan below read
        // its slot sees the flag when it checks it next.
        self.closing.store(true, Ordering::SeqCst);
        let slots: Vec<Slot> = lock(&self.entries)
            .values()
            .map(|(_, s)| s.clone())
            .collect();
        for slot in slots {
            if let Some(w) = slot.take_waker() {
                w.wake();
            }
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// KILL: every client of `database` is told to end (woken now if it waits); returns the
    /// server connections they are using, to cancel what runs there.
    pub fn kill(&self, database: &str) -> Vec<Arc<CancelTarget>> {
        let slots: Vec<Slot> = lock(&self.entries)
            .values()
            .map(|(_, s)| s.clone())
            .collect();
        let mut busy = Vec::new();
        for slot in slots {
            let st = lock(&slot.state);
            if st
                .info
                .as_ref()
                .is_some_and(|i| i.cluster.db.name == database)
            {
                slot.killed.store(true, Ordering::SeqCst);
                busy.extend(st.target.clone());
                drop(st);
                if let Some(w) = slot.take_waker() {
                    w.wake();
                }
            }
        }
        busy
    }

    /// Every logged-in client (those registered with their info), in no particular order.
    pub fn clients(&self) -> Vec<ClientRow> {
        let slots: Vec<(i32, Slot)> = lock(&self.entries)
            .iter()
            .map(|(pid, (_, s))| (*pid, s.clone()))
            .collect();
        slots
            .into_iter()
            .filter_map(|(pid, slot)| {
                let st = lock(&slot.state);
                Some(ClientRow {
                    pid,
                    info: st.info.clone()?,
                    server: st.target.clone(),
                    waiting: slot.waiting.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SlotData {
    /// Takes the session's waker to wake it; it leaves the waker again when polled next.
    fn take_waker(&self) -> Option<Waker> {
        let mut st = lock(&self.state);
        self.waker_left.store(false, Ordering::SeqCst);
        st.waker.take()
    }
}

impl Registration {
    pub fn set(&self, target: Option<Arc<CancelTarget>>) {
        lock(&self.slot.state).target = target;
    }

    /// The console killed this client (KILL).
    pub fn killed(&self) -> bool {
        self.slot.killed.load(Ordering::SeqCst)
    }

    /// The client waits for a server connection (true) or no longer does.
    pub fn set_waiting(&self, waiting: bool) {
        self.slot.waiting.store(waiting, Ordering::Relaxed);
    }

    /// Ready once shutdown has begun or the client was killed; until then the task is
    /// woken by [`ClientRegistry::wake_all`] or [`ClientRegistry::kill`]. The waker is left
    /// once and stays until one of those takes it: a session is only ever polled by its
    /// own task, whose waker does not change, so the wait between two requests costs two
    /// atomic loads, not a lock.
    pub fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<()> {
        let slot = &*self.slot;
        if self.registry.closing.load(Ordering::SeqCst) || slot.killed.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if !slot.waker_left.load(Ordering::SeqCst) {
            let mut st = lock(&slot.state);
            if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                st.waker = Some(cx.waker().clone());
            }
            slot.waker_left.store(true, Ordering::SeqCst);
        }
        // Checked again after leaving the waker: shutdown or KILL may have come in between.
        if self.registry.closing.load(Ordering::SeqCst) || slot.killed.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.registry.entries).remove(&self.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Every idle client holds its slot: the Arc's 16 bytes, the mutex's 8, its flags and
    /// the state make one 128-byte allocation; ClientInfo (72 bytes) is most of it.
    #[test]
    fn a_registration_slot_stays_small() {
        assert!(std::mem::size_of::<ClientInfo>() <= 72);
        assert!(std::mem::size_of::<SlotData>() <= 112);
    }

    #[test]
    fn shutdown_wakes_waiting_sessions_and_keys_resolve() {
        let registry = Arc::new(ClientRegistry::default());
        let a = registry.register();
        let b = registry.register();
        a.set(Some(Arc::new(CancelTarget {
            addr: "127.0.0.1:5432".into(),
            pid: 7,
            secret: 9,
        })));
        assert_eq!(registry.target(a.pid, a.secret).map(|t| t.pid), Some(7));
        assert!(
            registry.target(a.pid, a.secret ^ 1).is_none(),
            "wrong secret"
        );
        assert!(
            registry.target(b.pid, b.secret).is_none(),
            "b has no server"
        );

        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(a.poll_shutdown(&mut cx).is_pending());
        assert!(
            a.poll_shutdown(&mut cx).is_pending(),
            "polled again: one waker kept"
        );
        registry.wake_all();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "a was woken once; b never waited"
        );
        assert!(a.poll_shutdown(&mut cx).is_ready());
        assert!(
            b.poll_shutdown(&mut cx).is_ready(),
            "a late waiter sees the flag"
        );
        drop(a);
        assert_eq!(registry.len(), 1, "a dropped key is removed");
    }
}
