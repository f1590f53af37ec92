//! What an invocation did ([`Invocation`]), for its metrics as well as its caller, and what it
//! answers ([`Reply`]).

use acl_audit::AuditReport;
use acl_audit::organization::OrganizationReport;
use acl_audit::s3::upload::NotWritten;
use acl_audit::sweep::{SweepReport, SweepTotals};

use crate::error::HandlerError;
use crate::event::Pass;
use crate::job::{Origin, RequestError};
use crate::record::RunReport;

/// What an invocation did: an audit whose findings were not written still has its report.
#[derive(Debug)]
pub enum Invocation {
    Audited {
        report: Box<RunReport>,
        findings_error: Option<NotWritten>,
        scope: Scope,
    },
    Failed {
        /// The bucket, when the event or the environment named one.
        bucket: Option<String>,
        error: HandlerError,
    },
    /// A plan or collect step of a state machine run of parts: no audit, a [`Pass`].
    Stepped { pass: Box<Pass> },
    /// An account's or an organization's sweep, its findings written or not.
    Swept {
        report: Box<SweepOutcome>,
        findings_error: Option<NotWritten>,
    },
}

/// A sweep's report: an account's, or an organization's (each account's inside).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum SweepOutcome {
    Account(SweepReport),
    Organization(OrganizationReport),
}

impl SweepOutcome {
    /// Every bucket it swept, added up.
    pub fn totals(&self) -> &SweepTotals {
        match self {
            SweepOutcome::Account(report) => &report.totals,
            SweepOutcome::Organization(report) => &report.totals,
        }
    }

    /// Every account's sweep it holds, mutable, with the account's id and the member role
    /// assumed in it (none: the caller's own account).
    pub fn accounts_mut(&mut self) -> Vec<(Option<String>, Option<String>, &mut SweepReport)> {
        match self {
            SweepOutcome::Account(report) => vec![(report.account_id.clone(), None, report)],
            SweepOutcome::Organization(report) => report
                .accounts
                .iter_mut()
                .filter_map(|account| {
                    let (id, role) = (account.account_id.clone(), account.role_arn.clone());
                    account.report.as_mut().map(|report| (Some(id), role, report))
                })
                .collect(),
        }
    }

    /// Where its findings file went.
    pub fn findings_uri(&self) -> Option<String> {
        self.findings_written().map(|findings| findings.uri)
    }

    pub fn findings_written(&self) -> Option<acl_audit::findings::FindingsWritten> {
        match self {
            SweepOutcome::Account(report) => report.findings.clone(),
            SweepOutcome::Organization(report) => report.findings.clone(),
        }
    }

    pub fn set_security_hub(&mut self, imported: Option<acl_audit::security_hub::Imported>) {
        match self {
            SweepOutcome::Account(report) => report.security_hub = imported,
            SweepOutcome::Organization(report) => report.security_hub = imported,
        }
    }

    /// No account failed and no place is left for a later sweep.
    pub fn is_whole(&self) -> bool {
        match self {
            SweepOutcome::Account(report) => report.resume.is_none(),
            SweepOutcome::Organization(report) => report.resume.is_none() && report.accounts_failed == 0,
        }
    }

    /// Whether it audited `bucket` of `account_id` whole (`SweepReport::covers`).
    pub fn covers(&self, account_id: Option<&str>, bucket: &str) -> bool {
        match self {
            SweepOutcome::Account(report) => report.covers(bucket),
            SweepOutcome::Organization(report) => report.covers(account_id, bucket),
        }
    }

    pub fn changes(&self) -> Option<&acl_audit::changes::ChangeCounts> {
        match self {
            SweepOutcome::Account(report) => report.changes.as_ref(),
            SweepOutcome::Organization(report) => report.changes.as_ref(),
        }
    }

    pub fn set_changes(&mut self, changes: acl_audit::changes::ChangeCounts) {
        match self {
            SweepOutcome::Account(report) => report.changes = Some(changes),
            SweepOutcome::Organization(report) => report.changes = Some(changes),
        }
    }

    /// The account the sweep ran from: it names the run's folder.
    pub fn caller_account(&self) -> Option<&str> {
        match self {
            SweepOutcome::Account(report) => report.account_id.as_deref(),
            SweepOutcome::Organization(report) => report.caller_account_id.as_deref(),
        }
    }

    /// Every account's totals added up again, after its buckets' lines changed.
    pub fn retotal(&mut self) {
        for (_, _, report) in self.accounts_mut() {
            report.totals = acl_audit::sweep::totals(&report.buckets);
        }
        if let SweepOutcome::Organization(report) = self {
            let mut totals = SweepTotals::default();
            for account in report.accounts.iter().filter_map(|account| account.report.as_ref()) {
                totals.add(&account.totals);
            }
            report.totals = totals;
        }
    }

    /// Where the findings file is, and how many lines.
    pub fn set_findings(&mut self, findings: Option<acl_audit::findings::FindingsWritten>) {
        match self {
            SweepOutcome::Account(report) => report.findings = findings,
            SweepOutcome::Organization(report) => report.findings = findings,
        }
    }

    /// Every account's sweep it holds.
    pub fn accounts(&self) -> Vec<&SweepReport> {
        match self {
            SweepOutcome::Account(report) => vec![report],
            SweepOutcome::Organization(report) => report
                .accounts
                .iter()
                .filter_map(|account| account.report.as_ref())
                .collect(),
        }
    }
}

/// What an invocation answers its caller: an audit's report, or a step's pass.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Reply {
    Report(Box<RunReport>),
    Pass(Box<Pass>),
    Sweep(Box<SweepOutcome>),
}

/// What part of an audit an invocation's report covers, which decides the metrics it counts
/// in: the bucket's counts (the alarms') once per audit, a state machine run's in its last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A whole run (or an S3 event's object): counted per strategy and per bucket.
    Run,
    /// One part of a state machine run: counted per strategy only.
    Part,
    /// A state machine run's parts added up: counted per bucket only.
    MapRun,
}

impl Scope {
    /// The scope of a run of this origin: a part's, or a run's of its own.
    pub fn of(origin: &Origin) -> Self {
        match origin {
            Origin::Part { .. } => Scope::Part,
            Origin::Whole | Origin::Caller => Scope::Run,
        }
    }
}

impl Invocation {
    /// An audit, its findings written or not; a write that failed is logged once here.
    pub fn audited(report: RunReport, findings_error: Option<NotWritten>, scope: Scope) -> Self {
        if let Some(err) = &findings_error {
            tracing::error!(strategy = report.strategy.name(), error = %err, "findings not written");
        }
        Invocation::Audited {
            report: Box::new(report),
            findings_error,
            scope,
        }
    }

    /// A failure, logged once here.
    pub fn failed(bucket: Option<String>, error: impl Into<HandlerError>, what: &str) -> Self {
        let error = error.into();
        tracing::error!(error = %error, "{what}");
        Invocation::Failed { bucket, error }
    }

    /// The invocation's scope; a failed one counts as a run.
    pub fn scope(&self) -> Scope {
        match self {
            Invocation::Audited { scope, .. } => *scope,
            Invocation::Failed { .. } | Invocation::Stepped { .. } | Invocation::Swept { .. } => Scope::Run,
        }
    }

    /// What the caller is answered: the report, the pass, or the error.
    pub fn into_reply(self) -> Result<Reply, HandlerError> {
        match self {
            Invocation::Stepped { pass } => Ok(Reply::Pass(pass)),
            Invocation::Swept {
                report,
                findings_error: None,
            } => Ok(Reply::Sweep(report)),
            Invocation::Swept {
                findings_error: Some(err),
                ..
            } => Err(HandlerError::NotWritten(err)),
            audit => audit.into_run_report().map(|report| Reply::Report(Box::new(report))),
        }
    }

    /// An audit's report, or its error; a step (which has no report) is refused as not an audit.
    pub fn into_result(self) -> Result<AuditReport, HandlerError> {
        self.into_run_report().map(|run| run.report)
    }

    /// The same, with where the run took up: what the caller is answered.
    pub fn into_run_report(self) -> Result<RunReport, HandlerError> {
        match self {
            Invocation::Stepped { .. } => {
                Err(RequestError::InvalidEvent("a plan or collect step answers a pass, not a report".to_owned()).into())
            }
            Invocation::Swept { .. } => {
                Err(RequestError::InvalidEvent("an account sweep answers a sweep's report".to_owned()).into())
            }
            Invocation::Audited {
                report,
                findings_error: None,
                ..
            } => Ok(*report),
            Invocation::Audited {
                findings_error: Some(err),
                ..
            } => Err(HandlerError::NotWritten(err)),
            Invocation::Failed { error, .. } => Err(error),
        }
    }

    pub fn bucket(&self) -> Option<&str> {
        match self {
            Invocation::Audited { report, .. } => Some(&report.bucket),
            Invocation::Failed { bucket, .. } => bucket.as_deref(),
            Invocation::Stepped { pass } => Some(&pass.bucket),
            Invocation::Swept { .. } => None,
        }
    }

    pub fn report(&self) -> Option<&AuditReport> {
        match self {
            Invocation::Audited { report, .. } => Some(&report.report),
            Invocation::Failed { .. } | Invocation::Stepped { .. } | Invocation::Swept { .. } => None,
        }
    }

    /// Whether the invocation failed, an audit whose findings were not written included.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            Invocation::Audited {
                findings_error: None,
                ..
            } | Invocation::Swept {
                findings_error: None,
                ..
            }
        )
    }
}
