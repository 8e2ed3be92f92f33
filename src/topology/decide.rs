//! The pure step from one snapshot and a round of check results to the next snapshot:
//! roles without flapping, the winner among hosts that claim to be primary, bans, lag.

use super::state::{Exclusion, HostState, Role, Snapshot};
use std::time::{Duration, Instant};

/// What one check of one host saw.
#[derive(Debug, Clone)]
pub enum Observation {
    Up {
        in_recovery: bool,
        lsn: u64,
        timeline: u32,
        lag_ms: u64,
    },
    Failed(String),
}

/// Limits from the database's config.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub ban_time: Duration,
    /// 0: no limit.
    pub max_lag_bytes: u64,
    /// 0: no limit.
    pub max_lag_ms: u64,
}

/// A host is Down after this many consecutive failed checks (one failure is not enough to
/// change a role).
pub const FAILURES_TO_DOWN: u32 = 2;

/// The snapshot after a round of checks: roles from what each host said, one primary among
/// those that claim it (the others fenced), replicas' lag and exclusions.
pub fn next_snapshot(
    prev: &Snapshot,
    obs: &[Observation],
    policy: &Policy,
    now: Instant,
) -> Snapshot {
    let mut hosts: Vec<HostState> = prev.hosts.clone();
    for (h, o) in hosts.iter_mut().zip(obs) {
        observe(h, o, policy, now);
    }
    let winner = settle_primary(&mut hosts, obs, prev.primary());
    let primary = winner.map(|i| (hosts[i].lsn, hosts[i].timeline));
    for h in hosts.iter_mut() {
        exclude(h, primary, policy, now);
    }
    Snapshot { hosts }
}

/// One host's check result.
fn observe(h: &mut HostState, o: &Observation, policy: &Policy, now: Instant) {
    h.checked_at = Some(now);
    match o {
        Observation::Failed(e) => {
            h.failures += 1;
            h.error = Some(e.clone());
            h.banned_until = Some(now + policy.ban_time);
            if h.failures >= FAILURES_TO_DOWN || h.role == Role::Unknown {
                h.role = Role::Down;
            }
        }
        Observation::Up {
            in_recovery,
            lsn,
            timeline,
            lag_ms,
        } => {
            h.failures = 0;
            h.error = None;
            h.lsn = *lsn;
            h.timeline = *timeline;
            h.lag_ms = *lag_ms;
            h.role = if *in_recovery {
                Role::Replica
            } else {
                Role::Primary
            };
        }
    }
}

/// Among the hosts that claim to be primary now, the highest timeline wins; on a tie the
/// previous primary keeps its place. The others are fenced. Returns the winner.
fn settle_primary(
    hosts: &mut [HostState],
    obs: &[Observation],
    prev_primary: Option<usize>,
) -> Option<usize> {
    let claims = |o: &Observation| {
        matches!(
            o,
            Observation::Up {
                in_recovery: false,
                ..
            }
        )
    };
    let claimants: Vec<usize> = (0..obs.len()).filter(|&i| claims(&obs[i])).collect();
    let winner = claimants.iter().copied().max_by_key(|&i| {
        (
            hosts[i].timeline,
            Some(i) == prev_primary,
            std::cmp::Reverse(i),
        )
    });
    for &i in &claimants {
        if Some(i) != winner {
            hosts[i].role = Role::Fenced;
        }
    }
    match winner {
        // A former primary that is failing its checks is not the primary any more.
        Some(w) => {
            for (i, h) in hosts.iter_mut().enumerate() {
                if i != w && h.role == Role::Primary {
                    h.role = Role::Down;
                }
            }
        }
        // A primary that failed one check stays primary until it fails again.
        None => {
            if let Some(p) = prev_primary {
                if hosts[p].role != Role::Down && matches!(obs.get(p), Some(Observation::Failed(_)))
                {
                    hosts[p].role = Role::Primary;
                }
            }
        }
    }
    winner
}

/// A replica's lag behind the primary (LSN and timeline), and whether it is kept from
/// reads: on an older timeline, too far behind, or banned.
fn exclude(h: &mut HostState, primary: Option<(u64, u32)>, policy: &Policy, now: Instant) {
    h.excluded = None;
    if h.role != Role::Replica {
        h.lag_bytes = 0;
        return;
    }
    if let Some((p_lsn, p_tl)) = primary {
        h.lag_bytes = p_lsn.saturating_sub(h.lsn);
        if h.timeline != 0 && h.timeline < p_tl {
            h.excluded = Some(Exclusion::OldTimeline);
        }
    }
    let too_far = (policy.max_lag_bytes > 0 && h.lag_bytes > policy.max_lag_bytes)
        || (policy.max_lag_ms > 0 && h.lag_ms > policy.max_lag_ms);
    if h.excluded.is_none() && too_far {
        h.excluded = Some(Exclusion::Lagging);
    }
    if h.excluded.is_none() && h.is_banned(now) {
        h.excluded = Some(Exclusion::Banned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            ban_time: Duration::from_secs(5),
            max_lag_bytes: 1000,
            max_lag_ms: 0,
        }
    }

    fn up(rec: bool, lsn: u64, tl: u32) -> Observation {
        Observation::Up {
            in_recovery: rec,
            lsn,
            timeline: tl,
            lag_ms: 0,
        }
    }

    fn fail() -> Observation {
        Observation::Failed("down".into())
    }

    fn start() -> Snapshot {
        Snapshot::new(&["p".into(), "r1".into(), "r2".into()])
    }

    #[test]
    fn roles_from_checks_and_lag() {
        let now = Instant::now();
        let s = next_snapshot(
            &start(),
            &[up(false, 5000, 1), up(true, 4500, 1), up(true, 100, 1)],
            &policy(),
            now,
        );
        assert_eq!(s.primary(), Some(0));
        assert_eq!(s.hosts[2].excluded, Some(Exclusion::Lagging));
        assert_eq!(s.replicas_at(0).collect::<Vec<_>>(), vec![1]);
        assert_eq!(s.replicas_at(4600).count(), 0);
    }

    #[test]
    fn one_failed_check_does_not_change_roles() {
        let now = Instant::now();
        let s1 = next_snapshot(
            &start(),
            &[up(false, 10, 1), up(true, 10, 1), up(true, 10, 1)],
            &policy(),
            now,
        );
        let s2 = next_snapshot(&s1, &[fail(), up(true, 10, 1), fail()], &policy(), now);
        assert_eq!(s2.primary(), Some(0), "still primary after one failure");
        assert_eq!(s2.hosts[2].role, Role::Replica);
        assert_eq!(
            s2.hosts[2].excluded,
            Some(Exclusion::Banned),
            "but no reads"
        );
        let s3 = next_snapshot(&s2, &[fail(), up(true, 10, 1), fail()], &policy(), now);
        assert_eq!(s3.primary(), None);
        assert_eq!(s3.hosts[0].role, Role::Down);
        assert_eq!(s3.hosts[2].role, Role::Down);
        // Back, but banned until the ban runs out.
        let s4 = next_snapshot(
            &s3,
            &[fail(), up(true, 10, 1), up(true, 10, 1)],
            &policy(),
            now,
        );
        assert_eq!(s4.hosts[2].excluded, Some(Exclusion::Banned));
        let later = now + Duration::from_secs(6);
        let s5 = next_snapshot(
            &s4,
            &[fail(), up(true, 10, 1), up(true, 10, 1)],
            &policy(),
            later,
        );
        assert_eq!(s5.hosts[2].excluded, None);
    }

    #[test]
    fn promotion_moves_writes_and_fences_the_old_primary() {
        let now = Instant::now();
        let s1 = next_snapshot(
            &start(),
            &[up(false, 10, 1), up(true, 10, 1), up(true, 10, 1)],
            &policy(),
            now,
        );
        // The primary dies and r1 is promoted in the same interval.
        let s2 = next_snapshot(
            &s1,
            &[fail(), up(false, 20, 2), up(true, 10, 1)],
            &policy(),
            now,
        );
        assert_eq!(s2.primary(), Some(1), "writes move at once");
        assert_eq!(s2.hosts[2].excluded, Some(Exclusion::OldTimeline));
        // The old primary comes back without being rebuilt: fenced.
        let s3 = next_snapshot(
            &s2,
            &[up(false, 30, 1), up(false, 25, 2), up(true, 25, 2)],
            &policy(),
            now,
        );
        assert_eq!(s3.primary(), Some(1));
        assert_eq!(s3.hosts[0].role, Role::Fenced);
        assert_eq!(s3.hosts[2].excluded, None);
    }
}
