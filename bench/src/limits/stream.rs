//! L_stream: how fast raw tonic server streaming moves replication events
//! over the nodes' mutual TLS on loopback.
//!
//! The server is the `Federation` service implemented here with nothing
//! behind it: `Pull` sends prebuilt `PullBatch` messages of events the size
//! of a replicated home section. TLS is the node's own
//! (`liaison_node::tls::server_config`, `liaison_node::tls::client_config` with certificates
//! from the bench's CA), the client channel is the node's
//! (`federation::client::connect`). The bench reuses two `PullRequest`
//! fields for its own server: `since` is how many events to send and
//! `batch_max` how many per message; `follow` asks for single-event
//! messages sent one at a time, each stamped, to measure latency.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use liaison_proto::v1 as pb;
use liaison_rpc::v1::federation_client::FederationClient;
use liaison_rpc::v1::federation_server::Federation;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};

use crate::fixture;
use crate::report::{median, quantile};

/// The nodes' default `limits.message_bytes_max`.
const MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Latency probe: messages sent one at a time, this far apart.
const PROBE_INTERVAL: Duration = Duration::from_millis(2);

struct RawFederation {
    /// One event as a node's log holds it, cloned into every message.
    event: pb::Event,
    epoch: Instant,
}

#[tonic::async_trait]
impl Federation for RawFederation {
    async fn hello(
        &self,
        _request: Request<pb::HelloRequest>,
    ) -> Result<Response<pb::HelloResponse>, Status> {
        Err(Status::unimplemented("the streaming limit only pulls"))
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
        let request = request.into_inner();
        let total = request.since;
        let per_message = u64::from(request.batch_max.max(1));
        let probe = request.follow;
        let event = self.event.clone();
        let epoch = self.epoch;
        // The node's own stream depth (`federation::service`).
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut sent = 0u64;
            while sent < total {
                let n = per_message.min(total - sent);
                let mut events = Vec::with_capacity(n as usize);
                for k in 0..n {
                    let mut e = event.clone();
                    e.seq = sent + k + 1;
                    if probe {
                        // Microseconds since the shared epoch: same process, same clock.
                        e.created_at_ms = epoch.elapsed().as_micros() as i64;
                    }
                    events.push(e);
                }
                sent += n;
                let batch = pb::PullBatch {
                    log_id: "l-stream".into(),
                    events,
                    head_seq: total,
                    audit_head: None,
                };
                if tx.send(Ok(batch)).await.is_err() {
                    break;
                }
                if probe {
                    tokio::time::sleep(PROBE_INTERVAL).await;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[derive(Debug, Clone)]
pub struct StreamLimit {
    /// (events per message, events/s of each repetition).
    pub per_batch: Vec<(u32, Vec<f64>)>,
    pub best: (u32, Vec<f64>),
    /// One-event messages: send to receive, in ms; one list per repetition.
    pub latency_ms: Vec<Vec<f64>>,
    /// Size of one event on the wire (protobuf), in bytes.
    pub event_bytes: usize,
}

impl StreamLimit {
    /// The `q`-quantile of one-event latencies, one value per repetition.
    pub fn latency_quantile_ms(&self, q: f64) -> Vec<f64> {
        self.latency_ms.iter().map(|l| quantile(l, q)).collect()
    }

    pub fn latency_p50_ms(&self) -> f64 {
        median(&self.latency_quantile_ms(0.5))
    }
}

/// Measures events/s for each message size `reps` times (`events_for(batch)`
/// events each), and the latency of `probes` single-event messages.
pub async fn measure(
    ca: &liaison_tests::Federation,
    batches: &[u32],
    reps: usize,
    events_for: impl Fn(u32) -> u64,
    probes: u64,
) -> Result<StreamLimit> {
    let server_material = ca.issue("l-stream-server").tls_material();
    let client_material = ca.issue("l-stream-client").tls_material();
    let event = fixture::home_section_event(1, 1);
    let event_bytes = prost::Message::encoded_len(&event);
    let stop = CancellationToken::new();
    let _stop_guard = stop.clone().drop_guard();
    let epoch = Instant::now();
    let addr = crate::tls_server::serve_federation(
        RawFederation { event, epoch },
        liaison_node::tls::server_config(&server_material)?,
        MESSAGE_BYTES_MAX,
        stop,
    )
    .await?;
    let tls = liaison_node::tls::client_config(&client_material, &server_material.node_id, None)?;
    let channel = liaison_node::federation::client::connect(
        &format!("https://{addr}"),
        tls,
        &TaskTracker::new(),
    )
    .await
    .context("connect to the raw streaming server")?;
    let mut client = FederationClient::new(channel).max_decoding_message_size(MESSAGE_BYTES_MAX);

    let mut per_batch = Vec::new();
    for &batch in batches {
        let total = events_for(batch);
        let mut rates = Vec::new();
        for _ in 0..reps {
            let started = Instant::now();
            let mut stream = client
                .pull(pb::PullRequest {
                    since: total,
                    batch_max: batch,
                    follow: false,
                    log_id: String::new(),
                })
                .await?
                .into_inner();
            let mut received = 0u64;
            while let Some(message) = stream.message().await? {
                received += message.events.len() as u64;
            }
            rates.push(received as f64 / started.elapsed().as_secs_f64());
        }
        per_batch.push((batch, rates));
    }

    let mut latency_ms = Vec::new();
    for _ in 0..reps {
        let mut samples = Vec::new();
        let mut stream = client
            .pull(pb::PullRequest {
                since: probes,
                batch_max: 1,
                follow: true,
                log_id: String::new(),
            })
            .await?
            .into_inner();
        while let Some(message) = stream.message().await? {
            let now_us = epoch.elapsed().as_micros() as i64;
            for event in &message.events {
                samples.push((now_us - event.created_at_ms) as f64 / 1000.0);
            }
        }
        latency_ms.push(samples);
    }

    let best = per_batch
        .iter()
        .max_by(|a, b| median(&a.1).total_cmp(&median(&b.1)))
        .cloned()
        .unwrap_or((0, Vec::new()));
    Ok(StreamLimit {
        per_batch,
        best,
        latency_ms,
        event_bytes,
    })
}
