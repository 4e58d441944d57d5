//! A connection's own rate limits. They follow `governor`'s algorithm (GCRA) exactly,
//! but each keeps one `Instant` per connection: a `governor` direct limiter also carries
//! its own clock and quota, and every connection has two of them.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use tokio::time::Instant;

/// `per_second` a second, in bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    /// The same limit for a `governor` limiter.
    pub fn quota(self) -> Quota {
        let per_second = NonZeroU32::new(self.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(per_second).allow_burst(burst)
    }

    /// Time between two units once the burst is spent.
    fn interval(self) -> Duration {
        Duration::from_secs(1) / self.per_second.max(1)
    }
}

/// One connection's use of a [`Rate`]: the instant its allowance is whole again (GCRA's
/// "theoretical arrival time").
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    full_at: Instant,
}

impl Bucket {
    pub fn new(now: Instant) -> Self {
        Self { full_at: now }
    }

    /// Takes one unit at `now`, or tells how long until one is available.
    pub fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        let interval = rate.interval();
        let tolerance = interval * rate.burst.max(1).saturating_sub(1);
        let wait = self.full_at.saturating_duration_since(now + tolerance);
        if !wait.is_zero() {
            return Err(wait);
        }
        self.full_at = self.full_at.max(now) + interval;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::{Clock, FakeRelativeClock};
    use governor::{Quota, RateLimiter};

    use super::*;

    /// Arrivals at these offsets (ms), for both the bucket and `governor` on a fake clock.
    fn compare(rate: Rate, arrivals: &[u64]) {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(rate.quota(), clock.clone());
        let start = Instant::now();
        let mut bucket = Bucket::new(start);
        let mut elapsed = 0;
        for at in arrivals {
            clock.advance(Duration::from_millis(at - elapsed));
            elapsed = *at;
            let expected = limiter
                .check()
                .map_err(|not_until| not_until.wait_time_from(clock.now()));
            let got = bucket.take(rate, start + Duration::from_millis(*at));
            assert_eq!(got, expected, "arrival at {at} ms under {rate:?}");
        }
    }

    #[test]
    fn agrees_with_governor() {
        let frames = Rate {
            per_second: 100,
            burst: 200,
        };
        let sends = Rate {
            per_second: 20,
            burst: 60,
        };
        let burst: Vec<u64> = std::iter::repeat_n(0, 250).collect();
        compare(frames, &burst);
        compare(sends, &burst);
        let paced: Vec<u64> = (0..300).map(|i| i * 7).collect();
        compare(frames, &paced);
        compare(sends, &paced);
        let bursts: Vec<u64> = (0..400).map(|i| (i / 80) * 1500 + i % 80).collect();
        compare(sends, &bursts);
        compare(
            Rate {
                per_second: 1,
                burst: 1,
            },
            &[0, 0, 999, 1000, 1000, 2500],
        );
    }

    #[test]
    fn the_quota_is_the_same_limit() {
        let quota = Rate {
            per_second: 20,
            burst: 60,
        }
        .quota();
        assert_eq!(
            quota,
            Quota::per_second(nonzero(20)).allow_burst(nonzero(60))
        );
    }

    fn nonzero(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("not zero")
    }
}
