//! The temp root a cluster lives in, and its reaper: a detached shell that stops every
//! node and removes the root once the test process is gone (statics are never dropped and
//! test binaries may be killed).

use super::process::{
    chown_postgres, is_root, log, pg_bin, rand_u64, runuser_path, scrub_env, server_cmd, sh_quote,
    temp_base,
};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

pub(super) struct TempRoot {
    pub(super) path: PathBuf,
    reaper: Mutex<Option<Child>>,
}

impl TempRoot {
    pub(super) fn create() -> TempRoot {
        let path = temp_base().join(format!(
            "switchyard-test-{}-{:016x}",
            std::process::id(),
            rand_u64()
        ));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cluster: mkdir {}: {e}", path.display()));
        chown_postgres(&path);
        let reaper = spawn_reaper(&path);
        TempRoot {
            path,
            reaper: Mutex::new(reaper),
        }
    }

    /// Immediate stop of anything still running below the root, then rm -rf.
    fn cleanup(&self) {
        let mut children = Vec::new();
        if let Ok(rd) = fs::read_dir(&self.path) {
            for e in rd.flatten() {
                let data = e.path().join("data");
                if data.join("postmaster.pid").exists() {
                    let mut c = server_cmd("pg_ctl", &self.path);
                    c.arg("-D")
                        .arg(&data)
                        .args(["-m", "immediate", "-w", "stop"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    if let Ok(ch) = c.spawn() {
                        children.push(ch);
                    }
                }
            }
        }
        for mut ch in children {
            let _ = ch.wait();
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        self.cleanup();
        let mut g = self.reaper.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut ch) = g.take() {
            let _ = ch.kill();
            let _ = ch.wait();
        }
    }
}

/// Detached shell that waits for this process to exit and then stops every
/// node under `root` and removes it. It runs in its own process group (so a
/// group kill of the test does not take it down) with all stdio on /dev/null
/// (so it does not hold the test's output pipes open).
fn spawn_reaper(root: &Path) -> Option<Child> {
    let root_s = root.to_string_lossy().into_owned();
    let pg_ctl = pg_bin().join("pg_ctl").to_string_lossy().into_owned();
    let as_pg = if is_root() {
        format!("{} -u postgres -- ", runuser_path())
    } else {
        String::new()
    };
    let script = format!(
        r#"while kill -0 {pid} 2>/dev/null; do sleep 1; done
for d in {root}/*/data; do
  [ -f "$d/postmaster.pid" ] || continue
  {as_pg}{pg_ctl} stop -m immediate -w -t 30 -D "$d" >/dev/null 2>&1
  if [ -f "$d/postmaster.pid" ]; then
    p=$(head -n 1 "$d/postmaster.pid" 2>/dev/null)
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
  fi
done
rm -rf {root}
"#,
        pid = std::process::id(),
        root = sh_quote(&root_s),
        pg_ctl = sh_quote(&pg_ctl),
    );
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(script)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    scrub_env(&mut c);
    match c.spawn() {
        Ok(ch) => Some(ch),
        Err(e) => {
            log(&format!("WARNING: could not spawn reaper: {e}"));
            None
        }
    }
}
