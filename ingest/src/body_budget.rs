//! The server-wide budget of memory that request bodies in flight may hold at once.
//!
//! Each body being read takes a [`Reservation`] that grows with the bytes actually received (never with what
//! `Content-Length` declares) and with what gzip inflates them to; it is released when the request is
//! answered. Past the budget a body is refused (503 with `Retry-After`) rather than given more memory, so many
//! slow or stalled senders cannot make the server hold more than `limits.body_memory_bytes`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::Ordering;

/// The budget and its gauges.
pub struct BodyBudget {
    limit: i64,
    held: Gauge,
    bodies: Gauge,
    refused: Counter,
}

/// The budget is spent; the body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

impl BodyBudget {
    pub fn new(limit: usize, registry: &mut Registry) -> Self {
        let b = Self {
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
            held: Gauge::default(),
            bodies: Gauge::default(),
            refused: Counter::default(),
        };
        registry.register_with_unit(
            "vantage_ingest_body_memory",
            "Bytes held by request bodies in flight (received, and inflated from gzip)",
            Unit::Bytes,
            b.held.clone(),
        );
        registry.register(
            "vantage_ingest_bodies_in_flight",
            "Request bodies being read or processed",
            b.bodies.clone(),
        );
        registry.register(
            "vantage_ingest_body_memory_refused",
            "Request bodies refused with 503 because body_memory_bytes was reached",
            b.refused.clone(),
        );
        b
    }

    /// Starts accounting for one body; refused at once when the budget is already spent.
    pub fn reserve(&self) -> Result<Reservation<'_>, Exhausted> {
        if self.held.get() >= self.limit {
            self.refused.inc();
            return Err(Exhausted);
        }
        self.bodies.inc();
        Ok(Reservation {
            budget: self,
            bytes: 0,
        })
    }

    /// Bytes held right now.
    pub fn held(&self) -> usize {
        self.held.get().max(0) as usize
    }
}

/// One body's share of the budget; released on drop.
pub struct Reservation<'a> {
    budget: &'a BodyBudget,
    bytes: i64,
}

impl Reservation<'_> {
    /// Takes `n` more bytes, or none when that would pass the budget.
    pub fn grow(&mut self, n: usize) -> Result<(), Exhausted> {
        let n = i64::try_from(n).map_err(|_| Exhausted)?;
        let held = self.budget.held.inner();
        let mut now = held.load(Ordering::Relaxed);
        loop {
            if now.saturating_add(n) > self.budget.limit {
                self.budget.refused.inc();
                return Err(Exhausted);
            }
            match held.compare_exchange_weak(now, now + n, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => now = actual,
            }
        }
        self.bytes += n;
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.bytes as usize
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.held.dec_by(self.bytes);
        self.budget.bodies.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_grow_within_the_budget_and_release_on_drop() {
        let b = BodyBudget::new(100, &mut Registry::default());
        let mut a = b.reserve().unwrap();
        a.grow(60).unwrap();
        let mut c = b.reserve().unwrap();
        assert_eq!(c.grow(41), Err(Exhausted));
        c.grow(40).unwrap();
        assert_eq!(b.held(), 100);
        // Spent: a new body is refused before it reads anything.
        assert!(b.reserve().is_err());
        drop(a);
        assert_eq!(b.held(), 40);
        assert!(b.reserve().is_ok());
        drop(c);
        assert_eq!(b.held(), 0);
    }
}
