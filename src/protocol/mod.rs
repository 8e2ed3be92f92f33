//! Wire protocol only, no policy: cancel-safe framing with a size cap, the startup packet,
//! builders for the messages Switchyard itself sends, and peeks into the few server messages
//! it has to inspect. Everything else is forwarded as raw bytes.

pub mod backend_msgs;
pub mod client_msgs;
pub mod frame;
pub mod messages;
pub mod sqlstate;
pub mod startup;

pub use frame::{FrameError, FrameHeader};
pub use sqlstate::SqlState;
