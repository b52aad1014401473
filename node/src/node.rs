//! Wiring: one running node, its shared state, start-up and shutdown.
//!
//! [`start`] checks everything that can be wrong with a configuration before
//! anything listens (certificates, data directory, database, ports), so a
//! bad configuration fails with one clear error and changes nothing.
//!
//! Every task the node spawns goes through one tracker ([`Node::tasks`]),
//! so [`Running::wait`] knows when all of them have ended. Asked to stop
//! ([`Node::shutdown`]), a node stops in this order:
//! 1. the admin and federation listeners take no new calls, and the admin
//!    calls in flight finish (at most [`crate::admin::ADMIN_GRACE`]);
//! 2. the writer's queue closes and every change queued by then is
//!    committed and answered (a later one is answered "unavailable: the
//!    node is stopping");
//! 3. [`Node::halt`] stops the rest: follow and holdings streams, pull
//!    tasks, the calendar, reshare and trim tasks; the tracker is waited
//!    for (at most [`HALT_GRACE`]);
//! 4. the WAL is checkpointed into the database and truncated, the admin
//!    socket removed, and "stopped" logged: nothing the node runs logs
//!    after it.
//!
//! No SQLite call runs on a runtime thread: the database is reached through
//! [`Node::read`], [`Node::db`], the writer, or another blocking task, and
//! the log id, which async code needs at every `Hello` and `Pull`, is kept
//! in memory ([`Node::log_id`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::NodeError;
use crate::federation::links::Links;
use crate::federation::trust::{Cut, Side, Trust};
use crate::tls::{Credentials, TlsFiles};
use liaison_core::clock::{Clock, Millis, SystemClock};
use liaison_core::store::audit::{self, Actor, NewEntry, Outcome};
use liaison_core::store::Store;
use liaison_core::Error as CoreError;
use liaison_types::config::Config;
use liaison_types::identity::{IdentityError, NodeId, TlsMaterial};

/// Why a node could not start. Each message is one line that names the
/// problem and, where it can, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
    #[error("database {path}: {source}")]
    Database { path: PathBuf, source: NodeError },
    #[error("cannot listen for peers on {addr}: {source}{hint}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("admin socket {path}: {message}")]
    AdminSocket { path: PathBuf, message: String },
    #[error("report-in page: {0}")]
    ReportIn(String),
}

/// The shared state of a running node.
#[derive(Debug)]
pub struct Node {
    pub config: Config,
    pub node_id: NodeId,
    /// The certificate, key, CA bundle and revocation lists, replaced
    /// whole by [`Node::reload`], and the open peer connections verified
    /// with them, judged again at a reload.
    pub trust: Arc<Trust>,
    pub store: Arc<Store>,
    pub clock: Arc<SystemClock>,
    pub started: Instant,
    pub federation_addr: SocketAddr,
    pub links: Links,
    /// Fires when the node is asked to stop (a signal, the caller's token,
    /// a fatal error): the listeners stop taking calls, and
    /// [`Running::wait`] runs the rest of the shutdown.
    pub shutdown: CancellationToken,
    /// Fires once the admin calls have ended and the writer has drained:
    /// federation streams, pull tasks and the node's own tasks stop at it.
    /// Until then they go on, so what the last changes appended still
    /// reaches the peers following this node.
    pub halt: CancellationToken,
    /// Every task the node spawns, blocking ones included.
    pub tasks: TaskTracker,
    /// The database's log id (docs/authority.md), kept here so async code never
    /// reads it from SQLite; set at start and when a restore begins.
    log_id: std::sync::RwLock<String>,
    /// The change log's head per audience, announced after every commit
    /// that may have appended events, so the follow streams of the peers
    /// that got events (only those) wake up and send them.
    pub heads: Arc<LogHeads>,
    /// Wakes the task that runs a re-evaluation of the shares under way
    /// chunk by chunk ([`reshare`]).
    pub reshare_wake: Arc<tokio::sync::Notify>,
    /// Commits operators' changes, several per transaction when they queue
    /// up (group commit).
    pub writer: crate::writer::Writer,
    /// Wakes the task that hands the allocator's free pages back to the
    /// system once new peer links have settled ([`trim_memory`]).
    pub trim_wake: Arc<tokio::sync::Notify>,
    /// What the pull tasks count for the metrics endpoint.
    pub metrics: crate::metrics::Metrics,
    /// Where the metrics endpoint listens, if it is on.
    pub metrics_addr: Option<SocketAddr>,
}

/// This node's identity, notary and zone, owned, for a [`Ctx`] on a
/// blocking thread.
pub struct Me {
    node_id: NodeId,
    notary: Arc<dyn liaison_types::identity::Notary>,
    zone: liaison_types::time::Tz,
}

impl Me {
    /// The context of a change or read at `now_ms`: this node's id, its
    /// notary, and its zone for calendar days.
    pub fn ctx(&self, now_ms: Millis) -> liaison_core::Ctx<'_> {
        liaison_core::Ctx::new(&self.node_id, now_ms)
            .with_notary(self.notary.as_ref())
            .with_zone(self.zone)
    }
}

impl Node {
    pub fn me(&self) -> Me {
        Me {
            node_id: self.node_id.clone(),
            notary: self.notary(),
            zone: self.config.time_zone,
        }
    }

    pub fn now_ms(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The credentials in force: a new handshake uses these.
    pub fn credentials(&self) -> Arc<Credentials> {
        self.trust.credentials()
    }

    /// The node's certificate and key, and the CA bundle.
    pub fn tls(&self) -> TlsMaterial {
        self.credentials().material.clone()
    }

    /// Signs and verifies agreements with the node's certificate.
    pub fn notary(&self) -> Arc<dyn liaison_types::identity::Notary> {
        self.credentials().notary.clone()
    }

    /// Reads node.toml's `[tls]` section again, then the certificate, key,
    /// CA bundle and revocation list it names (SIGHUP, `liaisonctl
    /// reload`), and, if all of them check, puts them in force at once:
    /// every new handshake, both ways, uses them, and every open peer
    /// connection whose certificate they refuse (revoked, or no longer
    /// chaining to the CA bundle) is cut, one audit entry per peer. Other
    /// connections keep going, so no stream of a trusted peer is dropped.
    /// Other settings changed in node.toml are named as needing a restart.
    /// On any failure nothing changes. Audited either way.
    pub async fn reload(&self, actor: Actor) -> Result<Reloaded, NodeError> {
        let running = self.config.clone();
        let node_id = self.node_id.clone();
        let trust = self.trust.clone();
        let in_force = trust.credentials().files.clone();
        let (now_ms, zone) = (self.now_ms(), self.config.time_zone);
        // Loading verifies signatures, and so does judging every open
        // connection again: a blocking thread's work.
        let loaded = self
            .tasks
            .spawn_blocking(move || -> Result<_, String> {
                let (files, restart_needed) = match &running.file {
                    Some(path) => {
                        let newer = Config::load(path).map_err(|e| e.to_string())?;
                        (TlsFiles::of(&newer), running.restart_needed(&newer))
                    }
                    None => (in_force, Vec::new()),
                };
                let credentials = Credentials::load(&files, &node_id).map_err(|e| e.to_string())?;
                let detail = describe_credentials(&credentials, now_ms, zone);
                let cuts = trust.replace(credentials);
                Ok((detail, cuts, restart_needed))
            })
            .await
            .map_err(|join| NodeError::Internal(format!("the reload task failed: {join}")))?;
        let (mut detail, cuts, restart_needed) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                let detail = format!("{error}; the node goes on with the credentials it had");
                tracing::warn!(%error, "reload refused");
                self.audit(
                    actor,
                    "node.reload",
                    self.node_id.to_string(),
                    Outcome::Refused,
                    detail.clone(),
                )
                .await;
                return Err(NodeError::Core(CoreError::conflict(detail)));
            }
        };
        let peers_cut = cuts_by_peer(&cuts);
        if !peers_cut.is_empty() {
            let names: Vec<&str> = peers_cut.iter().map(|(peer, _)| peer.as_str()).collect();
            detail.push_str(&format!(
                "; closed {} connection(s) of {} whose certificate is no longer trusted",
                cuts.len(),
                names.join(", ")
            ));
        }
        if !restart_needed.is_empty() {
            detail.push_str(&format!(
                "; changed in node.toml, in force only after a restart: {}",
                restart_needed.join(", ")
            ));
        }
        tracing::info!(%detail, "credentials reloaded");
        self.audit(
            actor,
            "node.reload",
            self.node_id.to_string(),
            Outcome::Ok,
            detail.clone(),
        )
        .await;
        for (peer, cut) in peers_cut {
            let sides = |side| cut.iter().filter(|c| c.side == side).count();
            let (inbound, outbound) = (sides(Side::Inbound), sides(Side::Outbound));
            let Some(first) = cut.first() else {
                continue;
            };
            tracing::warn!(%peer, reason = %first.reason, inbound, outbound, "peer connections cut at reload");
            self.audit(
                Actor::Node,
                "federation.cut",
                peer.to_string(),
                Outcome::Refused,
                format!(
                    "{} ({}): {inbound} connection(s) it opened and {outbound} this node opened closed at the reload; new ones are refused",
                    first.reason, first.fingerprint
                ),
            )
            .await;
        }
        Ok(Reloaded {
            detail,
            restart_needed: restart_needed.into_iter().map(str::to_owned).collect(),
            connections_cut: cuts.len(),
        })
    }

    /// Accepts connections on `listener` until the node is asked to stop,
    /// serving at most `connections_max` at once (more wait to be
    /// accepted), each by `serve` in a task of its own on the node's
    /// tracker: one connection's failure never stops the listener. For the
    /// plain TCP listeners (metrics, report-in page); `name` is the
    /// listener's in the log.
    pub async fn serve_tcp<F, Fut>(
        &self,
        listener: &tokio::net::TcpListener,
        connections_max: usize,
        name: &'static str,
        serve: F,
    ) where
        F: Fn(tokio::net::TcpStream, SocketAddr) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let slots = Arc::new(tokio::sync::Semaphore::new(connections_max));
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, listener = name, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let connection = serve(tcp, peer);
            self.tasks.spawn(async move {
                let _permit = permit;
                connection.await;
            });
        }
    }

    /// The database's current log id.
    pub fn log_id(&self) -> String {
        self.log_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records a new log id (a restore began).
    pub fn set_log_id(&self, log_id: String) {
        *self.log_id.write().unwrap_or_else(|e| e.into_inner()) = log_id;
    }

    /// Call after a commit that may have appended events: finds which
    /// audiences got events (on a blocking thread, with a read connection)
    /// and wakes their follow streams.
    pub fn events_appended(&self) {
        let heads = self.heads.clone();
        let store = self.store.clone();
        let reshare_wake = self.reshare_wake.clone();
        self.tasks.spawn_blocking(move || {
            if let Err(error) = heads.scan(&store) {
                tracing::error!(%error, "cannot read the change log's heads");
            }
            // The commit may have started a re-evaluation of the shares:
            // wake its task only then (one read here, not a task's round
            // trip per commit).
            match store.read(liaison_core::members::reshare_pending) {
                Ok(false) => {}
                Ok(true) => reshare_wake.notify_one(),
                Err(error) => {
                    tracing::error!(%error, "cannot read whether a reshare is under way");
                    reshare_wake.notify_one();
                }
            }
        });
    }

    /// Runs `f` on a blocking thread with a read-only connection: readers
    /// do not queue behind the writer (WAL).
    pub async fn read<R, F>(&self, f: F) -> Result<R, NodeError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, CoreError> + Send + 'static,
    {
        let store = self.store.clone();
        match self.tasks.spawn_blocking(move || store.read(f)).await {
            Ok(result) => result.map_err(NodeError::Core),
            Err(join) => Err(NodeError::Internal(format!(
                "a database task failed: {join}"
            ))),
        }
    }

    /// Runs `f` on a blocking thread with the database connection.
    pub async fn db<R, F>(&self, f: F) -> Result<R, NodeError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, CoreError> + Send + 'static,
    {
        let store = self.store.clone();
        match self.tasks.spawn_blocking(move || store.with(f)).await {
            Ok(result) => result.map_err(NodeError::Core),
            Err(join) => Err(NodeError::Internal(format!(
                "a database task failed: {join}"
            ))),
        }
    }

    /// Appends one audit entry in its own transaction. For entries that go
    /// with a change, call [`audit::append`] inside the change's transaction.
    pub async fn audit(
        &self,
        actor: Actor,
        action: &str,
        target: String,
        outcome: Outcome,
        detail: String,
    ) {
        let now_ms = self.now_ms();
        let entry_action = action.to_owned();
        let result = self
            .db(move |conn| {
                audit::append(
                    conn,
                    now_ms,
                    &NewEntry {
                        actor: &actor,
                        action: &entry_action,
                        target: &target,
                        outcome,
                        detail: &detail,
                    },
                )
            })
            .await;
        if let Err(error) = result {
            tracing::error!(%error, action, "cannot write audit entry");
        }
    }
}

/// The head of the change log for each audience a follow stream serves,
/// as far as the commits announced so far ([`Node::events_appended`]).
#[derive(Debug)]
pub struct LogHeads {
    inner: std::sync::Mutex<Heads>,
}

#[derive(Debug)]
struct Heads {
    /// Every event up to this seq has been announced.
    scanned: u64,
    audiences: std::collections::HashMap<String, tokio::sync::watch::Sender<u64>>,
}

impl LogHeads {
    /// Starts at the log's current head: earlier events need no announcing
    /// (a new stream reads its audience's head itself).
    pub fn new(store: &Store) -> Result<LogHeads, CoreError> {
        let scanned = store.read(liaison_core::log::max_seq)?;
        Ok(LogHeads {
            inner: std::sync::Mutex::new(Heads {
                scanned,
                audiences: Default::default(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Heads> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The head of `audience`'s events, updated as commits announce new
    /// ones. Blocking (may read the database).
    pub fn subscribe(
        &self,
        store: &Store,
        audience: &NodeId,
    ) -> Result<tokio::sync::watch::Receiver<u64>, CoreError> {
        // Under the lock, so no announcement falls between the read and
        // the sender's insertion.
        let mut heads = self.lock();
        if let Some(sender) = heads.audiences.get(audience.as_str()) {
            return Ok(sender.subscribe());
        }
        let head = store.read(|conn| liaison_core::log::head_seq(conn, audience))?;
        let sender = tokio::sync::watch::Sender::new(head);
        let receiver = sender.subscribe();
        heads.audiences.insert(audience.to_string(), sender);
        Ok(receiver)
    }

    /// Announces the events committed since the last scan to the streams of
    /// their audiences. Blocking (reads the database).
    pub fn scan(&self, store: &Store) -> Result<(), CoreError> {
        let mut heads = self.lock();
        let after = heads.scanned;
        let appended = store.read(|conn| liaison_core::log::heads_after(conn, after))?;
        for (audience, seq) in appended {
            heads.scanned = heads.scanned.max(seq);
            if let Some(sender) = heads.audiences.get(&audience) {
                sender.send_if_modified(|head| {
                    let moved = seq > *head;
                    *head = (*head).max(seq);
                    moved
                });
            }
        }
        Ok(())
    }
}

/// How long, after [`Node::halt`], the federation streams, pull tasks and
/// the node's own tasks have to end before the node stops without them:
/// each stops at its next await, so only a stuck peer connection or a
/// long database call takes this long. With [`crate::admin::ADMIN_GRACE`]
/// it stays within systemd's stop timeout (deploy/liaison-node.service).
pub const HALT_GRACE: Duration = Duration::from_secs(5);

/// A started node: where it listens, and how to wait for it to stop.
pub struct Running {
    pub node: Arc<Node>,
    pub federation_addr: SocketAddr,
    pub admin_socket: PathBuf,
    admin: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Running {
    /// Waits until the node is asked to stop ([`Node::shutdown`]), then
    /// stops it in order (the module doc) and returns once it has stopped.
    pub async fn wait(self) {
        let node = self.node;
        node.shutdown.cancelled().await;
        tracing::info!(node = %node.node_id, "stopping: finishing admin calls and queued changes");
        // The admin service ends once its calls in flight have (bounded).
        let _ = self.admin.await;
        node.writer.close();
        let _ = self.writer.await;
        tracing::debug!("admin calls and queued changes done: stopping streams and tasks");
        node.halt.cancel();
        node.tasks.close();
        if tokio::time::timeout(HALT_GRACE, node.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = node.tasks.len(),
                "tasks still running {HALT_GRACE:?} after the node began to stop: stopping without them"
            );
        }
        // The WAL's pages go into the database and the WAL is truncated: a
        // stopped node's state is the database file alone.
        let store = node.store.clone();
        let checkpoint = node.tasks.spawn_blocking(move || store.checkpoint()).await;
        match checkpoint {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => tracing::warn!(
                "the write-ahead log was not checkpointed: a reader still held it (it is replayed at the next start)"
            ),
            Ok(Err(error)) => {
                tracing::warn!(%error, "the write-ahead log was not checkpointed (it is replayed at the next start)")
            }
            Err(error) => tracing::warn!(%error, "the write-ahead log was not checkpointed"),
        }
        // The last entries (the stop's own among them) go into the record.
        match node.read(audit::head).await {
            Ok(head) => {
                if let Err(error) = write_audit_record(&node, &head) {
                    tracing::warn!(%error, "cannot record the audit head");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the audit head"),
        }
        // The socket file would otherwise make the next start think a node is running.
        let _ = std::fs::remove_file(&self.admin_socket);
        tracing::info!(node = %node.node_id, "stopped");
    }
}

/// Checks the configuration, opens the database, binds both listeners and
/// starts serving. Returns once the node is ready to take calls.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, StartError> {
    let credentials = Credentials::load(&TlsFiles::of(&config), &config.node_id)?;
    // Bind the port first: a port in use must fail before anything is
    // created on disk.
    let listener = tokio::net::TcpListener::bind(config.federation_listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.federation_listen,
            hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                " (another process uses this port: stop it or change federation.listen)"
            } else {
                ""
            },
            source,
        })?;
    let federation_addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.federation_listen,
        source,
        hint: "",
    })?;
    let metrics_listener = crate::metrics::bind(config.metrics_listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.metrics_listen.unwrap_or(federation_addr),
            hint: " (metrics.listen: choose a free port, or turn [metrics] off)",
            source,
        })?;
    let metrics_addr = metrics_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok());
    let report_in_listener = match &config.report_in {
        None => None,
        Some(report_in) => Some(
            crate::web::bind(report_in)
                .await
                .map_err(StartError::ReportIn)?,
        ),
    };
    prepare_data_dir(&config.data_dir)?;
    let report_in_secret = match config.report_in {
        None => None,
        Some(_) => Some(
            crate::web::Secret::load_or_create(&config.data_dir).map_err(|message| {
                StartError::DataDir {
                    path: config.data_dir.clone(),
                    message,
                }
            })?,
        ),
    };
    let admin_listener = crate::admin::bind(&config)?;
    let clock = SystemClock::new();
    let db_path = config.database_path();
    let tasks = TaskTracker::new();
    let node_id = config.node_id.clone();
    let now_ms = clock.now_ms();
    let path = db_path.clone();
    let zone = config.time_zone;
    let opened = tasks
        .spawn_blocking(move || open_database(&path, &node_id, zone, now_ms))
        .await;
    let (store, heads, log_id) = match opened {
        Ok(result) => result.map_err(NodeError::Core),
        Err(join) => Err(NodeError::Internal(format!(
            "the database task failed: {join}"
        ))),
    }
    .map_err(|source| StartError::Database {
        path: db_path.clone(),
        source,
    })?;
    let admin_socket = config.admin_socket.clone();

    let store = Arc::new(store);
    let mut writer_task = None;
    let node = Arc::new_cyclic(|weak: &std::sync::Weak<Node>| {
        let weak = weak.clone();
        let (writer, task) = crate::writer::Writer::start(store.clone(), &tasks, move || {
            if let Some(node) = weak.upgrade() {
                node.events_appended();
            }
        });
        writer_task = Some(task);
        Node {
            node_id: config.node_id.clone(),
            config,
            trust: Trust::new(credentials),
            store,
            clock,
            started: Instant::now(),
            federation_addr,
            links: Links::default(),
            halt: CancellationToken::new(),
            shutdown,
            tasks,
            log_id: std::sync::RwLock::new(log_id),
            heads: Arc::new(heads),
            reshare_wake: Arc::new(tokio::sync::Notify::new()),
            writer,
            trim_wake: Arc::new(tokio::sync::Notify::new()),
            metrics: Default::default(),
            metrics_addr,
        }
    });
    node.audit(
        Actor::Node,
        "node.start",
        node.node_id.to_string(),
        Outcome::Ok,
        format!(
            "federation {federation_addr}, version {}",
            crate::SOFTWARE_VERSION
        ),
    )
    .await;

    let writer = writer_task.expect("Arc::new_cyclic ran the closure");
    let tasks = &node.tasks;
    tasks.spawn(crate::federation::serve(node.clone(), listener));
    let admin = tasks.spawn(crate::admin::serve(node.clone(), admin_listener));
    tasks.spawn(crate::federation::client::supervise(node.clone()));
    tasks.spawn(calendar(node.clone()));
    tasks.spawn(reshare(node.clone()));
    tasks.spawn(trim_memory(node.clone()));
    tasks.spawn(upkeep(node.clone()));
    if let Some(listener) = metrics_listener {
        tasks.spawn(crate::metrics::serve(node.clone(), listener));
    }
    if let (Some(listener), Some(secret)) = (report_in_listener, report_in_secret) {
        match listener.local_addr() {
            Ok(addr) => {
                tracing::info!(%addr, https = listener.is_https(), "report-in page listening")
            }
            Err(error) => tracing::warn!(%error, "report-in page: cannot read its address"),
        }
        tasks.spawn(crate::web::serve(node.clone(), listener, secret));
    }
    tracing::info!(
        node = %node.node_id,
        federation = %federation_addr,
        admin = %admin_socket.display(),
        "node started"
    );
    Ok(Running {
        node,
        federation_addr,
        admin_socket,
        admin,
        writer,
    })
}

/// Opens the database (blocking): migrations, the restore of a backup
/// copied into place, the log's heads. Returns the store, its heads and its
/// log id.
fn open_database(
    path: &Path,
    node_id: &NodeId,
    zone: liaison_types::time::Tz,
    now_ms: Millis,
) -> Result<(Store, LogHeads, String), CoreError> {
    let store = Store::open(path, now_ms)?;
    store.with(|conn| liaison_core::store::claim_node_id(conn, node_id.as_str()))?;
    // Before anything is appended: the newest audit entries deleted while
    // the node was stopped are missing against its record.
    let data_dir = path.parent().unwrap_or(Path::new("."));
    if let Some((record, _)) = read_audit_record(data_dir, &store.log_id()?) {
        let missing = store.with(|conn| audit::check_record_at_start(conn, &record, now_ms))?;
        if let Some(missing) = missing {
            tracing::error!(
                missing,
                recorded = record.entries,
                "the audit log lost its newest entries while the node was stopped (`liaisonctl audit verify`)"
            );
        }
    }
    // Durable values that cannot be checked by the schema alone.
    store.read(|conn| liaison_core::letters::check_counters(conn, node_id.as_str()))?;
    // A backup copied into place: a new log id, and reconcile before acting
    // as an owner (docs/restore.md).
    let restored = store.with(|conn| {
        liaison_core::reconcile::begin_restore_if_marked(
            conn,
            &liaison_core::Ctx::new(node_id, now_ms).with_zone(zone),
        )
    })?;
    if let Some(start) = restored {
        tracing::warn!(
            log_id = %start.log_id,
            previous = %start.previous_log_id,
            lost = %liaison_core::reconcile::lost_period(zone, start.backup_at_ms, start.restored_at_ms),
            "started on a restored backup: reconciling with every peer before acting as an owner (`liaisonctl reconcile status`)"
        );
    }
    let heads = LogHeads::new(&store)?;
    let log_id = store.log_id()?;
    Ok((store, heads, log_id))
}

/// Starts a node and serves until `shutdown` fires, then stops cleanly.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    let running = start(config, shutdown).await?;
    running.wait().await;
    Ok(())
}

/// Runs a re-evaluation of the shares under way (an agreement's activation
/// or amendment started it and did its first chunk:
/// `members::request_reshare`) chunk by chunk, each chunk its own
/// transaction whose events are announced at once, so hosts pull the first
/// members while the next are appended and operators' calls get the
/// database between chunks. Woken after a commit that left a
/// re-evaluation under way (`Node::events_appended` looks) and by the
/// calendar; it also looks at start, since a
/// crash between chunks leaves the rest durable. A reconciling node runs
/// no chunk (the core decides: `reshare_next_chunk`).
async fn reshare(node: Arc<Node>) {
    loop {
        match node.read(liaison_core::members::reshare_pending).await {
            Ok(true) => run_reshare(&node).await,
            Ok(false) => {}
            Err(error) => tracing::error!(%error, "cannot read whether a reshare is under way"),
        }
        tokio::select! {
            _ = node.halt.cancelled() => break,
            _ = node.reshare_wake.notified() => {}
        }
    }
}

async fn run_reshare(node: &Arc<Node>) {
    let mut chunks = 0u64;
    loop {
        if node.halt.is_cancelled() {
            return;
        }
        let me = node.me();
        let now_ms = node.now_ms();
        let ran = node
            .db(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let ctx = me.ctx(now_ms);
                let ran = liaison_core::members::reshare_next_chunk(&tx, &ctx)?;
                tx.commit()?;
                Ok(ran)
            })
            .await;
        match ran {
            Ok(true) => {
                chunks += 1;
                node.events_appended();
            }
            Ok(false) => break,
            Err(error) => {
                // Left durable: the calendar wakes this again in a minute.
                tracing::error!(%error, chunks, "reshare chunk failed");
                return;
            }
        }
    }
    if chunks > 0 {
        tracing::info!(chunks, "shares re-evaluated");
    }
}

/// Gives the allocator's free pages back to the system a moment after new
/// peer links came up (`Node::trim_wake`), at most once per
/// [`TRIM_DEBOUNCE`].
///
/// Setting up a link (the TLS handshake, the certificate checks, `Hello`,
/// the first batches) allocates far more than the idle link keeps, and
/// glibc returns freed memory to the system only from the top of a heap:
/// after a few hundred peers connected, most of the growth of the node's
/// resident memory was free memory between live buffers, not the links
/// (measured in issue 9, scenario 6). `malloc_trim` releases those pages;
/// it walks the heaps once, so it runs after a burst of links, not per link.
async fn trim_memory(node: Arc<Node>) {
    loop {
        tokio::select! {
            _ = node.halt.cancelled() => break,
            _ = node.trim_wake.notified() => {}
        }
        tokio::select! {
            _ = node.halt.cancelled() => break,
            _ = tokio::time::sleep(TRIM_DEBOUNCE) => {}
        }
        let _ = node
            .tasks
            .spawn_blocking(|| {
                #[cfg(all(target_os = "linux", target_env = "gnu"))]
                // SAFETY: malloc_trim only releases free memory; it is
                // thread-safe and touches no live allocation.
                unsafe {
                    libc::malloc_trim(0);
                }
            })
            .await;
    }
}

/// How often [`upkeep`] looks whether personal data was deleted and
/// whether the audit log grew.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(2);

/// The file beside the database where the node records its audit head
/// (`log_id entries hash`), so that deleting the newest entries from the
/// database is detected (`audit verify`).
pub const AUDIT_RECORD_FILE: &str = "audit-head";

/// Two chores every [`UPKEEP_EVERY`], and once more at the stop:
///
/// - after a commit that deleted personal data (the `erasures` counter
///   moved: `store::ERASURES`), the write-ahead log is checkpointed with
///   TRUNCATE, so a deleted name, phone or ID number does not stay readable
///   in the `-wal` file until SQLite's own checkpoint some thousand pages
///   later. A reader holding an older snapshot makes it wait for the next
///   look (readers hold one for a batch or a listing, not longer). At the
///   first look it runs once whatever the count: a crash may have left a
///   log.
/// - when the audit log grew, its head is written to [`AUDIT_RECORD_FILE`].
async fn upkeep(node: Arc<Node>) {
    let mut checkpointed = None;
    let mut recorded = None;
    loop {
        tokio::select! {
            _ = node.halt.cancelled() => break,
            _ = tokio::time::sleep(UPKEEP_EVERY) => {}
        }
        let read = node
            .read(|conn| {
                Ok((
                    liaison_core::store::counter(conn, liaison_core::store::ERASURES)?,
                    audit::head(conn)?,
                ))
            })
            .await;
        let (erasures, head) = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::error!(%error, "upkeep: cannot read the erasure count and audit head");
                continue;
            }
        };
        if recorded.as_ref() != Some(&head) {
            match write_audit_record(&node, &head) {
                Ok(()) => recorded = Some(head),
                Err(error) => tracing::warn!(%error, "cannot record the audit head"),
            }
        }
        if checkpointed == Some(erasures) {
            continue;
        }
        let store = node.store.clone();
        match node.tasks.spawn_blocking(move || store.checkpoint()).await {
            Ok(Ok(true)) => {
                tracing::debug!(erasures, "write-ahead log checkpointed after a deletion");
                checkpointed = Some(erasures);
            }
            Ok(Ok(false)) => tracing::debug!("checkpoint after a deletion waits for a reader"),
            Ok(Err(error)) => tracing::warn!(%error, "checkpoint after a deletion failed"),
            Err(error) => tracing::warn!(%error, "checkpoint after a deletion failed"),
        }
    }
}

/// Writes the audit head to [`AUDIT_RECORD_FILE`] (a new file renamed
/// over the old one, so it is whole or the previous one).
fn write_audit_record(node: &Node, head: &audit::Head) -> std::io::Result<()> {
    let path = node.config.data_dir.join(AUDIT_RECORD_FILE);
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        format!(
            "{} {} {}\n",
            node.log_id(),
            head.entries,
            hex_encode(&head.hash)
        ),
    )?;
    std::fs::rename(&tmp, &path)
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The node's own record of its audit head, if it is of the log id
/// `log_id` (a restore starts a new log, and a shorter chain).
pub fn read_audit_record(data_dir: &Path, log_id: &str) -> Option<(audit::Head, Millis)> {
    let path = data_dir.join(AUDIT_RECORD_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    let modified_ms = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0);
    let mut fields = text.split_whitespace();
    let (Some(id), Some(entries), Some(hash)) = (fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    if id != log_id {
        return None;
    }
    let hash = (0..hash.len())
        .step_by(2)
        .map(|i| {
            hash.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()?;
    Some((
        audit::Head {
            entries: entries.parse().ok()?,
            hash,
        },
        modified_ms,
    ))
}

/// How long after the last new link [`trim_memory`] waits.
const TRIM_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(500);

/// Decisions the calendar makes, on this node's clock: agreements activate
/// and expire, hosts drop copies past the end date plus grace (every
/// minute); contact status turns overdue or lost, and the counts of the
/// last 31 December are recorded once (every hour).
async fn calendar(node: Arc<Node>) {
    let mut minutes = 0u64;
    loop {
        let sweep_contacts = minutes.is_multiple_of(60);
        if let Err(error) = run_calendar(&node, sweep_contacts).await {
            tracing::error!(%error, "calendar run failed");
        }
        node.reshare_wake.notify_one();
        minutes += 1;
        tokio::select! {
            _ = node.halt.cancelled() => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
    }
}

/// Members whose contact status one transaction of the sweep re-derives:
/// the sweep of 1,000,000 members then holds the database for a few tens
/// of milliseconds at a time, not seconds, so a node answers while it runs.
const SWEEP_CHUNK: usize = 2_000;

/// One calendar run; also called when an operator moves a test clock.
pub async fn run_calendar(node: &Arc<Node>, sweep_contacts: bool) -> Result<(), NodeError> {
    let me = node.me();
    let now_ms = node.now_ms();
    let kept_days = crate::admin::rejected_kept_days(&node.config);
    let decided = node
        .db(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let ctx = me.ctx(now_ms);
            // Rejected report-in claims go with their personal data once
            // kept their days, reconciling or not: no owner decides this.
            let purged = liaison_core::reportin::purge_rejected(&tx, &ctx, kept_days)?;
            if purged > 0 {
                tracing::info!(purged, "rejected report-in claims deleted");
            }
            // A reconciling node makes no owner decisions yet (docs/restore.md):
            // neither the calendar's nor the contact statuses it shares.
            if liaison_core::epoch::is_reconciling(&tx)? {
                tx.commit()?;
                return Ok(None);
            }
            let mut changed = liaison_core::agreements::tick(&tx, &ctx)?;
            changed += liaison_core::transfers::tick(&tx, &ctx)?;
            tx.commit()?;
            Ok(Some(changed))
        })
        .await?;
    let Some(mut changed) = decided else {
        return Ok(());
    };
    if changed > 0 {
        node.events_appended();
    }
    if sweep_contacts {
        // Chunk by chunk, each its own transaction, on the clock of the
        // sweep's start: the same statuses as one sweep (each member's
        // depends only on its own records). A crash midway leaves the rest
        // for the next sweep, which runs at every start.
        let mut after = String::new();
        loop {
            let me = node.me();
            let (n, next) = node
                .db(move |conn| {
                    let tx =
                        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    let ctx = me.ctx(now_ms);
                    let done = liaison_core::members::sweep_contact_status_chunk(
                        &tx,
                        &ctx,
                        &after,
                        SWEEP_CHUNK,
                    )?;
                    tx.commit()?;
                    Ok(done)
                })
                .await?;
            if n > 0 {
                node.events_appended();
            }
            changed += n;
            match next {
                Some(next) if !node.halt.is_cancelled() => after = next,
                _ => break,
            }
        }
    }
    if changed > 0 {
        tracing::info!(changed, "calendar decisions");
    }
    if sweep_contacts {
        record_year_end(node).await?;
    }
    Ok(())
}

/// Days until `tls`'s certificate expires (negative once expired).
/// What a reload did, for the operator who asked.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub detail: String,
    /// Settings changed in node.toml that only a restart puts in force.
    pub restart_needed: Vec<String>,
    pub connections_cut: usize,
}

/// What a reload's answer and its audit entry say about the credentials
/// it put in force: the certificate and its expiry, the revocation list.
fn describe_credentials(
    credentials: &Credentials,
    now_ms: Millis,
    zone: liaison_types::time::Tz,
) -> String {
    let mut text = format!(
        "certificate {} (expires in {:.0} days)",
        credentials.material.fingerprint,
        certificate_days_left(&credentials.material, now_ms),
    );
    match &credentials.files.crl {
        None => text.push_str(", no revocation list (tls.crl)"),
        Some(path) => {
            text.push_str(&format!(
                ", revocation list {}: {} certificate(s) revoked",
                path.display(),
                credentials.crls.revoked
            ));
            if let Some(next) = credentials.crls.next_update {
                text.push_str(&format!(
                    ", next update due {}",
                    liaison_types::time::format_ms(next.saturating_mul(1000), zone)
                ));
            }
        }
    }
    text
}

/// The connections a reload cut, per peer, in the order of the peers' ids.
fn cuts_by_peer(cuts: &[Cut]) -> Vec<(&NodeId, Vec<&Cut>)> {
    let mut by_peer: std::collections::BTreeMap<&NodeId, Vec<&Cut>> = Default::default();
    for cut in cuts {
        by_peer.entry(&cut.peer).or_default().push(cut);
    }
    by_peer.into_iter().collect()
}

/// Days until the revocation list in force is due to be replaced
/// (negative once past), if it names a date.
pub fn crl_days_left(credentials: &Credentials, now_ms: Millis) -> Option<f64> {
    credentials
        .crls
        .next_update
        .map(|next| (next as f64 - now_ms as f64 / 1000.0) / 86_400.0)
}

pub fn certificate_days_left(tls: &TlsMaterial, now_ms: Millis) -> f64 {
    (tls.not_after as f64 - now_ms as f64 / 1000.0) / 86_400.0
}

/// Records the counts of the last 31 December (`report trend`), once a
/// year: counted on a read-only connection as of that day from the dated
/// facts, so the writer waits only for the one row; not while the node
/// reconciles after a restore (its records are not whole yet).
async fn record_year_end(node: &Arc<Node>) -> Result<(), NodeError> {
    use liaison_core::reports;
    let now_ms = node.now_ms();
    let me = node.me();
    let due = node
        .read(move |conn| reports::year_end_due(conn, &me.ctx(now_ms)))
        .await?;
    let Some(year) = due else {
        return Ok(());
    };
    let me = node.me();
    let counts = node
        .read(move |conn| reports::count_year_end(conn, &me.ctx(now_ms), year))
        .await?;
    let me = node.me();
    node.db(move |conn| {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if liaison_core::epoch::is_reconciling(&tx)? {
            return Ok(());
        }
        reports::record_year_end(&tx, &me.ctx(now_ms), &counts)?;
        tx.commit()?;
        tracing::info!(
            year = counts.year,
            mobile = counts.mobile,
            members = counts.members,
            "year-end counts recorded"
        );
        Ok(())
    })
    .await
}

/// Creates the data directory (mode 0700) if missing and proves it writable.
fn prepare_data_dir(path: &Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    let fail = |message: String| StartError::DataDir {
        path: path.to_owned(),
        message,
    };
    if !path.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| fail(format!("cannot create it: {e}")))?;
    }
    if !path.is_dir() {
        return Err(fail("exists but is not a directory".into()));
    }
    let probe = path.join(".write-probe");
    std::fs::write(&probe, b"").map_err(|e| fail(format!("is not writable by this user: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
