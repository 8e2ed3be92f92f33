//! Accept loop and graceful drain.

use crate::app::App;
use crate::frontend::handle_client;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A running Switchyard: its address and the task serving it.
pub struct Server {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `addr` (use port 0 for any) and starts serving on the current runtime.
    pub async fn start(app: Arc<App>, addr: SocketAddr) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        app.start_background_tasks();
        let task = tokio::spawn(serve(app.clone(), listener));
        Ok(Server { app, addr, task })
    }

    /// Begins shutdown and waits for the drain to finish.
    pub async fn stop(self) {
        self.app.begin_shutdown();
        let _ = self.task.await;
    }
}

/// Serves clients until shutdown begins, then drains sessions for at most the configured
/// shutdown timeout.
pub async fn serve(app: Arc<App>, listener: TcpListener) {
    let mut sessions = JoinSet::new();
    let mut shutdown = app.shutdown_signal();
    tracing::info!(addr = ?listener.local_addr().ok(), "listening");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    sessions.spawn(handle_client(app.clone(), stream, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = wait_shutdown(&mut shutdown) => break,
        }
    }
    drop(listener);
    let timeout = app.config().shutdown_timeout();
    tracing::info!(
        sessions = sessions.len(),
        "shutting down: waiting for sessions"
    );
    let drained = tokio::time::timeout(timeout, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            sessions = sessions.len(),
            "shutdown timeout: closing remaining sessions"
        );
        sessions.abort_all();
    }
    for cluster in app.clusters() {
        for pools in cluster.all_pools() {
            for p in &pools.hosts {
                p.close();
            }
        }
    }
}

/// Resolves once shutdown has begun (holds no watch guard across awaits).
async fn wait_shutdown(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
