//! The Prometheus endpoint (`[metrics]` in `node.toml`, off by default):
//! plain HTTP on its own address, `GET /metrics` in the OpenMetrics text
//! format, written by `prometheus-client`.
//!
//! Lag is measured where it is true, at the follower: for each peer, how
//! far this node applied the peer's log (its durable cursor) and the head
//! the peer announced in its last batch. The source's "sent" figure says
//! nothing of what the follower applied (a follower that restarts pulls
//! again from its cursor).
//!
//! Counters (events applied and quarantined, reconnects, apply latency)
//! are kept in memory by the pull tasks and start at zero with the
//! process; everything else is read when scraped: link state from memory,
//! the rest from the database on a read-only connection. No figure
//! carries personal data.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::error::NodeError;
use crate::node::Node;
use liaison_core::store::peers;
use liaison_types::identity::NodeId;

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// The figures the node counts as they happen (the rest are read when
/// scraped).
#[derive(Debug)]
pub struct Metrics {
    applied: Family<Labels, Counter>,
    quarantined: Family<Labels, Counter>,
    reconnects: Family<Labels, Counter>,
    apply_seconds: HistogramFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            applied: Family::default(),
            quarantined: Family::default(),
            reconnects: Family::default(),
            // 1 ms to about 16 s.
            apply_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            }),
        }
    }
}

fn peer_label(peer: &NodeId) -> Labels {
    vec![("peer", peer.to_string())]
}

impl Metrics {
    /// A batch from `peer` was applied in `seconds`.
    pub fn batch_applied(&self, peer: &NodeId, applied: u64, quarantined: u64, seconds: f64) {
        let labels = peer_label(peer);
        self.applied.get_or_create(&labels).inc_by(applied);
        self.quarantined.get_or_create(&labels).inc_by(quarantined);
        self.apply_seconds.get_or_create(&labels).observe(seconds);
    }

    /// The link to `peer` went down and its pull task will connect again.
    pub fn reconnect(&self, peer: &NodeId) {
        self.reconnects.get_or_create(&peer_label(peer)).inc();
    }
}

/// Connections the endpoint serves at once; more wait to be accepted.
const CONNECTIONS_MAX: usize = 8;
/// A connection that has not finished its request by then is closed.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the endpoint until the node is asked to stop.
pub async fn serve(node: Arc<Node>, listener: TcpListener) {
    node.serve_tcp(&listener, CONNECTIONS_MAX, "metrics endpoint", |tcp, _| {
        let node = node.clone();
        async move {
            let service = hyper::service::service_fn(move |request| {
                let node = node.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&node, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(tcp), service);
            if let Ok(Err(error)) = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                tracing::debug!(%error, "metrics endpoint: connection failed");
            }
        }
    })
    .await
}

async fn answer(
    node: &Arc<Node>,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    };
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "only GET /metrics is served here\n".into(),
        );
    }
    match render(node).await {
        Ok(text) => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            text,
        ),
        Err(error) => {
            tracing::error!(%error, "metrics endpoint: cannot read the figures");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "cannot read the figures: see the node's log\n".into(),
            )
        }
    }
}

/// The whole exposition, as of now.
pub async fn render(node: &Arc<Node>) -> Result<String, NodeError> {
    let me = node.node_id.to_string();
    let now_ms = node.now_ms();
    let (stats, peer_list) = node
        .read(move |conn| {
            Ok((
                liaison_core::stats::read(conn, &me, now_ms)?,
                peers::list(conn)?,
            ))
        })
        .await?;
    let mut registry = Registry::with_prefix("liaison");

    let link_up = Family::<Labels, Gauge>::default();
    let cursor = Family::<Labels, Gauge>::default();
    let head = Family::<Labels, Gauge>::default();
    let lag = Family::<Labels, Gauge>::default();
    let contact_age = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let cursors: std::collections::HashMap<&str, u64> = stats
        .cursors
        .iter()
        .map(|(peer, seq)| (peer.as_str(), *seq))
        .collect();
    for peer in &peer_list {
        let link = node.links.status(&peer.node_id);
        let name = peer.node_id.to_string();
        for (direction, up) in [
            ("outbound", link.outbound_up),
            ("inbound", link.inbound_streams > 0),
        ] {
            link_up
                .get_or_create(&vec![
                    ("peer", name.clone()),
                    ("direction", direction.into()),
                ])
                .set(i64::from(up));
        }
        let applied = cursors.get(name.as_str()).copied().unwrap_or(0);
        // Until the peer's first batch since this start, its head is at
        // least what was applied.
        let peer_head = link.peer_head.max(applied);
        let labels = vec![("peer", name.clone())];
        cursor.get_or_create(&labels).set(gauge(applied));
        head.get_or_create(&labels).set(gauge(peer_head));
        lag.get_or_create(&labels)
            .set(gauge(peer_head.saturating_sub(applied)));
        let last_contact_ms = link.last_contact_ms.or(peer.last_contact_ms);
        if let Some(at_ms) = last_contact_ms {
            contact_age
                .get_or_create(&labels)
                .set((now_ms - at_ms).max(0) as f64 / 1000.0);
        }
    }
    registry.register(
        "peer_link_up",
        "1 while the link to the peer is up, per direction: outbound (we follow its log), inbound (it follows ours)",
        link_up,
    );
    registry.register(
        "peer_cursor",
        "The highest sequence number of the peer's log this node has applied (durable)",
        cursor,
    );
    registry.register(
        "peer_head",
        "The head of the peer's log for this node, as the peer announced it in its last batch",
        head,
    );
    registry.register(
        "peer_lag_events",
        "Events of the peer's log for this node not applied yet (head minus cursor), measured here at the follower",
        lag,
    );
    registry.register(
        "peer_last_contact_age_seconds",
        "Seconds since the peer last answered",
        contact_age,
    );
    registry.register(
        "peer_events_applied",
        "Events applied from the peer since this process started",
        node.metrics.applied.clone(),
    );
    registry.register(
        "peer_events_quarantined",
        "Events from the peer quarantined since this process started",
        node.metrics.quarantined.clone(),
    );
    registry.register(
        "peer_reconnects",
        "Times the link to the peer went down and was tried again",
        node.metrics.reconnects.clone(),
    );
    registry.register(
        "peer_apply_seconds",
        "Time to apply one batch from the peer",
        node.metrics.apply_seconds.clone(),
    );

    let quarantine = Family::<Labels, Gauge>::default();
    for (origin, n) in &stats.quarantine_held {
        quarantine
            .get_or_create(&vec![("peer", origin.clone())])
            .set(gauge(*n));
    }
    registry.register(
        "quarantine_held",
        "Events held in quarantine, by the peer that sent them (`liaisonctl quarantine list`)",
        quarantine,
    );
    let transfers = Family::<Labels, Gauge>::default();
    for (direction, state, n) in &stats.transfers_open {
        transfers
            .get_or_create(&vec![
                ("direction", direction.clone()),
                ("state", state.clone()),
            ])
            .set(gauge(*n));
    }
    registry.register(
        "transfers_open",
        "Transfers not finished, by direction and state (released: no receipt yet)",
        transfers,
    );
    let overdue = Gauge::<i64>::default();
    overdue.set(gauge(stats.receipts_overdue));
    registry.register(
        "receipts_overdue",
        "Releases with no receipt after 30 days",
        overdue,
    );
    let members = Family::<Labels, Gauge>::default();
    for (status, n) in &stats.members_by_contact_status {
        members
            .get_or_create(&vec![("contact_status", status.clone())])
            .set(gauge(*n));
    }
    registry.register(
        "members",
        "Members this node owns, by official contact status",
        members,
    );
    let reconciling = Gauge::<i64>::default();
    reconciling.set(i64::from(stats.reconciling));
    registry.register(
        "reconciling",
        "1 while the node, restored from a backup, reconciles with its peers",
        reconciling,
    );
    let database = Gauge::<i64>::default();
    database.set(gauge(node.store.size_bytes()));
    registry.register(
        "database_bytes",
        "Size of the database file and its write-ahead log",
        database,
    );
    let credentials = node.credentials();
    let expiry = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    expiry.set(crate::node::certificate_days_left(
        &credentials.material,
        now_ms,
    ));
    registry.register(
        "certificate_expiry_days",
        "Days until the node's certificate expires",
        expiry,
    );
    if let Some(days) = crate::node::crl_days_left(&credentials, now_ms) {
        let crl = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        crl.set(days);
        registry.register(
            "crl_next_update_days",
            "Days until the revocation list in force is due to be replaced (negative once past: the node keeps enforcing it)",
            crl,
        );
    }
    let mut text = String::new();
    encode(&mut text, &registry)
        .map_err(|e| NodeError::Internal(format!("cannot encode the metrics: {e}")))?;
    Ok(text)
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Binds the endpoint's address, if `[metrics]` enables one.
pub async fn bind(listen: Option<SocketAddr>) -> Result<Option<TcpListener>, std::io::Error> {
    match listen {
        None => Ok(None),
        Some(addr) => TcpListener::bind(addr).await.map(Some),
    }
}
