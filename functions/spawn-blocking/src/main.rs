//! Lambda function `spawn-blocking`: the shared handler with the `spawn-blocking` strategy.

fn main() -> Result<(), lambda_runtime::Error> {
    acl_audit::lambda::run(acl_audit::StrategyKind::SpawnBlocking)
}
