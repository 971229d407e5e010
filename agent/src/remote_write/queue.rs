//! One endpoint's bounded sample queue: pushing never waits and never grows past the capacity (the oldest
//! samples make room and are counted as dropped); the sender takes batches by size or age.

use super::samples::Sample;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

pub struct SampleQueue {
    capacity: usize,
    state: Mutex<State>,
    arrived: Notify,
}

struct State {
    samples: VecDeque<Sample>,
    /// When the oldest queued sample arrived (for the batch deadline).
    oldest_at: Option<Instant>,
}

impl SampleQueue {
    pub fn new(capacity: usize) -> Self {
        SampleQueue {
            capacity,
            state: Mutex::new(State {
                samples: VecDeque::new(),
                oldest_at: None,
            }),
            arrived: Notify::new(),
        }
    }

    /// Appends `samples`; returns how many old samples were dropped to make room.
    pub fn push(&self, samples: impl IntoIterator<Item = Sample>) -> usize {
        let mut dropped = 0;
        {
            let mut st = self.state.lock().unwrap();
            for s in samples {
                if st.samples.len() == self.capacity {
                    st.samples.pop_front();
                    dropped += 1;
                }
                st.samples.push_back(s);
            }
            if st.oldest_at.is_none() && !st.samples.is_empty() {
                st.oldest_at = Some(Instant::now());
            }
        }
        self.arrived.notify_one();
        dropped
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until `max` samples are queued or the oldest has waited `deadline`, then takes up to `max`.
    /// Returns at once with what is queued (possibly nothing) when `flush` completes first.
    pub async fn next_batch(
        &self,
        max: usize,
        deadline: Duration,
        flush: impl std::future::Future<Output = ()>,
    ) -> Vec<Sample> {
        tokio::pin!(flush);
        loop {
            let notified = self.arrived.notified();
            let wake_at = {
                let mut st = self.state.lock().unwrap();
                let due = st.oldest_at.is_some_and(|t| t.elapsed() >= deadline);
                if st.samples.len() >= max || due {
                    return take(&mut st, max);
                }
                st.oldest_at.map(|t| t + deadline)
            };
            tokio::select! {
                _ = notified => {}
                _ = async {
                    match wake_at {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {}
                _ = &mut flush => {
                    let mut st = self.state.lock().unwrap();
                    return take(&mut st, max);
                }
            }
        }
    }
}

fn take(st: &mut State, max: usize) -> Vec<Sample> {
    let n = st.samples.len().min(max);
    let batch: Vec<Sample> = st.samples.drain(..n).collect();
    // What stays behind arrived after the batch's oldest sample: keeping that time sends it no later than its
    // own deadline.
    if st.samples.is_empty() {
        st.oldest_at = None;
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::samples::Series;

    fn samples(n: usize) -> Vec<Sample> {
        let series = Series::parse("x").unwrap();
        (0..n)
            .map(|i| Sample {
                series: series.clone(),
                value: i as f64,
                timestamp_ms: i as i64,
            })
            .collect()
    }

    #[test]
    fn full_queue_drops_the_oldest() {
        let q = SampleQueue::new(3);
        assert_eq!(q.push(samples(5)), 2);
        assert_eq!(q.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn batches_by_size_then_by_age() {
        let q = SampleQueue::new(100);
        q.push(samples(5));
        let full = q
            .next_batch(3, Duration::from_secs(5), std::future::pending())
            .await;
        assert_eq!(full.len(), 3);
        let start = Instant::now();
        let rest = q
            .next_batch(3, Duration::from_secs(5), std::future::pending())
            .await;
        assert_eq!(rest.iter().map(|s| s.value).collect::<Vec<_>>(), [3.0, 4.0]);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        let flushed = q.next_batch(3, Duration::from_secs(5), async {}).await;
        assert!(flushed.is_empty());
    }
}
