//! Switchyard: a PostgreSQL connection pooler and read/write query router.
//!
//! The binary (`src/main.rs`) parses the CLI and runs [`app::Server`]; tests run the same
//! server in-process with an [`app::App`] built from a config.

// No unsafe code, with two allowed exceptions in `net::plain`, which registers sockets with
// tokio itself (to ask for reads only): `register` (tokio's registration of a descriptor is an
// unsafe function: the socket it owns keeps its descriptor) and `recv_into`, which reads into
// a buffer's uninitialized spare capacity as tokio's own streams do (zeroing 16 KiB before
// every read would cost more than the read).
#![deny(unsafe_code)]

pub mod app;
pub mod auth;
pub mod backend;
pub mod cache;
pub mod config;
pub mod frontend;
pub mod net;
pub mod params;
pub mod prepared;
pub mod protocol;
pub mod router;
pub mod stats;
pub mod topology;
pub mod util;
