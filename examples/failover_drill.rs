//! Failover drill against a running Switchyard: the client half of
//! `integration/failover-drill.sh` (the same drill as `tests/failover.rs`,
//! `promotion_drill_no_acknowledged_write_lost`, but against a separate Switchyard process).
//!
//! Through Switchyard (`--proxy`, a libpq-style connection string), one connection inserts
//! `n = 0, 1, 2, …` into `drill (n int primary key)` every `--period-ms` and another runs
//! `SELECT count(*) FROM drill` as often. After `--before-ms` the drill runs `--kill-cmd`
//! (stop the primary hard), sleeps `--gap-ms`, runs `--promote-cmd` (promote a replica and
//! wait for it), and keeps the load going for `--after-ms`. Both commands run with `sh -c`,
//! so the caller owns the details of how its servers are stopped and promoted.
//!
//! It then reports the write outage (kill → first successful write after the promotion),
//! how long after the promotion writes resumed, the longest run of failing reads, the
//! failures with their SQLSTATEs, and checks, on a direct connection to the new primary
//! (`--new-primary`), that every acknowledged write is there.
//!
//! Exit status: 0 when no acknowledged write was lost and writes resumed within
//! `--max-write-recovery-ms` of the promotion; 1 when not; 2 when the drill could not run
//! (connection, kill or promotion failed).
//!
//! ```sh
//! cargo run --release --example failover_drill -- \
//!   --proxy "host=127.0.0.1 port=6462 user=app password=app_pw dbname=app" \
//!   --new-primary "host=127.0.0.1 port=25463 user=app password=app_pw dbname=app" \
//!   --kill-cmd "..." --promote-cmd "..."
//! ```

use clap::Parser;
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_postgres::{Client, NoTls};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "failover_drill",
    about = "Kill the primary and promote a replica under load through Switchyard; measure the outage"
)]
struct Args {
    /// Connection string to Switchyard (libpq key=value style).
    #[arg(long)]
    proxy: String,
    /// Connection string straight to the server that gets promoted (for the final check).
    #[arg(long)]
    new_primary: String,
    /// Shell command (sh -c) that stops the primary hard, e.g. pg_ctl stop -m immediate.
    #[arg(long)]
    kill_cmd: String,
    /// Shell command (sh -c) that promotes the replica and returns when it is done.
    #[arg(long)]
    promote_cmd: String,
    /// Load before the kill, ms.
    #[arg(long, default_value_t = 2000)]
    before_ms: u64,
    /// Pause between the end of the kill and the promotion, ms.
    #[arg(long, default_value_t = 300)]
    gap_ms: u64,
    /// Load after the promotion, ms.
    #[arg(long, default_value_t = 6000)]
    after_ms: u64,
    /// Pause between two writes (and between two reads), ms.
    #[arg(long, default_value_t = 20)]
    period_ms: u64,
    /// Fail when writes resume later than this after the promotion, ms.
    #[arg(long, default_value_t = 3000)]
    max_write_recovery_ms: u64,
    /// Client-side limit per statement, ms: a statement still running is abandoned (counted
    /// as failed with code "timeout") and the connection is replaced.
    #[arg(long, default_value_t = 20000)]
    statement_timeout_ms: u64,
    /// Shown in the summary's title, e.g. "health_check_interval_ms=100".
    #[arg(long, default_value = "")]
    label: String,
}

/// One failed statement.
#[derive(Debug, Clone)]
struct Failure {
    started: Instant,
    done: Instant,
    code: String,
    message: String,
}

#[derive(Debug, Default)]
struct WriterReport {
    /// Acknowledged values with the time their acknowledgement arrived.
    acked: Vec<(i32, Instant)>,
    failures: Vec<Failure>,
    reconnects: u32,
    longest_statement: Duration,
}

#[derive(Debug, Default)]
struct ReaderReport {
    ok: u64,
    failures: Vec<Failure>,
    /// (first failure started, next success done) of every run of failing reads.
    outages: Vec<(Instant, Instant)>,
    reconnects: u32,
    longest_statement: Duration,
}

/// SQLSTATE of an error; for errors without one, what happened to the client.
fn code_of(e: &tokio_postgres::Error) -> String {
    if let Some(c) = e.code() {
        c.code().to_string()
    } else if e.is_closed() {
        "closed".to_string()
    } else {
        "client".to_string()
    }
}

fn message_of(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{}: {} ({d})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => {
            // tokio-postgres' Display leaves out the cause ("error connecting to server").
            let mut s = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                s.push_str(&format!(": {c}"));
                cause = c.source();
            }
            s
        }
    }
}

async fn connect(conn: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn, NoTls).await?;
    tokio::spawn(async move {
        // Errors also surface on the client's next request.
        let _ = connection.await;
    });
    Ok(client)
}

/// Reconnects until it works or `stop` is set.
async fn reconnect(conn: &str, stop: &AtomicBool, period: Duration) -> Option<Client> {
    while !stop.load(Ordering::SeqCst) {
        match connect(conn).await {
            Ok(c) => return Some(c),
            Err(e) => {
                eprintln!("drill: reconnect failed: {}", message_of(&e));
                tokio::time::sleep(period).await;
            }
        }
    }
    None
}

/// Wall-clock time of day (UTC, like Switchyard's log) for lining the drill up with logs.
fn wall_clock() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

async fn writer(args: Args, mut client: Client, stop: Arc<AtomicBool>) -> WriterReport {
    let period = Duration::from_millis(args.period_ms);
    let limit = Duration::from_millis(args.statement_timeout_ms);
    let mut r = WriterReport::default();
    let mut n: i32 = 0;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let res = tokio::time::timeout(
            limit,
            client.execute("INSERT INTO drill VALUES ($1)", &[&n]),
        )
        .await;
        let done = Instant::now();
        r.longest_statement = r.longest_statement.max(done - started);
        let mut replace = false;
        match res {
            Ok(Ok(_)) => r.acked.push((n, done)),
            Ok(Err(e)) => {
                replace = client.is_closed();
                r.failures.push(Failure {
                    started,
                    done,
                    code: code_of(&e),
                    message: message_of(&e),
                });
            }
            Err(_) => {
                replace = true;
                r.failures.push(Failure {
                    started,
                    done,
                    code: "timeout".to_string(),
                    message: format!("no answer within {} ms", limit.as_millis()),
                });
            }
        }
        // Every value is tried once: a failed INSERT may still have committed.
        n += 1;
        if replace {
            r.reconnects += 1;
            match reconnect(&args.proxy, &stop, period).await {
                Some(c) => client = c,
                None => break,
            }
        }
        tokio::time::sleep(period).await;
    }
    r
}

async fn reader(args: Args, mut client: Client, stop: Arc<AtomicBool>) -> ReaderReport {
    let period = Duration::from_millis(args.period_ms);
    let limit = Duration::from_millis(args.statement_timeout_ms);
    let mut r = ReaderReport::default();
    let mut failing_since: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let res =
            tokio::time::timeout(limit, client.query_one("SELECT count(*) FROM drill", &[])).await;
        let done = Instant::now();
        r.longest_statement = r.longest_statement.max(done - started);
        let mut replace = false;
        match res {
            Ok(Ok(_)) => {
                r.ok += 1;
                if let Some(s) = failing_since.take() {
                    r.outages.push((s, done));
                }
            }
            Ok(Err(e)) => {
                replace = client.is_closed();
                failing_since.get_or_insert(started);
                r.failures.push(Failure {
                    started,
                    done,
                    code: code_of(&e),
                    message: message_of(&e),
                });
            }
            Err(_) => {
                replace = true;
                failing_since.get_or_insert(started);
                r.failures.push(Failure {
                    started,
                    done,
                    code: "timeout".to_string(),
                    message: format!("no answer within {} ms", limit.as_millis()),
                });
            }
        }
        if replace {
            r.reconnects += 1;
            match reconnect(&args.proxy, &stop, period).await {
                Some(c) => client = c,
                None => break,
            }
        }
        tokio::time::sleep(period).await;
    }
    if let Some(s) = failing_since {
        r.outages.push((s, Instant::now()));
    }
    r
}

/// Runs `cmd` with `sh -c`; Ok(elapsed) on exit status 0.
async fn run_cmd(what: &str, cmd: &str) -> Result<Duration, String> {
    let t = Instant::now();
    let cmd = cmd.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::null())
            .output()
    })
    .await
    .map_err(|e| format!("{what}: {e}"))?
    .map_err(|e| format!("{what}: cannot run sh: {e}"))?;
    if out.status.success() {
        Ok(t.elapsed())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// "3 (08006 x2, 57P01)".
fn count_codes(failures: &[Failure]) -> String {
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    for f in failures {
        *codes.entry(f.code.as_str()).or_default() += 1;
    }
    if codes.is_empty() {
        return "0".to_string();
    }
    let list: Vec<String> = codes
        .iter()
        .map(|(c, k)| {
            if *k == 1 {
                c.to_string()
            } else {
                format!("{c} x{k}")
            }
        })
        .collect();
    format!("{} ({})", failures.len(), list.join(", "))
}

/// Milliseconds of `t` relative to `base` (negative before it).
fn rel_ms(t: Instant, base: Instant) -> i64 {
    if t >= base {
        (t - base).as_millis() as i64
    } else {
        -((base - t).as_millis() as i64)
    }
}

fn print_failures(what: &str, failures: &[Failure], killed_at: Instant) {
    // Distinct (code, message) with count and time span relative to the kill.
    let mut groups: BTreeMap<(String, String), (usize, Instant, Instant)> = BTreeMap::new();
    for f in failures {
        let g = groups
            .entry((f.code.clone(), f.message.clone()))
            .or_insert((0, f.started, f.done));
        g.0 += 1;
        g.1 = g.1.min(f.started);
        g.2 = g.2.max(f.done);
    }
    for ((code, message), (k, first, last)) in groups {
        println!(
            "  {what} failed x{k} [{code}] {message}  (from {:+} to {:+} ms after the kill)",
            rel_ms(first, killed_at),
            rel_ms(last, killed_at)
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();

    // Both connections up (and a first write and read through) before the clock starts.
    let (writer_client, reader_client) =
        match (connect(&args.proxy).await, connect(&args.proxy).await) {
            (Ok(w), Ok(r)) => (w, r),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!(
                    "drill: cannot connect through Switchyard: {}",
                    message_of(&e)
                );
                return ExitCode::from(2);
            }
        };
    if let Err(e) = reader_client
        .query_one("SELECT count(*) FROM drill", &[])
        .await
    {
        eprintln!(
            "drill: first read through Switchyard failed: {}",
            message_of(&e)
        );
        return ExitCode::from(2);
    }
    match writer_client
        .query_one("SELECT count(*) FROM drill", &[])
        .await
    {
        Ok(row) if row.get::<_, i64>(0) == 0 => {}
        Ok(row) => {
            eprintln!(
                "drill: table drill is not empty ({} rows): start from a fresh table",
                row.get::<_, i64>(0)
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!(
                "drill: first query through Switchyard failed: {}",
                message_of(&e)
            );
            return ExitCode::from(2);
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    eprintln!(
        "drill: load started at {} (a write and a read every {} ms)",
        wall_clock(),
        args.period_ms
    );
    let write_task = tokio::spawn(writer(args.clone(), writer_client, stop.clone()));
    let read_task = tokio::spawn(reader(args.clone(), reader_client, stop.clone()));

    tokio::time::sleep(Duration::from_millis(args.before_ms)).await;
    let killed_at = Instant::now();
    let killed_wall = wall_clock();
    eprintln!("drill: killing the primary at {killed_wall}");
    let kill_took = run_cmd("kill command", &args.kill_cmd).await;
    let kill_took = match kill_took {
        Ok(d) => d,
        Err(e) => {
            stop.store(true, Ordering::SeqCst);
            eprintln!("drill: {e}");
            return ExitCode::from(2);
        }
    };
    tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
    let promote_started = Instant::now();
    let promote_wall = wall_clock();
    eprintln!("drill: promoting at {promote_wall}");
    if let Err(e) = run_cmd("promote command", &args.promote_cmd).await {
        stop.store(true, Ordering::SeqCst);
        eprintln!("drill: {e}");
        return ExitCode::from(2);
    }
    let promoted_at = Instant::now();
    let promoted_wall = wall_clock();
    eprintln!(
        "drill: promoted at {promoted_wall}; load continues for {} ms",
        args.after_ms
    );

    tokio::time::sleep(Duration::from_millis(args.after_ms)).await;
    stop.store(true, Ordering::SeqCst);
    let w = match write_task.await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("drill: writer task failed: {e}");
            return ExitCode::from(2);
        }
    };
    let r = match read_task.await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drill: reader task failed: {e}");
            return ExitCode::from(2);
        }
    };
    let ended = Instant::now();

    // What the new primary holds (direct connection, not through Switchyard).
    let direct = match connect(&args.new_primary).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "drill: cannot connect to the new primary: {}",
                message_of(&e)
            );
            return ExitCode::from(2);
        }
    };
    let in_recovery: bool = match direct.query_one("SELECT pg_is_in_recovery()", &[]).await {
        Ok(row) => row.get(0),
        Err(e) => {
            eprintln!("drill: query on the new primary failed: {}", message_of(&e));
            return ExitCode::from(2);
        }
    };
    let on_new: BTreeSet<i32> = match direct.query("SELECT n FROM drill", &[]).await {
        Ok(rows) => rows.iter().map(|row| row.get(0)).collect(),
        Err(e) => {
            eprintln!(
                "drill: reading drill on the new primary failed: {}",
                message_of(&e)
            );
            return ExitCode::from(2);
        }
    };

    let acked: BTreeSet<i32> = w.acked.iter().map(|(n, _)| *n).collect();
    let lost: Vec<i32> = acked.difference(&on_new).copied().collect();
    let unacked_present = on_new.difference(&acked).count();
    let first_ok_after = w.acked.iter().find(|(_, t)| *t > promoted_at);
    let write_outage = first_ok_after.map(|(_, t)| t.duration_since(killed_at));
    let write_recovery = first_ok_after.map(|(_, t)| t.duration_since(promoted_at));
    let read_outage = r
        .outages
        .iter()
        .map(|(a, b)| b.duration_since(*a))
        .max()
        .unwrap_or_default();
    let failed_writes_after_promotion = w
        .failures
        .iter()
        .filter(|f| f.started > promoted_at)
        .count();

    // The longest stretch without an acknowledged write, as the client saw it (independent
    // of when the kill command took effect and of when pg_ctl promote -w noticed the
    // promotion, which can be after the new primary already took writes).
    let longest_gap = w
        .acked
        .windows(2)
        .max_by_key(|p| p[1].1.duration_since(p[0].1))
        .map(|p| (p[0], p[1]));

    let mut events: Vec<(i64, String)> = vec![
        (rel_ms(t0, killed_at), "load started".to_string()),
        (0, format!("kill command started ({killed_wall})")),
        (
            rel_ms(killed_at + kill_took, killed_at),
            "kill command returned".to_string(),
        ),
        (
            rel_ms(promote_started, killed_at),
            format!("promote command started ({promote_wall})"),
        ),
        (
            rel_ms(promoted_at, killed_at),
            format!("promote command returned ({promoted_wall}): \"promoted\""),
        ),
        (rel_ms(ended, killed_at), "load stopped".to_string()),
    ];
    if let Some(((n0, a), (n1, b))) = longest_gap {
        events.push((
            rel_ms(a, killed_at),
            format!("last write acknowledged before the longest gap (n = {n0})"),
        ));
        events.push((
            rel_ms(b, killed_at),
            format!("first write acknowledged after the longest gap (n = {n1})"),
        ));
    }
    if let Some((n, t)) = first_ok_after {
        events.push((
            rel_ms(*t, killed_at),
            format!("first write acknowledged after \"promoted\" (n = {n})"),
        ));
    }
    events.sort_by_key(|(t, _)| *t);
    println!("timeline (ms relative to the start of the kill command):");
    for (t, what) in &events {
        println!("  {t:+6}  {what}");
    }
    println!("details:");
    if let Some(((_, a), (_, b))) = longest_gap {
        println!(
            "  longest gap between acknowledged writes: {} ms",
            b.duration_since(a).as_millis()
        );
    }
    print_failures("write", &w.failures, killed_at);
    print_failures("read", &r.failures, killed_at);
    for (a, b) in &r.outages {
        println!(
            "  reads failing from {:+} to {:+} ms ({} ms)",
            rel_ms(*a, killed_at),
            rel_ms(*b, killed_at),
            b.duration_since(*a).as_millis()
        );
    }
    println!(
        "  writes attempted {}, failed after the promotion {}, client reconnects {}, slowest INSERT {} ms",
        w.acked.len() + w.failures.len(),
        failed_writes_after_promotion,
        w.reconnects,
        w.longest_statement.as_millis()
    );
    println!(
        "  reads ok {}, client reconnects {}, slowest SELECT {} ms",
        r.ok,
        r.reconnects,
        r.longest_statement.as_millis()
    );
    println!(
        "  new primary: pg_is_in_recovery() = {in_recovery}, {} rows in drill ({} of them from writes whose outcome the client did not learn)",
        on_new.len(),
        unacked_present
    );
    if !lost.is_empty() {
        let shown: Vec<String> = lost.iter().take(20).map(|n| n.to_string()).collect();
        println!(
            "  LOST acknowledged writes: {}{}",
            shown.join(", "),
            if lost.len() > 20 { ", …" } else { "" }
        );
    }

    let title = if args.label.is_empty() {
        "failover drill".to_string()
    } else {
        format!("failover drill ({})", args.label)
    };
    println!();
    println!("{title}");
    match (write_outage, write_recovery) {
        (Some(o), Some(rec)) => {
            println!(
                "  {:<22} {:>4} ms (kill -> first write on the new primary)",
                "write outage:",
                o.as_millis()
            );
            println!(
                "  {:<22} {:>4} ms after promotion",
                "write recovery:",
                rec.as_millis()
            );
        }
        _ => {
            println!(
                "  {:<22} never (no write succeeded after the promotion)",
                "write outage:"
            );
            println!("  {:<22} never", "write recovery:");
        }
    }
    println!(
        "  {:<22} {:>4} ms",
        "read outage (longest):",
        read_outage.as_millis()
    );
    println!(
        "  failed writes: {}  failed reads: {}",
        count_codes(&w.failures),
        count_codes(&r.failures)
    );
    println!(
        "  acknowledged writes: {}, lost: {}",
        acked.len(),
        lost.len()
    );

    let mut problems = Vec::new();
    if !lost.is_empty() {
        problems.push(format!("{} acknowledged writes lost", lost.len()));
    }
    let max_recovery = Duration::from_millis(args.max_write_recovery_ms);
    match write_recovery {
        None => problems.push("writes did not resume after the promotion".to_string()),
        Some(rec) if rec > max_recovery => problems.push(format!(
            "writes resumed {} ms after the promotion (limit {} ms)",
            rec.as_millis(),
            max_recovery.as_millis()
        )),
        Some(_) => {}
    }
    if in_recovery {
        problems.push("the promoted server is still in recovery".to_string());
    }
    if problems.is_empty() {
        println!("  result: OK");
        ExitCode::SUCCESS
    } else {
        println!("  result: FAILED: {}", problems.join("; "));
        ExitCode::from(1)
    }
}
