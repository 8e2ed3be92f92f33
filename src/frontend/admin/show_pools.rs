//! SHOW POOLS: one row per (database, user), summed over the database's hosts, with
//! PgBouncer 1.18's columns in its order.

use super::result_set::{cell, ResultSet, Type};
use super::Snapshot;
use crate::config::PoolMode;

pub fn show_pools(s: &Snapshot) -> ResultSet {
    use Type::{Int4, Text};
    let mut rs = ResultSet::new(&[
        ("database", Text),
        ("user", Text),
        ("cl_active", Int4),
        ("cl_waiting", Int4),
        ("cl_active_cancel_req", Int4),
        ("cl_waiting_cancel_req", Int4),
        ("sv_active", Int4),
        ("sv_active_cancel", Int4),
        ("sv_being_canceled", Int4),
        ("sv_idle", Int4),
        ("sv_used", Int4),
        ("sv_tested", Int4),
        ("sv_login", Int4),
        ("maxwait", Int4),
        ("maxwait_us", Int4),
        ("pool_mode", Text),
    ]);
    for pool in &s.pools {
        let clients = s
            .clients
            .iter()
            .filter(|c| c.info.cluster.db.name == pool.database && c.info.pools.user == pool.user);
        let (waiting, active) =
            clients.fold(
                (0, 0),
                |(w, a), c| {
                    if c.waiting {
                        (w + 1, a)
                    } else {
                        (w, a + 1)
                    }
                },
            );
        let r = &pool.total;
        rs.row(vec![
            cell(&pool.database),
            cell(&pool.user),
            cell(active),
            cell(waiting),
            cell(0),
            cell(0),
            cell(r.active),
            cell(0),
            cell(0),
            cell(r.idle),
            cell(0),
            cell(0),
            cell(r.opening),
            cell(r.max_wait_ms / 1000),
            cell((r.max_wait_ms % 1000) * 1000),
            cell(pool_mode_name(pool.mode)),
        ]);
    }
    rs
}

pub fn pool_mode_name(mode: PoolMode) -> &'static str {
    match mode {
        PoolMode::Session => "session",
        PoolMode::Transaction => "transaction",
        PoolMode::Statement => "statement",
    }
}
