//! Secrets taken from the environment: a password written as `"${NAME}"` in the config is
//! the value of the environment variable NAME, read when the file is loaded (and on every
//! reload), so that no secret has to be written into a config file or a container image.

use toml::Spanned;

use super::super::ConfigError;
use super::Checker;

/// The name inside `${NAME}` when `value` is exactly such a reference; a NAME is a letter
/// or `_` followed by letters, digits and `_`, as in a shell.
pub(super) fn env_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix("${")?.strip_suffix('}')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid_first = first.is_ascii_alphabetic() || first == '_';
    (valid_first && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

impl Checker<'_> {
    /// The secret itself: `value` unchanged, or the variable it names when it is `${NAME}`.
    /// A variable that is unset or empty is an error naming it and the key's line.
    pub(super) fn secret(
        &self,
        value: Spanned<String>,
        path: &str,
    ) -> Result<Spanned<String>, ConfigError> {
        let Some(name) = env_reference(value.get_ref()) else {
            self.literal_secret.set(true);
            return Ok(value);
        };
        let span = value.span();
        match std::env::var(name) {
            Ok(secret) if !secret.is_empty() => Ok(Spanned::new(span, secret)),
            Ok(_) => Err(self.invalid(
                &span,
                path,
                format!("the environment variable {name} is empty"),
            )),
            Err(std::env::VarError::NotPresent) => Err(self.invalid(
                &span,
                path,
                format!("the environment variable {name} is not set"),
            )),
            Err(std::env::VarError::NotUnicode(_)) => Err(self.invalid(
                &span,
                path,
                format!("the environment variable {name} is not valid UTF-8"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::tests::{fails, parse};
    use super::env_reference;

    const USERS: &str = "listen = \"127.0.0.1:6432\"\n[[users]]\nname = \"app\"\n";
    const DB: &str = "[databases.app]\nhosts = [\"127.0.0.1:5432\"]\n";

    #[test]
    fn a_password_comes_from_the_named_variable() {
        // Names unique to this test: the environment is shared by the test threads.
        std::env::set_var("SWITCHYARD_TEST_ENV_SECRET_SET", "from-env");
        let text = format!("{USERS}password = \"${{SWITCHYARD_TEST_ENV_SECRET_SET}}\"\n{DB}");
        let config = parse(&text);
        assert_eq!(config.users[0].password, "from-env");
        assert!(!config.secrets_in_file);
        let text = format!("{USERS}password = \"pw\"\n{DB}");
        assert!(parse(&text).secrets_in_file);
        let text = format!("{USERS}password = \"${{SWITCHYARD_TEST_ENV_SECRET_UNSET}}\"\n{DB}");
        fails(
            &text,
            4,
            &[
                "users[0].password",
                "SWITCHYARD_TEST_ENV_SECRET_UNSET is not set",
            ],
        );
    }

    #[test]
    fn only_a_whole_reference_names_a_variable() {
        assert_eq!(env_reference("${APP_PASSWORD}"), Some("APP_PASSWORD"));
        assert_eq!(env_reference("${_x1}"), Some("_x1"));
        assert_eq!(env_reference("pw${APP}"), None);
        assert_eq!(env_reference("${1A}"), None);
        assert_eq!(env_reference("${}"), None);
        assert_eq!(env_reference("${A-B}"), None);
        assert_eq!(env_reference("SCRAM-SHA-256$4096:abc$def:ghi"), None);
    }
}
