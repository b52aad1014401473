//! Connecting to a node's admin socket.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use liaison_rpc::v1::admin_client::AdminClient;
use tonic::transport::{Channel, Endpoint};

/// Where the admin socket is: `--socket`, else the `admin.socket` of
/// `--config`, else `node.toml` in the current directory, else the default.
pub fn socket_path(socket: Option<&Path>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(socket) = socket {
        return Ok(socket.to_owned());
    }
    let config_path = match config {
        Some(path) => Some(path.to_owned()),
        None => Some(PathBuf::from("node.toml")).filter(|p| p.exists()),
    };
    match config_path {
        Some(path) => {
            let config = liaison_types::config::Config::load(&path)?;
            Ok(config.admin_socket)
        }
        None => anyhow::bail!(
            "no admin socket given: pass --socket PATH or --config node.toml (or run where node.toml is)"
        ),
    }
}

/// Connects to the admin service at `socket`.
pub async fn connect(socket: &Path) -> anyhow::Result<AdminClient<Channel>> {
    let path = socket.to_owned();
    let probe = tokio::net::UnixStream::connect(&path).await;
    if let Err(error) = probe {
        anyhow::bail!(
            "cannot reach the node's admin socket {}: {error} (is liaison-node running, and may this user open the socket?)",
            path.display()
        );
    }
    // The URI is required by tonic but unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://liaison-admin")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await?;
    Ok(AdminClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
}

/// Connects to the admin service at `socket`, trying again until `wait`
/// has passed: for scripts that start a node and go on once it answers
/// (`liaisonctl status --wait 30`).
pub async fn connect_within(
    socket: &Path,
    wait: std::time::Duration,
) -> anyhow::Result<AdminClient<Channel>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match connect(socket).await {
            Ok(client) => return Ok(client),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return Err(error.context(format!(
                    "the node did not answer within {} s",
                    wait.as_secs()
                )))
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// Whether `status` is this side's report of a connection that broke (a
/// transport error: the node went away, or stopped before its answer was
/// read), not an answer of the node: unavailable, never a bug or a refusal.
pub fn lost_connection(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<tonic::transport::Error>() {
            return true;
        }
        source = error.source();
    }
    false
}
