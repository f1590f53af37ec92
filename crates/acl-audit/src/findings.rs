//! What an ACL grants that an auditor must see, one JSON line per object that is not clean:
//! the findings file's format (docs/report.md has the schema and an Athena table over it),
//! and where a run writes it.

use serde::{Deserialize, Serialize};

use crate::model::{ALL_USERS_URI, AUTHENTICATED_USERS_URI, Grant, Grantee, ObjectAcl, ObjectFailure, S3Location};

/// One kind of exposure a grant makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Anyone may read the object: READ or FULL_CONTROL to `AllUsers`.
    PublicRead,
    /// Anyone may read its ACL: READ_ACP or FULL_CONTROL to `AllUsers`.
    PublicReadAcp,
    /// Anyone may rewrite its ACL, and so grant themselves anything: WRITE_ACP or FULL_CONTROL.
    PublicWriteAcp,
    /// The same three for `AuthenticatedUsers`: any AWS account at all.
    AuthenticatedRead,
    AuthenticatedReadAcp,
    AuthenticatedWriteAcp,
    /// A grant to a canonical user other than the bucket's owner (the object's owner when the
    /// bucket's is not known).
    OtherAccountGrant,
    /// The object is owned by another account than the bucket's: an `ObjectWriter` bucket
    /// that received another account's upload; that account controls its ACL.
    ForeignOwner,
}

impl FindingKind {
    pub const ALL: [FindingKind; 8] = [
        FindingKind::PublicRead,
        FindingKind::PublicReadAcp,
        FindingKind::PublicWriteAcp,
        FindingKind::AuthenticatedRead,
        FindingKind::AuthenticatedReadAcp,
        FindingKind::AuthenticatedWriteAcp,
        FindingKind::OtherAccountGrant,
        FindingKind::ForeignOwner,
    ];

    /// Its name in the findings file (`public_read`, …).
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::PublicRead => "public_read",
            FindingKind::PublicReadAcp => "public_read_acp",
            FindingKind::PublicWriteAcp => "public_write_acp",
            FindingKind::AuthenticatedRead => "authenticated_read",
            FindingKind::AuthenticatedReadAcp => "authenticated_read_acp",
            FindingKind::AuthenticatedWriteAcp => "authenticated_write_acp",
            FindingKind::OtherAccountGrant => "other_account_grant",
            FindingKind::ForeignOwner => "foreign_owner",
        }
    }

    /// Open to anyone, or to any AWS account: what the exposure alarm counts.
    pub fn is_exposure(self) -> bool {
        !matches!(self, FindingKind::OtherAccountGrant | FindingKind::ForeignOwner)
    }

    pub fn is_public(self) -> bool {
        matches!(
            self,
            FindingKind::PublicRead | FindingKind::PublicReadAcp | FindingKind::PublicWriteAcp
        )
    }

    /// The kinds a grant makes; none for the owner's own grant or a private one.
    fn of_grant(grant: &Grant, owner_id: Option<&str>) -> Vec<FindingKind> {
        let permission = grant.permission.as_str();
        let full = permission == "FULL_CONTROL";
        let group = |read, read_acp, write_acp| {
            let mut kinds = Vec::new();
            if full || permission == "READ" {
                kinds.push(read);
            }
            if full || permission == "READ_ACP" {
                kinds.push(read_acp);
            }
            if full || permission == "WRITE_ACP" {
                kinds.push(write_acp);
            }
            kinds
        };
        match &grant.grantee {
            Grantee::Group { uri } if uri == ALL_USERS_URI => group(
                FindingKind::PublicRead,
                FindingKind::PublicReadAcp,
                FindingKind::PublicWriteAcp,
            ),
            Grantee::Group { uri } if uri == AUTHENTICATED_USERS_URI => group(
                FindingKind::AuthenticatedRead,
                FindingKind::AuthenticatedReadAcp,
                FindingKind::AuthenticatedWriteAcp,
            ),
            Grantee::CanonicalUser { id } if Some(id.as_str()) != owner_id => vec![FindingKind::OtherAccountGrant],
            _ => Vec::new(),
        }
    }
}

/// The kinds an ACL makes (each once, in [`FindingKind`]'s order) and the grants behind them,
/// judged against the object's owner.
pub fn classify(acl: &ObjectAcl) -> (Vec<FindingKind>, Vec<&Grant>) {
    classify_in(acl, None)
}

/// The same in a bucket whose owner is `bucket_owner`: a grant to anyone else is another
/// account's, and an object owned by anyone else is [`FindingKind::ForeignOwner`].
pub fn classify_in<'a>(acl: &'a ObjectAcl, bucket_owner: Option<&str>) -> (Vec<FindingKind>, Vec<&'a Grant>) {
    let mut kinds = Vec::new();
    let mut grants = Vec::new();
    let owner = bucket_owner.or(acl.owner_id.as_deref());
    if let (Some(bucket_owner), Some(object_owner)) = (bucket_owner, acl.owner_id.as_deref())
        && bucket_owner != object_owner
    {
        kinds.push(FindingKind::ForeignOwner);
    }
    for grant in &acl.grants {
        let of_grant = FindingKind::of_grant(grant, owner);
        if !of_grant.is_empty() {
            grants.push(grant);
            kinds.extend(of_grant);
        }
    }
    kinds.sort_unstable();
    kinds.dedup();
    (kinds, grants)
}

/// The stable id of a kind of finding on an object (Security Hub's `Id`, OCSF's
/// `finding_info.uid`): `acl-audit/<SHA-256 of account, bucket, key, version id and kind>`.
pub fn finding_id(
    account_id: Option<&str>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    kind: FindingKind,
) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    for part in [
        account_id.unwrap_or(""),
        bucket,
        key,
        version_id.unwrap_or(""),
        kind.name(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest: String = hash.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    format!("acl-audit/{digest}")
}

/// Where a line's object is: its account (when the run knows it), bucket and region, so that
/// one findings file, or one table over many, can hold a whole account's or organization's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Place<'a> {
    pub account_id: Option<&'a str>,
    pub bucket: &'a str,
    pub region: Option<&'a str>,
}

impl<'a> Place<'a> {
    /// A bucket whose account and region the caller does not know.
    pub fn bucket(bucket: &'a str) -> Self {
        Place {
            bucket,
            ..Place::default()
        }
    }
}

/// A line of the findings file: an object with findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingLine {
    #[serde(default)]
    pub account_id: Option<String>,
    pub bucket: String,
    #[serde(default)]
    pub region: Option<String>,
    pub key: String,
    /// The version whose ACL this is, when versions are audited (`include_versions`, or an
    /// S3 event naming one); `null`: the current version.
    pub version_id: Option<String>,
    pub owner: Option<String>,
    pub findings: Vec<FindingKind>,
    /// False when none of `findings` has effect: the bucket's ACLs are disabled, or Block
    /// Public Access ignores the public grants and there is nothing else.
    pub effective: bool,
    /// The kinds of `findings` that have no effect (Block Public Access ignores them, or the
    /// bucket's ACLs are disabled); absent when every one has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neutralised: Vec<FindingKind>,
    pub grants: Vec<Grant>,
    /// The day (UTC, `YYYY-MM-DD`) a run of this target first found the object with findings,
    /// when runs are compared (`crate::changes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// An accepted finding: the suppression entry's reason (and end); counted apart from the
    /// exposures, and raising no alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppressed>,
}

/// A finding line's mark: the reason (and end) of the suppression entry that accepts it
/// (`crate::suppressions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppressed {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A line of the findings file: an object whose ACL could not be fetched, so that the file
/// names every object that is not known to be clean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureLine {
    #[serde(default)]
    pub account_id: Option<String>,
    pub bucket: String,
    #[serde(default)]
    pub region: Option<String>,
    pub key: String,
    pub version_id: Option<String>,
    pub error: LineError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    pub code: String,
    pub message: String,
}

impl FindingLine {
    /// The line for `acl`, if it has a finding.
    pub fn of(bucket: &str, acl: &ObjectAcl) -> Option<Self> {
        let (findings, grants) = classify(acl);
        Self::classified(&Place::bucket(bucket), acl, findings, grants, true)
    }

    /// The same from what [`classify`] gave for `acl`, and whether any of it takes effect.
    pub fn classified(
        place: &Place<'_>,
        acl: &ObjectAcl,
        findings: Vec<FindingKind>,
        grants: Vec<&Grant>,
        effective: bool,
    ) -> Option<Self> {
        (!findings.is_empty()).then(|| FindingLine {
            account_id: place.account_id.map(str::to_owned),
            bucket: place.bucket.to_owned(),
            region: place.region.map(str::to_owned),
            key: acl.key.clone(),
            version_id: acl.version_id.clone(),
            owner: acl.owner_id.clone(),
            findings,
            effective,
            neutralised: Vec::new(),
            grants: grants.into_iter().cloned().collect(),
            first_seen: None,
            suppressed: None,
        })
    }
}

impl FailureLine {
    pub fn of(place: &Place<'_>, failure: &ObjectFailure) -> Self {
        FailureLine {
            account_id: place.account_id.map(str::to_owned),
            bucket: place.bucket.to_owned(),
            region: place.region.map(str::to_owned),
            key: failure.key.clone(),
            version_id: failure.version_id.clone(),
            error: LineError {
                code: failure.code.clone(),
                message: failure.message.clone(),
            },
        }
    }
}

/// A line of a findings file, either kind (read back with `crate::ocsf::parse_line`, which
/// takes either format).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AnyLine {
    Finding(Box<FindingLine>),
    Failure(Box<FailureLine>),
}

/// Where a run's findings went: the report's `findings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingsWritten {
    /// The findings file (`s3://…/findings.jsonl`, or a local path).
    pub uri: String,
    /// Lines naming an object with findings.
    pub objects: usize,
    /// Lines naming an object whose ACL could not be fetched.
    pub failures: usize,
}

/// A run's folder under a findings location: `<base><bucket>/<yyyy>/<mm>/<dd>/<run id>/`,
/// so that a date-partitioned table (Athena, Glue) reads it as it is.
pub fn run_folder(base: &S3Location, bucket: &str, date: (i32, u8, u8), run_id: &str) -> S3Location {
    let (year, month, day) = date;
    base.join(&format!("{bucket}/{year:04}/{month:02}/{day:02}/{run_id}/"))
}

/// Today (UTC) as `yyyy-mm-dd`: a new finding's `first_seen`, and the day a suppression's
/// `expires` is compared with.
pub fn utc_today() -> String {
    let (year, month, day) = utc_date(std::time::SystemTime::now());
    format!("{year:04}-{month:02}-{day:02}")
}

/// The UTC calendar date of `time` (proleptic Gregorian), as a run's folder names it.
pub fn utc_date(time: std::time::SystemTime) -> (i32, u8, u8) {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
    // Howard Hinnant's days-to-civil algorithm.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).unwrap_or(i32::MAX),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

pub const FINDINGS_FILE: &str = "findings.jsonl";
pub const REPORT_FILE: &str = "report.json";

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(grants: &[(Grantee, &str)]) -> ObjectAcl {
        ObjectAcl {
            key: "k".to_owned(),
            version_id: None,
            owner_id: Some("owner".to_owned()),
            grants: grants
                .iter()
                .map(|(grantee, permission)| Grant {
                    grantee: grantee.clone(),
                    permission: (*permission).to_owned(),
                })
                .collect(),
        }
    }

    fn group(uri: &str) -> Grantee {
        Grantee::Group { uri: uri.to_owned() }
    }

    fn user(id: &str) -> Grantee {
        Grantee::CanonicalUser { id: id.to_owned() }
    }

    #[test]
    fn full_control_to_all_users_is_every_public_kind() {
        let public = acl(&[(user("owner"), "FULL_CONTROL"), (group(ALL_USERS_URI), "FULL_CONTROL")]);
        let (kinds, grants) = classify(&public);
        assert_eq!(
            kinds,
            [
                FindingKind::PublicRead,
                FindingKind::PublicReadAcp,
                FindingKind::PublicWriteAcp
            ]
        );
        assert_eq!(grants.len(), 1, "the owner's own grant causes nothing");
    }

    #[test]
    fn each_permission_maps_to_its_own_kind() {
        let cases = [
            (ALL_USERS_URI, "READ", FindingKind::PublicRead),
            (ALL_USERS_URI, "READ_ACP", FindingKind::PublicReadAcp),
            (ALL_USERS_URI, "WRITE_ACP", FindingKind::PublicWriteAcp),
            (AUTHENTICATED_USERS_URI, "READ", FindingKind::AuthenticatedRead),
            (AUTHENTICATED_USERS_URI, "READ_ACP", FindingKind::AuthenticatedReadAcp),
            (AUTHENTICATED_USERS_URI, "WRITE_ACP", FindingKind::AuthenticatedWriteAcp),
        ];
        for (uri, permission, kind) in cases {
            assert_eq!(
                classify(&acl(&[(group(uri), permission)])).0,
                [kind],
                "{uri} {permission}"
            );
        }
    }

    #[test]
    fn another_account_s_grant_is_a_finding_and_a_private_acl_is_none() {
        assert_eq!(
            classify(&acl(&[(user("partner"), "READ")])).0,
            [FindingKind::OtherAccountGrant]
        );
        assert_eq!(FindingLine::of("b", &acl(&[(user("owner"), "FULL_CONTROL")])), None);
    }

    #[test]
    fn grants_and_owners_are_judged_against_the_bucket_owner() {
        let by_partner = ObjectAcl {
            owner_id: Some("partner".to_owned()),
            ..acl(&[(user("partner"), "FULL_CONTROL")])
        };
        assert_eq!(classify(&by_partner).0, [], "against its own owner: clean");
        assert_eq!(
            classify_in(&by_partner, Some("owner")).0,
            [FindingKind::OtherAccountGrant, FindingKind::ForeignOwner]
        );
        assert_eq!(
            classify_in(&acl(&[(user("owner"), "FULL_CONTROL")]), Some("owner")).0,
            []
        );
    }

    #[test]
    fn a_finding_line_has_the_documented_fields() {
        let line = FindingLine::of("b", &acl(&[(group(ALL_USERS_URI), "READ")])).unwrap();
        let json: serde_json::Value = serde_json::to_value(&line).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "account_id": null, "bucket": "b", "region": null, "key": "k", "version_id": null, "owner": "owner",
                "findings": ["public_read"], "effective": true,
                "grants": [{"grantee": {"type": "group", "uri": ALL_USERS_URI}, "permission": "READ"}]
            })
        );
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        let at = |secs: u64| utc_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), (1970, 1, 1));
        assert_eq!(at(951_782_400), (2000, 2, 29));
        assert_eq!(at(1_796_169_599), (2026, 12, 1));
        assert_eq!(at(1_796_169_600), (2026, 12, 2));
    }

    #[test]
    fn a_run_s_folder_is_partitioned_by_bucket_and_date() {
        let base: S3Location = "s3://findings/acl-audit".parse().unwrap();
        assert_eq!(
            run_folder(&base, "audited", (2026, 3, 7), "req-1").to_string(),
            "s3://findings/acl-audit/audited/2026/03/07/req-1/"
        );
        let bare: S3Location = "s3://findings".parse().unwrap();
        assert_eq!(run_folder(&bare, "a", (2026, 12, 2), "r").prefix, "a/2026/12/02/r/");
    }
}
