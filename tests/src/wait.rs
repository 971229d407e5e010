//! Waiting for a condition on live processes: polled, with a deadline, and the last error kept for the message.

use anyhow::{bail, Result};
use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `cond` every 250 ms until it holds, or fails after `timeout` naming `what` and the last error.
pub async fn until<F, Fut>(what: &str, timeout: Duration, mut cond: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        match cond().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {timeout:?} (last error: {last:?})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
