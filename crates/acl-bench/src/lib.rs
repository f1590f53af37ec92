//! The benchmark's parts: the child process that stands for a Lambda execution environment,
//! the CPU limiter that stands for its memory size, the CPU split that keeps the endpoint off
//! the children's cores, the figures' aggregation, the checks and seeding for an endpoint the
//! benchmark does not start, an endpoint that pushes back (`pushback`), and Lambda's Invoke API in front of moto for its Step Functions
//! interpreter.

pub mod chart;
pub mod cores;
pub mod cpu_limit;
pub mod external;
pub mod invoke;
pub mod lambda_child;
pub mod lambda_service;
pub mod pushback;
pub mod runtime_api;
pub mod stats;
pub mod sweep;
