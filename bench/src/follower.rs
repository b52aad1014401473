//! Lightweight followers: peers of a node that are not `liaison-node`
//! processes, so that one node can be followed by hundreds of them on a
//! two-core machine.
//!
//! Each has its own certificate from the bench's CA and is built from the
//! node's own code: `federation::client::connect` and `FederationClient`
//! for its follow stream, `liaison_node::tls::server_config` for the small
//! `Federation` server a node expects its peers to run (the node pulls
//! from every peer), and, when asked to accept agreements, the protocol
//! core (`core::apply::apply_batch`, `core::agreements::accept`) over an
//! in-memory store, so that its vote is a real, signed one. Every other
//! event is counted, not applied: a follower measures what the node sends,
//! not what a host would do with it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use liaison_core::store::Store;
use liaison_core::{agreements, apply, log, Ctx};
use liaison_proto::v1 as pb;
use liaison_rpc::v1::federation_client::FederationClient;
use liaison_rpc::v1::federation_server::Federation;
use liaison_types::identity::{CertNotary, NodeId, TlsMaterial};
use pb::EventKind;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};

use crate::timing::wall_ms;

const MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// What a follower saw, readable while it runs.
#[derive(Debug, Default)]
pub struct FollowerStats {
    pub connected: AtomicBool,
    pub batches: AtomicU64,
    pub events: AtomicU64,
    pub home_sections: AtomicU64,
    /// The highest seq received, and the owner's head as of the last batch.
    pub last_seq: AtomicU64,
    pub head_seq: AtomicU64,
    /// Entities of the agreement versions received (one per proposal).
    pub agreement_versions: Mutex<Vec<String>>,
    /// Receive time minus the event's `created_at_ms`, in ms, for
    /// agreement events (bounded).
    pub agreement_delays_ms: Mutex<Vec<f64>>,
    pub last_error: Mutex<Option<String>>,
}

/// One lightweight follower. Dropping it stops it.
pub struct Follower {
    pub node_id: String,
    /// Where its own `Federation` server listens (`https://127.0.0.1:PORT`).
    pub endpoint: String,
    pub stats: Arc<FollowerStats>,
    stop: CancellationToken,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The follower's side that the owner reaches: its log (empty unless it
/// voted on an agreement) and a wake-up for its follow stream.
struct Shared {
    me: NodeId,
    owner: NodeId,
    material: TlsMaterial,
    notary: CertNotary,
    /// Only for followers that accept agreements.
    store: Option<Store>,
    log_id: String,
    appended: tokio::sync::watch::Sender<u64>,
    heartbeat: Duration,
}

/// How a follower behaves.
#[derive(Debug, Clone, Copy)]
pub struct FollowerOptions {
    /// Sign every agreement the owner proposes to it, as an operator would.
    pub accept_agreements: bool,
    /// Run the `Federation` server the owner pulls from; without it the
    /// follower gives the owner an endpoint where nothing listens (so only
    /// its follow stream costs the owner anything but retries).
    pub serve: bool,
    /// Idle heartbeat of its server, as a node's `limits.heartbeat_ms`.
    pub heartbeat: Duration,
}

impl FollowerOptions {
    /// A peer as a node would be: serving, with the default heartbeat.
    pub fn peer(accept_agreements: bool) -> FollowerOptions {
        FollowerOptions {
            accept_agreements,
            serve: true,
            heartbeat: Duration::from_secs(15),
        }
    }
}

impl Follower {
    /// Starts follower `node_id` of `owner` (at `owner_endpoint`): its
    /// server at once, its follow stream in the background (retrying until
    /// the owner admits it).
    pub async fn start(
        ca: &liaison_tests::Federation,
        node_id: &str,
        owner: &str,
        owner_endpoint: &str,
        options: FollowerOptions,
    ) -> Result<Follower> {
        let material = ca.issue(node_id).tls_material();
        let me = material.node_id.clone();
        let owner_id = NodeId::parse(owner).map_err(|e| anyhow!("owner id {owner}: {e}"))?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let store = if options.accept_agreements {
            Some(Store::open_in_memory(now_ms).context("an in-memory store for the follower")?)
        } else {
            None
        };
        let log_id = match &store {
            Some(store) => store.log_id()?,
            None => uuid::Uuid::now_v7().to_string(),
        };
        let shared = Arc::new(Shared {
            me: me.clone(),
            owner: owner_id,
            notary: CertNotary::new(material.clone()),
            material,
            store,
            log_id,
            appended: tokio::sync::watch::Sender::new(0),
            heartbeat: options.heartbeat,
        });
        let stop = CancellationToken::new();
        let endpoint = if options.serve {
            let server_tls = liaison_node::tls::server_config(&shared.material)?;
            let addr = crate::tls_server::serve_federation(
                FollowerServer {
                    shared: shared.clone(),
                    stop: stop.clone(),
                },
                server_tls,
                MESSAGE_BYTES_MAX,
                stop.clone(),
            )
            .await?;
            format!("https://{addr}")
        } else {
            // Port 9 (discard) on loopback: refused at once.
            "https://127.0.0.1:9".to_owned()
        };
        let stats = Arc::new(FollowerStats::default());
        tokio::spawn(follow(
            shared,
            owner_endpoint.to_owned(),
            stats.clone(),
            stop.clone(),
        ));
        Ok(Follower {
            node_id: me.to_string(),
            endpoint,
            stats,
            stop,
        })
    }
}

/// The follow stream: connect, Hello, Pull with follow; reconnect after
/// 250 ms on any failure (the owner may not have admitted us yet).
async fn follow(
    shared: Arc<Shared>,
    endpoint: String,
    stats: Arc<FollowerStats>,
    stop: CancellationToken,
) {
    loop {
        let outcome = tokio::select! {
            _ = stop.cancelled() => break,
            outcome = session(&shared, &endpoint, &stats) => outcome,
        };
        stats.connected.store(false, Ordering::Relaxed);
        if let Err(error) = outcome {
            *stats.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("{error:#}"));
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

async fn session(shared: &Shared, endpoint: &str, stats: &FollowerStats) -> Result<()> {
    let tls = liaison_node::tls::client_config(&shared.material, &shared.owner, None)?;
    let channel =
        liaison_node::federation::client::connect(endpoint, tls, &TaskTracker::new()).await?;
    let mut client = FederationClient::new(channel)
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let hello = client
        .hello(pb::HelloRequest {
            display_name: format!("{} (bench follower)", shared.me),
            protocol_version: liaison_proto::PROTOCOL_VERSION,
            log_id: shared.log_id.clone(),
            software_version: "liaison-bench".to_owned(),
            endpoint: String::new(),
            audit_head: None,
        })
        .await?
        .into_inner();
    let mut stream = client
        .pull(pb::PullRequest {
            since: stats.last_seq.load(Ordering::Relaxed),
            follow: true,
            log_id: hello.log_id.clone(),
            batch_max: 1000,
        })
        .await?
        .into_inner();
    stats.connected.store(true, Ordering::Relaxed);
    while let Some(batch) = stream.message().await? {
        let received_ms = wall_ms();
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.head_seq.fetch_max(batch.head_seq, Ordering::Relaxed);
        let mut agreement_events = Vec::new();
        for event in &batch.events {
            stats.events.fetch_add(1, Ordering::Relaxed);
            stats.last_seq.fetch_max(event.seq, Ordering::Relaxed);
            match EventKind::try_from(event.kind) {
                Ok(EventKind::HomeSection) => {
                    stats.home_sections.fetch_add(1, Ordering::Relaxed);
                }
                Ok(kind) if is_agreement_kind(kind) => {
                    if kind == EventKind::AgreementVersion {
                        stats
                            .agreement_versions
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(event.entity.clone());
                    }
                    let mut delays = stats
                        .agreement_delays_ms
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if delays.len() < 1_000_000 {
                        delays.push(received_ms - event.created_at_ms as f64);
                    }
                    agreement_events.push(event.clone());
                }
                _ => {}
            }
        }
        if !agreement_events.is_empty() {
            if let Some(store) = &shared.store {
                let voted = vote(shared, store, &batch.log_id, &agreement_events)?;
                if voted {
                    shared.appended.send_modify(|n| *n += 1);
                }
            }
        }
    }
    Err(anyhow!("the owner ended the stream"))
}

fn is_agreement_kind(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::AgreementVersion
            | EventKind::AgreementVote
            | EventKind::AgreementActivated
            | EventKind::AgreementEnded
            | EventKind::AgreementEndApplied
            | EventKind::CopiesDropped
    )
}

/// Applies the owner's agreement events to the follower's store, then signs
/// every agreement proposed to it that it has not signed yet. Returns
/// whether it appended a vote.
fn vote(shared: &Shared, store: &Store, log_id: &str, events: &[pb::Event]) -> Result<bool> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let ctx = Ctx::new(&shared.me, now_ms).with_notary(&shared.notary);
    let voted = store.with(|conn| {
        apply::apply_batch(conn, &ctx, &shared.owner, log_id, events)
            .map_err(|e| liaison_core::Error::invalid(e.to_string()))?;
        let tx = conn.transaction()?;
        let proposed = agreements::list(
            &tx,
            &ctx,
            &pb::AgreementListRequest {
                state: "proposed".into(),
                peer: String::new(),
            },
        )?;
        let mut voted = false;
        for view in proposed {
            let signed = view
                .history
                .last()
                .is_some_and(|v| v.signatures.iter().any(|s| s.signer == shared.me.as_str()));
            if view.role == "inflow" && view.version > 0 && !signed {
                agreements::accept(&tx, &ctx, &view.agreement_id)?;
                voted = true;
            }
        }
        tx.commit()?;
        Ok(voted)
    })?;
    Ok(voted)
}

/// The `Federation` service of a follower: `Hello`, and `Pull` of its own
/// log (its votes), with heartbeats like a node's.
struct FollowerServer {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

#[tonic::async_trait]
impl Federation for FollowerServer {
    async fn hello(
        &self,
        _request: Request<pb::HelloRequest>,
    ) -> Result<Response<pb::HelloResponse>, Status> {
        Ok(Response::new(pb::HelloResponse {
            node_id: self.shared.me.to_string(),
            display_name: format!("{} (bench follower)", self.shared.me),
            protocol_version: liaison_proto::PROTOCOL_VERSION,
            log_id: self.shared.log_id.clone(),
            software_version: "liaison-bench".to_owned(),
            log_ids_held_from_you: Vec::new(),
            witnessed_of_you: None,
        }))
    }

    type HoldingsStream = ReceiverStream<Result<pb::HoldingsBatch, Status>>;

    async fn holdings(
        &self,
        _request: Request<pb::HoldingsRequest>,
    ) -> Result<Response<Self::HoldingsStream>, Status> {
        Err(Status::unimplemented(
            "the benchmark holds nothing of its callers",
        ))
    }

    type PullStream = ReceiverStream<Result<pb::PullBatch, Status>>;

    async fn pull(
        &self,
        request: Request<pb::PullRequest>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let pull = request.into_inner();
        let shared = self.shared.clone();
        let stop = self.stop.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut since = if pull.log_id == shared.log_id {
            pull.since
        } else {
            0
        };
        tokio::spawn(async move {
            let mut appended = shared.appended.subscribe();
            loop {
                appended.borrow_and_update();
                let (events, head_seq) = match &shared.store {
                    Some(store) => match store.with(|conn| {
                        Ok((
                            log::read_batch(conn, &shared.owner, since, 1000)?,
                            log::head_seq(conn, &shared.owner)?,
                        ))
                    }) {
                        Ok(read) => read,
                        Err(error) => {
                            let _ = tx.send(Err(Status::internal(error.to_string()))).await;
                            break;
                        }
                    },
                    None => (Vec::new(), 0),
                };
                let caught_up = events.is_empty();
                if let Some(last) = events.last() {
                    since = last.seq;
                }
                let batch = pb::PullBatch {
                    log_id: shared.log_id.clone(),
                    events,
                    head_seq,
                    audit_head: None,
                };
                if tx.send(Ok(batch)).await.is_err() {
                    break;
                }
                if !caught_up {
                    continue;
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tx.closed() => break,
                    _ = appended.changed() => {}
                    _ = tokio::time::sleep(shared.heartbeat) => {}
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
