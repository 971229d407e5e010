//! Sending one endpoint's batches, one request at a time and in order (so each series' samples arrive in time
//! order): 2xx is sent; 5xx, 429 and network errors are retried with exponential backoff and jitter, honouring
//! `Retry-After`; any other status is final and the batch is counted as failed. Failures are logged when they
//! start, at most every `LOG_EVERY` while they last, and once when sending recovers.

use super::config::RemoteWriteConfig;
use super::queue::SampleQueue;
use super::wire;
use crate::metrics::RemoteWriteMetrics;
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::time::Instant;

const LOG_EVERY: Duration = Duration::from_secs(10);
/// After stop, how long queued samples may still take to go out.
const FLUSH_GRACE: Duration = Duration::from_secs(5);
/// A receiver's `Retry-After` is honoured up to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How a request went.
#[derive(Debug)]
enum Outcome {
    Sent,
    /// Not retried (4xx but 429): the receiver refuses these samples for good.
    Refused(u16, String),
    /// Retried: 5xx, 429 or a network error; the receiver's `Retry-After` when it gave one.
    Retry(String, Option<Duration>),
}

pub struct Sender {
    pub config: RemoteWriteConfig,
    pub queue: Arc<SampleQueue>,
    metrics: RemoteWriteMetrics,
    client: reqwest::Client,
}

impl Sender {
    pub fn new(config: RemoteWriteConfig, metrics: RemoteWriteMetrics) -> Result<Sender, String> {
        let client = crate::client::build(&config.tls, config.timeout)?;
        Ok(Sender {
            queue: Arc::new(SampleQueue::new(config.queue.capacity)),
            config,
            metrics,
            client,
        })
    }

    pub fn metrics(&self) -> &RemoteWriteMetrics {
        &self.metrics
    }

    /// Sends batches until `stop` says so, then flushes what is queued for at most `FLUSH_GRACE`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let q = self.config.queue;
        let mut log = FailureLog::default();
        // Set once stopping: queued samples may go out until then, no later.
        let mut give_up_at: Option<Instant> = None;
        loop {
            let batch = match give_up_at {
                None => {
                    self.queue
                        .next_batch(
                            q.max_samples_per_send,
                            q.batch_send_deadline,
                            stopped(&mut stop),
                        )
                        .await
                }
                Some(_) => {
                    self.queue
                        .next_batch(q.max_samples_per_send, q.batch_send_deadline, async {})
                        .await
                }
            };
            self.metrics.queue_length(self.queue.len());
            // A dropped sender means the same as a stop.
            if give_up_at.is_none() && (*stop.borrow() || stop.has_changed().is_err()) {
                give_up_at = Some(Instant::now() + FLUSH_GRACE);
            }
            if batch.is_empty() {
                if give_up_at.is_some() {
                    return;
                }
                continue;
            }
            if !self
                .deliver(&batch, &mut log, &mut stop, &mut give_up_at)
                .await
            {
                return;
            }
        }
    }

    /// Sends one batch, retrying what may be retried. False when stopping cut it short (the batch is counted
    /// as failed with reason `shutdown`).
    async fn deliver(
        &self,
        batch: &[super::samples::Sample],
        log: &mut FailureLog,
        stop: &mut watch::Receiver<bool>,
        give_up_at: &mut Option<Instant>,
    ) -> bool {
        let q = self.config.queue;
        let body = wire::encode(batch, &self.config.external_labels);
        let mut backoff = q.min_backoff;
        loop {
            let started = Instant::now();
            let outcome = self.send(body.clone()).await;
            self.metrics.send_duration(started.elapsed());
            let (why, retry_after) = match outcome {
                Outcome::Sent => {
                    self.metrics.sent(batch.len(), now_secs());
                    log.recovered(&self.config.name);
                    return true;
                }
                Outcome::Refused(status, why) => {
                    self.metrics.failed("http_4xx", batch.len());
                    log.failed(
                        &self.config.name,
                        &format!(
                            "HTTP {status}: {why}; {} samples dropped, not retried",
                            batch.len()
                        ),
                    );
                    return true;
                }
                Outcome::Retry(why, retry_after) => (why, retry_after),
            };
            log.failed(&self.config.name, &format!("{why}; retrying"));
            let wait = match retry_after {
                Some(r) => r.min(MAX_RETRY_AFTER),
                None => jitter(backoff),
            };
            backoff = (backoff * 2).min(q.max_backoff);
            let retry_at = Instant::now() + wait;
            if give_up_at.is_some_and(|limit| retry_at > limit) {
                self.metrics.failed("shutdown", batch.len());
                return false;
            }
            let stopping = give_up_at.is_none();
            tokio::select! {
                _ = tokio::time::sleep_until(retry_at) => {}
                _ = stopped(stop), if stopping => {
                    *give_up_at = Some(Instant::now() + FLUSH_GRACE);
                }
            }
        }
    }

    async fn send(&self, body: Vec<u8>) -> Outcome {
        let mut req = self
            .client
            .post(self.config.url.clone())
            .header(http::header::CONTENT_TYPE, wire::CONTENT_TYPE)
            .header(http::header::CONTENT_ENCODING, wire::CONTENT_ENCODING)
            .header(wire::VERSION_HEADER, wire::VERSION);
        for (k, v) in &self.config.headers {
            req = req.header(k, v);
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(crate::client::describe(&e), None),
        };
        let status = resp.status();
        if status.is_success() {
            return Outcome::Sent;
        }
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.unwrap_or_default();
        let why: String = text.trim().chars().take(200).collect();
        if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
            Outcome::Retry(format!("HTTP {}: {why}", status.as_u16()), retry_after)
        } else {
            Outcome::Refused(status.as_u16(), why)
        }
    }
}

/// Completes when `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Full jitter on half the backoff: between 50% and 100% of it, so agents restarted together spread out.
fn jitter(backoff: Duration) -> Duration {
    let f: f64 = rand::rng().random_range(0.5..=1.0);
    backoff.mul_f64(f)
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Logs a failure when it starts and then at most every `LOG_EVERY`, and the recovery once.
#[derive(Default)]
struct FailureLog {
    since: Option<Instant>,
    last_logged: Option<Instant>,
    failures: u64,
}

impl FailureLog {
    fn failed(&mut self, remote: &str, why: &str) {
        self.failures += 1;
        let now = Instant::now();
        self.since.get_or_insert(now);
        if self.last_logged.is_none_or(|t| now - t >= LOG_EVERY) {
            self.last_logged = Some(now);
            tracing::warn!(
                remote,
                failures = self.failures,
                "remote write failing: {why}"
            );
        }
    }

    fn recovered(&mut self, remote: &str) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                remote,
                failures = self.failures,
                failing_for_ms = since.elapsed().as_millis() as u64,
                "remote write recovered"
            );
        }
        self.failures = 0;
        self.last_logged = None;
    }
}
