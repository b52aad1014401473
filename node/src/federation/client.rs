//! The pull side: one task per active peer that connects over mutual TLS,
//! says `Hello`, and follows the peer's change log, reconnecting with capped
//! exponential backoff and jitter, reset as soon as the peer answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use liaison_proto::v1::{HelloRequest, HoldingsRequest, PullBatch, PullRequest};
use liaison_proto::{PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
use liaison_rpc::v1::federation_client::FederationClient;
use rand::Rng;
use rustls_pki_types::ServerName;
use tokio_util::task::TaskTracker;
use tonic::codegen::http;

use super::links::{ClientHandle, RemoteInfo};
use super::trust::{Open, Side};
use crate::node::Node;
use crate::tls::PeerCertificate;
use liaison_core::apply::apply_batch;
use liaison_core::outcome::{ApplyReport, BatchError};
use liaison_core::store::audit::{Actor, Outcome};
use liaison_core::store::peers::{self, PeerRecord, PeerState};
use liaison_core::{epoch, log, reconcile};
use liaison_types::identity::NodeId;

/// First reconnect delay; doubles up to `limits.retry_delay_ms_max`.
const RETRY_DELAY_MS_MIN: u64 = 250;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    #[error("endpoint `{0}` is not of the form https://HOST:PORT")]
    Endpoint(String),
    #[error("cannot connect to {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
}

/// A gRPC connection to one peer: a single HTTP/2 connection over mutual
/// TLS and nothing else. tonic's `Channel` would add a request queue
/// (`tower::buffer`, about 9 KiB and a task per link) and a reconnect
/// layer; the pull task reconnects by itself and sends one request at a
/// time, so each idle link keeps only the connection's own buffers
/// (docs/BENCHMARKS.md, P16). The connection closes when the last clone is
/// dropped.
#[derive(Debug, Clone)]
pub struct PeerChannel {
    send: hyper::client::conn::http2::SendRequest<tonic::body::Body>,
    /// Requests name the peer as tonic's own channel would: `http://` and
    /// the endpoint's authority.
    authority: http::uri::Authority,
    /// Why the connection ended, once it has (set by its task): a call on
    /// an ended connection fails with this, not with hyper's bare "channel
    /// closed" (a peer that refuses our certificate says so only after the
    /// TLS handshake, by an alert on the connection).
    ended: tokio::sync::watch::Receiver<Option<String>>,
    /// The certificate the peer's handshake verified, and the name it was
    /// reached by, for a reload to judge again.
    peer: Option<Arc<PeerCertificate>>,
}

impl PeerChannel {
    /// The certificate the peer presented, as verified.
    pub fn peer_certificate(&self) -> Option<&Arc<PeerCertificate>> {
        self.peer.as_ref()
    }
}

/// The gRPC client of a peer's `Federation` service.
pub type PeerClient = FederationClient<PeerChannel>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A call on a connection that has ended.
#[derive(Debug, thiserror::Error)]
#[error("connection to {authority} closed: {reason}")]
pub struct ConnectionClosed {
    authority: http::uri::Authority,
    reason: String,
}

/// How long a failed call waits for its connection's task to say why the
/// connection ended (it is already ending).
const ENDED_REASON_WAIT: Duration = Duration::from_secs(1);

impl tower::Service<http::Request<tonic::body::Body>> for PeerChannel {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    /// Always ready: the call itself waits for the connection, so that a
    /// connection that ended is reported with its reason.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let mut uri = std::mem::take(request.uri_mut()).into_parts();
        uri.scheme = Some(http::uri::Scheme::HTTP);
        uri.authority = Some(self.authority.clone());
        match http::Uri::from_parts(uri) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(error) => return Box::pin(std::future::ready(Err(error.into()))),
        }
        let mut send = self.send.clone();
        let mut ended = self.ended.clone();
        let authority = self.authority.clone();
        Box::pin(async move {
            let result = match send.ready().await {
                Ok(()) => send.send_request(request).await,
                Err(error) => Err(error),
            };
            match result {
                Ok(response) => Ok(response),
                Err(error) if error.is_closed() || error.is_canceled() => {
                    let said =
                        tokio::time::timeout(ENDED_REASON_WAIT, ended.wait_for(Option::is_some))
                            .await
                            .ok()
                            .and_then(|r| r.ok().and_then(|reason| reason.clone()));
                    let reason = said.unwrap_or_else(|| error_chain(&error));
                    Err(ConnectionClosed { authority, reason }.into())
                }
                Err(error) => Err(error.into()),
            }
        })
    }
}

/// Spawns hyper's tasks (a connection's, its streams') on a tracker, so
/// they are waited for like the node's own.
#[derive(Debug, Clone)]
struct TrackedExecutor(TaskTracker);

impl<F> hyper::rt::Executor<F> for TrackedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}

/// Opens a gRPC channel to `endpoint` (`https://host:port`) over TLS with
/// `tls`, which decides which certificate we show and which we accept.
/// The connection's tasks are spawned on `tasks`.
pub async fn connect(
    endpoint: &str,
    tls: Arc<rustls::ClientConfig>,
    tasks: &TaskTracker,
) -> Result<PeerChannel, ConnectError> {
    let bad = || ConnectError::Endpoint(endpoint.to_owned());
    let authority = endpoint.strip_prefix("https://").ok_or_else(bad)?;
    let (host, _port) = authority.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let server_name = ServerName::try_from(host).map_err(|_| bad())?;
    let uri_authority = http::uri::Authority::try_from(authority).map_err(|_| bad())?;
    let failed = |message: String| ConnectError::Connect {
        endpoint: endpoint.to_owned(),
        message,
    };
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| failed(error_chain(&e)))?;
        let _ = tcp.set_nodelay(true);
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(server_name.clone(), tcp)
            .await
            .map_err(|e| failed(error_chain(&e)))?;
        let verified =
            PeerCertificate::of(stream.get_ref().1.peer_certificates(), Some(server_name));
        hyper::client::conn::http2::Builder::new(TrackedExecutor(tasks.clone()))
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .handshake(TokioIo::new(stream))
            .await
            .map(|(send, connection)| (send, connection, verified))
            .map_err(|e| failed(error_chain(&e)))
    };
    let (send, connection, verified) = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| failed(format!("no answer within {CONNECT_TIMEOUT:?}")))??;
    let (said, ended) = tokio::sync::watch::channel(None);
    let peer = endpoint.to_owned();
    tasks.spawn(async move {
        let reason = match connection.await {
            Ok(()) => "closed".to_owned(),
            Err(error) => error_chain(&error),
        };
        tracing::debug!(%peer, %reason, "connection to peer ended");
        let _ = said.send(Some(reason));
    });
    Ok(PeerChannel {
        send,
        authority: uri_authority,
        ended,
        peer: verified.map(Arc::new),
    })
}

/// An error and its sources on one line, without repeats.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// A refused or failed gRPC call, as an operator should read it.
pub fn status_text(status: &tonic::Status) -> String {
    use std::error::Error;
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(source) = status.source() {
        let chain = error_chain(source);
        if !text.contains(&chain) {
            text.push_str(": ");
            text.push_str(&chain);
        }
    }
    text
}

/// Starts a pull task for every active peer.
pub async fn supervise(node: Arc<Node>) {
    match node.read(peers::list).await {
        Ok(list) => {
            for peer in list {
                if peer.state == PeerState::Active {
                    ensure_pull_task(&node, &peer.node_id);
                }
            }
        }
        Err(error) => tracing::error!(%error, "cannot list peers"),
    }
}

/// Spawns the pull task of `peer` unless one already runs. It stops when
/// the peer is paused or removed, or at the node's `halt`: until then a
/// stopping node still applies what its peers send.
pub fn ensure_pull_task(node: &Arc<Node>, peer: &NodeId) {
    let handle = ClientHandle {
        stop: node.halt.child_token(),
        retry: Arc::new(tokio::sync::Notify::new()),
    };
    if node.links.set_client(peer, handle.clone()) {
        node.tasks
            .spawn(pull_task(node.clone(), peer.clone(), handle));
    }
}

/// What we tell a node about where to reach us: the configured
/// `federation.advertise`, else the bound address if it is a specific one.
fn advertised_endpoint(node: &Node) -> String {
    match &node.config.federation_advertise {
        Some(endpoint) => endpoint.clone(),
        None if !node.federation_addr.ip().is_unspecified() => {
            format!("https://{}", node.federation_addr)
        }
        None => String::new(),
    }
}

/// Why a batch from a peer was not applied: the core's answer (a decision
/// that stops the stream, a storage failure), or the node's condition.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Node(#[from] crate::error::NodeError),
}

/// Applies one batch from `origin` on a blocking thread, then wakes our
/// own followers (applying may append events, e.g. a status re-share).
async fn apply(
    node: &Arc<Node>,
    origin: &NodeId,
    batch: PullBatch,
) -> Result<ApplyReport, ApplyError> {
    let me = node.me();
    let peer = origin.clone();
    let now_ms = node.now_ms();
    let started = std::time::Instant::now();
    let report = node
        .db(move |conn| {
            Ok(apply_batch(
                conn,
                &me.ctx(now_ms),
                &peer,
                &batch.log_id,
                &batch.events,
            ))
        })
        .await??;
    node.metrics.batch_applied(
        origin,
        report.applied,
        report.quarantined,
        started.elapsed().as_secs_f64(),
    );
    if report.applied > 0 || report.quarantined > 0 {
        node.events_appended();
    }
    tracing::debug!(peer = %origin, applied = report.applied, skipped = report.skipped, quarantined = report.quarantined, cursor = report.cursor, "batch applied");
    Ok(report)
}

struct SessionError {
    /// The peer answered `Hello` before the failure: reset the backoff.
    answered: bool,
    message: String,
    /// Audited already (a reload cut the connection and said so).
    audited: bool,
}

impl SessionError {
    /// A failure the pull task audits, made from its message.
    fn failed(answered: bool) -> impl Fn(String) -> SessionError {
        move |message| SessionError {
            answered,
            message,
            audited: false,
        }
    }
}

async fn pull_task(node: Arc<Node>, peer_id: NodeId, handle: ClientHandle) {
    let delay_ms_max = node
        .config
        .limits
        .retry_delay_ms_max
        .max(RETRY_DELAY_MS_MIN);
    let mut delay_ms = RETRY_DELAY_MS_MIN;
    let mut last_audited: Option<String> = None;
    loop {
        if handle.stop.is_cancelled() {
            break;
        }
        let lookup = peer_id.clone();
        let peer = match node.read(move |conn| peers::get(conn, &lookup)).await {
            Ok(Some(peer)) if peer.state == PeerState::Active => peer,
            Ok(_) => break,
            Err(error) => {
                tracing::error!(%error, peer = %peer_id, "cannot read peer");
                break;
            }
        };
        let outcome = session(&node, &peer, &handle).await;
        node.links.update(&peer_id, |s| s.outbound_up = false);
        let error = match outcome {
            Ok(()) => break,
            Err(error) => error,
        };
        node.metrics.reconnect(&peer_id);
        if error.answered {
            delay_ms = RETRY_DELAY_MS_MIN;
        }
        // Full jitter over the upper half, so peers that lost each other at
        // the same moment do not reconnect in lockstep.
        let wait_ms = rand::rng().random_range(delay_ms / 2..=delay_ms);
        let next_attempt_ms = node.now_ms() + wait_ms as i64;
        tracing::info!(peer = %peer_id, error = %error.message, retry_in_ms = wait_ms, "peer link down");
        node.links.update(&peer_id, |s| {
            s.last_error = Some(error.message.clone());
            s.next_attempt_ms = Some(next_attempt_ms);
        });
        // One audit entry per distinct failure, not one per retry.
        if error.audited {
            last_audited = Some(error.message);
        } else if last_audited.as_deref() != Some(error.message.as_str()) {
            node.audit(
                Actor::Node,
                "federation.pull",
                peer_id.to_string(),
                Outcome::Error,
                error.message.clone(),
            )
            .await;
            last_audited = Some(error.message);
        }
        tokio::select! {
            _ = handle.stop.cancelled() => break,
            _ = handle.retry.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
        }
        node.links.update(&peer_id, |s| s.next_attempt_ms = None);
        delay_ms = (delay_ms * 2).min(delay_ms_max);
    }
    node.links.update(&peer_id, |s| {
        s.outbound_up = false;
        s.next_attempt_ms = None;
    });
}

/// One connection's life: connect, Hello, follow. Returns `Ok` only when
/// told to stop.
async fn session(
    node: &Arc<Node>,
    peer: &PeerRecord,
    handle: &ClientHandle,
) -> Result<(), SessionError> {
    let fail = SessionError::failed;
    let credentials = node.credentials();
    let tls = credentials
        .client(&peer.node_id, peer.fingerprint.as_deref())
        .map_err(|e| fail(false)(e.to_string()))?;
    let channel = tokio::select! {
        _ = handle.stop.cancelled() => return Ok(()),
        channel = Box::pin(connect(&peer.endpoint, tls, &node.tasks)) => channel.map_err(|e| fail(false)(e.to_string()))?,
    };
    // Judged again at every reload while it is open.
    let certificate = channel
        .peer_certificate()
        .cloned()
        .ok_or_else(|| fail(false)(format!("{} presented no certificate", peer.node_id)))?;
    let cut = tokio_util::sync::CancellationToken::new();
    let open = Open {
        peer: peer.node_id.clone(),
        side: Side::Outbound,
        certificate,
        cut: cut.clone(),
    };
    let _registration = node
        .trust
        .register(open, &credentials)
        .map_err(|reason| fail(false)(format!("{}'s {reason}", peer.node_id)))?;
    tokio::select! {
        followed = Box::pin(follow(node, peer, handle, channel)) => followed,
        _ = cut.cancelled() => Err(SessionError {
            answered: true,
            message: format!(
                "connection to {} cut at a reload: its certificate is no longer trusted",
                peer.node_id
            ),
            audited: true,
        }),
    }
}

/// Hello, reconcile if need be, and follow the peer's log on `channel`.
/// Returns `Ok` only when told to stop.
async fn follow(
    node: &Arc<Node>,
    peer: &PeerRecord,
    handle: &ClientHandle,
    channel: PeerChannel,
) -> Result<(), SessionError> {
    let fail = SessionError::failed;
    let limits = &node.config.limits;
    let mut client = FederationClient::new(channel)
        .max_decoding_message_size(limits.message_bytes_max)
        .max_encoding_message_size(limits.message_bytes_max);
    let log_id = node.log_id();
    let audit_head = node
        .read(liaison_core::store::audit::head)
        .await
        .map_err(|e| fail(false)(e.to_string()))?;
    let hello = Box::pin(client.hello(HelloRequest {
        display_name: node.config.display_name.clone(),
        protocol_version: PROTOCOL_VERSION,
        log_id: log_id.clone(),
        software_version: crate::SOFTWARE_VERSION.to_owned(),
        endpoint: advertised_endpoint(node),
        audit_head: Some(liaison_proto::v1::AuditHead {
            entries: audit_head.entries,
            hash: audit_head.hash,
        }),
    }))
    .await
    .map_err(|s| {
        fail(false)(format!(
            "Hello refused by {}: {}",
            peer.node_id,
            status_text(&s)
        ))
    })?
    .into_inner();
    if hello.protocol_version < PROTOCOL_VERSION_MIN {
        return Err(fail(true)(format!(
            "peer {} speaks protocol version {}, older than the oldest this node accepts ({PROTOCOL_VERSION_MIN}; this node speaks {PROTOCOL_VERSION}): upgrade liaison-node on {}",
            peer.node_id, hello.protocol_version, peer.node_id
        )));
    }
    let now_ms = node.now_ms();
    node.links.update(&peer.node_id, |s| {
        s.remote = Some(RemoteInfo {
            display_name: hello.display_name.clone(),
            protocol_version: hello.protocol_version,
            software_version: hello.software_version.clone(),
            log_id: hello.log_id.clone(),
        });
        s.last_contact_ms = Some(now_ms);
        s.last_error = None;
    });
    let contact_id = peer.node_id.clone();
    // The peer's witness of our audit head, for `audit verify`.
    let witnessed = hello.witnessed_of_you.clone();
    let _ = node
        .db(move |conn| {
            peers::touch_contact(conn, &contact_id, now_ms)?;
            if let Some(head) = witnessed {
                liaison_core::store::audit::record_anchor(
                    conn,
                    contact_id.as_str(),
                    &log_id,
                    &liaison_core::store::audit::Head {
                        entries: head.entries,
                        hash: head.hash,
                    },
                    now_ms,
                )?;
            }
            Ok(())
        })
        .await;

    // docs/restore.md: a restored node adopts what the peer holds from it before
    // it applies the peer's log.
    // A failure here is ours or the answer's, not the link's: back off
    // rather than ask again at once.
    Box::pin(reconcile_with(
        node,
        peer,
        &mut client,
        hello.log_ids_held_from_you.clone(),
        hello.log_id.clone(),
    ))
    .await
    .map_err(fail(false))?;

    let peer_log_id = hello.log_id.clone();
    let cursor_peer = peer.node_id.clone();
    let since = node
        .read(move |conn| log::cursor(conn, &cursor_peer, &peer_log_id))
        .await
        .map_err(|e| fail(true)(e.to_string()))?;
    let mut stream = Box::pin(client.pull(PullRequest {
        since,
        follow: true,
        log_id: hello.log_id.clone(),
        batch_max: limits.batch_events_max,
    }))
    .await
    .map_err(|s| {
        fail(true)(format!(
            "Pull refused by {}: {}",
            peer.node_id,
            status_text(&s)
        ))
    })?
    .into_inner();
    node.links.update(&peer.node_id, |s| s.outbound_up = true);
    node.trim_wake.notify_one();
    tracing::info!(peer = %peer.node_id, remote = %hello.display_name, "following peer");
    // The server sends at least one batch per heartbeat; silence for three
    // heartbeats means the link is dead even if TCP has not noticed.
    let silence_max = Duration::from_millis(limits.heartbeat_ms.max(100) * 3);
    let mut last_audit_head = None;
    loop {
        let message = tokio::select! {
            _ = handle.stop.cancelled() => return Ok(()),
            message = tokio::time::timeout(silence_max, stream.message()) => message,
        };
        match message {
            Err(_) => {
                return Err(fail(true)(format!(
                    "no word from {} for {silence_max:?}",
                    peer.node_id
                )))
            }
            Ok(Err(status)) => {
                return Err(fail(true)(format!(
                    "stream from {} ended: {}",
                    peer.node_id,
                    status_text(&status)
                )))
            }
            Ok(Ok(None)) => return Err(fail(true)(format!("stream from {} ended", peer.node_id))),
            Ok(Ok(Some(batch))) => {
                let head_seq = batch.head_seq;
                // The peer's audit head: kept when it moved (a write only then).
                if batch.audit_head.is_some() && batch.audit_head != last_audit_head {
                    super::service::witness_audit_head(
                        node,
                        &peer.node_id,
                        &batch.log_id,
                        batch.audit_head.as_ref(),
                    )
                    .await
                    .map_err(|e| fail(true)(e.to_string()))?;
                    last_audit_head = batch.audit_head.clone();
                }
                let applied = if batch.events.is_empty() {
                    0
                } else {
                    let report =
                        Box::pin(apply(node, &peer.node_id, batch))
                            .await
                            .map_err(|e| {
                                fail(true)(format!(
                                    "cannot apply a batch from {}: {e}",
                                    peer.node_id
                                ))
                            })?;
                    report.applied + report.quarantined
                };
                let now_ms = node.now_ms();
                node.links
                    .update(&peer.node_id, |s| s.record_batch(now_ms, applied, head_seq));
            }
        }
    }
}

/// Upper bound on the batches of one peer's holdings answer, each at most
/// `reconcile::HOLDINGS_BATCH_RECORDS` records (2 million records in all,
/// far beyond one region's roster): a peer that sends more is not believed,
/// and cannot make this node hold an unbounded answer in memory.
const HOLDINGS_BATCHES_MAX: usize = 10_000;
/// Upper bound on the encoded bytes of one peer's whole holdings answer.
const HOLDINGS_BYTES_MAX: usize = 1 << 30;

/// Detects a new database under a known node id from what the peer said
/// at `Hello`, and, while this node reconciles and has not adopted this
/// peer yet, asks for its holdings and adopts them; a node restored once
/// takes them again when the peer has a new log id since (docs/restore.md).
async fn reconcile_with(
    node: &Arc<Node>,
    peer: &PeerRecord,
    client: &mut PeerClient,
    log_ids_held: Vec<String>,
    peer_log_id: String,
) -> Result<(), String> {
    let me = node.me();
    let now_ms = node.now_ms();
    let peer_id = peer.node_id.clone();
    let noted = node.clone();
    let asked_log_id = peer_log_id.clone();
    let (started, needs, retake) = node
        .db(move |conn| {
            let ctx = me.ctx(now_ms);
            let started = reconcile::note_log_ids_held(conn, &ctx, &peer_id, &log_ids_held)?;
            if let Some(start) = &started {
                // At once, so no `Hello` or `Pull` answers the old one.
                noted.set_log_id(start.log_id.clone());
            }
            let needs = reconcile::needs_holdings(conn, &peer_id)?;
            let retake = !needs && reconcile::awaits_retake(conn, peer_id.as_str(), &asked_log_id)?;
            Ok((started, needs, retake))
        })
        .await
        .map_err(|e| e.to_string())?;
    if let Some(start) = started {
        tracing::warn!(
            peer = %peer.node_id,
            log_id = %start.log_id,
            previous = %start.previous_log_id,
            lost = %reconcile::lost_period(node.config.time_zone, start.backup_at_ms, start.restored_at_ms),
            "a peer knows this node id under a log this database never had: reconciling"
        );
        node.links.end_all_follows();
    }
    if !needs && !retake {
        return Ok(());
    }
    let log_id = node.log_id();
    let branch = node.read(epoch::branch).await.map_err(|e| e.to_string())?;
    let mut stream = client
        .holdings(HoldingsRequest {
            log_id,
            retake,
            branch,
        })
        .await
        .map_err(|s| format!("Holdings refused by {}: {}", peer.node_id, status_text(&s)))?
        .into_inner();
    let mut batches = Vec::new();
    let mut bytes = 0usize;
    loop {
        let message = tokio::time::timeout(CONNECT_TIMEOUT * 3, stream.message())
            .await
            .map_err(|_| {
                format!(
                    "no holdings from {} for {:?}",
                    peer.node_id,
                    CONNECT_TIMEOUT * 3
                )
            })?;
        let message = match message {
            Ok(message) => message,
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                // Restored from a backup of a branch this node left: the
                // operator must restore again; `reconcile status` says so.
                let me = node.me();
                let now_ms = node.now_ms();
                let peer_id = peer.node_id.clone();
                let refusal = status.message().to_owned();
                node.db(move |conn| {
                    reconcile::note_holdings_refused(conn, &me.ctx(now_ms), &peer_id, &refusal)
                })
                .await
                .map_err(|e| e.to_string())?;
                return Err(format!(
                    "holdings refused by {}: {}",
                    peer.node_id,
                    status_text(&status)
                ));
            }
            Err(status) => {
                return Err(format!(
                    "holdings from {} ended: {}",
                    peer.node_id,
                    status_text(&status)
                ))
            }
        };
        let Some(batch) = message else {
            return Err(format!(
                "holdings from {} ended before the last batch",
                peer.node_id
            ));
        };
        let last = batch.last;
        bytes += prost::Message::encoded_len(&batch);
        batches.push(batch);
        if last {
            break;
        }
        if batches.len() >= HOLDINGS_BATCHES_MAX || bytes > HOLDINGS_BYTES_MAX {
            return Err(format!(
                "holdings from {} exceed {HOLDINGS_BATCHES_MAX} batches or {HOLDINGS_BYTES_MAX} bytes: not adopted",
                peer.node_id
            ));
        }
    }
    let me = node.me();
    let now_ms = node.now_ms();
    let peer_id = peer.node_id.clone();
    let report = node
        .db(move |conn| {
            let ctx = me.ctx(now_ms);
            if retake {
                reconcile::retake(conn, &ctx, &peer_id, &peer_log_id, &batches)
            } else {
                reconcile::adopt(conn, &ctx, &peer_id, &batches)
            }
        })
        .await
        .map_err(|e| format!("cannot adopt the holdings of {}: {e}", peer.node_id))?;
    node.events_appended();
    tracing::info!(peer = %peer.node_id, summary = %report.summary(), finished = report.finished, retake, "adopted peer's holdings");
    Ok(())
}
