//! Per-site token buckets counted in events; a site over its rate gets 429 with Retry-After.

use crate::config::RateLimit;
use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::Quota;
use std::num::NonZeroU32;
use std::time::Duration;

/// One bucket per site (index into the config's site list): governor's GCRA, which is a token bucket that
/// refills continuously, `burst` deep, at `events_per_second`.
pub struct RateLimiter<C: Clock = MonotonicClock> {
    buckets: Vec<(Bucket<C>, Quota)>,
    clock: C,
}

type Bucket<C> =
    governor::RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

impl RateLimiter {
    pub fn new(limits: &[RateLimit]) -> Self {
        Self::with_clock(limits, MonotonicClock)
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// With a given clock (tests move time by hand).
    pub fn with_clock(limits: &[RateLimit], clock: C) -> Self {
        Self {
            buckets: limits
                .iter()
                .map(|l| {
                    let q = quota(l);
                    (Bucket::direct_with_clock(q, clock.clone()), q)
                })
                .collect(),
            clock,
        }
    }

    /// Takes `n` tokens for `site`, or says how many whole seconds (at least 1) until they would be there.
    pub fn take(&self, site: usize, n: usize) -> Result<(), u64> {
        let Some(n) = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)) else {
            return Ok(());
        };
        let (bucket, quota) = &self.buckets[site];
        let wait = match bucket.check_n(n) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => not_until.wait_time_from(self.clock.now()),
            // More than the bucket holds (the config keeps the burst at least a full batch, so this is a
            // bucket smaller than a batch): the time the missing tokens take, as before.
            Err(_) => quota
                .replenish_interval()
                .saturating_mul(n.get().saturating_sub(quota.burst_size().get())),
        };
        Err(wait.as_secs_f64().ceil().max(1.0) as u64)
    }
}

impl<C: Clock> std::fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("sites", &self.buckets.len())
            .finish()
    }
}

/// One token every `1 / events_per_second` (at least a nanosecond), up to `burst` (whole events, at least 1).
fn quota(l: &RateLimit) -> Quota {
    let per_token = Duration::try_from_secs_f64(1.0 / l.events_per_second)
        .unwrap_or(Duration::MAX)
        .max(Duration::from_nanos(1));
    let burst =
        NonZeroU32::new(l.burst.clamp(1.0, u32::MAX as f64) as u32).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(per_token)
        .expect("period is at least 1ns")
        .allow_burst(burst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn bucket_refills() {
        let clock = FakeRelativeClock::default();
        let r = RateLimiter::with_clock(
            &[RateLimit {
                events_per_second: 10.0,
                burst: 20.0,
            }],
            clock.clone(),
        );
        assert!(r.take(0, 20).is_ok());
        assert_eq!(r.take(0, 10), Err(1));
        clock.advance(Duration::from_secs(1));
        assert!(r.take(0, 10).is_ok());
        assert_eq!(r.take(0, 20), Err(2));
        assert!(r.take(0, 0).is_ok());
    }

    #[test]
    fn slow_rates_and_sites_apart() {
        let clock = FakeRelativeClock::default();
        let r = RateLimiter::with_clock(
            &[
                RateLimit {
                    events_per_second: 0.5,
                    burst: 2.0,
                },
                RateLimit {
                    events_per_second: 1000.0,
                    burst: 1000.0,
                },
            ],
            clock.clone(),
        );
        assert!(r.take(0, 2).is_ok());
        // One token every 2 s: the next two need 4 s.
        assert_eq!(r.take(0, 2), Err(4));
        assert!(r.take(1, 1000).is_ok(), "site 1 has its own bucket");
        clock.advance(Duration::from_millis(1900));
        assert_eq!(r.take(0, 1), Err(1));
        clock.advance(Duration::from_millis(100));
        assert!(r.take(0, 1).is_ok());
    }
}
