//! Lambda gives a function CPU in proportion to its memory: 1 769 MB buys one vCPU, 128 MB
//! about 7 % of one. The benchmark reproduces that with a cgroup CPU quota per child process:
//! cgroup v2's `cpu.max` where the v2 hierarchy has a cpu controller, else cgroup v1's
//! `cpu.cfs_quota_us`, found through the mount table (hosts mix the two).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Lambda's memory size that buys exactly one vCPU.
pub const MB_PER_VCPU: f64 = 1769.0;
/// The scheduler period the quotas are expressed in, in microseconds.
const PERIOD_US: u64 = 100_000;
/// The kernel refuses quotas under 1 ms.
const MIN_QUOTA_US: u64 = 1_000;

/// The CPU share, in cores, Lambda gives a function of `memory_mb`.
pub fn cpu_share(memory_mb: u32) -> f64 {
    f64::from(memory_mb) / MB_PER_VCPU
}

/// Where CPU quotas can be set on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuController {
    /// A cgroup v2 hierarchy with the cpu controller enabled for sub-groups of `parent`.
    V2 { parent: PathBuf },
    /// cgroup v1's cpu hierarchy.
    V1 { parent: PathBuf },
    /// No usable controller; the sweep runs unthrottled, and says why.
    Unavailable { reason: String },
}

impl CpuController {
    pub fn detect() -> Self {
        match std::fs::read_to_string("/proc/self/mounts") {
            Ok(mounts) => Self::detect_from_mounts(&mounts),
            Err(err) => CpuController::Unavailable {
                reason: format!("cannot read /proc/self/mounts: {err}"),
            },
        }
    }

    /// Picks a controller from a mount table in `/proc/self/mounts` format.
    pub fn detect_from_mounts(mounts: &str) -> Self {
        let mut v1_cpu = None;
        let mut v2_problem = None;
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, path, kind, options, ..] = fields[..] else {
                continue;
            };
            let path = PathBuf::from(unescape_mount_path(path));
            match kind {
                "cgroup2" => match enable_v2_cpu(&path) {
                    Ok(()) => return CpuController::V2 { parent: path },
                    Err(problem) => v2_problem = Some(problem),
                },
                "cgroup" if options.split(',').any(|option| option == "cpu") => v1_cpu = Some(path),
                _ => {}
            }
        }
        match (v1_cpu, v2_problem) {
            (Some(parent), _) => CpuController::V1 { parent },
            (None, Some(problem)) => CpuController::Unavailable {
                reason: format!("{problem}, and cgroup v1's cpu hierarchy is not mounted"),
            },
            (None, None) => CpuController::Unavailable {
                reason: "no cgroup hierarchy is mounted".to_owned(),
            },
        }
    }

    /// Creates a cgroup named `name` holding processes to `cores` CPUs' worth of time.
    pub fn limit(&self, name: &str, cores: f64) -> io::Result<CpuCgroup> {
        let (parent, version) = match self {
            CpuController::V2 { parent } => (parent, CgroupVersion::V2),
            CpuController::V1 { parent } => (parent, CgroupVersion::V1),
            CpuController::Unavailable { reason } => return Err(io::Error::other(reason.clone())),
        };
        let quota_us = ((cores * PERIOD_US as f64).round() as u64).max(MIN_QUOTA_US);
        let path = parent.join(name);
        std::fs::create_dir(&path)?;
        let cgroup = CpuCgroup { path, quota_us };
        match version {
            CgroupVersion::V2 => std::fs::write(cgroup.path.join("cpu.max"), format!("{quota_us} {PERIOD_US}"))?,
            CgroupVersion::V1 => {
                std::fs::write(cgroup.path.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
                std::fs::write(cgroup.path.join("cpu.cfs_quota_us"), quota_us.to_string())?;
            }
        }
        Ok(cgroup)
    }

    /// Removes the groups `prefix<pid>-…` of sweeps whose process is gone: a sweep stopped by a
    /// signal (Ctrl-C) cannot remove its own. A group still holding a process is left alone
    /// (the kernel refuses to remove it). Returns the groups removed.
    pub fn remove_abandoned(&self, prefix: &str) -> Vec<PathBuf> {
        let (CpuController::V2 { parent } | CpuController::V1 { parent }) = self else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(parent) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                let owner = path.file_name().and_then(|name| {
                    name.to_str()?
                        .strip_prefix(prefix)?
                        .split('-')
                        .next()?
                        .parse::<u32>()
                        .ok()
                });
                owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            })
            .filter(|path| std::fs::remove_dir(path).is_ok())
            .collect()
    }
}

impl fmt::Display for CpuController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuController::V2 { parent } => write!(f, "cgroup v2 cpu.max under {}", parent.display()),
            CpuController::V1 { parent } => write!(f, "cgroup v1 cpu.cfs_quota_us under {}", parent.display()),
            CpuController::Unavailable { reason } => write!(f, "none ({reason}): running unthrottled"),
        }
    }
}

/// The v2 cpu controller must be listed for the hierarchy and enabled for its sub-groups.
fn enable_v2_cpu(root: &Path) -> Result<(), String> {
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers"))
        .map_err(|err| format!("cgroup v2 at {} is unreadable ({err})", root.display()))?;
    if !controllers.split_whitespace().any(|c| c == "cpu") {
        return Err(format!("cgroup v2 at {} has no cpu controller", root.display()));
    }
    let subtree = root.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&subtree).unwrap_or_default();
    if enabled.split_whitespace().any(|c| c == "cpu") {
        return Ok(());
    }
    std::fs::write(&subtree, "+cpu").map_err(|err| {
        format!(
            "cgroup v2's cpu controller cannot be enabled at {} ({err})",
            root.display()
        )
    })
}

/// `/proc/self/mounts` escapes spaces and a few other bytes as octal (`\040`).
fn unescape_mount_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 4)
            .and_then(|octal| u8::from_str_radix(octal, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CgroupVersion {
    V1,
    V2,
}

/// A cgroup this process created; removed when dropped (its processes must have exited).
#[derive(Debug)]
pub struct CpuCgroup {
    path: PathBuf,
    quota_us: u64,
}

impl CpuCgroup {
    /// The file a process writes `0` to in order to move itself into the group: a child
    /// does that before any work, so none of it runs unthrottled.
    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    pub fn quota_us(&self) -> u64 {
        self.quota_us
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CpuCgroup {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir(&self.path) {
            eprintln!("warning: cannot remove the cgroup {}: {err}", self.path.display());
        }
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs_file`.
pub fn join(procs_file: &Path) -> io::Result<()> {
    std::fs::write(procs_file, "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("acl-bench-cgroup-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lambda_memory_sizes_map_to_their_cpu_share() {
        assert!((cpu_share(1769) - 1.0).abs() < 1e-9);
        assert!((cpu_share(128) - 0.0724).abs() < 1e-3);
        assert!((cpu_share(3008) - 1.7004).abs() < 1e-3);
    }

    #[test]
    fn v2_with_a_cpu_controller_is_preferred() {
        let v2 = scratch("v2");
        std::fs::write(v2.join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        std::fs::write(v2.join("cgroup.subtree_control"), "cpu memory\n").unwrap();
        let mounts = format!(
            "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 {} cgroup2 rw 0 0\n",
            v2.display()
        );
        assert_eq!(
            CpuController::detect_from_mounts(&mounts),
            CpuController::V2 { parent: v2.clone() }
        );
        std::fs::remove_dir_all(v2).unwrap();
    }

    #[test]
    fn v2_without_cpu_falls_back_to_v1_cpu() {
        let v2 = scratch("v2-nocpu");
        std::fs::write(v2.join("cgroup.controllers"), "memory pids\n").unwrap();
        let mounts = format!(
            "cgroup2 {} cgroup2 rw 0 0\ncgroup /sys/fs/cgroup/cpuacct cgroup rw,cpuacct 0 0\n\
             cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n",
            v2.display()
        );
        assert_eq!(
            CpuController::detect_from_mounts(&mounts),
            CpuController::V1 {
                parent: PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
            }
        );
        std::fs::remove_dir_all(v2).unwrap();
    }

    #[test]
    fn no_controller_says_why() {
        let v2 = scratch("v2-only-memory");
        std::fs::write(v2.join("cgroup.controllers"), "memory\n").unwrap();
        let mounts = format!("cgroup2 {} cgroup2 rw 0 0\nproc /proc proc rw 0 0\n", v2.display());
        let CpuController::Unavailable { reason } = CpuController::detect_from_mounts(&mounts) else {
            panic!("expected no controller");
        };
        assert!(reason.contains("has no cpu controller"), "{reason}");
        assert!(reason.contains("v1's cpu hierarchy is not mounted"), "{reason}");
        assert!(
            CpuController::detect_from_mounts("")
                .to_string()
                .contains("running unthrottled")
        );
        std::fs::remove_dir_all(v2).unwrap();
    }

    #[test]
    fn mount_paths_with_escaped_spaces_are_decoded() {
        assert_eq!(unescape_mount_path(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape_mount_path(r"/odd\x"), r"/odd\x");
    }

    #[test]
    fn quotas_are_written_in_each_version_s_format() {
        for (controller, file, expected) in [("v1", "cpu.cfs_quota_us", "7236"), ("v2", "cpu.max", "7236 100000")] {
            let parent = scratch(&format!("quota-{controller}"));
            let controller = if controller == "v1" {
                CpuController::V1 { parent: parent.clone() }
            } else {
                CpuController::V2 { parent: parent.clone() }
            };
            let cgroup = controller.limit("bench-128", cpu_share(128)).unwrap();
            assert_eq!(std::fs::read_to_string(cgroup.path().join(file)).unwrap(), expected);
            assert_eq!(cgroup.procs_file(), parent.join("bench-128").join("cgroup.procs"));
            // A real cgroup directory removes itself with its control files; a scratch one does not.
            std::fs::remove_dir_all(cgroup.path()).unwrap();
            std::fs::create_dir(cgroup.path()).unwrap();
            drop(cgroup);
            assert!(!parent.join("bench-128").exists());
            std::fs::remove_dir_all(parent).unwrap();
        }
    }

    #[test]
    fn tiny_shares_are_raised_to_the_kernel_minimum() {
        let parent = scratch("minimum");
        let cgroup = CpuController::V1 { parent: parent.clone() }
            .limit("tiny", 0.001)
            .unwrap();
        assert_eq!(cgroup.quota_us(), MIN_QUOTA_US);
        std::fs::remove_dir_all(cgroup.path()).unwrap();
        std::fs::create_dir(cgroup.path()).unwrap();
        drop(cgroup);
        std::fs::remove_dir_all(parent).unwrap();
    }

    #[test]
    fn groups_of_sweeps_that_are_gone_are_removed_and_others_kept() {
        let parent = scratch("abandoned");
        // No process has a pid this large (the kernel's limit is 2^22).
        let abandoned = parent.join("acl-bench-99999999-128mb");
        let own = parent.join(format!("acl-bench-{}-128mb", std::process::id()));
        let unrelated = parent.join("someone-else-1");
        for dir in [&abandoned, &own, &unrelated] {
            std::fs::create_dir(dir).unwrap();
        }
        let controller = CpuController::V1 { parent: parent.clone() };
        assert_eq!(controller.remove_abandoned("acl-bench-"), vec![abandoned.clone()]);
        assert!(!abandoned.exists());
        assert!(own.exists() && unrelated.exists());
        std::fs::remove_dir_all(parent).unwrap();
    }

    /// On a machine where this process may create cgroups (root, as in CI), the real thing:
    /// the group is created with the quota, a process joins it, and the group is removed.
    #[test]
    fn the_detected_controller_creates_joins_and_removes_a_real_group() {
        let controller = CpuController::detect();
        let cgroup = match controller.limit(&format!("acl-bench-test-{}", std::process::id()), 0.5) {
            Ok(cgroup) => cgroup,
            Err(err) => {
                eprintln!("skipped: no cgroup can be created here ({controller}; {err})");
                return;
            }
        };
        let path = cgroup.path().to_owned();
        let mut child = std::process::Command::new("sleep").arg("0.2").spawn().unwrap();
        std::fs::write(cgroup.procs_file(), child.id().to_string()).unwrap();
        let members = std::fs::read_to_string(cgroup.procs_file()).unwrap();
        assert!(members.lines().any(|pid| pid == child.id().to_string()), "{members}");
        child.wait().unwrap();
        drop(cgroup);
        assert!(!path.exists(), "{} was not removed", path.display());
    }
}
