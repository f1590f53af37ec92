//! Fault injection: answer a share of requests the way a struggling S3 does (503 SlowDown,
//! 500 InternalError, a connection closed mid-request, a slow answer), so that clients'
//! retries and accounting can be tested against something other than a perfect endpoint.
//!
//! Draws are deterministic: whether the n-th request for a given method, path and query
//! fails depends only on the seed, that identity and n, never on timing or the order in which
//! concurrent requests arrive. A client's retry of a failed request is its next n, and draws
//! again.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

/// What a faulty request gets instead of (or before) its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `503 SlowDown`, S3's throttling answer.
    SlowDown,
    /// `500 InternalError`.
    InternalError,
    /// The connection is closed without an answer, as when it is reset.
    Reset,
    /// The right answer, after [`Faults::slow_response`].
    Slow,
}

impl Fault {
    pub const ALL: [Fault; 4] = [Fault::SlowDown, Fault::InternalError, Fault::Reset, Fault::Slow];

    pub fn name(self) -> &'static str {
        match self {
            Fault::SlowDown => "slow-down",
            Fault::InternalError => "internal-error",
            Fault::Reset => "reset",
            Fault::Slow => "slow",
        }
    }
}

/// The operations a rule can single out; a rule without one applies to every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    ListObjectsV2,
    GetObjectAcl,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::ListObjectsV2 => "list-objects-v2",
            Operation::GetObjectAcl => "get-object-acl",
        }
    }

    /// Recognises the operation from the request line, as S3's router does.
    pub fn of(method: &hyper::Method, path: &str, query: Option<&str>) -> Option<Operation> {
        if method != hyper::Method::GET {
            return None;
        }
        let mut params = query
            .unwrap_or("")
            .split('&')
            .map(|pair| pair.split('=').next().unwrap_or(""));
        // Path-style: `/bucket/key` names an object, `/bucket` and `/bucket/` the bucket.
        let object_path = path
            .trim_start_matches('/')
            .split_once('/')
            .is_some_and(|(_, key)| !key.is_empty());
        if object_path && params.any(|name| name == "acl") {
            Some(Operation::GetObjectAcl)
        } else if !object_path && params.any(|name| name == "list-type") {
            Some(Operation::ListObjectsV2)
        } else {
            None
        }
    }
}

/// `OPERATION:FAULT=RATE`, e.g. `get-object-acl:slow-down=0.05` or `*:reset=0.01`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRule {
    /// `None` (`*`): every request.
    pub operation: Option<Operation>,
    pub fault: Fault,
    /// The share of requests, 0 to 1.
    pub rate: f64,
}

/// A `--fault` rule that cannot be read, with what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFaultRule {
    #[error("{0:?} is not OPERATION:FAULT=RATE, e.g. get-object-acl:slow-down=0.05")]
    Shape(String),
    #[error("unknown operation {0:?}: expected list-objects-v2, get-object-acl or *")]
    Operation(String),
    #[error("unknown fault {0:?}: expected slow-down, internal-error, reset or slow")]
    Fault(String),
    #[error("the rate in {0:?} must be a number from 0 to 1")]
    Rate(String),
}

impl FromStr for FaultRule {
    type Err = InvalidFaultRule;

    fn from_str(rule: &str) -> Result<Self, Self::Err> {
        let usage = || InvalidFaultRule::Shape(rule.to_owned());
        let (operation, rest) = rule.split_once(':').ok_or_else(usage)?;
        let (fault, rate) = rest.split_once('=').ok_or_else(usage)?;
        let operation = match operation {
            "*" => None,
            name => Some(
                [Operation::ListObjectsV2, Operation::GetObjectAcl]
                    .into_iter()
                    .find(|op| op.name() == name)
                    .ok_or_else(|| InvalidFaultRule::Operation(name.to_owned()))?,
            ),
        };
        let fault = Fault::ALL
            .into_iter()
            .find(|f| f.name() == fault)
            .ok_or_else(|| InvalidFaultRule::Fault(fault.to_owned()))?;
        let rate = rate
            .parse::<f64>()
            .ok()
            .filter(|rate| (0.0..=1.0).contains(rate))
            .ok_or_else(|| InvalidFaultRule::Rate(rule.to_owned()))?;
        Ok(FaultRule { operation, fault, rate })
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operation = self.operation.map_or("*", Operation::name);
        write!(f, "{operation}:{}={}", self.fault.name(), self.rate)
    }
}

/// Which faults to inject, how often and how. The default injects none.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    pub seed: u64,
    /// Applied in order: a request draws once, and the rates of the rules that apply to it
    /// stack, so `*:slow-down=0.05` and `*:reset=0.05` fail 10 % of requests.
    pub rules: Vec<FaultRule>,
    /// How late a [`Fault::Slow`] answer comes.
    pub slow_response: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 0,
            rules: Vec::new(),
            slow_response: Duration::from_secs(2),
        }
    }
}

impl Faults {
    /// The fault, if any, for the `nth` request (from 0) with this identity.
    pub fn draw(&self, operation: Option<Operation>, identity: &str, nth: u64) -> Option<Fault> {
        let draw = unit_interval(mix(self.seed ^ fnv1a(identity.as_bytes()), nth));
        let mut threshold = 0.0;
        self.rules
            .iter()
            .filter(|rule| rule.operation.is_none() || rule.operation == operation)
            .find(|rule| {
                threshold += rule.rate;
                draw < threshold
            })
            .map(|rule| rule.fault)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64's finaliser over the pair: nearby inputs give unrelated outputs.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_add(b.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn unit_interval(bits: u64) -> f64 {
    // 53 random bits, the precision of an f64 in [0, 1).
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A running endpoint's faults: the plan, how many times each identity has been asked for,
/// and how many faults of each kind it has injected.
#[derive(Debug, Default)]
pub(crate) struct FaultInjector {
    faults: RwLock<Faults>,
    requests_seen: Mutex<HashMap<String, u64>>,
    injected: [AtomicU64; Fault::ALL.len()],
}

impl FaultInjector {
    pub(crate) fn new(faults: Faults) -> Self {
        FaultInjector {
            faults: RwLock::new(faults),
            ..FaultInjector::default()
        }
    }

    pub(crate) fn replace(&self, faults: Faults) {
        *self.faults.write() = faults;
    }

    pub(crate) fn slow_response(&self) -> Duration {
        self.faults.read().slow_response
    }

    pub(crate) fn draw(&self, method: &hyper::Method, uri: &hyper::Uri) -> Option<Fault> {
        let faults = self.faults.read();
        if faults.rules.is_empty() {
            return None;
        }
        let operation = Operation::of(method, uri.path(), uri.query());
        let identity = format!("{method} {uri}");
        let nth = {
            let mut seen = self.requests_seen.lock();
            let count = seen.entry(identity.clone()).or_default();
            *count += 1;
            *count - 1
        };
        let fault = faults.draw(operation, &identity, nth)?;
        self.injected[fault as usize].fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }

    pub(crate) fn injected(&self) -> FaultCounts {
        let count = |fault: Fault| self.injected[fault as usize].load(Ordering::Relaxed);
        FaultCounts {
            slow_down: count(Fault::SlowDown),
            internal_error: count(Fault::InternalError),
            reset: count(Fault::Reset),
            slow: count(Fault::Slow),
        }
    }
}

/// How many faults an endpoint has injected since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub slow_down: u64,
    pub internal_error: u64,
    pub reset: u64,
    pub slow: u64,
}

impl FaultCounts {
    /// Faults a client has to retry: every kind but a slow answer, which is still an answer.
    pub fn failed_requests(&self) -> u64 {
        self.slow_down + self.internal_error + self.reset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rules: &[&str]) -> Faults {
        Faults {
            seed: 7,
            rules: rules.iter().map(|rule| rule.parse().unwrap()).collect(),
            ..Faults::default()
        }
    }

    #[test]
    fn rules_parse_and_print_back() {
        let rule: FaultRule = "get-object-acl:slow-down=0.05".parse().unwrap();
        assert_eq!(
            rule,
            FaultRule {
                operation: Some(Operation::GetObjectAcl),
                fault: Fault::SlowDown,
                rate: 0.05
            }
        );
        assert_eq!(rule.to_string(), "get-object-acl:slow-down=0.05");
        assert_eq!("*:reset=1".parse::<FaultRule>().unwrap().operation, None);
    }

    #[test]
    fn a_bad_rule_is_refused_with_what_was_expected() {
        assert!(
            "slow-down=0.1"
                .parse::<FaultRule>()
                .unwrap_err()
                .to_string()
                .contains("OPERATION:FAULT=RATE")
        );
        assert!(
            "put-object:reset=0.1"
                .parse::<FaultRule>()
                .unwrap_err()
                .to_string()
                .contains("unknown operation")
        );
        assert!(
            "*:explode=0.1"
                .parse::<FaultRule>()
                .unwrap_err()
                .to_string()
                .contains("unknown fault")
        );
        assert!(
            "*:reset=1.5"
                .parse::<FaultRule>()
                .unwrap_err()
                .to_string()
                .contains("from 0 to 1")
        );
    }

    #[test]
    fn operations_are_recognised_from_the_request_line() {
        let get = hyper::Method::GET;
        assert_eq!(Operation::of(&get, "/b/k", Some("acl")), Some(Operation::GetObjectAcl));
        assert_eq!(
            Operation::of(&get, "/b", Some("list-type=2&prefix=a")),
            Some(Operation::ListObjectsV2)
        );
        assert_eq!(
            Operation::of(&get, "/b/", Some("list-type=2")),
            Some(Operation::ListObjectsV2)
        );
        assert_eq!(Operation::of(&get, "/b/k", None), None);
        assert_eq!(Operation::of(&hyper::Method::PUT, "/b/k", Some("acl")), None);
    }

    #[test]
    fn draws_are_deterministic_and_close_to_the_rates() {
        let faults = plan(&["get-object-acl:slow-down=0.1", "get-object-acl:reset=0.1"]);
        let draws = |faults: &Faults| -> Vec<Option<Fault>> {
            (0..10_000)
                .map(|i| faults.draw(Some(Operation::GetObjectAcl), &format!("GET /b/k{i}?acl"), 0))
                .collect()
        };
        let first = draws(&faults);
        assert_eq!(first, draws(&faults));
        let share = |fault| first.iter().filter(|f| **f == Some(fault)).count() as f64 / 1e4;
        assert!(
            (share(Fault::SlowDown) - 0.1).abs() < 0.02,
            "{}",
            share(Fault::SlowDown)
        );
        assert!((share(Fault::Reset) - 0.1).abs() < 0.02, "{}", share(Fault::Reset));
        let other_seed = Faults { seed: 8, ..faults };
        assert_ne!(first, draws(&other_seed));
    }

    #[test]
    fn rules_for_another_operation_do_not_apply() {
        let faults = plan(&["list-objects-v2:internal-error=1"]);
        assert_eq!(faults.draw(Some(Operation::GetObjectAcl), "GET /b/k?acl", 0), None);
        assert_eq!(
            faults.draw(Some(Operation::ListObjectsV2), "GET /b?list-type=2", 0),
            Some(Fault::InternalError)
        );
    }

    #[test]
    fn a_retried_request_draws_again() {
        let faults = plan(&["*:slow-down=0.5"]);
        let attempts: Vec<_> = (0..64).map(|nth| faults.draw(None, "GET /b/k?acl", nth)).collect();
        assert!(attempts.contains(&None) && attempts.contains(&Some(Fault::SlowDown)));
    }
}
