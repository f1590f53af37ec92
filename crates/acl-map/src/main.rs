//! `acl-map`: add up a Step Functions Distributed Map run's reports, or rehearse the state
//! machine's run on this machine.

use acl_audit::model::S3Location;
use acl_map::rehearsal::{RehearsalOptions, rehearse, rehearse_inventory, rehearse_sweep};
use acl_map::results::summarize;
use anyhow::Context as _;
use clap::{Args as ClapArgs, Parser, Subcommand};
use local_s3::NetworkModel;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The benchmark's network model, as local-s3 applies it to every request of a rehearsal.
#[derive(Debug, ClapArgs)]
struct NetworkArgs {
    #[arg(long, default_value_t = 2.0)]
    rtt_ms: f64,
    #[arg(long, default_value_t = 15.0)]
    service_ms: f64,
    #[arg(long, default_value_t = 2)]
    handshake_rtts: u32,
}

impl NetworkArgs {
    fn model(&self) -> anyhow::Result<NetworkModel> {
        Ok(NetworkModel::from_millis(
            self.rtt_ms,
            self.service_ms,
            self.handshake_rtts,
        )?)
    }

    /// How the tables' headers name it.
    fn described(&self) -> String {
        format!("RTT {} ms + service {} ms", self.rtt_ms, self.service_ms)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add up the reports a state machine run's parts left (its parts folder, e.g.
    /// s3://RESULTS-BUCKET/parts/EXECUTION-NAME/) into one report, printed as JSON; a run still
    /// going is added up as far as it got. Uses the usual AWS configuration (profile,
    /// AWS_REGION, AWS_ENDPOINT_URL, AWS_CA_BUNDLE).
    Summarize { location: S3Location },
    /// Run the state machine locally: an HTTPS local-s3 with the benchmark's network model,
    /// the plan cutting the bucket into parts, K workers running the join-all handler on them
    /// in passes, their reports added up as on AWS. Prints the time per K.
    Rehearse {
        #[arg(long, default_value_t = 20_000)]
        objects: usize,
        /// Parts the plan cuts the bucket into (the template's MapParts).
        #[arg(long, default_value_t = 64)]
        parts: usize,
        /// Counts of workers to time (the state machine's MapMaxConcurrency).
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
        workers: Vec<usize>,
        /// Each worker's memory size, MB: join-all's in-flight cap follows it.
        #[arg(long, default_value_t = 1769)]
        memory_mb: usize,
        /// Disable the bucket's ACLs (BucketOwnerEnforced): each part is its listing alone.
        #[arg(long)]
        acls_disabled: bool,
        /// End each part's invocation this many milliseconds after it starts (the function's
        /// timeout), so that parts stop and go on in later passes; none by default.
        #[arg(long)]
        part_timeout_ms: Option<u64>,
        #[command(flatten)]
        network: NetworkArgs,
        /// Print the runs as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Time one join-all account sweep ({"scope": "account"}) over an account of BUCKETS buckets,
    /// ENABLED of them with ACLs enabled and OBJECTS objects each, against one over the
    /// ACL-enabled buckets alone, on HTTPS local-s3 with the benchmark's network model.
    RehearseSweep {
        #[arg(long, default_value_t = 1000)]
        buckets: usize,
        #[arg(long, default_value_t = 50)]
        enabled: usize,
        #[arg(long, default_value_t = 1000)]
        objects: usize,
        #[arg(long, default_value_t = 1769)]
        memory_mb: usize,
        #[command(flatten)]
        network: NetworkArgs,
    },
    /// Time one join-all invocation auditing a bucket from an S3 Inventory report of it
    /// (written by local-s3 in S3's format, the Object ACL field included), against HTTPS
    /// local-s3 with the benchmark's network model; with --compare-listing, one listing the
    /// bucket and fetching every ACL too.
    RehearseInventory {
        #[arg(long, default_value_t = 100_000)]
        objects: usize,
        #[arg(long, default_value_t = 1769)]
        memory_mb: usize,
        #[arg(long)]
        compare_listing: bool,
        #[command(flatten)]
        network: NetworkArgs,
    },
    /// The memory a run's comparison with its last completed run adds (docs/benchmark.md,
    /// "Changes between runs"): FINDINGS lines of a last run and of this one (1 % resolved, 1 %
    /// new) written to local files, then what a compared run adds to them: the baseline read,
    /// each line's first_seen asked as the recorder asks it, and changes.jsonl written. Prints
    /// the process's peak resident set (VmHWM) before and after.
    RehearseChanges {
        #[arg(long, default_value_t = 1_000_000)]
        findings: usize,
    },
}

/// The rehearsal's workers stand in for the functions, so they allocate as the functions do:
/// mimalloc (docs/benchmark.md, "The strategies' cost per call").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    match args.command {
        Command::Summarize { location } => runtime.block_on(async {
            let client = acl_audit::s3::client::client_from_env().await?;
            let summary = summarize(&client, &location).await?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            let report = &summary.report;
            eprintln!(
                "{} parts in {} passes ({} left no report): {} objects, {} ACLs fetched, {} failures, {} not fetched",
                summary.parts.reported + summary.parts.failed,
                summary.passes,
                summary.parts.failed,
                report.objects_listed,
                report.acls_fetched,
                report.failures.count,
                report.objects_not_fetched
            );
            Ok(())
        }),
        Command::RehearseSweep {
            buckets,
            enabled,
            objects,
            memory_mb,
            network,
        } => {
            let model = network.model()?;
            let runs = runtime.block_on(rehearse_sweep(buckets, enabled, objects, memory_mb, model))?;
            println!(
                "{buckets} buckets, {enabled} with ACLs enabled and {objects} objects each, join-all at {memory_mb} MB, {}, TLS",
                network.described()
            );
            println!(
                "{:>26} {:>8} {:>10} {:>13} {:>14} {:>8}",
                "account", "buckets", "wall ms", "ACLs fetched", "GetObjectAcl", "ratio"
            );
            let alone = runs.last().map_or(1.0, |run| run.wall_ms);
            for run in &runs {
                println!(
                    "{:>26} {:>8} {:>10.0} {:>13} {:>14} {:>7.2}x",
                    run.account,
                    run.buckets,
                    run.wall_ms,
                    run.acls_fetched,
                    run.get_object_acl_requests,
                    run.wall_ms / alone
                );
            }
            Ok(())
        }
        Command::RehearseChanges { findings } => runtime.block_on(acl_map::rehearsal::rehearse_changes(findings)),
        Command::RehearseInventory {
            objects,
            memory_mb,
            compare_listing,
            network,
        } => {
            let model = network.model()?;
            let runs = runtime.block_on(rehearse_inventory(objects, memory_mb, model, compare_listing))?;
            println!(
                "{objects} objects, join-all at {memory_mb} MB, {}, TLS",
                network.described()
            );
            println!(
                "{:>10} {:>10} {:>10} {:>14}",
                "source", "wall ms", "ACLs/s", "GetObjectAcl"
            );
            for run in &runs {
                println!(
                    "{:>10} {:>10.0} {:>10.0} {:>14}",
                    run.source, run.wall_ms, run.acls_per_second, run.get_object_acl_requests
                );
            }
            Ok(())
        }
        Command::Rehearse {
            objects,
            parts,
            workers,
            memory_mb,
            acls_disabled,
            part_timeout_ms,
            network,
            json,
        } => {
            anyhow::ensure!(
                parts > 0 && !workers.is_empty() && workers.iter().all(|&k| k > 0),
                "--parts and --workers must be at least 1"
            );
            let model = network.model()?;
            let options = RehearsalOptions {
                objects,
                parts,
                workers,
                memory_mb,
                network: model,
                acls_disabled,
                part_timeout: part_timeout_ms.map(std::time::Duration::from_millis),
            };
            let runs = runtime.block_on(rehearse(&options))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(());
            }
            let acls = if acls_disabled {
                "ACLs disabled: the listing alone"
            } else {
                "every ACL fetched"
            };
            println!(
                "{objects} objects, up to {parts} parts, workers at {memory_mb} MB, {acls}, {}, TLS",
                network.described()
            );
            println!(
                "{:>8} {:>16} {:>10} {:>11} {:>12} {:>13} {:>9}",
                "workers", "parts per pass", "wall ms", "objects/s", "ListObjects", "GetObjectAcl", "speed-up"
            );
            for run in &runs {
                let passes: Vec<String> = run.parts_per_pass.iter().map(usize::to_string).collect();
                println!(
                    "{:>8} {:>16} {:>10.0} {:>11.0} {:>12} {:>13} {:>8.2}x",
                    run.workers,
                    passes.join("+"),
                    run.wall_ms,
                    run.objects_per_second,
                    run.list_requests,
                    run.get_object_acl_requests,
                    run.speedup
                );
            }
            if let Some(last) = runs.last() {
                let report = &last.report;
                println!(
                    "added up by the last step: {} listed = {} fetched + {} failed + {} not fetched + {} with ACLs disabled; {} readable by anyone",
                    report.objects_listed,
                    report.acls_fetched,
                    report.failures.count,
                    report.objects_not_fetched,
                    report.objects_with_acls_disabled,
                    report.audit.readable_by_all_users.count
                );
            }
            println!(
                "(workers share this machine's {} cores; on Lambda each has its own CPU)",
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            );
            Ok(())
        }
    }
}
