//! The invocation's result: what was listed, fetched and failed, and what the ACLs say.
//! Its JSON field names are a stable interface: docs/report.md has the schema.

use crate::strategy::LimitCourse;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bucket::BucketContext;
use crate::findings::{FindingKind, FindingsWritten, classify};
use crate::model::{
    ALL_USERS_URI, AUTHENTICATED_USERS_URI, AclOutcome, Grantee, ObjectAcl, ObjectFailure, ObjectRef, Resume,
    StrategyKind,
};

/// How many keys or failures a report lists by name; counts always cover all of them.
pub const SAMPLE_SIZE: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    pub strategy: StrategyKind,
    pub bucket: String,
    pub prefix: Option<String>,
    pub max_objects: Option<usize>,
    /// Every version was listed and audited (`include_versions`): the counts below are of
    /// versions, not keys.
    #[serde(default)]
    pub include_versions: bool,
    /// Keys this run took on (versions, with `include_versions`): those listed, and those a
    /// resume token handed it. Always
    /// `acls_fetched + failures.count + objects_not_fetched + objects_with_acls_disabled`.
    pub objects_listed: usize,
    pub acls_fetched: usize,
    /// Of `acls_fetched`, those read from an S3 Inventory report rather than fetched (a run
    /// whose source is an inventory: `{"inventory": …}`).
    #[serde(default)]
    pub acls_from_inventory: usize,
    pub failures: Failures,
    /// Keys listed whose ACL the run stopped before fetching; they are in `resume.keys`.
    pub objects_not_fetched: usize,
    /// Keys listed whose ACL was not fetched because the bucket's ACLs are disabled
    /// (`bucket.acls_disabled`): GetObjectAcl would give the owner's full control for each.
    #[serde(default)]
    pub objects_with_acls_disabled: usize,
    /// Delete markers listed with `include_versions`: counted apart from the objects, since a
    /// delete marker has no ACL to fetch.
    #[serde(default)]
    pub delete_markers: usize,
    /// Why the run ended before the end of the bucket (or prefix); `null` when it did not.
    pub truncated: Option<Truncation>,
    /// Where a next run picks up, when `truncated`: pass it as the event's `"resume"`.
    pub resume: Option<Resume>,
    /// Requests the SDK sent again after a throttling answer, a server error or a lost
    /// connection: every one of them eventually fetched or failed.
    pub retries: usize,
    pub audit: AclAudit,
    /// Where the findings file went, when the run wrote one.
    pub findings: Option<FindingsWritten>,
    /// The bucket's settings, read before the crawl (`null` when the caller did not read them).
    #[serde(default)]
    pub bucket_settings: Option<BucketContext>,
    /// Calls under way at once at most; `null` for no limit.
    pub concurrency_limit: Option<usize>,
    /// How `join-all`'s adaptive in-flight limit moved under the run (absent with a fixed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<LimitCourse>,
    pub timings_ms: Timings,
    /// The suppression file the run applied: its active entries and those past their end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressions: Option<crate::suppressions::SuppressionsUsed>,
    /// What changed since the last completed run of the target ([`crate::changes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::changes::ChangeCounts>,
    /// The findings sent to AWS Security Hub ([`crate::security_hub`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_hub: Option<crate::security_hub::Imported>,
}

impl AuditReport {
    /// The accounting every report keeps: each key taken on is fetched, failed or handed on.
    pub fn accounts_for_every_object(&self) -> bool {
        self.objects_listed
            == self.acls_fetched + self.failures.count + self.objects_not_fetched + self.objects_with_acls_disabled
    }

    /// A report of nothing yet, to add batch reports to: it takes the bucket and concurrency
    /// limit of the first it absorbs.
    pub fn empty(strategy: StrategyKind, bucket: impl Into<String>) -> Self {
        AuditReport {
            strategy,
            bucket: bucket.into(),
            prefix: None,
            max_objects: None,
            include_versions: false,
            objects_listed: 0,
            acls_fetched: 0,
            acls_from_inventory: 0,
            failures: Failures::default(),
            objects_not_fetched: 0,
            objects_with_acls_disabled: 0,
            delete_markers: 0,
            truncated: None,
            resume: None,
            retries: 0,
            audit: AclAudit::default(),
            findings: None,
            bucket_settings: None,
            concurrency_limit: None,
            in_flight: None,
            timings_ms: Timings::default(),
            suppressions: None,
            changes: None,
            security_hub: None,
        }
    }

    /// Takes the token of a run stopped by its deadline or `max_objects`, as a state machine
    /// run hands it on to a part of its next pass: the keys the token carries are then that
    /// part's to count, so they leave this report's `objects_listed` and
    /// `objects_not_fetched`, and the report is no longer truncated. Summed with the reports
    /// of the parts that carry on, every object counts once. `None` (and nothing changes) for
    /// a run that finished, or whose listing failed: that truncation stays to be seen.
    pub fn hand_on(&mut self) -> Option<Resume> {
        if !matches!(self.truncated, Some(Truncation::Deadline | Truncation::MaxObjects)) {
            return None;
        }
        let resume = self.resume.take()?;
        self.truncated = None;
        let carried = resume.keys.len();
        self.objects_listed = self.objects_listed.saturating_sub(carried);
        self.objects_not_fetched = self.objects_not_fetched.saturating_sub(carried);
        Some(resume)
    }

    /// Adds another run's report over the same bucket, as the batches of one Distributed Map
    /// run add up: counts and retries sum, samples keep the keys first in listing order, keys
    /// not fetched are pooled into one resume token, timings sum (time spent, not wall time).
    pub fn absorb(&mut self, other: AuditReport) {
        if self.bucket.is_empty() {
            self.bucket = other.bucket;
        }
        self.concurrency_limit = self.concurrency_limit.or(other.concurrency_limit);
        self.in_flight = self.in_flight.take().or(other.in_flight);
        self.suppressions = self.suppressions.take().or(other.suppressions);
        self.objects_listed += other.objects_listed;
        self.acls_fetched += other.acls_fetched;
        self.acls_from_inventory += other.acls_from_inventory;
        self.failures.absorb(other.failures);
        self.objects_not_fetched += other.objects_not_fetched;
        self.objects_with_acls_disabled += other.objects_with_acls_disabled;
        self.delete_markers += other.delete_markers;
        self.include_versions |= other.include_versions;
        self.bucket_settings = self.bucket_settings.take().or(other.bucket_settings);
        self.retries += other.retries;
        self.audit.absorb(other.audit);
        self.truncated = self.truncated.take().or(other.truncated);
        if let Some(theirs) = other.resume {
            match &mut self.resume {
                Some(ours) => {
                    ours.keys.extend(theirs.keys);
                    ours.keys.sort_unstable();
                }
                None => self.resume = Some(theirs),
            }
        }
        self.timings_ms = Timings {
            list: self.timings_ms.list + other.timings_ms.list,
            fetch: self.timings_ms.fetch + other.timings_ms.fetch,
            total: self.timings_ms.total + other.timings_ms.total,
        };
    }
}

/// Why a run did not cover the whole bucket (or prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Truncation {
    /// `max_objects` keys were listed and the bucket holds more.
    MaxObjects,
    /// The invocation's deadline (less the margin) came.
    Deadline,
    /// A later listing page failed after its retries; the pages before it were audited.
    ListingFailed { error: String },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failures {
    pub count: usize,
    pub by_code: BTreeMap<String, usize>,
    /// The [`SAMPLE_SIZE`] failures first in listing order.
    pub sample: Vec<ObjectFailure>,
}

impl Failures {
    pub fn add(&mut self, failure: ObjectFailure) {
        self.count += 1;
        *self.by_code.entry(failure.code.clone()).or_default() += 1;
        keep_first_in_listing_order(&mut self.sample, failure, |f| f.key.as_str());
    }

    fn absorb(&mut self, other: Failures) {
        self.count += other.count;
        for (code, count) in other.by_code {
            *self.by_code.entry(code).or_default() += count;
        }
        for failure in other.sample {
            keep_first_in_listing_order(&mut self.sample, failure, |f| f.key.as_str());
        }
    }
}

/// Keys counted in full, named up to [`SAMPLE_SIZE`]: those first in listing order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeySample {
    pub count: usize,
    pub keys: Vec<String>,
}

impl KeySample {
    fn add(&mut self, key: &str) {
        self.count += 1;
        keep_first_in_listing_order(&mut self.keys, key.to_owned(), String::as_str);
    }

    fn absorb(&mut self, other: KeySample) {
        self.count += other.count;
        for key in other.keys {
            keep_first_in_listing_order(&mut self.keys, key, String::as_str);
        }
    }
}

/// Outcomes arrive in completion order, which differs from run to run; ListObjectsV2 lists
/// keys in UTF-8 byte order, so keeping the least keys keeps the sample the same in every run
/// and with every strategy.
fn keep_first_in_listing_order<T>(sample: &mut Vec<T>, item: T, key: impl Fn(&T) -> &str) {
    if sample.len() == SAMPLE_SIZE && sample.last().is_some_and(|last| key(last) <= key(&item)) {
        return;
    }
    let at = sample.partition_point(|kept| key(kept) <= key(&item));
    sample.insert(at, item);
    sample.truncate(SAMPLE_SIZE);
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclAudit {
    /// Objects that `AllUsers` (anyone) may read: READ or FULL_CONTROL granted to the group.
    pub readable_by_all_users: KeySample,
    /// Objects that any AWS account (`AuthenticatedUsers`) may read.
    pub readable_by_authenticated_users: KeySample,
    /// Objects with a grant to a canonical user other than the object's owner.
    pub granted_to_other_accounts: KeySample,
    /// Every grant of every fetched ACL, counted by permission.
    pub grants_by_permission: BTreeMap<String, usize>,
    /// Objects with findings, in all and by kind (docs/report.md).
    pub findings: FindingCounts,
}

/// Objects counted by the findings their ACLs make: each object once per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingCounts {
    /// Objects with at least one finding.
    pub objects: usize,
    /// Objects open to anyone or to any AWS account (a public or authenticated kind) that
    /// takes effect: not neutralised by Block Public Access or disabled ACLs.
    pub exposed_objects: usize,
    /// Objects open to anyone (a public kind), taking effect.
    pub public_objects: usize,
    /// Objects whose ACL grants a public or authenticated kind that does not take effect:
    /// an exposure in the ACL only, which turning `IgnorePublicAcls` off would make real.
    #[serde(default)]
    pub neutralised_objects: usize,
    /// Objects whose every finding a suppression entry accepts: not counted as exposed or
    /// neutralised.
    #[serde(default)]
    pub suppressed_objects: usize,
    /// Every kind, zeros included.
    pub by_kind: BTreeMap<FindingKind, usize>,
}

impl Default for FindingCounts {
    fn default() -> Self {
        FindingCounts {
            objects: 0,
            exposed_objects: 0,
            public_objects: 0,
            neutralised_objects: 0,
            suppressed_objects: 0,
            by_kind: FindingKind::ALL.into_iter().map(|kind| (kind, 0)).collect(),
        }
    }
}

impl FindingCounts {
    fn add(&mut self, kinds: &[FindingKind], exposures_effective: bool, suppressed: bool) {
        if kinds.is_empty() {
            return;
        }
        self.objects += 1;
        for kind in kinds {
            *self.by_kind.entry(*kind).or_default() += 1;
        }
        if suppressed {
            self.suppressed_objects += 1;
            return;
        }
        let exposed = kinds.iter().any(|k| k.is_exposure());
        self.exposed_objects += usize::from(exposed && exposures_effective);
        self.neutralised_objects += usize::from(exposed && !exposures_effective);
        self.public_objects += usize::from(exposures_effective && kinds.iter().any(|k| k.is_public()));
    }

    fn absorb(&mut self, other: FindingCounts) {
        self.objects += other.objects;
        self.exposed_objects += other.exposed_objects;
        self.public_objects += other.public_objects;
        self.neutralised_objects += other.neutralised_objects;
        self.suppressed_objects += other.suppressed_objects;
        for (kind, count) in other.by_kind {
            *self.by_kind.entry(kind).or_default() += count;
        }
    }

    pub fn of_kind(&self, kind: FindingKind) -> usize {
        self.by_kind.get(&kind).copied().unwrap_or(0)
    }
}

impl AclAudit {
    fn absorb(&mut self, other: AclAudit) {
        self.readable_by_all_users.absorb(other.readable_by_all_users);
        self.readable_by_authenticated_users
            .absorb(other.readable_by_authenticated_users);
        self.granted_to_other_accounts.absorb(other.granted_to_other_accounts);
        for (permission, count) in other.grants_by_permission {
            *self.grants_by_permission.entry(permission).or_default() += count;
        }
        self.findings.absorb(other.findings);
    }

    fn record(&mut self, acl: &ObjectAcl, kinds: &[FindingKind], exposures_effective: bool, suppressed: bool) {
        let readable_by = |uri: &str| {
            acl.grants
                .iter()
                .any(|g| g.allows_read() && matches!(&g.grantee, Grantee::Group { uri: u } if u == uri))
        };
        if readable_by(ALL_USERS_URI) {
            self.readable_by_all_users.add(&acl.key);
        }
        if readable_by(AUTHENTICATED_USERS_URI) {
            self.readable_by_authenticated_users.add(&acl.key);
        }
        let other_account = acl.grants.iter().any(
            |g| matches!(&g.grantee, Grantee::CanonicalUser { id } if Some(id.as_str()) != acl.owner_id.as_deref()),
        );
        if other_account {
            self.granted_to_other_accounts.add(&acl.key);
        }
        for grant in &acl.grants {
            *self.grants_by_permission.entry(grant.permission.clone()).or_default() += 1;
        }
        self.findings.add(kinds, exposures_effective, suppressed);
    }
}

/// `list`: until the first page of keys arrived; `fetch`: from then to the last outcome,
/// later pages being listed meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub list: f64,
    pub fetch: f64,
    pub total: f64,
}

impl Timings {
    pub fn new(list: Duration, fetch: Duration) -> Self {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        Timings {
            list: ms(list),
            fetch: ms(fetch),
            total: ms(list + fetch),
        }
    }
}

/// The counts and audit of a run's outcomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub acls_fetched: usize,
    pub failures: Failures,
    pub audit: AclAudit,
    /// Every key (or version) not fetched: at most the pages under way when the run stopped.
    pub not_fetched: Vec<ObjectRef>,
}

impl Tally {
    pub fn add(&mut self, outcome: AclOutcome) {
        let kinds = match &outcome {
            AclOutcome::Fetched(acl) => classify(acl).0,
            _ => Vec::new(),
        };
        self.add_classified(outcome, &kinds, true, false);
    }

    /// The same, for a caller that has classified a fetched ACL already (`kinds`, from
    /// [`classify`]): the audit's recorder, which needs the kinds for its findings line too.
    /// `exposures_effective`: whether the bucket lets public and authenticated grants take
    /// effect ([`BucketContext::takes_effect`]).
    /// `suppressed`: a suppression entry accepts every one of `kinds`.
    pub fn add_classified(
        &mut self,
        outcome: AclOutcome,
        kinds: &[FindingKind],
        exposures_effective: bool,
        suppressed: bool,
    ) {
        match outcome {
            AclOutcome::Fetched(acl) => {
                self.acls_fetched += 1;
                self.audit.record(&acl, kinds, exposures_effective, suppressed);
            }
            AclOutcome::Failed(failure) => self.failures.add(failure),
            AclOutcome::NotFetched(object) => self.not_fetched.push(object),
        }
    }

    pub fn of(outcomes: impl IntoIterator<Item = AclOutcome>) -> Self {
        let mut tally = Tally::default();
        outcomes.into_iter().for_each(|outcome| tally.add(outcome));
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Grant;

    fn acl(key: &str, grants: Vec<(Grantee, &str)>) -> AclOutcome {
        AclOutcome::Fetched(ObjectAcl {
            key: key.to_owned(),
            version_id: None,
            owner_id: Some("owner".to_owned()),
            grants: grants
                .into_iter()
                .map(|(grantee, permission)| Grant {
                    grantee,
                    permission: permission.to_owned(),
                })
                .collect(),
        })
    }

    fn group(uri: &str) -> Grantee {
        Grantee::Group { uri: uri.to_owned() }
    }

    fn user(id: &str) -> Grantee {
        Grantee::CanonicalUser { id: id.to_owned() }
    }

    #[test]
    fn write_only_public_grant_is_not_public_read() {
        let tally = Tally::of([acl("k", vec![(group(ALL_USERS_URI), "WRITE")])]);
        assert_eq!(tally.audit.readable_by_all_users.count, 0);
    }

    #[test]
    fn full_control_for_authenticated_users_counts_as_readable() {
        let tally = Tally::of([acl("k", vec![(group(AUTHENTICATED_USERS_URI), "FULL_CONTROL")])]);
        assert_eq!(tally.audit.readable_by_authenticated_users.keys, ["k"]);
    }

    #[test]
    fn the_owner_s_own_grant_is_not_cross_account() {
        let tally = Tally::of([
            acl("mine", vec![(user("owner"), "FULL_CONTROL")]),
            acl(
                "shared",
                vec![(user("owner"), "FULL_CONTROL"), (user("partner"), "READ")],
            ),
        ]);
        assert_eq!(tally.audit.granted_to_other_accounts.keys, ["shared"]);
        assert_eq!(tally.audit.grants_by_permission["FULL_CONTROL"], 2);
        assert_eq!(tally.audit.grants_by_permission["READ"], 1);
    }

    #[test]
    fn samples_stop_at_the_sample_size_but_counts_do_not() {
        let outcomes: Vec<AclOutcome> = (0..SAMPLE_SIZE + 5)
            .map(|i| {
                AclOutcome::Failed(ObjectFailure {
                    key: format!("k{i}"),
                    version_id: None,
                    code: "AccessDenied".to_owned(),
                    message: String::new(),
                })
            })
            .collect();
        let tally = Tally::of(outcomes);
        assert_eq!(tally.failures.count, SAMPLE_SIZE + 5);
        assert_eq!(tally.failures.sample.len(), SAMPLE_SIZE);
        assert_eq!(tally.failures.by_code["AccessDenied"], SAMPLE_SIZE + 5);
    }

    #[test]
    fn samples_hold_the_keys_first_in_listing_order_whatever_order_they_arrive_in() {
        let keys: Vec<String> = (0..SAMPLE_SIZE * 3).map(|i| format!("k{i:03}")).collect();
        let public = |key: &String| acl(key, vec![(group(ALL_USERS_URI), "READ")]);
        let in_order = Tally::of(keys.iter().map(public));
        let reversed = Tally::of(keys.iter().rev().map(public));
        let interleaved = Tally::of(keys.iter().skip(1).step_by(2).chain(keys.iter().step_by(2)).map(public));
        assert_eq!(in_order.audit.readable_by_all_users.keys, keys[..SAMPLE_SIZE]);
        assert_eq!(reversed, in_order);
        assert_eq!(interleaved, in_order);
    }
}
