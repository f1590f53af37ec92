//! The findings file as OCSF events (`FINDINGS_FORMAT=ocsf`, `--format ocsf`): one Detection
//! Finding (class 2004, OCSF 1.5.0) per line instead of this tool's own line, for a SIEM or a
//! security lake that reads OCSF (docs/report.md, "OCSF"). Each event carries the line it
//! stands for under `unmapped.acl_audit`, so that every reader of a findings file (the next
//! run's comparison, Security Hub, `fix`) reads either format through [`parse_line`].
//!
//! <https://schema.ocsf.io/1.5.0/classes/detection_finding>

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::findings::{FailureLine, FindingKind, FindingLine};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.5.0";
const DETECTION_FINDING: u32 = 2004;
/// `class_uid * 100 + activity_id`: Create.
const CREATE: u32 = DETECTION_FINDING * 100 + 1;

/// How a run writes its findings file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FindingsFormat {
    /// This tool's own lines (docs/report.md, "The findings file").
    #[default]
    Lines,
    /// OCSF Detection Finding events, a line each.
    Ocsf,
}

impl FindingsFormat {
    /// `jsonl` or `ocsf`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "jsonl" | "lines" => Some(FindingsFormat::Lines),
            "ocsf" => Some(FindingsFormat::Ocsf),
            _ => None,
        }
    }

    /// A finding's line in this format, with its newline; `time_ms`: the event's time.
    pub fn finding(self, line: &FindingLine, time_ms: u64) -> Vec<u8> {
        match self {
            FindingsFormat::Lines => serialised(line),
            FindingsFormat::Ocsf => serialised(&finding_event(line, time_ms)),
        }
    }

    /// A failure's line in this format, with its newline.
    pub fn failure(self, line: &FailureLine, time_ms: u64) -> Vec<u8> {
        match self {
            FindingsFormat::Lines => serialised(line),
            FindingsFormat::Ocsf => serialised(&failure_event(line, time_ms)),
        }
    }
}

fn serialised(value: &impl serde::Serialize) -> Vec<u8> {
    // Plain data with string keys: serialising cannot fail.
    let mut json = serde_json::to_vec(value).unwrap_or_default();
    json.push(b'\n');
    json
}

/// A findings file's line in either format as `T` (this tool's line, or a Detection Finding
/// whose `unmapped.acl_audit` holds it).
pub fn parse_line<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    #[derive(Deserialize)]
    struct Event<T> {
        #[allow(dead_code)]
        class_uid: u32,
        unmapped: Unmapped<T>,
    }
    #[derive(Deserialize)]
    struct Unmapped<T> {
        acl_audit: T,
    }
    serde_json::from_slice::<T>(bytes).or_else(|ours| {
        serde_json::from_slice::<Event<T>>(bytes)
            .map(|event| event.unmapped.acl_audit)
            .map_err(|_| ours)
    })
}

/// OCSF's severity of a kind: `(severity_id, caption)`.
fn severity(kind: FindingKind) -> (u8, &'static str) {
    match kind {
        FindingKind::PublicWriteAcp | FindingKind::AuthenticatedWriteAcp => (5, "Critical"),
        FindingKind::PublicRead | FindingKind::AuthenticatedRead => (4, "High"),
        FindingKind::PublicReadAcp | FindingKind::AuthenticatedReadAcp | FindingKind::OtherAccountGrant => {
            (3, "Medium")
        }
        FindingKind::ForeignOwner => (2, "Low"),
    }
}

/// Milliseconds since the epoch at the start of a `YYYY-MM-DD` day (UTC).
fn day_ms(day: &str) -> Option<u64> {
    let mut parts = day.splitn(3, '-').map(str::parse::<i64>);
    let (Some(Ok(year)), Some(Ok(month)), Some(Ok(day))) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    // Howard Hinnant's days-from-civil algorithm.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400_000).ok()
}

fn common(account_id: Option<&str>, region: Option<&str>, time_ms: u64) -> serde_json::Map<String, Value> {
    let mut event = serde_json::Map::new();
    event.insert("activity_id".into(), 1.into());
    event.insert("activity_name".into(), "Create".into());
    event.insert("category_uid".into(), 2.into());
    event.insert("category_name".into(), "Findings".into());
    event.insert("class_uid".into(), DETECTION_FINDING.into());
    event.insert("class_name".into(), "Detection Finding".into());
    event.insert("type_uid".into(), CREATE.into());
    event.insert("type_name".into(), "Detection Finding: Create".into());
    event.insert("time".into(), time_ms.into());
    event.insert(
        "metadata".into(),
        json!({
            "version": OCSF_VERSION,
            "profiles": ["cloud"],
            "product": {"name": "acl-audit", "vendor_name": "acl-audit", "version": env!("CARGO_PKG_VERSION")}
        }),
    );
    let mut cloud = json!({"provider": "AWS"});
    if let Some(region) = region {
        cloud["region"] = region.into();
    }
    if let Some(account) = account_id {
        cloud["account"] = json!({"uid": account, "name": account, "type": "AWS Account", "type_id": 10});
    }
    event.insert("cloud".into(), cloud);
    event
}

/// The event's object (its message and resource) and the line it stands for.
fn finish(
    mut event: serde_json::Map<String, Value>,
    bucket: &str,
    key: &str,
    region: Option<&str>,
    version_id: Option<&str>,
    line: &impl serde::Serialize,
) -> Value {
    event.insert("message".into(), format!("s3://{bucket}/{key}").into());
    event.insert("resources".into(), json!([resource(bucket, key, region, version_id)]));
    event.insert("unmapped".into(), json!({"acl_audit": line}));
    Value::Object(event)
}

fn resource(bucket: &str, key: &str, region: Option<&str>, version_id: Option<&str>) -> Value {
    let mut resource = json!({
        "uid": format!("arn:aws:s3:::{bucket}/{key}"),
        "name": key,
        "type": "AwsS3Object",
        "group": {"name": bucket}
    });
    if let Some(region) = region {
        resource["region"] = region.into();
    }
    if let Some(version) = version_id {
        resource["version"] = version.into();
    }
    resource
}

/// The Detection Finding for an object's line: its most severe kind sets the severity; the
/// status is New, Suppressed (an accepted finding), or Other "Neutralised" (none takes effect).
pub fn finding_event(line: &FindingLine, time_ms: u64) -> Value {
    let mut event = common(line.account_id.as_deref(), line.region.as_deref(), time_ms);
    let (severity_id, severity_name) = line
        .findings
        .iter()
        .map(|kind| severity(*kind))
        .max()
        .unwrap_or((0, "Unknown"));
    event.insert("severity_id".into(), severity_id.into());
    event.insert("severity".into(), severity_name.into());
    let (status_id, status) = match (&line.suppressed, line.effective) {
        (Some(_), _) => (3, "Suppressed"),
        (None, true) => (1, "New"),
        (None, false) => (99, "Neutralised"),
    };
    event.insert("status_id".into(), status_id.into());
    event.insert("status".into(), status.into());
    let kinds: Vec<String> = line.findings.iter().map(|kind| kind.name().to_owned()).collect();
    let uid = crate::findings::finding_id(
        line.account_id.as_deref(),
        &line.bucket,
        &line.key,
        line.version_id.as_deref(),
        line.findings.first().copied().unwrap_or(FindingKind::PublicRead),
    );
    let mut info = json!({
        "uid": uid,
        "title": format!("S3 object ACL: {}", kinds.join(", ")),
        "desc": crate::model::excerpt(&format!("s3://{}/{}: the object's ACL grants {}", line.bucket, line.key, kinds.join(", "))),
        "types": kinds,
    });
    if let Some(first_seen) = line.first_seen.as_deref().and_then(day_ms) {
        info["first_seen_time"] = first_seen.into();
    }
    event.insert("finding_info".into(), info);
    finish(
        event,
        &line.bucket,
        &line.key,
        line.region.as_deref(),
        line.version_id.as_deref(),
        line,
    )
}

/// The event for an object whose ACL could not be read: severity and status unknown, so that
/// the file still names every object not known to be clean.
pub fn failure_event(line: &FailureLine, time_ms: u64) -> Value {
    let mut event = common(line.account_id.as_deref(), line.region.as_deref(), time_ms);
    event.insert("severity_id".into(), 0.into());
    event.insert("severity".into(), "Unknown".into());
    event.insert("status_id".into(), 0.into());
    event.insert("status".into(), "Unknown".into());
    event.insert("status_code".into(), line.error.code.clone().into());
    event.insert(
        "status_detail".into(),
        crate::model::excerpt(&line.error.message).into(),
    );
    event.insert(
        "finding_info".into(),
        json!({
            "uid": format!("acl-audit/not-read/{}/{}", line.bucket, crate::model::excerpt(&line.key)),
            "title": format!("S3 object ACL not read ({})", line.error.code),
            "types": ["acl_not_read"],
        }),
    );
    finish(
        event,
        &line.bucket,
        &line.key,
        line.region.as_deref(),
        line.version_id.as_deref(),
        line,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ALL_USERS_URI, Grant, Grantee};

    fn line() -> FindingLine {
        FindingLine {
            account_id: Some("111122223333".to_owned()),
            bucket: "b".to_owned(),
            region: Some("us-east-1".to_owned()),
            key: "k".to_owned(),
            version_id: None,
            owner: None,
            findings: vec![FindingKind::PublicRead, FindingKind::PublicWriteAcp],
            effective: true,
            neutralised: Vec::new(),
            grants: vec![Grant {
                grantee: Grantee::Group {
                    uri: ALL_USERS_URI.to_owned(),
                },
                permission: "FULL_CONTROL".to_owned(),
            }],
            first_seen: Some("2026-12-06".to_owned()),
            suppressed: None,
        }
    }

    #[test]
    fn an_event_is_a_detection_finding_and_reads_back_as_its_line() {
        let bytes = FindingsFormat::Ocsf.finding(&line(), 1_796_515_200_000);
        let event: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (event["class_uid"].as_u64(), event["type_uid"].as_u64()),
            (Some(2004), Some(200_401))
        );
        assert_eq!(event["severity"], "Critical");
        assert_eq!(event["finding_info"]["first_seen_time"], 1_796_515_200_000_u64);
        let back: FindingLine = parse_line(&bytes).unwrap();
        assert_eq!(back, line());
        let ours: FindingLine = parse_line(&FindingsFormat::Lines.finding(&line(), 0)).unwrap();
        assert_eq!(ours, line());
    }

    #[test]
    fn days_are_utc_midnights() {
        assert_eq!(day_ms("1970-01-01"), Some(0));
        assert_eq!(day_ms("2026-12-06"), Some(1_796_515_200_000));
        assert_eq!(day_ms("soon"), None);
    }
}
