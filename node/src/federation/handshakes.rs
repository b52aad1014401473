//! The pool of connections still in their TLS handshake, before any
//! certificate is verified (docs/replication.md, Links, heartbeats and
//! limits).
//!
//! Anyone can open a TCP connection, so this pool is where a flood lands,
//! and it is kept apart from the connections of verified peers, which a
//! flood therefore never displaces. Its rules:
//!
//! - one source address holds at most `handshakes_per_address_max`
//!   places (an IPv6 source counts by its /64, which one client usually
//!   has whole); a new connection beyond that drops the oldest of the same
//!   source, so a flood from one address only ever churns its own places;
//! - the pool holds at most `handshakes_max`; when it is full a new
//!   connection drops the oldest in it, so a flood from many addresses
//!   cannot keep a real peer from starting its handshake: the peer's
//!   connection is dropped only if the pool turns over completely before
//!   its handshake ends;
//! - every handshake has a deadline (`handshake_timeout_ms`), enforced by
//!   the caller, however slowly the client keeps sending.
//!
//! Dropping rather than refusing the newest is what keeps the port open:
//! idle connections cost the flood nothing to hold, while a new one costs
//! a real peer one round trip.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Why a connection in its handshake was dropped for a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Its source address held its most places.
    SourceFull,
    /// The pool was full and it was the oldest.
    PoolFull,
}

impl Shed {
    /// The refusal's reason, naming the limit.
    pub fn reason(self) -> &'static str {
        match self {
            Shed::SourceFull => {
                "dropped during its TLS handshake for a newer connection from the same address (limits.handshakes_per_address_max)"
            }
            Shed::PoolFull => {
                "dropped during its TLS handshake for a newer connection: it was the oldest of a full pool (limits.handshakes_max)"
            }
        }
    }
}

/// The source a connection counts against: an IPv4 address (also when a
/// dual-stack socket spells it as IPv6), or an IPv6 address's /64.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
    }
}

/// The pool's bookkeeping, apart from what a place holds (`T`), so the
/// rules are plain functions of the order of admissions.
#[derive(Debug)]
pub(crate) struct Places<T> {
    max: usize,
    per_source_max: usize,
    /// Admission numbers only grow, so the smallest held is the oldest.
    next: u64,
    by_age: BTreeMap<u64, (IpAddr, T)>,
    by_source: HashMap<IpAddr, BTreeSet<u64>>,
}

impl<T> Places<T> {
    /// A pool of `max` places, `per_source_max` of them per source (both at
    /// least 1; the configuration checks it, and a zero is taken as 1).
    pub(crate) fn new(max: usize, per_source_max: usize) -> Places<T> {
        let max = max.max(1);
        Places {
            max,
            per_source_max: per_source_max.clamp(1, max),
            next: 0,
            by_age: BTreeMap::new(),
            by_source: HashMap::new(),
        }
    }

    /// Admits a connection from `source`, always. Returns its number and
    /// the place it displaced, if any: the oldest of its source when the
    /// source is at its cap, else the oldest of all when the pool is full.
    /// At most one place is displaced, since every admission fits once one
    /// has gone.
    pub(crate) fn admit(&mut self, source: IpAddr, value: T) -> (u64, Option<(Shed, T)>) {
        let held = self.by_source.get(&source).map_or(0, BTreeSet::len);
        let victim = if held >= self.per_source_max {
            self.by_source
                .get(&source)
                .and_then(|ids| ids.first().copied())
                .map(|id| (Shed::SourceFull, id))
        } else if self.by_age.len() >= self.max {
            self.by_age
                .first_key_value()
                .map(|(id, _)| (Shed::PoolFull, *id))
        } else {
            None
        };
        let shed = victim.and_then(|(why, id)| self.release(id).map(|value| (why, value)));
        let id = self.next;
        self.next += 1;
        self.by_age.insert(id, (source, value));
        self.by_source.entry(source).or_default().insert(id);
        (id, shed)
    }

    /// Frees place `id`; returns what it held, or `None` if it was already
    /// displaced.
    pub(crate) fn release(&mut self, id: u64) -> Option<T> {
        let (source, value) = self.by_age.remove(&id)?;
        if let Some(ids) = self.by_source.get_mut(&source) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_source.remove(&source);
            }
        }
        Some(value)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_age.len()
    }

    pub(crate) fn held_by(&self, source: IpAddr) -> usize {
        self.by_source.get(&source).map_or(0, BTreeSet::len)
    }
}

/// The pool, shared by the accept loop and the handshakes under way. Each
/// place holds the sender that tells its connection it was dropped.
#[derive(Debug)]
pub struct Handshakes {
    places: Mutex<Places<oneshot::Sender<Shed>>>,
}

impl Handshakes {
    pub fn new(max: usize, per_source_max: usize) -> Arc<Handshakes> {
        Arc::new(Handshakes {
            places: Mutex::new(Places::new(max, per_source_max)),
        })
    }

    /// Admits a connection from `ip`, displacing another as the rules say
    /// (which [`Place::shed`] then tells). The place is freed when the
    /// returned [`Place`] is dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Place {
        let source = source_of(ip);
        let (tell, told) = oneshot::channel();
        let (id, shed, held, in_pool) = {
            let mut places = self.places.lock().unwrap_or_else(|e| e.into_inner());
            let (id, shed) = places.admit(source, tell);
            (id, shed, places.held_by(source), places.len())
        };
        if let Some((why, tell)) = shed {
            tracing::debug!(
                ?why,
                held,
                in_pool,
                "a handshake dropped for a newer connection"
            );
            // The displaced handshake may have just finished; then nobody
            // listens and nothing is lost.
            let _ = tell.send(why);
        }
        Place {
            pool: self.clone(),
            id,
            told: Some(told),
        }
    }
}

/// One connection's place in the pool, held until its handshake ends.
#[derive(Debug)]
pub struct Place {
    pool: Arc<Handshakes>,
    id: u64,
    /// Taken once it has answered, since a oneshot is read once.
    told: Option<oneshot::Receiver<Shed>>,
}

impl Place {
    /// Resolves when a newer connection displaced this one; never
    /// otherwise, and never again once it has.
    pub async fn shed(&mut self) -> Shed {
        if let Some(told) = self.told.as_mut() {
            let answer = told.await;
            self.told = None;
            // Without an answer the sender was dropped unsent, which only
            // a displacement that found nobody to tell could do.
            if let Ok(why) = answer {
                return why;
            }
        }
        std::future::pending().await
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut places = self.pool.places.lock().unwrap_or_else(|e| e.into_inner());
        places.release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_source_displaces_only_its_own_oldest() {
        let mut places = Places::new(10, 3);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let (peer, _) = places.admit(b, "peer");
        for n in 0..3 {
            assert_eq!(places.admit(a, "flood").1, None, "place {n} is free");
        }
        // The fourth from `a` drops `a`'s oldest, never `b`'s.
        for _ in 0..100 {
            assert_eq!(
                places.admit(a, "flood").1,
                Some((Shed::SourceFull, "flood"))
            );
        }
        assert_eq!(places.held_by(a), 3);
        assert_eq!(places.len(), 4);
        assert_eq!(places.release(peer), Some("peer"));
        assert_eq!(places.release(peer), None, "a place is freed once");
        assert_eq!(places.len(), 3);
    }

    #[test]
    fn a_full_pool_displaces_its_oldest() {
        let mut places = Places::new(4, 2);
        let first = places.admit(ip("192.0.2.1"), 1).0;
        places.admit(ip("192.0.2.2"), 2);
        places.admit(ip("192.0.2.3"), 3);
        let fourth = places.admit(ip("192.0.2.4"), 4).0;
        // Full: the next admission, from anywhere, drops the oldest.
        assert_eq!(
            places.admit(ip("192.0.2.5"), 5).1,
            Some((Shed::PoolFull, 1))
        );
        assert_eq!(places.release(first), None, "already displaced");
        // A place freed early is skipped: the oldest still held goes next.
        places.release(fourth);
        assert_eq!(places.admit(ip("192.0.2.6"), 6).1, None);
        assert_eq!(
            places.admit(ip("192.0.2.7"), 7).1,
            Some((Shed::PoolFull, 2))
        );
        assert_eq!(places.len(), 4);
    }

    #[test]
    fn a_peer_is_displaced_only_after_the_pool_turned_over() {
        // Many sources, each under its cap, flooding a full pool: a peer
        // admitted among them survives `max - 1` newer admissions.
        let max = 16;
        let mut places = Places::new(max, 2);
        let flood = |n: usize| IpAddr::from([10, 0, 0, (n % 200) as u8]);
        for n in 0..max {
            places.admit(flood(n), "flood");
        }
        let (peer, _) = places.admit(ip("192.0.2.9"), "peer");
        for n in 0..max - 1 {
            let (_, shed) = places.admit(flood(max + n), "flood");
            assert_eq!(shed, Some((Shed::PoolFull, "flood")));
        }
        assert_eq!(places.release(peer), Some("peer"), "still held");
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        assert_eq!(
            source_of(ip("2001:db8:1:2:aaaa::1")),
            source_of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            source_of(ip("2001:db8:1:2::1")),
            source_of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(source_of(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        let mut places = Places::new(10, 2);
        for host in 1..=5u16 {
            places.admit(
                source_of(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, host])),
                (),
            );
        }
        assert_eq!(places.len(), 2);
    }

    #[tokio::test]
    async fn a_displaced_place_is_told_why_and_freed() {
        let pool = Handshakes::new(2, 2);
        let mut oldest = pool.admit(ip("192.0.2.1"));
        let _second = pool.admit(ip("192.0.2.2"));
        let third = pool.admit(ip("192.0.2.3"));
        assert_eq!(oldest.shed().await, Shed::PoolFull);
        drop(oldest);
        assert_eq!(pool.places.lock().unwrap().len(), 2);
        drop(third);
        assert_eq!(pool.places.lock().unwrap().len(), 1);
    }
}
