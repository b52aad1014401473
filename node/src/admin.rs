//! The operators' service, on a Unix socket in the data directory.
//!
//! Every verb of `liaisonctl` that reads or changes the node's records comes
//! through here, so every operator action passes the same checks and lands in
//! the audit log with the OS user the socket's peer credentials name.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use liaison_proto::v1 as pb;
use liaison_rpc::v1::admin_server::{Admin, AdminServer};
use rusqlite::{Connection, TransactionBehavior};
use tokio::net::UnixStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::codegen::http;
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status};

use crate::error::NodeError;
use crate::federation::client::ensure_pull_task;
use crate::node::{Node, StartError};
use liaison_core::store::audit::{self, Actor, NewEntry, Outcome};
use liaison_core::store::peers::{self, PeerRecord, PeerState};
use liaison_core::{agreements, import, log, members, peering, transfers, Ctx};
use liaison_core::{Error as CoreError, Refusal};
use liaison_types::config::Config;
use liaison_types::identity::{self, NodeId};

/// Binds the admin socket: mode 0600, or 0660 with the operators' group.
/// A socket file left by a node that died is replaced; one that answers
/// means another node runs on this data directory.
pub fn bind(config: &Config) -> Result<tokio::net::UnixListener, StartError> {
    let path = &config.admin_socket;
    let fail = |message: String| StartError::AdminSocket {
        path: path.clone(),
        message,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(fail(
                "another node is already running with this socket: stop it first".into(),
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
    }
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            return Err(fail(format!(
                "directory {} does not exist",
                parent.display()
            )));
        }
    }
    let listener =
        tokio::net::UnixListener::bind(path).map_err(|e| fail(format!("cannot listen: {e}")))?;
    let mode = if config.admin_group.is_some() {
        0o660
    } else {
        0o600
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| fail(format!("cannot set its mode: {e}")))?;
    if let Some(group) = &config.admin_group {
        chown_group(path, group).map_err(fail)?;
    }
    Ok(listener)
}

fn chown_group(path: &Path, group: &str) -> Result<(), String> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let name = CString::new(group).map_err(|_| format!("bad group name `{group}`"))?;
    // SAFETY: getgrnam returns a pointer into static storage or null; we read
    // one field at once, before any other call could overwrite it.
    let gid = unsafe {
        let entry = libc::getgrnam(name.as_ptr());
        if entry.is_null() {
            return Err(format!("admin.group `{group}` does not exist"));
        }
        (*entry).gr_gid
    };
    let c_path =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| "bad socket path".to_string())?;
    // SAFETY: c_path is a valid NUL-terminated string; uid -1 leaves the owner.
    let rc = unsafe { libc::chown(c_path.as_ptr(), u32::MAX, gid) };
    if rc != 0 {
        return Err(format!(
            "cannot give the socket to group `{group}`: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// How long the admin calls in flight when the node is asked to stop may
/// take to finish: an import of 100,000 members takes about 20 s
/// (docs/BENCHMARKS.md, P6). With [`ADMIN_CLOSE_GRACE`] and
/// [`crate::node::HALT_GRACE`] it stays within systemd's stop timeout
/// (30 s, deploy/liaison-node.service).
pub const ADMIN_GRACE: Duration = Duration::from_secs(20);

/// How long the admin connections have to close once no call is in flight.
const ADMIN_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Serves the admin socket until the node is asked to stop; then takes no
/// new connection, answers new calls on the open ones "unavailable: the
/// node is stopping" ([`Admission`]), and returns once the calls in flight
/// have finished (at most [`ADMIN_GRACE`]) and the connections closed.
pub async fn serve(node: Arc<Node>, listener: tokio::net::UnixListener) {
    // Imports carry a whole roster in one message: allow 128 MiB (about
    // a million members) on the admin socket, which only operators reach.
    let service = AdminServer::new(AdminService { node: node.clone() })
        .max_decoding_message_size(128 * 1024 * 1024)
        .max_encoding_message_size(128 * 1024 * 1024);
    let shutdown = node.shutdown.clone();
    let admission = Admission {
        shutdown: shutdown.clone(),
        calls: TaskTracker::new(),
    };
    let (conn_tx, conn_rx) = tokio::sync::mpsc::channel::<std::io::Result<UnixStream>>(16);
    let accept_tx = conn_tx.clone();
    let accept_shutdown = shutdown.clone();
    node.tasks.spawn(async move {
        // The listener closes when the node is asked to stop.
        let mut accept_delay_ms = 5u64;
        loop {
            let accepted = tokio::select! {
                _ = accept_shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _)) => {
                    accept_delay_ms = 5;
                    if accept_tx.send(Ok(stream)).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off, never spin.
                    tracing::warn!(%error, "admin socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(accept_delay_ms)).await;
                    accept_delay_ms = (accept_delay_ms * 2).min(1000);
                }
            }
        }
    });
    // The server tells its connections to go away (and they close once
    // idle) only when this resolves: until then a call on an open
    // connection is answered by `Admission`, not cut by the transport.
    let drained = {
        let admission = admission.clone();
        async move {
            admission.shutdown.cancelled().await;
            admission.calls.close();
            if tokio::time::timeout(ADMIN_GRACE, admission.calls.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    calls = admission.calls.len(),
                    "admin calls still running {ADMIN_GRACE:?} after the node was asked to stop: stopping without them"
                );
            }
        }
    };
    let server = tonic::transport::Server::builder()
        .layer(admission)
        .add_service(service)
        .serve_with_incoming_shutdown(ReceiverStream::new(conn_rx), drained);
    let bound = async {
        shutdown.cancelled().await;
        tokio::time::sleep(ADMIN_GRACE + ADMIN_CLOSE_GRACE).await;
    };
    tokio::select! {
        result = server => {
            if let Err(error) = result {
                tracing::error!(%error, "admin server stopped");
            }
        }
        () = bound => tracing::warn!("admin connections still open after the node was asked to stop: stopping without them"),
    }
    // Held until here: the incoming stream must not end before `drained`,
    // or the server would stop before the calls in flight have.
    drop(conn_tx);
}

/// Lets admin calls in while the node runs. Once the node is asked to
/// stop, a new call is answered "unavailable: the node is stopping" and
/// not run; the calls in flight are counted (`calls`), so the service
/// closes its connections only once they have finished.
#[derive(Debug, Clone)]
struct Admission {
    shutdown: CancellationToken,
    calls: TaskTracker,
}

impl<S> tower::Layer<S> for Admission {
    type Service = Admitted<S>;

    fn layer(&self, inner: S) -> Admitted<S> {
        Admitted {
            inner,
            admission: self.clone(),
        }
    }
}

/// A service behind [`Admission`].
#[derive(Debug, Clone)]
struct Admitted<S> {
    inner: S,
    admission: Admission,
}

impl<S, B, R> tower::Service<http::Request<B>> for Admitted<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if self.admission.shutdown.is_cancelled() {
            return Box::pin(std::future::ready(Ok(stopping().into_http())));
        }
        let in_flight = self.admission.calls.token();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(in_flight);
            answer
        })
    }
}

/// The OS user on the other end of the admin socket.
fn operator<T>(request: &Request<T>) -> Actor {
    let uid = request
        .extensions()
        .get::<UdsConnectInfo>()
        .and_then(|info| info.peer_cred)
        .map(|cred| cred.uid());
    match uid {
        Some(uid) => Actor::Operator(user_name(uid).unwrap_or_else(|| format!("uid {uid}"))),
        None => Actor::Operator("unknown".into()),
    }
}

fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers point to live, correctly sized buffers; the
    // returned name points into `buf`, which outlives its use here.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

pub fn status_of(error: impl Into<NodeError>) -> Status {
    status_of_ref(&error.into())
}

/// The answer to a call that was not run, or a change that was not made,
/// because the node is stopping.
fn stopping() -> Status {
    Status::unavailable("the node is stopping: nothing was done; try again once it is back")
}

/// [`status_of`] without consuming the error. By kind: a refusal is the
/// operator's to fix (`NOT_FOUND`, `FAILED_PRECONDITION`,
/// `INVALID_ARGUMENT`; `liaisonctl` exits 1, "refused"); a node that is
/// stopping is `UNAVAILABLE` (exit 2, try again); a storage failure or a
/// fault of the node is not the caller's (`INTERNAL`, logged here with an
/// id the message names).
fn status_of_ref(error: &NodeError) -> Status {
    match error {
        NodeError::Core(CoreError::Refused(refusal)) => match refusal {
            Refusal::NotFound(m) => Status::not_found(m.clone()),
            Refusal::Invalid(m) => Status::invalid_argument(m.clone()),
            Refusal::Conflict(_) | Refusal::Reconciling { .. } => {
                Status::failed_precondition(refusal.to_string())
            }
            Refusal::Ambiguous { .. } => Status::invalid_argument(refusal.to_string()),
            other => Status::failed_precondition(other.to_string()),
        },
        NodeError::Core(CoreError::Storage(storage)) => internal(storage),
        NodeError::Stopping => stopping(),
        NodeError::Internal(message) => internal(message),
    }
}

/// An internal error: logged with an id, and answered with the id so an
/// operator can find the log line.
pub fn internal(error: &dyn std::fmt::Display) -> Status {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let error_id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::error!(error_id, %error, "internal error answering an operator's call");
    Status::internal(format!(
        "{error} (not a refusal of the request: a fault of the node or its database; its log has the details under `error_id={error_id}`)"
    ))
}

/// A peer not reached for this long is on the operators' to-do list.
const PEER_UNREACHABLE_MS: i64 = 3_600_000;

fn parse_node_id(s: &str) -> Result<NodeId, Status> {
    NodeId::parse(s).map_err(|e| Status::invalid_argument(e.to_string()))
}

#[derive(Debug)]
pub struct AdminService {
    node: Arc<Node>,
}

impl AdminService {
    /// Runs an operator's change with its audit entry in one transaction
    /// (the writer's next group commit: `crate::writer`). A refused change
    /// writes nothing but a "refused" audit entry of its own.
    async fn act<R, F>(
        &self,
        actor: Actor,
        action: &'static str,
        target: String,
        f: F,
    ) -> Result<R, Status>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, i64) -> Result<(R, String), CoreError> + Send + 'static,
    {
        let now_ms = self.node.now_ms();
        let (refused_actor, refused_target) = (actor.clone(), target.clone());
        let result = self
            .node
            .writer
            .run(
                move |conn| {
                    liaison_core::reconcile::refuse_owner_action(conn, action)?;
                    let (value, detail) = f(conn, now_ms)?;
                    audit::append(
                        conn,
                        now_ms,
                        &NewEntry {
                            actor: &actor,
                            action,
                            target: &target,
                            outcome: Outcome::Ok,
                            detail: &detail,
                        },
                    )?;
                    Ok(value)
                },
                move |conn, error| {
                    let status = status_of_ref(error);
                    let entry = NewEntry {
                        actor: &refused_actor,
                        action,
                        target: &refused_target,
                        outcome: Outcome::Refused,
                        detail: status.message(),
                    };
                    if let Err(error) = audit::append(conn, now_ms, &entry) {
                        tracing::error!(%error, action, "cannot write audit entry");
                    }
                },
            )
            .await;
        result.map_err(status_of)
    }

    /// An operator's change to the registry, run by the core with this
    /// node's identity and clock.
    async fn change<R, F>(
        &self,
        actor: Actor,
        action: &'static str,
        target: String,
        f: F,
    ) -> Result<R, Status>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Ctx<'_>) -> Result<(R, String), CoreError> + Send + 'static,
    {
        let me = self.node.node_id.clone();
        let notary = self.node.notary.clone();
        self.act(actor, action, target, move |conn, now_ms| {
            f(conn, &Ctx::new(&me, now_ms).with_notary(notary.as_ref()))
        })
        .await
    }

    /// A read of the registry, on a read-only connection (it does not
    /// wait for the writer).
    async fn read<R, F>(&self, f: F) -> Result<R, Status>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Ctx<'_>) -> Result<R, CoreError> + Send + 'static,
    {
        let me = self.node.node_id.clone();
        let now_ms = self.node.now_ms();
        let notary = self.node.notary.clone();
        self.node
            .read(move |conn| f(conn, &Ctx::new(&me, now_ms).with_notary(notary.as_ref())))
            .await
            .map_err(status_of)
    }

    fn letter_rules(&self) -> transfers::LetterRules {
        transfers::LetterRules {
            valid_days_default: self.node.config.transfers.valid_days_default,
            valid_days_max: self.node.config.transfers.valid_days_max,
        }
    }

    fn peer_message(&self, peer: &PeerRecord) -> pb::Peer {
        let link = self.node.links.status(&peer.node_id);
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

    async fn peer(&self, node_id: NodeId) -> Result<pb::Peer, Status> {
        let peer = self
            .node
            .read(move |conn| peers::require(conn, &node_id))
            .await
            .map_err(status_of)?;
        Ok(self.peer_message(&peer))
    }

    async fn set_state(
        &self,
        request: Request<pb::PeerRef>,
        state: PeerState,
    ) -> Result<Response<pb::Peer>, Status> {
        let actor = operator(&request);
        let node_id = parse_node_id(&request.get_ref().node_id)?;
        let id = node_id.clone();
        let action = match state {
            PeerState::Active => "peer.resume",
            PeerState::Paused => "peer.pause",
        };
        self.act(actor, action, node_id.to_string(), move |conn, now_ms| {
            let peer = peers::set_state(conn, &id, state, now_ms)?;
            Ok((peer, String::new()))
        })
        .await?;
        match state {
            PeerState::Paused => self.node.links.cut(&node_id),
            PeerState::Active => ensure_pull_task(&self.node, &node_id),
        }
        Ok(Response::new(self.peer(node_id).await?))
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let node = &self.node;
        let store = node.store.clone();
        let (peers_total, reconciling, database_bytes) = node
            .read(move |conn| {
                Ok((
                    peers::list(conn)?.len(),
                    liaison_core::epoch::is_reconciling(conn)?,
                    store.size_bytes(),
                ))
            })
            .await
            .map_err(status_of)?;
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
            federation: node.tls.federation.clone(),
            reconciling,
            time_zone: node.config.time_zone.name().to_owned(),
        }))
    }

    async fn resolve(
        &self,
        request: Request<pb::ResolveRequest>,
    ) -> Result<Response<pb::ResolveResponse>, Status> {
        let actor = operator(&request);
        let request = request.into_inner();
        let kind = liaison_core::refs::Kind::parse(&request.kind).ok_or_else(|| {
            Status::invalid_argument(format!(
                "unknown kind of reference `{}`: member, transfer, agreement, org or peer",
                request.kind
            ))
        })?;
        let me = self.node.node_id.clone();
        let now_ms = self.node.now_ms();
        let (reference, branch) = (request.reference.clone(), request.branch.clone());
        let resolved = self
            .node
            .read(move |conn| {
                liaison_core::refs::resolve(conn, &Ctx::new(&me, now_ms), kind, &reference, &branch)
            })
            .await;
        let resolved = match resolved {
            Ok(resolved) => resolved,
            Err(error) => {
                let status = status_of(error);
                // A change refused for its reference is audited like any
                // change the node refuses.
                let action = request.action.trim();
                let is_action = !action.is_empty()
                    && action.len() <= 40
                    && action
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
                if is_action {
                    self.node
                        .audit(
                            actor,
                            action,
                            request.reference.clone(),
                            Outcome::Refused,
                            status.message().to_owned(),
                        )
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

    async fn todo(
        &self,
        _request: Request<pb::TodoRequest>,
    ) -> Result<Response<pb::TodoResponse>, Status> {
        let me = self.node.node_id.clone();
        let now_ms = self.node.now_ms();
        let mut items = self
            .node
            .read(move |conn| liaison_core::todo::list(conn, &Ctx::new(&me, now_ms)))
            .await
            .map_err(status_of)?;
        // Link state lives in memory: peers this node has not reached for
        // an hour or more.
        let peers = self.node.read(peers::list).await.map_err(status_of)?;
        for peer in peers {
            if peer.state != PeerState::Active {
                continue;
            }
            let link = self.node.links.status(&peer.node_id);
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

    async fn backup(
        &self,
        request: Request<pb::BackupRequest>,
    ) -> Result<Response<pb::BackupResponse>, Status> {
        let actor = operator(&request);
        let out = std::path::PathBuf::from(request.into_inner().out);
        if !out.is_absolute() {
            return Err(Status::invalid_argument(format!(
                "{}: give an absolute path (liaisonctl resolves a relative one)",
                out.display()
            )));
        }
        let target = out.display().to_string();
        let log_id = self.node.log_id();
        // VACUUM INTO cannot run inside a transaction: not through `act`.
        // It reads on a connection of its own, so writers go on meanwhile.
        let now_ms = self.node.now_ms();
        let store = self.node.store.clone();
        let result = match self
            .node
            .tasks
            .spawn_blocking(move || store.backup(&out, now_ms))
            .await
        {
            Ok(result) => result.map_err(NodeError::Core),
            Err(join) => Err(NodeError::Internal(format!(
                "the backup task failed: {join}"
            ))),
        };
        let (outcome, detail) = match &result {
            Ok(bytes) => (Outcome::Ok, format!("{bytes} bytes, log id {log_id}")),
            Err(error) => (Outcome::Refused, error.to_string()),
        };
        self.node
            .audit(actor, "backup", target.clone(), outcome, detail)
            .await;
        let bytes = result.map_err(status_of)?;
        Ok(Response::new(pb::BackupResponse {
            path: target,
            taken_at_ms: now_ms,
            bytes,
            log_id,
        }))
    }

    async fn reconcile_status(
        &self,
        _request: Request<pb::ReconcileStatusRequest>,
    ) -> Result<Response<pb::ReconcileStatus>, Status> {
        let status = self
            .read(|conn, _ctx| liaison_core::reconcile::status(conn))
            .await?;
        Ok(Response::new(status))
    }

    async fn reconcile_without_peer(
        &self,
        request: Request<pb::PeerRef>,
    ) -> Result<Response<pb::ReconcileStatus>, Status> {
        let actor = operator(&request);
        let peer = parse_node_id(&request.into_inner().node_id)?;
        let me = self.node.node_id.clone();
        let now_ms = self.node.now_ms();
        let (actor2, peer2) = (actor.clone(), peer.clone());
        let result = self
            .node
            .db(move |conn| {
                let ctx = Ctx::new(&me, now_ms);
                liaison_core::reconcile::skip_peer(conn, &ctx, &peer2, &actor2)?;
                liaison_core::reconcile::status(conn)
            })
            .await;
        match result {
            Ok(status) => {
                self.node.events_appended();
                Ok(Response::new(status))
            }
            Err(error) => {
                let status = status_of(error);
                self.node
                    .audit(
                        actor,
                        "reconcile.without_peer",
                        peer.to_string(),
                        Outcome::Refused,
                        status.message().to_owned(),
                    )
                    .await;
                Err(status)
            }
        }
    }

    async fn peer_add(
        &self,
        request: Request<pb::PeerAddRequest>,
    ) -> Result<Response<pb::Peer>, Status> {
        let actor = operator(&request);
        let add = request.into_inner();
        let me = self.node.node_id.clone();
        // Every check runs inside `act`, so a refused add is audited too.
        let node_id = self
            .act(actor, "peer.add", add.node_id.clone(), move |conn, now_ms| {
                let node_id = NodeId::parse(&add.node_id).map_err(|e| CoreError::invalid(e.to_string()))?;
                if node_id == me {
                    return Err(CoreError::invalid(format!(
                        "{node_id} is this node itself; add the other regions' nodes as peers"
                    )));
                }
                let fingerprint = match add.fingerprint.trim() {
                    "" => None,
                    fp => Some(identity::parse_fingerprint(fp).map_err(|e| CoreError::invalid(e.to_string()))?),
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
                let adopted = peering::add(conn, &Ctx::new(&me, now_ms), &peer)?;
                let detail = format!(
                    "endpoint {}, serves [{}]; {adopted} members away to its places now served by it",
                    peer.endpoint,
                    peer.serves.join(" ")
                );
                Ok((node_id, detail))
            })
            .await?;
        self.node.events_appended();
        ensure_pull_task(&self.node, &node_id);
        Ok(Response::new(self.peer(node_id).await?))
    }

    async fn peer_list(
        &self,
        request: Request<pb::PeerListRequest>,
    ) -> Result<Response<pb::PeerListResponse>, Status> {
        let want_pending = request.get_ref().pending;
        let (list, pending) = self
            .node
            .read(move |conn| {
                let pending = if want_pending {
                    peers::list_pending(conn)?
                } else {
                    Vec::new()
                };
                Ok((peers::list(conn)?, pending))
            })
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::PeerListResponse {
            peers: list.iter().map(|p| self.peer_message(p)).collect(),
            pending: pending
                .into_iter()
                .filter(|p| !p.ignored)
                .map(|p| pb::PendingPeer {
                    node_id: p.node_id,
                    remote_addr: p.remote_addr,
                    first_attempt_ms: p.first_attempt_ms,
                    last_attempt_ms: p.last_attempt_ms,
                    attempts: p.attempts,
                    ignored: p.ignored,
                    fingerprint: p.fingerprint,
                    endpoint: p.endpoint,
                })
                .collect(),
        }))
    }

    async fn peer_show(&self, request: Request<pb::PeerRef>) -> Result<Response<pb::Peer>, Status> {
        let node_id = parse_node_id(&request.get_ref().node_id)?;
        Ok(Response::new(self.peer(node_id).await?))
    }

    async fn peer_pause(
        &self,
        request: Request<pb::PeerRef>,
    ) -> Result<Response<pb::Peer>, Status> {
        self.set_state(request, PeerState::Paused).await
    }

    async fn peer_resume(
        &self,
        request: Request<pb::PeerRef>,
    ) -> Result<Response<pb::Peer>, Status> {
        self.set_state(request, PeerState::Active).await
    }

    async fn peer_retry(
        &self,
        request: Request<pb::PeerRef>,
    ) -> Result<Response<pb::Peer>, Status> {
        let actor = operator(&request);
        let node_id = parse_node_id(&request.get_ref().node_id)?;
        let peer = self.peer(node_id.clone()).await?;
        if peer.state == PeerState::Paused.as_str() {
            let status = Status::failed_precondition(format!(
                "peer {node_id} is paused: `peer resume {node_id}` first"
            ));
            self.node
                .audit(
                    actor,
                    "peer.retry",
                    node_id.to_string(),
                    Outcome::Refused,
                    status.message().to_owned(),
                )
                .await;
            return Err(status);
        }
        self.node
            .audit(
                actor,
                "peer.retry",
                node_id.to_string(),
                Outcome::Ok,
                String::new(),
            )
            .await;
        match self.node.links.client(&node_id) {
            Some(client) => client.retry.notify_one(),
            None => ensure_pull_task(&self.node, &node_id),
        }
        Ok(Response::new(peer))
    }

    async fn peer_remove(
        &self,
        request: Request<pb::PeerRemoveRequest>,
    ) -> Result<Response<pb::PeerRemoveResponse>, Status> {
        let actor = operator(&request);
        let remove = request.into_inner();
        let node_id = parse_node_id(&remove.node_id)?;
        let id = node_id.clone();
        let force = remove.force;
        self.change(
            actor,
            "peer.remove",
            node_id.to_string(),
            move |conn, ctx| Ok(((), peering::remove(conn, ctx, &id, force)?)),
        )
        .await?;
        self.node.events_appended();
        self.node.links.cut(&node_id);
        Ok(Response::new(pb::PeerRemoveResponse {
            node_id: node_id.to_string(),
        }))
    }

    async fn peer_ignore(
        &self,
        request: Request<pb::PeerRef>,
    ) -> Result<Response<pb::PendingPeer>, Status> {
        let actor = operator(&request);
        let node_id = parse_node_id(&request.get_ref().node_id)?;
        let id = node_id.clone();
        let pending = self
            .act(
                actor,
                "peer.ignore",
                node_id.to_string(),
                move |conn, _now_ms| Ok((peers::ignore_pending(conn, &id)?, String::new())),
            )
            .await?;
        Ok(Response::new(pb::PendingPeer {
            node_id: pending.node_id,
            remote_addr: pending.remote_addr,
            first_attempt_ms: pending.first_attempt_ms,
            last_attempt_ms: pending.last_attempt_ms,
            attempts: pending.attempts,
            ignored: pending.ignored,
            fingerprint: pending.fingerprint,
            endpoint: pending.endpoint,
        }))
    }

    async fn audit_list(
        &self,
        request: Request<pb::AuditListRequest>,
    ) -> Result<Response<pb::AuditListResponse>, Status> {
        let list = request.into_inner();
        let limit = if list.limit == 0 {
            1000
        } else {
            list.limit.min(100_000)
        };
        let entries = self
            .node
            .read(move |conn| audit::list(conn, list.since_ms, limit))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::AuditListResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::AuditEntry {
                    seq: e.seq,
                    at_ms: e.at_ms,
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    outcome: e.outcome,
                    detail: e.detail,
                    hash: e.hash,
                })
                .collect(),
        }))
    }

    async fn audit_verify(
        &self,
        request: Request<pb::AuditVerifyRequest>,
    ) -> Result<Response<pb::AuditVerifyResponse>, Status> {
        let actor = operator(&request);
        let verdict = self.node.read(audit::verify).await.map_err(status_of)?;
        let response = match verdict {
            audit::Verdict::Intact { entries } => pb::AuditVerifyResponse {
                ok: true,
                entries,
                first_broken_seq: 0,
                problem: String::new(),
            },
            audit::Verdict::Broken {
                entries,
                first_broken_seq,
                problem,
            } => pb::AuditVerifyResponse {
                ok: false,
                entries,
                first_broken_seq,
                problem,
            },
        };
        let outcome = if response.ok {
            Outcome::Ok
        } else {
            Outcome::Error
        };
        let detail = if response.ok {
            format!("{} entries intact", response.entries)
        } else {
            format!("entry {}: {}", response.first_broken_seq, response.problem)
        };
        // Appended after the check, so it never hides the break it reports.
        self.node
            .audit(actor, "audit.verify", String::new(), outcome, detail)
            .await;
        Ok(Response::new(response))
    }

    async fn peer_status(
        &self,
        request: Request<pb::PeerStatusRequest>,
    ) -> Result<Response<pb::PeerStatusResponse>, Status> {
        let only = request.into_inner().node_id;
        let list = self.node.read(peers::list).await.map_err(status_of)?;
        let mut out = Vec::new();
        for peer in list {
            if !only.is_empty() && peer.node_id.as_str() != only {
                continue;
            }
            let id = peer.node_id.clone();
            let link = self.node.links.status(&peer.node_id);
            let sent_seq = link.sent_seq;
            let (cursor, backlog, peer_cursor, quarantined) = self
                .node
                .read(move |conn| {
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
                .await
                .map_err(status_of)?;
            let (peer_log_id, my_cursor, applied_total, _) = cursor.unwrap_or_default();
            out.push(pb::PeerReplication {
                node_id: peer.node_id.to_string(),
                peer_log_id,
                my_cursor,
                peer_head: link.peer_head.max(my_cursor),
                backlog_for_peer: backlog,
                peer_cursor,
                events_per_second: link.events_per_second(self.node.now_ms()),
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

    async fn org_add(&self, request: Request<pb::Org>) -> Result<Response<pb::Org>, Status> {
        let actor = operator(&request);
        let org = request.into_inner();
        let target = org.org_id.clone();
        let org = self
            .change(actor, "org.add", target, move |conn, ctx| {
                Ok((members::org_add(conn, ctx, &org)?, String::new()))
            })
            .await?;
        Ok(Response::new(org))
    }

    async fn org_import(
        &self,
        request: Request<pb::OrgImportRequest>,
    ) -> Result<Response<pb::OrgListResponse>, Status> {
        let actor = operator(&request);
        let orgs = request.into_inner().orgs;
        let target = format!("{} organizations", orgs.len());
        let added = self
            .change(actor, "org.import", target, move |conn, ctx| {
                members::org_import(conn, ctx, &orgs)?;
                let codes: Vec<&str> = orgs.iter().map(|o| o.org_id.trim()).collect();
                let added = members::org_list(conn)?
                    .into_iter()
                    .filter(|o| codes.contains(&o.org_id.as_str()))
                    .collect();
                Ok((added, codes.join(", ")))
            })
            .await?;
        Ok(Response::new(pb::OrgListResponse { orgs: added }))
    }

    async fn org_list(
        &self,
        _request: Request<pb::OrgListRequest>,
    ) -> Result<Response<pb::OrgListResponse>, Status> {
        let orgs = self.read(|conn, _ctx| members::org_list(conn)).await?;
        Ok(Response::new(pb::OrgListResponse { orgs }))
    }

    async fn member_add(
        &self,
        request: Request<pb::MemberFields>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = operator(&request);
        let fields = request.into_inner();
        let member = self
            .change(actor, "member.add", String::new(), move |conn, ctx| {
                let member = members::member_add(conn, ctx, &fields)?;
                let detail = format!("member {}", member.member_id);
                Ok((member, detail))
            })
            .await?;
        Ok(Response::new(member))
    }

    async fn member_update(
        &self,
        request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = operator(&request);
        let update = request.into_inner();
        let fields = update.fields.unwrap_or_default();
        let changed = changed_fields(&fields);
        let member = self
            .change(
                actor,
                "member.update",
                update.member_id.clone(),
                move |conn, ctx| {
                    Ok((
                        members::member_update(conn, ctx, &update.member_id, &fields)?,
                        changed,
                    ))
                },
            )
            .await?;
        Ok(Response::new(member))
    }

    async fn member_show(
        &self,
        request: Request<pb::MemberRef>,
    ) -> Result<Response<pb::Member>, Status> {
        let id = request.into_inner().member_id;
        let member = self
            .read(move |conn, ctx| {
                let id = liaison_types::validate::member_id(&id)?;
                members::member_view(conn, ctx, &id)
            })
            .await?;
        Ok(Response::new(member))
    }

    async fn member_list(
        &self,
        request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let list = request.into_inner();
        let (members, total) = self
            .read(move |conn, ctx| members::member_list(conn, ctx, &list))
            .await?;
        Ok(Response::new(pb::MemberListResponse { members, total }))
    }

    async fn member_import(
        &self,
        request: Request<pb::MemberImportRequest>,
    ) -> Result<Response<pb::MemberImportResponse>, Status> {
        let actor = operator(&request);
        let import_request = request.into_inner();
        let me = self.node.node_id.clone();
        let now_ms = self.node.now_ms();
        let audit_actor = actor.clone();
        tracing::debug!(bytes = import_request.csv.len(), "member import running");
        let result = self
            .node
            .db(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let ctx = Ctx::new(&me, now_ms);
                let outcome = import::import(&tx, &ctx, &import_request.csv)?;
                if outcome.commit(import_request.skip_bad, import_request.dry_run) {
                    audit::append(
                        &tx,
                        now_ms,
                        &NewEntry {
                            actor: &audit_actor,
                            action: "member.import",
                            target: "",
                            outcome: Outcome::Ok,
                            detail: &format!(
                                "{} imported, {} bad rows skipped",
                                outcome.imported, outcome.skipped
                            ),
                        },
                    )?;
                    tx.commit()?;
                    Ok((outcome, true))
                } else {
                    tx.rollback()?;
                    Ok((outcome, false))
                }
            })
            .await;
        let (outcome, committed) = match result {
            Ok(pair) => pair,
            Err(error) => {
                let status = status_of(error);
                self.node
                    .audit(
                        actor,
                        "member.import",
                        String::new(),
                        Outcome::Refused,
                        status.message().to_owned(),
                    )
                    .await;
                return Err(status);
            }
        };
        if committed {
            self.node.events_appended();
        }
        Ok(Response::new(pb::MemberImportResponse {
            imported: if committed { outcome.imported } else { 0 },
            skipped: outcome.skipped,
            problems: outcome
                .problems
                .into_iter()
                .map(|(line, message)| pb::ImportProblem { line, message })
                .collect(),
        }))
    }

    async fn member_export(
        &self,
        request: Request<pb::MemberExportRequest>,
    ) -> Result<Response<pb::MemberExportResponse>, Status> {
        let actor = operator(&request);
        let (csv, count) = self.read(import::export).await?;
        // Exporting the roster is a disclosure of personal data: audited.
        self.node
            .audit(
                actor,
                "member.export",
                String::new(),
                Outcome::Ok,
                format!("{count} members"),
            )
            .await;
        Ok(Response::new(pb::MemberExportResponse {
            csv,
            members: count,
        }))
    }

    async fn member_disclosures(
        &self,
        request: Request<pb::MemberRef>,
    ) -> Result<Response<pb::DisclosureList>, Status> {
        let id = request.into_inner().member_id;
        let disclosures = self
            .read(move |conn, _ctx| members::disclosures(conn, &id))
            .await?;
        Ok(Response::new(pb::DisclosureList { disclosures }))
    }

    async fn host_section_set(
        &self,
        request: Request<pb::HostSectionRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let member = self
            .change(
                actor,
                "member.host_set",
                req.member_id.clone(),
                move |conn, ctx| Ok((members::host_section_set(conn, ctx, &req)?, String::new())),
            )
            .await?;
        Ok(Response::new(member))
    }

    async fn outflow_register(
        &self,
        request: Request<pb::OutflowRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let detail = format!("to {} {}", req.destination_place, req.destination_node);
        let member = self
            .change(
                actor,
                "outflow.register",
                req.member_id.clone(),
                move |conn, ctx| Ok((members::outflow_register(conn, ctx, &req)?, detail)),
            )
            .await?;
        Ok(Response::new(member))
    }

    async fn outflow_update(
        &self,
        request: Request<pb::OutflowUpdateRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        // Which fields changed (the new destination by its code).
        let fields: Vec<String> = [
            req.destination_place.as_ref().map(|p| format!("to {p}")),
            req.destination_node.as_ref().map(|n| format!("node {n}")),
            req.direction.as_ref().map(|_| "direction".to_owned()),
            req.departed_on.as_ref().map(|_| "departed on".to_owned()),
            req.expected_return
                .as_ref()
                .map(|_| "expected return".to_owned()),
            req.reason.as_ref().map(|_| "reason".to_owned()),
            req.fixed_location.map(|_| "fixed location".to_owned()),
            req.certificate_no
                .as_ref()
                .map(|_| "certificate".to_owned()),
            req.certificate_issuer
                .as_ref()
                .map(|_| "certificate issuer".to_owned()),
            req.certificate_issued_on
                .as_ref()
                .map(|_| "certificate issued on".to_owned()),
            req.card_no.as_ref().map(|_| "card".to_owned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let detail = fields.join(", ");
        let member = self
            .change(
                actor,
                "outflow.update",
                req.member_id.clone(),
                move |conn, ctx| Ok((members::outflow_update(conn, ctx, &req)?, detail)),
            )
            .await?;
        Ok(Response::new(member))
    }

    async fn outflow_return(
        &self,
        request: Request<pb::OutflowReturnRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let member = self
            .change(
                actor,
                "outflow.return",
                req.member_id.clone(),
                move |conn, ctx| Ok((members::outflow_return(conn, ctx, &req)?, String::new())),
            )
            .await?;
        Ok(Response::new(member))
    }

    async fn outflow_list(
        &self,
        request: Request<pb::OutflowListRequest>,
    ) -> Result<Response<pb::OutflowListResponse>, Status> {
        let req = request.into_inner();
        let outflows = self
            .read(move |conn, _ctx| members::outflow_list(conn, &req))
            .await?;
        Ok(Response::new(pb::OutflowListResponse { outflows }))
    }

    async fn contact_record(
        &self,
        request: Request<pb::ContactRequest>,
    ) -> Result<Response<pb::ContactView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let detail = format!("channel {}", req.channel);
        let view = self
            .change(
                actor,
                "contact.record",
                req.member_id.clone(),
                move |conn, ctx| Ok((members::contact_record(conn, ctx, &req)?, detail)),
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn contact_status(
        &self,
        request: Request<pb::ContactStatusRequest>,
    ) -> Result<Response<pb::ContactStatusView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        if req.set.trim().is_empty() {
            let view = self
                .read(move |conn, ctx| members::contact_status(conn, ctx, &req))
                .await?;
            return Ok(Response::new(view));
        }
        let detail = format!("set {} {}", req.set, req.reason);
        let view = self
            .change(
                actor,
                "contact.status",
                req.member_id.clone(),
                move |conn, ctx| Ok((members::contact_status(conn, ctx, &req)?, detail)),
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn activity_record(
        &self,
        request: Request<pb::ActivityRequest>,
    ) -> Result<Response<pb::ActivityView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let detail = format!("kind {}", req.kind);
        let view = self
            .change(
                actor,
                "activity.record",
                req.member_id.clone(),
                move |conn, ctx| Ok((members::activity_record(conn, ctx, &req)?, detail)),
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn activity_list(
        &self,
        request: Request<pb::ActivityListRequest>,
    ) -> Result<Response<pb::ActivityListResponse>, Status> {
        let req = request.into_inner();
        let activities = self
            .read(move |conn, _ctx| members::activity_list(conn, &req))
            .await?;
        Ok(Response::new(pb::ActivityListResponse { activities }))
    }

    async fn quarantine_list(
        &self,
        request: Request<pb::QuarantineListRequest>,
    ) -> Result<Response<pb::QuarantineListResponse>, Status> {
        let all = request.into_inner().include_resolved;
        let entries = self
            .read(move |conn, _ctx| liaison_core::quarantine::list(conn, all))
            .await?;
        Ok(Response::new(pb::QuarantineListResponse { entries }))
    }

    async fn quarantine_retry(
        &self,
        request: Request<pb::QuarantineRetryRequest>,
    ) -> Result<Response<pb::QuarantineEntry>, Status> {
        let actor = operator(&request);
        let id = request.into_inner().id;
        let entry = self
            .change(
                actor,
                "quarantine.retry",
                id.to_string(),
                move |conn, ctx| {
                    let entry = liaison_core::apply::quarantine_retry(conn, ctx, id)?;
                    let detail = format!("now {}", entry.state);
                    Ok((entry, detail))
                },
            )
            .await?;
        Ok(Response::new(entry))
    }

    async fn agreement_propose(
        &self,
        request: Request<pb::AgreementProposeRequest>,
    ) -> Result<Response<pb::AgreementView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let detail = format!(
            "with {} as {}",
            req.peer,
            if req.role.is_empty() {
                "outflow"
            } else {
                &req.role
            }
        );
        let view = self
            .change(
                actor,
                "agreement.propose",
                req.peer.clone(),
                move |conn, ctx| {
                    let view = agreements::propose(
                        conn,
                        ctx,
                        &req.peer,
                        &req.role,
                        req.terms.unwrap_or_default(),
                    )?;
                    Ok((view, detail))
                },
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn agreement_counter(
        &self,
        request: Request<pb::AgreementCounterRequest>,
    ) -> Result<Response<pb::AgreementView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let view = self
            .change(
                actor,
                "agreement.counter",
                req.agreement_id.clone(),
                move |conn, ctx| {
                    let view = agreements::counter(
                        conn,
                        ctx,
                        &req.agreement_id,
                        req.terms.unwrap_or_default(),
                    )?;
                    let detail = format!("version {}", view.version);
                    Ok((view, detail))
                },
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn agreement_accept(
        &self,
        request: Request<pb::AgreementRef>,
    ) -> Result<Response<pb::AgreementView>, Status> {
        let actor = operator(&request);
        let id = request.into_inner().agreement_id;
        let view = self
            .change(actor, "agreement.accept", id.clone(), move |conn, ctx| {
                let view = agreements::accept(conn, ctx, &id)?;
                let detail = format!("version {}", view.version);
                Ok((view, detail))
            })
            .await?;
        Ok(Response::new(view))
    }

    async fn agreement_reject(
        &self,
        request: Request<pb::AgreementEndRequest>,
    ) -> Result<Response<pb::AgreementView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let detail = req.reason.clone();
        let view = self
            .change(
                actor,
                "agreement.reject",
                req.agreement_id.clone(),
                move |conn, ctx| {
                    Ok((
                        agreements::end(conn, ctx, &req.agreement_id, &req.reason, true)?,
                        detail,
                    ))
                },
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn agreement_terminate(
        &self,
        request: Request<pb::AgreementEndRequest>,
    ) -> Result<Response<pb::AgreementView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let detail = req.reason.clone();
        let view = self
            .change(
                actor,
                "agreement.terminate",
                req.agreement_id.clone(),
                move |conn, ctx| {
                    Ok((
                        agreements::end(conn, ctx, &req.agreement_id, &req.reason, false)?,
                        detail,
                    ))
                },
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn agreement_list(
        &self,
        request: Request<pb::AgreementListRequest>,
    ) -> Result<Response<pb::AgreementListResponse>, Status> {
        let req = request.into_inner();
        let list = self
            .read(move |conn, ctx| agreements::list(conn, ctx, &req))
            .await?;
        Ok(Response::new(pb::AgreementListResponse {
            agreements: list,
        }))
    }

    async fn agreement_show(
        &self,
        request: Request<pb::AgreementRef>,
    ) -> Result<Response<pb::AgreementView>, Status> {
        let id = request.into_inner().agreement_id;
        let view = self
            .read(move |conn, ctx| agreements::view(conn, ctx, &id))
            .await?;
        Ok(Response::new(view))
    }

    async fn report_uncovered(
        &self,
        _request: Request<pb::ReportUncoveredRequest>,
    ) -> Result<Response<pb::ReportUncoveredResponse>, Status> {
        let report = self.read(agreements::uncovered).await?;
        Ok(Response::new(report))
    }

    async fn debug_clock(
        &self,
        request: Request<pb::DebugClockRequest>,
    ) -> Result<Response<pb::DebugClockResponse>, Status> {
        let actor = operator(&request);
        let offset_ms = request.into_inner().offset_ms;
        if !self.node.config.testing.allow_clock_override {
            let status = Status::failed_precondition(
                "this node's clock cannot be moved: only test deployments set [testing] allow_clock_override = true",
            );
            self.node
                .audit(
                    actor,
                    "debug.clock",
                    String::new(),
                    Outcome::Refused,
                    status.message().to_owned(),
                )
                .await;
            return Err(status);
        }
        self.node.clock.set_offset_ms(offset_ms);
        self.node
            .audit(
                actor,
                "debug.clock",
                String::new(),
                Outcome::Ok,
                format!("offset {offset_ms} ms"),
            )
            .await;
        crate::node::run_calendar(&self.node, true)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::DebugClockResponse {
            now_ms: self.node.now_ms(),
            offset_ms,
        }))
    }

    async fn transfer_start(
        &self,
        request: Request<pb::TransferStartRequest>,
    ) -> Result<Response<pb::TransferView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let rules = self.letter_rules();
        let view = self
            .change(
                actor,
                "transfer.start",
                req.member_id.clone(),
                move |conn, ctx| {
                    let view = transfers::start(
                        conn,
                        ctx,
                        &req.member_id,
                        &req.to,
                        req.valid_days,
                        &req.reason,
                        rules,
                    )?;
                    let detail = format!(
                        "transfer {} letter {} to {}",
                        view.transfer_id, view.letter_no, view.receiver
                    );
                    Ok((view, detail))
                },
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn transfer_list(
        &self,
        request: Request<pb::TransferListRequest>,
    ) -> Result<Response<pb::TransferListResponse>, Status> {
        let req = request.into_inner();
        let list = self
            .read(move |conn, ctx| transfers::list(conn, ctx, &req))
            .await?;
        Ok(Response::new(pb::TransferListResponse { transfers: list }))
    }

    async fn transfer_show(
        &self,
        request: Request<pb::TransferRef>,
    ) -> Result<Response<pb::TransferView>, Status> {
        let id = request.into_inner().transfer_id;
        let view = self
            .read(move |conn, ctx| transfers::view(conn, ctx, &id))
            .await?;
        Ok(Response::new(view))
    }

    async fn transfer_accept(
        &self,
        request: Request<pb::TransferAcceptRequest>,
    ) -> Result<Response<pb::TransferView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let detail = format!("into branch {}", req.branch);
        let view = self
            .change(
                actor,
                "transfer.accept",
                req.transfer_id.clone(),
                move |conn, ctx| {
                    Ok((
                        transfers::accept(conn, ctx, &req.transfer_id, &req.branch)?,
                        detail,
                    ))
                },
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn transfer_reject(
        &self,
        request: Request<pb::TransferRejectRequest>,
    ) -> Result<Response<pb::TransferView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let detail = format!("{}: {}", req.reason_code, req.reason);
        let view = self
            .change(
                actor,
                "transfer.reject",
                req.transfer_id.clone(),
                move |conn, ctx| {
                    Ok((
                        transfers::reject(
                            conn,
                            ctx,
                            &req.transfer_id,
                            &req.reason_code,
                            &req.reason,
                        )?,
                        detail,
                    ))
                },
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn transfer_cancel(
        &self,
        request: Request<pb::TransferRef>,
    ) -> Result<Response<pb::TransferView>, Status> {
        let actor = operator(&request);
        let id = request.into_inner().transfer_id;
        let view = self
            .change(actor, "transfer.cancel", id.clone(), move |conn, ctx| {
                Ok((transfers::cancel(conn, ctx, &id)?, String::new()))
            })
            .await?;
        Ok(Response::new(view))
    }

    async fn transfer_extend(
        &self,
        request: Request<pb::TransferExtendRequest>,
    ) -> Result<Response<pb::TransferView>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let rules = self.letter_rules();
        let detail = format!("{} days", req.days);
        let view = self
            .change(
                actor,
                "transfer.extend",
                req.transfer_id.clone(),
                move |conn, ctx| {
                    Ok((
                        transfers::extend(conn, ctx, &req.transfer_id, req.days, rules)?,
                        detail,
                    ))
                },
            )
            .await?;
        Ok(Response::new(view))
    }

    async fn transfer_reissue(
        &self,
        request: Request<pb::TransferRef>,
    ) -> Result<Response<pb::TransferView>, Status> {
        let actor = operator(&request);
        let id = request.into_inner().transfer_id;
        let rules = self.letter_rules();
        let view = self
            .change(actor, "transfer.reissue", id.clone(), move |conn, ctx| {
                let view = transfers::reissue(conn, ctx, &id, rules)?;
                let detail = format!(
                    "re-issued as {} letter {}",
                    view.transfer_id, view.letter_no
                );
                Ok((view, detail))
            })
            .await?;
        Ok(Response::new(view))
    }

    async fn transfer_out_paper(
        &self,
        request: Request<pb::TransferPaperRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let detail = format!("to place {} letter {}", req.to_place, req.letter_no);
        let member = self
            .change(
                actor,
                "transfer.paper",
                req.member_id.clone(),
                move |conn, ctx| {
                    Ok((
                        transfers::out_on_paper(
                            conn,
                            ctx,
                            &req.member_id,
                            &req.to_place,
                            &req.letter_no,
                            &req.reason,
                        )?,
                        detail,
                    ))
                },
            )
            .await?;
        Ok(Response::new(member))
    }

    async fn peer_policy(
        &self,
        request: Request<pb::PeerPolicyRequest>,
    ) -> Result<Response<pb::Peer>, Status> {
        let actor = operator(&request);
        let req = request.into_inner();
        let node_id = parse_node_id(&req.node_id)?;
        let id = node_id.clone();
        let detail = format!("auto-accept into `{}`", req.auto_accept_branch);
        self.act(
            actor,
            "peer.policy",
            node_id.to_string(),
            move |conn, now_ms| {
                Ok((
                    peers::set_auto_accept(conn, &id, &req.auto_accept_branch, now_ms)?,
                    detail,
                ))
            },
        )
        .await?;
        Ok(Response::new(self.peer(node_id).await?))
    }
}

/// The names of the fields an update sets (never their values: the audit
/// log holds no personal data).
fn changed_fields(f: &pb::MemberFields) -> String {
    let fields = [
        ("name", f.name.is_some()),
        ("gender", f.gender.is_some()),
        ("birth_date", f.birth_date.is_some()),
        ("ethnicity", f.ethnicity.is_some()),
        ("native_place", f.native_place.is_some()),
        ("national_id", f.national_id.is_some()),
        ("education", f.education.is_some()),
        ("occupation", f.occupation.is_some()),
        ("origin", f.origin.is_some()),
        ("party_status", f.party_status.is_some()),
        ("joined_on", f.joined_on.is_some()),
        ("full_member_on", f.full_member_on.is_some()),
        ("home_branch", f.home_branch.is_some()),
        ("phone", f.phone.is_some()),
        ("home_address", f.home_address.is_some()),
        ("membership_state", f.membership_state.is_some()),
    ];
    let set: Vec<&str> = fields
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect();
    format!("fields: {}", set.join(","))
}
