//! The cache's background task for one database: while a primary is known, it keeps a
//! catalog connection (the relation catalog, reloaded on demand and every minute; the
//! `auto` mode decision) and, in wal mode, a logical replication connection with a
//! *temporary* slot (so an absent Switchyard never holds WAL back) whose decoded commits
//! invalidate the tables they touched. The cache serves only while this runs; when the
//! stream breaks or the primary changes, every entry is dropped and the task starts over
//! on the (new) primary.

use super::decoding::{row_key_values, test_decoding_line, Decoded, PgOutput};
use super::{Catalog, ResultCache, RowChange};
use crate::auth::ServerSecret;
use crate::backend::login::{connect, LoginParams};
use crate::backend::own_queries::{query_row, query_rows};
use crate::backend::server_frames::read_frame;
use crate::backend::ServerConn;
use crate::config::Invalidation;
use crate::net::ServerTlsConfig;
use crate::protocol::messages::write_message;
use bytes::BytesMut;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How the change stream and the catalog connection log in.
pub struct StreamLogin {
    pub user: String,
    pub dbname: String,
    pub secret: ServerSecret,
    pub timeout: Duration,
    pub tls: Arc<ServerTlsConfig>,
}

/// Where the primary is now: its address and its WAL position at the last health check.
pub type PrimaryFn = Box<dyn Fn() -> Option<(String, u64)> + Send + Sync>;

const APPLICATION_NAME: &str = "switchyard result cache";
/// Catalog reloads at most this often on demand, and at least this often anyway.
const CATALOG_MIN_GAP: Duration = Duration::from_secs(1);
const CATALOG_MAX_AGE: Duration = Duration::from_secs(60);
/// Standby status updates at least this often.
const STATUS_EVERY: Duration = Duration::from_secs(10);
/// A transaction changing more rows than this invalidates their tables whole.
const MAX_ROWS_PER_COMMIT: usize = 1024;
/// Keepalives are answered at most this often (unless the server asks for an answer).
const REPLY_GAP: Duration = Duration::from_millis(25);

/// Runs until `stop` turns true. Without a login the cache never serves.
pub async fn run(
    cache: Arc<ResultCache>,
    login: Option<StreamLogin>,
    primary: PrimaryFn,
    mut stop: watch::Receiver<bool>,
) {
    let Some(login) = login else {
        tracing::warn!(
            "result cache: no [[users]] entry can log in to a server; the cache stays off"
        );
        return;
    };
    let mut last_error = String::new();
    while !*stop.borrow() {
        let outcome = match primary() {
            None => Err("no primary is known".to_string()),
            Some((addr, _)) => tokio::select! {
                r = serve(&cache, &login, &addr, &primary) => r,
                _ = stop.wait_for(|s| *s) => break,
            },
        };
        if cache.is_serving() {
            cache.set_serving(false, "the change stream stopped");
        }
        cache.stats.cache.stream_up.set(0);
        if let Err(why) = outcome {
            if why != last_error {
                tracing::warn!(error = %why, "result cache: not serving");
                last_error = why;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    cache.set_serving(false, "the database was retired");
}

async fn login_to(
    login: &StreamLogin,
    addr: &str,
    replication: bool,
) -> Result<ServerConn, String> {
    let params = LoginParams {
        addr,
        user: &login.user,
        dbname: &login.dbname,
        secret: &login.secret,
        timeout: login.timeout,
        application_name: Some(APPLICATION_NAME),
        statements_per_connection: 1,
        tls: &login.tls,
        replication,
    };
    connect(&params).await.map_err(|e| e.to_string())
}

/// Serves the cache from one primary until something breaks (always an error).
async fn serve(
    cache: &ResultCache,
    login: &StreamLogin,
    addr: &str,
    primary: &PrimaryFn,
) -> Result<(), String> {
    let mut catalog_conn = login_to(login, addr, false).await?;
    let mut buf = BytesMut::new();
    load_catalog(cache, &mut catalog_conn, &mut buf).await?;
    let wal = wal_mode(cache, &mut catalog_conn, &mut buf).await?;
    cache.set_wal_mode(wal);
    let mut stream = match wal {
        true => Some(Replication::start(cache, login, addr).await?),
        false => None,
    };
    cache.set_serving(
        true,
        if wal {
            "change stream started"
        } else {
            "local invalidation started"
        },
    );
    cache.stats.cache.stream_up.set(i64::from(wal));
    tracing::info!(server = %addr, mode = if wal { "wal" } else { "local" }, "result cache serving");
    let mut tick = tokio::time::interval(REPLY_GAP);
    let mut catalog_at = Instant::now();
    let mut catalog_due = false;
    loop {
        tokio::select! {
            r = next(&mut stream) => {
                r?;
                if let Some(s) = stream.as_mut() {
                    s.handle(cache).await?;
                }
            }
            () = cache.catalog_wanted.notified() => catalog_due = true,
            _ = tick.tick() => {
                match primary() {
                    Some((a, lsn)) if a == addr => cache.stats.cache.stream_lag_bytes.set(
                        i64::try_from(lsn.saturating_sub(cache.stream_lsn())).unwrap_or(i64::MAX),
                    ),
                    _ => return Err("the primary changed".into()),
                }
                if let Some(s) = stream.as_mut() {
                    s.status_if_due().await?;
                }
            }
        }
        if (catalog_due && catalog_at.elapsed() >= CATALOG_MIN_GAP)
            || catalog_at.elapsed() >= CATALOG_MAX_AGE
        {
            load_catalog(cache, &mut catalog_conn, &mut buf).await?;
            catalog_at = Instant::now();
            catalog_due = false;
        }
    }
}

/// The next message of the stream (never, in local mode).
async fn next(stream: &mut Option<Replication>) -> Result<(), String> {
    match stream {
        Some(s) => s.read().await,
        None => std::future::pending().await,
    }
}

async fn load_catalog(
    cache: &ResultCache,
    conn: &mut ServerConn,
    buf: &mut BytesMut,
) -> Result<(), String> {
    let relations = query_rows(&mut conn.stream, buf, super::catalog::RELATIONS_SQL)
        .await
        .map_err(|e| format!("reading the catalog: {e}"))?;
    let inherits = query_rows(&mut conn.stream, buf, super::catalog::INHERITS_SQL)
        .await
        .map_err(|e| format!("reading the catalog: {e}"))?;
    let keys = query_rows(&mut conn.stream, buf, super::catalog::ROW_KEYS_SQL)
        .await
        .map_err(|e| format!("reading the catalog: {e}"))?;
    cache.set_catalog(Catalog::from_rows(&relations, &inherits, &keys));
    Ok(())
}

/// Whether to invalidate by the WAL: `wal` must be possible, `auto` falls back to local.
async fn wal_mode(
    cache: &ResultCache,
    conn: &mut ServerConn,
    buf: &mut BytesMut,
) -> Result<bool, String> {
    let wanted = cache.config.invalidation;
    if wanted == Invalidation::Local {
        return Ok(false);
    }
    let row = query_row(
        &mut conn.stream,
        buf,
        "SELECT current_setting('wal_level'), r.rolreplication OR r.rolsuper \
         FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
    )
    .await
    .map_err(|e| format!("checking wal_level: {e}"))?;
    let col = |i: usize| row.get(i).and_then(|v| v.as_deref()).unwrap_or("");
    let why = if col(0) != "logical" {
        format!("the primary has wal_level = {} (needs logical)", col(0))
    } else if col(1) != "t" {
        format!(
            "the role {:?} lacks the REPLICATION attribute",
            cache.config.user.as_deref().unwrap_or("")
        )
    } else {
        return Ok(true);
    };
    if wanted == Invalidation::Wal {
        return Err(format!("invalidation = \"wal\" is not possible: {why}"));
    }
    tracing::warn!("result cache: invalidation = \"auto\" uses local invalidation: {why}; writes made elsewhere are seen after ttl_ms");
    Ok(false)
}

/// The logical replication connection and the transaction being decoded.
struct Replication {
    conn: ServerConn,
    buf: BytesMut,
    pgoutput: Option<PgOutput>,
    /// Tables touched by the open transaction; `unknown` if a change named none.
    tables: Vec<String>,
    /// Rows of the open transaction, for tables whose changes name their rows.
    rows: Vec<RowChange>,
    unknown: bool,
    /// Highest WAL position received.
    received: u64,
    status_at: Instant,
    /// A keepalive is waiting for its answer.
    owed: bool,
    /// The message just read: `(WAL position, payload)` of an XLogData, or a keepalive.
    current: Option<Message>,
}

enum Message {
    Data { lsn: u64, payload: Vec<u8> },
    Keepalive { end: u64, reply: bool },
}

/// Slot names differ per process and per stream.
fn slot_name() -> String {
    format!(
        "switchyard_cache_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// `'...'` SQL string literal of `s`.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Replication {
    async fn start(
        cache: &ResultCache,
        login: &StreamLogin,
        addr: &str,
    ) -> Result<Replication, String> {
        let mut conn = login_to(login, addr, true).await?;
        let mut buf = BytesMut::new();
        let slot = slot_name();
        let publication = &cache.config.publication;
        let plugin = if publication.is_empty() {
            "test_decoding"
        } else {
            "pgoutput"
        };
        let create =
            format!("CREATE_REPLICATION_SLOT {slot} TEMPORARY LOGICAL {plugin} NOEXPORT_SNAPSHOT");
        query_row(&mut conn.stream, &mut buf, &create)
            .await
            .map_err(|e| format!("creating the temporary slot: {e}"))?;
        let options = if publication.is_empty() {
            "(\"skip-empty-xacts\" '1', \"include-xids\" '0')".to_string()
        } else {
            let name = format!("\"{}\"", publication.replace('"', "\"\""));
            format!("(proto_version '1', publication_names {})", literal(&name))
        };
        let start = format!("START_REPLICATION SLOT {slot} LOGICAL 0/0 {options}");
        crate::backend::own_queries::send_query(&mut conn.stream, &start)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let h = read_frame(&mut conn.stream, &mut buf)
                .await
                .map_err(|e| e.to_string())?;
            let frame = buf.split_to(h.total_len);
            match h.tag {
                b'W' => break,
                b'E' => {
                    let e = crate::protocol::backend_msgs::error_fields(&frame);
                    return Err(format!(
                        "starting the change stream: {}",
                        e.map(|e| e.to_string()).unwrap_or_default()
                    ));
                }
                _ => {}
            }
        }
        Ok(Replication {
            conn,
            buf,
            pgoutput: (!publication.is_empty()).then(PgOutput::default),
            tables: Vec::new(),
            rows: Vec::new(),
            unknown: false,
            received: 0,
            status_at: Instant::now(),
            owed: false,
            current: None,
        })
    }

    /// Reads the next CopyData message (cancel-safe: a partial frame stays in the buffer).
    async fn read(&mut self) -> Result<(), String> {
        loop {
            let h = read_frame(&mut self.conn.stream, &mut self.buf)
                .await
                .map_err(|e| format!("change stream: {e}"))?;
            let frame = self.buf.split_to(h.total_len);
            let body = &frame[5..];
            match (h.tag, body.first()) {
                (b'd', Some(b'w')) if body.len() >= 25 => {
                    let lsn = u64::from_be_bytes(body[1..9].try_into().unwrap_or_default());
                    self.current = Some(Message::Data {
                        lsn,
                        payload: body[25..].to_vec(),
                    });
                    return Ok(());
                }
                (b'd', Some(b'k')) if body.len() >= 9 => {
                    let end = u64::from_be_bytes(body[1..9].try_into().unwrap_or_default());
                    let reply = body.get(17) == Some(&1);
                    self.current = Some(Message::Keepalive { end, reply });
                    return Ok(());
                }
                (b'E', _) => {
                    let e = crate::protocol::backend_msgs::error_fields(&frame);
                    return Err(format!(
                        "change stream: {}",
                        e.map(|e| e.to_string()).unwrap_or_default()
                    ));
                }
                (b'c', _) => return Err("change stream: the server ended it".into()),
                _ => {}
            }
        }
    }

    /// Acts on the message read: invalidation at each commit, the stream's position, and
    /// an answer to every keepalive (the server pings again only after an answer).
    async fn handle(&mut self, cache: &ResultCache) -> Result<(), String> {
        match self.current.take() {
            Some(Message::Data { lsn, payload }) => {
                let line = self
                    .pgoutput
                    .is_none()
                    .then(|| String::from_utf8_lossy(&payload));
                let decoded = match (self.pgoutput.as_mut(), &line) {
                    (Some(p), _) => p.message(&payload),
                    (None, Some(l)) => test_decoding_line(l),
                    (None, None) => Decoded::Other,
                };
                match decoded {
                    Decoded::Changed(t) if t.is_empty() => self.unknown = true,
                    Decoded::Changed(t) => self.changed(cache, t, line.as_deref()),
                    Decoded::Commit { end_lsn } => {
                        self.commit(cache, if end_lsn > 0 { end_lsn } else { lsn })
                    }
                    Decoded::Other => {}
                }
                self.received = self.received.max(lsn);
                cache.set_stream_lsn(lsn);
            }
            Some(Message::Keepalive { end, reply }) => {
                self.received = self.received.max(end);
                cache.set_stream_lsn(end);
                // Answered at most every REPLY_GAP (or when asked): the server pings again
                // only after an answer, and a busy stream would otherwise ping per commit.
                if reply || self.status_at.elapsed() >= REPLY_GAP {
                    self.send_status().await?;
                } else {
                    self.owed = true;
                }
            }
            None => {}
        }
        Ok(())
    }

    /// Notes a decoded change: per row where the line names the rows of a table whose
    /// changes can be told apart by row, else per table.
    fn changed(&mut self, cache: &ResultCache, tables: Vec<String>, line: Option<&str>) {
        if let ([t], Some(line)) = (tables.as_slice(), line) {
            let catalog = cache.catalog();
            if let Some(column) = catalog.row_key(t) {
                if let Some(keys) = row_key_values(line, column) {
                    for k in keys {
                        self.rows.push((t.clone(), column.to_string(), k));
                    }
                    return;
                }
            }
        }
        self.tables.extend(tables);
    }

    /// A transaction committed at `at`: invalidates what it changed.
    fn commit(&mut self, cache: &ResultCache, at: u64) {
        if self.unknown {
            cache.flush("a decoded change named no table");
        } else {
            if self.rows.len() > MAX_ROWS_PER_COMMIT {
                // A bulk change: cheaper per table than per row.
                self.tables.extend(self.rows.drain(..).map(|(t, _, _)| t));
            }
            self.tables.sort();
            self.tables.dedup();
            if !self.tables.is_empty() || !self.rows.is_empty() {
                cache.invalidate_decoded(&self.tables, &self.rows, at);
            }
        }
        self.tables.clear();
        self.rows.clear();
        self.unknown = false;
    }

    async fn status_if_due(&mut self) -> Result<(), String> {
        let gap = self.status_at.elapsed();
        if gap >= STATUS_EVERY || (self.owed && gap >= REPLY_GAP) {
            self.send_status().await?;
        }
        Ok(())
    }

    /// Standby status update: everything received is written, flushed and applied.
    async fn send_status(&mut self) -> Result<(), String> {
        let pos = self.received;
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64)
            - 946_684_800_000_000;
        let mut out = BytesMut::new();
        write_message(&mut out, b'd', |b| {
            b.extend_from_slice(b"r");
            for _ in 0..3 {
                b.extend_from_slice(&pos.to_be_bytes());
            }
            b.extend_from_slice(&micros.to_be_bytes());
            b.extend_from_slice(&[0]);
        });
        self.status_at = Instant::now();
        self.owed = false;
        self.conn
            .stream
            .send_all(&out)
            .await
            .map_err(|e| format!("change stream: {e}"))
    }
}
