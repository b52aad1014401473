//! The admin socket: binding it, serving the service on it, letting calls
//! in while the node runs, and naming the operator on the other end.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use liaison_rpc::v1::admin_server::AdminServer;
use tokio::net::UnixStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::codegen::http;
use tonic::transport::server::UdsConnectInfo;
use tonic::Request;

use super::{stopping, AdminService};
use crate::node::{Node, StartError};
use liaison_core::store::audit::Actor;
use liaison_types::config::Config;

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
pub(super) fn operator<T>(request: &Request<T>) -> Actor {
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
