//! The benchmark's parts that stand on their own and are tested on their own.

pub mod cpu_limit;
