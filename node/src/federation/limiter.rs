//! Bounds how many refused attempts reach the audit log, per source address
//! (an IPv6 /64 counting as one, as in the handshake pool) and in all, so
//! a flood of bad handshakes, from one address or many, can neither fill
//! the disk nor keep the database's one writer busy (docs/replication.md). Each entry that is written says how many
//! addresses were refused in the minute so far, and how many refusals from
//! its own address went unlogged before it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use liaison_core::clock::Millis;

const WINDOW_MS: Millis = 60_000;
/// Sources remembered at once; past that the oldest windows are forgotten,
/// and a source that finds no room is neither logged nor counted.
const SOURCES_MAX: usize = 10_000;
/// Entries per minute from all sources together, as a multiple of the
/// entries allowed per source.
const ALL_SOURCES_FACTOR: u32 = 10;

#[derive(Debug)]
pub struct RefusalLimiter {
    per_source: u32,
    all_sources: u32,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    sources: HashMap<IpAddr, Source>,
    /// The minute all sources share: when it began, the entries logged in
    /// it, and the distinct sources refused in it.
    start_ms: Millis,
    logged: u32,
    addresses: u64,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    /// This source's own minute.
    start_ms: Millis,
    logged: u32,
    /// Refusals not logged since this source's last entry.
    suppressed: u64,
    /// The shared minute in which this source was last counted.
    counted_in_ms: Option<Millis>,
}

/// What the entry of a refusal that may be logged reports besides the
/// reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logged {
    /// Refusals from the same source that were not logged before this one.
    pub suppressed: u64,
    /// Distinct source addresses refused in the current minute, this one
    /// included.
    pub addresses: u64,
}

impl Logged {
    /// The audit entry's detail: the reason, then the counts.
    pub fn detail(&self, reason: &str) -> String {
        let addresses = match self.addresses {
            1 => "1 address".to_owned(),
            n => format!("{n} addresses"),
        };
        match self.suppressed {
            0 => format!("{reason} ({addresses} refused this minute)"),
            n => format!(
                "{reason} ({addresses} refused this minute; {n} earlier refusals from this address not logged)"
            ),
        }
    }
}

impl RefusalLimiter {
    /// At most `per_source` entries per source address and minute, and ten
    /// times as many from all sources.
    pub fn new(per_source: u32) -> RefusalLimiter {
        RefusalLimiter {
            per_source,
            all_sources: per_source.saturating_mul(ALL_SOURCES_FACTOR),
            state: Mutex::new(State {
                sources: HashMap::new(),
                start_ms: 0,
                logged: 0,
                addresses: 0,
            }),
        }
    }

    /// Whether this refusal may be logged, and what its entry reports.
    /// `None`: it is counted, to be reported by the source's next entry.
    pub fn admit(&self, source: IpAddr, now_ms: Millis) -> Option<Logged> {
        // Sources as the handshake pool counts them: an IPv4 client of a
        // dual-stack listener is one address however the socket spells it,
        // and an IPv6 /64 is one source, so a client rotating through its
        // own /64 cannot take all the room the limiter has.
        let source = super::handshakes::source_of(source);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        if now_ms - state.start_ms >= WINDOW_MS || now_ms < state.start_ms {
            state.start_ms = now_ms;
            state.logged = 0;
            state.addresses = 0;
        }
        if state.sources.len() >= SOURCES_MAX && !state.sources.contains_key(&source) {
            state.sources.retain(|_, s| now_ms - s.start_ms < WINDOW_MS);
            if state.sources.len() >= SOURCES_MAX {
                return None;
            }
        }
        let window = state.sources.entry(source).or_insert(Source {
            start_ms: now_ms,
            logged: 0,
            suppressed: 0,
            counted_in_ms: None,
        });
        if window.counted_in_ms != Some(state.start_ms) {
            window.counted_in_ms = Some(state.start_ms);
            state.addresses += 1;
        }
        if now_ms - window.start_ms >= WINDOW_MS || now_ms < window.start_ms {
            window.start_ms = now_ms;
            window.logged = 0;
        }
        if window.logged < self.per_source && state.logged < self.all_sources {
            window.logged += 1;
            state.logged += 1;
            Some(Logged {
                suppressed: std::mem::take(&mut window.suppressed),
                addresses: state.addresses,
            })
        } else {
            window.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn floods_are_counted_not_logged() {
        let limiter = RefusalLimiter::new(2);
        let a = ip("10.1.2.3");
        let logged = |addresses| {
            Some(Logged {
                suppressed: 0,
                addresses,
            })
        };
        assert_eq!(limiter.admit(a, 0), logged(1));
        assert_eq!(limiter.admit(a, 1), logged(1));
        for t in 2..100 {
            assert_eq!(limiter.admit(a, t), None);
        }
        let b = ip("10.1.2.4");
        assert_eq!(limiter.admit(b, 100), logged(2));
        // The same client through a dual-stack listener is the same source.
        assert_eq!(limiter.admit(ip("::ffff:10.1.2.4"), 101), logged(2));
        assert_eq!(limiter.admit(ip("::ffff:10.1.2.4"), 102), None);
        // An IPv6 /64 is one source, whichever of its addresses it uses.
        assert_eq!(limiter.admit(ip("2001:db8::1"), 103), logged(3));
        assert_eq!(limiter.admit(ip("2001:db8::2"), 104), logged(3));
        assert_eq!(limiter.admit(ip("2001:db8::3"), 105), None);
        assert_eq!(
            limiter.admit(a, WINDOW_MS + 5),
            Some(Logged {
                suppressed: 98,
                addresses: 1,
            })
        );
    }

    #[test]
    fn many_sources_share_a_ceiling_and_are_counted() {
        let limiter = RefusalLimiter::new(1);
        let source = |i: u32| IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
        let mut logged = 0;
        for i in 0..100 {
            if let Some(entry) = limiter.admit(source(i), 1_000) {
                logged += 1;
                assert_eq!(entry.addresses, u64::from(i) + 1);
            }
        }
        assert_eq!(
            logged, ALL_SOURCES_FACTOR,
            "ten times one source's allowance"
        );
        // A minute later the first unlogged source reports what it missed.
        let next = limiter.admit(source(50), 61_000).expect("a new minute");
        assert_eq!(
            next,
            Logged {
                suppressed: 1,
                addresses: 1,
            }
        );
        assert_eq!(
            next.detail("TLS handshake timed out"),
            "TLS handshake timed out (1 address refused this minute; 1 earlier refusals from this address not logged)"
        );
    }
}
