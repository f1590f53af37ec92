//! The benchmark's parts: the child process that stands for a Lambda execution environment,
//! the CPU limiter that stands for its memory size, and the figures' aggregation.

pub mod chart;
pub mod cpu_limit;
pub mod invoke;
pub mod stats;
pub mod sweep;
