//! Requests the `Federation` service refuses before any handler sees them:
//! a body that is not one well-formed message of the method's type (not
//! protobuf, cut short, framed wrongly, missing), one larger than
//! `limits.message_bytes_max`, a method the service does not have.
//!
//! tonic answers those itself, a body it cannot parse as `INTERNAL`, which
//! tells the caller the server failed; the fault is the caller's. So
//! [`Refusals`] wraps the service: such an answer becomes
//! `INVALID_ARGUMENT` (an oversized body is answered `OUT_OF_RANGE`
//! already), and every answer given before a handler ran is logged and
//! audited as a refused call of the peer the certificate names, at most
//! `limits.refusals_logged_per_minute` entries per source address, like
//! every other refusal on the port (docs/replication.md).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

use super::{ConnInfo, RefusalLimiter};
use crate::node::Node;
use liaison_core::store::audit::{Actor, Outcome};

/// Set once a handler has the request's message: the body was read and
/// decoded. Every `Federation` handler marks it first
/// (`FederationService::authorize`); an answer given while it is unset
/// was tonic's, to a body it refused.
#[derive(Debug, Clone, Default)]
pub struct BodyRead(Arc<AtomicBool>);

impl BodyRead {
    /// Marks the body of `request` as read.
    pub fn mark<T>(request: &tonic::Request<T>) {
        if let Some(read) = request.extensions().get::<BodyRead>() {
            read.0.store(true, Ordering::Release);
        }
    }

    fn is_read(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The `Federation` service, with its refusals of malformed requests
/// answered and audited (the module doc).
#[derive(Debug, Clone)]
pub struct Refusals<S> {
    inner: S,
    node: Arc<Node>,
    limiter: Arc<RefusalLimiter>,
}

impl<S> Refusals<S> {
    pub fn new(inner: S, node: Arc<Node>, limiter: Arc<RefusalLimiter>) -> Refusals<S> {
        Refusals {
            inner,
            node,
            limiter,
        }
    }
}

impl<S: NamedService> NamedService for Refusals<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Refusals<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let read = BodyRead::default();
        request.extensions_mut().insert(read.clone());
        let caller = request.extensions().get::<ConnInfo>().cloned();
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        // The clone that was made ready serves this call (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let answer = inner.call(request);
        let node = self.node.clone();
        let limiter = self.limiter.clone();
        Box::pin(async move {
            let response = answer.await?;
            if read.is_read() {
                return Ok(response);
            }
            let Some(status) =
                Status::from_header_map(response.headers()).filter(|s| s.code() != Code::Ok)
            else {
                return Ok(response);
            };
            let (status, rewritten) = match status.code() {
                Code::Internal => (
                    Status::invalid_argument(format!(
                        "malformed {method} request: {}",
                        status.message()
                    )),
                    true,
                ),
                _ => (status, false),
            };
            if let Some(caller) = caller {
                audit(&node, &limiter, &caller, &method, &status).await;
            }
            Ok(if rewritten {
                status.into_http()
            } else {
                response
            })
        })
    }
}

/// Logs a refused request and audits it, unless its source address had
/// its share of audit entries this minute (then it is counted, and the
/// next entry says how many were not logged and how many addresses were
/// refused this minute).
async fn audit(
    node: &Node,
    limiter: &RefusalLimiter,
    caller: &ConnInfo,
    method: &str,
    status: &Status,
) {
    let peer = caller.node_id.to_string();
    let reason = format!("{:?}: {}", status.code(), status.message());
    tracing::info!(%peer, call = method, reason, "federation call refused");
    let Some(logged) = limiter.admit(caller.remote_addr.ip(), node.now_ms()) else {
        return;
    };
    let detail = logged.detail(&format!("{method}: {reason}"));
    node.audit(
        Actor::Peer(peer.clone()),
        "federation.call",
        peer,
        Outcome::Refused,
        detail,
    )
    .await;
}
