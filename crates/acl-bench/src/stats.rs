//! What one benchmark cell (a memory size and a variant) measured, summed up.

use serde::{Deserialize, Serialize};

/// One invocation as the child process measured it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The invocation's wall time; for a cold start, process start to report.
    pub wall_ms: f64,
    /// User + system CPU the invocation used.
    pub cpu_ms: f64,
    pub acls_fetched: usize,
    pub failures: usize,
    /// Connections the invocation opened; `None` where the child cannot tell.
    #[serde(default)]
    pub connections_opened: Option<usize>,
    /// Requests the SDK sent again (the report's `retries`); `None` for a peer.
    #[serde(default)]
    pub retries: Option<usize>,
    /// Calls in flight at most, as the function's report says (`join-all`'s cap follows the
    /// open connections); `None` for a peer or no limit.
    #[serde(default)]
    pub concurrency_limit: Option<usize>,
}

/// A cell's figures over its samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub runs: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub min_ms: f64,
    pub cpu_ms_per_invocation: f64,
    /// CPU per ACL fetched, in microseconds; `None` when nothing was fetched.
    pub cpu_us_per_acl: Option<f64>,
    pub acls_per_second: f64,
    pub failures: usize,
    /// Mean connections opened per invocation, when the child counted them.
    #[serde(default)]
    pub connections_per_invocation: Option<f64>,
    /// Retries over every sample, when the child reported them.
    #[serde(default)]
    pub retries: Option<usize>,
}

impl Summary {
    /// `None` for no samples.
    pub fn of(samples: &[Sample]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut walls: Vec<f64> = samples.iter().map(|s| s.wall_ms).collect();
        walls.sort_by(f64::total_cmp);
        let runs = samples.len();
        let cpu_ms: f64 = samples.iter().map(|s| s.cpu_ms).sum();
        let acls: usize = samples.iter().map(|s| s.acls_fetched).sum();
        let wall_ms: f64 = walls.iter().sum();
        Some(Summary {
            runs,
            p50_ms: percentile(&walls, 50.0),
            p95_ms: percentile(&walls, 95.0),
            min_ms: walls[0],
            cpu_ms_per_invocation: cpu_ms / runs as f64,
            cpu_us_per_acl: (acls > 0).then(|| cpu_ms * 1e3 / acls as f64),
            acls_per_second: if wall_ms > 0.0 {
                acls as f64 * 1e3 / wall_ms
            } else {
                0.0
            },
            failures: samples.iter().map(|s| s.failures).sum(),
            connections_per_invocation: samples
                .iter()
                .map(|s| s.connections_opened)
                .sum::<Option<usize>>()
                .map(|total| total as f64 / runs as f64),
            retries: samples.iter().map(|s| s.retries).sum(),
        })
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The least time `objects` GetObjectAcl calls can take, `in_flight` at a time, when each
/// costs `request_ms`, plus the handshakes of the connections a wave opens when the pool starts
/// empty. The listing is streamed: the first page (1 000 keys) comes before any fetch, later
/// pages are listed while earlier keys are fetched, and the last page's keys are fetched after
/// it, so the run takes the longer of the two paths.
pub fn floor_ms(objects: usize, in_flight: usize, request_ms: f64, connection_ms: f64, empty_pool: bool) -> f64 {
    const PAGE: usize = 1000;
    let in_flight = in_flight.clamp(1, objects.max(1));
    let list_pages = objects.div_ceil(PAGE).max(1);
    let fetch_path = 1 + objects.div_ceil(in_flight);
    let last_page_keys = objects - (list_pages - 1) * PAGE;
    let listing_path = list_pages + last_page_keys.div_ceil(in_flight);
    let handshakes = if empty_pool { connection_ms } else { 0.0 };
    fetch_path.max(listing_path) as f64 * request_ms + handshakes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(wall_ms: f64, cpu_ms: f64) -> Sample {
        Sample {
            wall_ms,
            cpu_ms,
            acls_fetched: 100,
            failures: 0,
            connections_opened: Some(4),
            retries: Some(0),
            concurrency_limit: None,
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Sample> = (1..=10).map(|ms| sample(f64::from(ms), 1.0)).collect();
        let summary = Summary::of(&samples).unwrap();
        assert_eq!((summary.p50_ms, summary.p95_ms, summary.min_ms), (5.0, 10.0, 1.0));
    }

    #[test]
    fn cpu_is_averaged_per_invocation_and_per_acl() {
        let summary = Summary::of(&[sample(100.0, 4.0), sample(300.0, 6.0)]).unwrap();
        assert_eq!(summary.cpu_ms_per_invocation, 5.0);
        assert_eq!(summary.cpu_us_per_acl, Some(50.0));
        assert_eq!(summary.acls_per_second, 500.0);
        assert_eq!(summary.connections_per_invocation, Some(4.0));
    }

    #[test]
    fn connections_are_unknown_if_any_invocation_could_not_count_them() {
        let uncounted = Sample {
            connections_opened: None,
            ..sample(100.0, 4.0)
        };
        let summary = Summary::of(&[sample(100.0, 4.0), uncounted]).unwrap();
        assert_eq!(summary.connections_per_invocation, None);
    }

    #[test]
    fn no_samples_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn the_floor_counts_the_first_page_the_waves_and_cold_handshakes() {
        // 100 objects, 10 at a time, 20 ms a request: 1 listing + 10 waves.
        assert_eq!(floor_ms(100, 10, 20.0, 40.0, false), 220.0);
        assert_eq!(floor_ms(100, 10, 20.0, 40.0, true), 260.0);
        // Sequential: one wave per object.
        assert_eq!(floor_ms(100, 1, 20.0, 0.0, false), 2020.0);
        // 2 500 objects need three listing pages, and the last page's keys wait for it.
        assert_eq!(floor_ms(2500, 2500, 10.0, 0.0, false), 40.0);
        // 100 000 objects, 128 at a time: the listing's 100 pages go on while 782 waves run.
        assert_eq!(floor_ms(100_000, 128, 10.0, 0.0, false), 7830.0);
    }
}
