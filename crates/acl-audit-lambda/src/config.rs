//! The function's settings, from its environment variables, and the core's [`Strategy`] they
//! make of each function's strategy kind.

use std::num::NonZeroUsize;
use std::time::Duration;

use acl_audit::model::S3Location;
use acl_audit::strategy::InFlight;
use acl_audit::strategy::default_blocking_pool_size;

use crate::event::AuditScope;
use acl_audit::{Strategy, StrategyKind};

pub const BUCKET_NAME: &str = "BUCKET_NAME";
pub const OBJECT_PREFIX: &str = "OBJECT_PREFIX";
pub const MAX_OBJECTS: &str = "MAX_OBJECTS";
pub const BLOCKING_POOL_SIZE: &str = "BLOCKING_POOL_SIZE";
pub const MAX_IN_FLIGHT: &str = "MAX_IN_FLIGHT";
pub const DEADLINE_MARGIN_MS: &str = "DEADLINE_MARGIN_MS";
/// Where each run writes its findings and report: `s3://bucket/prefix/`. Unset: nowhere.
pub const FINDINGS_URI: &str = "FINDINGS_URI";
/// A suppression file, `s3://bucket/key.json` (docs/report.md, "Suppressions"). Unset: none.
pub const SUPPRESSIONS_URI: &str = "SUPPRESSIONS_URI";
/// `jsonl` (this tool's lines, the default) or `ocsf` (OCSF Detection Finding events): the
/// findings file's format.
pub const FINDINGS_FORMAT: &str = "FINDINGS_FORMAT";
/// `true`: send every run's findings to AWS Security Hub (`BatchImportFindings`, ASFF); needs
/// `FINDINGS_URI`, whose files the import reads. Default `false`.
pub const SECURITY_HUB: &str = "SECURITY_HUB";
/// `true`: fetch every ACL even where the bucket's ACLs are disabled. Default `false`.
pub const AUDIT_WHEN_ACLS_DISABLED: &str = "AUDIT_WHEN_ACLS_DISABLED";
/// `true`: list every version (ListObjectVersions) and audit each one's ACL. Default `false`.
pub const INCLUDE_VERSIONS: &str = "INCLUDE_VERSIONS";
/// `false`: a run stopped before the end of its target stores no resume token under
/// `FINDINGS_URI` and a run does not take one up. Default `true` (with `FINDINGS_URI` set).
pub const RESUME_FROM_STORE: &str = "RESUME_FROM_STORE";
/// Connections to open during init; 0 for none. Default: up to 384 MB, as many as the
/// strategy has calls in flight; none above ([`Config::warm_connections`]).
pub const WARM_CONNECTIONS: &str = "WARM_CONNECTIONS";
/// tokio's blocking pool runs at most this many threads: more would only wait for them.
pub const MOST_BLOCKING_THREADS: usize = 512;
/// The most calls `MAX_IN_FLIGHT` may put in flight: each needs a connection, and a Lambda
/// process has 1 024 file descriptors; far past them, a mistake.
pub const MOST_SET_IN_FLIGHT: usize = 100_000;
/// A Lambda process's file descriptors: no more connections can be open at once.
pub const MOST_FILE_DESCRIPTORS: usize = 1024;
/// What a run with no `scope` in its event audits: `bucket` (the default), `account` or
/// `organization`.
pub const AUDIT_SCOPE: &str = "AUDIT_SCOPE";
/// The role an organization sweep assumes in each member account.
pub const MEMBER_ROLE_NAME: &str = "MEMBER_ROLE_NAME";
/// The external id the member role's trust policy asks for, if any.
pub const MEMBER_ROLE_EXTERNAL_ID: &str = "MEMBER_ROLE_EXTERNAL_ID";
/// Set by Lambda: the function's memory size in MB, which fixes its share of a CPU.
pub const LAMBDA_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// `join-all`'s in-flight cap when `MAX_IN_FLIGHT` is unset, from the function's memory size.
///
/// Each call in flight needs a connection of its own, and a new connection costs a TLS
/// handshake, several times the CPU of a request on an open one. At small memory sizes a run
/// that finds its connections closed, as a schedule an hour apart does, is fastest with few of
/// them; with more CPU, more calls in flight pay off, and with the pool still open more are
/// never slower. One call per 8 MB, at least 16, at most 128 (far below Lambda's 1 024 file
/// descriptors) follows the empty-pool sweep in docs/benchmark.md, which has the figures.
pub fn default_max_in_flight(memory_mb: Option<usize>) -> NonZeroUsize {
    const MB_PER_CALL: usize = 8;
    const FEWEST: usize = 16;
    const MOST: usize = 128;
    /// Outside Lambda (no memory size): a middle value.
    const UNKNOWN_MEMORY: usize = 64;
    let cap = memory_mb.map_or(UNKNOWN_MEMORY, |mb| (mb / MB_PER_CALL).clamp(FEWEST, MOST));
    NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN)
}

/// `join-all`'s default cap for a run that finds `open` connections in the client's pool:
/// every open connection, or as many as [`default_max_in_flight`] allows the memory size to
/// handshake when fewer are open, at most [`MOST_IN_FLIGHT`]. One rule for every start: a run
/// after a cold start's init (its connections opened at burst CPU) or seconds after another
/// finds its pool full and uses all of it; one after an hour, its pool empty, pays only the
/// handshakes its CPU share affords. Not open + affordable: with connections open, a new one
/// costs a small memory size more than a wave of waiting (docs/benchmark.md, "Earlier
/// comparisons, not re-run").
pub fn adaptive_max_in_flight(memory_mb: Option<usize>, open: usize) -> NonZeroUsize {
    let affordable = default_max_in_flight(memory_mb);
    let cap = open.min(MOST_IN_FLIGHT).max(affordable.get());
    NonZeroUsize::new(cap).unwrap_or(affordable)
}

/// Calls in flight at most by default: far below Lambda's 1 024 file descriptors.
pub const MOST_IN_FLIGHT: usize = 128;

/// Connections `join-all` opens during init at least, by default.
pub const FEWEST_WARM_CONNECTIONS: usize = 64;

/// Connections opened during init at most.
pub const MOST_WARM_CONNECTIONS: usize = MOST_IN_FLIGHT;

/// The largest memory size whose functions open connections during init by default: cold
/// starts measured faster with warming at 128 to 320 MB, even at 384 MB, slower from 448 MB
/// up (docs/benchmark.md, "How many connections to warm, per memory size").
pub const WARMING_PAYS_UP_TO_MB: usize = 384;

/// How long before the invocation's deadline a run stops starting calls, abandons those
/// under way and returns its partial report: time to build, log and send the report, with
/// room to spare at 128 MB's 7 % of a core.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// A variable of the function's environment that does not parse.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// The function's settings, from its environment variables. Empty means unset, as SAM
/// passes an empty string for an optional parameter left blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub max_objects: Option<usize>,
    pub blocking_pool_size: NonZeroUsize,
    /// `join-all`'s cap: `MAX_IN_FLIGHT` (0 lifts it), else [`default_max_in_flight`], which
    /// [`Config::with_open_connections`] raises by the connections open.
    pub max_in_flight: Option<NonZeroUsize>,
    /// Whether `MAX_IN_FLIGHT` was left unset, so that the cap follows the open connections.
    pub max_in_flight_adapts: bool,
    /// The function's memory size, MB, when Lambda says it.
    pub memory_mb: Option<usize>,
    /// How long before the invocation's deadline to stop: `DEADLINE_MARGIN_MS`.
    pub deadline_margin: Duration,
    /// `FINDINGS_URI`: where every run writes its findings file and report.
    pub findings: Option<S3Location>,
    /// `SUPPRESSIONS_URI`: the findings a team has accepted, read by every audit.
    pub suppressions: Option<S3Location>,
    /// `SECURITY_HUB`.
    pub security_hub: bool,
    /// `FINDINGS_FORMAT`.
    pub findings_format: acl_audit::ocsf::FindingsFormat,
    /// `AUDIT_WHEN_ACLS_DISABLED`.
    pub audit_when_acls_disabled: bool,
    /// `INCLUDE_VERSIONS`.
    pub include_versions: bool,
    /// `WARM_CONNECTIONS`, when set.
    pub warm_connections: Option<usize>,
    /// `RESUME_FROM_STORE`: a scheduled run stores its resume token under `FINDINGS_URI`,
    /// and the next run of the same target takes it up (docs/reliability.md).
    pub resume_from_store: bool,
    /// `AUDIT_SCOPE`: what an event that names no scope audits.
    pub scope: AuditScope,
    /// `MEMBER_ROLE_NAME`, `MEMBER_ROLE_EXTERNAL_ID`.
    pub member_role_name: Option<String>,
    pub member_role_external_id: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let number = |name: &'static str| -> Result<Option<usize>, ConfigError> {
            var(name)
                .map(|value| {
                    value.trim().parse::<usize>().map_err(|err| ConfigError {
                        name,
                        value: value.clone(),
                        reason: format!("expected a whole number ({err})"),
                    })
                })
                .transpose()
        };
        let positive = |name: &'static str| -> Result<Option<NonZeroUsize>, ConfigError> {
            number(name)?
                .map(|n| {
                    NonZeroUsize::new(n).ok_or_else(|| ConfigError {
                        name,
                        value: n.to_string(),
                        reason: "must be at least 1".to_owned(),
                    })
                })
                .transpose()
        };
        // Counts that size threads, permits or connections: bounded, so that a mistyped
        // value is a clear error rather than a panic (a semaphore past its most permits) or a
        // process out of memory.
        let at_most = |name: &'static str, most: usize| -> Result<Option<usize>, ConfigError> {
            match number(name)? {
                Some(n) if n > most => Err(ConfigError {
                    name,
                    value: n.to_string(),
                    reason: format!("must be at most {most}"),
                }),
                n => Ok(n),
            }
        };
        let memory_mb = positive(LAMBDA_MEMORY_SIZE)?.map(NonZeroUsize::get);
        let flag_or = |name: &'static str, default: bool| match var(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(value) if value == "true" => Ok(true),
            Some(value) if value == "false" => Ok(false),
            Some(value) => Err(ConfigError {
                name,
                value,
                reason: "expected true or false".to_owned(),
            }),
        };
        let flag = |name: &'static str| flag_or(name, false);
        Ok(Config {
            bucket: var(BUCKET_NAME),
            prefix: var(OBJECT_PREFIX),
            max_objects: positive(MAX_OBJECTS)?.map(NonZeroUsize::get),
            blocking_pool_size: match at_most(BLOCKING_POOL_SIZE, MOST_BLOCKING_THREADS)? {
                Some(0) => {
                    return Err(ConfigError {
                        name: BLOCKING_POOL_SIZE,
                        value: "0".to_owned(),
                        reason: "must be at least 1".to_owned(),
                    });
                }
                n => n.and_then(NonZeroUsize::new).unwrap_or_else(default_blocking_pool_size),
            },
            max_in_flight: match at_most(MAX_IN_FLIGHT, MOST_SET_IN_FLIGHT)? {
                Some(n) => NonZeroUsize::new(n),
                None => Some(default_max_in_flight(memory_mb)),
            },
            max_in_flight_adapts: number(MAX_IN_FLIGHT)?.is_none(),
            memory_mb,
            deadline_margin: number(DEADLINE_MARGIN_MS)?
                .map_or(DEFAULT_DEADLINE_MARGIN, |ms| Duration::from_millis(ms as u64)),
            findings: var(FINDINGS_URI)
                .map(|uri| {
                    uri.trim().parse::<S3Location>().map_err(|err| ConfigError {
                        name: FINDINGS_URI,
                        value: uri.clone(),
                        reason: err.to_string(),
                    })
                })
                .transpose()?,
            suppressions: var(SUPPRESSIONS_URI)
                .map(|uri| {
                    uri.trim().parse::<S3Location>().map_err(|err| ConfigError {
                        name: SUPPRESSIONS_URI,
                        value: uri.clone(),
                        reason: err.to_string(),
                    })
                })
                .transpose()?,
            security_hub: match (flag(SECURITY_HUB)?, var(FINDINGS_URI)) {
                (true, None) => {
                    return Err(ConfigError {
                        name: SECURITY_HUB,
                        value: "true".to_owned(),
                        reason: "needs FINDINGS_URI: the findings sent are read from the run's findings file"
                            .to_owned(),
                    });
                }
                (on, _) => on,
            },
            findings_format: match var(FINDINGS_FORMAT) {
                None => acl_audit::ocsf::FindingsFormat::default(),
                Some(value) => acl_audit::ocsf::FindingsFormat::parse(&value).ok_or_else(|| ConfigError {
                    name: FINDINGS_FORMAT,
                    value: value.clone(),
                    reason: "expected jsonl or ocsf".to_owned(),
                })?,
            },
            audit_when_acls_disabled: flag(AUDIT_WHEN_ACLS_DISABLED)?,
            include_versions: flag(INCLUDE_VERSIONS)?,
            warm_connections: at_most(WARM_CONNECTIONS, MOST_FILE_DESCRIPTORS)?,
            resume_from_store: flag_or(RESUME_FROM_STORE, true)?,
            scope: match var(AUDIT_SCOPE).map(|v| v.trim().to_ascii_lowercase()) {
                None => AuditScope::Bucket,
                Some(value) if value == "bucket" => AuditScope::Bucket,
                Some(value) if value == "account" => AuditScope::Account,
                Some(value) if value == "organization" => AuditScope::Organization,
                Some(value) => {
                    return Err(ConfigError {
                        name: AUDIT_SCOPE,
                        value,
                        reason: "expected bucket, account or organization".to_owned(),
                    });
                }
            },
            member_role_name: var(MEMBER_ROLE_NAME).map(|name| name.trim().to_owned()),
            member_role_external_id: var(MEMBER_ROLE_EXTERNAL_ID),
        })
    }

    /// How many connections a function of `kind` opens during its init: `WARM_CONNECTIONS`,
    /// else, up to [`WARMING_PAYS_UP_TO_MB`], one per call its strategy has in flight (at most
    /// [`MOST_WARM_CONNECTIONS`]), so that a cold start's first invocation finds every
    /// connection it will use open. Init has burst CPU on Lambda, where handshakes cost a
    /// fraction of what they cost inside a small memory size's share afterwards; above it the
    /// invocation's own CPU opens them while it waits on the network, for less than init takes
    /// to open them (docs/benchmark.md, "How many connections to warm, per memory size").
    ///
    /// `join-all` with its adaptive default opens at least [`FEWEST_WARM_CONNECTIONS`]: its
    /// first run puts every open connection in flight.
    pub fn warm_connections(&self, kind: StrategyKind) -> usize {
        self.warm_connections.unwrap_or_else(|| {
            if self.memory_mb.is_some_and(|mb| mb > WARMING_PAYS_UP_TO_MB) {
                return 0;
            }
            let calls = self.strategy(kind).concurrency_limit().unwrap_or(MOST_WARM_CONNECTIONS);
            let fewest = if kind == StrategyKind::JoinAll && self.max_in_flight_adapts {
                FEWEST_WARM_CONNECTIONS
            } else {
                1
            };
            calls.max(fewest).min(MOST_WARM_CONNECTIONS)
        })
    }

    /// The configuration for a run that finds `open` connections in its client's pool
    /// ([`acl_audit::s3::pool::PoolGauge`]): `join-all`'s default cap grows to them
    /// ([`adaptive_max_in_flight`]); a `MAX_IN_FLIGHT` the user set stays as set.
    #[must_use]
    pub fn with_open_connections(mut self, open: usize) -> Self {
        if self.max_in_flight_adapts {
            self.max_in_flight = Some(adaptive_max_in_flight(self.memory_mb, open));
        }
        self
    }

    pub fn strategy(&self, kind: StrategyKind) -> Strategy {
        match kind {
            StrategyKind::Sequential => Strategy::Sequential,
            StrategyKind::SpawnBlocking => Strategy::SpawnBlocking {
                pool_size: self.blocking_pool_size,
            },
            StrategyKind::JoinAll => Strategy::JoinAll {
                in_flight: match self.max_in_flight {
                    None => InFlight::All,
                    Some(most) if self.max_in_flight_adapts => InFlight::adaptive(most),
                    Some(most) => InFlight::Fixed(most),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let var = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned());
        Config::from_vars(var).expect("valid test configuration")
    }

    #[test]
    fn connections_are_warmed_by_default_up_to_384_mb_only() {
        let at = |mb: &str| config(&[(LAMBDA_MEMORY_SIZE, mb)]);
        assert_eq!(
            at("128").warm_connections(StrategyKind::JoinAll),
            FEWEST_WARM_CONNECTIONS
        );
        assert_eq!(at("128").warm_connections(StrategyKind::Sequential), 1);
        assert_eq!(
            at("384").warm_connections(StrategyKind::JoinAll),
            FEWEST_WARM_CONNECTIONS
        );
        assert_eq!(at("448").warm_connections(StrategyKind::JoinAll), 0);
        assert_eq!(at("1769").warm_connections(StrategyKind::SpawnBlocking), 0);
        let set = config(&[(LAMBDA_MEMORY_SIZE, "1769"), (WARM_CONNECTIONS, "32")]);
        assert_eq!(set.warm_connections(StrategyKind::JoinAll), 32, "a value set is kept");
        let unknown = config(&[]);
        assert_eq!(unknown.warm_connections(StrategyKind::JoinAll), FEWEST_WARM_CONNECTIONS);
    }
}
