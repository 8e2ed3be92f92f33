//! Switchyard: a PostgreSQL connection pooler and read/write query router.
//!
//! The binary (`src/main.rs`) parses the CLI and runs [`app::Server`]; tests run the same
//! server in-process with an [`app::App`] built from a config.

#![forbid(unsafe_code)]

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
