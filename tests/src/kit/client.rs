//! A raw federation client, for refusals: what a caller that is not a
//! well-behaved peer sees.

use std::sync::Arc;
use std::time::Duration;

use liaison_node::federation::client::PeerChannel;
use liaison_rpc::v1::federation_client::FederationClient;

use super::{pb, timed};

/// A failed call as its caller sees it: a gRPC status, or no status at all
/// because the connection itself failed.
#[derive(Debug, Clone)]
pub struct CallError {
    pub code: Option<tonic::Code>,
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code:?}: {}", self.message),
            None => write!(f, "connection failed: {}", self.message),
        }
    }
}

impl From<tonic::Status> for CallError {
    fn from(status: tonic::Status) -> Self {
        CallError {
            code: Some(status.code()),
            message: liaison_node::federation::client::status_text(&status),
        }
    }
}

/// A gRPC channel to `endpoint` over TLS with `tls`, as nodes connect.
pub async fn channel(
    endpoint: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<PeerChannel, CallError> {
    timed(
        &format!("connect to {endpoint}"),
        liaison_node::federation::client::connect(
            endpoint,
            tls,
            &tokio_util::task::TaskTracker::new(),
        ),
    )
    .await
    .map_err(|e| CallError {
        code: None,
        message: liaison_node::federation::client::error_chain(&e),
    })
}

/// Opens a bare TLS connection to `endpoint` with `tls` and reads from it
/// without sending anything, and returns the error the client sees: the
/// handshake failure, or the TLS alert with which the server refused the
/// client after the handshake (in TLS 1.3 a client learns that its
/// certificate was refused only from that alert). Panics if the server
/// keeps the connection open, i.e. accepted the client.
///
/// Unlike a gRPC call, nothing races the alert here: the client sends no
/// application data, so the server closes the connection cleanly after its
/// alert instead of resetting it.
pub async fn tls_refusal(endpoint: &str, tls: Arc<rustls::ClientConfig>) -> String {
    use tokio::io::AsyncReadExt as _;
    let authority = endpoint
        .strip_prefix("https://")
        .expect("an https:// endpoint");
    let tcp = timed(
        &format!("TCP connect to {endpoint}"),
        tokio::net::TcpStream::connect(authority),
    )
    .await
    .unwrap_or_else(|e| panic!("TCP connect to {endpoint}: {e}"));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("a server name");
    let connector = tokio_rustls::TlsConnector::from(tls);
    let mut stream = match timed("TLS handshake", connector.connect(name, tcp)).await {
        Ok(stream) => stream,
        Err(error) => return format!("handshake failed: {error}"),
    };
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Err(_) => panic!("{endpoint} accepted the TLS connection: no alert, no close within 5 s"),
        Ok(Ok(0)) => "connection closed without an alert".to_owned(),
        Ok(Ok(n)) => panic!("{endpoint} accepted the TLS connection and sent {n} bytes"),
        Ok(Err(error)) => error.to_string(),
    }
}

/// Whether a failed call failed below gRPC (TLS or transport), i.e. the
/// request never reached a service that could answer with a status.
pub fn failed_below_grpc(error: &CallError) -> bool {
    use tonic::Code;
    match error.code {
        None => true,
        Some(code) => {
            matches!(code, Code::Unknown | Code::Unavailable | Code::Cancelled)
                && (error.message.contains("transport error")
                    || error.message.contains("connection"))
        }
    }
}

/// A `Hello` as this build would send it.
pub fn hello_request(display_name: &str) -> pb::HelloRequest {
    pb::HelloRequest {
        display_name: display_name.to_owned(),
        protocol_version: liaison_proto::PROTOCOL_VERSION,
        software_version: "liaison-tests".to_owned(),
        ..Default::default()
    }
}

/// Connects to `endpoint` with `tls` and calls `Hello`.
pub async fn call_hello(
    endpoint: &str,
    tls: Arc<rustls::ClientConfig>,
    request: pb::HelloRequest,
) -> Result<pb::HelloResponse, CallError> {
    let channel = channel(endpoint, tls).await?;
    let mut client = FederationClient::new(channel);
    let response = timed(&format!("Hello to {endpoint}"), client.hello(request)).await?;
    Ok(response.into_inner())
}

/// Connects to `endpoint` with `tls`, calls `Pull` and reads its first batch.
pub async fn call_pull(
    endpoint: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<pb::PullBatch, CallError> {
    let channel = channel(endpoint, tls).await?;
    let mut client = FederationClient::new(channel);
    let request = pb::PullRequest {
        since: 0,
        follow: false,
        ..Default::default()
    };
    let mut stream = timed(&format!("Pull from {endpoint}"), client.pull(request))
        .await?
        .into_inner();
    let batch = timed(&format!("first batch from {endpoint}"), stream.message()).await?;
    batch.ok_or_else(|| CallError {
        code: None,
        message: "the stream ended without a batch".into(),
    })
}

/// A codec that sends each request message's bytes as they are, each in
/// its own gRPC frame, and takes the answer's messages as bytes: what a
/// peer with a broken or hostile encoder sends.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct RawCoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCoder;
    type Decoder = RawCoder;

    fn encoder(&mut self) -> RawCoder {
        RawCoder
    }

    fn decoder(&mut self) -> RawCoder {
        RawCoder
    }
}

impl tonic::codec::Encoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf as _;
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

/// Connects to `endpoint` with `tls` and calls `method` of the `Federation`
/// service with `messages` as its request body, each sent as it is in a
/// frame of its own (none, one malformed, one too large, several). Returns
/// the first message of the answer, or the status it ended with.
pub async fn call_raw(
    endpoint: &str,
    tls: Arc<rustls::ClientConfig>,
    method: &str,
    messages: Vec<Vec<u8>>,
) -> Result<Vec<u8>, CallError> {
    let channel = channel(endpoint, tls).await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| CallError {
        code: None,
        message: e.to_string(),
    })?;
    let path: tonic::codegen::http::uri::PathAndQuery = format!("/liaison.v1.Federation/{method}")
        .parse()
        .expect("a method path");
    let request = tonic::Request::new(tokio_stream::iter(messages));
    let response = timed(
        &format!("{method} with a raw body to {endpoint}"),
        grpc.client_streaming(request, path, RawCodec),
    )
    .await?;
    Ok(response.into_inner())
}
