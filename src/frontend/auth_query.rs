//! `[auth_query]`: users not listed in `[[users]]` are looked up on the primary of the
//! database the client asked for, as the auth_query user (its own pool), before the client
//! is asked to authenticate. The answer is kept in `auth::FetchedUsers` for its lifetime; a
//! lookup that fails while an older answer exists goes on with that one.

use super::Shared;
use crate::auth::Freshness;
use crate::backend::own_queries::query_row_with;
use crate::backend::pool;
use crate::protocol::messages::PgError;
use crate::protocol::SqlState;
use bytes::BytesMut;

/// Makes sure the secrets of `user` in `database` are known, if `[auth_query]` can say.
/// Errors are FATAL errors for the client (the lookup failed and nothing is known).
pub async fn look_up(shared: &Shared, database: &str, user: &str) -> Result<(), PgError> {
    let (Some(settings), Some(fetched), Some(login)) = (
        &shared.config.auth_query,
        &shared.users.fetched,
        &shared.auth_query_login,
    ) else {
        return Ok(());
    };
    if shared.users.contains(user) || fetched.freshness(database, user) == Freshness::Fresh {
        return Ok(());
    }
    // An unknown database: nothing to ask; the login fails as for an unknown user.
    let Some(cluster) = shared.cluster(database) else {
        return Ok(());
    };
    let pools = cluster.user_pools(&settings.user, login);
    let answer = async {
        let mut conn = cluster.checkout_primary(&pools).await?;
        let mut buf = BytesMut::new();
        let row = query_row_with(&mut conn.stream, &mut buf, &settings.query, user).await;
        match &row {
            Err(e) if e.code == SqlState::CONNECTION_FAILURE => pool::discard(conn),
            _ => pool::release(conn),
        }
        row
    };
    let secret = match answer.await {
        Ok(None) => None,
        Ok(Some(row)) if row.len() >= 2 => row.into_iter().nth(1).flatten(),
        Ok(Some(_)) => {
            return failed(
                shared,
                database,
                user,
                PgError::error(
                    SqlState::DATATYPE_MISMATCH,
                    "auth_query must return two columns: the user name and its secret",
                ),
            )
        }
        Err(e) => return failed(shared, database, user, e),
    };
    let found = secret.is_some();
    if let Err(why) = fetched.store(database, user, secret.as_deref()) {
        tracing::warn!(%database, %user, %why, "auth_query returned a secret that cannot be used");
    } else {
        tracing::debug!(%database, %user, found, "auth_query looked up a user");
    }
    Ok(())
}

/// A lookup that failed: an older answer, if there is one, still serves.
fn failed(shared: &Shared, database: &str, user: &str, e: PgError) -> Result<(), PgError> {
    let stale = shared.users.entry(database, user).is_some();
    tracing::warn!(%database, %user, error = %e, stale_answer_used = stale, "auth_query lookup failed");
    if stale {
        return Ok(());
    }
    Err(PgError::fatal(
        e.code,
        format!(
            "could not look up user \"{user}\" with auth_query: {}",
            e.message
        ),
    ))
}
