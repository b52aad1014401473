//! Deadlines and clocks of the measurements: polling at a chosen interval
//! (the precision of a measured time), bounded awaits, wall-clock stamps.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

/// Polls `probe` every `every` until it returns `Some`, for at most `within`.
pub async fn wait_for<T>(
    within: Duration,
    every: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Awaits `future` for at most `within`.
pub async fn timed<F: std::future::Future>(
    within: Duration,
    what: &str,
    future: F,
) -> Result<F::Output> {
    tokio::time::timeout(within, future)
        .await
        .map_err(|_| anyhow!("{what}: no answer within {within:?}"))
}

/// Milliseconds since the Unix epoch, with sub-millisecond precision.
pub fn wall_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}
