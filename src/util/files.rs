//! Files that hold secrets (the config with its passwords, TLS keys): a warning when other
//! users can read one.

use std::path::Path;

/// Logs a warning when a secret file can be read by users other than its owner.
pub fn warn_if_others_can_read(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "{what} can be read by other users: chmod 600 it"
            );
        }
    }
}
