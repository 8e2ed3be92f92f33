//! Answers Switchyard gives without a server: a lone Sync, the error for a request that
//! could not get a server connection (then skipping to the next Sync, as Postgres does), and
//! a transaction whose server died: until the client rolls back, it is told its transaction
//! is aborted, and ROLLBACK/COMMIT end it (COMMIT reports ROLLBACK, as Postgres does).

use super::client_io::ClientIo;
use crate::protocol::client_msgs::{parse_sql, query_sql};
use crate::protocol::frame::Frames;
use crate::protocol::messages::{self, PgError, TxStatus};
use crate::protocol::SqlState;
use crate::router::statement_text::{statements, tokens, Token};
use bytes::BytesMut;

#[derive(Default)]
pub struct LocalState {
    /// The client believes it is in a transaction that failed (its server is gone).
    failed_tx: bool,
    /// An error to report on the client's next request (boxed: every session holds this
    /// state, and it is rarely set).
    error: Option<Box<PgError>>,
    /// Discarding extended-protocol messages until Sync.
    skipping: bool,
    /// Emulating an extended-protocol ROLLBACK of a failed transaction.
    rollback_batch: bool,
    /// The client sent Terminate.
    pub closing: bool,
}

impl LocalState {
    /// Whether the next frames must be answered here even if they could go to a server.
    pub fn active(&self) -> bool {
        self.failed_tx || self.error.is_some() || self.skipping || self.rollback_batch
    }

    /// The current request could not be served: report `e` on it.
    pub fn fail_request(&mut self, e: PgError) {
        self.error = Some(Box::new(e));
    }

    /// The server died with `pending` sync points unanswered.
    pub fn server_lost(&mut self, e: PgError, pending: usize, in_tx: bool, out: &mut BytesMut) {
        self.failed_tx = in_tx;
        if pending == 0 {
            self.error = Some(Box::new(e));
            return;
        }
        e.write(out);
        for _ in 0..pending {
            messages::ready_for_query(out, self.status());
        }
    }

    fn status(&self) -> TxStatus {
        if self.failed_tx {
            TxStatus::Failed
        } else {
            TxStatus::Idle
        }
    }
}

fn in_failed_tx() -> PgError {
    PgError::error(
        SqlState::IN_FAILED_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
    .with_detail("the server connection of this transaction was lost")
}

/// ROLLBACK, ABORT, COMMIT or END (not ROLLBACK TO / ... PREPARED), alone in the string.
fn ends_transaction(sql: &str) -> bool {
    let stmts: Vec<&str> = statements(sql)
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let [stmt] = stmts.as_slice() else {
        return false;
    };
    let mut t = tokens(stmt);
    let first = matches!(t.next(), Some(Token::Word(w)) if ["rollback", "abort", "commit", "end"].iter().any(|k| w.eq_ignore_ascii_case(k)));
    let second_ok = !matches!(t.next(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("to") || w.eq_ignore_ascii_case("prepared"));
    first && second_ok
}

/// Consumes and answers the complete client frames that need no server. Returns true if it
/// stopped at frames that need one (left in the buffer).
pub fn answer_locally(st: &mut LocalState, io: &mut ClientIo, max: usize) -> Result<bool, PgError> {
    let mut consumed = 0;
    let mut more = false;
    let b = io.bufs.get();
    let out = &mut b.cout;
    for f in Frames::new(&b.cin, max) {
        let (h, frame) =
            f.map_err(|e| PgError::fatal(SqlState::PROTOCOL_VIOLATION, e.to_string()))?;
        if !st.active() && !matches!(h.tag, b'S' | b'H' | b'X') {
            more = true;
            break;
        }
        consumed += h.total_len;
        match h.tag {
            b'X' => {
                st.closing = true;
                break;
            }
            b'H' => {}
            b'S' => {
                if let Some(e) = st.error.take() {
                    e.write(out);
                }
                if st.rollback_batch {
                    st.rollback_batch = false;
                    st.failed_tx = false;
                }
                st.skipping = false;
                messages::ready_for_query(out, st.status());
            }
            b'Q' if st.skipping => {}
            b'Q' => {
                if let Some(e) = st.error.take() {
                    e.write(out);
                } else if query_sql(frame).is_some_and(ends_transaction) {
                    st.failed_tx = false;
                    messages::command_complete(out, "ROLLBACK");
                } else {
                    in_failed_tx().write(out);
                }
                messages::ready_for_query(out, st.status());
            }
            b'P' | b'B' | b'E' | b'D' | b'C' | b'F' | b'd' | b'c' | b'f' => {
                if st.rollback_batch {
                    match h.tag {
                        b'P' => out.extend_from_slice(&[b'1', 0, 0, 0, 4]),
                        b'B' => out.extend_from_slice(&[b'2', 0, 0, 0, 4]),
                        b'C' => out.extend_from_slice(&[b'3', 0, 0, 0, 4]),
                        b'D' => out.extend_from_slice(&[b'n', 0, 0, 0, 4]),
                        b'E' => messages::command_complete(out, "ROLLBACK"),
                        _ => {}
                    }
                } else if st.skipping {
                } else if let Some(e) = st.error.take() {
                    e.write(out);
                    st.skipping = true;
                } else if st.failed_tx
                    && h.tag == b'P'
                    && parse_sql(frame).is_some_and(ends_transaction)
                {
                    st.rollback_batch = true;
                    out.extend_from_slice(&[b'1', 0, 0, 0, 4]);
                } else {
                    in_failed_tx().write(out);
                    st.skipping = true;
                }
            }
            other => {
                return Err(PgError::fatal(
                    SqlState::PROTOCOL_VIOLATION,
                    format!("invalid frontend message type {other}"),
                ))
            }
        }
    }
    io.consume(consumed);
    Ok(more)
}

#[cfg(test)]
mod tests {
    use super::ends_transaction;

    #[test]
    fn recognises_transaction_end() {
        for s in [
            "ROLLBACK",
            "rollback;",
            " COMMIT ",
            "abort",
            "END",
            "/* x */ commit work",
        ] {
            assert!(ends_transaction(s), "{s}");
        }
        for s in [
            "ROLLBACK TO SAVEPOINT a",
            "COMMIT PREPARED 'x'",
            "select 1",
            "commit; select 1",
            "",
        ] {
            assert!(!ends_transaction(s), "{s}");
        }
    }
}
