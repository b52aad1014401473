//! The `Federation` gRPC service: what a peer may ask of this node.

use std::sync::Arc;
use std::time::Duration;

use liaison_proto::v1::{
    AuditHead, HelloRequest, HelloResponse, HoldingsBatch, HoldingsRequest, PullBatch, PullRequest,
};
use liaison_proto::{PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
use liaison_rpc::v1::federation_server::Federation;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::refusals::BodyRead;
use super::{ConnInfo, RefusalLimiter};
use crate::node::Node;
use liaison_core::store::audit::{self, Actor, Outcome};
use liaison_core::store::peers::{self, PeerRecord, PeerState};
use liaison_core::{log, reconcile, Error as CoreError};

#[derive(Debug, Clone)]
pub struct FederationService {
    node: Arc<Node>,
    limiter: Arc<RefusalLimiter>,
}

impl FederationService {
    pub fn new(node: Arc<Node>, limiter: Arc<RefusalLimiter>) -> FederationService {
        FederationService { node, limiter }
    }

    /// Admits a call only from a node that is an active peer: trust needs
    /// both the certificate (checked by TLS) and the operator's peer entry.
    /// Every handler calls it first: the request's body was read and
    /// decoded, so its refusals are this handler's, not the body's
    /// (`refusals.rs`).
    async fn authorize<T>(
        &self,
        request: &Request<T>,
        call: &'static str,
        endpoint: &str,
    ) -> Result<(ConnInfo, PeerRecord), Status> {
        BodyRead::mark(request);
        let info = request
            .extensions()
            .get::<ConnInfo>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no client certificate on this connection"))?;
        let node = &self.node;
        let caller = info.node_id.clone();
        let now_ms = node.now_ms();
        let lookup_info = info.clone();
        let endpoint = endpoint.to_owned();
        let peer = node
            .db(move |conn| {
                let peer = peers::get(conn, &lookup_info.node_id)?;
                if peer.is_none() {
                    peers::record_pending(
                        conn,
                        &lookup_info.node_id,
                        &lookup_info.remote_addr.to_string(),
                        &endpoint,
                        &lookup_info.fingerprint,
                        now_ms,
                    )?;
                }
                Ok(peer)
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let refusal = match &peer {
            None => Some(format!(
                "node {caller} is not a peer of {}: an operator of {} may admit it with `liaisonctl peer add {caller} --endpoint …` (it is listed by `peer list --pending`)",
                node.node_id, node.node_id
            )),
            Some(p) if p.state == PeerState::Paused => Some(format!(
                "peer {caller} is paused at {}: an operator there may `liaisonctl peer resume {caller}`",
                node.node_id
            )),
            Some(p) => match &p.fingerprint {
                Some(pin) if *pin != info.fingerprint => Some(format!(
                    "certificate of {caller} has fingerprint {}, but {} pinned {pin}",
                    info.fingerprint, node.node_id
                )),
                _ => None,
            },
        };
        match (refusal, peer) {
            (None, Some(peer)) => Ok((info, peer)),
            (refusal, _) => {
                let reason = refusal.unwrap_or_default();
                tracing::info!(peer = %caller, call, reason, "federation call refused");
                if let Some(logged) = self.limiter.admit(info.remote_addr.ip(), now_ms) {
                    let detail = logged.detail(&format!("{call}: {reason}"));
                    node.audit(
                        Actor::Peer(caller.to_string()),
                        "federation.call",
                        caller.to_string(),
                        Outcome::Refused,
                        detail,
                    )
                    .await;
                }
                Err(Status::permission_denied(reason))
            }
        }
    }
}

#[tonic::async_trait]
impl Federation for FederationService {
    async fn hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloResponse>, Status> {
        let endpoint = request.get_ref().endpoint.clone();
        let (info, _peer) = self.authorize(&request, "Hello", &endpoint).await?;
        let hello = request.into_inner();
        // The peer is back: if our own link to it is waiting out a backoff,
        // try now rather than leave it waiting.
        if !self.node.links.status(&info.node_id).outbound_up {
            if let Some(client) = self.node.links.client(&info.node_id) {
                client.retry.notify_one();
            }
        }
        if hello.protocol_version < PROTOCOL_VERSION_MIN {
            let reason = format!(
                "protocol version {} of {} is too old: {} speaks version {PROTOCOL_VERSION} and accepts {PROTOCOL_VERSION_MIN} or newer; upgrade liaison-node on {}",
                hello.protocol_version, info.node_id, self.node.node_id, info.node_id
            );
            self.node
                .audit(
                    Actor::Peer(info.node_id.to_string()),
                    "federation.call",
                    info.node_id.to_string(),
                    Outcome::Refused,
                    format!("Hello: {reason}"),
                )
                .await;
            return Err(Status::failed_precondition(reason));
        }
        let log_id = self.node.log_id();
        let caller = info.node_id.clone();
        let log_ids_held_from_you = self
            .node
            .read(move |conn| {
                let mut stmt =
                    conn.prepare("SELECT log_id FROM cursors WHERE peer = ?1 AND seq > 0")?;
                let ids = stmt
                    .query_map([caller.as_str()], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(ids)
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        // What we witnessed of the caller's audit head before this Hello
        // (the highest), and what it says now.
        let witnessed_of_you = witness_audit_head(
            &self.node,
            &info.node_id,
            &hello.log_id,
            hello.audit_head.as_ref(),
        )
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(HelloResponse {
            node_id: self.node.node_id.to_string(),
            display_name: self.node.config.display_name.clone(),
            protocol_version: PROTOCOL_VERSION,
            log_id,
            software_version: crate::SOFTWARE_VERSION.to_owned(),
            log_ids_held_from_you,
            witnessed_of_you,
        }))
    }

    type PullStream = ReceiverStream<Result<PullBatch, Status>>;

    async fn pull(
        &self,
        request: Request<PullRequest>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let (info, _peer) = self.authorize(&request, "Pull", "").await?;
        // A restored node serves a peer its log only once it adopted that
        // peer's holdings (docs/restore.md).
        let asking = info.node_id.clone();
        let may_serve = self
            .node
            .read(move |conn| reconcile::may_serve(conn, &asking))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        if !may_serve {
            return Err(Status::unavailable(format!(
                "{} was restored and is reconciling: it serves its log to {} once it has adopted what {} holds from it",
                self.node.node_id, info.node_id, info.node_id
            )));
        }
        let pull = request.into_inner();
        let node = self.node.clone();
        let peer_id = info.node_id.clone();
        let log_id = node.log_id();
        // A cursor into another log (ours before a restore) means nothing
        // here: start from the beginning (docs/authority.md).
        let since = if pull.log_id == log_id { pull.since } else { 0 };
        let now_ms = node.now_ms();
        let progress_id = peer_id.clone();
        node.db(move |conn| log::record_peer_progress(conn, &progress_id, since, now_ms))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let (follow_id, ended) = node.links.begin_follow(&peer_id);
        let connection_cut = info.cut.clone();
        node.trim_wake.notify_one();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let limits = &node.config.limits;
        let batch_max = match pull.batch_max {
            0 => limits.batch_events_max,
            n => n.min(limits.batch_events_max),
        };
        let bytes_max = limits.message_bytes_max / 2;
        let heartbeat = Duration::from_millis(limits.heartbeat_ms.max(100));
        // The stream goes on while the node drains its last changes, and
        // ends at `halt`.
        node.tasks.clone().spawn(async move {
            tracing::debug!(peer = %peer_id, since, follow = pull.follow, "pull started");
            let mut since = since;
            let subscribe = {
                let node = node.clone();
                let audience = peer_id.clone();
                node.tasks
                    .clone()
                    .spawn_blocking(move || node.heads.subscribe(&node.store, &audience))
                    .await
            };
            let subscribed = match subscribe {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(join) => Err(join.to_string()),
            };
            let mut appended = match subscribed {
                Ok(appended) => appended,
                Err(error) => {
                    tracing::error!(%error, peer = %peer_id, "cannot read the change log");
                    let _ = tx
                        .send(Err(Status::internal("cannot read the change log")))
                        .await;
                    node.links.end_follow(&peer_id, follow_id);
                    return;
                }
            };
            let mut last_sent: Option<tokio::time::Instant> = None;
            // The audit head goes out once a heartbeat, not with every
            // batch: the peer writes what it witnesses, and a write per
            // batch would double the follower's commits under a stream of
            // changes. The newest head still arrives within a heartbeat.
            let mut head_sent: Option<tokio::time::Instant> = None;
            loop {
                let known_head = *appended.borrow_and_update();
                let audience = peer_id.clone();
                let with_head = head_sent.is_none_or(|t| t.elapsed() >= heartbeat);
                // A read-only connection: the stream does not queue behind
                // the node's writers.
                let read = node
                    .read(move |conn| {
                        let audit_head = if with_head {
                            Some(audit::head(conn)?)
                        } else {
                            None
                        };
                        let mut events = log::read_batch(conn, &audience, since, batch_max)?;
                        // Bound the message by bytes too: at least one event per batch.
                        let mut bytes = 0usize;
                        let keep = events
                            .iter()
                            .take_while(|e| {
                                bytes += e.payload.len() + e.entity.len() + 32;
                                bytes <= bytes_max
                            })
                            .count()
                            .max(1);
                        events.truncate(keep);
                        Ok((events, audit_head))
                    })
                    .await;
                let (events, audit_head) = match read {
                    Ok(read) => read,
                    Err(error) => {
                        tracing::error!(%error, peer = %peer_id, "cannot read the change log");
                        let _ = tx
                            .send(Err(Status::internal("cannot read the change log")))
                            .await;
                        break;
                    }
                };
                // A restore that began since this stream started (a new
                // database noticed at a peer's `Hello`) starts a new log
                // under a new id, set before its first event is written:
                // what was just read may be that log's, and must not go out
                // under the old id. The stream ends; the peer pulls again
                // under the new one.
                if node.log_id() != log_id {
                    tracing::debug!(peer = %peer_id, "log id changed: ending the stream");
                    let _ = tx.try_send(Err(Status::aborted(
                        "stream ended: this node began a restore under a new log id; pull again",
                    )));
                    break;
                }
                // The head as announced, or what the batch shows if newer;
                // with nothing after `since`, `since` is the head.
                let head_seq = match events.last() {
                    Some(last) => known_head.max(last.seq),
                    None => since,
                };
                let sending = !events.is_empty();
                if let Some(last) = events.last() {
                    since = last.seq;
                }
                // Past the head announced before the read: nothing more to
                // read until the next announcement, so wait for it rather
                // than read again only to find nothing (a read per wake
                // instead of two under a steady stream of writes).
                let caught_up = !sending || since >= known_head;
                let heartbeat_due = last_sent.is_none_or(|t| t.elapsed() >= heartbeat);
                if sending || heartbeat_due {
                    let batch = PullBatch {
                        log_id: log_id.clone(),
                        events,
                        head_seq,
                        audit_head: audit_head.map(|head| AuditHead {
                            entries: head.entries,
                            hash: head.hash,
                        }),
                    };
                    // A peer that stops reading must not keep the stream
                    // past `halt`.
                    let sent = tokio::select! {
                        sent = tx.send(Ok(batch)) => sent.is_ok(),
                        _ = node.halt.cancelled() => false,
                    };
                    if !sent {
                        break;
                    }
                    last_sent = Some(tokio::time::Instant::now());
                    if with_head {
                        head_sent = last_sent;
                    }
                    node.links.update(&peer_id, |s| s.sent_seq = since);
                }
                if !caught_up {
                    continue;
                }
                if !pull.follow {
                    break;
                }
                let next_heartbeat =
                    last_sent.unwrap_or_else(tokio::time::Instant::now) + heartbeat;
                tokio::select! {
                    _ = ended.cancelled() => {
                        let _ = tx.try_send(Err(Status::aborted(
                            "stream ended: a newer Pull from the same peer replaced it, or the peer was paused or removed",
                        )));
                        break;
                    }
                    _ = node.halt.cancelled() => break,
                    _ = connection_cut.cancelled() => break,
                    _ = tx.closed() => break,
                    _ = appended.changed() => {}
                    _ = tokio::time::sleep_until(next_heartbeat) => {}
                }
            }
            node.links.end_follow(&peer_id, follow_id);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type HoldingsStream = ReceiverStream<Result<HoldingsBatch, Status>>;

    /// What this node holds from the caller, streamed batch by batch as
    /// the core reads them, all from one read transaction (one snapshot)
    /// on a read-only connection: the first batch goes out before the
    /// answer is read to its end, and the bounded channel paces the reading
    /// to the peer's. A peer that goes away, or the node's `halt`, ends the
    /// answer early.
    async fn holdings(
        &self,
        request: Request<HoldingsRequest>,
    ) -> Result<Response<Self::HoldingsStream>, Status> {
        let (info, _peer) = self.authorize(&request, "Holdings", "").await?;
        let node = self.node.clone();
        let requester = info.node_id.clone();
        if request.get_ref().retake {
            // A peer taking our holdings again must find in them what we
            // learnt from it: not before we adopted it.
            let asking = requester.clone();
            let serves = node
                .read(move |conn| reconcile::may_serve(conn, &asking))
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            if !serves {
                return Err(Status::unavailable(format!(
                    "this node reconciles after a restore and has not adopted the holdings of {requester} yet: ask again later"
                )));
            }
        }
        let branch = request.get_ref().branch.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let runtime = tokio::runtime::Handle::current();
        self.node.tasks.spawn_blocking(move || {
            let me = node.me();
            let now_ms = node.now_ms();
            let mut batches = 0usize;
            let mut send = |batch: HoldingsBatch| -> bool {
                batches += 1;
                runtime.block_on(async {
                    tokio::select! {
                        sent = tx.send(Ok(batch)) => sent.is_ok(),
                        _ = node.halt.cancelled() => false,
                    }
                })
            };
            let read = node.store.read(|conn| {
                // One snapshot for the whole answer: a deferred transaction
                // on a read-only connection, rolled back when dropped.
                let snapshot = conn.unchecked_transaction()?;
                reconcile::send_holdings(
                    &snapshot,
                    &me.ctx(now_ms),
                    (&requester, &branch),
                    &mut send,
                )
            });
            let detail = match &read {
                Ok(true) => {
                    tracing::info!(peer = %requester, batches, "holdings sent");
                    format!("{batches} batches of what this node holds from {requester}")
                }
                Ok(false) => {
                    tracing::info!(peer = %requester, batches, "holdings not sent to the end: the peer went away or the node is stopping");
                    format!("{batches} batches of what this node holds from {requester}, then the answer ended early (the peer went away or the node stopped)")
                }
                Err(CoreError::Refused(refusal)) => {
                    // A restore of the peer from a backup of a branch it
                    // left: nothing was sent; its operator restores again.
                    tracing::warn!(peer = %requester, "holdings refused: the peer was restored from a backup of a branch it left");
                    let _ = tx.try_send(Err(Status::failed_precondition(refusal.to_string())));
                    format!("refused: {refusal}")
                }
                Err(error) => {
                    tracing::error!(%error, peer = %requester, "cannot read the holdings");
                    // Without waiting for room: the peer sees the answer
                    // end before its last batch either way.
                    let _ = tx.try_send(Err(Status::internal(
                        "cannot read what this node holds from you",
                    )));
                    format!("{batches} batches of what this node holds from {requester}, then a read failed: {error}")
                }
            };
            let outcome = match &read {
                Ok(_) => Outcome::Ok,
                Err(CoreError::Refused(_)) => Outcome::Refused,
                Err(_) => Outcome::Error,
            };
            runtime.block_on(node.audit(
                Actor::Peer(requester.to_string()),
                "federation.holdings",
                requester.to_string(),
                outcome,
                detail,
            ));
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Keeps the audit head `peer` announced for its log `log_id` (in its
/// `Hello`, or a batch it sent), and audits a head that moved back below
/// the highest seen of that log: the newest entries were deleted there.
/// Returns the highest head seen before (the witness `peer` may check its
/// chain against). A peer of protocol 1 announces none.
pub async fn witness_audit_head(
    node: &Arc<Node>,
    peer: &liaison_types::identity::NodeId,
    log_id: &str,
    announced: Option<&AuditHead>,
) -> Result<Option<AuditHead>, crate::error::NodeError> {
    let peer_id = peer.to_string();
    let log_id = log_id.to_owned();
    let announced = announced.map(|h| audit::Head {
        entries: h.entries,
        hash: h.hash.clone(),
    });
    let now_ms = node.now_ms();
    let (before, backwards) = node
        .db(move |conn| {
            let before = audit::witnessed(conn, &peer_id, &log_id)?.map(|(head, _)| head);
            let backwards = match &announced {
                Some(head) => audit::witness(conn, &peer_id, &log_id, head, now_ms)?
                    .map(|highest| (highest, head.entries)),
                None => None,
            };
            Ok((before, backwards))
        })
        .await?;
    if let Some((highest, now)) = backwards {
        let detail = format!(
            "the audit log of {peer} went back from {} entries to {now}: its newest {} entries were deleted (or the node runs on an older copy of its database under the same log id)",
            highest.entries,
            highest.entries - now
        );
        tracing::warn!(%peer, highest = highest.entries, now, "a peer's audit head moved backwards");
        node.audit(
            Actor::Peer(peer.to_string()),
            "federation.audit_head",
            peer.to_string(),
            Outcome::Error,
            detail,
        )
        .await;
    }
    Ok(before.map(|head| AuditHead {
        entries: head.entries,
        hash: head.hash,
    }))
}
