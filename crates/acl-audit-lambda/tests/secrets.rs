//! Credentials never reach a function's log line, report or error message, whatever the outcome
//! and however verbose the logging (every target at TRACE, the SDK's own included).

use std::io::Write;
use std::sync::{Arc, Mutex};

use acl_audit::StrategyKind;
use acl_audit::s3::client::client_with_credentials;
use acl_audit_lambda::Clients;
use acl_audit_lambda::Config;
use aws_sdk_s3::config::Credentials;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use local_s3::{LocalS3, Options};
use serde_json::json;

const ACCESS_KEY_ID: &str = "AKIASECRETSTEST0001";
const SECRET_ACCESS_KEY: &str = "never-log-me-SECRET-9f8e7d6c5b4a39281706";
const WRONG_SECRET_ACCESS_KEY: &str = "never-log-me-WRONG-1a2b3c4d5e6f708192a3";
const SESSION_TOKEN: &str = "never-log-me-TOKEN-IQoJb3JpZ2luX2VjEDEaCXVzLWVhc3QtMSJHMEUCIQ";

/// Everything every subscriber event wrote, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn client(endpoint_url: &str, secret: &str) -> aws_sdk_s3::Client {
    let credentials = Credentials::new(ACCESS_KEY_ID, secret, Some(SESSION_TOKEN.to_owned()), None, "test");
    client_with_credentials(endpoint_url, credentials)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_key_or_session_token_in_logs_reports_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The function's side only: local-s3 runs in this process too, and s3s logs whole requests
    // at DEBUG, which is the endpoint's business, not the function's.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,s3s=off,local_s3=off"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let s3 = LocalS3::start_with(Options {
        credentials: local_s3::Credentials {
            access_key_id: ACCESS_KEY_ID.to_owned(),
            secret_access_key: SECRET_ACCESS_KEY.to_owned(),
        },
        ..Options::default()
    })
    .await
    .unwrap();
    local_s3::seed_bucket(s3.store(), "audited", 30).unwrap();
    s3.store()
        .set_acl_readable("audited", &local_s3::seed_key(4), false)
        .unwrap();
    let config = Config::from_vars(|_| None).unwrap();
    let event = |payload| LambdaEvent::new(payload, Context::default());

    let mut outputs = Vec::new();
    let right = client(s3.endpoint_url(), SECRET_ACCESS_KEY);
    let wrong = client(s3.endpoint_url(), WRONG_SECRET_ACCESS_KEY);
    for kind in StrategyKind::ALL {
        let report = acl_audit_lambda::invoke(
            kind,
            &Clients::new(&right),
            &config,
            event(json!({"bucket": "audited"})),
        )
        .await
        .into_result()
        .unwrap();
        assert_eq!((report.acls_fetched, report.failures.count), (29, 1));
        outputs.push(serde_json::to_string(&report).unwrap());
        for (client, payload) in [
            (&right, json!({"bucket": "missing"})),
            (&wrong, json!({"bucket": "audited"})),
        ] {
            let err = acl_audit_lambda::invoke(kind, &Clients::new(client), &config, event(payload))
                .await
                .into_result()
                .unwrap_err();
            outputs.push(format!("{err} {err:?}"));
            outputs.push(format!("{:?}", Diagnostic::from(err)));
        }
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("audit complete") && logs.contains("audit failed"),
        "{logs}"
    );
    assert!(logs.lines().count() > 100, "TRACE logging should be verbose: {logs}");
    for secret in [SECRET_ACCESS_KEY, WRONG_SECRET_ACCESS_KEY, SESSION_TOKEN] {
        let leaks: Vec<String> = logs
            .lines()
            .filter(|line| line.contains(secret))
            .map(|line| line.replace(secret, "<SECRET>").chars().take(300).collect())
            .collect();
        assert!(leaks.is_empty(), "{} log lines hold a secret: {leaks:#?}", leaks.len());
        for output in &outputs {
            assert!(!output.contains(secret), "a secret in {output}");
        }
    }
}
