//! Lambda function `spawn-blocking`: the shared handler with the `spawn-blocking` strategy.

/// The S3 client allocates hundreds of times per call: mimalloc runs it in fewer instructions
/// than glibc's allocator (docs/benchmark.md, "The strategies' cost per call").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), lambda_runtime::Error> {
    acl_audit_lambda::run(acl_audit_lambda::StrategyKind::SpawnBlocking)
}
