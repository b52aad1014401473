//! The federation port: mutual TLS, the `Federation` gRPC service, the
//! standard health and reflection services, and the pull client.
//!
//! We accept TLS ourselves (tokio-rustls) rather than through tonic, so that
//! a refused handshake is seen, audited and rate-limited here, and so each
//! connection carries the authenticated node id and a switch that cuts it.
//! A request whose body the service refuses before a handler sees it
//! (malformed, oversized) is answered and audited in `refusals.rs`.
//!
//! A connection counts in one of two pools: `handshakes.rs` until its TLS
//! handshake ends (capped per source address, its oldest dropped for a
//! newer one when full, each handshake within a deadline), then among the
//! verified connections (`limits.connections_max`), which no flood of
//! handshakes can take.
//!
//! When the node is asked to stop ([`Node::shutdown`]) the port takes no
//! new connections or calls (handshakes under way are dropped, open
//! connections are told to go away); the streams already open go on until
//! [`Node::halt`], so peers get what the node's last changes appended.

pub mod client;
mod handshakes;
mod limiter;
pub mod links;
mod refusals;
mod service;
pub mod trust;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::WaitForCancellationFutureOwned;
use tonic::transport::server::Connected;

use crate::node::Node;
use handshakes::{Handshakes, Place};
use liaison_core::store::audit::{Actor, Outcome};
use liaison_types::identity::{self, NodeId};
pub use limiter::RefusalLimiter;
use refusals::Refusals;
pub use service::FederationService;

/// How often the health service looks whether the node reconciles.
const HEALTH_POLL: Duration = Duration::from_secs(1);

/// Keeps the standard health service true: `SERVING` while the node works
/// normally, `NOT_SERVING` while it reconciles after a restore (it does not
/// act as an owner then, and serves its log to a peer only once adopted)
/// and from the moment it is asked to stop. The overall status (service
/// `""`) and `liaison.v1.Federation` say the same.
async fn report_health(node: Arc<Node>, reporter: tonic_health::server::HealthReporter) {
    use tonic_health::ServingStatus;
    const SERVICES: [&str; 2] = ["", "liaison.v1.Federation"];
    let mut shown = None;
    loop {
        let status = if node.shutdown.is_cancelled() {
            ServingStatus::NotServing
        } else {
            match node.read(liaison_core::epoch::is_reconciling).await {
                Ok(false) => ServingStatus::Serving,
                Ok(true) => ServingStatus::NotServing,
                Err(error) => {
                    tracing::error!(%error, "health: cannot read whether the node reconciles");
                    ServingStatus::NotServing
                }
            }
        };
        if shown != Some(status) {
            for service in SERVICES {
                reporter.set_service_status(service, status).await;
            }
            shown = Some(status);
        }
        if node.shutdown.is_cancelled() {
            return;
        }
        tokio::select! {
            _ = node.shutdown.cancelled() => {}
            _ = tokio::time::sleep(HEALTH_POLL) => {}
        }
    }
}

/// What the TLS layer established about a connection, visible to every
/// request on it through its extensions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote_addr: SocketAddr,
    /// The node id the client's certificate names (never a message field).
    pub node_id: NodeId,
    pub fingerprint: String,
    /// Cancelled when the connection is cut (the peer paused or removed,
    /// or its certificate refused at a reload): its streams end with it.
    pub cut: tokio_util::sync::CancellationToken,
}

/// A server-side TLS connection that fails every read and write once its
/// token is cancelled, so pausing or removing a peer, or a reload that
/// refuses its certificate, cuts it at once.
pub struct PeerConnection {
    io: TlsStream<TcpStream>,
    info: ConnInfo,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
    /// Its place among the connections a reload judges again.
    _open: trust::Registration,
}

impl PeerConnection {
    fn check_cut(&mut self, cx: &mut Context<'_>) -> Result<(), std::io::Error> {
        match self.cut.as_mut().poll(cx) {
            Poll::Ready(()) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "connection cut: the peer was paused or removed, or its certificate is no longer trusted",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl Connected for PeerConnection {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for PeerConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.check_cut(cx)?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.check_cut(cx)?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.check_cut(cx)?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// How long the federation connections have, after [`Node::halt`] ended
/// their streams, to close before the node stops without them.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Serves the federation port until the node is asked to stop, and its
/// open streams until [`Node::halt`].
pub async fn serve(node: Arc<Node>, listener: TcpListener) {
    let limits = node.config.limits.clone();
    // Two pools: connections in their handshake, which anyone can open,
    // and connections whose certificate was verified, which a flood of the
    // first kind therefore never displaces.
    let handshakes = Handshakes::new(limits.handshakes_max, limits.handshakes_per_address_max);
    let verified = Arc::new(tokio::sync::Semaphore::new(limits.connections_max));
    let limiter = Arc::new(RefusalLimiter::new(limits.refusals_logged_per_minute));
    let (conn_tx, conn_rx) =
        tokio::sync::mpsc::channel::<Result<PeerConnection, std::io::Error>>(64);

    let gate = Arc::new(Gate {
        node: node.clone(),
        limiter: limiter.clone(),
        verified,
        conn_tx,
    });
    let accept_node = node.clone();
    let accept_loop = async move {
        let node = accept_node;
        let mut accept_delay_ms = 5u64;
        loop {
            let accepted = tokio::select! {
                _ = node.shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, remote_addr) = match accepted {
                Ok(pair) => {
                    accept_delay_ms = 5;
                    pair
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off, never spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(accept_delay_ms)).await;
                    accept_delay_ms = (accept_delay_ms * 2).min(1000);
                    continue;
                }
            };
            // Every connection gets a place, displacing an older one if it
            // must; the accept loop itself never waits on a refusal.
            let place = handshakes.admit(remote_addr.ip());
            let _ = tcp.set_nodelay(true);
            node.tasks
                .clone()
                .spawn(handshake(gate.clone(), tcp, remote_addr, place));
        }
    };
    node.tasks.spawn(accept_loop);

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    node.tasks
        .spawn(report_health(node.clone(), health_reporter));
    // Reflection describes only what this port serves (the admin service
    // has its own socket), to clients of either reflection version.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(liaison_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("liaison.v1.Federation")
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection")
    };
    let reflection = reflection()
        .build_v1()
        .and_then(|v1| reflection().build_v1alpha().map(|v1alpha| (v1, v1alpha)));
    let (reflection, reflection_v1alpha) = match reflection {
        Ok(services) => services,
        Err(error) => {
            tracing::error!(%error, "cannot build the reflection service");
            node.shutdown.cancel();
            return;
        }
    };
    let federation = liaison_rpc::v1::federation_server::FederationServer::new(
        FederationService::new(node.clone(), limiter.clone()),
    )
    .max_decoding_message_size(limits.message_bytes_max)
    .max_encoding_message_size(limits.message_bytes_max);
    let federation = Refusals::new(federation, node.clone(), limiter.clone());
    // Asked to stop, the server takes no new connection and tells the open
    // ones to go away (no new calls on them); it ends once they close,
    // which their streams let them do at `halt`.
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(limits.streams_per_connection_max)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .add_service(federation)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(conn_rx),
            node.shutdown.clone().cancelled_owned(),
        );
    let grace = async {
        node.halt.cancelled().await;
        tokio::time::sleep(CLOSE_GRACE).await;
    };
    tokio::select! {
        result = server => {
            if let Err(error) = result {
                tracing::error!(%error, "federation server stopped");
            }
        }
        () = grace => tracing::warn!(
            "federation connections still open {CLOSE_GRACE:?} after their streams ended: stopping without them"
        ),
    }
}

/// What the handshakes of all connections share.
struct Gate {
    node: Arc<Node>,
    limiter: Arc<RefusalLimiter>,
    /// The places of connections whose certificate was verified.
    verified: Arc<tokio::sync::Semaphore>,
    /// Where verified connections go to the gRPC server.
    conn_tx: tokio::sync::mpsc::Sender<Result<PeerConnection, std::io::Error>>,
}

/// One connection's TLS handshake, within its deadline and as long as no
/// newer connection displaces it; then its certificate's node id and a
/// place among the verified connections, or a refusal.
async fn handshake(gate: Arc<Gate>, tcp: TcpStream, remote_addr: SocketAddr, mut place: Place) {
    let Gate {
        node,
        limiter,
        verified,
        conn_tx,
    } = &*gate;
    // The credentials in force now: a reload applies from the next
    // handshake (and judges this one again when it registers).
    let credentials = node.credentials();
    let acceptor = tokio_rustls::TlsAcceptor::from(credentials.server.clone());
    let timeout = Duration::from_millis(node.config.limits.handshake_timeout_ms);
    let handshake = tokio::select! {
        // A node that stops takes no new connection.
        _ = node.shutdown.cancelled() => return,
        why = place.shed() => Err(why.reason().to_owned()),
        handshake = tokio::time::timeout(timeout, acceptor.accept(tcp)) => match handshake {
            Err(_) => Err("TLS handshake timed out (limits.handshake_timeout_ms)".to_owned()),
            Ok(Err(error)) => Err(
                match error
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    Some(tls_error) => crate::tls::describe_tls_error(tls_error),
                    None => format!("TLS handshake failed: {error}"),
                },
            ),
            Ok(Ok(tls)) => Ok(tls),
        },
    };
    // The handshake is over either way: its place goes to the next
    // connection before anything here waits on the audit log.
    drop(place);
    let tls = match handshake {
        Ok(tls) => tls,
        Err(reason) => {
            refuse(node, limiter, remote_addr, &reason).await;
            return;
        }
    };
    let certificate = crate::tls::PeerCertificate::of(tls.get_ref().1.peer_certificates(), None);
    let Some(certificate) = certificate else {
        refuse(
            node,
            limiter,
            remote_addr,
            "no client certificate presented",
        )
        .await;
        return;
    };
    let node_id = match identity::node_id_of_cert(
        &certificate.end_entity,
        &credentials.material.federation,
    ) {
        Ok(id) => id,
        Err(error) => {
            refuse(node, limiter, remote_addr, &error.to_string()).await;
            return;
        }
    };
    let Ok(permit) = verified.clone().try_acquire_owned() else {
        let reason =
            format!("node {node_id}: too many connections with a verified certificate (limits.connections_max)");
        refuse(node, limiter, remote_addr, &reason).await;
        return;
    };
    let cut = node.links.connection_token(&node_id);
    let fingerprint = identity::fingerprint(&certificate.end_entity);
    let open = trust::Open {
        peer: node_id.clone(),
        side: trust::Side::Inbound,
        certificate: Arc::new(certificate),
        cut: cut.clone(),
    };
    let registration = match node.trust.register(open, &credentials) {
        Ok(registration) => registration,
        Err(reason) => {
            refuse(node, limiter, remote_addr, &reason).await;
            return;
        }
    };
    let connection = PeerConnection {
        io: tls,
        info: ConnInfo {
            remote_addr,
            fingerprint,
            node_id,
            cut: cut.clone(),
        },
        cut: Box::pin(cut.cancelled_owned()),
        _permit: permit,
        _open: registration,
    };
    let _ = conn_tx.send(Ok(connection)).await;
}

/// Audits a refused connection, as far as the limiter lets it (a few
/// entries per source and minute); the rest are counted, reported with a
/// later entry, and logged at debug level only.
async fn refuse(node: &Node, limiter: &RefusalLimiter, remote_addr: SocketAddr, reason: &str) {
    let Some(logged) = limiter.admit(remote_addr.ip(), node.now_ms()) else {
        tracing::debug!(%remote_addr, reason, "federation connection refused");
        return;
    };
    tracing::info!(
        %remote_addr,
        reason,
        addresses = logged.addresses,
        unlogged = logged.suppressed,
        "federation connection refused"
    );
    node.audit(
        Actor::Remote(remote_addr.to_string()),
        "federation.connect",
        remote_addr.to_string(),
        Outcome::Refused,
        logged.detail(reason),
    )
    .await;
}
