//! Where the CPU went during a measurement: each started process's user+system time from
//! `/proc/<pid>/stat`, and the whole machine's from `/proc/stat`, so what is left is Postgres,
//! the bench itself and whatever else shares the machine.

use crate::procs::Proc;
use std::time::Duration;

/// Clock ticks per second of `/proc` CPU times (USER_HZ, fixed at 100 in Linux's ABI on the
/// architectures this runs on).
const TICKS_PER_SEC: f64 = 100.0;

/// The name under which the stack's Postgres backends are counted. Backends that close between
/// two snapshots take their time with them, so this is a floor.
pub const POSTGRES: &str = "postgres (this stack's connections)";

/// CPU ticks of named processes and of the machine at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuSnapshot {
    pub procs: Vec<(String, Ticks)>,
    pub machine: MachineTicks,
}

/// A process's CPU ticks in user space and in the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticks {
    pub user: u64,
    pub system: u64,
}

impl std::iter::Sum for Ticks {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |a, b| Self {
            user: a.user + b.user,
            system: a.system + b.system,
        })
    }
}

/// CPU seconds one process used.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcUse {
    pub name: String,
    pub user: f64,
    pub system: f64,
}

impl ProcUse {
    pub fn total(&self) -> f64 {
        self.user + self.system
    }
}

/// `/proc/stat`'s first line, summed into what matters here.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineTicks {
    /// user + nice + system + irq + softirq.
    pub busy: u64,
    /// Time the hypervisor gave to other guests while this one wanted to run.
    pub steal: u64,
}

/// CPU seconds used between two snapshots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuUse {
    pub procs: Vec<ProcUse>,
    /// Busy seconds of the machine not used by `procs`: the bench, Postgres's background
    /// processes, other jobs.
    pub other: f64,
    pub steal: f64,
    pub wall: Duration,
    pub cores: usize,
}

impl CpuSnapshot {
    /// Ticks of `procs`, and of the Postgres backends serving `database` if there is one (found
    /// by the process title Postgres gives each backend, which names its database).
    pub fn take(procs: &[&Proc], database: Option<&str>) -> Self {
        let mut procs: Vec<(String, Ticks)> = procs
            .iter()
            .filter_map(|p| Some((p.name.clone(), pid_ticks(&p.pid.to_string())?)))
            .collect();
        if let Some(database) = database {
            procs.push((POSTGRES.to_owned(), postgres_ticks(database)));
        }
        let machine = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| machine_ticks(&t))
            .unwrap_or_default();
        Self { procs, machine }
    }

    /// What was used from `self` to `later`, over `wall` seconds.
    pub fn used_until(&self, later: &Self, wall: Duration) -> CpuUse {
        let secs = |ticks: u64| ticks as f64 / TICKS_PER_SEC;
        let procs: Vec<ProcUse> = later
            .procs
            .iter()
            .filter_map(|(name, after)| {
                let before = self.procs.iter().find(|(n, _)| n == name)?.1;
                Some(ProcUse {
                    name: name.clone(),
                    user: secs(after.user.saturating_sub(before.user)),
                    system: secs(after.system.saturating_sub(before.system)),
                })
            })
            .collect();
        let ours: f64 = procs.iter().map(ProcUse::total).sum();
        let busy = secs(later.machine.busy.saturating_sub(self.machine.busy));
        CpuUse {
            procs,
            other: (busy - ours).max(0.0),
            steal: secs(later.machine.steal.saturating_sub(self.machine.steal)),
            wall,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Ticks of the Postgres backends serving `database`.
fn postgres_ticks(database: &str) -> Ticks {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().into_string().ok()?;
            let title = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let title = String::from_utf8_lossy(&title);
            (title.starts_with("postgres: ") && title.contains(database))
                .then(|| pid_ticks(&pid))
                .flatten()
        })
        .sum()
}

/// utime and stime of process `pid`, if it still runs.
fn pid_ticks(pid: &str) -> Option<Ticks> {
    proc_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime and stime of a process from the text of `/proc/<pid>/stat`.
pub fn proc_ticks(stat: &str) -> Option<Ticks> {
    // The command name may hold spaces and parentheses; fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime and stime are fields 14 and 15.
    Some(Ticks { user: fields.get(11)?.parse().ok()?, system: fields.get(12)?.parse().ok()? })
}

/// The machine's busy and steal ticks from the text of `/proc/stat`.
pub fn machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    Some(MachineTicks { busy: at(0) + at(1) + at(2) + at(5) + at(6), steal: at(7) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_and_machine_ticks_parse() {
        let stat = "2659 (my (odd) name) R 2655 2655 20116 0 -1 4194304 127 0 0 0 250 70 0 0 20";
        assert_eq!(proc_ticks(stat), Some(Ticks { user: 250, system: 70 }));
        let machine = "cpu  446528 543 97501 495240 6369 0 6518 17406 0 0\ncpu0 1 2 3\n";
        let m = machine_ticks(machine).unwrap();
        assert_eq!(m, MachineTicks { busy: 446528 + 543 + 97501 + 6518, steal: 17406 });
    }

    #[test]
    fn use_is_the_difference_and_other_is_what_the_procs_did_not_use() {
        let t = |user, system| Ticks { user, system };
        let before = CpuSnapshot {
            procs: vec![("gateway".into(), t(80, 20)), ("worker-1".into(), t(50, 0))],
            machine: MachineTicks { busy: 1000, steal: 10 },
        };
        let after = CpuSnapshot {
            procs: vec![("gateway".into(), t(230, 70)), ("worker-1".into(), t(100, 50))],
            machine: MachineTicks { busy: 1500, steal: 30 },
        };
        let used = before.used_until(&after, Duration::from_secs(3));
        let p = |name: &str, user, system| ProcUse { name: name.into(), user, system };
        assert_eq!(used.procs, vec![p("gateway", 1.5, 0.5), p("worker-1", 0.5, 0.5)]);
        assert!((used.other - 2.0).abs() < 1e-9);
        assert!((used.steal - 0.2).abs() < 1e-9);
    }
}
