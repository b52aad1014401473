//! Waiting on a condition with a deadline, never with a fixed sleep.

use std::future::Future;
use std::time::{Duration, Instant};

use super::{POLL_INTERVAL, RPC_TIMEOUT};

/// Awaits `future` for at most [`RPC_TIMEOUT`]; panics naming `what` if it
/// takes longer. Wrap every network await of a test in it.
pub async fn timed<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(RPC_TIMEOUT, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: no answer within {RPC_TIMEOUT:?}"),
    }
}

/// Polls `probe` until it returns `Some`, for at most `within`. On timeout,
/// panics with `what` and the state `dump` describes (peer lists, logs).
pub async fn wait_for<T>(
    within: Duration,
    what: &str,
    dump: impl FnOnce() -> String,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {within:?} waiting for: {what}\n\n{}\ntimed out waiting for: {what}",
                dump()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Polls `condition` until it holds, for at most `within`; see [`wait_for`].
pub async fn wait_until(
    within: Duration,
    what: &str,
    dump: impl FnOnce() -> String,
    mut condition: impl AsyncFnMut() -> bool,
) {
    wait_for(within, what, dump, async || condition().await.then_some(())).await
}
