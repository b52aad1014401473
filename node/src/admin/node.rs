//! This node: its status, the to-do list, references, backup, reconcile
//! after a restore, and the test deployments' clock.

use liaison_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::action::Action;
use super::peers::parse_node_id;
use super::{status_of, AdminService};
use crate::error::NodeError;
use liaison_core::store::audit::Outcome;
use liaison_core::store::peers::{self, PeerState};
use liaison_core::Error as CoreError;

/// Days before the node's certificate expires from which the to-do list
/// names it (`liaisonctl status` warns from the same day).
const CERTIFICATE_WARNING_DAYS: i64 = 30;

/// Days before the revocation list's next update from which the to-do
/// list names it (`liaisonctl status` warns from the same day).
const CRL_WARNING_DAYS: i64 = 7;

/// A peer not reached for this long is on the operators' to-do list.
const PEER_UNREACHABLE_MS: i64 = 3_600_000;

pub(super) async fn status(
    admin: &AdminService,
    _request: Request<pb::StatusRequest>,
) -> Result<Response<pb::StatusResponse>, Status> {
    let node = &admin.node;
    let store = node.store.clone();
    let (peers_total, reconciling, database_bytes) = admin
        .read(move |conn, _ctx| {
            Ok((
                peers::list(conn)?.len(),
                liaison_core::epoch::is_reconciling(conn)?,
                store.size_bytes(),
            ))
        })
        .await?;
    let credentials = node.credentials();
    Ok(Response::new(pb::StatusResponse {
        node_id: node.node_id.to_string(),
        display_name: node.config.display_name.clone(),
        software_version: crate::SOFTWARE_VERSION.to_owned(),
        protocol_version: liaison_proto::PROTOCOL_VERSION,
        uptime_seconds: node.started.elapsed().as_secs(),
        database_path: node.store.path().display().to_string(),
        database_bytes,
        peers_up: node.links.peers_up() as u32,
        peers_total: peers_total as u32,
        federation_addr: node.federation_addr.to_string(),
        log_id: node.log_id(),
        federation: credentials.material.federation.clone(),
        reconciling,
        time_zone: node.config.time_zone.name().to_owned(),
        metrics_addr: node
            .metrics_addr
            .map(|addr| addr.to_string())
            .unwrap_or_default(),
        certificate_not_after_ms: credentials.material.not_after.saturating_mul(1000),
        crl_path: credentials
            .files
            .crl
            .as_ref()
            .map(|path| path.display().to_string())
            .unwrap_or_default(),
        crl_revoked: credentials.crls.revoked as u32,
        crl_next_update_ms: credentials
            .crls
            .next_update
            .unwrap_or(0)
            .saturating_mul(1000),
    }))
}

pub(super) async fn reload(
    admin: &AdminService,
    request: Request<pb::ReloadRequest>,
) -> Result<Response<pb::ReloadResponse>, Status> {
    let actor = super::socket::operator(&request);
    let node = &admin.node;
    let reloaded = node.reload(actor).await.map_err(status_of)?;
    Ok(Response::new(pb::ReloadResponse {
        detail: reloaded.detail,
        certificate_not_after_ms: node.tls().not_after.saturating_mul(1000),
        restart_needed: reloaded.restart_needed,
        connections_cut: reloaded.connections_cut as u32,
    }))
}

/// The changes a reference may be resolved for (`ResolveRequest.action`):
/// a reference refused for one of them is audited as that change refused.
const CHANGES: [&str; 34] = [
    "activity.record",
    "agreement.accept",
    "agreement.counter",
    "agreement.propose",
    "agreement.reject",
    "agreement.terminate",
    "contact.record",
    "contact.status",
    "member.add",
    "member.host_set",
    "member.import",
    "member.update",
    "org.add",
    "org.import",
    "outflow.register",
    "outflow.return",
    "outflow.update",
    "peer.add",
    "peer.ignore",
    "peer.pause",
    "peer.policy",
    "peer.remove",
    "peer.resume",
    "peer.retry",
    "quarantine.retry",
    "reconcile.without_peer",
    "transfer.accept",
    "transfer.cancel",
    "transfer.extend",
    "transfer.paper",
    "transfer.reissue",
    "transfer.reject",
    "transfer.start",
    "backup",
];

pub(super) async fn resolve(
    admin: &AdminService,
    request: Request<pb::ResolveRequest>,
) -> Result<Response<pb::ResolveResponse>, Status> {
    let change = CHANGES
        .iter()
        .find(|name| **name == request.get_ref().action.trim())
        .copied();
    let (action, request) = Action::of(request, change.unwrap_or("resolve"), |r| {
        r.reference.clone()
    });
    let kind = liaison_core::refs::Kind::parse(&request.kind).ok_or_else(|| {
        Status::invalid_argument(format!(
            "unknown kind of reference `{}`: member, transfer, agreement, org, peer or station",
            request.kind
        ))
    })?;
    let resolved = admin
        .read(move |conn, ctx| {
            liaison_core::refs::resolve(conn, ctx, kind, &request.reference, &request.branch)
        })
        .await;
    let resolved = match resolved {
        Ok(resolved) => resolved,
        Err(status) => {
            // A change refused for its reference is audited like any
            // change the node refuses; a read's is not.
            if change.is_some() {
                admin
                    .record(action, Outcome::Refused, status.message().to_owned())
                    .await;
            }
            return Err(status);
        }
    };
    Ok(Response::new(pb::ResolveResponse {
        id: resolved.id,
        label: resolved.label,
    }))
}

pub(super) async fn todo(
    admin: &AdminService,
    _request: Request<pb::TodoRequest>,
) -> Result<Response<pb::TodoResponse>, Status> {
    let (mut items, peers, now_ms) = admin
        .read(|conn, ctx| {
            let items = liaison_core::todo::list(conn, ctx)?;
            Ok((items, peers::list(conn)?, ctx.now_ms))
        })
        .await?;
    // Link state lives in memory: peers this node has not reached for
    // an hour or more.
    for peer in peers {
        if peer.state != PeerState::Active {
            continue;
        }
        let link = admin.node.links.status(&peer.node_id);
        if link.outbound_up {
            continue;
        }
        let last_ms = [link.last_contact_ms, peer.last_contact_ms]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(peer.added_at_ms);
        if now_ms - last_ms < PEER_UNREACHABLE_MS {
            continue;
        }
        let error = link.last_error.unwrap_or_default();
        items.push(liaison_core::todo::Item {
            kind: "peer_unreachable",
            days_left: None,
            subject: format!(
                "peer {} ({}) unreachable for {} h",
                peer.node_id,
                peer.display_name,
                (now_ms - last_ms) / 3_600_000
            ),
            detail: if error.is_empty() {
                "no link to it: check its endpoint and that its node runs".into()
            } else {
                format!("last error: {error}")
            },
            command: format!("liaisonctl peer show {}", peer.node_id),
        });
    }
    // The node's own certificate, as in force now (it lives in memory).
    let days_left = crate::node::certificate_days_left(&admin.node.tls(), now_ms).floor() as i64;
    if days_left <= CERTIFICATE_WARNING_DAYS {
        items.push(liaison_core::todo::Item {
            kind: "certificate_expiring",
            days_left: Some(days_left),
            subject: format!("this node's certificate expires in {days_left} days"),
            detail: "peers refuse an expired certificate: have the federation CA issue a new one and put it in place".into(),
            command: "liaisonctl reload (after replacing the certificate and key files)".into(),
        });
    }
    // The revocation list in force: the CA promised a newer one by its
    // next update. Past it, the node keeps enforcing the list it has (a
    // certificate revoked since is not known here), but a restart refuses
    // the stale list: renew it before then.
    let credentials = admin.node.credentials();
    if let Some(days) = crate::node::crl_days_left(&credentials, now_ms) {
        let days_left = days.floor() as i64;
        if days_left < CRL_WARNING_DAYS {
            let path = credentials
                .files
                .crl
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            items.push(liaison_core::todo::Item {
                kind: "crl_expiring",
                days_left: Some(days_left),
                subject: if days_left < 0 {
                    format!("the revocation list {path} is past its next update")
                } else {
                    format!("the revocation list {path} is due for renewal in {days_left} days")
                },
                detail: "the node keeps enforcing it, but certificates revoked since are not in it: have the federation CA sign a new one (`liaisonctl ca crl`), copy it in place and run `liaisonctl reload`".into(),
                command: "liaisonctl ca crl (at the CA), then liaisonctl reload".into(),
            });
        }
    }
    items.sort_by_key(liaison_core::todo::Item::rank);
    Ok(Response::new(pb::TodoResponse {
        items: items
            .into_iter()
            .map(|i| pb::TodoItem {
                kind: i.kind.into(),
                days_left: i.days_left,
                subject: i.subject,
                detail: i.detail,
                command: i.command,
            })
            .collect(),
    }))
}

/// Not a change in the writer: `VACUUM INTO` cannot run inside a
/// transaction. It reads on a connection of its own, so writers go on
/// meanwhile, and its outcome is audited after it ([`AdminService::audited`]).
/// Backup is no owner action: a reconciling node takes backups too.
pub(super) async fn backup(
    admin: &AdminService,
    request: Request<pb::BackupRequest>,
) -> Result<Response<pb::BackupResponse>, Status> {
    let out = std::path::PathBuf::from(&request.get_ref().out);
    if !out.is_absolute() {
        return Err(Status::invalid_argument(format!(
            "{}: give an absolute path (liaisonctl resolves a relative one)",
            out.display()
        )));
    }
    let target = out.display().to_string();
    let (action, _) = Action::of(request, "backup", |_| target.clone());
    let log_id = admin.node.log_id();
    let now_ms = admin.node.now_ms();
    let store = admin.node.store.clone();
    let result = match admin
        .node
        .tasks
        .spawn_blocking(move || store.backup(&out, now_ms))
        .await
    {
        Ok(result) => result
            .map(|bytes| (bytes, format!("{bytes} bytes, log id {log_id}")))
            .map_err(NodeError::Core),
        Err(join) => Err(NodeError::Internal(format!(
            "the backup task failed: {join}"
        ))),
    };
    let bytes = admin.audited(action, result).await?;
    Ok(Response::new(pb::BackupResponse {
        path: target,
        taken_at_ms: now_ms,
        bytes,
        log_id,
    }))
}

pub(super) async fn reconcile_status(
    admin: &AdminService,
    _request: Request<pb::ReconcileStatusRequest>,
) -> Result<Response<pb::ReconcileStatus>, Status> {
    admin
        .read(|conn, ctx| liaison_core::reconcile::status(conn, ctx.zone))
        .await
        .map(Response::new)
}

/// Not a change in the writer: the core goes on without the peer and
/// ends the reconciliation in transactions of its own, and appends the
/// action's entry with the first (`core::reconcile::skip_peer`). A refusal
/// is recorded here ([`AdminService::refused`]). Going on without a peer
/// is no owner action: it is what ends a reconciliation.
pub(super) async fn reconcile_without_peer(
    admin: &AdminService,
    request: Request<pb::PeerRef>,
) -> Result<Response<pb::ReconcileStatus>, Status> {
    let peer = parse_node_id(&request.get_ref().node_id)?;
    let (action, _) = Action::of(request, "reconcile.without_peer", |_| peer.to_string());
    let me = admin.me();
    let now_ms = admin.node.now_ms();
    let actor = action.actor.clone();
    let result = admin
        .node
        .db(move |conn| {
            let ctx = me.ctx(now_ms);
            liaison_core::reconcile::skip_peer(conn, &ctx, &peer, &actor)?;
            liaison_core::reconcile::status(conn, ctx.zone)
        })
        .await;
    match result {
        Ok(status) => {
            admin.node.events_appended();
            Ok(Response::new(status))
        }
        Err(error) => Err(admin.refused(action, error).await),
    }
}

/// Not a change to the records: the clock lives in memory. Audited
/// ([`AdminService::audited`]), refused or not.
pub(super) async fn debug_clock(
    admin: &AdminService,
    request: Request<pb::DebugClockRequest>,
) -> Result<Response<pb::DebugClockResponse>, Status> {
    let (action, request) = Action::of(request, "debug.clock", |_| String::new());
    let offset_ms = request.offset_ms;
    let moved = if admin.node.config.testing.allow_clock_override {
        admin.node.clock.set_offset_ms(offset_ms);
        Ok(((), format!("offset {offset_ms} ms")))
    } else {
        Err(CoreError::conflict(
            "this node's clock cannot be moved: only test deployments set [testing] allow_clock_override = true".into(),
        ).into())
    };
    admin.audited(action, moved).await?;
    crate::node::run_calendar(&admin.node, true)
        .await
        .map_err(status_of)?;
    Ok(Response::new(pb::DebugClockResponse {
        now_ms: admin.node.now_ms(),
        offset_ms,
    }))
}
