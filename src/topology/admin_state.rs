//! What the admin console can do to a cluster: pause it (new transactions wait, those in
//! flight finish), resume it, and make its pools reconnect (every pooled connection is
//! closed: idle ones at once, busy ones when they are returned).

use super::Cluster;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// The pause switch of one cluster: an atomic for the check every transaction makes, and a
/// watch for those that wait.
pub struct PauseSwitch {
    paused: AtomicBool,
    changes: watch::Sender<bool>,
}

impl Default for PauseSwitch {
    fn default() -> Self {
        PauseSwitch {
            paused: AtomicBool::new(false),
            changes: watch::channel(false).0,
        }
    }
}

impl Cluster {
    pub fn is_paused(&self) -> bool {
        self.pause.paused.load(Ordering::Acquire)
    }

    /// New transactions wait until [`Cluster::resume`].
    pub fn pause(&self) {
        self.pause.paused.store(true, Ordering::Release);
        self.pause.changes.send_replace(true);
    }

    pub fn resume(&self) {
        self.pause.paused.store(false, Ordering::Release);
        self.pause.changes.send_replace(false);
    }

    /// Resolves once the cluster is not paused.
    pub async fn wait_resumed(&self) {
        let mut rx = self.pause.changes.subscribe();
        let _ = rx.wait_for(|paused| !*paused).await;
    }

    /// Server connections checked out (or being opened) by any user: the transactions in
    /// flight, in transaction pooling.
    pub fn busy_servers(&self) -> usize {
        self.all_pools()
            .iter()
            .flat_map(|p| p.hosts.iter())
            .map(|p| p.in_use())
            .sum()
    }

    /// Every pooled connection is replaced: idle ones are closed now, busy ones when they are
    /// returned. Returns how many were closed now.
    pub fn reconnect(&self) -> usize {
        self.bump_generations();
        self.all_pools()
            .iter()
            .flat_map(|p| p.hosts.iter())
            .map(|p| p.close_idle())
            .sum()
    }
}
