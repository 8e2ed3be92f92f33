//! The admin console: the virtual database `switchyard` (alias `pgbouncer`, unless a
//! configured database has that name), reached with any PostgreSQL client by the users in
//! `admin_users` (every command) and `stats_users` (SHOW only). It speaks the simple query
//! protocol; each SHOW answers from a snapshot of the pools, clients, hosts and counters
//! taken for that command. One file per command family; column names, order and types
//! follow PgBouncer 1.18 where the concept is the same, Switchyard's own columns last.

mod admin_commands;
mod averages;
mod command;
mod result_set;
mod show_cache;
mod show_config;
mod show_connections;
mod show_hosts;
mod show_lists;
mod show_pools;
mod show_route;
mod show_stats;

pub use averages::{Averages, PeriodAverages, STATS_PERIOD};
pub use show_hosts::role_name;

use super::client_io::{ClientIo, ReadError};
use super::clients::ClientRow;
use super::Shared;
use crate::backend::pool::PoolReport;
use crate::config::{ConsoleRole, PoolMode, CONSOLE_DATABASES};
use crate::net::ClientAddr;
use crate::protocol::messages::{self, PgError, TxStatus};
use crate::protocol::SqlState;
use crate::stats::TrafficTotals;
use crate::topology::Cluster;
use command::{Command, Show};
use result_set::{cell, ResultSet, Type};
use std::net::SocketAddr;
use std::sync::Arc;

/// One server pool of a (database, user), with its host's role.
pub struct HostPool {
    pub addr: String,
    pub role: &'static str,
    pub report: PoolReport,
}

/// A (database, user)'s pools.
pub struct PoolRow {
    pub database: String,
    pub user: String,
    pub mode: PoolMode,
    pub hosts: Vec<HostPool>,
    /// Summed over the hosts.
    pub total: PoolReport,
}

pub struct DatabaseRow {
    pub name: String,
    pub cluster: Arc<Cluster>,
    pub traffic: TrafficTotals,
    pub averages: PeriodAverages,
}

/// Everything the SHOW commands report, read once per command.
pub struct Snapshot {
    /// The client listener's address.
    pub listen: SocketAddr,
    pub clients: Vec<ClientRow>,
    pub pools: Vec<PoolRow>,
    pub databases: Vec<DatabaseRow>,
}

impl Snapshot {
    pub fn take(shared: &Shared) -> Snapshot {
        let mut databases: Vec<DatabaseRow> = shared
            .clusters
            .iter()
            .map(|(name, c)| DatabaseRow {
                name: name.clone(),
                cluster: c.clone(),
                traffic: c.stats.traffic.totals(),
                averages: shared.averages.of(name),
            })
            .collect();
        databases.sort_by(|a, b| a.name.cmp(&b.name));
        let mut pools = Vec::new();
        for db in &databases {
            let snap = db.cluster.topology.snapshot();
            let mut users = db.cluster.all_pools();
            users.sort_by(|a, b| a.user.cmp(&b.user));
            for up in users {
                let hosts: Vec<HostPool> = up
                    .hosts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| HostPool {
                        addr: p.addr().to_string(),
                        role: snap.hosts.get(i).map_or("unknown", |h| role_name(h.role)),
                        report: p.report(),
                    })
                    .collect();
                let total = sum_reports(hosts.iter().map(|h| &h.report));
                pools.push(PoolRow {
                    database: db.name.clone(),
                    user: up.user.clone(),
                    mode: db.cluster.db.pool_mode,
                    hosts,
                    total,
                });
            }
        }
        Snapshot {
            listen: shared.config.listen,
            clients: shared.clients.clients(),
            pools,
            databases,
        }
    }
}

fn sum_reports<'a>(reports: impl Iterator<Item = &'a PoolReport>) -> PoolReport {
    let mut t = PoolReport::default();
    for r in reports {
        t.members.extend(r.members.iter().cloned());
        t.idle += r.idle;
        t.active += r.active;
        t.opening += r.opening;
        t.waiting += r.waiting;
        t.max_wait_ms = t.max_wait_ms.max(r.max_wait_ms);
    }
    t
}

/// Whether `database` names the console (and no configured database of that name).
pub fn is_console(shared: &Shared, database: &str) -> bool {
    CONSOLE_DATABASES.contains(&database) && shared.cluster(database).is_none()
}

/// Serves an authenticated console client until it leaves. Each command sees the newest
/// generation (after a reload).
pub async fn serve(shared: &Arc<Shared>, mut io: ClientIo, user: &str, peer: ClientAddr) {
    let Some(role) = shared.config.operations.console_role(user) else {
        tracing::info!(%peer, %user, "console login refused: not in admin_users or stats_users");
        io.send_error(&PgError::fatal(
            SqlState::INSUFFICIENT_PRIVILEGE,
            format!(
                "user \"{user}\" may not use the admin console (see admin_users and stats_users)"
            ),
        ))
        .await;
        return;
    };
    tracing::info!(%peer, %user, ?role, "console client logged in");
    // Registered (without a server to cancel) so that shutdown reaches it too.
    let registration = shared.clients.register();
    greet(&mut io);
    loop {
        if io.flush().await.is_err() {
            return;
        }
        let read = tokio::select! {
            r = io.read_frame(shared.config.max_message_size) => r,
            _ = std::future::poll_fn(|cx| registration.poll_shutdown(cx)) => {
                let bye = PgError::fatal(
                    SqlState::ADMIN_SHUTDOWN,
                    "terminating connection because Switchyard is shutting down",
                );
                return io.send_error(&bye).await;
            }
        };
        let frame = match read {
            Ok(f) => f,
            Err(ReadError::Protocol(e)) => return io.send_error(&e).await,
            Err(_) => return,
        };
        match frame[0] {
            b'Q' => {
                let sql = crate::protocol::client_msgs::query_sql(&frame).unwrap_or("");
                answer(&shared.newest(), role, sql, io.out()).await;
                messages::ready_for_query(io.out(), TxStatus::Idle);
            }
            b'X' => return,
            _ => {
                let e = PgError::fatal(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    "the admin console takes simple queries only",
                );
                return io.send_error(&e).await;
            }
        }
    }
}

/// What a server would report at login, so that psql and drivers are content.
fn greet(io: &mut ClientIo) {
    let out = io.out();
    for (name, value) in [
        ("server_version", "15.0 (Switchyard admin console)"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("application_name", ""),
    ] {
        messages::parameter_status(out, name, value);
    }
    messages::backend_key_data(out, 0, 0);
    messages::ready_for_query(out, TxStatus::Idle);
}

/// Runs one console query into `out` (rows and CommandComplete, or an error). SHOW is for
/// both roles; the admin commands for `admin_users` only.
async fn answer(shared: &Shared, role: ConsoleRole, sql: &str, out: &mut bytes::BytesMut) {
    let cmd = match command::parse(sql) {
        Ok(c) => c,
        Err(e) => return e.write(out),
    };
    match cmd {
        Command::Empty => messages::write_message(out, b'I', |_| {}),
        Command::ShowRoute(sql) => {
            show_route::show_route(&Snapshot::take(shared), &sql).write(out, "SHOW")
        }
        Command::Show(what) => show(shared, what).write(out, "SHOW"),
        Command::Admin(_) if role != ConsoleRole::Admin => PgError::error(
            SqlState::INSUFFICIENT_PRIVILEGE,
            "only admin_users may run this command; stats_users may SHOW",
        )
        .write(out),
        Command::Admin(cmd) => match admin_commands::run(shared, cmd).await {
            Ok(tag) => messages::command_complete(out, &tag),
            Err(e) => e.write(out),
        },
    }
}

fn show(shared: &Shared, what: Show) -> ResultSet {
    let snap = || Snapshot::take(shared);
    match what {
        Show::Pools => show_pools::show_pools(&snap()),
        Show::Stats => show_stats::show_stats(&snap()),
        Show::StatsTotals => show_stats::show_stats_totals(&snap()),
        Show::StatsAverages => show_stats::show_stats_averages(&snap()),
        Show::Servers => show_connections::show_servers(&snap()),
        Show::Clients => show_connections::show_clients(&snap()),
        Show::Databases => show_lists::show_databases(&snap()),
        Show::Users => show_lists::show_users(shared),
        Show::Config => show_config::show_config(&shared.config),
        Show::Version => show_lists::show_version(),
        Show::Lists => show_lists::show_lists(shared, &snap()),
        Show::Hosts => show_hosts::show_hosts(&snap()),
        Show::Cache => show_cache::show_cache(&snap()),
        Show::Help => {
            let mut rs = ResultSet::new(&[("command", Type::Text)]);
            for n in command::show_names() {
                rs.row(vec![cell(format!("SHOW {}", n.to_uppercase()))]);
            }
            rs
        }
    }
}
