//! What the topology knows about each host at one moment, and the rules that read it:
//! which host takes writes and which replicas may serve a read.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not checked yet.
    Unknown,
    Primary,
    Replica,
    /// Failed enough consecutive checks.
    Down,
    /// Claims to be primary but lost to a host on a higher timeline: gets no traffic.
    Fenced,
}

/// Why a healthy-looking replica gets no reads right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    Banned,
    Lagging,
    OldTimeline,
}

#[derive(Debug, Clone)]
pub struct HostState {
    pub addr: String,
    pub role: Role,
    /// The primary's current WAL position, or a replica's replay position.
    pub lsn: u64,
    pub timeline: u32,
    /// Replicas: bytes behind the primary, and time since the last replayed transaction
    /// while replay is behind (0 when caught up).
    pub lag_bytes: u64,
    pub lag_ms: u64,
    /// Consecutive failed checks.
    pub failures: u32,
    pub banned_until: Option<Instant>,
    pub excluded: Option<Exclusion>,
    pub checked_at: Option<Instant>,
    pub error: Option<String>,
}

impl HostState {
    pub fn new(addr: &str) -> HostState {
        HostState {
            addr: addr.to_string(),
            role: Role::Unknown,
            lsn: 0,
            timeline: 0,
            lag_bytes: 0,
            lag_ms: 0,
            failures: 0,
            banned_until: None,
            excluded: None,
            checked_at: None,
            error: None,
        }
    }

    pub fn is_banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|t| t > now)
    }

    /// One line for logs and the admin console.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {:?} tl={} lsn={:X}/{:X}",
            self.addr,
            self.role,
            self.timeline,
            self.lsn >> 32,
            self.lsn & 0xffff_ffff
        );
        if self.role == Role::Replica {
            s.push_str(&format!(" lag={}B/{}ms", self.lag_bytes, self.lag_ms));
        }
        if let Some(x) = self.excluded {
            s.push_str(&format!(" excluded={x:?}"));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(" error=\"{e}\""));
        }
        s
    }
}

/// One moment's view of a cluster.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub hosts: Vec<HostState>,
}

impl Snapshot {
    pub fn new(addrs: &[String]) -> Snapshot {
        Snapshot {
            hosts: addrs.iter().map(|a| HostState::new(a)).collect(),
        }
    }

    /// The host that takes writes.
    pub fn primary(&self) -> Option<usize> {
        self.hosts.iter().position(|h| h.role == Role::Primary)
    }

    /// Replicas that may serve a read needing at least `min_lsn` replayed.
    pub fn replicas_at(&self, min_lsn: u64) -> impl Iterator<Item = usize> + '_ {
        let now = Instant::now();
        self.hosts
            .iter()
            .enumerate()
            .filter(move |(_, h)| {
                h.role == Role::Replica
                    && h.excluded.is_none()
                    && !h.is_banned(now)
                    && h.lsn >= min_lsn
            })
            .map(|(i, _)| i)
    }

    pub fn has_replicas(&self) -> bool {
        self.replicas_at(0).next().is_some()
    }

    /// Whether the check results say the same as `other` (ignoring times and positions).
    pub fn same_shape(&self, other: &Snapshot) -> bool {
        self.hosts.len() == other.hosts.len()
            && self.hosts.iter().zip(&other.hosts).all(|(a, b)| {
                a.role == b.role && a.excluded == b.excluded && a.timeline == b.timeline
            })
    }
}
