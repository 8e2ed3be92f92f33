//! What the console asks of the app above it, without depending on it: shut down, and
//! reload the config file (a request the app answers with what changed, or why nothing was
//! applied). Lives across reloads.

use super::clients::ClientRegistry;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// The answer to a reload: a summary of what changed, or why nothing was applied.
pub type ReloadReply = oneshot::Sender<Result<String, String>>;

pub struct Control {
    shutdown: watch::Sender<bool>,
    reloads: mpsc::Sender<ReloadReply>,
    clients: Arc<ClientRegistry>,
}

impl Control {
    /// The control, and the receiving end of reload requests (for the app).
    pub fn new(clients: Arc<ClientRegistry>) -> (Control, mpsc::Receiver<ReloadReply>) {
        let (reloads, rx) = mpsc::channel(4);
        let control = Control {
            shutdown: watch::channel(false).0,
            reloads,
            clients,
        };
        (control, rx)
    }

    /// Resolves when shutdown has begun.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Shutdown begins: the listener stops, idle sessions are told (57P01) and end.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        // Sessions wait for it through their cancel registrations.
        self.clients.wake_all();
    }

    /// Asks the app to reload its config file; the answer says what changed.
    pub async fn reload(&self) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        self.reloads
            .send(tx)
            .await
            .map_err(|_| "reload is not available (the app is not running)".to_string())?;
        rx.await
            .map_err(|_| "the reload was abandoned".to_string())?
    }
}
