//! The batches this node accepted lately, by site and `batch_id`: a retry of one (its answer was lost) is
//! answered at once, without storing or counting it again. Bounded by count and by age whatever senders send.
//!
//! Only a node's own memory: a retry that lands on another ingest node goes through the whole pipeline there,
//! where the store recognises its events by `(site, event_id)` and stores nothing twice; only that node's
//! metrics may count the batch a second time. Past the bounds the same happens on this node.

use crate::envelope::BatchId;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a recognised retry is answered: what its first attempt was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Events the first attempt accepted (stored, already stored, or spooled).
    pub events: u32,
}

/// Remembered batches, in two generations: lookups see both, inserts go to the current one, and when it is
/// full (half the capacity) or [`RecentBatches::ttl`] old it becomes the previous one and the previous one is
/// forgotten. An entry is a 128-bit keyed hash of (site, batch id), the accepted count and its time in seconds:
/// 24 bytes and a control byte per slot, so the default capacity costs at most ~13 MiB (two tables of 2^18
/// slots).
pub struct RecentBatches {
    inner: Mutex<Generations>,
    /// Two independent random SipHash keys: a 128-bit key that a sender cannot aim at another's batch.
    hashers: (RandomState, RandomState),
    capacity: usize,
    ttl: Duration,
    /// Entry times are seconds since this.
    epoch: Instant,
}

struct Generations {
    current: HashMap<Key, Entry>,
    previous: HashMap<Key, Entry>,
    current_since: Instant,
}

/// Two 64-bit halves rather than a `u128`, whose 16-byte alignment would pad every slot to 32 bytes.
type Key = (u64, u64);

#[derive(Clone, Copy)]
struct Entry {
    events: u32,
    /// Seconds from [`RecentBatches::epoch`] to when the batch was accepted.
    at_secs: u32,
}

impl RecentBatches {
    /// Batches remembered at most (both generations). At 20 events a batch that is 6,000,000 events: the
    /// whole [`Self::TTL`] at 10,000 events/s on one node, and still the ~60 s rum-sdk.js retries a batch at
    /// 100,000 events/s.
    pub const CAPACITY: usize = 300_000;
    /// How long a batch is remembered. rum-sdk.js retries a batch for 30 to 60 s (longer only when a
    /// `Retry-After` says so, a few seconds from this server); 10 minutes also covers a batch resent after
    /// its 5-minute pause (`retryAfterMax`), and a retry later than that is still stored once by event id.
    pub const TTL: Duration = Duration::from_secs(600);

    pub fn new(capacity: usize, ttl: Duration, now: Instant) -> Self {
        Self {
            inner: Mutex::new(Generations {
                current: HashMap::new(),
                previous: HashMap::new(),
                current_since: now,
            }),
            hashers: (RandomState::new(), RandomState::new()),
            capacity: capacity.max(2),
            ttl,
            epoch: now,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn key(&self, site: usize, id: &BatchId) -> Key {
        let v = (site, id.as_str());
        (self.hashers.0.hash_one(v), self.hashers.1.hash_one(v))
    }

    fn secs(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX)
    }

    /// The first attempt of this batch of `site`, if it was accepted less than [`Self::ttl`] ago and is
    /// still remembered.
    pub fn get(&self, site: usize, id: &BatchId, now: Instant) -> Option<Accepted> {
        let key = self.key(site, id);
        let now_secs = self.secs(now);
        let mut g = self.inner.lock().expect("recent batches");
        self.rotate(&mut g, now);
        let e = g.current.get(&key).or_else(|| g.previous.get(&key))?;
        (u64::from(now_secs - e.at_secs.min(now_secs)) < self.ttl.as_secs())
            .then_some(Accepted { events: e.events })
    }

    /// Remembers that this batch of `site` was accepted now.
    pub fn insert(&self, site: usize, id: &BatchId, accepted: Accepted, now: Instant) {
        let key = self.key(site, id);
        let entry = Entry {
            events: accepted.events,
            at_secs: self.secs(now),
        };
        let mut g = self.inner.lock().expect("recent batches");
        self.rotate(&mut g, now);
        if g.current.len() >= self.capacity / 2 {
            g.previous = std::mem::take(&mut g.current);
            g.current_since = now;
        }
        g.current.insert(key, entry);
    }

    /// Starts a new generation once the current one is `ttl` old; both go once the previous one is
    /// `ttl` old as well (nothing in it could be answered).
    fn rotate(&self, g: &mut Generations, now: Instant) {
        let age = now.saturating_duration_since(g.current_since);
        if age >= self.ttl.saturating_mul(2) {
            g.previous.clear();
            g.current.clear();
            g.current_since = now;
        } else if age >= self.ttl {
            g.previous = std::mem::take(&mut g.current);
            g.current_since = now;
        }
    }

    /// Batches remembered now (both generations; some may be past their age).
    pub fn len(&self) -> usize {
        let g = self.inner.lock().expect("recent batches");
        g.current.len() + g.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for RecentBatches {
    fn default() -> Self {
        Self::new(Self::CAPACITY, Self::TTL, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn id(s: &str) -> BatchId {
        BatchId::parse(&RawValue::from_string(format!("\"{s}\"")).unwrap()).unwrap()
    }

    const ONE: Accepted = Accepted { events: 20 };

    #[test]
    fn remembered_per_site_until_its_age() {
        let t0 = Instant::now();
        let r = RecentBatches::new(100, Duration::from_secs(600), t0);
        r.insert(0, &id("a"), ONE, t0);
        assert_eq!(r.get(0, &id("a"), t0), Some(ONE));
        assert_eq!(r.get(1, &id("a"), t0), None, "another site's batch");
        assert_eq!(r.get(0, &id("b"), t0), None);
        let later = t0 + Duration::from_secs(599);
        assert_eq!(r.get(0, &id("a"), later), Some(ONE));
        assert_eq!(r.get(0, &id("a"), t0 + Duration::from_secs(600)), None);
        // Both generations are gone after twice the age.
        r.insert(0, &id("c"), ONE, t0 + Duration::from_secs(601));
        assert_eq!(r.len(), 2);
        r.get(0, &id("c"), t0 + Duration::from_secs(1900));
        assert!(r.is_empty());
    }

    #[test]
    fn bounded_by_count_whatever_is_sent() {
        let t0 = Instant::now();
        let r = RecentBatches::new(1_000, Duration::from_secs(600), t0);
        r.insert(0, &id("first"), ONE, t0);
        for i in 0..100_000 {
            r.insert(0, &id(&format!("flood-{i}")), ONE, t0);
            assert!(r.len() <= 1_000);
        }
        // The oldest went first; the newest are remembered.
        assert_eq!(r.get(0, &id("first"), t0), None);
        assert_eq!(r.get(0, &id("flood-99999"), t0), Some(ONE));
        assert_eq!(r.get(0, &id("flood-99500"), t0), Some(ONE));
    }
}
