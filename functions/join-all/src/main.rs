//! Lambda function `join-all`: the shared handler with the `join-all` strategy.

fn main() -> Result<(), lambda_runtime::Error> {
    acl_audit::lambda::run(acl_audit::StrategyKind::JoinAll)
}
