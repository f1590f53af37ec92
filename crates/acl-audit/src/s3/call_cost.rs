//! What aws-sdk-s3 redoes on every call and a run need not: through the SDK's public API, an
//! endpoint resolver and an interceptor (docs/benchmark.md, "Where a call's instructions go").
//!
//! **Endpoints, once per bucket.** aws-sdk-s3 runs its endpoint rules for every request (twice:
//! for the endpoint and for the auth schemes it names). Its resolver keeps the last answer,
//! but keyed on all the parameters, the object's key among them, so a run of GetObjectAcl
//! calls (a new key each) never hits it. The rules do not read the key (it is among the
//! parameters for S3 Express and object-lambda operations; `key_does_not_change_the_endpoint`
//! checks this against the SDK in use), so the endpoint of one bucket, region and set of
//! flags is the same for every key: this resolver keeps it.
//!
//! **A fixed user agent.** The SDK's user-agent interceptor builds its header anew for every
//! request, reading the environment and formatting the SDK's feature metrics; the client sends
//! [`USER_AGENT`] instead, built at compile time.

use std::collections::HashMap;
use std::sync::Arc;

use aws_runtime::user_agent::UserAgentInterceptor;
use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sdk_s3::config::interceptors::{BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::endpoint::EndpointFuture;
use aws_smithy_runtime_api::client::interceptors::disable_interceptor;
use aws_smithy_types::endpoint::Endpoint;
use parking_lot::RwLock;

/// The parameters an endpoint depends on: all but the key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inputs {
    bucket: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    prefix: Option<String>,
    copy_source: Option<String>,
    flags: [Option<bool>; 11],
}

fn flags(params: &Params) -> [Option<bool>; 11] {
    [
        params.use_fips(),
        params.use_dual_stack(),
        params.force_path_style(),
        params.accelerate(),
        params.use_global_endpoint(),
        params.use_object_lambda_endpoint(),
        params.disable_access_points(),
        params.disable_multi_region_access_points(),
        params.use_arn_region(),
        params.use_s3_express_control_endpoint(),
        params.disable_s3_express_session_auth(),
    ]
}

impl Inputs {
    fn of(params: &Params) -> Self {
        let owned = |value: Option<&str>| value.map(str::to_owned);
        Inputs {
            bucket: owned(params.bucket()),
            region: owned(params.region()),
            endpoint: owned(params.endpoint()),
            prefix: owned(params.prefix()),
            copy_source: owned(params.copy_source()),
            flags: flags(params),
        }
    }

    /// Compared in place: a lookup allocates nothing.
    fn fit(&self, params: &Params) -> bool {
        self.bucket.as_deref() == params.bucket()
            && self.region.as_deref() == params.region()
            && self.endpoint.as_deref() == params.endpoint()
            && self.prefix.as_deref() == params.prefix()
            && self.copy_source.as_deref() == params.copy_source()
            && self.flags == flags(params)
    }
}

/// How many endpoints are kept: more buckets than one run audits at once; past it the store
/// starts afresh, so an organization's sweep cannot grow it without bound.
const KEPT: usize = 256;

/// The endpoints resolved, by bucket name, then by the rest of the inputs compared in place.
type Resolved = HashMap<String, Vec<(Inputs, Endpoint)>>;

/// The SDK's own rules, asked once per bucket (and region and flags).
#[derive(Debug, Default, Clone)]
pub(crate) struct OncePerBucket {
    rules: Arc<DefaultResolver>,
    resolved: Arc<RwLock<Resolved>>,
}

impl ResolveEndpoint for OncePerBucket {
    fn resolve_endpoint<'a>(&'a self, params: &'a Params) -> EndpointFuture<'a> {
        let bucket = params.bucket().unwrap_or_default();
        let known = self.resolved.read().get(bucket).and_then(|endpoints| {
            endpoints
                .iter()
                .find(|(inputs, _)| inputs.fit(params))
                .map(|(_, endpoint)| endpoint.clone())
        });
        if let Some(endpoint) = known {
            return EndpointFuture::ready(Ok(endpoint));
        }
        EndpointFuture::new(async move {
            let endpoint = self.rules.resolve_endpoint(params).await?;
            let mut resolved = self.resolved.write();
            if resolved.len() >= KEPT {
                resolved.clear();
            }
            let endpoints = resolved.entry(bucket.to_owned()).or_default();
            if endpoints.len() >= KEPT {
                endpoints.clear();
            }
            endpoints.push((Inputs::of(params), endpoint.clone()));
            Ok(endpoint)
        })
    }
}

/// The `User-Agent` every request of the client carries.
pub const USER_AGENT: &str = concat!("acl-audit/", env!("CARGO_PKG_VERSION"), " aws-sdk-rust");

/// Sends [`USER_AGENT`] in place of the SDK's per-request one.
#[derive(Debug)]
pub(crate) struct FixedUserAgent;

impl Intercept for FixedUserAgent {
    fn name(&self) -> &'static str {
        "FixedUserAgent"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(disable_interceptor::<UserAgentInterceptor>(
                "acl-audit sends a fixed user agent",
            ));
        Ok(())
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context.request_mut().headers_mut().insert("user-agent", USER_AGENT);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(bucket: &str, key: &str, endpoint: Option<&str>) -> Params {
        let mut builder = Params::builder()
            .bucket(bucket)
            .key(key)
            .region("eu-west-1")
            .use_fips(false)
            .use_dual_stack(false)
            .force_path_style(endpoint.is_some())
            .accelerate(false);
        if let Some(url) = endpoint {
            builder = builder.endpoint(url);
        }
        builder.build().expect("valid parameters")
    }

    #[tokio::test]
    async fn key_does_not_change_the_endpoint() {
        let rules = DefaultResolver::new();
        for endpoint in [None, Some("http://127.0.0.1:9000")] {
            let first = rules.resolve_endpoint(&params("bucket", "a", endpoint)).await.unwrap();
            for key in ["b/c", "arn:aws:s3:::x", "..", "%2F", "日本"] {
                let other = rules.resolve_endpoint(&params("bucket", key, endpoint)).await.unwrap();
                assert_eq!(first, other, "key {key:?} at {endpoint:?}");
            }
        }
    }

    #[tokio::test]
    async fn each_bucket_is_resolved_by_the_rules_and_kept() {
        let resolver = OncePerBucket::default();
        for bucket in ["one", "two"] {
            let expected = DefaultResolver::new()
                .resolve_endpoint(&params(bucket, "k", None))
                .await
                .unwrap();
            for key in ["k", "other"] {
                let got = resolver.resolve_endpoint(&params(bucket, key, None)).await.unwrap();
                assert_eq!(got, expected);
            }
        }
        assert_eq!(resolver.resolved.read().len(), 2);
        let path_style = params("one", "k", Some("http://127.0.0.1:9000"));
        let got = resolver.resolve_endpoint(&path_style).await.unwrap();
        assert_eq!(got, DefaultResolver::new().resolve_endpoint(&path_style).await.unwrap());
        assert_eq!(
            resolver.resolved.read()["one"].len(),
            2,
            "one bucket, two sets of inputs"
        );
        let bad_region = Params::builder()
            .bucket("one")
            .region("not a region!")
            .build()
            .expect("valid parameters");
        assert!(
            resolver.resolve_endpoint(&bad_region).await.is_err(),
            "the rules' errors come through"
        );
    }
}
