//! SHOW CLIENTS and SHOW SERVERS: one row per connection, with PgBouncer 1.18's 18 columns
//! (the same for both), then Switchyard's own: for servers, the host's role.
//! `ptr` is Switchyard's key of a client (its cancel pid) or a server's backend pid, in hex;
//! `link` names the other end while a client uses a server.

use super::result_set::{cell, Cell, ResultSet, Type};
use super::Snapshot;
use std::net::SocketAddr;
use std::time::SystemTime;

fn columns(extra: &[(&'static str, Type)]) -> ResultSet {
    use Type::{Int4, Text};
    let mut cols = vec![
        ("type", Text),
        ("user", Text),
        ("database", Text),
        ("state", Text),
        ("addr", Text),
        ("port", Int4),
        ("local_addr", Text),
        ("local_port", Int4),
        ("connect_time", Text),
        ("request_time", Text),
        ("wait", Int4),
        ("wait_us", Int4),
        ("close_needed", Int4),
        ("ptr", Text),
        ("link", Text),
        ("remote_pid", Int4),
        ("tls", Text),
        ("application_name", Text),
    ];
    cols.extend_from_slice(extra);
    ResultSet::new(&cols)
}

/// `YYYY-MM-DD HH:MM:SS UTC`, as PgBouncer writes times.
pub fn utc(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn addr_cells(a: Option<SocketAddr>) -> [Cell; 2] {
    match a {
        Some(a) => [cell(a.ip()), cell(a.port())],
        None => [None, None],
    }
}

fn hex(pid: i32) -> String {
    format!("0x{pid:x}")
}

pub fn show_clients(s: &Snapshot) -> ResultSet {
    let mut rs = columns(&[]);
    for c in &s.clients {
        let i = &c.info;
        let ([addr, port], [laddr, lport]) = match i.peer.tcp() {
            Some(peer) => (addr_cells(Some(peer)), addr_cells(Some(s.listen))),
            // As PgBouncer: a Unix-socket client is "unix" at the listen port, both ends.
            None => {
                let unix = || [cell("unix"), cell(s.listen.port())];
                (unix(), unix())
            }
        };
        let state = if c.waiting { "waiting" } else { "active" };
        let app = i.startup.get("application_name").map(|v| match v {
            crate::params::ParamValue::Literal(s) | crate::params::ParamValue::Raw(s) => s.clone(),
        });
        rs.row(vec![
            cell("C"),
            cell(&i.pools.user),
            cell(&i.cluster.db.name),
            cell(state),
            addr,
            port,
            laddr,
            lport,
            cell(utc(i.connected_at())),
            cell(utc(i.connected_at())),
            cell(0),
            cell(0),
            cell(0),
            cell(hex(c.pid)),
            c.server.as_ref().map(|t| hex(t.pid)),
            cell(0),
            cell(if i.tls { "TLS" } else { "" }),
            Some(app.unwrap_or_default()),
        ]);
    }
    rs
}

pub fn show_servers(s: &Snapshot) -> ResultSet {
    let mut rs = columns(&[("role", Type::Text)]);
    for pool in &s.pools {
        for host in &pool.hosts {
            let (ip, port) = split_host(&host.addr);
            for (pid, m, idle) in &host.report.members {
                let link = s
                    .clients
                    .iter()
                    .find(|c| {
                        c.server
                            .as_ref()
                            .is_some_and(|t| t.pid == *pid && *t.addr == *host.addr)
                    })
                    .map(|c| hex(c.pid));
                let [laddr, lport] = addr_cells(m.local);
                rs.row(vec![
                    cell("S"),
                    cell(&pool.user),
                    cell(&pool.database),
                    cell(if *idle { "idle" } else { "active" }),
                    cell(&ip),
                    cell(&port),
                    laddr,
                    lport,
                    cell(utc(m.connected_at)),
                    cell(utc(m.connected_at)),
                    cell(0),
                    cell(0),
                    cell(0),
                    cell(hex(*pid)),
                    link,
                    cell(pid),
                    cell(if m.tls { "TLS" } else { "" }),
                    cell(""),
                    cell(host.role),
                ]);
            }
        }
    }
    rs
}

/// "host:port" as (host, port); a host without a port keeps an empty port.
pub fn split_host(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.trim_matches(['[', ']']).to_string(), p.to_string()),
        None => (addr.to_string(), String::new()),
    }
}
