//! Small process-wide helpers for the hot path: a coarse clock, per-thread buffer reuse and
//! future-free socket writes.

pub mod buffers;
pub mod coarse_clock;
pub mod socket;
