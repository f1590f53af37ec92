//! `join-all`'s in-flight limit, adapted while the run goes: down when the server pushes back,
//! back up when it stops.
//!
//! A fixed limit cannot see a server that struggles: S3 answers `503 SlowDown` beyond a
//! prefix's request rate, and a server that slows rather than refuses (moto) answers later and
//! later as calls pile up. This is additive increase, multiplicative decrease, as TCP's
//! congestion window and Netflix's concurrency-limits `AIMDLimit` do it, with a latency check
//! in the manner of TCP Vegas:
//! - calls S3 pushed back on (503 SlowDown, another 5xx, a timeout or a lost connection to
//!   their first attempt: what the SDK retries), seen as the attempt ends rather than after
//!   the retry's backoff, cut the limit once a round of calls is in: to the share of the
//!   round's answers that were not pushed back (as DCTCP sizes its cut by the share of marked
//!   packets), by at most half. Against a request-rate limit that share is what the rate
//!   allows, and one call refused in a round of thirty costs one place, not a tenth of them.
//!   Retries pushed back again are not counted: they echo the load from before their
//!   backoff, which an earlier cut answered;
//! - once a run has made [`PROBE_AFTER`] calls, it measures what a call costs without a queue:
//!   one round at an eighth of the limit, whose mean latency is the floor. From then on, calls
//!   whose recent latency is over [`TOLERANCE`] times the floor are queueing, and the limit
//!   comes down in proportion (at most by half). A halving that does not bring the latency
//!   down shows the latency is not of this run's making (S3's own varies): the floor is raised
//!   to it instead;
//! - at most one cut per round of calls: a signal from a call that started before the last cut
//!   is the same congestion, already answered. So is one from a call that started with more
//!   calls in flight than the limit allowed, after the limit came down (a cut, or the probe):
//!   a released permit goes straight to a waiting task, which may run only later, with the
//!   calls of the limit before;
//! - otherwise each call ending adds 1/limit, one more call in flight per round, up to the
//!   ceiling the run was given (the memory size's default, or the CLI's).
//!
//! A run on its own starts at the ceiling, so that one that meets no pushback runs as with a
//! fixed limit. Runs that make their calls to the same keys at once (the state machine's parts
//! of one bucket, invocations that share no counter) each start at their share of the ceiling
//! and grow by their share of a call per round: each cuts by the share of its own answers
//! pushed back, which is the share of all of them, so together they move as one run's limit
//! would. A run of fewer than [`PROBE_AFTER`] calls never probes.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};

/// How much slower than the floor recent calls may be before the limit comes down: at twice,
/// a call spends as long queueing as being served.
pub const TOLERANCE: f64 = 2.0;
/// Calls a run makes before it measures the floor: more than one round at any default limit,
/// so that the benchmark's 100-object runs and small buckets never pay for a probe.
pub const PROBE_AFTER: u64 = 256;
/// The probe's limit, as a share of the limit before it.
const PROBE_SHARE: f64 = 0.125;
/// How much each call's latency moves the recent latency (an exponential moving average over
/// about ten calls: enough to see through one slow answer, few enough to follow a queue).
const RECENT_WEIGHT: f64 = 0.1;
/// The deepest cut, for pushback or for latency.
const BACKOFF: f64 = 0.5;
/// A halving that leaves the recent latency above this share of what it was did not help.
const HELPED: f64 = 0.9;

/// The limit's course over a run, for its report and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct LimitCourse {
    /// The most it may reach: where a run on its own starts.
    pub ceiling: usize,
    /// The lowest it was: where it started, or cut to (the probe's round aside).
    pub lowest: usize,
    /// Where it ended.
    pub last: usize,
    /// Cuts on an attempt pushed back.
    pub cuts_for_pushback: u32,
    /// Cuts on queueing latency.
    pub cuts_for_latency: u32,
    /// The floor latency, microseconds, when measured.
    pub floor_us: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct AdaptiveLimit {
    slots: Semaphore,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Before [`PROBE_AFTER`] calls: only retries cut.
    Warming,
    /// Calls numbered `from` on run at the probe's limit; `restore` is the limit to go back
    /// to, `latencies` the sum and count of the probe's calls so far.
    Probing {
        from: u64,
        calls: usize,
        restore: f64,
        sum: f64,
        count: usize,
    },
    /// The floor is known (seconds); `at_cut` is the recent latency when the limit was last
    /// cut for latency, to tell whether the cut helped.
    Tracking { floor: f64, at_cut: Option<f64> },
}

#[derive(Debug)]
struct State {
    limit: f64,
    /// Calls added per round while nothing pushes back: one, or a run's share of one.
    growth: f64,
    /// Permits the semaphore stands for, in use or not; `owed` of them are taken back as
    /// their calls end. The calls allowed in flight are `granted - owed`.
    granted: usize,
    owed: usize,
    started: u64,
    /// The first call started after the last cut.
    cut_at: u64,
    pushbacks_seen: usize,
    round: Round,
    /// Recent latency, seconds.
    recent: Option<f64>,
    phase: Phase,
    course: LimitCourse,
}

/// The answers of the calls that ended since the round began.
#[derive(Debug, Default, Clone, Copy)]
struct Round {
    /// The round ends when a call numbered this or later ends: one that started after it began.
    ends_at: u64,
    /// Attempts pushed back, and calls answered without.
    pushed_back: usize,
    answered: usize,
}

/// One call's place in flight, from [`AdaptiveLimit::acquire`] to [`AdaptiveLimit::release`].
pub(crate) struct Slot<'a> {
    permit: SemaphorePermit<'a>,
    number: u64,
    /// It started while permits were owed, with more calls in flight than the limit allowed:
    /// no permit is free then, so it was handed this one before the limit came down.
    over_limit: bool,
    started: Instant,
}

impl AdaptiveLimit {
    /// A limit of at most `ceiling` for one of `shared_by` runs making their calls to the same
    /// keys at once: it starts at its share of the ceiling and grows by its share of a call
    /// per round.
    pub(crate) fn new(ceiling: usize, shared_by: usize) -> Self {
        let ceiling = ceiling.max(1);
        let shared_by = shared_by.max(1);
        let start = ceiling.div_ceil(shared_by);
        AdaptiveLimit {
            slots: Semaphore::new(start),
            state: Mutex::new(State {
                limit: start as f64,
                growth: 1.0 / shared_by as f64,
                granted: start,
                owed: 0,
                started: 0,
                cut_at: 0,
                pushbacks_seen: 0,
                // The first round is the first volley of calls.
                round: Round {
                    ends_at: start as u64,
                    ..Round::default()
                },
                recent: None,
                phase: Phase::Warming,
                course: LimitCourse {
                    ceiling,
                    lowest: start,
                    last: start,
                    ..LimitCourse::default()
                },
            }),
        }
    }

    pub(crate) async fn acquire(&self) -> Slot<'_> {
        let permit = match self.slots.acquire().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("the semaphore is never closed"),
        };
        let mut state = self.state.lock();
        let number = state.started;
        state.started += 1;
        Slot {
            permit,
            number,
            over_limit: state.owed > 0,
            started: Instant::now(),
        }
    }

    /// The call in `slot` ended; `pushbacks` is the run's count of calls whose first attempt
    /// was answered with a 5xx or nothing so far
    /// ([`crate::s3::retries::RetryCount::pushbacks`]), so that any growth since the last call
    /// is a sign of pushback.
    pub(crate) fn release(&self, slot: Slot<'_>, pushbacks: usize) {
        let latency = slot.started.elapsed();
        self.release_after(slot, latency, pushbacks);
    }

    /// [`AdaptiveLimit::release`] for a call that took `latency`.
    fn release_after(&self, slot: Slot<'_>, latency: Duration, pushbacks: usize) {
        let latency = latency.as_secs_f64();
        let mut state = self.state.lock();
        let pushed_back = pushbacks.saturating_sub(state.pushbacks_seen);
        state.pushbacks_seen = state.pushbacks_seen.max(pushbacks);
        // A call that started before the last cut belongs to the congestion that cut answered.
        let after_cut = slot.number >= state.cut_at && !slot.over_limit;
        if after_cut {
            state.round.pushed_back += pushed_back;
            state.round.answered += usize::from(pushed_back == 0);
        }
        let seen = state.round.pushed_back + state.round.answered;
        let mut cut = false;
        if slot.number >= state.round.ends_at && seen >= state.limit as usize {
            // A call started after the round began has ended, and as many answers are in as
            // calls were allowed in flight: the round's answers are in, and one refused call
            // is one share of the limit.
            let Round { pushed_back, .. } = state.round;
            state.round = Round {
                ends_at: state.started,
                ..Round::default()
            };
            if pushed_back > 0 {
                let answered_share = 1.0 - pushed_back as f64 / seen as f64;
                let limit = state.limit * answered_share.max(BACKOFF);
                state.course.cuts_for_pushback += 1;
                self.set(&mut state, limit, true);
                cut = true;
            }
        }
        if !cut && state.round.pushed_back == 0 && after_cut {
            // A call of the round before the last cut waited in the queue that cut answered:
            // its latency says nothing of the new limit.
            let recent = state
                .recent
                .map_or(latency, |recent| recent + RECENT_WEIGHT * (latency - recent));
            state.recent = Some(recent);
            self.judge_latency(&mut state, slot.number, latency, recent);
        }
        if state.owed > 0 {
            state.owed -= 1;
            state.granted -= 1;
            slot.permit.forget();
        }
        state.course.last = state.limit as usize;
    }

    fn judge_latency(&self, state: &mut State, number: u64, latency: f64, recent: f64) {
        match state.phase {
            Phase::Warming if state.started >= PROBE_AFTER => {
                let restore = state.limit;
                let calls = (restore * PROBE_SHARE).max(1.0);
                state.phase = Phase::Probing {
                    from: state.started,
                    calls: calls as usize,
                    restore,
                    sum: 0.0,
                    count: 0,
                };
                self.set(state, calls, false);
            }
            Phase::Warming => self.grow(state),
            Phase::Probing {
                from,
                calls,
                restore,
                sum,
                count,
            } if number >= from => {
                let (sum, count) = (sum + latency, count + 1);
                if count >= calls {
                    let floor = sum / count as f64;
                    state.phase = Phase::Tracking { floor, at_cut: None };
                    state.course.floor_us = Some((floor * 1e6) as u64);
                    state.recent = None;
                    self.set(state, restore, false);
                } else {
                    state.phase = Phase::Probing {
                        from,
                        calls,
                        restore,
                        sum,
                        count,
                    };
                }
            }
            Phase::Probing { .. } => {}
            Phase::Tracking { floor, at_cut } => {
                if recent <= TOLERANCE * floor {
                    self.grow(state);
                } else if at_cut.is_some_and(|before| recent > HELPED * before) {
                    // The last cut left the latency where it was: not a queue of ours.
                    state.phase = Phase::Tracking {
                        floor: recent / TOLERANCE,
                        at_cut: None,
                    };
                    state.course.floor_us = Some((recent / TOLERANCE * 1e6) as u64);
                } else {
                    let factor = (TOLERANCE * floor / recent).max(BACKOFF);
                    state.course.cuts_for_latency += 1;
                    // Only halving the calls in flight is sure to shorten a queue of ours
                    // enough to tell.
                    state.phase = Phase::Tracking {
                        floor,
                        at_cut: (factor == BACKOFF).then_some(recent),
                    };
                    let limit = state.limit * factor;
                    self.set(state, limit, true);
                }
            }
        }
    }

    /// One more call per round (a shared run's share of one), up to the ceiling.
    fn grow(&self, state: &mut State) {
        let ceiling = state.course.ceiling as f64;
        let limit = (state.limit + state.growth / state.limit).min(ceiling);
        self.set(state, limit, false);
    }

    /// Moves the limit to `limit`; a `cut` starts a new round.
    fn set(&self, state: &mut State, limit: f64, cut: bool) {
        state.limit = limit.clamp(1.0, state.course.ceiling as f64);
        let target = state.limit as usize;
        let allowed = state.granted - state.owed;
        if target < allowed {
            // Idle permits go now; those of calls under way as the calls end.
            let forgotten = self.slots.forget_permits(allowed - target);
            state.granted -= forgotten;
            state.owed += allowed - target - forgotten;
        } else if target > allowed {
            // Permits still owed are kept rather than taken back; the rest are new.
            let more = target - allowed;
            let kept = more.min(state.owed);
            state.owed -= kept;
            self.slots.add_permits(more - kept);
            state.granted += more - kept;
        }
        if cut {
            state.cut_at = state.started;
            state.recent = None;
            state.course.lowest = state.course.lowest.min(target);
            tracing::debug!(limit = target, "in-flight limit cut");
        }
    }

    pub(crate) fn course(&self) -> LimitCourse {
        self.state.lock().course
    }

    /// Calls allowed in flight now.
    #[cfg(test)]
    fn now(&self) -> usize {
        let state = self.state.lock();
        state.granted - state.owed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` calls one after another, each taking `latency`, with the run's retry count at
    /// `retries` when each ends.
    async fn calls(limit: &AdaptiveLimit, n: usize, latency: Duration, retries: usize) {
        for _ in 0..n {
            let slot = limit.acquire().await;
            limit.release_after(slot, latency, retries);
        }
    }

    /// `n` calls at once.
    async fn round(limit: &AdaptiveLimit, n: usize, latency: Duration, retries: usize) {
        let slots: Vec<_> = futures::future::join_all((0..n).map(|_| limit.acquire())).await;
        for slot in slots {
            limit.release_after(slot, latency, retries);
        }
    }

    const MS: Duration = Duration::from_millis(1);

    /// A round of `n` calls at once, the first `pushed_back` of which each see an attempt
    /// pushed back, counted from `before`.
    async fn pushed_round(limit: &AdaptiveLimit, n: usize, pushed_back: usize, before: usize) -> usize {
        let slots: Vec<_> = futures::future::join_all((0..n).map(|_| limit.acquire())).await;
        for (i, slot) in slots.into_iter().enumerate() {
            limit.release_after(slot, 10 * MS, before + pushed_back.min(i + 1));
        }
        before + pushed_back
    }

    #[tokio::test]
    async fn pushback_cuts_to_the_share_answered_once_a_round_is_in_and_calm_brings_it_back() {
        let limit = AdaptiveLimit::new(64, 1);
        let mut pushbacks = pushed_round(&limit, 64, 32, 0).await;
        assert_eq!(limit.now(), 64, "judged once a call of the next round ends");
        calls(&limit, 1, 10 * MS, pushbacks).await;
        assert_eq!(limit.now(), 32, "32 of 65 pushed back: halved");
        pushbacks = pushed_round(&limit, 32, 1, pushbacks).await;
        calls(&limit, 1, 10 * MS, pushbacks).await;
        assert_eq!(limit.now(), 31, "one in 33: cut by one in 33");
        pushbacks = pushed_round(&limit, 31, 31, pushbacks).await;
        calls(&limit, 1, 10 * MS, pushbacks).await;
        assert_eq!(limit.now(), 15, "all pushed back: halved, the most cut");
        // Calm: one more call per round, back to the ceiling and no further.
        for _ in 0..100 {
            round(&limit, limit.now(), 10 * MS, pushbacks).await;
        }
        assert_eq!(limit.now(), 64);
        let course = limit.course();
        assert_eq!((course.lowest, course.last, course.cuts_for_pushback), (15, 64, 3));
        assert_eq!(limit.slots.available_permits(), 64);
    }

    #[tokio::test]
    async fn a_cut_below_the_calls_under_way_takes_their_permits_back_as_they_end() {
        let limit = AdaptiveLimit::new(8, 1);
        let pushbacks = pushed_round(&limit, 8, 4, 0).await;
        let mut slots: Vec<_> = futures::future::join_all((0..8).map(|_| limit.acquire())).await;
        limit.release_after(slots.remove(0), 10 * MS, pushbacks);
        assert_eq!(limit.now(), 4, "4 of 9 answers pushed back");
        for slot in slots {
            limit.release_after(slot, 10 * MS, pushbacks);
        }
        assert_eq!(
            limit.slots.available_permits(),
            4,
            "only the new limit's permits are left"
        );
    }

    #[tokio::test]
    async fn a_queue_that_grows_with_the_limit_brings_it_down_after_the_probe() {
        // A server whose answer takes 1 ms per call in flight beyond 8: a queue.
        let limit = AdaptiveLimit::new(64, 1);
        let latency = |in_flight: usize| MS * in_flight.saturating_sub(8).max(1) as u32;
        while limit.course().floor_us.is_none() {
            let n = limit.now();
            round(&limit, n, latency(n), 0).await;
        }
        assert_eq!(limit.course().floor_us, Some(1000), "the probe's 8 calls meet no queue");
        for _ in 0..40 {
            let n = limit.now();
            round(&limit, n, latency(n), 0).await;
        }
        let now = limit.now();
        assert!(
            (8..=12).contains(&now),
            "settles where calls queue no more than TOLERANCE allows: {now}"
        );
        assert!(limit.course().cuts_for_latency >= 2);
        assert_eq!(limit.course().cuts_for_pushback, 0);
    }

    #[tokio::test]
    async fn a_permit_handed_over_before_the_probe_does_not_count_towards_its_floor() {
        // Under CPU contention a task can be handed a released permit and be numbered only
        // after the probe began: its call then runs with the old limit's calls in flight (in the
        // pushback test, a floor of 78 ms for calls of 15 ms).
        let limit = AdaptiveLimit::new(16, 1);
        calls(&limit, PROBE_AFTER as usize - 17, MS, 0).await;
        let mut old: Vec<_> = futures::future::join_all((0..16).map(|_| limit.acquire())).await;
        let mut late = std::pin::pin!(limit.acquire());
        assert!(futures::poll!(&mut late).is_pending());
        // The permit goes to `late`, which has not yet run; `prompt` takes the next one.
        limit.release_after(old.remove(0), 100 * MS, 0);
        let prompt = limit.acquire();
        limit.release_after(old.remove(0), 100 * MS, 0);
        old.push(prompt.await);
        // This release begins the probe, at 2 calls; `late` is numbered within it.
        limit.release_after(old.remove(0), 100 * MS, 0);
        assert_eq!(limit.now(), 2);
        let late = late.await;
        assert!(late.over_limit);
        limit.release_after(late, 100 * MS, 0);
        for slot in old {
            limit.release_after(slot, 100 * MS, 0);
        }
        calls(&limit, 2, MS, 0).await;
        assert_eq!(limit.course().floor_us, Some(1000), "only the probe's own calls count");
    }

    #[tokio::test]
    async fn latency_that_cuts_do_not_bring_down_raises_the_floor_instead() {
        let limit = AdaptiveLimit::new(32, 1);
        while limit.course().floor_us.is_none() {
            round(&limit, limit.now(), 10 * MS, 0).await;
        }
        // S3 itself slows to 50 ms, whatever the load.
        for _ in 0..20 {
            round(&limit, limit.now(), 50 * MS, 0).await;
        }
        assert_eq!(limit.course().cuts_for_latency, 1, "one cut, which did not help");
        assert_eq!(limit.course().floor_us, Some(25_000));
        for _ in 0..100 {
            round(&limit, limit.now(), 50 * MS, 0).await;
        }
        assert_eq!(limit.now(), 32, "back to the ceiling");
    }

    #[tokio::test]
    async fn a_limit_shared_by_runs_starts_and_grows_by_its_share_while_none_is_pushed_back() {
        // One of four runs sharing a ceiling of 64.
        let limit = AdaptiveLimit::new(64, 4);
        assert_eq!((limit.now(), limit.slots.available_permits()), (16, 16));
        for _ in 0..8 {
            round(&limit, limit.now(), 10 * MS, 0).await;
        }
        assert_eq!(
            limit.now(),
            17,
            "a quarter of a call more per round: four runs, one call"
        );
        for _ in 0..400 {
            round(&limit, limit.now(), 10 * MS, 0).await;
        }
        assert_eq!(limit.now(), 64, "up to the ceiling and no further");
        let course = limit.course();
        assert_eq!((course.ceiling, course.lowest, course.cuts_for_pushback), (64, 16, 0));
    }

    #[tokio::test]
    async fn a_run_shorter_than_the_probe_never_slows_for_it() {
        let limit = AdaptiveLimit::new(16, 1);
        for _ in 0..(PROBE_AFTER / 16 - 1) {
            round(&limit, 16, 10 * MS, 0).await;
            assert_eq!(limit.now(), 16);
        }
        assert_eq!(limit.course().floor_us, None);
    }
}
