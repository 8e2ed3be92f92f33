//! The console's admin commands: PAUSE [db] (new transactions wait; answers once those in
//! flight have finished), RESUME [db], RECONNECT [db] (every pooled connection replaced),
//! KILL db (its clients disconnected with 57P01, its server connections closed, the
//! database paused until RESUME), RELOAD (the config file, as SIGHUP) and SHUTDOWN.

use super::command::Admin;
use crate::frontend::Shared;
use crate::protocol::messages::PgError;
use crate::protocol::SqlState;
use crate::topology::Cluster;
use std::sync::Arc;
use std::time::Duration;

/// The clusters a command names (all of them without a name).
fn targets(shared: &Shared, db: Option<&str>) -> Result<Vec<Arc<Cluster>>, PgError> {
    match db {
        None => Ok(shared.clusters.values().cloned().collect()),
        Some(name) => shared.cluster(name).map(|c| vec![c]).ok_or_else(|| {
            PgError::error(
                SqlState::INVALID_CATALOG_NAME,
                format!("database \"{name}\" does not exist"),
            )
        }),
    }
}

/// Runs an admin command; the CommandComplete tag, or the error.
pub async fn run(shared: &Shared, cmd: Admin) -> Result<String, PgError> {
    match cmd {
        Admin::Pause(db) => {
            let clusters = targets(shared, db.as_deref())?;
            for c in &clusters {
                c.pause();
            }
            // Transactions in flight finish; new ones wait.
            while clusters.iter().any(|c| c.busy_servers() > 0) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tracing::info!(db = ?db, "PAUSE: databases paused, no transaction in flight");
            Ok("PAUSE".into())
        }
        Admin::Resume(db) => {
            for c in targets(shared, db.as_deref())? {
                c.resume();
            }
            tracing::info!(db = ?db, "RESUME");
            Ok("RESUME".into())
        }
        Admin::Reconnect(db) => {
            let closed: usize = targets(shared, db.as_deref())?
                .iter()
                .map(|c| c.reconnect())
                .sum();
            tracing::info!(db = ?db, closed, "RECONNECT: pooled connections replaced");
            Ok("RECONNECT".into())
        }
        Admin::Kill(db) => kill(shared, &db).await,
        Admin::Reload => shared
            .control
            .reload()
            .await
            .map(|summary| {
                tracing::info!(%summary, "RELOAD from the console");
                "RELOAD".to_string()
            })
            .map_err(|e| {
                PgError::error(
                    SqlState::CONFIG_FILE_ERROR,
                    format!("reload failed, nothing was applied: {e}"),
                )
            }),
        Admin::Shutdown => {
            tracing::info!("SHUTDOWN from the console");
            shared.control.begin_shutdown();
            Ok("SHUTDOWN".into())
        }
    }
}

/// KILL: the database is paused, its clients told to go (what runs for them is cancelled),
/// and its server connections closed.
async fn kill(shared: &Shared, db: &str) -> Result<String, PgError> {
    let cluster = targets(shared, Some(db))?.remove(0);
    cluster.pause();
    let busy = shared.clients.kill(db);
    for target in &busy {
        crate::backend::send_cancel(target).await;
    }
    let closed = cluster.reconnect();
    tracing::warn!(%db, clients_busy = busy.len(), closed, "KILL: clients disconnected, server connections closed; paused until RESUME");
    Ok("KILL".into())
}
