//! Login throttling: attempts are limited per username and per client address, so
//! neither one account nor one source can be brute-forced. Backed by governor's keyed
//! GCRA limiter; stale keys are swept on each check so memory stays bounded.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Per username: a burst of 10 attempts, then one every 6 s (10 a minute).
const PER_USERNAME_BURST: u32 = 10;
const PER_USERNAME_PERIOD: Duration = Duration::from_secs(6);
/// Per client address: a burst of 30, then one every 2 s (30 a minute); a shared office
/// address gets room for several people mistyping at once.
const PER_ADDRESS_BURST: u32 = 30;
const PER_ADDRESS_PERIOD: Duration = Duration::from_secs(2);

pub struct LoginLimiter {
    per_username: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

fn quota(period: Duration, burst: u32) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl LoginLimiter {
    pub fn new() -> Self {
        Self {
            per_username: RateLimiter::keyed(quota(PER_USERNAME_PERIOD, PER_USERNAME_BURST)),
            per_address: RateLimiter::keyed(quota(PER_ADDRESS_PERIOD, PER_ADDRESS_BURST)),
        }
    }

    /// Counts one attempt; `Err(seconds)` says how long to wait when over either limit.
    pub fn check(&self, username_key: &str, address: Option<IpAddr>) -> Result<(), u64> {
        // The limiter's own clock: building one calibrates it, which is not free.
        let clock = self.per_username.clock();
        let wait = |not_until: governor::NotUntil<_>| {
            not_until.wait_time_from(clock.now()).as_secs().max(1)
        };
        if let Some(address) = address {
            self.per_address.check_key(&address).map_err(wait)?;
        }
        self.per_username
            .check_key(&username_key.to_owned())
            .map_err(wait)?;
        if self.per_username.len() > 10_000 {
            self.per_username.retain_recent();
        }
        if self.per_address.len() > 10_000 {
            self.per_address.retain_recent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_gets_its_burst_then_waits() {
        let limiter = LoginLimiter::new();
        for _ in 0..PER_USERNAME_BURST {
            assert!(limiter.check("ann", None).is_ok());
        }
        let wait = limiter.check("ann", None).unwrap_err();
        assert!((1..=6).contains(&wait), "{wait}");
        assert!(
            limiter.check("bob", None).is_ok(),
            "other usernames are not affected"
        );
    }

    #[test]
    fn an_address_is_limited_across_usernames() {
        let limiter = LoginLimiter::new();
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..PER_ADDRESS_BURST {
            assert!(limiter.check(&format!("user{i}"), Some(address)).is_ok());
        }
        assert!(limiter.check("someone-else", Some(address)).is_err());
    }
}
