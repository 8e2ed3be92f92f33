//! Turning TOML into a checked `Config`: semantic validation of the raw serde shapes. Where
//! an error is (line, key path) and toml/serde's own errors are `super::locate`'s.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::Range;

use toml::Spanned;

use super::locate::{from_toml_error, key_segment, line_of};
use super::operations::Operations;
use super::types::{
    AuthMethod, Config, Database, HostAddr, PasswordKind, RawConfig, RawDatabase, RawUser, User,
    DEFAULT_CHECKOUT_TIMEOUT_MS, DEFAULT_CLIENT_LOGIN_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS,
    DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_POOL_SIZE, DEFAULT_SERVER_IDLE_TIMEOUT_MS,
    DEFAULT_SERVER_LIFETIME_MS, DEFAULT_SHUTDOWN_TIMEOUT_MS, DEFAULT_WORKER_THREADS,
    MAX_DURATION_MS, MAX_IDENTIFIER_LEN, MAX_MAX_MESSAGE_SIZE, MAX_POOL_SIZE, MAX_WORKER_THREADS,
    MIN_MAX_MESSAGE_SIZE,
};
use super::ConfigError;

mod access_checks;
mod cache_checks;
mod env_secret;
mod operations_checks;

pub use cache_checks::cache_table_name;

/// Parses and validates a whole document.
pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|err| from_toml_error(text, &err))?;
    Checker {
        text,
        literal_secret: Cell::new(false),
    }
    .config(raw)
}

// ---------------------------------------------------------------------------
// Semantic checks
// ---------------------------------------------------------------------------

struct Checker<'t> {
    text: &'t str,
    /// Set when a password is taken as written (not from the environment).
    literal_secret: Cell<bool>,
}

impl Checker<'_> {
    fn invalid(&self, span: &Range<usize>, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            line: line_of(self.text, span.start),
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn config(&self, mut raw: RawConfig) -> Result<Config, ConfigError> {
        let ops = operations_checks::RawOperations::take(&mut raw);
        let tls = raw.tls.map(|t| self.tls(t)).transpose()?;
        let client_certificates = tls.as_ref().is_some_and(|t| t.ca.is_some());
        let auth_method = raw.auth_method.map(Spanned::into_inner).unwrap_or_default();
        // `key: default, minimum` of a duration in ms, or of a count with its maximum.
        macro_rules! ms {
            ($key:ident: $default:expr, $min:expr) => {
                self.int(
                    raw.$key,
                    stringify!($key),
                    $default,
                    $min,
                    MAX_DURATION_MS,
                    "",
                )?
            };
        }
        macro_rules! count {
            ($key:ident: $default:expr, $min:expr, $max:expr) => {
                self.size(raw.$key, stringify!($key), $default, $min, $max, "")?
            };
        }
        let users = self.users(raw.users, auth_method)?;
        let mut config = Config {
            listen: self.listen(raw.listen)?,
            auth_method,
            checkout_timeout_ms: ms!(checkout_timeout_ms: DEFAULT_CHECKOUT_TIMEOUT_MS, 1),
            connect_timeout_ms: ms!(connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS, 1),
            server_idle_timeout_ms: ms!(server_idle_timeout_ms: DEFAULT_SERVER_IDLE_TIMEOUT_MS, 0),
            server_lifetime_ms: ms!(server_lifetime_ms: DEFAULT_SERVER_LIFETIME_MS, 0),
            client_login_timeout_ms: ms!(client_login_timeout_ms: DEFAULT_CLIENT_LOGIN_TIMEOUT_MS, 1),
            shutdown_timeout_ms: ms!(shutdown_timeout_ms: DEFAULT_SHUTDOWN_TIMEOUT_MS, 0),
            max_message_size: self.size(
                raw.max_message_size,
                "max_message_size",
                DEFAULT_MAX_MESSAGE_SIZE,
                MIN_MAX_MESSAGE_SIZE,
                MAX_MAX_MESSAGE_SIZE,
                " bytes",
            )?,
            worker_threads: count!(worker_threads: DEFAULT_WORKER_THREADS, 0, MAX_WORKER_THREADS),
            prepared_statements_per_connection: count!(
                prepared_statements_per_connection: 250, 1, 100_000
            ),
            max_prepared_statements: count!(max_prepared_statements: 10_000, 1, 10_000_000),
            tls,
            hba: self.hba(raw.hba, client_certificates)?,
            auth_query: raw.auth_query.map(|a| self.auth_query(a)).transpose()?,
            operations: Operations::default(),
            databases: self.databases(raw.databases, &users)?,
            users,
            secrets_in_file: false,
        };
        config.operations = self.operations(ops, &config.users)?;
        config.secrets_in_file = self.literal_secret.get();
        Ok(config)
    }

    /// `listen`: required, an IP:port.
    fn listen(&self, listen: Option<Spanned<String>>) -> Result<SocketAddr, ConfigError> {
        let Some(listen) = listen else {
            return Err(ConfigError::Global {
                message: "missing required key `listen` (e.g. listen = \"127.0.0.1:6432\")"
                    .to_string(),
            });
        };
        listen.get_ref().parse::<SocketAddr>().map_err(|_| {
            self.invalid(
                &listen.span(),
                "listen",
                format!(
                    "{:?} is not an IP:port address (e.g. \"127.0.0.1:6432\" or \"[::1]:6432\"; \
                     host names are not accepted here)",
                    listen.get_ref()
                ),
            )
        })
    }

    /// An optional integer with a default and an inclusive range.
    fn int(
        &self,
        value: Option<Spanned<u64>>,
        path: &str,
        default: u64,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let n = *value.get_ref();
        if n < min {
            Err(self.invalid(
                &value.span(),
                path,
                format!("must be at least {min}{unit} (got {n})"),
            ))
        } else if n > max {
            Err(self.invalid(
                &value.span(),
                path,
                format!("must be at most {max}{unit} (got {n})"),
            ))
        } else {
            Ok(n)
        }
    }

    /// Like `int`, for counts and sizes held as `usize`.
    fn size(
        &self,
        value: Option<Spanned<u64>>,
        path: &str,
        default: usize,
        min: usize,
        max: usize,
        unit: &str,
    ) -> Result<usize, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let span = value.span();
        let n = self.int(Some(value), path, 0, to_u64(min), to_u64(max), unit)?;
        usize::try_from(n)
            .map_err(|_| self.invalid(&span, path, format!("{n} is too large for this machine")))
    }

    fn users(
        &self,
        raw: Vec<Spanned<RawUser>>,
        auth_method: AuthMethod,
    ) -> Result<Vec<User>, ConfigError> {
        let mut users = Vec::with_capacity(raw.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, entry) in raw.into_iter().enumerate() {
            let table_span = entry.span();
            let entry = entry.into_inner();
            let path = format!("users[{i}]");

            let name = self.required(entry.name, &table_span, &path, "name")?;
            let name_path = format!("{path}.name");
            self.identifier(&name, &name_path, "user name")?;
            let line = line_of(self.text, name.span().start);
            if let Some(first) = seen.get(name.get_ref()) {
                return Err(self.invalid(
                    &name.span(),
                    &name_path,
                    format!(
                        "duplicate user {:?} (first defined at line {first})",
                        name.get_ref()
                    ),
                ));
            }
            seen.insert(name.get_ref().clone(), line);

            let password = self.required(entry.password, &table_span, &path, "password")?;
            let password_path = format!("{path}.password");
            let password = self.secret(password, &password_path)?;
            self.password(&password, &password_path, auth_method)?;

            users.push(User {
                name: name.into_inner(),
                password: password.into_inner(),
            });
        }
        Ok(users)
    }

    fn password(
        &self,
        password: &Spanned<String>,
        path: &str,
        auth_method: AuthMethod,
    ) -> Result<(), ConfigError> {
        let span = password.span();
        let secret = password.get_ref();
        if secret.is_empty() {
            return Err(self.invalid(&span, path, "the password must not be empty"));
        }
        if secret.contains('\0') {
            return Err(self.invalid(&span, path, "the password must not contain a NUL character"));
        }
        let kind = super::types::password_kind(secret);
        if kind == PasswordKind::ScramSha256 && !is_scram_verifier(secret) {
            return Err(self.invalid(
                &span,
                path,
                "starts like a SCRAM-SHA-256 verifier but is malformed (expected \
                 SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, base64 keys of 32 bytes)",
            ));
        }
        // A SCRAM verifier under auth_method = "md5" is fine: such users are
        // asked for SCRAM. An md5 hash can never answer a SCRAM exchange.
        match (auth_method, kind) {
            (AuthMethod::ScramSha256, PasswordKind::Md5) => Err(self.invalid(
                &span,
                path,
                "an md5 hash cannot be used with auth_method = \"scram-sha-256\" \
                 (use the plaintext password or a SCRAM-SHA-256 verifier, or auth_method = \"md5\")",
            )),
            _ => Ok(()),
        }
    }

    fn databases(
        &self,
        raw: Option<BTreeMap<Spanned<String>, RawDatabase>>,
        users: &[User],
    ) -> Result<BTreeMap<String, Database>, ConfigError> {
        let raw = raw.unwrap_or_default();
        if raw.is_empty() {
            return Err(ConfigError::Global {
                message: "no [databases.*] table; at least one database is required".to_string(),
            });
        }
        let mut databases = BTreeMap::new();
        for (name, db) in raw {
            let path = format!("databases.{}", key_segment(name.get_ref()));
            self.identifier(&name, &path, "database name")?;
            let database = self.database(&name, &path, db, users)?;
            databases.insert(name.into_inner(), database);
        }
        Ok(databases)
    }

    fn database(
        &self,
        name: &Spanned<String>,
        path: &str,
        mut raw: RawDatabase,
        users: &[User],
    ) -> Result<Database, ConfigError> {
        let min_span = raw.min_pool_size.as_ref().map(|v| v.span());
        let (timeouts, pool_limits) = self.database_limits(path, &mut raw)?;
        let hosts = self.hosts(self.required(raw.hosts, &name.span(), path, "hosts")?, path)?;
        let (server_tls, server_ca) = self.server_tls(name, path, raw.server_tls, raw.server_ca)?;
        let cache = self.cache(raw.cache.take(), path, users)?;
        let dbname = self
            .optional_identifier(raw.dbname, path, "dbname", "dbname")?
            .unwrap_or_else(|| name.get_ref().clone());
        let at = |key: &str| format!("{path}.{key}");
        let functions = |list, key| self.function_list(list, path, key);
        let limit = |v: Option<Spanned<u64>>, key: &str, default: u64| {
            self.int(v, &at(key), default, 0, MAX_DURATION_MS, "")
        };
        let ms = |v: Option<Spanned<u64>>, key: &str, default: u64, min: u64| {
            self.int(v, &at(key), default, min, MAX_DURATION_MS, " ms")
        };
        Ok(Database {
            name: name.get_ref().clone(),
            hosts,
            dbname,
            pool_mode: raw.pool_mode.map(Spanned::into_inner).unwrap_or_default(),
            pool_size: self.pool_size(raw.pool_size, &at("pool_size"))?,
            routing: raw.routing.map(Spanned::into_inner).unwrap_or_default(),
            write_functions: functions(raw.write_functions, "write_functions")?,
            read_only_functions: functions(raw.read_only_functions, "read_only_functions")?,
            read_your_writes: raw
                .read_your_writes
                .map(Spanned::into_inner)
                .unwrap_or_default(),
            read_your_writes_window_ms: ms(
                raw.read_your_writes_window_ms,
                "read_your_writes_window_ms",
                1000,
                0,
            )?,
            load_balancing: raw
                .load_balancing
                .map(Spanned::into_inner)
                .unwrap_or_default(),
            primary_reads: raw.primary_reads.map(Spanned::into_inner).unwrap_or(false),
            health_check_interval_ms: ms(
                raw.health_check_interval_ms,
                "health_check_interval_ms",
                1000,
                100,
            )?,
            health_check_user: self.optional_identifier(
                raw.health_check_user,
                path,
                "health_check_user",
                "user name",
            )?,
            ban_time_ms: limit(raw.ban_time_ms, "ban_time_ms", 5000)?,
            max_replica_lag_bytes: self
                .lag_bytes(raw.max_replica_lag_bytes, &at("max_replica_lag_bytes"))?,
            max_replica_lag_ms: limit(raw.max_replica_lag_ms, "max_replica_lag_ms", 10_000)?,
            primary_wait_timeout_ms: limit(
                raw.primary_wait_timeout_ms,
                "primary_wait_timeout_ms",
                5000,
            )?,
            timeouts,
            pool_limits,
            server_tls,
            server_ca,
            cache,
        })
        .and_then(|db| self.min_within_size(db, path, min_span.unwrap_or_else(|| name.span())))
    }

    /// `pool_size`: 1 to `MAX_POOL_SIZE`.
    fn pool_size(&self, v: Option<Spanned<u64>>, path: &str) -> Result<usize, ConfigError> {
        self.size(v, path, DEFAULT_POOL_SIZE, 1, MAX_POOL_SIZE, "")
    }

    /// A database's `hosts`: at least one, each a host:port, no duplicates.
    fn hosts(
        &self,
        hosts: Spanned<Vec<Spanned<String>>>,
        path: &str,
    ) -> Result<Vec<HostAddr>, ConfigError> {
        let hosts_path = format!("{path}.hosts");
        if hosts.get_ref().is_empty() {
            return Err(self.invalid(&hosts.span(), &hosts_path, "at least one host is required"));
        }
        let mut parsed: Vec<HostAddr> = Vec::with_capacity(hosts.get_ref().len());
        let mut seen: HashMap<(String, u16), usize> = HashMap::new();
        for (i, host) in hosts.into_inner().into_iter().enumerate() {
            let host_path = format!("{hosts_path}[{i}]");
            let addr = host.get_ref().parse::<HostAddr>().map_err(|why| {
                self.invalid(
                    &host.span(),
                    &host_path,
                    format!("{:?} is not a host:port address: {why}", host.get_ref()),
                )
            })?;
            if let Some(first) = seen.insert(addr.normalized(), i) {
                return Err(self.invalid(
                    &host.span(),
                    &host_path,
                    format!("duplicate host {addr} (already listed as {hosts_path}[{first}])"),
                ));
            }
            parsed.push(addr);
        }
        Ok(parsed)
    }

    /// A list of function names, trimmed and lower-cased; none may be empty.
    fn function_list(
        &self,
        list: Option<Spanned<Vec<Spanned<String>>>>,
        path: &str,
        key: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        let items = list.map(Spanned::into_inner).unwrap_or_default();
        for (i, f) in items.into_iter().enumerate() {
            let name = f.get_ref().trim().to_ascii_lowercase();
            if name.is_empty() {
                return Err(self.invalid(
                    &f.span(),
                    &format!("{path}.{key}[{i}]"),
                    "empty function name",
                ));
            }
            out.push(name);
        }
        Ok(out)
    }

    /// An optional identifier-valued key (`what` names it in errors).
    fn optional_identifier(
        &self,
        value: Option<Spanned<String>>,
        path: &str,
        key: &str,
        what: &str,
    ) -> Result<Option<String>, ConfigError> {
        match value {
            Some(v) => {
                self.identifier(&v, &format!("{path}.{key}"), what)?;
                Ok(Some(v.into_inner()))
            }
            None => Ok(None),
        }
    }

    /// A required key of a table; a missing one is reported at `table_span`.
    fn required<T>(
        &self,
        value: Option<T>,
        table_span: &Range<usize>,
        table_path: &str,
        key: &str,
    ) -> Result<T, ConfigError> {
        value.ok_or_else(|| {
            self.invalid(
                table_span,
                table_path,
                format!("missing required key `{key}`"),
            )
        })
    }

    /// A PostgreSQL identifier: 1..=63 bytes, no NUL.
    fn identifier(
        &self,
        value: &Spanned<String>,
        path: &str,
        what: &str,
    ) -> Result<(), ConfigError> {
        let text = value.get_ref();
        let why = if text.is_empty() {
            format!("the {what} must not be empty")
        } else if text.len() > MAX_IDENTIFIER_LEN {
            format!(
                "the {what} {text:?} is {} bytes long; PostgreSQL allows at most {MAX_IDENTIFIER_LEN}",
                text.len()
            )
        } else if text.contains('\0') {
            format!("the {what} must not contain a NUL character")
        } else {
            return Ok(());
        };
        Err(self.invalid(&value.span(), path, why))
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` with base64
/// parts and 32-byte keys.
fn is_scram_verifier(secret: &str) -> bool {
    let Some(rest) = secret.strip_prefix("SCRAM-SHA-256$") else {
        return false;
    };
    let Some((params, keys)) = rest.split_once('$') else {
        return false;
    };
    let Some((iterations, salt)) = params.split_once(':') else {
        return false;
    };
    let Some((stored_key, server_key)) = keys.split_once(':') else {
        return false;
    };
    // 32 bytes: 43 base64 digits and one `=`.
    let is_key = |k: &str| k.len() == 44 && k.find('=') == Some(43) && is_base64(k);
    matches!(iterations.parse::<u32>(), Ok(n) if n > 0)
        && !salt.is_empty()
        && is_base64(salt)
        && is_key(stored_key)
        && is_key(server_key)
}

fn is_base64(s: &str) -> bool {
    s.len() % 4 == 0
        && s.trim_end_matches('=').len() + 2 >= s.len()
        && s.trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}
