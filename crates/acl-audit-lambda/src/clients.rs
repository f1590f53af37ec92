//! The clients an invocation uses, built once per process and shared by every invocation.

use acl_audit::bucket::AccountCheck;
use aws_sdk_s3::Client;

/// S3 in the function's region, S3 Control for the account's Block Public Access, and
/// Organizations and STS for an organization's sweep.
#[derive(Debug, Clone)]
pub struct Clients {
    pub s3: Client,
    /// Without it the account's Block Public Access is not read (a report says so).
    pub control: Option<aws_sdk_s3control::Client>,
    /// Without them an organization's sweep is refused.
    pub organization: Option<(aws_sdk_organizations::Client, aws_sdk_sts::Client)>,
    /// Without it `SECURITY_HUB=true` fails the run's import (`FindingsNotImported`).
    pub security_hub: Option<aws_sdk_securityhub::Client>,
}

impl Clients {
    pub fn new(s3: &Client) -> Self {
        Clients {
            s3: s3.clone(),
            control: None,
            organization: None,
            security_hub: None,
        }
    }

    #[must_use]
    pub fn with_security_hub(mut self, security_hub: &aws_sdk_securityhub::Client) -> Self {
        self.security_hub = Some(security_hub.clone());
        self
    }

    #[must_use]
    pub fn with_organization(
        mut self,
        organizations: &aws_sdk_organizations::Client,
        sts: &aws_sdk_sts::Client,
    ) -> Self {
        self.organization = Some((organizations.clone(), sts.clone()));
        self
    }

    #[must_use]
    pub fn with_control(mut self, control: &aws_sdk_s3control::Client) -> Self {
        self.control = Some(control.clone());
        self
    }

    /// The account whose Block Public Access applies: the one the function's ARN names.
    pub fn account_check<'a>(&'a self, function_arn: &'a str) -> Option<AccountCheck<'a>> {
        self.control
            .as_ref()
            .zip(account_of(function_arn))
            .map(|(client, account_id)| AccountCheck { client, account_id })
    }
}

/// The account id in a function's ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`).
pub fn account_of(function_arn: &str) -> Option<&str> {
    let account = function_arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}
