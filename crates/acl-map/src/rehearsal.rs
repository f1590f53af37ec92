//! The Distributed Map, rehearsed locally: list the bucket as the ItemReader does, batch the
//! keys as the ItemBatcher does, run K workers (each a Lambda container: its own thread,
//! one-thread runtime and client, so its own connections) through the functions' handler,
//! write the results as the ResultWriter does, and add them up with [`summarize`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use acl_audit::StrategyKind;
use acl_audit::s3::client::client_trusting;
use acl_audit_lambda::Config;
use acl_audit_lambda::handle;
use anyhow::Context as _;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use lambda_runtime::{Context, LambdaEvent};
use local_s3::{LocalS3, NetworkModel, Options};
use serde::Serialize;
use serde_json::Value;

use acl_audit::model::S3Location;

use crate::batcher::ItemBatcher;
use crate::results::{ChildExecution, MANIFEST, Manifest, ResultFile, ResultFiles, Summary, summarize};

pub const BUCKET: &str = "acl-audit-demo";
pub const RESULTS_BUCKET: &str = "acl-audit-results";

#[derive(Debug, Clone)]
pub struct RehearsalOptions {
    pub objects: usize,
    pub batch_size: usize,
    /// Each count of workers to time, e.g. 1, 2, 4, 8.
    pub workers: Vec<usize>,
    /// The function's memory size: join-all's in-flight cap follows it.
    pub memory_mb: usize,
    pub network: NetworkModel,
}

/// One count of workers, timed.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRun {
    pub workers: usize,
    pub batches: usize,
    pub wall_ms: f64,
    pub acls_per_second: f64,
    /// Against the first count of workers in the list.
    pub speedup: f64,
    /// The run's results, summed from what it wrote as a ResultWriter does.
    pub summary: Summary,
}

/// One join-all invocation of `payload` through the handler, and how long it took; an error
/// names the run by `label`.
async fn timed_invocation(
    client: &Client,
    config: &Config,
    payload: serde_json::Value,
    label: &str,
) -> anyhow::Result<(acl_audit::AuditReport, std::time::Duration)> {
    let started = Instant::now();
    let report = handle(
        StrategyKind::JoinAll,
        client,
        config,
        LambdaEvent::new(payload, Context::default()),
    )
    .await
    .map_err(|err| anyhow::anyhow!("{label}: {err}"))?;
    Ok((report, started.elapsed()))
}

/// An HTTPS local-s3 applying `network` to every request, its bucket seeded with `objects`.
async fn seeded_endpoint(network: NetworkModel, objects: usize) -> anyhow::Result<LocalS3> {
    let s3 = LocalS3::start_with(Options {
        tls: true,
        network,
        ..Options::default()
    })
    .await
    .context("cannot start the embedded endpoint")?;
    local_s3::seed_bucket(s3.store(), BUCKET, objects).context("cannot seed the bucket")?;
    Ok(s3)
}

/// Seeds an HTTPS local-s3 (with `options.network`) and times each count of workers over the
/// same batches.
pub async fn rehearse(options: &RehearsalOptions) -> anyhow::Result<Vec<WorkerRun>> {
    let s3 = seeded_endpoint(options.network, options.objects).await?;
    s3.store()
        .create_bucket(RESULTS_BUCKET)
        .context("cannot create the results bucket")?;
    let client = client_for(&s3)?;
    let batches = item_reader(&client, options.batch_size).await?;
    let config = Config::from_vars(|name| {
        (name == acl_audit_lambda::config::LAMBDA_MEMORY_SIZE).then(|| options.memory_mb.to_string())
    })?;

    let mut runs: Vec<WorkerRun> = Vec::new();
    for &workers in &options.workers {
        let started = Instant::now();
        let outcomes = run_workers(&s3, &config, &batches, workers)?;
        let wall = started.elapsed();
        let folder = format!("results/rehearsal-{workers}-workers/");
        write_results(&client, &folder, &batches, &outcomes).await?;
        let summary = summarize(
            &client,
            &format!("s3://{RESULTS_BUCKET}/{folder}").parse::<S3Location>()?,
        )
        .await?;
        anyhow::ensure!(
            summary.report.accounts_for_every_object() && summary.report.objects_listed == options.objects,
            "the batches do not account for the {} objects: {:?}",
            options.objects,
            summary.report
        );
        let wall_ms = wall.as_secs_f64() * 1e3;
        let baseline = runs.first().map_or(wall_ms, |first| first.wall_ms);
        runs.push(WorkerRun {
            workers,
            batches: batches.len(),
            wall_ms,
            acls_per_second: summary.report.acls_fetched as f64 / wall.as_secs_f64(),
            speedup: baseline / wall_ms,
            summary,
        });
    }
    Ok(runs)
}

fn client_for(s3: &LocalS3) -> anyhow::Result<Client> {
    let keys = s3.credentials();
    let credentials = Credentials::new(&keys.access_key_id, &keys.secret_access_key, None, None, "local-s3");
    let ca = s3.ca_pem().context("the endpoint serves no TLS")?;
    Ok(client_trusting(s3.endpoint_url(), credentials, ca.as_bytes())?)
}

/// The payloads a Distributed Map sends: the listed keys, batched by the state machine's own
/// ItemSelector and ItemBatcher (`batch_size` items, its byte bound), with its `BatchInput`.
async fn item_reader(client: &Client, batch_size: usize) -> anyhow::Result<Vec<Value>> {
    let mut keys = Vec::new();
    let mut pages = client.list_objects_v2().bucket(BUCKET).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.context("cannot list the bucket")?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|object| object.key())
                .map(str::to_owned),
        );
    }
    let batcher = ItemBatcher::from_definition(&crate::batcher::definition_for(BUCKET), batch_size)
        .context("the state machine's definition")?;
    Ok(batcher.batches(keys)?)
}

/// What one child execution gave: the report, or the handler's error type and message.
type Outcome = Result<Value, (String, String)>;

/// `workers` threads, each a fresh container, taking batches from one queue until it is empty.
fn run_workers(s3: &LocalS3, config: &Config, batches: &[Value], workers: usize) -> anyhow::Result<Vec<Outcome>> {
    let queue: Arc<Mutex<VecDeque<(usize, Value)>>> =
        Arc::new(Mutex::new(batches.iter().cloned().enumerate().collect()));
    let done: Arc<Mutex<Vec<Option<Outcome>>>> = Arc::new(Mutex::new(vec![None; batches.len()]));
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut threads = Vec::new();
        for _ in 0..workers {
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
                    let event = LambdaEvent::new(payload, Context::default());
                    let (client, config) = (client.clone(), config.clone());
                    let invocation = async move { handle(StrategyKind::JoinAll, &client, &config, event).await };
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
        .map(|(index, outcome)| outcome.with_context(|| format!("batch {index} was not run")))
        .collect()
}

/// What a ResultWriter writes under its prefix: SUCCEEDED_0.json, FAILED_0.json (the child
/// executions, with their input and output as JSON strings) and manifest.json naming them.
async fn write_results(client: &Client, folder: &str, batches: &[Value], outcomes: &[Outcome]) -> anyhow::Result<()> {
    let (mut succeeded, mut failed) = (Vec::new(), Vec::new());
    for (index, (batch, outcome)) in batches.iter().zip(outcomes).enumerate() {
        let execution = ChildExecution {
            execution_arn: Some(format!(
                "arn:aws:states:local:000000000000:execution:rehearsal/AuditBatches:{index}"
            )),
            name: Some(index.to_string()),
            input: Some(batch.to_string()),
            ..ChildExecution::default()
        };
        match outcome {
            Ok(report) => succeeded.push(ChildExecution {
                status: "SUCCEEDED".to_owned(),
                output: Some(report.to_string()),
                ..execution
            }),
            Err((error, cause)) => failed.push(ChildExecution {
                status: "FAILED".to_owned(),
                error: Some(error.clone()),
                cause: Some(cause.clone()),
                ..execution
            }),
        }
    }
    let mut files = ResultFiles::default();
    for (status, executions, listed) in [
        ("SUCCEEDED", succeeded, &mut files.succeeded),
        ("FAILED", failed, &mut files.failed),
    ] {
        if executions.is_empty() {
            continue;
        }
        let key = format!("{folder}{status}_0.json");
        put_json(client, &key, &executions).await?;
        listed.push(ResultFile { key });
    }
    let manifest = Manifest {
        destination_bucket: Some(RESULTS_BUCKET.to_owned()),
        map_run_arn: Some("arn:aws:states:local:000000000000:mapRun:rehearsal/AuditBatches:local".to_owned()),
        result_files: files,
    };
    put_json(client, &format!("{folder}{MANIFEST}"), &manifest).await
}

async fn put_json(client: &Client, key: &str, value: &impl Serialize) -> anyhow::Result<()> {
    client
        .put_object()
        .bucket(RESULTS_BUCKET)
        .key(key)
        .body(ByteStream::from(serde_json::to_vec(value)?))
        .send()
        .await
        .with_context(|| format!("cannot write s3://{RESULTS_BUCKET}/{key}"))?;
    Ok(())
}

/// One audit of the same bucket from each source, timed.
#[derive(Debug, Clone, Serialize)]
pub struct SourceRun {
    pub source: &'static str,
    pub wall_ms: f64,
    pub acls_per_second: f64,
    pub get_object_acl_requests: u64,
    pub report: acl_audit::AuditReport,
}

/// Seeds an HTTPS local-s3 (with `network`), writes an S3 Inventory report of the bucket (the
/// Object ACL field included), and times one join-all invocation reading it; with
/// `compare_listing`, one invocation listing the bucket and fetching every ACL too.
pub async fn rehearse_inventory(
    objects: usize,
    memory_mb: usize,
    network: NetworkModel,
    compare_listing: bool,
) -> anyhow::Result<Vec<SourceRun>> {
    let s3 = seeded_endpoint(network, objects).await?;
    s3.store().create_bucket(INVENTORY_BUCKET)?;
    let spec = local_s3::inventory::InventorySpec {
        source: BUCKET,
        destination: INVENTORY_BUCKET,
        prefix: "acl-audit-demo/config/2026-12-03T01-00Z/",
        // S3 splits a report into files of some hundreds of MB; a few hundred thousand rows.
        rows_per_file: 250_000,
        unavailable_every: 0,
    };
    let manifest = local_s3::inventory::write_inventory(s3.store(), &spec)?;
    let client = client_for(&s3)?;
    let config = Config::from_vars(|name| {
        (name == acl_audit_lambda::config::LAMBDA_MEMORY_SIZE).then(|| memory_mb.to_string())
    })?;
    let mut payloads = vec![(
        "inventory",
        serde_json::json!({"bucket": BUCKET, "inventory": format!("s3://{INVENTORY_BUCKET}/{manifest}")}),
    )];
    if compare_listing {
        payloads.push(("listing", serde_json::json!({"bucket": BUCKET})));
    }
    let mut runs = Vec::new();
    for (source, payload) in payloads {
        let before = s3.requests("GetObjectAcl");
        let (report, wall) = timed_invocation(&client, &config, payload, source).await?;
        anyhow::ensure!(
            report.accounts_for_every_object() && report.objects_listed == objects,
            "the {source} run does not account for the {objects} objects: {report:?}"
        );
        runs.push(SourceRun {
            source,
            wall_ms: wall.as_secs_f64() * 1e3,
            acls_per_second: report.acls_fetched as f64 / wall.as_secs_f64(),
            get_object_acl_requests: s3.requests("GetObjectAcl") - before,
            report,
        });
    }
    Ok(runs)
}

pub const INVENTORY_BUCKET: &str = "acl-audit-inventories";

/// One audit of the same bucket with a count of listings at once, timed.
#[derive(Debug, Clone, Serialize)]
pub struct ListingRun {
    pub listers: usize,
    pub wall_ms: f64,
    pub objects_per_second: f64,
    pub list_requests: u64,
    pub get_object_acl_requests: u64,
    /// Against the first count of listers in the list.
    pub speedup: f64,
    pub report: acl_audit::AuditReport,
}

/// Seeds an HTTPS local-s3 (with `network`) and times one join-all invocation per count of
/// `listers` (the functions' `LISTERS`). With `fetch_acls` false the bucket's ACLs are
/// disabled (`BucketOwnerEnforced`, S3's default for new buckets), so the run is its listing
/// alone: what parallel listing speeds up; with it, every ACL is fetched as well.
pub async fn rehearse_listing(
    objects: usize,
    memory_mb: usize,
    network: NetworkModel,
    listers: &[usize],
    fetch_acls: bool,
) -> anyhow::Result<Vec<ListingRun>> {
    let s3 = seeded_endpoint(network, objects).await?;
    if !fetch_acls {
        s3.store()
            .set_ownership(BUCKET, Some(local_s3::store::ObjectOwnership::BucketOwnerEnforced))?;
    }
    let client = client_for(&s3)?;
    let mut runs: Vec<ListingRun> = Vec::new();
    for &count in listers {
        let config = Config::from_vars(|name| match name {
            acl_audit_lambda::config::LAMBDA_MEMORY_SIZE => Some(memory_mb.to_string()),
            acl_audit_lambda::config::LISTERS => Some(count.to_string()),
            _ => None,
        })?;
        let (lists, acls) = (s3.requests("ListObjectsV2"), s3.requests("GetObjectAcl"));
        let payload = serde_json::json!({ "bucket": BUCKET });
        let (report, wall) = timed_invocation(&client, &config, payload, &format!("{count} listers")).await?;
        anyhow::ensure!(
            report.accounts_for_every_object() && report.objects_listed == objects && report.truncated.is_none(),
            "the run with {count} listers does not account for the {objects} objects: {report:?}"
        );
        let wall_ms = wall.as_secs_f64() * 1e3;
        let baseline = runs.first().map_or(wall_ms, |first| first.wall_ms);
        runs.push(ListingRun {
            listers: count,
            wall_ms,
            objects_per_second: objects as f64 / wall.as_secs_f64(),
            list_requests: s3.requests("ListObjectsV2") - lists,
            get_object_acl_requests: s3.requests("GetObjectAcl") - acls,
            speedup: baseline / wall_ms,
            report,
        });
    }
    Ok(runs)
}
