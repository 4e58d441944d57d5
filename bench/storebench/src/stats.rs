//! Latency summaries: exact percentiles from all samples (10,000 samples sort in
//! microseconds, so no histogram approximation is needed).

use std::time::Duration;

/// p50/p99/max of a set of latencies, plus how many there were.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Summary {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let total: Duration = sorted.iter().sum();
        Summary {
            count: sorted.len(),
            p50: percentile(&sorted, 0.50),
            p99: percentile(&sorted, 0.99),
            max: sorted.last().copied().unwrap_or_default(),
            mean: if sorted.is_empty() {
                Duration::ZERO
            } else {
                total / sorted.len() as u32
            },
        }
    }

    /// `p50 0.21 ms, p99 0.48 ms, max 3.10 ms`.
    pub fn line(&self) -> String {
        format!(
            "p50 {}, p99 {}, max {}, mean {} (n={})",
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            ms(self.mean),
            self.count
        )
    }
}

/// Nearest-rank percentile of an ascending slice.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with enough digits for sub-millisecond figures.
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 {
        format!("{v:.3} ms")
    } else {
        format!("{v:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&samples);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
    }
}
