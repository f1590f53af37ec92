//! The functions' client comes from the standard AWS environment. This binary sets process
//! environment variables, so every test in it holds `ENVIRONMENT` while it runs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use acl_audit::Target;
use acl_audit::s3::client::{AWS_CA_BUNDLE, client_from_env};
use acl_audit::s3::listing::list_keys;
use local_s3::{LocalS3, Options};

static ENVIRONMENT: Mutex<()> = Mutex::new(());

enum Trust<'a> {
    /// No AWS_CA_BUNDLE: the system's roots.
    SystemRoots,
    /// AWS_CA_BUNDLE names a file holding the CA local-s3 generated.
    EndpointCa,
    /// AWS_CA_BUNDLE names this file.
    Bundle(&'a Path),
}

fn scratch_file(name: &str, contents: &str) -> PathBuf {
    let dir = test_support::scratch!("acl-audit-client-env");
    std::fs::create_dir_all(&dir).expect("a writable temporary directory");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("a writable temporary directory");
    path
}

/// Starts local-s3 (HTTPS with `tls`), exports what a user would for it, with the endpoint
/// under `endpoint_variable` and named `localhost` (so only path-style addressing works:
/// virtual-host style would ask for `seeded.localhost`), and lists its seeded bucket through
/// `client_from_env`, as a function does.
fn list_through_env(tls: bool, endpoint_variable: &str, trust: Trust<'_>) -> Result<usize, String> {
    let _guard = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let s3 = runtime
        .block_on(LocalS3::start_with(Options {
            tls,
            ..Options::default()
        }))
        .expect("a free loopback port");
    local_s3::seed_bucket(s3.store(), "seeded", 3).expect("a fresh store");
    let scheme = if tls { "https" } else { "http" };
    let endpoint = format!("{scheme}://localhost:{}", s3.addr().port());
    let ca_bundle = match trust {
        Trust::SystemRoots => None,
        Trust::EndpointCa => Some(scratch_file("endpoint-ca.pem", s3.ca_pem().expect("a TLS endpoint"))),
        Trust::Bundle(path) => Some(path.to_owned()),
    };
    let mut vars = vec![
        (endpoint_variable, endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", s3.credentials().access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", s3.credentials().secret_access_key.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        // Keep the developer's own profile files out of the test.
        ("AWS_CONFIG_FILE", "/nonexistent/aws/config".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials".to_owned()),
    ];
    vars.extend(ca_bundle.map(|path| (AWS_CA_BUNDLE, path.display().to_string())));
    for (name, value) in &vars {
        // SAFETY: every test of this binary holds ENVIRONMENT, so no other thread reads or
        // writes the environment meanwhile.
        unsafe { std::env::set_var(name, value) };
    }
    let listed = runtime.block_on(async {
        let client = client_from_env().await.map_err(|err| err.to_string())?;
        let listing = list_keys(&client, &Target::bucket("seeded")).await;
        listing.map(|l| l.keys.len()).map_err(|err| err.to_string())
    });
    for (name, _) in &vars {
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
    }
    listed
}

#[test]
fn aws_endpoint_url_is_honoured_with_path_style_addressing() {
    assert_eq!(list_through_env(false, "AWS_ENDPOINT_URL", Trust::SystemRoots), Ok(3));
}

#[test]
fn aws_endpoint_url_s3_is_honoured_with_path_style_addressing() {
    assert_eq!(
        list_through_env(false, "AWS_ENDPOINT_URL_S3", Trust::SystemRoots),
        Ok(3)
    );
}

#[test]
fn aws_ca_bundle_makes_the_client_trust_the_endpoint_s_ca() {
    assert_eq!(list_through_env(true, "AWS_ENDPOINT_URL", Trust::EndpointCa), Ok(3));
}

#[test]
fn without_the_bundle_an_unknown_ca_is_refused_and_the_reason_shown() {
    let err = list_through_env(true, "AWS_ENDPOINT_URL", Trust::SystemRoots).unwrap_err();
    assert!(err.contains("(DispatchFailure)"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[test]
fn a_missing_bundle_file_is_named_in_the_error() {
    let err = list_through_env(
        true,
        "AWS_ENDPOINT_URL",
        Trust::Bundle(Path::new("/nonexistent/ca.pem")),
    )
    .unwrap_err();
    assert!(
        err.starts_with("cannot read the CA bundle /nonexistent/ca.pem named by AWS_CA_BUNDLE"),
        "{err}"
    );
}

#[test]
fn a_bundle_without_certificates_is_an_error_not_a_panic() {
    let garbage = scratch_file("garbage.pem", "this is not a certificate\n");
    let err = list_through_env(true, "AWS_ENDPOINT_URL", Trust::Bundle(&garbage)).unwrap_err();
    assert!(
        err.contains("named by AWS_CA_BUNDLE is not usable: it holds no PEM certificate"),
        "{err}"
    );
}

#[test]
fn a_corrupt_certificate_in_the_bundle_is_an_error_not_a_panic() {
    let corrupt = scratch_file(
        "corrupt.pem",
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    let err = list_through_env(true, "AWS_ENDPOINT_URL", Trust::Bundle(&corrupt)).unwrap_err();
    assert!(err.contains("cannot be a trust anchor"), "{err}");
}
