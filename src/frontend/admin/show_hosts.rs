//! SHOW HOSTS: one row per server of each database, as the health checks last saw it:
//! role (`primary`, `replica`, `unknown` before the first check, `down`, `fenced`),
//! timeline, WAL position (the primary's current one, a replica's replay), lag, and whether
//! it is banned from reads or fenced.

use super::result_set::{bool_cell, cell, ResultSet, Type};
use super::show_connections::split_host;
use super::Snapshot;
use crate::topology::Role;
use std::time::Instant;

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Unknown => "unknown",
        Role::Primary => "primary",
        Role::Replica => "replica",
        Role::Down => "down",
        Role::Fenced => "fenced",
    }
}

pub fn show_hosts(s: &Snapshot) -> ResultSet {
    use Type::{Bool, Int4, Int8, Text};
    let mut rs = ResultSet::new(&[
        ("database", Text),
        ("host", Text),
        ("port", Int4),
        ("role", Text),
        ("timeline", Int8),
        ("lsn", Text),
        ("lag_bytes", Int8),
        ("lag_ms", Int8),
        ("banned", Bool),
        ("fenced", Bool),
        ("last_error", Text),
    ]);
    let now = Instant::now();
    for db in &s.databases {
        let snap = db.cluster.topology.snapshot();
        for h in &snap.hosts {
            let (host, port) = split_host(&h.addr);
            let checked = h.role != Role::Unknown;
            rs.row(vec![
                cell(&db.name),
                cell(host),
                cell(port),
                cell(role_name(h.role)),
                checked.then(|| h.timeline.to_string()),
                checked.then(|| format!("{:X}/{:X}", h.lsn >> 32, h.lsn & 0xffff_ffff)),
                cell(h.lag_bytes),
                cell(h.lag_ms),
                bool_cell(h.is_banned(now)),
                bool_cell(h.role == Role::Fenced),
                h.error.clone(),
            ]);
        }
    }
    rs
}
