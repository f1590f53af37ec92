//! The suppression file `SUPPRESSIONS_URI` names, read at the start of every audit (a small
//! file, and a team's edit applies from the next run on): a file that cannot be read or is
//! malformed fails the invocation before any ACL is fetched, naming the entry.

use std::sync::Arc;

use acl_audit::findings::utc_today;
use acl_audit::s3::read::read_object;
use acl_audit::suppressions::Suppressions;
use aws_sdk_s3::Client;

use crate::config::Config;

/// Why the suppression file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuppressionsError {
    #[error("cannot read the suppression file {uri}: {detail}")]
    NotRead { uri: String, detail: String },
    #[error(transparent)]
    Invalid(#[from] acl_audit::suppressions::SuppressionsError),
}

/// The suppressions in force today, if the function has a file.
pub async fn load(client: &Client, config: &Config) -> Result<Option<Arc<Suppressions>>, SuppressionsError> {
    let Some(file) = &config.suppressions else {
        return Ok(None);
    };
    let uri = file.to_string();
    let bytes = read_object(client, &file.bucket, &file.prefix)
        .await
        .map_err(|detail| SuppressionsError::NotRead {
            uri: uri.clone(),
            detail,
        })?;
    let suppressions = Suppressions::parse(&bytes, &uri, &utc_today())?;
    Ok(Some(Arc::new(suppressions)))
}
