//! A gRPC server over mutual TLS for the bench's own servers (the raw
//! streaming limit and the lightweight followers), accepting TLS with
//! tokio-rustls and the node's own `liaison_node::tls::server_config`, as the node
//! does in `federation::serve`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use liaison_rpc::v1::federation_server::{Federation, FederationServer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

/// One accepted TLS connection, as tonic serves it.
pub struct TlsConn(TlsStream<TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = ();

    fn connect_info(&self) {}
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Serves `service` as the `Federation` service on 127.0.0.1 (a free port)
/// over mutual TLS with `tls`, until `stop` fires. Returns the address.
pub async fn serve_federation<S: Federation>(
    service: S,
    tls: Arc<rustls::ServerConfig>,
    message_bytes_max: usize,
    stop: CancellationToken,
) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind a loopback port")?;
    let addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (conn_tx, conn_rx) = tokio::sync::mpsc::channel::<Result<TlsConn, std::io::Error>>(16);
    let accept_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = accept_stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((tcp, _)) = accepted else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let conn_tx = conn_tx.clone();
            tokio::spawn(async move {
                // A failed handshake is the client's problem; nothing to serve.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = conn_tx.send(Ok(TlsConn(tls))).await;
                }
            });
        }
    });
    let server = FederationServer::new(service)
        .max_decoding_message_size(message_bytes_max)
        .max_encoding_message_size(message_bytes_max);
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::ReceiverStream::new(conn_rx),
                stop.cancelled_owned(),
            )
            .await;
    });
    Ok(addr)
}
