//! Who used the CPUs during a phase: the whole machine, this process (which also runs
//! the server in the HTTP phase), PostgreSQL's processes, and everything else. On a small
//! machine shared with other work, a latency figure means little without it.
//!
//! Read from /proc (Linux only; elsewhere every figure is zero). All counters are in
//! clock ticks, so they are compared with each other, never with wall time.

use std::collections::HashMap;
use std::fmt;

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    busy: u64,
    all: u64,
    own: u64,
    /// Ticks of each `postgres` process by pid: backends come and go between
    /// snapshots, so only each survivor's own growth is comparable.
    postgres: HashMap<u32, u64>,
}

/// CPU use over an interval, in cores (0..=nproc).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub busy: f64,
    pub own: f64,
    pub postgres: f64,
    pub others: f64,
    pub cores: usize,
}

impl Snapshot {
    pub fn take() -> Snapshot {
        let (busy, all) = machine_ticks().unwrap_or_default();
        Snapshot {
            busy,
            all,
            own: process_ticks("/proc/self/stat").unwrap_or_default(),
            postgres: postgres_ticks(),
        }
    }

    pub fn usage_since(&self, earlier: &Snapshot) -> Usage {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let all = self.all.saturating_sub(earlier.all).max(1) as f64;
        let share = |now: u64, then: u64| now.saturating_sub(then) as f64 / all * cores as f64;
        let busy = share(self.busy, earlier.busy);
        let own = share(self.own, earlier.own);
        let postgres_ticks = self
            .postgres
            .iter()
            .map(|(pid, now)| now.saturating_sub(earlier.postgres.get(pid).copied().unwrap_or(0)))
            .sum();
        let postgres = share(postgres_ticks, 0);
        Usage {
            busy,
            own,
            postgres,
            others: (busy - own - postgres).max(0.0),
            cores,
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.2} of {} cores busy: storebench {:.2}, postgres {:.2}, other processes {:.2}",
            self.busy, self.cores, self.own, self.postgres, self.others
        )
    }
}

/// (busy, all) ticks summed over every CPU, from the first line of /proc/stat.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    let idle = get(3) + get(4);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    Some((busy, busy + idle))
}

/// utime + stime of one process. The command name may contain spaces, so fields are
/// counted from the closing parenthesis: utime and stime are the 12th and 13th after it.
fn process_ticks(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks of every process named `postgres` now alive (the server and its backends,
/// whichever database they serve), by pid. A backend that exits within the interval
/// takes its ticks with it, which then count as "other processes".
fn postgres_ticks() -> HashMap<u32, u64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .filter(|(_, path)| {
            std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(|(pid, path)| Some((pid, process_ticks(&path.join("stat").to_string_lossy())?)))
        .collect()
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
