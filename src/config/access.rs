//! Who may connect and over what: the `[tls]` table, `server_tls`, the `[[hba]]` access
//! rules with their address matching, and `[auth_query]` (validated model types; the raw
//! serde shapes are in `types`, the checks in `validate/access_checks`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

/// Whether clients must use TLS (`[tls] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientTlsMode {
    /// TLS when the client asks for it (SSLRequest or a direct TLS handshake).
    #[default]
    Prefer,
    /// Logins without TLS are refused (28000).
    Require,
}

/// How Switchyard connects to a database's servers (`server_tls`), as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerTlsMode {
    /// Plain TCP; no SSLRequest.
    Disable,
    /// TLS if the server offers it (no certificate check), else plain.
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is not checked.
    Require,
    /// TLS with a certificate signed by `server_ca`; the host name is not checked.
    VerifyCa,
    /// TLS with a certificate signed by `server_ca` for the host name connected to.
    VerifyFull,
}

impl ServerTlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerTlsMode::Disable => "disable",
            ServerTlsMode::Prefer => "prefer",
            ServerTlsMode::Require => "require",
            ServerTlsMode::VerifyCa => "verify-ca",
            ServerTlsMode::VerifyFull => "verify-full",
        }
    }
}

/// Which connections an `[[hba]]` rule applies to (`type`), as in pg_hba.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HbaType {
    /// TCP, with or without TLS.
    Host,
    /// TCP with TLS only.
    Hostssl,
    /// TCP without TLS only.
    Hostnossl,
    /// The Unix-domain socket (`listen_unix_dir`); such a rule has no `address`.
    Local,
}

/// How a client matched by an `[[hba]]` rule authenticates (`method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum HbaMethod {
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// md5 for users with a plaintext or md5 secret; SCRAM for a verifier-only user (as
    /// PostgreSQL does).
    #[serde(rename = "md5")]
    Md5,
    /// A TLS client certificate (verified against `[tls] ca`) whose common name is the user
    /// name; no password.
    #[serde(rename = "cert")]
    Cert,
    /// Refused.
    #[serde(rename = "reject")]
    Reject,
}

/// An IP network (`address = "10.0.0.0/8"`), or every address (`"all"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaAddress {
    All,
    Net { addr: IpAddr, prefix: u8 },
}

impl HbaAddress {
    /// Whether `ip` is in this network (an IPv4 address written as IPv6, `::ffff:a.b.c.d`,
    /// counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (*self, ip) {
            (HbaAddress::All, _) => true,
            (
                HbaAddress::Net {
                    addr: IpAddr::V4(net),
                    prefix,
                },
                IpAddr::V4(ip),
            ) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (
                HbaAddress::Net {
                    addr: IpAddr::V6(net),
                    prefix,
                },
                IpAddr::V6(ip),
            ) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for HbaAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<HbaAddress, String> {
        if s == "all" {
            return Ok(HbaAddress::All);
        }
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!("{s:?} is not an address in CIDR form (e.g. \"10.0.0.0/8\") or \"all\"")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(HbaAddress::Net { addr, prefix })
    }
}

/// One `[[hba]]` rule: the first rule matching a connection decides how it authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaRule {
    pub kind: HbaType,
    /// A database name, or None for "all".
    pub database: Option<String>,
    /// A user name, or None for "all".
    pub user: Option<String>,
    /// Where TCP clients must be ("all" for a `local` rule).
    pub address: HbaAddress,
    pub method: HbaMethod,
}

impl HbaRule {
    /// Whether the rule applies to a client at `ip` (None: on the Unix-domain socket).
    pub fn matches(&self, ip: Option<IpAddr>, tls: bool, database: &str, user: &str) -> bool {
        let place = match (self.kind, ip) {
            (HbaType::Local, None) => true,
            (HbaType::Local, Some(_)) | (_, None) => false,
            (HbaType::Host, Some(ip)) => self.address.contains(ip),
            (HbaType::Hostssl, Some(ip)) => tls && self.address.contains(ip),
            (HbaType::Hostnossl, Some(ip)) => !tls && self.address.contains(ip),
        };
        place
            && self.database.as_deref().is_none_or(|d| d == database)
            && self.user.as_deref().is_none_or(|u| u == user)
    }
}

/// The `[tls]` table: TLS toward clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM certificate chain presented to clients.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM CA certificates: client certificates are asked for, and one presented must
    /// verify against these.
    pub ca: Option<PathBuf>,
    pub mode: ClientTlsMode,
}

/// The query `[auth_query]` runs when it names none: PostgreSQL's own password store.
pub const DEFAULT_AUTH_QUERY: &str = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1";

/// How long a looked-up secret is reused by default (`cache_lifetime_ms`).
pub const DEFAULT_AUTH_QUERY_LIFETIME_MS: u64 = 30_000;

/// `[auth_query]`: how users not listed in `[[users]]` are looked up. The query runs, as
/// `user`, on the primary of the database the client asked for, with the user name as `$1`;
/// its second column is the secret (a SCRAM verifier or an md5 hash; NULL: no login).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthQuery {
    pub user: String,
    /// Plaintext, or an md5 hash for servers that ask for md5.
    pub password: String,
    pub query: String,
    /// How long an answer (also "no such user") is reused, in ms.
    pub cache_lifetime_ms: u64,
}

/// Never prints the password.
impl std::fmt::Debug for AuthQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthQuery")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("query", &self.query)
            .field("cache_lifetime_ms", &self.cache_lifetime_ms)
            .finish()
    }
}
