//! Small process-wide helpers for the hot path: a coarse clock and per-thread buffer reuse.

pub mod buffers;
pub mod coarse_clock;
