//! When a check is due: a fixed interval with a stable per-check phase, or a cron expression.
//!
//! Due times are wall-clock instants. Interval checks fire at `k * interval + offset` since the Unix epoch, where
//! `offset` comes from a hash of the check's name: a thousand checks spread over the interval instead of firing in
//! the same millisecond, and a restarted agent keeps each check's phase.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a check runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `every: 30s`.
    Every(Duration),
    /// `schedule: "*/5 * * * *"`.
    Cron(Box<CronExpr>),
}

impl Schedule {
    /// The first due time strictly after `after`. `name` gives interval checks their phase.
    /// `None` only for a cron expression that never fires again.
    pub fn next_after(&self, name: &str, after: SystemTime) -> Option<SystemTime> {
        match self {
            Schedule::Every(interval) => Some(next_interval(
                *interval,
                phase_offset(name, *interval),
                after,
            )),
            Schedule::Cron(c) => c.next_after(after),
        }
    }

    /// The shortest gap between two runs (for cron: over the next few firings), to bound the timeout.
    pub fn min_interval(&self) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(c) => c.min_interval(),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "every {}", humantime::format_duration(*d)),
            Schedule::Cron(c) => write!(f, "cron {}", c.source),
        }
    }
}

/// A parsed cron expression: 5 fields (minute precision, as crontab), or 6/7 fields (with seconds, years). UTC.
#[derive(Debug, Clone)]
pub struct CronExpr {
    source: String,
    schedule: cron::Schedule,
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl CronExpr {
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let after: DateTime<Utc> = after.into();
        self.schedule.after(&after).next().map(SystemTime::from)
    }

    fn min_interval(&self) -> Duration {
        let times: Vec<DateTime<Utc>> = self.schedule.upcoming(Utc).take(16).collect();
        times
            .windows(2)
            .filter_map(|w| (w[1] - w[0]).to_std().ok())
            .min()
            .unwrap_or(Duration::from_secs(24 * 3600))
    }
}

impl FromStr for CronExpr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let fields = s.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {s}"),
            6 | 7 => s.to_string(),
            n => {
                return Err(format!(
                    "cron expression {s:?} has {n} fields; expected 5 (minute hour day month weekday) or 6/7 (with seconds first, year last)"
                ))
            }
        };
        let schedule = cron::Schedule::from_str(&full)
            .map_err(|e| format!("invalid cron expression {s:?}: {e}"))?;
        if schedule.upcoming(Utc).next().is_none() {
            return Err(format!("cron expression {s:?} never fires"));
        }
        Ok(CronExpr {
            source: s.to_string(),
            schedule,
        })
    }
}

impl<'de> Deserialize<'de> for CronExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A stable offset in `[0, interval)` from the check's name (FNV-1a: the same across builds and restarts).
pub fn phase_offset(name: &str, interval: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let nanos = interval.as_nanos().max(1);
    Duration::from_nanos((u128::from(h) % nanos) as u64)
}

/// The first `k * interval + offset` (since the epoch) strictly after `after`.
fn next_interval(interval: Duration, offset: Duration, after: SystemTime) -> SystemTime {
    let since = after
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let (iv, off) = (interval.as_nanos().max(1), offset.as_nanos());
    let k = if since < off {
        0
    } else {
        (since - off) / iv + 1
    };
    let due = off + k * iv;
    UNIX_EPOCH + Duration::from_nanos(due as u64)
}

/// Maps tokio's monotonic clock to wall-clock time from one anchor, so schedules follow tokio's (possibly paused)
/// clock in tests and never jump when the system clock is stepped.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: tokio::time::Instant,
    wall: SystemTime,
}

impl Clock {
    pub fn system() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A clock whose "now" is `wall` (tests pick a fixed date).
    pub fn starting_at(wall: SystemTime) -> Self {
        Self {
            instant: tokio::time::Instant::now(),
            wall,
        }
    }

    pub fn wall(&self, at: tokio::time::Instant) -> SystemTime {
        self.wall + at.saturating_duration_since(self.instant)
    }

    pub fn now(&self) -> SystemTime {
        self.wall(tokio::time::Instant::now())
    }

    pub fn instant(&self, wall: SystemTime) -> tokio::time::Instant {
        match wall.duration_since(self.wall) {
            Ok(d) => self.instant + d,
            Err(_) => self.instant,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn interval_offset_is_stable_and_within_interval() {
        let iv = Duration::from_secs(30);
        let a = phase_offset("api-health", iv);
        assert_eq!(a, phase_offset("api-health", iv));
        assert!(a < iv);
        assert_ne!(a, phase_offset("api-health-2", iv));
    }

    #[test]
    fn interval_due_times_are_aligned_to_the_offset() {
        let s = Schedule::Every(Duration::from_secs(10));
        let off = phase_offset("x", Duration::from_secs(10));
        let t1 = s.next_after("x", at(1_000_000)).unwrap();
        let since = t1.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(since.as_nanos() % 10_000_000_000, off.as_nanos());
        assert!(t1 > at(1_000_000) && t1 <= at(1_000_010));
        // Strictly after: asking at a due time gives the next one.
        assert_eq!(s.next_after("x", t1).unwrap(), t1 + Duration::from_secs(10));
    }

    #[test]
    fn offsets_spread_many_checks() {
        let iv = Duration::from_secs(10);
        let mut buckets = [0u32; 10];
        for i in 0..1000 {
            buckets[(phase_offset(&format!("check-{i}"), iv).as_secs()) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 50), "{buckets:?}");
    }

    #[test]
    fn cron_accepts_five_six_and_seven_fields() {
        let five: CronExpr = "*/5 * * * *".parse().unwrap();
        // 2026-01-01T00:01:00Z -> next is 00:05:00.
        let base = at(1_767_225_660);
        assert_eq!(five.next_after(base).unwrap(), at(1_767_225_900));
        let six: CronExpr = "30 * * * * *".parse().unwrap();
        assert_eq!(six.next_after(base).unwrap(), at(1_767_225_690));
        assert!("0 0 12 * * * 2099".parse::<CronExpr>().is_ok());
        assert_eq!(
            Schedule::Cron(Box::new(five)).min_interval(),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn cron_errors_are_clear() {
        let e = "* * *".parse::<CronExpr>().unwrap_err();
        assert!(e.contains("has 3 fields"), "{e}");
        let e = "61 * * * *".parse::<CronExpr>().unwrap_err();
        assert!(e.contains("invalid cron expression"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn clock_follows_tokio_time() {
        let c = Clock::starting_at(at(100));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(c.now(), at(105));
        assert_eq!(
            c.instant(at(110)) - tokio::time::Instant::now(),
            Duration::from_secs(5)
        );
    }
}
