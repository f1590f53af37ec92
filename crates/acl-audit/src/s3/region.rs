//! Where a bucket lives. aws-sdk-s3 does not follow S3's redirect to a bucket's region, so a
//! run asks first (HeadBucket's `x-amz-bucket-region`, sent on success, on 403 and on the 301
//! itself) and audits the bucket with a client for that region.

use std::collections::HashMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use parking_lot::Mutex;

use crate::s3::error::ListError;

/// The header S3 names a bucket's region in.
const BUCKET_REGION: &str = "x-amz-bucket-region";

/// A client per region, made from one configured client (same credentials, endpoint, retries
/// and HTTP client), kept so that warm invocations reuse their connections.
pub struct RegionalClients {
    base: Client,
    by_region: Mutex<HashMap<String, Client>>,
}

/// A bucket's client and, when S3 told it, its region.
pub struct Located {
    pub client: Client,
    pub region: Option<String>,
}

impl RegionalClients {
    pub fn new(base: Client) -> Self {
        RegionalClients {
            base,
            by_region: Mutex::new(HashMap::new()),
        }
    }

    pub fn base(&self) -> &Client {
        &self.base
    }

    /// The client for `bucket`'s region. A bucket that does not exist is an error; any other
    /// failure of HeadBucket leaves the configured client, and the listing says what is wrong.
    pub async fn for_bucket(&self, bucket: &str) -> Result<Located, ListError> {
        // Boxed: an SDK request future is kilobytes, and this one's caller holds several.
        let region = match Box::pin(self.base.head_bucket().bucket(bucket).send()).await {
            Ok(output) => output.bucket_region().map(str::to_owned),
            Err(err) => {
                let region = err
                    .raw_response()
                    .and_then(|response| response.headers().get(BUCKET_REGION))
                    .map(str::to_owned);
                let status = err.raw_response().map(|response| response.status().as_u16());
                if status == Some(404) {
                    return Err(ListError::NoSuchBucket {
                        bucket: bucket.to_owned(),
                    });
                }
                region
            }
        };
        let configured = self.base.config().region().map(|r| r.as_ref().to_owned());
        let client = match &region {
            Some(region) if Some(region) != configured.as_ref() => self.client_in(region),
            _ => self.base.clone(),
        };
        Ok(Located { client, region })
    }

    /// The configured client with its region set to `region`.
    pub fn client_in(&self, region: &str) -> Client {
        self.by_region
            .lock()
            .entry(region.to_owned())
            .or_insert_with(|| {
                let config = self
                    .base
                    .config()
                    .to_builder()
                    .region(Region::new(region.to_owned()))
                    .build();
                Client::from_conf(config)
            })
            .clone()
    }
}
