//! Online reload (SIGHUP, console RELOAD): the config file is read and validated as a whole,
//! and a new generation built, before anything changes; any error leaves everything as it
//! was. Then the new generation becomes current: new databases and users appear, databases
//! whose settings changed get new pools (sessions move to them at their next transaction;
//! the old ones drain and close), removed ones drain, users whose password changed get new
//! pools, and the client TLS certificate is reread. No client connection is closed.
//! `listen`, `listen_unix_dir`, `worker_threads`, `metrics_listen`, `so_reuseport` and
//! `log_format` need a restart: a change to them is reported, not applied.

use super::background::start_cluster_tasks;
use super::{generation, App};
use crate::config::{Config, RESTART_KEYS};
use std::sync::Arc;

impl App {
    /// Reloads the config file; the answer says what changed, or why nothing was applied.
    pub fn reload(&self) -> Result<String, String> {
        let result = self.reload_inner();
        match &result {
            Ok(summary) => tracing::info!(%summary, "config reloaded"),
            Err(e) => tracing::error!(error = %e, "config reload failed: nothing applied"),
        }
        result
    }

    fn reload_inner(&self) -> Result<String, String> {
        let path = self
            .config_path
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or("no config file to reload (Switchyard was not started with one)")?;
        let config = Config::load(&path).map_err(|e| e.to_string())?;
        let old = self.shared();
        let generation = generation::build(config, Some(&old))?;
        let new = Arc::new(old.next(generation));
        let mut changes = Vec::new();
        for (name, cluster) in &new.clusters {
            match old.clusters.get(name) {
                Some(c) if Arc::ptr_eq(c, cluster) => {
                    let gone = cluster.forget_users(|u| same_user(&old.config, &new.config, u));
                    if !gone.is_empty() {
                        changes.push(format!("{name}: new pools for {}", gone.join(", ")));
                    }
                }
                Some(_) => changes.push(format!("{name}: changed, new pools")),
                None => changes.push(format!("{name}: added")),
            }
            if !old
                .clusters
                .get(name)
                .is_some_and(|c| Arc::ptr_eq(c, cluster))
            {
                start_cluster_tasks(&new, cluster);
            }
        }
        for (name, cluster) in &old.clusters {
            if !new
                .clusters
                .get(name)
                .is_some_and(|c| Arc::ptr_eq(c, cluster))
            {
                cluster.retire();
                if !new.clusters.contains_key(name) {
                    changes.push(format!("{name}: removed (drains)"));
                }
            }
        }
        changes.extend(needs_restart(&old.config, &new.config));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = new.clone();
        let _ = old.successor.set(new);
        Ok(if changes.is_empty() {
            "no database changed".to_string()
        } else {
            changes.join("; ")
        })
    }
}

/// A user's pools can stay: same password (or not in the old config at all).
fn same_user(old: &Config, new: &Config, user: &str) -> bool {
    match (old.user(user), new.user(user)) {
        (Some(a), Some(b)) => a.password == b.password,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Settings that only a restart applies, where they differ.
fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    restart_checks(old, new)
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| format!("{key} changed: takes effect after a restart"))
        .collect()
}

/// Each restart key with whether it differs, in the order of `RESTART_KEYS`.
fn restart_checks(old: &Config, new: &Config) -> [(&'static str, bool); RESTART_KEYS.len()] {
    let (a, b) = (&old.operations, &new.operations);
    [
        ("listen", old.listen != new.listen),
        ("listen_unix_dir", a.listen_unix_dir != b.listen_unix_dir),
        ("worker_threads", old.worker_threads != new.worker_threads),
        ("metrics_listen", a.metrics_listen != b.metrics_listen),
        ("so_reuseport", a.so_reuseport != b.so_reuseport),
        ("log_format", a.log_format != b.log_format),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "listen = \"127.0.0.1:6432\"\n\
        [[users]]\nname = \"app\"\npassword = \"pw\"\n\
        [databases.app]\nhosts = [\"127.0.0.1:5432\"]\n";

    fn config(extra: &str) -> Config {
        Config::from_toml_str(&format!("{extra}{BASE}")).expect("valid config")
    }

    #[test]
    fn every_restart_key_is_checked_under_its_own_name() {
        let base = config("");
        let names: Vec<_> = restart_checks(&base, &base).map(|(k, _)| k).to_vec();
        assert_eq!(names, RESTART_KEYS);
        let changed = config("worker_threads = 3\nlisten_unix_dir = \"/tmp\"\n");
        assert_eq!(
            needs_restart(&base, &changed),
            [
                "listen_unix_dir changed: takes effect after a restart",
                "worker_threads changed: takes effect after a restart",
            ]
        );
    }
}
