//! A running Switchyard: the accept loop over the TCP listener and the optional Unix-domain
//! one (one task per client) and the graceful drain at shutdown (stop accepting, wait a
//! bounded time for sessions, close the pools).

use super::App;
use crate::frontend::handle_client;
use crate::net::Listener;
use futures_util::FutureExt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A running Switchyard: its address and the task serving it.
pub struct Server {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    /// The Unix-domain socket clients may connect to (`listen_unix_dir`).
    pub unix_socket: Option<PathBuf>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (`metrics_listen`).
    pub metrics_addr: Option<SocketAddr>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `addr` (use port 0 for any) and starts serving on the current runtime.
    pub async fn start(app: Arc<App>, addr: SocketAddr) -> std::io::Result<Server> {
        let ops = app.shared().config.operations.clone();
        let listener = Listener::bind_shared(addr, ops.so_reuseport)?;
        let addr = listener.local_addr()?;
        // Named after the port clients use over TCP, as PostgreSQL names its socket.
        let unix = match &ops.listen_unix_dir {
            Some(dir) => Some(Listener::bind_unix(dir, addr.port(), ops.so_reuseport)?),
            None => None,
        };
        let unix_socket = unix.as_ref().and_then(|u| u.unix_path()).map(PathBuf::from);
        let metrics_addr = match ops.metrics_listen {
            Some(at) => {
                let metrics = tokio::net::TcpListener::bind(at).await?;
                let bound = metrics.local_addr()?;
                tracing::info!(addr = %bound, "metrics listening");
                let shared = app.shared();
                tokio::spawn(super::http::serve(metrics, shared, app.shutdown_signal()));
                Some(bound)
            }
            None => None,
        };
        app.start_background_tasks();
        let task = tokio::spawn(serve(app.clone(), listener, unix));
        Ok(Server {
            app,
            addr,
            unix_socket,
            metrics_addr,
            task,
        })
    }

    /// Begins shutdown and waits for the drain to finish.
    pub async fn stop(self) {
        self.app.begin_shutdown();
        let _ = self.task.await;
    }
}

/// The client tasks still running: a count, not a set of handles, so a client costs no
/// bookkeeping of its own (a `JoinSet` entry was 56 bytes per idle client).
#[derive(Default)]
struct Sessions {
    live: AtomicUsize,
    all_ended: Notify,
}

/// Held by a client's task; counts it as live until the task ends or is dropped.
struct Live(Arc<Sessions>);

impl Sessions {
    fn enter(self: &Arc<Self>) -> Live {
        self.live.fetch_add(1, Ordering::Relaxed);
        Live(self.clone())
    }

    fn count(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Resolves once no client task is left.
    async fn ended(&self) {
        loop {
            let notified = self.all_ended.notified();
            tokio::pin!(notified);
            // Registered before the check, so the last task's notification is not missed.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_ended.notify_waiters();
        }
    }
}

/// Serves clients until shutdown begins, then drains sessions for at most the configured
/// shutdown timeout.
async fn serve(app: Arc<App>, listener: Listener, unix: Option<Listener>) {
    let sessions = Arc::new(Sessions::default());
    let mut shutdown = app.shutdown_signal();
    let max_clients = app.shared().config.operations.max_client_connections;
    let socket = unix.as_ref().and_then(|u| u.unix_path());
    tracing::info!(addr = ?listener.local_addr().ok(), unix_socket = ?socket, "listening");
    loop {
        tokio::select! {
            accepted = accept_either(&listener, unix.as_ref()) => match accepted {
                Ok((stream, peer)) => {
                    // Over the limit, the client is told so once it has sent its startup
                    // packet (a cancel request is still served).
                    let over_limit = sessions.count() >= max_clients;
                    let live = sessions.enter();
                    let client = handle_client(app.shared(), stream, peer, over_limit);
                    tokio::spawn(client.map(move |()| drop(live)));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = wait_shutdown(&mut shutdown) => break,
        }
    }
    drop(listener);
    drop(unix);
    let timeout = app.shared().config.shutdown_timeout();
    tracing::info!(
        sessions = sessions.count(),
        "shutting down: waiting for sessions"
    );
    if tokio::time::timeout(timeout, sessions.ended())
        .await
        .is_err()
    {
        // The process ends right after this (the runtime drops the tasks left, closing their
        // sockets); a server connection they give back before that meets a closed pool and
        // is closed.
        tracing::warn!(
            sessions = sessions.count(),
            "shutdown timeout: closing remaining sessions"
        );
    }
    for cluster in app.clusters() {
        for pools in cluster.all_pools() {
            for p in &pools.hosts {
                p.close();
            }
        }
    }
}

/// The next client of either listener.
async fn accept_either(
    tcp: &Listener,
    unix: Option<&Listener>,
) -> std::io::Result<(crate::net::Stream, crate::net::ClientAddr)> {
    match unix {
        None => tcp.accept().await,
        Some(unix) => tokio::select! {
            accepted = tcp.accept() => accepted,
            accepted = unix.accept() => accepted,
        },
    }
}

/// Resolves once shutdown has begun (holds no watch guard across awaits).
async fn wait_shutdown(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
