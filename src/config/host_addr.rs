//! A server address as written in `hosts`: an IP address, a DNS name or a socket directory,
//! and a port; parsed and checked here, resolved only when connecting.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// A server address as written in `hosts`: an IP address or a DNS name, and a
/// port. Names are resolved when connecting, not when loading the config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostAddr {
    /// IPv4 address, IPv6 address (without brackets), host name, or the absolute path of
    /// the directory holding the server's Unix-domain socket (`.s.PGSQL.<port>`).
    pub host: String,
    /// TCP port, 1..=65535.
    pub port: u16,
}

impl HostAddr {
    /// The host as an IP address, if it is one (no DNS lookup).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// Whether the host is a socket directory (reached over a Unix-domain socket).
    pub fn is_socket_dir(&self) -> bool {
        self.host.starts_with('/')
    }

    /// A key under which two spellings of the same address compare equal
    /// (case-insensitive names, canonical IPs).
    pub fn normalized(&self) -> (String, u16) {
        match self.ip() {
            Some(ip) => (ip.to_string(), self.port),
            None if self.is_socket_dir() => {
                let dir = self.host.trim_end_matches('/');
                (
                    if dir.is_empty() { "/" } else { dir }.to_string(),
                    self.port,
                )
            }
            None => (
                self.host.trim_end_matches('.').to_ascii_lowercase(),
                self.port,
            ),
        }
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a string is not a `host:port` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddrError(String);

impl fmt::Display for HostAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostAddrError {}

impl FromStr for HostAddr {
    type Err = HostAddrError;

    /// Accepts `1.2.3.4:5432`, `[::1]:5432`, `localhost:5432`, `db.internal:5432`,
    /// `/var/run/postgresql:5432` (a socket directory).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: String| Err(HostAddrError(why));
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return err("missing `]` after the IPv6 address".into());
            };
            let Some(port) = after.strip_prefix(':') else {
                return err("missing `:port` after `]`".into());
            };
            if inside.parse::<Ipv6Addr>().is_err() {
                return err(format!("{inside:?} is not an IPv6 address"));
            }
            (inside, port)
        } else {
            let Some((host, port)) = s.rsplit_once(':') else {
                return err("missing `:port`".into());
            };
            if host.starts_with('/') {
                if host.contains(':') || host.contains('\0') {
                    return err(format!("socket directory {host:?} contains ':' or NUL"));
                }
                if !socket_dir_fits(host) {
                    return err(format!(
                        "socket directory {host:?} is too long for a socket path (at most {MAX_SOCKET_DIR} bytes)"
                    ));
                }
            } else if host.contains(':') {
                return err("write IPv6 addresses in brackets, e.g. [::1]:5432".into());
            } else if let Err(why) = check_host_name(host) {
                return err(why);
            }
            (host, port)
        };
        match port.parse::<u16>() {
            Ok(port) if port != 0 => Ok(HostAddr {
                host: host.to_string(),
                port,
            }),
            _ => err(format!("port {port:?} is not a number from 1 to 65535")),
        }
    }
}

/// The longest path a Unix-domain socket address holds on Linux (`sun_path`, 108 bytes with
/// the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The longest socket directory: `DIR/.s.PGSQL.<any port>` must fit a socket address.
pub const MAX_SOCKET_DIR: usize = MAX_SOCKET_PATH - "/.s.PGSQL.65535".len();

/// Whether `DIR/.s.PGSQL.<any port>` fits a socket address, for a socket directory `dir`
/// (`hosts` entries and `listen_unix_dir`).
pub fn socket_dir_fits(dir: &str) -> bool {
    dir.len() <= MAX_SOCKET_DIR
}

/// Checks an IPv4 address or DNS host name (letters, digits, `-`, `_`, dots).
fn check_host_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return Err("the host name is longer than 253 bytes".into());
    }
    let mut all_numeric = true;
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{host:?} is not a valid host name"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!("{host:?} is not a valid host name"));
        }
        all_numeric &= label.bytes().all(|b| b.is_ascii_digit());
    }
    if all_numeric && host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!("{host:?} is not a valid IPv4 address"));
    }
    Ok(())
}
