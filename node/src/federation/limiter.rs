//! Bounds how many refused attempts per source address reach the audit log,
//! so a flood of bad handshakes cannot fill the disk (docs/replication.md).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use liaison_core::clock::Millis;

const WINDOW_MS: Millis = 60_000;
/// Sources remembered at once; past that the oldest windows are forgotten.
const SOURCES_MAX: usize = 10_000;

#[derive(Debug)]
pub struct RefusalLimiter {
    per_window: u32,
    sources: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: Millis,
    logged: u32,
    suppressed: u64,
}

impl RefusalLimiter {
    pub fn new(per_window: u32) -> RefusalLimiter {
        RefusalLimiter {
            per_window,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this refusal may be logged. `Some(n)`: log it, mentioning the
    /// `n` refusals from the same source that were not logged before it.
    pub fn admit(&self, source: IpAddr, now_ms: Millis) -> Option<u64> {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if sources.len() >= SOURCES_MAX && !sources.contains_key(&source) {
            sources.retain(|_, w| now_ms - w.start_ms < WINDOW_MS);
            if sources.len() >= SOURCES_MAX {
                return None;
            }
        }
        let window = sources.entry(source).or_insert(Window {
            start_ms: now_ms,
            logged: 0,
            suppressed: 0,
        });
        if now_ms - window.start_ms >= WINDOW_MS {
            window.start_ms = now_ms;
            window.logged = 0;
        }
        if window.logged < self.per_window {
            window.logged += 1;
            Some(std::mem::take(&mut window.suppressed))
        } else {
            window.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_are_counted_not_logged() {
        let limiter = RefusalLimiter::new(2);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(limiter.admit(ip, 0), Some(0));
        assert_eq!(limiter.admit(ip, 1), Some(0));
        for t in 2..100 {
            assert_eq!(limiter.admit(ip, t), None);
        }
        let other: IpAddr = "10.1.2.4".parse().unwrap();
        assert_eq!(limiter.admit(other, 100), Some(0));
        assert_eq!(limiter.admit(ip, WINDOW_MS + 5), Some(98));
    }
}
