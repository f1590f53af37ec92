//! Lambda function `sequential`: the shared handler with the `sequential` strategy.

fn main() -> Result<(), lambda_runtime::Error> {
    acl_audit::lambda::run(acl_audit::StrategyKind::Sequential)
}
