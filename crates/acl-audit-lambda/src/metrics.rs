//! One CloudWatch Embedded Metric Format (EMF) record per invocation, failed ones included.
//! Lambda sends a function's stdout to CloudWatch Logs, which turns such a line into metrics:
//! scheduled runs graph and alarm with no PutMetricData call and no extra permission.

use std::time::{SystemTime, UNIX_EPOCH};

use acl_audit::changes::ChangeCounts;
use acl_audit::findings::FindingKind;
use acl_audit::{AuditReport, StrategyKind};
use serde_json::{Map, Value, json};

use acl_audit::sweep::SweepReport;

use crate::outcome::{Invocation, Scope};
use crate::record::RunReport;

/// The CloudWatch namespace of the functions' metrics (the template's dashboard and alarms
/// read it).
pub const NAMESPACE: &str = "AclAudit";

/// The dashboard's view: per strategy and memory size, the benchmark's figures.
pub const STRATEGY_DIMENSIONS: [&str; 2] = ["Strategy", "MemorySize"];
pub const STRATEGY_METRICS: [(&str, &str); 7] = [
    ("ObjectsListed", "Count"),
    ("AclsFetched", "Count"),
    ("Failures", "Count"),
    ("ObjectsNotFetched", "Count"),
    ("Retries", "Count"),
    ("PublicObjects", "Count"),
    ("Duration", "Milliseconds"),
];

/// The alarms' view: per bucket alone, whatever function or memory size audited it, every
/// count the audit makes. Two directives rather than both dimension sets on every metric:
/// each metric and dimension value is a billed custom metric.
pub const BUCKET_DIMENSIONS: [&str; 1] = ["Bucket"];
pub const BUCKET_METRICS: [(&str, &str); 23] = [
    ("ObjectsListed", "Count"),
    ("AclsFetched", "Count"),
    ("Failures", "Count"),
    ("ObjectsNotFetched", "Count"),
    ("ObjectsWithFindings", "Count"),
    ("ExposedObjects", "Count"),
    ("NewExposedObjects", "Count"),
    ("ResolvedExposedObjects", "Count"),
    ("PublicObjects", "Count"),
    ("PublicRead", "Count"),
    ("PublicReadAcp", "Count"),
    ("PublicWriteAcp", "Count"),
    ("AuthenticatedRead", "Count"),
    ("AuthenticatedReadAcp", "Count"),
    ("AuthenticatedWriteAcp", "Count"),
    ("OtherAccountGrant", "Count"),
    ("ForeignOwner", "Count"),
    ("NeutralisedObjects", "Count"),
    ("ObjectsWithAclsDisabled", "Count"),
    ("BucketAclExposed", "Count"),
    ("FailedRuns", "Count"),
    ("FindingsNotWritten", "Count"),
    ("Duration", "Milliseconds"),
];

/// The dimension value when the memory size or the bucket is unknown.
const UNKNOWN: &str = "unknown";

/// Lambda's JSON log format gives a line without a `level` the level INFO and drops it under a
/// higher application log level; the line says INFO itself, and the template offers no level
/// above it (docs/deploy.md).
pub const LEVEL: &str = "INFO";

/// The metric name of each finding kind.
pub fn kind_metric(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::PublicRead => "PublicRead",
        FindingKind::PublicReadAcp => "PublicReadAcp",
        FindingKind::PublicWriteAcp => "PublicWriteAcp",
        FindingKind::AuthenticatedRead => "AuthenticatedRead",
        FindingKind::AuthenticatedReadAcp => "AuthenticatedReadAcp",
        FindingKind::AuthenticatedWriteAcp => "AuthenticatedWriteAcp",
        FindingKind::OtherAccountGrant => "OtherAccountGrant",
        FindingKind::ForeignOwner => "ForeignOwner",
    }
}

/// The EMF line for `invocation`, stamped `timestamp_ms` (milliseconds since the Unix epoch).
pub fn emf_line(kind: StrategyKind, invocation: &Invocation, function: &Function, timestamp_ms: u64) -> String {
    let Function {
        memory_mb,
        configured_bucket,
    } = *function;
    let empty = AuditReport::empty(kind, "");
    let report = invocation.report().unwrap_or(&empty);
    let findings = &report.audit.findings;
    let findings_not_written = matches!(
        invocation,
        Invocation::Audited {
            findings_error: Some(_),
            ..
        }
    );
    // A Distributed Map run's objects count once per bucket, in its last step: its batches
    // count per strategy only, and the last step per bucket only.
    let directives = match invocation.scope() {
        Scope::Run => vec![
            directive(&STRATEGY_DIMENSIONS, &STRATEGY_METRICS),
            directive(&BUCKET_DIMENSIONS, &BUCKET_METRICS),
        ],
        Scope::Part => vec![directive(&STRATEGY_DIMENSIONS, &STRATEGY_METRICS)],
        Scope::MapRun => vec![directive(&BUCKET_DIMENSIONS, &BUCKET_METRICS)],
    };
    let mut values: Vec<(&str, f64)> = vec![
        ("ObjectsListed", report.objects_listed as f64),
        ("AclsFetched", report.acls_fetched as f64),
        ("Failures", report.failures.count as f64),
        ("ObjectsNotFetched", report.objects_not_fetched as f64),
        ("Retries", report.retries as f64),
        ("ObjectsWithFindings", findings.objects as f64),
        ("ExposedObjects", findings.exposed_objects as f64),
        (
            "NewExposedObjects",
            report.changes.as_ref().map_or(0, |changes| changes.new_exposed_objects) as f64,
        ),
        (
            "ResolvedExposedObjects",
            report
                .changes
                .as_ref()
                .map_or(0, |changes| changes.resolved_exposed_objects) as f64,
        ),
        ("PublicObjects", findings.public_objects as f64),
        ("NeutralisedObjects", findings.neutralised_objects as f64),
        ("ObjectsWithAclsDisabled", report.objects_with_acls_disabled as f64),
        (
            "BucketAclExposed",
            f64::from(u8::from(
                report
                    .bucket_settings
                    .as_ref()
                    .is_some_and(|bucket| bucket.effective_acl_findings()),
            )),
        ),
        ("FailedRuns", f64::from(u8::from(invocation.is_failure()))),
        ("FindingsNotWritten", f64::from(u8::from(findings_not_written))),
        ("Duration", report.timings_ms.total),
    ];
    values.extend(FindingKind::ALL.map(|k| (kind_metric(k), findings.of_kind(k) as f64)));
    let mut record = Map::new();
    record.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": directives,
        }),
    );
    record.insert("level".to_owned(), LEVEL.into());
    record.insert("Strategy".to_owned(), kind.name().into());
    record.insert(
        "MemorySize".to_owned(),
        memory_mb.map_or_else(|| UNKNOWN.to_owned(), |mb| mb.to_string()).into(),
    );
    record.insert(
        "Bucket".to_owned(),
        dimension_bucket(invocation, configured_bucket).into(),
    );
    for (name, value) in values {
        record.insert(name.to_owned(), json!(value));
    }
    Value::Object(record).to_string()
}

fn directive(dimensions: &[&str], metrics: &[(&str, &str)]) -> Value {
    let metrics: Vec<Value> = metrics
        .iter()
        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    json!({"Namespace": NAMESPACE, "Dimensions": [dimensions], "Metrics": metrics})
}

/// What the metrics line says of the function itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Function<'a> {
    pub memory_mb: Option<usize>,
    /// `BUCKET_NAME`: the bucket the deployment audits, and its role may read.
    pub configured_bucket: Option<&'a str>,
}

/// The `Bucket` dimension: a bucket the run read (its report's), or for a failed run the
/// function's own `BUCKET_NAME`; any other name an event gave a failed run is [`UNKNOWN`], so
/// that an invoker cannot create a custom metric per name it makes up.
fn dimension_bucket<'a>(invocation: &'a Invocation, configured: Option<&'a str>) -> &'a str {
    match invocation {
        Invocation::Failed { bucket, .. } => match (bucket.as_deref(), configured) {
            (Some(named), Some(configured)) if named == configured => configured,
            _ => UNKNOWN,
        },
        _ => invocation.bucket().unwrap_or(UNKNOWN),
    }
}

/// Writes the invocation's EMF line to stdout, where Lambda's log pipeline picks it up.
pub fn emit(kind: StrategyKind, invocation: &Invocation, function: &Function) {
    // A plan or collect step audits nothing: its parts and the last step count the run.
    if matches!(invocation, Invocation::Stepped { .. }) {
        return;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
    if let Invocation::Swept { report, .. } = invocation {
        for account in report.accounts() {
            for line in sweep_lines(kind, account, report.changes(), function, now_ms) {
                println!("{line}");
            }
        }
        return;
    }
    println!("{}", emf_line(kind, invocation, function, now_ms));
}

/// A sweep's metrics: one line per bucket it read, by `Bucket` alone, as a bucket's own run
/// would count it, so that the per-bucket alarms see every bucket of the account.
pub fn sweep_lines(
    kind: StrategyKind,
    report: &SweepReport,
    changes: Option<&ChangeCounts>,
    function: &Function,
    timestamp_ms: u64,
) -> Vec<String> {
    report
        .buckets
        .iter()
        .filter(|bucket| bucket.settings.is_some())
        .map(|bucket| {
            let mut counted = AuditReport::empty(kind, &bucket.bucket);
            counted.objects_listed = bucket.objects_listed;
            counted.acls_fetched = bucket.acls_fetched;
            counted.failures.count = bucket.failures;
            counted.audit.findings.exposed_objects = bucket.exposed_objects;
            counted.audit.findings.public_objects = bucket.public_objects;
            counted.audit.findings.objects = bucket.objects_with_findings;
            counted.audit.findings.by_kind.clone_from(&bucket.by_kind);
            counted.bucket_settings.clone_from(&bucket.settings);
            counted.changes = changes.map(|changes| {
                let (new, resolved) = changes.of_bucket(report.account_id.as_deref(), &bucket.bucket);
                ChangeCounts {
                    new_exposed_objects: new,
                    resolved_exposed_objects: resolved,
                    ..ChangeCounts::default()
                }
            });
            let invocation = Invocation::audited(RunReport::new(counted, None), None, Scope::MapRun);
            emf_line(kind, &invocation, function, timestamp_ms)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use acl_audit::findings::FindingKind;
    use acl_audit::report::Timings;
    use serde_json::Value;

    use super::*;
    use crate::error::HandlerError;
    use crate::job::RequestError;
    use crate::record::RunReport;

    fn report() -> AuditReport {
        let mut report = AuditReport::empty(StrategyKind::JoinAll, "audited");
        report.objects_listed = 100;
        report.acls_fetched = 98;
        report.failures.count = 2;
        report.retries = 3;
        report.audit.findings.objects = 12;
        report.audit.findings.exposed_objects = 11;
        report.audit.findings.public_objects = 10;
        report.audit.findings.by_kind.insert(FindingKind::PublicWriteAcp, 4);
        report.timings_ms = Timings {
            list: 20.0,
            fetch: 200.5,
            total: 220.5,
        };
        report
    }

    fn audited() -> Invocation {
        Invocation::audited(RunReport::new(report(), None), None, Scope::Run)
    }

    fn dimensions(record: &Value) -> Vec<Value> {
        let directives = record["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        directives.iter().map(|d| d["Dimensions"].clone()).collect()
    }

    fn record(invocation: &Invocation, memory_mb: Option<usize>) -> Value {
        let function = Function {
            memory_mb,
            configured_bucket: Some("audited"),
        };
        let line = emf_line(StrategyKind::JoinAll, invocation, &function, 1_700_000_000_000);
        assert!(!line.contains('\n'));
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn the_line_is_one_emf_record_whose_metrics_and_dimensions_are_all_present() {
        let record = record(&audited(), Some(128));
        assert_eq!(record["_aws"]["Timestamp"], 1_700_000_000_000_u64);
        let directives = record["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2);
        for directive in directives {
            assert_eq!(directive["Namespace"], NAMESPACE);
            // EMF drops a record whose dimension or metric names have no member of that name.
            for dimension in directive["Dimensions"][0].as_array().unwrap() {
                assert!(record[dimension.as_str().unwrap()].is_string(), "{dimension}");
            }
            for metric in directive["Metrics"].as_array().unwrap() {
                assert!(record[metric["Name"].as_str().unwrap()].is_number(), "{metric}");
            }
        }
        assert_eq!(
            directives[0]["Dimensions"],
            serde_json::json!([["Strategy", "MemorySize"]])
        );
        assert_eq!(directives[1]["Dimensions"], serde_json::json!([["Bucket"]]));
        assert_eq!(record["Strategy"], "join-all");
        assert_eq!(record["MemorySize"], "128");
        assert_eq!(record["Bucket"], "audited");
        assert_eq!(record["ObjectsListed"], 100.0);
        assert_eq!(record["AclsFetched"], 98.0);
        assert_eq!(record["Failures"], 2.0);
        assert_eq!(record["Retries"], 3.0);
        assert_eq!(record["PublicObjects"], 10.0);
        assert_eq!(record["ExposedObjects"], 11.0);
        assert_eq!(record["PublicWriteAcp"], 4.0);
        assert_eq!(record["FailedRuns"], 0.0);
        assert_eq!(record["Duration"], 220.5);
    }

    #[test]
    fn every_finding_kind_has_a_metric_per_bucket() {
        let names: Vec<&str> = BUCKET_METRICS.iter().map(|(name, _)| *name).collect();
        for kind in FindingKind::ALL {
            assert!(names.contains(&kind_metric(kind)), "{kind:?}");
        }
    }

    #[test]
    fn the_line_says_its_level_so_that_no_offered_log_level_filters_it() {
        assert_eq!(record(&audited(), None)["level"], "INFO");
    }

    #[test]
    fn a_failed_invocation_writes_a_line_too() {
        let failed = Invocation::Failed {
            bucket: None,
            error: HandlerError::Request(RequestError::MissingBucket),
        };
        let line = record(&failed, Some(256));
        assert_eq!(line["FailedRuns"], 1.0);
        assert_eq!(line["Bucket"], "unknown");
        assert_eq!(line["ObjectsListed"], 0.0);
        let unwritten = Invocation::audited(
            RunReport::new(report(), None),
            Some(acl_audit::s3::upload::NotWritten {
                what: acl_audit::s3::upload::Artifact::Findings,
                uri: "s3://gone/x".to_owned(),
                code: "NoSuchBucket".to_owned(),
                message: "NoSuchBucket: The specified bucket does not exist".to_owned(),
            }),
            Scope::Run,
        );
        let line = record(&unwritten, Some(256));
        assert_eq!(line["FailedRuns"], 1.0);
        assert_eq!(line["FindingsNotWritten"], 1.0);
        assert_eq!(line["ExposedObjects"], 11.0, "the audit's counts still count");
    }

    #[test]
    fn a_map_run_counts_per_bucket_once_in_its_last_step_and_its_batches_per_strategy() {
        let batch = record(
            &Invocation::audited(RunReport::new(report(), None), None, Scope::Part),
            Some(256),
        );
        assert_eq!(dimensions(&batch), [serde_json::json!([["Strategy", "MemorySize"]])]);
        let run = record(
            &Invocation::audited(RunReport::new(report(), None), None, Scope::MapRun),
            Some(256),
        );
        assert_eq!(dimensions(&run), [serde_json::json!([["Bucket"]])]);
        assert_eq!(run["ExposedObjects"], 11.0);
        assert_eq!(
            dimensions(&record(&audited(), Some(256))).len(),
            2,
            "a run of its own counts both ways"
        );
    }

    #[test]
    fn an_unknown_memory_size_is_a_dimension_value_too() {
        assert_eq!(record(&audited(), None)["MemorySize"], "unknown");
    }

    #[test]
    fn a_failed_run_names_only_the_function_s_own_bucket() {
        let failed = |bucket: &str| Invocation::Failed {
            bucket: Some(bucket.to_owned()),
            error: HandlerError::Request(RequestError::MissingBucket),
        };
        assert_eq!(record(&failed("audited"), None)["Bucket"], "audited");
        // An event's name for a bucket the run could not read is no dimension of its own.
        assert_eq!(record(&failed("made-up-1"), None)["Bucket"], UNKNOWN);
        assert_eq!(record(&audited(), None)["Bucket"], "audited");
    }
}
