//! The functions' client comes from the standard AWS environment. Its own test binary: it
//! sets process environment variables, which no other test may see.

use acl_audit::Target;
use acl_audit::acl::list_keys;
use acl_audit::client::client_from_env;
use local_s3::LocalS3;

/// Sets the environment a user exports for local-s3, then lists the seeded bucket through
/// `client_from_env`. The endpoint is named `localhost`, so only path-style addressing works:
/// virtual-host style would ask for `seeded.localhost`.
fn list_with_endpoint_variable(variable: &str) -> usize {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let s3 = runtime.block_on(LocalS3::start()).expect("a free loopback port");
    local_s3::seed_bucket(s3.store(), "seeded", 3).expect("a fresh store");
    let endpoint = format!("http://localhost:{}", s3.addr().port());
    let vars = [
        (variable, endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", s3.credentials().access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.credentials().secret_access_key.as_str()),
        ("AWS_REGION", "us-east-1"),
        // Keep the developer's own profile files out of the test.
        ("AWS_CONFIG_FILE", "/nonexistent/aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials"),
    ];
    for (name, value) in vars {
        // SAFETY: no other thread reads the environment while this runs: the runtime's
        // workers are idle and this binary holds a single test.
        unsafe { std::env::set_var(name, value) };
    }
    let listed = runtime.block_on(async {
        let client = client_from_env().await;
        list_keys(&client, &Target::bucket("seeded")).await
    });
    // SAFETY: as above.
    unsafe { std::env::remove_var(variable) };
    listed
        .expect("the bucket lists through the configured endpoint")
        .keys
        .len()
}

#[test]
fn endpoint_variables_are_honoured_with_path_style_addressing() {
    assert_eq!(list_with_endpoint_variable("AWS_ENDPOINT_URL"), 3);
    assert_eq!(list_with_endpoint_variable("AWS_ENDPOINT_URL_S3"), 3);
}
