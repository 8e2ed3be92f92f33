//! Small process-wide helpers: for the hot path a coarse clock and per-thread buffer reuse;
//! a permission check for files that hold secrets.

pub mod buffers;
pub mod coarse_clock;
pub mod files;
