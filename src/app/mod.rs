//! The top of the stack: builds what the client sessions share (users, clusters with their
//! pools, registries) from a config, owns the current generation of it (a reload makes a
//! new one: `reload`), and starts the background tasks; `server` accepts clients and drains
//! them. Nothing is process-global, so two Apps can run in one process.

mod background;
mod generation;
mod http;
mod metrics;
mod reload;
mod server;

pub use server::Server;

use crate::config::Config;
use crate::frontend::clients::ClientRegistry;
use crate::frontend::control::{Control, ReloadReply};
use crate::frontend::Shared;
use crate::prepared::Registry;
use crate::topology::Cluster;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, watch};

/// The wiring of one Switchyard: the current generation of what the sessions share, the
/// control (shutdown, reload), and the config file a reload reads.
pub struct App {
    current: RwLock<Arc<Shared>>,
    control: Arc<Control>,
    config_path: Mutex<Option<PathBuf>>,
    /// Reload requests from the console, until the background tasks take them.
    reloads: Mutex<Option<mpsc::Receiver<ReloadReply>>>,
}

impl App {
    /// Builds the App from a validated config; fails on settings this build cannot serve.
    pub fn new(config: Config) -> Result<Arc<App>, String> {
        let generation = generation::build(config, None)?;
        let clients = Arc::new(ClientRegistry::default());
        let (control, reloads) = Control::new(clients.clone());
        let control = Arc::new(control);
        let shared = Shared::first(generation, control.clone(), clients);
        Ok(Arc::new(App {
            current: RwLock::new(Arc::new(shared)),
            control,
            config_path: Mutex::new(None),
            reloads: Mutex::new(Some(reloads)),
        }))
    }

    /// The file RELOAD and SIGHUP read (paths in it are relative to its directory).
    pub fn set_config_path(&self, path: PathBuf) {
        *self.config_path.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
    }

    /// The current generation of what the client sessions share.
    pub fn shared(&self) -> Arc<Shared> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn config(&self) -> Config {
        self.shared().config.clone()
    }

    /// Prepared statements shared by all clients.
    pub fn statements(&self) -> Arc<Registry> {
        self.shared().statements.clone()
    }

    pub fn cluster(&self, database: &str) -> Option<Arc<Cluster>> {
        self.shared().cluster(database)
    }

    pub fn clusters(&self) -> Vec<Arc<Cluster>> {
        self.shared().clusters.values().cloned().collect()
    }

    /// Resolves when shutdown has begun.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.control.shutdown_signal()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.control.is_shutting_down()
    }

    pub fn begin_shutdown(&self) {
        self.control.begin_shutdown();
    }
}
