//! Peers: the peer table, the links to them, and replication's progress.

use liaison_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::action::Action;
use super::AdminService;
use crate::federation::client::ensure_pull_task;
use crate::node::Node;
use liaison_core::store::peers::{self, PeerRecord, PeerState};
use liaison_core::{log, peering, Error as CoreError};
use liaison_types::identity::{self, NodeId};

pub(super) fn parse_node_id(s: &str) -> Result<NodeId, Status> {
    NodeId::parse(s).map_err(|e| Status::invalid_argument(e.to_string()))
}

fn peer_message(node: &Node, peer: &PeerRecord) -> pb::Peer {
    let link = node.links.status(&peer.node_id);
    let remote = link.remote.clone().unwrap_or_default();
    pb::Peer {
        node_id: peer.node_id.to_string(),
        display_name: peer.display_name.clone(),
        endpoint: peer.endpoint.clone(),
        fingerprint: peer.fingerprint.clone().unwrap_or_default(),
        state: peer.state.as_str().to_owned(),
        serves: peer.serves.clone(),
        added_at_ms: peer.added_at_ms,
        outbound_up: link.outbound_up,
        inbound_up: link.inbound_streams > 0,
        last_contact_ms: link.last_contact_ms.or(peer.last_contact_ms).unwrap_or(0),
        last_error: link.last_error.unwrap_or_default(),
        next_attempt_ms: link.next_attempt_ms.unwrap_or(0),
        remote_display_name: remote.display_name,
        remote_protocol_version: remote.protocol_version,
        remote_software_version: remote.software_version,
        auto_accept_branch: peer.auto_accept_branch.clone(),
    }
}

fn pending_message(pending: peers::PendingPeer) -> pb::PendingPeer {
    pb::PendingPeer {
        node_id: pending.node_id,
        remote_addr: pending.remote_addr,
        first_attempt_ms: pending.first_attempt_ms,
        last_attempt_ms: pending.last_attempt_ms,
        attempts: pending.attempts,
        ignored: pending.ignored,
        fingerprint: pending.fingerprint,
        endpoint: pending.endpoint,
    }
}

/// The peer `node_id` as `peer show` shows it.
async fn peer(admin: &AdminService, node_id: NodeId) -> Result<pb::Peer, Status> {
    let peer = admin
        .read(move |conn, _ctx| peers::require(conn, &node_id))
        .await?;
    Ok(peer_message(&admin.node, &peer))
}

/// Every check runs inside [`AdminService::act`], so a refused add is
/// audited too.
pub(super) async fn add(
    admin: &AdminService,
    request: Request<pb::PeerAddRequest>,
) -> Result<Response<pb::Peer>, Status> {
    let (action, add) = Action::of(request, "peer.add", |r| r.node_id.clone());
    let node_id = admin
        .act(action, move |conn, ctx| {
            let node_id =
                NodeId::parse(&add.node_id).map_err(|e| CoreError::invalid(e.to_string()))?;
            if &node_id == ctx.me {
                return Err(CoreError::invalid(format!(
                    "{node_id} is this node itself; add the other regions' nodes as peers"
                )));
            }
            let fingerprint = match add.fingerprint.trim() {
                "" => None,
                fp => Some(
                    identity::parse_fingerprint(fp)
                        .map_err(|e| CoreError::invalid(e.to_string()))?,
                ),
            };
            let peer = PeerRecord {
                display_name: if add.display_name.is_empty() {
                    node_id.to_string()
                } else {
                    add.display_name
                },
                node_id: node_id.clone(),
                endpoint: add.endpoint,
                fingerprint,
                state: PeerState::Active,
                serves: add.serves,
                added_at_ms: 0,
                last_contact_ms: None,
                auto_accept_branch: String::new(),
            };
            let adopted = peering::add(conn, ctx, &peer)?;
            let detail = format!(
                "endpoint {}, serves [{}]; {adopted} members away to its places now served by it",
                peer.endpoint,
                peer.serves.join(" ")
            );
            Ok((node_id, detail))
        })
        .await?;
    admin.node.events_appended();
    ensure_pull_task(&admin.node, &node_id);
    Ok(Response::new(peer(admin, node_id).await?))
}

pub(super) async fn list(
    admin: &AdminService,
    request: Request<pb::PeerListRequest>,
) -> Result<Response<pb::PeerListResponse>, Status> {
    let want_pending = request.get_ref().pending;
    let (list, pending) = admin
        .read(move |conn, _ctx| {
            let pending = if want_pending {
                peers::list_pending(conn)?
            } else {
                Vec::new()
            };
            Ok((peers::list(conn)?, pending))
        })
        .await?;
    Ok(Response::new(pb::PeerListResponse {
        peers: list.iter().map(|p| peer_message(&admin.node, p)).collect(),
        pending: pending
            .into_iter()
            .filter(|p| !p.ignored)
            .map(pending_message)
            .collect(),
    }))
}

pub(super) async fn show(
    admin: &AdminService,
    request: Request<pb::PeerRef>,
) -> Result<Response<pb::Peer>, Status> {
    let node_id = parse_node_id(&request.get_ref().node_id)?;
    Ok(Response::new(peer(admin, node_id).await?))
}

pub(super) async fn pause(
    admin: &AdminService,
    request: Request<pb::PeerRef>,
) -> Result<Response<pb::Peer>, Status> {
    set_state(admin, request, PeerState::Paused).await
}

pub(super) async fn resume(
    admin: &AdminService,
    request: Request<pb::PeerRef>,
) -> Result<Response<pb::Peer>, Status> {
    set_state(admin, request, PeerState::Active).await
}

async fn set_state(
    admin: &AdminService,
    request: Request<pb::PeerRef>,
    state: PeerState,
) -> Result<Response<pb::Peer>, Status> {
    let node_id = parse_node_id(&request.get_ref().node_id)?;
    let name = match state {
        PeerState::Active => "peer.resume",
        PeerState::Paused => "peer.pause",
    };
    let (action, _) = Action::of(request, name, |_| node_id.to_string());
    let id = node_id.clone();
    admin
        .act(action, move |conn, ctx| {
            Ok((
                peers::set_state(conn, &id, state, ctx.now_ms)?,
                String::new(),
            ))
        })
        .await?;
    match state {
        PeerState::Paused => admin.node.links.cut(&node_id),
        PeerState::Active => ensure_pull_task(&admin.node, &node_id),
    }
    Ok(Response::new(peer(admin, node_id).await?))
}

/// Not a change to the records: it wakes the peer's pull task. Audited
/// ([`AdminService::audited`]), refused or not.
pub(super) async fn retry(
    admin: &AdminService,
    request: Request<pb::PeerRef>,
) -> Result<Response<pb::Peer>, Status> {
    let node_id = parse_node_id(&request.get_ref().node_id)?;
    let (action, _) = Action::of(request, "peer.retry", |_| node_id.to_string());
    let peer = peer(admin, node_id.clone()).await?;
    let retried = if peer.state == PeerState::Paused.as_str() {
        Err(CoreError::conflict(format!(
            "peer {node_id} is paused: `peer resume {node_id}` first"
        ))
        .into())
    } else {
        Ok(((), String::new()))
    };
    admin.audited(action, retried).await?;
    match admin.node.links.client(&node_id) {
        Some(client) => client.retry.notify_one(),
        None => ensure_pull_task(&admin.node, &node_id),
    }
    Ok(Response::new(peer))
}

pub(super) async fn remove(
    admin: &AdminService,
    request: Request<pb::PeerRemoveRequest>,
) -> Result<Response<pb::PeerRemoveResponse>, Status> {
    let node_id = parse_node_id(&request.get_ref().node_id)?;
    let (action, remove) = Action::of(request, "peer.remove", |_| node_id.to_string());
    let id = node_id.clone();
    admin
        .act(action, move |conn, ctx| {
            Ok(((), peering::remove(conn, ctx, &id, remove.force)?))
        })
        .await?;
    admin.node.events_appended();
    admin.node.links.cut(&node_id);
    Ok(Response::new(pb::PeerRemoveResponse {
        node_id: node_id.to_string(),
    }))
}

pub(super) async fn ignore(
    admin: &AdminService,
    request: Request<pb::PeerRef>,
) -> Result<Response<pb::PendingPeer>, Status> {
    let node_id = parse_node_id(&request.get_ref().node_id)?;
    let (action, _) = Action::of(request, "peer.ignore", |_| node_id.to_string());
    admin
        .act(action, move |conn, _ctx| {
            Ok((peers::ignore_pending(conn, &node_id)?, String::new()))
        })
        .await
        .map(|pending| Response::new(pending_message(pending)))
}

pub(super) async fn policy(
    admin: &AdminService,
    request: Request<pb::PeerPolicyRequest>,
) -> Result<Response<pb::Peer>, Status> {
    let node_id = parse_node_id(&request.get_ref().node_id)?;
    let (action, policy) = Action::of(request, "peer.policy", |_| node_id.to_string());
    let detail = format!("auto-accept into `{}`", policy.auto_accept_branch);
    let id = node_id.clone();
    admin
        .act(action, move |conn, ctx| {
            let branch = &policy.auto_accept_branch;
            Ok((
                peers::set_auto_accept(conn, &id, branch, ctx.now_ms)?,
                detail,
            ))
        })
        .await?;
    Ok(Response::new(peer(admin, node_id).await?))
}

/// Replication with each peer (or the one named): cursors both ways, the
/// backlog, and the link as it stands in memory.
pub(super) async fn status(
    admin: &AdminService,
    request: Request<pb::PeerStatusRequest>,
) -> Result<Response<pb::PeerStatusResponse>, Status> {
    let only = request.into_inner().node_id;
    let list = admin.read(|conn, _ctx| peers::list(conn)).await?;
    let mut out = Vec::new();
    for peer in list {
        if !only.is_empty() && peer.node_id.as_str() != only {
            continue;
        }
        let id = peer.node_id.clone();
        let link = admin.node.links.status(&peer.node_id);
        let sent_seq = link.sent_seq;
        let (cursor, backlog, peer_cursor, quarantined) = admin
            .read(move |conn, _ctx| {
                let cursor = log::latest_cursor(conn, &id)?;
                let peer_cursor = log::peer_progress(conn, &id)?.max(sent_seq);
                let backlog = log::backlog(conn, &id, peer_cursor)?;
                let quarantined: u64 = conn.query_row(
                    "SELECT COUNT(*) FROM quarantine WHERE origin = ?1 AND state = 'held'",
                    [id.as_str()],
                    |r| r.get(0),
                )?;
                Ok((cursor, backlog, peer_cursor, quarantined))
            })
            .await?;
        let (peer_log_id, my_cursor, applied_total, _) = cursor.unwrap_or_default();
        out.push(pb::PeerReplication {
            node_id: peer.node_id.to_string(),
            peer_log_id,
            my_cursor,
            peer_head: link.peer_head.max(my_cursor),
            backlog_for_peer: backlog,
            peer_cursor,
            events_per_second: link.events_per_second(admin.node.now_ms()),
            last_batch_ms: link.last_batch_ms.unwrap_or(0),
            quarantined,
            applied_total,
            outbound_up: link.outbound_up,
            inbound_up: link.inbound_streams > 0,
        });
    }
    if !only.is_empty() && out.is_empty() {
        return Err(Status::not_found(format!(
            "no peer {only}: `peer list` shows the peers"
        )));
    }
    Ok(Response::new(pb::PeerStatusResponse { peers: out }))
}
