//! An organization's sweep: Organizations ListAccounts, then for every ACTIVE account its
//! account sweep (`crate::sweep`), with the caller's own credentials in its own account and
//! with a role assumed into every other (`arn:<partition>:iam::<account>:role/<role name>`,
//! `deploy/member-role.yaml`). An account whose role cannot be assumed is reported with the
//! error and the sweep goes on; every account's findings go into one file (docs/sweeps.md).

use std::time::Instant;

use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use serde::{Deserialize, Serialize};

use crate::audit::{FindingsOutput, SharedFindings};
use crate::bucket::AccountCheck;
use crate::findings::FindingsWritten;
use crate::model::StrategyKind;
use crate::s3::client::{control_with_credentials, with_credentials};
use crate::s3::error::error_code;
use crate::s3::region::RegionalClients;
use crate::strategy::Strategy;
use crate::sweep::{OnBucket, SweepError, SweepOptions, SweepReport, SweepScope, SweepTotals, sweep_account};

/// The clients an organization's sweep starts from: the caller's.
pub struct OrganizationClients<'a> {
    pub s3: &'a Client,
    pub control: Option<&'a aws_sdk_s3control::Client>,
    pub organizations: &'a aws_sdk_organizations::Client,
    pub sts: &'a aws_sdk_sts::Client,
}

/// What an organization's sweep does besides the audit.
#[derive(Default)]
pub struct OrganizationOptions {
    /// The member role assumed in every account but the caller's own.
    pub role_name: String,
    /// The external id the member role's trust policy asks for, if any.
    pub external_id: Option<String>,
    /// Which buckets every account's sweep audits, and how.
    pub scope: SweepScope,
    /// The organization's one findings file.
    pub findings: Option<FindingsOutput>,
    /// Told `account/bucket` as each bucket's crawl starts.
    pub on_bucket: Option<OnBucket>,
    /// Where an earlier sweep of the organization stopped: accounts before its account (in
    /// account-id order) are not swept again, and that account's sweep goes on from its place.
    pub resume: Option<OrganizationPlace>,
}

/// Where an organization's sweep stopped: the first account it did not finish, and the place
/// in that account's sweep when it had begun.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationPlace {
    pub account_id: String,
    pub place: Option<crate::sweep::SweepPlace>,
}

/// What became of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Its buckets swept (each bucket's own state in its report).
    Swept,
    /// The member role could not be assumed: `error` says why.
    RoleNotAssumed,
    /// ListBuckets was refused in it.
    BucketsNotListed,
    /// Not reached before the deadline.
    NotReached,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountSweep {
    pub account_id: String,
    pub name: Option<String>,
    /// The member role assumed in it; none in the caller's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub state: AccountState,
    pub error: Option<String>,
    pub report: Option<SweepReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationReport {
    /// The caller's account: the management account or a delegated administrator.
    pub caller_account_id: Option<String>,
    pub strategy: StrategyKind,
    pub accounts: Vec<AccountSweep>,
    /// Every account's buckets added up.
    pub totals: SweepTotals,
    pub accounts_swept: usize,
    pub accounts_failed: usize,
    /// The account this sweep took up an earlier one's place in, if it did.
    #[serde(default)]
    pub resumed_at: Option<String>,
    /// Where this sweep stopped, for the next to take up: none once every account was reached.
    #[serde(default)]
    pub resume: Option<OrganizationPlace>,
    pub findings: Option<FindingsWritten>,
    /// What changed since the last completed sweep ([`crate::changes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::changes::ChangeCounts>,
    /// The findings sent to AWS Security Hub ([`crate::security_hub`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_hub: Option<crate::security_hub::Imported>,
    pub elapsed_ms: f64,
}

impl OrganizationReport {
    /// Whether this sweep audited `bucket` of `account_id` whole ([`SweepReport::covers`]); an
    /// account gone from a sweep that reached every account is covered too.
    pub fn covers(&self, account_id: Option<&str>, bucket: &str) -> bool {
        match self
            .accounts
            .iter()
            .find(|account| Some(account.account_id.as_str()) == account_id)
        {
            Some(account) => account.report.as_ref().is_some_and(|report| report.covers(bucket)),
            None => self.resumed_at.is_none() && self.resume.is_none(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrganizationError {
    /// ListAccounts (or GetCallerIdentity) was refused: there is no organization to go on.
    #[error(
        "cannot list the organization's accounts ({code}): {message} (run in the management account or a delegated administrator; the caller needs organizations:ListAccounts)"
    )]
    ListAccounts { code: String, message: String },
    #[error("the sweep ran, but its findings were not written: {error}")]
    NotWritten {
        error: crate::s3::upload::NotWritten,
        report: Box<OrganizationReport>,
    },
}

/// Sweeps every ACTIVE account of the caller's organization: see the module's documentation.
pub async fn sweep_organization(
    clients: OrganizationClients<'_>,
    strategy: Strategy,
    options: OrganizationOptions,
) -> Result<OrganizationReport, OrganizationError> {
    let started = Instant::now();
    let OrganizationOptions {
        role_name,
        external_id,
        scope,
        findings,
        on_bucket,
        resume,
    } = options;
    let refused = |code: String, message: String| OrganizationError::ListAccounts { code, message };
    let identity = Box::pin(clients.sts.get_caller_identity().send())
        .await
        .map_err(|err| refused(error_code(&err), DisplayErrorContext(&err).to_string()))?;
    let caller = identity.account().map(str::to_owned);
    let partition = identity
        .arn()
        .and_then(|arn| arn.split(':').nth(1))
        .unwrap_or("aws")
        .to_owned();
    let mut accounts = list_accounts(clients.organizations).await?;
    // In account-id order, so that a stored place means the same in the next run. Accounts
    // before the place were swept by an earlier run; a place whose account has left the
    // organization starts the sweep over.
    accounts.sort();
    let resume = resume.filter(|place| accounts.iter().any(|(id, _)| *id == place.account_id));
    let resumed_at = resume.as_ref().map(|place| place.account_id.clone());
    if let Some(place) = &resume {
        accounts.retain(|(id, _)| *id >= place.account_id);
    }
    let mut carried = resume.and_then(|place| place.place.map(|inner| (place.account_id, inner)));
    let on_bucket = on_bucket.map(std::sync::Arc::new);
    let caller_ref = caller.as_deref();
    let sweeps = |shared: Option<SharedFindings>| async move {
        let mut swept = Vec::with_capacity(accounts.len());
        for (account_id, name) in accounts {
            if scope.stop_at.is_some_and(|at| Instant::now() >= at) {
                swept.push(AccountSweep {
                    account_id,
                    name,
                    role_arn: None,
                    state: AccountState::NotReached,
                    error: None,
                    report: None,
                });
                continue;
            }
            let own = caller_ref == Some(account_id.as_str());
            let role_arn = (!own).then(|| format!("arn:{partition}:iam::{account_id}:role/{role_name}"));
            let credentials = match &role_arn {
                None => None,
                Some(role_arn) => match assume_role(clients.sts, role_arn, external_id.as_deref()).await {
                    Ok(credentials) => Some(credentials),
                    Err(error) => {
                        swept.push(AccountSweep {
                            account_id,
                            name,
                            role_arn: role_arn.clone().into(),
                            state: AccountState::RoleNotAssumed,
                            error: Some(error),
                            report: None,
                        });
                        continue;
                    }
                },
            };
            let s3 = credentials.clone().map_or_else(
                || clients.s3.clone(),
                |credentials| with_credentials(clients.s3, credentials),
            );
            let control = clients.control.map(|control| match &credentials {
                Some(credentials) => control_with_credentials(control, credentials.clone()),
                None => control.clone(),
            });
            let account = control.as_ref().map(|client| AccountCheck {
                client,
                account_id: &account_id,
            });
            let account_label = account_id.clone();
            let told = on_bucket.clone();
            let sweep_options = SweepOptions {
                scope: scope.clone(),
                findings: shared.clone().map(FindingsOutput::Shared),
                on_bucket: told.map(|told| -> OnBucket {
                    Box::new(move |bucket: &str| told(&format!("{account_label}/{bucket}")))
                }),
                account_id: Some(account_id.clone()),
                resume: carried.take_if(|(id, _)| *id == account_id).map(|(_, place)| place),
            };
            let regional = RegionalClients::new(s3);
            let (state, error, report) = match sweep_account(&regional, account, strategy, sweep_options).await {
                Ok(report) => (AccountState::Swept, None, Some(report)),
                Err(SweepError::ListBuckets { code, message }) => {
                    (AccountState::BucketsNotListed, Some(format!("{code}: {message}")), None)
                }
                // A shared file's writer is this sweep's: no account's sweep has one of its own.
                Err(SweepError::NotWritten { report, .. }) => (AccountState::Swept, None, Some(*report)),
            };
            swept.push(AccountSweep {
                account_id,
                name,
                role_arn,
                state,
                error,
                report,
            });
        }
        swept
    };
    let (accounts, written) = SharedFindings::beside(findings, sweeps).await;
    let resume = accounts
        .iter()
        .find_map(|account| match (&account.state, &account.report) {
            (AccountState::NotReached, _) => Some(OrganizationPlace {
                account_id: account.account_id.clone(),
                place: None,
            }),
            (AccountState::Swept, Some(report)) => report.resume.clone().map(|place| OrganizationPlace {
                account_id: account.account_id.clone(),
                place: Some(place),
            }),
            _ => None,
        });
    let mut totals = SweepTotals::default();
    for report in accounts.iter().filter_map(|account| account.report.as_ref()) {
        totals.add(&report.totals);
    }
    let mut report = OrganizationReport {
        caller_account_id: caller,
        strategy: strategy.kind(),
        accounts_swept: accounts.iter().filter(|a| a.state == AccountState::Swept).count(),
        accounts_failed: accounts
            .iter()
            .filter(|a| matches!(a.state, AccountState::RoleNotAssumed | AccountState::BucketsNotListed))
            .count(),
        accounts,
        totals,
        resumed_at,
        resume,
        findings: None,
        changes: None,
        security_hub: None,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    match written {
        Ok(findings) => {
            report.findings = findings;
            Ok(report)
        }
        Err(error) => Err(OrganizationError::NotWritten {
            error,
            report: Box::new(report),
        }),
    }
}

/// Every ACTIVE account of the organization, with its name.
async fn list_accounts(
    client: &aws_sdk_organizations::Client,
) -> Result<Vec<(String, Option<String>)>, OrganizationError> {
    let mut accounts = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = Box::pin(client.list_accounts().set_next_token(token.take()).send())
            .await
            .map_err(|err| OrganizationError::ListAccounts {
                code: error_code(&err),
                message: DisplayErrorContext(&err).to_string(),
            })?;
        for account in page.accounts() {
            let active = account.status().is_none_or(|status| status.as_str() == "ACTIVE");
            if let (Some(id), true) = (account.id(), active) {
                accounts.push((id.to_owned(), account.name().map(str::to_owned)));
            }
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(accounts),
        }
    }
}

/// A member account's credentials, from its role (`role_arn`, as [`AccountSweep::role_arn`]
/// names it); the error in STS's words otherwise.
pub async fn assume_role(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<Credentials, String> {
    let assumed = Box::pin(
        sts.assume_role()
            .role_arn(role_arn)
            .role_session_name("acl-audit")
            .set_external_id(external_id.map(str::to_owned))
            .send(),
    )
    .await
    .map_err(|err| {
        format!(
            "{}: cannot assume {role_arn}: {}",
            error_code(&err),
            DisplayErrorContext(&err)
        )
    })?;
    let credentials = assumed
        .credentials()
        .ok_or_else(|| format!("AssumeRole of {role_arn} answered no credentials"))?;
    Ok(Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        std::time::SystemTime::try_from(*credentials.expiration()).ok(),
        "assume-role",
    ))
}
