//! On Lambda, S3 answers from other machines: a function's CPU share is its own. Here the
//! embedded endpoint runs on the same machine as the children, and left to the scheduler it
//! shares their cores and caches, which adds to the CPU a child is charged for each call
//! (about a tenth, measured at full CPU). So the sweep gives the endpoint a core of its own
//! and the children the others, where the machine has a core to spare.

use std::fmt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// Which CPUs the endpoint and the children run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorePlan {
    endpoint: Vec<usize>,
    children: Vec<usize>,
}

impl CorePlan {
    /// The CPUs this process may run on, split: the last for the endpoint, the rest for the
    /// children. `None` with a single CPU, where there is nothing to split.
    pub fn for_this_process() -> Option<Self> {
        let allowed = sched_getaffinity(Pid::from_raw(0)).ok()?;
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&cpu| allowed.is_set(cpu).unwrap_or(false))
            .collect();
        Self::split(&cpus)
    }

    pub fn split(cpus: &[usize]) -> Option<Self> {
        let (endpoint, children) = cpus.split_last()?;
        (!children.is_empty()).then(|| CorePlan {
            endpoint: vec![*endpoint],
            children: children.to_vec(),
        })
    }

    pub fn endpoint(&self) -> &[usize] {
        &self.endpoint
    }

    /// The CPUs for a child allowed `cores` CPUs' worth of time: the children's own when that
    /// share fits in them, else `None` (every CPU, the endpoint's included, rather than a
    /// share cut down to fewer cores than it buys).
    pub fn children_for(&self, cores: f64) -> Option<&[usize]> {
        (cores <= self.children.len() as f64).then_some(self.children.as_slice())
    }
}

impl fmt::Display for CorePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spare = self.children.len();
        write!(
            f,
            "endpoint on CPU {}, children on CPU {} (a share of more than {spare} {}: every CPU)",
            list(&self.endpoint),
            list(&self.children),
            if spare == 1 { "CPU" } else { "CPUs" }
        )
    }
}

fn list(cpus: &[usize]) -> String {
    cpus.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// Runs `command`'s process on `cpus` only, from its first instruction: the affinity is set
/// between fork and exec, and its threads inherit it.
pub fn pin(command: &mut Command, cpus: &[usize]) -> nix::Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)?;
    }
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are allowed: it makes one system call on a set built before the fork, and neither
    // allocates nor locks.
    unsafe {
        command.pre_exec(move || sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_cpu_serves_the_endpoint_and_the_others_the_children() {
        let plan = CorePlan::split(&[0, 1, 2, 3]).unwrap();
        assert_eq!(plan.endpoint(), [3]);
        assert_eq!(plan.children_for(1.0), Some([0, 1, 2].as_slice()));
        assert_eq!(
            plan.to_string(),
            "endpoint on CPU 3, children on CPU 0,1,2 (a share of more than 3 CPUs: every CPU)"
        );
    }

    #[test]
    fn one_cpu_is_not_split() {
        assert_eq!(CorePlan::split(&[5]), None);
        assert_eq!(CorePlan::split(&[]), None);
    }

    #[test]
    fn a_share_larger_than_the_children_s_cpus_runs_on_every_cpu() {
        let plan = CorePlan::split(&[0, 1]).unwrap();
        assert_eq!(
            plan.to_string(),
            "endpoint on CPU 1, children on CPU 0 (a share of more than 1 CPU: every CPU)"
        );
        assert_eq!(plan.children_for(0.07), Some([0].as_slice()));
        assert_eq!(plan.children_for(1.0), Some([0].as_slice()));
        assert_eq!(plan.children_for(1.7), None);
    }

    #[test]
    fn a_pinned_process_runs_only_on_its_cpus() {
        let Some(plan) = CorePlan::for_this_process() else {
            eprintln!("skipped: this process may run on one CPU only");
            return;
        };
        let mut command = Command::new("cat");
        command.arg("/proc/self/status");
        pin(&mut command, plan.endpoint()).unwrap();
        let status = String::from_utf8(command.output().unwrap().stdout).unwrap();
        let allowed = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim();
        assert_eq!(allowed, list(plan.endpoint()));
    }
}
