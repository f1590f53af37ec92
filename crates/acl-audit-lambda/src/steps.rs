//! The state machine's steps that are not audits (docs/scale-out.md, "The state machine"):
//! the plan cuts the bucket, or an S3 Inventory report of it, into parts and writes them as the
//! first pass's parts file, which the Map reads (ItemReader, JSON), each part naming its own
//! folder for its report; after each pass the collect step reads those reports back
//! ([`crate::map_run`]) and hands the parts that stopped at their deadline on to a next pass,
//! cut again, until a pass leaves none. Each step's reply is the [`Pass`] the state machine
//! carries on.

use acl_audit::Resume;
use acl_audit::model::S3Location;
use acl_audit::parts::{self, MAX_PART_BYTES};
use acl_audit::s3::region::RegionalClients;
use acl_audit::s3::upload::{Artifact, put_object};
use aws_sdk_s3::Client;

use crate::config::Config;
use crate::error::{HandlerError, StepError};
use crate::event::{CollectRequest, ItemsFile, PartEvent, Pass, PlanRequest, Request};
use crate::job::{RequestError, target};
use crate::map_run::{part_folder, pass_file, read_pass};

/// Passes a run may take before it is stopped as going nowhere: each lasts about one
/// invocation's timeout, so this is days.
pub const MAX_PASSES: usize = 500;

/// The plan step: the bucket's (or the inventory report's) parts, written as pass 0's file.
pub async fn plan(client: &Client, config: &Config, request: PlanRequest) -> Result<Pass, HandlerError> {
    let PlanRequest {
        bucket,
        prefix,
        inventory,
        include_versions,
        parts: most,
        folder,
    } = request;
    let folder = parts_folder(&folder)?;
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
    };
    write_pass(client, &folder, pass, tokens).await
}

/// The collect step: the parts of the pass just run that stopped at their deadline, cut again
/// ([`parts::split`]), as the next pass's file; a pass of 0 parts when none did. A part that
/// left no report failed: it is not handed on (the last step counts its keys as failures).
pub async fn collect(client: &Client, request: CollectRequest) -> Result<Pass, HandlerError> {
    let CollectRequest { pass } = request;
    let folder = parts_folder(&pass.folder)?;
    let reports: Vec<_> = read_pass(client, &folder, pass.pass)
        .await
        .map_err(HandlerError::MapRun)?
        .into_iter()
        .filter_map(|part| part.report)
        .collect();
    let (mut tokens, mut moved) = (Vec::new(), reports.is_empty());
    for mut report in reports {
        let listed = report.objects_listed + report.delete_markers;
        match report.hand_on() {
            Some(token) => {
                moved |= listed > 0;
                tokens.extend(parts::split(token, MAX_PART_BYTES));
            }
            None => moved = true,
        }
    }
    // The pass comes in the event: saturating, so that a forged one cannot wrap past the guard.
    let next = pass.pass.saturating_add(1);
    if !tokens.is_empty() && !moved {
        return Err(StepError::NoProgress { pass: pass.pass }.into());
    }
    if !tokens.is_empty() && next >= MAX_PASSES {
        return Err(StepError::TooManyPasses { passes: MAX_PASSES }.into());
    }
    let done = Pass { pass: next, ..pass };
    if tokens.is_empty() {
        return Ok(Pass { count: 0, ..done });
    }
    tracing::info!(
        pass = next,
        parts = tokens.len(),
        "parts stopped at their deadline go on in a next pass"
    );
    write_pass(client, &folder, done, tokens).await
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

/// Writes `tokens` as `pass`'s parts file (`pass-<n>.json`, a JSON array of the workers'
/// events, each naming its own folder) in `folder`.
async fn write_pass(
    client: &Client,
    folder: &S3Location,
    pass: Pass,
    tokens: Vec<Resume>,
) -> Result<Pass, HandlerError> {
    let file = pass_file(folder, pass.pass);
    let events: Vec<PartEvent> = tokens
        .into_iter()
        .enumerate()
        .map(|(index, token)| PartEvent::new(token, part_folder(folder, pass.pass, index).to_string()))
        .collect();
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
