//! The state machine's run, on this machine (`statemachine/audit-bucket.asl.json`): its plan
//! step through the handler, then each pass's parts file read as the Map's ItemReader reads it,
//! the parts run by K workers (each a Lambda container: its own thread, one-thread runtime and
//! client, so its own connections) through the handler, each writing its report to its own
//! folder, the collect step, and once a pass leaves no part, the last step. The payloads are
//! those the definition builds; `tests/parts.rs` checks each against it, and
//! `acl-bench/tests/state_machine.rs` runs the definition itself under moto's interpreter.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acl_audit::s3::client::client_trusting;
use acl_audit::{AuditReport, StrategyKind};
use acl_audit_lambda::{Clients, Config, Pass, Reply};
use anyhow::Context as _;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Credentials;
use lambda_runtime::{Context, LambdaEvent};
use local_s3::LocalS3;
use serde::Serialize;
use serde_json::{Value, json};

/// The state machine's definition, as the template's `DefinitionUri` names it.
pub const DEFINITION: &str = include_str!("../../../statemachine/audit-bucket.asl.json");

/// A child execution's input limit (Step Functions' quota).
pub const CHILD_INPUT_LIMIT: usize = 256 * 1024;

/// What to run: the template's parameters, and the workers standing in for the Map's children.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub bucket: String,
    /// `ObjectPrefix`; blank for the whole bucket.
    pub prefix: String,
    /// The inventory source (`s3://…/manifest.json` or a configuration's folder); blank to list.
    pub inventory: String,
    /// `MapParts`.
    pub parts: usize,
    /// Children at once (`MapMaxConcurrency`).
    pub workers: usize,
    /// Each part's invocation ends this long after it starts (the function's timeout); none:
    /// never.
    pub part_timeout: Option<Duration>,
    /// The execution's name: its parts files go under `parts/<name>/`.
    pub execution: String,
    pub results_bucket: String,
}

/// A run, as its steps reported it.
#[derive(Debug, Clone, Serialize)]
pub struct StateMachineRun {
    /// Parts in each pass, in order.
    pub parts_per_pass: Vec<usize>,
    /// Parts whose child failed (the handler answered an error).
    pub failed_parts: usize,
    /// The part events, every pass's, each as the child's input; to check what the Map hands on.
    #[serde(skip)]
    pub part_events: Vec<Value>,
    /// The last step's report of the whole run.
    pub report: AuditReport,
    /// From the plan step's start to the last step's end.
    pub wall_ms: f64,
}

/// The plan step's payload, as the definition's `Plan` state builds it.
pub fn plan_payload(options: &RunOptions) -> Value {
    json!({"plan": {
        "bucket": options.bucket,
        "prefix": options.prefix,
        "inventory": options.inventory,
        "parts": options.parts,
        "folder": format!("s3://{}/parts/{}/", options.results_bucket, options.execution),
        "scope": "bucket",
        "role_name": "",
        "parts_per_bucket": options.parts,
        "max_concurrency": options.workers,
    }})
}

/// The collect step's payload, as the definition's `Collect` state builds it.
pub fn collect_payload(pass: &Pass) -> Value {
    json!({"collect": {"pass": pass}})
}

/// The last step's payload, as the definition's `AddUp` state builds it.
pub fn add_up_payload(pass: &Pass) -> Value {
    json!({"add_up": {"pass": pass}})
}

/// Runs the state machine over `s3` (an HTTPS local-s3: each worker makes its own client)
/// with `config` as the function's environment.
pub async fn run(s3: &LocalS3, config: &Config, options: &RunOptions) -> anyhow::Result<StateMachineRun> {
    let client = client_for(s3)?;
    let started = Instant::now();
    let mut pass = step(&client, config, plan_payload(options), "plan").await?;
    let (mut parts_per_pass, mut part_events, mut failed_parts) = (Vec::new(), Vec::new(), 0);
    loop {
        let parts = item_reader(&client, &pass).await?;
        parts_per_pass.push(parts.len());
        let outcomes = run_workers(s3, config, &parts, options.workers, options.part_timeout)?;
        failed_parts += outcomes.iter().filter(|outcome| outcome.is_err()).count();
        part_events.extend(parts);
        pass = step(&client, config, collect_payload(&pass), "collect").await?;
        if pass.count == 0 {
            break;
        }
    }
    let payload = add_up_payload(&pass);
    let event = LambdaEvent::new(payload, Context::default());
    let report = acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), config, event)
        .await
        .into_result()
        .map_err(|err| anyhow::anyhow!("the last step: {}: {err}", err.error_type()))?;
    Ok(StateMachineRun {
        parts_per_pass,
        failed_parts,
        part_events,
        report,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// A plan or collect step through the handler: its pass.
async fn step(client: &Client, config: &Config, payload: Value, name: &str) -> anyhow::Result<Pass> {
    let invocation = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(client),
        config,
        LambdaEvent::new(payload, Context::default()),
    )
    .await;
    match invocation.into_reply() {
        Ok(Reply::Pass(pass)) => Ok(*pass),
        Ok(Reply::Report(_) | Reply::Sweep(_)) => anyhow::bail!("the {name} step answered a report, not a pass"),
        Err(err) => anyhow::bail!("the {name} step: {}: {err}", err.error_type()),
    }
}

/// The pass's parts, as the Map's ItemReader reads its JSON file: each element one child's input.
async fn item_reader(client: &Client, pass: &Pass) -> anyhow::Result<Vec<Value>> {
    let (bucket, key) = (&pass.items.bucket, &pass.items.key);
    let bytes = acl_audit::s3::read::read_object(client, bucket, key)
        .await
        .map_err(|err| anyhow::anyhow!("cannot read the parts file s3://{bucket}/{key}: {err}"))?;
    serde_json::from_slice(&bytes).with_context(|| format!("s3://{bucket}/{key} is not a JSON array"))
}

pub fn client_for(s3: &LocalS3) -> anyhow::Result<Client> {
    let keys = s3.credentials();
    let credentials = Credentials::new(&keys.access_key_id, &keys.secret_access_key, None, None, "local-s3");
    let ca = s3.ca_pem().context("the endpoint serves no TLS")?;
    Ok(client_trusting(s3.endpoint_url(), credentials, ca.as_bytes())?)
}

/// What one child execution gave: the report, or the handler's error type and message.
pub type Outcome = Result<Value, (String, String)>;

/// A context whose deadline is `timeout` from now, as Lambda gives an invocation.
fn context_with(timeout: Option<Duration>) -> Context {
    let mut context = Context::default();
    if let Some(deadline) = timeout.and_then(|timeout| (SystemTime::now() + timeout).duration_since(UNIX_EPOCH).ok()) {
        context.deadline = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX);
    }
    context
}

/// `workers` threads, each a fresh container, taking payloads from one queue until it is empty;
/// each invocation ends `timeout` after it starts.
pub fn run_workers(
    s3: &LocalS3,
    config: &Config,
    payloads: &[Value],
    workers: usize,
    timeout: Option<Duration>,
) -> anyhow::Result<Vec<Outcome>> {
    let queue: Arc<Mutex<VecDeque<(usize, Value)>>> =
        Arc::new(Mutex::new(payloads.iter().cloned().enumerate().collect()));
    let done: Arc<Mutex<Vec<Option<Outcome>>>> = Arc::new(Mutex::new(vec![None; payloads.len()]));
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut threads = Vec::new();
        for _ in 0..workers.max(1) {
            let (queue, done) = (Arc::clone(&queue), Arc::clone(&done));
            let client = client_for(s3)?;
            threads.push(scope.spawn(move || -> anyhow::Result<()> {
                let runtime = acl_audit_lambda::runtime()?;
                loop {
                    let next = queue
                        .lock()
                        .map_err(|_| anyhow::anyhow!("a worker panicked"))?
                        .pop_front();
                    let Some((index, payload)) = next else { return Ok(()) };
                    let event = LambdaEvent::new(payload, context_with(timeout));
                    let (client, config) = (client.clone(), config.clone());
                    let invocation = async move {
                        acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), &config, event)
                            .await
                            .into_result()
                    };
                    let outcome = acl_audit_lambda::block_on_task(&runtime, invocation)
                        .map_err(|err| (err.error_type().to_owned(), err.to_string()))
                        .and_then(|report| {
                            serde_json::to_value(report).map_err(|err| ("Serialization".to_owned(), err.to_string()))
                        });
                    done.lock().map_err(|_| anyhow::anyhow!("a worker panicked"))?[index] = Some(outcome);
                }
            }));
        }
        for thread in threads {
            thread.join().map_err(|_| anyhow::anyhow!("a worker panicked"))??;
        }
        Ok(())
    })?;
    let done = Arc::try_unwrap(done)
        .map_err(|_| anyhow::anyhow!("workers still hold the results"))?
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    done.into_iter()
        .enumerate()
        .map(|(index, outcome)| outcome.with_context(|| format!("child {index} was not run")))
        .collect()
}
