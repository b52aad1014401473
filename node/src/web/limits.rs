//! Rate limits of the page: submissions per client address per hour, and
//! per phone number per day (`[report_in]` in `node.toml`).
//!
//! Each key counts in a fixed window that opens at its first submission.
//! Kept in memory, so a restart forgets them; bounded: when the table is
//! full, windows that have closed are dropped, and if none has, a new key
//! is refused until one closes (a flood from many addresses must not grow
//! the node's memory).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use liaison_core::clock::Millis;

/// Keys one limiter keeps at most.
pub const KEYS_MAX: usize = 50_000;

pub const HOUR_MS: Millis = 60 * 60 * 1000;
pub const DAY_MS: Millis = 24 * HOUR_MS;

/// Why a submission was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The key used up its window; it opens again after this many ms.
    /// `first` is true for the first refusal in the window (the one worth
    /// an audit entry).
    Limit { retry_after_ms: Millis, first: bool },
    /// The table is full of open windows.
    Full,
}

/// One limit: at most `max` hits per key in `window_ms`.
#[derive(Debug)]
pub struct Limiter {
    max: u32,
    window_ms: Millis,
    keys_max: usize,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    opened_ms: Millis,
    hits: u32,
}

impl Limiter {
    pub fn new(max: u32, window_ms: Millis) -> Limiter {
        Limiter::with_keys_max(max, window_ms, KEYS_MAX)
    }

    fn with_keys_max(max: u32, window_ms: Millis, keys_max: usize) -> Limiter {
        Limiter {
            max,
            window_ms,
            keys_max,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one hit of `key` at `now_ms`, or says why not.
    pub fn hit(&self, key: &str, now_ms: Millis) -> Result<(), Over> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window_ms = self.window_ms;
        let open = |w: &Window| now_ms.saturating_sub(w.opened_ms) < window_ms;
        if let Some(window) = windows.get_mut(key) {
            if open(window) {
                if window.hits >= self.max {
                    window.hits = window.hits.saturating_add(1);
                    return Err(Over::Limit {
                        retry_after_ms: window.opened_ms + window_ms - now_ms,
                        first: window.hits == self.max.saturating_add(1),
                    });
                }
                window.hits += 1;
                return Ok(());
            }
            *window = Window {
                opened_ms: now_ms,
                hits: 0,
            };
        } else if windows.len() >= self.keys_max {
            windows.retain(|_, w| open(w));
            if windows.len() >= self.keys_max {
                return Err(Over::Full);
            }
        }
        let window = windows.entry(key.to_owned()).or_insert(Window {
            opened_ms: now_ms,
            hits: 0,
        });
        if self.max == 0 {
            return Err(Over::Limit {
                retry_after_ms: window_ms,
                first: true,
            });
        }
        window.hits = 1;
        Ok(())
    }
}

/// The key of a client address: an IPv4 address as it is, an IPv6
/// address by its /64 (one subscriber's network has many addresses).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_max_hits_per_window_and_the_first_refusal_is_marked() {
        let limiter = Limiter::new(2, HOUR_MS);
        assert_eq!(limiter.hit("a", 0), Ok(()));
        assert_eq!(limiter.hit("a", 10), Ok(()));
        assert_eq!(
            limiter.hit("a", 20),
            Err(Over::Limit {
                retry_after_ms: HOUR_MS - 20,
                first: true
            })
        );
        assert!(matches!(
            limiter.hit("a", 30),
            Err(Over::Limit { first: false, .. })
        ));
        assert_eq!(limiter.hit("b", 30), Ok(()));
        assert_eq!(limiter.hit("a", HOUR_MS), Ok(()));
    }

    #[test]
    fn a_full_table_drops_closed_windows_and_refuses_while_all_are_open() {
        let limiter = Limiter::with_keys_max(1, HOUR_MS, 2);
        assert_eq!(limiter.hit("a", 0), Ok(()));
        assert_eq!(limiter.hit("b", 0), Ok(()));
        assert_eq!(limiter.hit("c", 1), Err(Over::Full));
        assert_eq!(limiter.hit("c", HOUR_MS), Ok(()));
        assert_eq!(limiter.windows.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_zero_limit_refuses_everything() {
        let limiter = Limiter::new(0, HOUR_MS);
        assert!(limiter.hit("a", 0).is_err());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(address_key(mapped), "10.1.2.3");
    }
}
