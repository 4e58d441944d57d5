//! Measuring: a shared clock, latency histograms, and per-subscriber seq tracking that
//! tells lost, duplicated and out-of-order events apart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use hdrhistogram::Histogram;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds on this process's clock (the one embedded in client ids).
pub fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Latencies in µs. Thousands of tasks record at once, so the histogram is sharded (a
/// histogram per connection would cost ~100 KB each); shards merge when reported.
pub struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Latencies {
    pub fn new() -> Self {
        let shards = (0..16)
            .map(|_| {
                // 1 µs to 10 min at 3 significant digits; the bounds are valid constants.
                Mutex::new(
                    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
                )
            })
            .collect();
        Self { shards }
    }

    pub fn record(&self, shard: usize, micros: u64) {
        let mut histogram = lock(&self.shards[shard % self.shards.len()]);
        histogram.saturating_record(micros.max(1));
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut total = lock(&self.shards[0]).clone();
        for shard in &self.shards[1..] {
            // Same bounds everywhere, so adding cannot fail.
            let _ = total.add(&*lock(shard));
        }
        total
    }
}

/// p50/p99/p99.9/max in milliseconds, as printed and written to the JSON result.
pub fn summary(histogram: &Histogram<u64>) -> serde_json::Value {
    let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
    serde_json::json!({
        "count": histogram.len(),
        "p50_ms": ms(histogram.value_at_quantile(0.50)),
        "p99_ms": ms(histogram.value_at_quantile(0.99)),
        "p999_ms": ms(histogram.value_at_quantile(0.999)),
        "max_ms": ms(histogram.max()),
    })
}

/// One subscriber's view of one room: every seq after the subscription's `last_seq`
/// must arrive exactly once, in order.
#[derive(Debug, Default, Clone)]
pub struct SeqTracker {
    /// The next seq expected in order.
    next: i64,
    /// Seqs skipped over so far; a late arrival fills its hole (out of order).
    holes: BTreeSet<i64>,
    pub received: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
}

impl SeqTracker {
    pub fn new(last_seq: i64) -> Self {
        Self {
            next: last_seq + 1,
            ..Self::default()
        }
    }

    pub fn observe(&mut self, seq: i64) {
        self.received += 1;
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.holes.extend(self.next..seq);
            self.next = seq + 1;
        } else if self.holes.remove(&seq) {
            self.out_of_order += 1;
        } else {
            self.duplicated += 1;
        }
    }

    /// Events never received, given the room's final seq.
    pub fn lost(&self, final_seq: i64) -> u64 {
        self.holes.len() as u64 + (final_seq + 1 - self.next).max(0) as u64
    }

    pub fn max_seen(&self) -> i64 {
        self.next - 1
    }
}

/// Counts of things that went wrong, by name (error codes, close codes).
#[derive(Default)]
pub struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    pub fn add(&self, what: impl Into<String>) {
        *lock(&self.0).entry(what.into()).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        lock(&self.0).clone()
    }
}

/// How many files (sockets included) a process has open, from /proc.
pub fn open_files(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// VmRSS of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS")
}

/// A memory figure (`VmRSS`, `RssAnon`, …) of a process in KiB, from /proc.
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {field} in /proc/{pid}/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_lost_duplicated_and_out_of_order_apart() {
        let mut t = SeqTracker::new(10);
        for seq in [11, 12, 14, 13, 13, 16] {
            t.observe(seq);
        }
        assert_eq!((t.duplicated, t.out_of_order), (1, 1));
        // 15 never came, and 17 and 18 are missing at the end.
        assert_eq!(t.lost(18), 3);
    }
}
