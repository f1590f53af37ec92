//! `acl-audit fix-plan` and `acl-audit fix`: a run's findings turned into the change that ends
//! their exposure, reviewed before it is made (docs/cli.md, "Fixing what a run found").
//!
//! Only exposures are fixed: objects whose ACL opens them to anyone or to any AWS account, in
//! effect and not suppressed. The fix is S3's canned `private` ACL, which leaves the object's
//! owner full control and drops every other grant (another account's too: such an object is
//! named in the plan, so that a grant meant to stay can be granted again). `fix-plan` writes an
//! S3 Batch Operations manifest and job per bucket and never creates the job; `fix` calls
//! PutObjectAcl itself, a dry run unless `--apply` is given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use acl_audit::changes::LineSource;
use acl_audit::findings::{AnyLine, FindingKind};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::ObjectCannedAcl;
use serde_json::json;

/// An object to make private, from a findings line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exposed {
    pub account_id: Option<String>,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// Its grants to other accounts, which `private` drops too.
    pub drops_other_grants: bool,
}

/// The exposed objects a findings file names (a local file or `s3://bucket/key`).
pub async fn exposed(client: &aws_sdk_s3::Client, findings: &str) -> Result<Vec<Exposed>, String> {
    let mut lines = LineSource::open(client, findings).map_err(|err| err.to_string())?;
    let mut exposed = Vec::new();
    while let Some(line) = lines.next_line().await.map_err(|err| err.to_string())? {
        let line = match acl_audit::ocsf::parse_line::<AnyLine>(&line) {
            Ok(AnyLine::Finding(line)) => *line,
            // A failure's line: nothing known to fix.
            Ok(AnyLine::Failure(_)) => continue,
            Err(err) => return Err(format!("{findings}: a line is not a findings line: {err}")),
        };
        let active = |kind: &FindingKind| line.effective && !line.neutralised.contains(kind);
        if line.suppressed.is_some() || !line.findings.iter().any(|kind| kind.is_exposure() && active(kind)) {
            continue;
        }
        exposed.push(Exposed {
            drops_other_grants: line.findings.contains(&FindingKind::OtherAccountGrant),
            account_id: line.account_id,
            bucket: line.bucket,
            key: line.key,
            version_id: line.version_id,
        });
    }
    exposed.sort();
    exposed.dedup();
    Ok(exposed)
}

/// A CSV field as S3 Batch Operations reads a manifest: keys URL-encoded (UTF-8, then `%XX`
/// for every byte but the unreserved ones), so that a comma or newline in a key is no break.
fn manifest_field(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `fix-plan`: per account and bucket, `manifest.csv` (bucket, key, version id) and `job.json`
/// (the CreateJob request that replaces each listed object's ACL with `private`) under `out`,
/// and the bucket-level alternative; the plan as JSON.
pub fn write_plan(exposed: &[Exposed], out: &Path) -> Result<serde_json::Value, String> {
    let mut by_bucket: BTreeMap<(Option<&str>, &str), Vec<&Exposed>> = BTreeMap::new();
    for object in exposed {
        by_bucket
            .entry((object.account_id.as_deref(), object.bucket.as_str()))
            .or_default()
            .push(object);
    }
    let mut buckets = Vec::new();
    for ((account_id, bucket), objects) in by_bucket {
        let folder: PathBuf = out.join(match account_id {
            Some(account) => format!("{account}-{bucket}"),
            None => bucket.to_owned(),
        });
        std::fs::create_dir_all(&folder).map_err(|err| format!("cannot create {}: {err}", folder.display()))?;
        let versions = objects.iter().any(|object| object.version_id.is_some());
        let mut csv = String::new();
        for object in &objects {
            csv.push_str(&manifest_field(&object.bucket));
            csv.push(',');
            csv.push_str(&manifest_field(&object.key));
            if versions {
                csv.push(',');
                csv.push_str(object.version_id.as_deref().unwrap_or(""));
            }
            csv.push('\n');
        }
        let manifest = folder.join("manifest.csv");
        std::fs::write(&manifest, csv).map_err(|err| format!("cannot write {}: {err}", manifest.display()))?;
        let fields = if versions {
            json!(["Bucket", "Key", "VersionId"])
        } else {
            json!(["Bucket", "Key"])
        };
        // S3 Control's CreateJob request (aws s3control create-job --cli-input-json): the
        // placeholders are the user's to fill, after uploading the manifest.
        let job = json!({
            "AccountId": account_id.unwrap_or("ACCOUNT_ID"),
            "ConfirmationRequired": true,
            "Operation": {"S3PutObjectAcl": {"AccessControlPolicy": {"CannedAccessControlList": "private"}}},
            "Manifest": {
                "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": fields},
                "Location": {"ObjectArn": "arn:aws:s3:::MANIFEST_BUCKET/manifest.csv", "ETag": "MANIFEST_ETAG"}
            },
            "Report": {
                "Bucket": "arn:aws:s3:::REPORT_BUCKET", "Prefix": "acl-audit-fix", "Format": "Report_CSV_20180820",
                "Enabled": true, "ReportScope": "AllTasks"
            },
            "Priority": 10,
            "RoleArn": "arn:aws:iam::ACCOUNT_ID:role/BATCH_OPERATIONS_ROLE",
            "Description": format!("acl-audit: make {} exposed objects of {bucket} private", objects.len()),
            "ClientRequestToken": format!("acl-audit-fix-{bucket}-{}", objects.len())
        });
        let job_file = folder.join("job.json");
        let text = serde_json::to_string_pretty(&job).unwrap_or_default();
        std::fs::write(&job_file, text).map_err(|err| format!("cannot write {}: {err}", job_file.display()))?;
        buckets.push(json!({
            "account_id": account_id,
            "bucket": bucket,
            "objects": objects.len(),
            "objects_losing_other_accounts_grants": objects.iter().filter(|object| object.drops_other_grants).count(),
            "manifest": manifest.display().to_string(),
            "job": job_file.display().to_string(),
            "create_job": "upload manifest.csv, put its bucket, key and ETag, a report bucket and a role that may s3:PutObjectAcl (and s3:PutObjectVersionAcl) into job.json, then: aws s3control create-job --cli-input-json file://job.json",
            "bucket_level_alternative": {
                "command": format!("aws s3api put-bucket-ownership-controls --bucket {bucket} --ownership-controls 'Rules=[{{ObjectOwnership=BucketOwnerEnforced}}]'"),
                "what_it_changes": "disables every ACL of the bucket and its objects at once (S3's default for new buckets since April 2023): the bucket owner owns every object, and access is granted by policies alone. Any grant that still matters (another account's, a log delivery group's) must move to the bucket policy first; S3 refuses the change while the bucket's own ACL grants anyone but the owner."
            }
        }));
    }
    Ok(json!({"exposed_objects": exposed.len(), "buckets": buckets}))
}

/// `fix`: each exposed object's ACL replaced with `private` (with `apply`), or what would be
/// (without); a line per object on stdout; the objects that could not be changed.
pub async fn apply(client: &aws_sdk_s3::Client, exposed: &[Exposed], apply: bool) -> Vec<(Exposed, String)> {
    let mut failed = Vec::new();
    for object in exposed {
        let version = object
            .version_id
            .as_deref()
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default();
        let name = format!("s3://{}/{}{version}", object.bucket, object.key);
        if !apply {
            println!("would make private: {name}");
            continue;
        }
        let put = client
            .put_object_acl()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .acl(ObjectCannedAcl::Private)
            .send()
            .await;
        match put {
            Ok(_) => println!("made private: {name}"),
            Err(err) => {
                let message = DisplayErrorContext(&err).to_string();
                println!("not changed: {name}: {message}");
                failed.push((object.clone(), message));
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_keys_are_url_encoded() {
        assert_eq!(manifest_field("a b,c/é"), "a%20b%2Cc/%C3%A9");
    }
}
