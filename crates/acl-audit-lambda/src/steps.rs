//! The state machine's steps that are not audits (docs/scale-out.md, "The state machine"):
//! the plan cuts the bucket, or an S3 Inventory report of it, or every bucket of a sweep where
//! ACLs apply, into parts and writes them as the first pass's parts file, which the Map reads
//! (ItemReader, JSON), each part naming its own folder for its report; after each pass the
//! collect step reads those reports back ([`crate::map_run`]) and hands the parts that stopped
//! at their deadline on to a next pass, until a pass leaves none. At most `per_bucket` parts
//! of one bucket go into a pass; the rest are held back for a later one. Each step's reply is
//! the [`Pass`] the state machine carries on.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use acl_audit::Resume;
use acl_audit::model::S3Location;
use acl_audit::organization::assume_role;
use acl_audit::parts::{self, MAX_PART_BYTES};
use acl_audit::s3::client::with_credentials;
use acl_audit::s3::read::read_object_if_any;
use acl_audit::s3::region::RegionalClients;
use acl_audit::s3::upload::{Artifact, put_object};
use acl_audit::sweep::{BucketState, list_error};
use acl_audit::{StrategyKind, Target};
use aws_sdk_s3::Client;
use lambda_runtime::Context;

use crate::account_sweep::{How, sweep};
use crate::clients::Clients;
use crate::config::Config;
use crate::error::{HandlerError, StepError};
use crate::event::{AuditScope, CollectRequest, ItemsFile, PartAccount, PartEvent, Pass, PlanRequest, Request};
use crate::job::{MemberRole, RequestError, SweepJob, check_role_name, target};
use crate::map_run::{part_folder, pass_file, read_pass};
use crate::outcome::SweepOutcome;

/// Passes a run may take before it is stopped as going nowhere: each lasts about one
/// invocation's timeout, so this is days.
pub const MAX_PASSES: usize = 500;

/// A sweep's plan, in its parts folder: every bucket's settings and state, those to crawl
/// `not_reached` until the last step adds their parts up.
pub const SWEEP_PLAN: &str = "sweep.json";

/// A part, and the account its bucket is in (a sweep's).
type Part = (Resume, Option<PartAccount>);

/// The plan step: the run's parts, written as pass 0's file.
pub async fn plan(
    kind: StrategyKind,
    clients: &Clients,
    config: &Config,
    context: &Context,
    request: PlanRequest,
) -> Result<Pass, HandlerError> {
    let folder = parts_folder(&request.folder)?;
    match request.scope.unwrap_or_default() {
        AuditScope::Bucket => plan_bucket(&clients.s3, config, folder, request).await,
        scope => plan_sweep(kind, clients, config, context, scope, folder, request).await,
    }
}

/// One bucket's (or its inventory report's) parts.
async fn plan_bucket(
    client: &Client,
    config: &Config,
    folder: S3Location,
    request: PlanRequest,
) -> Result<Pass, HandlerError> {
    let PlanRequest {
        bucket,
        prefix,
        inventory,
        include_versions,
        parts: most,
        include,
        exclude,
        max_concurrency,
        ..
    } = request;
    if include.is_some() || exclude.is_some() {
        return Err(RequestError::InvalidEvent(
            "plan.include and plan.exclude are a sweep's: add \"scope\": \"account\" or \"organization\"".to_owned(),
        )
        .into());
    }
    let blank_to_none = |value: Option<String>| value.filter(|value| !value.trim().is_empty());
    let target = target(
        config,
        Request {
            bucket: blank_to_none(bucket),
            prefix: prefix.filter(|prefix| !prefix.is_empty()),
            include_versions,
            ..Request::default()
        },
    )?;
    let target = acl_audit::Target {
        include_versions: include_versions.unwrap_or(config.include_versions),
        ..target
    };
    let clients = RegionalClients::new(client.clone());
    let located = clients.for_bucket(&target.bucket).await?;
    let tokens = match blank_to_none(inventory) {
        Some(inventory) => {
            let named = inventory.parse::<S3Location>().map_err(|err| {
                RequestError::InvalidEvent(format!(
                    "plan.inventory: {err}: give s3://…/manifest.json or s3://…/<source bucket>/<configuration id>/"
                ))
            })?;
            let manifest = if named.prefix.ends_with(".json") {
                named
            } else {
                acl_audit::s3::inventory::newest_manifest(&located.client, &named)
                    .await
                    .map_err(HandlerError::Inventory)?
            };
            tracing::info!(manifest = %manifest, "parts: one per file of the inventory report");
            parts::plan_inventory(&located.client, &manifest, &target.bucket)
                .await
                .map_err(HandlerError::Inventory)?
        }
        None => parts::plan_listing(&located.client, &target, most.max(1)).await?,
    };
    let pass = Pass {
        bucket: target.bucket.clone(),
        folder: folder.to_string(),
        pass: 0,
        count: 0,
        items: ItemsFile {
            bucket: folder.bucket.clone(),
            key: String::new(),
        },
        scope: AuditScope::Bucket,
        // One bucket's parts at once are the Map's MaxConcurrency.
        per_bucket: None,
        max_concurrency,
        latest: config
            .findings
            .as_ref()
            .map(|base| crate::compare_runs::latest_of_target(base, &target).to_string()),
    };
    let parts = tokens.into_iter().map(|token| (token, None)).collect();
    write_pass(client, &folder, pass, parts, Vec::new()).await
}

/// A sweep's parts: every bucket's settings read as an invocation's sweep reads them, none
/// crawled (`sweep.json`), then each bucket where ACLs apply cut into at most
/// `parts_per_bucket` parts, in its account (through the member role there).
async fn plan_sweep(
    kind: StrategyKind,
    clients: &Clients,
    config: &Config,
    context: &Context,
    scope: AuditScope,
    folder: S3Location,
    request: PlanRequest,
) -> Result<Pass, HandlerError> {
    let PlanRequest {
        bucket,
        prefix,
        inventory,
        include_versions,
        parts,
        include,
        exclude,
        role_name,
        parts_per_bucket,
        max_concurrency,
        ..
    } = request;
    let given = |value: &Option<String>| value.as_deref().is_some_and(|value| !value.trim().is_empty());
    let refused = [
        ("prefix", given(&prefix)),
        ("inventory", given(&inventory)),
        ("include_versions", include_versions == Some(true)),
        // The definition passes the stack's BucketName whatever the scope: that one is not a
        // request to audit it alone.
        ("bucket", given(&bucket) && bucket != config.bucket),
    ];
    if let Some((field, _)) = refused.iter().find(|(_, given)| *given) {
        return Err(RequestError::InvalidEvent(format!(
            "plan.{field}: a sweep's plan audits every bucket of the account: drop it, or drop the scope"
        ))
        .into());
    }
    let organization = match scope {
        AuditScope::Organization => {
            let name = role_name
                .filter(|name| !name.trim().is_empty())
                .or_else(|| config.member_role_name.clone())
                .ok_or_else(|| {
                    RequestError::InvalidEvent(
                        "plan.role_name: an organization's plan needs the member role: pass it or set MEMBER_ROLE_NAME"
                            .to_owned(),
                    )
                })?;
            check_role_name(&name)?;
            Some(MemberRole {
                name,
                external_id: config.member_role_external_id.clone(),
            })
        }
        _ => None,
    };
    let job = SweepJob {
        organization,
        include: include.unwrap_or_default(),
        exclude: exclude.unwrap_or_default(),
        fetch_when_acls_disabled: config.audit_when_acls_disabled,
    };
    let how = How {
        stop_at: None,
        findings: None,
        resume: None,
        settings_only: true,
        suppressions: None,
        baseline: None,
    };
    // Boxed: unboxed, this and the last step's sweep (`add_up`) add about 5 KiB to every
    // invocation's future, which a debug build's test thread holds whole (`handler`'s
    // `an_invocation_s_future_stays_small`).
    let (mut outcome, _) = Box::pin(sweep(kind, clients, config, context, job, how)).await?;
    let per_bucket = parts_per_bucket.unwrap_or(parts).max(1);
    let mut planned = Vec::new();
    for (account_id, role_arn, report) in outcome.accounts_mut() {
        let client = match &role_arn {
            None => clients.s3.clone(),
            Some(role_arn) => member_s3(clients, config, role_arn).await?,
        };
        let account = account_id.map(|account_id| PartAccount {
            account_id,
            role_arn: role_arn.clone(),
        });
        let regional = RegionalClients::new(client);
        for bucket in report
            .buckets
            .iter_mut()
            .filter(|bucket| bucket.state == BucketState::NotReached)
        {
            let located = match &bucket.region {
                Some(region) => Ok(regional.client_in(region)),
                None => regional.for_bucket(&bucket.bucket).await.map(|located| located.client),
            };
            let cut = match located {
                Ok(client) => parts::plan_listing(&client, &Target::bucket(&bucket.bucket), per_bucket).await,
                Err(err) => Err(err),
            };
            match cut {
                Ok(tokens) => planned.extend(tokens.into_iter().map(|token| (token, account.clone()))),
                // A bucket that cannot be listed is the sweep's line, as in an invocation's sweep.
                Err(err) => {
                    bucket.state = BucketState::Failed;
                    bucket.error = Some(list_error(&err));
                }
            }
        }
    }
    outcome.retotal();
    let plan = folder.join(SWEEP_PLAN);
    // Plain data with string keys: serialising cannot fail.
    let body = serde_json::to_vec(&outcome).unwrap_or_default();
    put_object(&clients.s3, &plan, "application/json", body)
        .await
        .map_err(|err| HandlerError::NotWritten(err.of(Artifact::Parts)))?;
    tracing::info!(
        buckets = outcome.totals().buckets,
        to_crawl = outcome.totals().not_reached,
        parts = planned.len(),
        "sweep planned"
    );
    let pass = Pass {
        bucket: String::new(),
        folder: folder.to_string(),
        pass: 0,
        count: 0,
        items: ItemsFile {
            bucket: folder.bucket.clone(),
            key: String::new(),
        },
        scope,
        per_bucket: Some(per_bucket),
        max_concurrency,
        latest: None,
    };
    write_pass(&clients.s3, &folder, pass, planned, Vec::new()).await
}

/// S3 in a member account, through its role.
async fn member_s3(clients: &Clients, config: &Config, role_arn: &str) -> Result<Client, HandlerError> {
    let Some((_, sts)) = &clients.organization else {
        return Err(HandlerError::RoleNotAssumed("no STS client configured".to_owned()));
    };
    let credentials = assume_role(sts, role_arn, config.member_role_external_id.as_deref())
        .await
        .map_err(HandlerError::RoleNotAssumed)?;
    Ok(with_credentials(&clients.s3, credentials))
}

/// A sweep's plan, as its plan step wrote it.
pub async fn read_sweep_plan(client: &Client, folder: &S3Location) -> Result<SweepOutcome, String> {
    let (bucket, key) = (&folder.bucket, format!("{}{SWEEP_PLAN}", folder.prefix));
    let bytes = read_object_if_any(client, bucket, &key)
        .await?
        .ok_or_else(|| format!("s3://{bucket}/{key} does not exist: the plan step writes it"))?;
    serde_json::from_slice(&bytes).map_err(|err| format!("s3://{bucket}/{key} is not a sweep's plan: {err}"))
}

/// The collect step: the parts of the pass just run that stopped at their deadline, cut again
/// ([`parts::split`]), and the parts held back from it, as the next pass's file; a pass of 0
/// parts when none are left. A part that left no report failed: it is not handed on (the last
/// step counts its keys as failures).
pub async fn collect(client: &Client, request: CollectRequest) -> Result<Pass, HandlerError> {
    let CollectRequest { pass } = request;
    let folder = parts_folder(&pass.folder)?;
    let mut parts = read_held(client, &folder, pass.pass).await?;
    // Parts held back have not run yet: the run moves on with them.
    let mut moved = !parts.is_empty();
    let mut reported = 0;
    for record in read_pass(client, &folder, pass.pass)
        .await
        .map_err(HandlerError::MapRun)?
    {
        let Some(mut report) = record.report else { continue };
        reported += 1;
        let listed = report.objects_listed + report.delete_markers;
        match report.hand_on() {
            Some(token) => {
                moved |= listed > 0;
                let account = record.event.account;
                parts.extend(
                    parts::split(token, MAX_PART_BYTES)
                        .into_iter()
                        .map(|token| (token, account.clone())),
                );
            }
            None => moved = true,
        }
    }
    moved |= reported == 0;
    // The pass comes in the event: saturating, so that a forged one cannot wrap past the guard.
    let next = pass.pass.saturating_add(1);
    if !parts.is_empty() && !moved {
        return Err(StepError::NoProgress { pass: pass.pass }.into());
    }
    if !parts.is_empty() && next >= MAX_PASSES {
        return Err(StepError::TooManyPasses { passes: MAX_PASSES }.into());
    }
    let done = Pass { pass: next, ..pass };
    if parts.is_empty() {
        return Ok(Pass { count: 0, ..done });
    }
    let (now, held) = hold_back(parts, done.per_bucket);
    tracing::info!(
        pass = next,
        parts = now.len(),
        held_back = held.len(),
        "parts stopped at their deadline go on in a next pass"
    );
    write_pass(client, &folder, done, now, held).await
}

/// At most `per_bucket` parts of each bucket (of each account) for the pass, in order; the
/// rest held back.
fn hold_back(parts: Vec<Part>, per_bucket: Option<usize>) -> (Vec<Part>, Vec<Part>) {
    let Some(most) = per_bucket else {
        return (parts, Vec::new());
    };
    let mut taken: BTreeMap<(Option<String>, String), usize> = BTreeMap::new();
    parts.into_iter().partition(|part| {
        let count = taken.entry(bucket_of(part)).or_default();
        *count += 1;
        *count <= most
    })
}

/// A part's bucket, and the account it is in (a sweep's).
fn bucket_of((token, account): &Part) -> (Option<String>, String) {
    (account.as_ref().map(|a| a.account_id.clone()), token.bucket.clone())
}

/// For each part, how many parts of its bucket (of its account) the Map may run at once: as
/// many as the pass holds, at most `max_concurrency`. Their `join-all` limits share one
/// invocation's, as S3's request rate per prefix is theirs together.
fn parts_at_once(parts: &[Part], max_concurrency: Option<NonZeroUsize>) -> Vec<NonZeroUsize> {
    let mut per_bucket: BTreeMap<(Option<String>, String), usize> = BTreeMap::new();
    for part in parts {
        *per_bucket.entry(bucket_of(part)).or_default() += 1;
    }
    let most = max_concurrency.map_or(usize::MAX, NonZeroUsize::get);
    parts
        .iter()
        .map(|part| {
            let in_pass = per_bucket.get(&bucket_of(part)).copied().unwrap_or(1);
            NonZeroUsize::new(in_pass.min(most)).unwrap_or(NonZeroUsize::MIN)
        })
        .collect()
}

/// The parts held back from pass `pass` (`held-<pass>.json`), none when there is no file.
async fn read_held(client: &Client, folder: &S3Location, pass: usize) -> Result<Vec<Part>, HandlerError> {
    let file = held_file(folder, pass);
    let read_error = |detail: String| {
        HandlerError::MapRun(crate::map_run::SummarizeError::Read {
            bucket: file.bucket.clone(),
            key: file.prefix.clone(),
            detail,
        })
    };
    let Some(bytes) = read_object_if_any(client, &file.bucket, &file.prefix)
        .await
        .map_err(read_error)?
    else {
        return Ok(Vec::new());
    };
    let events: Vec<PartEvent> = serde_json::from_slice(&bytes).map_err(|err| {
        HandlerError::MapRun(crate::map_run::SummarizeError::Malformed {
            bucket: file.bucket.clone(),
            key: file.prefix.clone(),
            reason: err.to_string(),
        })
    })?;
    Ok(events.into_iter().map(|event| (event.resume, event.account)).collect())
}

fn held_file(folder: &S3Location, pass: usize) -> S3Location {
    folder.join(&format!("held-{pass}.json"))
}

pub(crate) fn parts_folder(folder: &str) -> Result<S3Location, RequestError> {
    let location = folder
        .parse::<S3Location>()
        .map_err(|err| RequestError::InvalidEvent(format!("folder: {err}")))?;
    Ok(match location.prefix.as_str() {
        "" => location,
        prefix if prefix.ends_with('/') => location,
        prefix => S3Location {
            prefix: format!("{prefix}/"),
            bucket: location.bucket,
        },
    })
}

/// Writes `parts` as `pass`'s parts file (`pass-<n>.json`, a JSON array of the workers'
/// events, each naming its own folder) in `folder`, and `held` (parts the per-bucket limit
/// keeps out of it) as `held-<n>.json` for the next collect step, after holding back what
/// the limit keeps out of `parts` too.
async fn write_pass(
    client: &Client,
    folder: &S3Location,
    pass: Pass,
    parts: Vec<Part>,
    mut held: Vec<Part>,
) -> Result<Pass, HandlerError> {
    let (parts, more) = hold_back(parts, pass.per_bucket);
    held.extend(more);
    let file = pass_file(folder, pass.pass);
    let at_once = parts_at_once(&parts, pass.max_concurrency);
    let events: Vec<PartEvent> = parts
        .into_iter()
        .zip(at_once)
        .enumerate()
        .map(|(index, ((token, account), at_once))| {
            let folder = part_folder(folder, pass.pass, index).to_string();
            PartEvent::new(token, folder, account, (at_once.get() > 1).then_some(at_once))
        })
        .collect();
    if !held.is_empty() {
        let held: Vec<PartEvent> = held
            .into_iter()
            .map(|(token, account)| PartEvent::new(token, String::new(), account, None))
            .collect();
        // Plain data with string keys: serialising cannot fail.
        let body = serde_json::to_vec(&held).unwrap_or_default();
        put_object(client, &held_file(folder, pass.pass), "application/json", body)
            .await
            .map_err(|err| HandlerError::NotWritten(err.of(Artifact::Parts)))?;
    }
    // Plain data with string keys: serialising cannot fail.
    let body = serde_json::to_vec(&events).unwrap_or_default();
    put_object(client, &file, "application/json", body)
        .await
        .map_err(|err| HandlerError::NotWritten(err.of(Artifact::Parts)))?;
    Ok(Pass {
        count: events.len(),
        items: ItemsFile {
            bucket: file.bucket,
            key: file.prefix,
        },
        ..pass
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(bucket: &str, account: Option<&str>, n: usize) -> Part {
        let token = Resume::keys_only(bucket.to_owned(), vec![format!("k{n}")]);
        let account = account.map(|id| PartAccount {
            account_id: id.to_owned(),
            role_arn: None,
        });
        (token, account)
    }

    /// Three parts of bucket a and two of b in account 1, one of a in account 2.
    fn parts_of_two_buckets_in_two_accounts() -> Vec<Part> {
        vec![
            part("a", Some("1"), 0),
            part("a", Some("1"), 1),
            part("a", Some("1"), 2),
            part("a", Some("2"), 3),
            part("b", Some("1"), 4),
            part("b", Some("1"), 5),
        ]
    }

    #[test]
    fn at_most_per_bucket_parts_of_each_bucket_of_each_account_go_into_a_pass() {
        let parts = parts_of_two_buckets_in_two_accounts();
        let (now, held) = hold_back(parts.clone(), Some(2));
        let keys = |parts: &[Part]| -> Vec<String> { parts.iter().map(|(t, _)| t.keys[0].key.clone()).collect() };
        assert_eq!(keys(&now), ["k0", "k1", "k3", "k4", "k5"]);
        assert_eq!(keys(&held), ["k2"], "the third part of bucket a in account 1 waits");
        let (now, held) = hold_back(parts, None);
        assert_eq!(
            (now.len(), held.len()),
            (6, 0),
            "one bucket's run: the Map's concurrency limits it"
        );
    }

    #[test]
    fn parts_of_one_bucket_share_a_limit_among_as_many_as_the_map_runs_at_once() {
        let parts = parts_of_two_buckets_in_two_accounts();
        let at_once = |most: Option<usize>| -> Vec<usize> {
            parts_at_once(&parts, most.and_then(NonZeroUsize::new))
                .into_iter()
                .map(NonZeroUsize::get)
                .collect()
        };
        assert_eq!(at_once(None), [3, 3, 3, 1, 2, 2], "every part of a pass at once");
        assert_eq!(at_once(Some(2)), [2, 2, 2, 1, 2, 2], "no more than MaxConcurrency");
    }
}
