//! The console's commands, parsed from a simple Query's text: `SHOW <what>` (and `SHOW ROUTE
//! <sql>`), and the admin commands `PAUSE [db]`, `RESUME [db]`, `RECONNECT [db]`, `KILL db`,
//! `RELOAD`, `SHUTDOWN`; case-insensitive, with or without a trailing semicolon.

use crate::protocol::messages::PgError;
use crate::protocol::SqlState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Show(Show),
    /// `SHOW ROUTE <sql>`: where that SQL would go and why.
    ShowRoute(String),
    /// An empty query (only whitespace and semicolons).
    Empty,
    /// Admin only.
    Admin(Admin),
}

/// The commands only `admin_users` may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    /// New transactions wait; returns once those in flight have finished.
    Pause(Option<String>),
    Resume(Option<String>),
    /// Every server connection is replaced (idle ones now, busy ones when returned).
    Reconnect(Option<String>),
    /// The database's clients are disconnected and its server connections closed; it stays
    /// paused until RESUME.
    Kill(String),
    Reload,
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    Pools,
    Stats,
    StatsTotals,
    StatsAverages,
    Servers,
    Clients,
    Databases,
    Users,
    Config,
    Version,
    Lists,
    Hosts,
    Cache,
    Help,
}

const SHOWS: &[(&str, Show)] = &[
    ("pools", Show::Pools),
    ("stats", Show::Stats),
    ("stats_totals", Show::StatsTotals),
    ("stats_averages", Show::StatsAverages),
    ("servers", Show::Servers),
    ("clients", Show::Clients),
    ("databases", Show::Databases),
    ("users", Show::Users),
    ("config", Show::Config),
    ("version", Show::Version),
    ("lists", Show::Lists),
    ("hosts", Show::Hosts),
    ("cache", Show::Cache),
    ("help", Show::Help),
];

/// The SHOW subjects, for errors and SHOW HELP.
pub fn show_names() -> impl Iterator<Item = &'static str> {
    SHOWS.iter().map(|(n, _)| *n).chain(["route <sql>"])
}

/// Parses one console query.
pub fn parse(text: &str) -> Result<Command, PgError> {
    let text = text.trim().trim_end_matches(';').trim();
    if text.is_empty() {
        return Ok(Command::Empty);
    }
    let (verb, rest) = split_word(text);
    if let Some(admin) = admin(verb, rest)? {
        return Ok(Command::Admin(admin));
    }
    if !verb.eq_ignore_ascii_case("show") {
        return Err(PgError::error(
            SqlState::SYNTAX_ERROR,
            format!("unknown console command \"{verb}\": try SHOW HELP"),
        ));
    }
    let (what, rest) = split_word(rest);
    if what.eq_ignore_ascii_case("route") {
        if rest.is_empty() {
            return Err(PgError::error(
                SqlState::SYNTAX_ERROR,
                "SHOW ROUTE needs the SQL to route, e.g. SHOW ROUTE SELECT 1",
            ));
        }
        return Ok(Command::ShowRoute(rest.to_string()));
    }
    let known = SHOWS.iter().find(|(n, _)| what.eq_ignore_ascii_case(n));
    match known {
        Some((_, show)) if rest.is_empty() => Ok(Command::Show(*show)),
        Some((name, _)) => Err(PgError::error(
            SqlState::SYNTAX_ERROR,
            format!("SHOW {} takes no arguments", name.to_uppercase()),
        )),
        None => Err(PgError::error(
            SqlState::UNDEFINED_OBJECT,
            format!(
                "unknown SHOW subject \"{what}\"; the console knows: {}",
                show_names().collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// An admin command, if `verb` names one; its database argument checked for shape.
fn admin(verb: &str, rest: &str) -> Result<Option<Admin>, PgError> {
    let db = || (!rest.is_empty()).then(|| rest.trim_matches('"').to_string());
    let none = |name: &str| -> Result<(), PgError> {
        match rest.is_empty() {
            true => Ok(()),
            false => Err(PgError::error(
                SqlState::SYNTAX_ERROR,
                format!("{name} takes no arguments"),
            )),
        }
    };
    let v = verb.to_ascii_uppercase();
    let known = ["PAUSE", "RESUME", "RECONNECT", "KILL", "RELOAD", "SHUTDOWN"];
    if !known.contains(&v.as_str()) {
        return Ok(None);
    }
    if rest.split_whitespace().count() > 1 {
        return Err(PgError::error(
            SqlState::SYNTAX_ERROR,
            format!("{v} takes at most one database name"),
        ));
    }
    Ok(Some(match v.as_str() {
        "PAUSE" => Admin::Pause(db()),
        "RESUME" => Admin::Resume(db()),
        "RECONNECT" => Admin::Reconnect(db()),
        "KILL" => {
            Admin::Kill(db().ok_or_else(|| {
                PgError::error(SqlState::SYNTAX_ERROR, "KILL needs a database name")
            })?)
        }
        "RELOAD" => none("RELOAD").map(|()| Admin::Reload)?,
        "SHUTDOWN" => none("SHUTDOWN").map(|()| Admin::Shutdown)?,
        _ => return Ok(None),
    }))
}

/// The first whitespace-separated word and the rest (trimmed).
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("show pools;").unwrap(), Command::Show(Show::Pools));
        assert_eq!(
            parse("  SHOW  Stats_Totals ").unwrap(),
            Command::Show(Show::StatsTotals)
        );
        assert_eq!(parse(";").unwrap(), Command::Empty);
        assert_eq!(
            parse("SHOW ROUTE select * from t where a = ';'").unwrap(),
            Command::ShowRoute("select * from t where a = ';'".into())
        );
        assert_eq!(
            parse("SHOW ROUTE").unwrap_err().code,
            SqlState::SYNTAX_ERROR
        );
        assert_eq!(
            parse("SHOW nonsense").unwrap_err().code,
            SqlState::UNDEFINED_OBJECT
        );
        assert_eq!(
            parse("SHOW POOLS x").unwrap_err().code,
            SqlState::SYNTAX_ERROR
        );
        assert_eq!(
            parse("DROP TABLE x").unwrap_err().code,
            SqlState::SYNTAX_ERROR
        );
    }
}
