//! In-memory state of the links to each peer: what `peer list` shows about
//! connections, and the switches that cut them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use liaison_core::clock::Millis;
use liaison_types::identity::NodeId;

/// What the other side said in `Hello`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteInfo {
    pub display_name: String,
    pub protocol_version: u32,
    pub software_version: String,
    pub log_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct LinkStatus {
    /// Our follow stream from the peer is open.
    pub outbound_up: bool,
    /// Follow streams the peer holds open on us (at most one once the old one ends).
    pub inbound_streams: u32,
    pub last_contact_ms: Option<Millis>,
    pub last_error: Option<String>,
    /// While backing off: when the next attempt is due.
    pub next_attempt_ms: Option<Millis>,
    pub remote: Option<RemoteInfo>,
    /// The highest seq the peer said it holds for us, from its last batch.
    pub peer_head: u64,
    pub last_batch_ms: Option<Millis>,
    /// The highest seq of our log sent to the peer on its follow stream.
    pub sent_seq: u64,
    /// (time, events applied) of recent batches, for the apply rate.
    pub recent_batches: std::collections::VecDeque<(Millis, u64)>,
}

/// The window over which `events_per_second` is measured.
const RATE_WINDOW_MS: Millis = 60_000;

impl LinkStatus {
    /// Records a batch applied from this peer.
    pub fn record_batch(&mut self, now_ms: Millis, events: u64, peer_head: u64) {
        self.last_batch_ms = Some(now_ms);
        self.last_contact_ms = Some(now_ms);
        self.peer_head = peer_head;
        if events > 0 {
            self.recent_batches.push_back((now_ms, events));
        }
        while let Some((t, _)) = self.recent_batches.front() {
            if now_ms - t > RATE_WINDOW_MS || self.recent_batches.len() > 10_000 {
                self.recent_batches.pop_front();
            } else {
                break;
            }
        }
    }

    /// Events applied per second over the last minute.
    pub fn events_per_second(&self, now_ms: Millis) -> f64 {
        let events: u64 = self
            .recent_batches
            .iter()
            .filter(|(t, _)| now_ms - t <= RATE_WINDOW_MS)
            .map(|(_, n)| n)
            .sum();
        events as f64 / (RATE_WINDOW_MS as f64 / 1000.0)
    }
}

/// The pull task of one peer, and its two switches.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    pub stop: CancellationToken,
    /// Wakes the task from its backoff (`peer retry`).
    pub retry: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Link {
    status: LinkStatus,
    /// Parent of every server-side connection of this peer; cancelling it
    /// cuts them all at once (pause, remove).
    connections: CancellationToken,
    /// The current follow stream the peer pulls: a new one ends the old one.
    follow: Option<(u64, CancellationToken)>,
    client: Option<ClientHandle>,
}

#[derive(Debug, Default)]
pub struct Links {
    inner: Mutex<HashMap<NodeId, Link>>,
    follow_counter: std::sync::atomic::AtomicU64,
}

impl Links {
    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Link>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self, peer: &NodeId) -> LinkStatus {
        self.lock()
            .get(peer)
            .map(|l| l.status.clone())
            .unwrap_or_default()
    }

    pub fn update(&self, peer: &NodeId, f: impl FnOnce(&mut LinkStatus)) {
        f(&mut self.lock().entry(peer.clone()).or_default().status);
    }

    /// A token for a new server-side connection of `peer`, cancelled when
    /// the peer's connections are cut.
    pub fn connection_token(&self, peer: &NodeId) -> CancellationToken {
        self.lock()
            .entry(peer.clone())
            .or_default()
            .connections
            .child_token()
    }

    /// Cuts every open connection and stream of `peer`, both directions,
    /// and forgets its status.
    pub fn cut(&self, peer: &NodeId) {
        let mut links = self.lock();
        if let Some(link) = links.remove(peer) {
            link.connections.cancel();
            if let Some((_, follow)) = link.follow {
                follow.cancel();
            }
            if let Some(client) = link.client {
                client.stop.cancel();
            }
        }
    }

    /// Registers a new follow stream of `peer`, ending the previous one.
    pub fn begin_follow(&self, peer: &NodeId) -> (u64, CancellationToken) {
        let id = self
            .follow_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut links = self.lock();
        let link = links.entry(peer.clone()).or_default();
        let token = link.connections.child_token();
        if let Some((_, old)) = link.follow.replace((id, token.clone())) {
            old.cancel();
        } else {
            link.status.inbound_streams += 1;
        }
        (id, token)
    }

    /// Ends every peer's follow stream (our log id changed: each peer pulls
    /// again under the new one).
    pub fn end_all_follows(&self) {
        for link in self.lock().values() {
            if let Some((_, follow)) = &link.follow {
                follow.cancel();
            }
        }
    }

    pub fn end_follow(&self, peer: &NodeId, id: u64) {
        let mut links = self.lock();
        if let Some(link) = links.get_mut(peer) {
            if matches!(link.follow, Some((current, _)) if current == id) {
                link.follow = None;
                link.status.inbound_streams = link.status.inbound_streams.saturating_sub(1);
            }
        }
    }

    /// The pull task of `peer`, if one runs.
    pub fn client(&self, peer: &NodeId) -> Option<ClientHandle> {
        self.lock().get(peer).and_then(|l| l.client.clone())
    }

    /// Records a newly spawned pull task; returns false if one already runs.
    pub fn set_client(&self, peer: &NodeId, handle: ClientHandle) -> bool {
        let mut links = self.lock();
        let link = links.entry(peer.clone()).or_default();
        match &link.client {
            Some(existing) if !existing.stop.is_cancelled() => false,
            _ => {
                link.client = Some(handle);
                true
            }
        }
    }

    pub fn peers_up(&self) -> usize {
        self.lock()
            .values()
            .filter(|l| l.status.outbound_up || l.status.inbound_streams > 0)
            .count()
    }
}
