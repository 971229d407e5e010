//! Per-site token buckets counted in events; a site over its rate gets 429 with Retry-After.

use crate::config::RateLimit;
use std::sync::Mutex;
use std::time::Instant;

/// One bucket per site (index into the config's site list).
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Vec<Mutex<Bucket>>,
    limits: Vec<RateLimit>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(limits: Vec<RateLimit>) -> Self {
        let now = Instant::now();
        Self {
            buckets: limits
                .iter()
                .map(|l| {
                    Mutex::new(Bucket {
                        tokens: l.burst,
                        last: now,
                    })
                })
                .collect(),
            limits,
        }
    }

    /// Takes `n` tokens for `site`, or says how many whole seconds until they would be there.
    pub fn take(&self, site: usize, n: usize, now: Instant) -> Result<(), u64> {
        let l = self.limits[site];
        let mut b = self.buckets[site].lock().expect("bucket");
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * l.events_per_second).min(l.burst);
        b.last = now;
        let need = n as f64;
        if b.tokens >= need {
            b.tokens -= need;
            Ok(())
        } else {
            Err(((need - b.tokens) / l.events_per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills() {
        let r = RateLimiter::new(vec![RateLimit {
            events_per_second: 10.0,
            burst: 20.0,
        }]);
        let t0 = Instant::now();
        assert!(r.take(0, 20, t0).is_ok());
        assert_eq!(r.take(0, 10, t0), Err(1));
        assert!(r.take(0, 10, t0 + Duration::from_secs(1)).is_ok());
        assert_eq!(r.take(0, 20, t0 + Duration::from_secs(1)), Err(2));
    }
}
