//! `SECURITY_HUB=true`: after a run has written its findings (and its changes), they go to AWS
//! Security Hub (`acl_audit::security_hub`), read back from the run's files. A finding Security
//! Hub refuses, after retries, fails the invocation (`FindingsNotImported`), as a file not
//! written does.

use std::time::SystemTime;

use acl_audit::changes::{ChangeCounts, LineSource};
use acl_audit::findings::FindingsWritten;
use acl_audit::s3::upload::{Artifact, NotWritten};
use acl_audit::security_hub::{ImportError, Imported, Product, import};

use crate::clients::Clients;
use crate::config::Config;

/// The account's default product in the function's own partition, region and account (its ARN:
/// `arn:<partition>:lambda:<region>:<account>:function:<name>`).
pub fn product_of(function_arn: &str) -> Option<Product> {
    let mut parts = function_arn.split(':');
    let (_, partition, _, region, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (!partition.is_empty() && !region.is_empty() && crate::clients::account_of(function_arn).is_some()).then(|| {
        Product {
            account_id: account.to_owned(),
            region: region.to_owned(),
            partition: partition.to_owned(),
        }
    })
}

/// Sends the run's findings file and resolved changes when `SECURITY_HUB` is on.
pub async fn send(
    clients: &Clients,
    config: &Config,
    function_arn: &str,
    findings: Option<&FindingsWritten>,
    changes: Option<&ChangeCounts>,
) -> Result<Option<Imported>, NotWritten> {
    if !config.security_hub {
        return Ok(None);
    }
    let not_imported = |uri: String, code: &str, message: String| NotWritten {
        what: Artifact::SecurityHub,
        uri,
        code: code.to_owned(),
        message,
    };
    let Some(product) = product_of(function_arn) else {
        return Err(not_imported(
            function_arn.to_owned(),
            "NoProduct",
            "the function's ARN names no account and region to import into".to_owned(),
        ));
    };
    let (Some(client), Some(findings)) = (&clients.security_hub, findings) else {
        return Err(not_imported(
            product.arn(),
            "NotSent",
            "no Security Hub client, or no findings file written (FINDINGS_URI)".to_owned(),
        ));
    };
    let s3 = &clients.s3;
    let mut lines = LineSource::open(s3, &findings.uri)
        .map_err(|err| not_imported(product.arn(), "FindingsNotRead", err.to_string()))?;
    let mut changed = match changes {
        Some(changes) => Some(
            LineSource::open(s3, &changes.uri)
                .map_err(|err| not_imported(product.arn(), "FindingsNotRead", err.to_string()))?,
        ),
        None => None,
    };
    // Boxed: ASFF findings are kilobytes each, too large to sit in the handler's future.
    let imported = Box::pin(import(
        client,
        &product,
        &mut lines,
        changed.as_mut(),
        SystemTime::now(),
    ))
    .await
    .map_err(|err| match err {
        ImportError::Read(err) => not_imported(product.arn(), "FindingsNotRead", err.to_string()),
        ImportError::Call {
            product_arn, message, ..
        } => not_imported(product_arn, "BatchImportFindingsFailed", message),
    })?;
    tracing::info!(
        product = %imported.product_arn,
        active = imported.active,
        archived = imported.archived,
        failed = imported.failed.len(),
        "findings sent to Security Hub"
    );
    if let Some(first) = imported.failed.first() {
        return Err(not_imported(
            imported.product_arn.clone(),
            &first.code,
            format!(
                "Security Hub refused {} findings after retries; the first, {}: {}",
                imported.failed.len(),
                first.id,
                first.message
            ),
        ));
    }
    Ok(Some(imported))
}
