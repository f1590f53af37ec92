//! One CloudWatch Embedded Metric Format (EMF) record per successful invocation. Lambda sends
//! a function's stdout to CloudWatch Logs, which turns such a line into metrics: scheduled runs
//! graph with no PutMetricData call and no extra permission.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use acl_audit::AuditReport;

/// The CloudWatch namespace of the functions' metrics (the template's dashboard reads it).
pub const NAMESPACE: &str = "AclAudit";

/// The dimension value when the memory size is unknown (outside Lambda).
const UNKNOWN_MEMORY_SIZE: &str = "unknown";

/// The record's top level: the EMF directive, then the dimension and metric values it names.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Record<'a> {
    #[serde(rename = "_aws")]
    aws: Directive,
    strategy: &'a str,
    memory_size: String,
    objects_listed: usize,
    acls_fetched: usize,
    failures: usize,
    objects_not_fetched: usize,
    retries: usize,
    public_objects: usize,
    duration: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive {
    timestamp: u64,
    cloud_watch_metrics: [MetricDirective; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDirective {
    namespace: &'static str,
    dimensions: [[&'static str; 2]; 1],
    metrics: [Metric; 7],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metric {
    name: &'static str,
    unit: &'static str,
}

/// The EMF line for `report`, stamped `timestamp_ms` (milliseconds since the Unix epoch).
pub fn emf_line(report: &AuditReport, memory_mb: Option<usize>, timestamp_ms: u64) -> String {
    let metric = |name, unit| Metric { name, unit };
    let record = Record {
        aws: Directive {
            timestamp: timestamp_ms,
            cloud_watch_metrics: [MetricDirective {
                namespace: NAMESPACE,
                dimensions: [["Strategy", "MemorySize"]],
                metrics: [
                    metric("ObjectsListed", "Count"),
                    metric("AclsFetched", "Count"),
                    metric("Failures", "Count"),
                    metric("ObjectsNotFetched", "Count"),
                    metric("Retries", "Count"),
                    metric("PublicObjects", "Count"),
                    metric("Duration", "Milliseconds"),
                ],
            }],
        },
        strategy: report.strategy.name(),
        memory_size: memory_mb.map_or_else(|| UNKNOWN_MEMORY_SIZE.to_owned(), |mb| mb.to_string()),
        objects_listed: report.objects_listed,
        acls_fetched: report.acls_fetched,
        failures: report.failures.count,
        objects_not_fetched: report.objects_not_fetched,
        retries: report.retries,
        public_objects: report.audit.readable_by_all_users.count,
        duration: report.timings_ms.total,
    };
    // Plain data with string keys: serialising it cannot fail.
    serde_json::to_string(&record).unwrap_or_default()
}

/// Writes the invocation's EMF line to stdout, where Lambda's log pipeline picks it up.
pub fn emit(report: &AuditReport, memory_mb: Option<usize>) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
    println!("{}", emf_line(report, memory_mb, now_ms));
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use acl_audit::StrategyKind;
    use acl_audit::report::{AclAudit, Failures, KeySample, Timings};

    fn report() -> AuditReport {
        AuditReport {
            strategy: StrategyKind::JoinAll,
            bucket: "b".to_owned(),
            prefix: None,
            max_objects: None,
            objects_listed: 100,
            acls_fetched: 98,
            failures: Failures {
                count: 2,
                ..Failures::default()
            },
            objects_not_fetched: 0,
            truncated: None,
            resume: None,
            retries: 3,
            audit: AclAudit {
                readable_by_all_users: KeySample {
                    count: 10,
                    keys: Vec::new(),
                },
                ..AclAudit::default()
            },
            concurrency_limit: Some(16),
            timings_ms: Timings {
                list: 20.0,
                fetch: 200.5,
                total: 220.5,
            },
        }
    }

    #[test]
    fn the_line_is_one_emf_record_whose_metrics_and_dimensions_are_all_present() {
        let line = emf_line(&report(), Some(128), 1_700_000_000_000);
        assert!(!line.contains('\n'));
        let record: Value = serde_json::from_str(&line).unwrap();
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(record["_aws"]["Timestamp"], 1_700_000_000_000_u64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        // EMF drops a record whose dimension or metric names have no member of that name.
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert!(record[dimension.as_str().unwrap()].is_string(), "{dimension}");
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(record[metric["Name"].as_str().unwrap()].is_number(), "{metric}");
        }
        assert_eq!(record["Strategy"], "join-all");
        assert_eq!(record["MemorySize"], "128");
        assert_eq!(record["ObjectsListed"], 100);
        assert_eq!(record["AclsFetched"], 98);
        assert_eq!(record["Failures"], 2);
        assert_eq!(record["Retries"], 3);
        assert_eq!(record["PublicObjects"], 10);
        assert_eq!(record["Duration"], 220.5);
    }

    #[test]
    fn an_unknown_memory_size_is_a_dimension_value_too() {
        let record: Value = serde_json::from_str(&emf_line(&report(), None, 0)).unwrap();
        assert_eq!(record["MemorySize"], "unknown");
    }
}
