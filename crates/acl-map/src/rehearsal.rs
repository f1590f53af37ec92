//! The state machine, rehearsed locally: [`rehearse`] seeds an HTTPS local-s3 with the
//! benchmark's network model and runs the state machine ([`crate::state_machine`]) with K
//! workers for each K; [`rehearse_inventory`] times one invocation reading an inventory report
//! against one listing the same bucket.

use std::time::{Duration, Instant};

use acl_audit::StrategyKind;
use acl_audit_lambda::Clients;
use acl_audit_lambda::Config;
use anyhow::Context as _;
use aws_sdk_s3::Client;
use lambda_runtime::{Context, LambdaEvent};
use local_s3::{LocalS3, NetworkModel, Options};
use serde::Serialize;

use crate::state_machine::{self, RunOptions, client_for};

pub const BUCKET: &str = "acl-audit-demo";
pub const RESULTS_BUCKET: &str = "acl-audit-results";

#[derive(Debug, Clone)]
pub struct RehearsalOptions {
    pub objects: usize,
    /// Parts the plan cuts the bucket into (the template's MapParts).
    pub parts: usize,
    /// Each count of workers to time, e.g. 1, 2, 4, 8.
    pub workers: Vec<usize>,
    /// The function's memory size: join-all's in-flight cap follows it.
    pub memory_mb: usize,
    pub network: NetworkModel,
    /// The bucket's ACLs disabled (`BucketOwnerEnforced`): the run is its listing alone.
    pub acls_disabled: bool,
    /// Each part's invocation ends this long after it starts; none: never.
    pub part_timeout: Option<Duration>,
}

/// One count of workers, timed.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRun {
    pub workers: usize,
    /// Parts in each pass.
    pub parts_per_pass: Vec<usize>,
    pub wall_ms: f64,
    /// Objects the run took on, per second of wall time.
    pub objects_per_second: f64,
    /// Against the first count of workers in the list.
    pub speedup: f64,
    pub list_requests: u64,
    pub get_object_acl_requests: u64,
    /// The last step's report.
    pub report: acl_audit::AuditReport,
}

/// Seeds an HTTPS local-s3 (with `options.network`) and times the state machine's run with
/// each count of workers.
pub async fn rehearse(options: &RehearsalOptions) -> anyhow::Result<Vec<WorkerRun>> {
    let s3 = seeded_endpoint(options.network, options.objects).await?;
    if options.acls_disabled {
        s3.store()
            .set_ownership(BUCKET, Some(local_s3::store::ObjectOwnership::BucketOwnerEnforced))?;
    }
    s3.store()
        .create_bucket(RESULTS_BUCKET)
        .context("cannot create the results bucket")?;
    let config = Config::from_vars(|name| {
        (name == acl_audit_lambda::config::LAMBDA_MEMORY_SIZE).then(|| options.memory_mb.to_string())
    })?;
    let mut runs: Vec<WorkerRun> = Vec::new();
    for &workers in &options.workers {
        let (lists, acls) = (s3.requests("ListObjectsV2"), s3.requests("GetObjectAcl"));
        let run = state_machine::run(
            &s3,
            &config,
            &RunOptions {
                bucket: BUCKET.to_owned(),
                prefix: String::new(),
                inventory: String::new(),
                parts: options.parts,
                workers,
                part_timeout: options.part_timeout,
                execution: format!("rehearsal-{workers}-workers"),
                results_bucket: RESULTS_BUCKET.to_owned(),
            },
        )
        .await?;
        let report = run.report;
        anyhow::ensure!(
            report.accounts_for_every_object()
                && report.objects_listed == options.objects
                && report.truncated.is_none()
                && run.failed_parts == 0,
            "the run with {workers} workers does not account for the {} objects: {report:?}",
            options.objects
        );
        let baseline = runs.first().map_or(run.wall_ms, |first| first.wall_ms);
        runs.push(WorkerRun {
            workers,
            parts_per_pass: run.parts_per_pass,
            wall_ms: run.wall_ms,
            objects_per_second: report.objects_listed as f64 / (run.wall_ms / 1e3),
            speedup: baseline / run.wall_ms,
            list_requests: s3.requests("ListObjectsV2") - lists,
            get_object_acl_requests: s3.requests("GetObjectAcl") - acls,
            report,
        });
    }
    Ok(runs)
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
    let report = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(client),
        config,
        LambdaEvent::new(payload, Context::default()),
    )
    .await
    .into_result()
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

/// One account sweep, timed.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRun {
    /// What the account held.
    pub account: String,
    pub buckets: usize,
    pub wall_ms: f64,
    pub get_object_acl_requests: u64,
    pub acls_fetched: usize,
    pub acls_disabled: usize,
}

/// Seeds an HTTPS local-s3 (with `network`) as an account of `buckets` buckets, `enabled` of them
/// with ACLs enabled and `objects` objects each, the rest with ACLs disabled (and 10 objects
/// each, which a sweep must not fetch); times one join-all `{"scope": "account"}` invocation
/// over it, and one over an account holding only the `enabled` buckets.
pub async fn rehearse_sweep(
    buckets: usize,
    enabled: usize,
    objects: usize,
    memory_mb: usize,
    network: NetworkModel,
) -> anyhow::Result<Vec<SweepRun>> {
    anyhow::ensure!(
        enabled <= buckets,
        "--enabled {enabled} is more than --buckets {buckets}"
    );
    let config = Config::from_vars(|name| {
        (name == acl_audit_lambda::config::LAMBDA_MEMORY_SIZE).then(|| memory_mb.to_string())
    })?;
    let mut runs = Vec::new();
    for (account, total) in [("whole account", buckets), ("ACL-enabled buckets alone", enabled)] {
        let s3 = LocalS3::start_with(Options {
            tls: true,
            network,
            ..Options::default()
        })
        .await
        .context("cannot start the embedded endpoint")?;
        for n in 0..total {
            let name = format!("bucket-{n:05}");
            if n < enabled {
                local_s3::seed_bucket(s3.store(), &name, objects)?;
            } else {
                local_s3::seed_bucket(s3.store(), &name, 10)?;
                s3.store()
                    .set_ownership(&name, Some(local_s3::store::ObjectOwnership::BucketOwnerEnforced))?;
            }
        }
        let client = client_for(&s3)?;
        let started = Instant::now();
        let invocation = acl_audit_lambda::invoke(
            StrategyKind::JoinAll,
            &Clients::new(&client),
            &config,
            LambdaEvent::new(serde_json::json!({"scope": "account"}), Context::default()),
        )
        .await;
        let wall = started.elapsed();
        let report = match invocation.into_reply() {
            Ok(acl_audit_lambda::Reply::Sweep(outcome)) => match *outcome {
                acl_audit_lambda::outcome::SweepOutcome::Account(report) => report,
                acl_audit_lambda::outcome::SweepOutcome::Organization(_) => {
                    anyhow::bail!("{account}: not an account's sweep")
                }
            },
            Ok(_) => anyhow::bail!("{account}: not a sweep's report"),
            Err(err) => anyhow::bail!("{account}: {err}"),
        };
        anyhow::ensure!(
            report.totals.buckets == total && report.totals.acls_fetched == enabled * objects,
            "{account}: the sweep did not audit every bucket: {:?}",
            report.totals
        );
        runs.push(SweepRun {
            account: account.to_owned(),
            buckets: total,
            wall_ms: wall.as_secs_f64() * 1e3,
            get_object_acl_requests: s3.requests("GetObjectAcl"),
            acls_fetched: report.totals.acls_fetched,
            acls_disabled: report.totals.acls_disabled,
        });
    }
    Ok(runs)
}

/// See `acl-map rehearse-changes`: the comparison's memory over `findings` lines.
pub async fn rehearse_changes(findings: usize) -> anyhow::Result<()> {
    use acl_audit::audit::FindingsOutput;
    use acl_audit::changes::{Baseline, LineSource, compare};
    use acl_audit::findings::Place;
    use std::io::Write as _;

    let dir = std::env::temp_dir().join(format!("acl-map-changes-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (previous, current) = (dir.join("previous.jsonl"), dir.join("current.jsonl"));
    // A line as runs write them: one public grant, 40-byte keys.
    let line = |index: usize, first_seen: &str| {
        format!(
            concat!(
                r#"{{"account_id":"111122223333","bucket":"audited","region":"us-east-1","key":"reports/2026/object-{:020}.csv","#,
                r#""version_id":null,"owner":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be","findings":["public_read"],"#,
                r#""effective":true,"grants":[{{"grantee":{{"type":"group","uri":"http://acs.amazonaws.com/groups/global/AllUsers"}},"permission":"READ"}}],"#,
                r#""first_seen":"{}"}}"#,
                "\n"
            ),
            index, first_seen
        )
    };
    let write = |path: &std::path::Path, range: std::ops::Range<usize>, first_seen: &str| -> anyhow::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for index in range {
            out.write_all(line(index, first_seen).as_bytes())?;
        }
        out.flush()?;
        Ok(())
    };
    // This run: the first 1 % of the last run's objects gone, as many new ones after the rest.
    let moved = findings / 100;
    write(&previous, 0..findings, "2026-01-01")?;
    write(&current, moved..findings + moved, "2026-12-06")?;
    let before_kb = peak_rss_kb();
    let started = Instant::now();
    let baseline = Baseline::read(&mut LineSource::file(&previous)?, "2026-12-06").await?;
    let place = Place {
        account_id: Some("111122223333"),
        bucket: "audited",
        region: Some("us-east-1"),
    };
    for index in moved..findings + moved {
        let key = format!("reports/2026/object-{index:020}.csv");
        std::hint::black_box(baseline.first_seen(&place, &key, None));
    }
    let mut changes = FindingsOutput::file(dir.join("changes.jsonl")).map_err(|err| anyhow::anyhow!("{err}"))?;
    let counts = compare(
        &baseline,
        &mut LineSource::file(&current)?,
        Some(&mut LineSource::file(&previous)?),
        |_, _| true,
        &mut changes,
    )
    .await
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    changes.finish().await.map_err(|err| anyhow::anyhow!("{err}"))?;
    let after_kb = peak_rss_kb();
    let elapsed = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{findings} findings compared with {findings}: {} new, {} resolved, {} persisting; baseline {} objects",
        counts.new,
        counts.resolved,
        counts.persisting,
        baseline.len()
    );
    println!(
        "peak RSS {:.1} MB before the comparison, {:.1} MB after: +{:.1} MB; {:.1} s",
        before_kb as f64 / 1024.0,
        after_kb as f64 / 1024.0,
        after_kb.saturating_sub(before_kb) as f64 / 1024.0,
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// This process's peak resident set (VmHWM), in kB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
