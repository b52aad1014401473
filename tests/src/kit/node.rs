//! A running node: one `liaison-node` process, and what a test observes of
//! it through `liaisonctl`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use liaison_rpc::v1::admin_client::AdminClient;
use tonic::transport::Channel;

use super::dump::{NodeSketch, Registry};
use super::process::liaisonctl_within;
use super::process::signal;
use super::{
    binaries, describe_output, parse_json_lines, pb, timed, wait_for, wait_until, AuditEntry,
    Launch, NodeCerts, NodeConfig, PeerView, PendingView, DEFAULT_WAIT,
};

/// A `liaison-node` process. Dropping it kills the process.
#[derive(Debug)]
pub struct TestNode {
    pub node_id: String,
    pub display_name: String,
    config: NodeConfig,
    log_path: PathBuf,
    child: Option<Child>,
    federation_addr: Option<SocketAddr>,
    starts: u32,
    launch: Arc<Launch>,
    registry: Arc<Registry>,
}

impl TestNode {
    pub(crate) fn new(
        config: NodeConfig,
        launch: Arc<Launch>,
        registry: Arc<Registry>,
    ) -> TestNode {
        TestNode {
            node_id: config.node_id.clone(),
            display_name: config.display_name.clone(),
            log_path: config.dir.join("node.log"),
            config,
            child: None,
            federation_addr: None,
            starts: 0,
            launch,
            registry,
        }
    }

    /// Starts the process (again) and waits until its admin service answers
    /// `Status`; returns how long that took from the spawn (to within the
    /// [`Launch::poll`]). After the first start the config is rewritten to
    /// listen on the port the node got, so a restart keeps its endpoint.
    ///
    /// The node is killed when the thread that started it ends (Linux's
    /// parent-death signal), so no node outlives a test or bench process
    /// that died without dropping it.
    pub async fn start(&mut self) -> Duration {
        assert!(self.child.is_none(), "{} is already running", self.node_id);
        let config_path = self.config.write();
        self.registry.add(NodeSketch {
            node_id: self.node_id.clone(),
            dir: self.config.dir.clone(),
            socket: self.socket(),
            log: self.log_path.clone(),
        });
        self.starts += 1;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the node log");
        writeln!(
            log,
            "======== liaison-tests: start #{} ========",
            self.starts
        )
        .expect("write the node log");
        let stderr = log.try_clone().expect("clone the log file handle");
        let mut command = Command::new(&binaries().node);
        // SAFETY: prctl(2) only, between fork and exec; no memory is involved.
        unsafe {
            use std::os::unix::process::CommandExt as _;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let started = Instant::now();
        let child = command
            .arg("--config")
            .arg(&config_path)
            .env_remove("LIAISON_CONFIG")
            .env("LIAISON_LOG", &self.launch.log_filter)
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binaries().node.display()));
        self.child = Some(child);

        let deadline = started + self.launch.start_timeout;
        let status = loop {
            if let Some(exit) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "{} exited during start-up ({exit}); its log:\n{}",
                    self.node_id,
                    self.log()
                );
            }
            if self.socket().exists() {
                if let Ok(Ok(status)) =
                    tokio::time::timeout(Duration::from_secs(2), self.try_status()).await
                {
                    break status;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not answer on its admin socket within {:?}; its log:\n{}",
                    self.node_id,
                    self.launch.start_timeout,
                    self.log()
                );
            }
            tokio::time::sleep(self.launch.poll).await;
        };
        let took = started.elapsed();
        assert_eq!(status.node_id, self.node_id, "the node reports another id");
        let addr: SocketAddr = status
            .federation_addr
            .parse()
            .unwrap_or_else(|e| panic!("Status.federation_addr `{}`: {e}", status.federation_addr));
        if let Some(previous) = self.federation_addr {
            assert_eq!(addr, previous, "{} came back on another port", self.node_id);
        }
        self.federation_addr = Some(addr);
        if self.config.listen.ends_with(":0") {
            self.config.listen = addr.to_string();
            self.config.write();
        }
        took
    }

    async fn try_status(&self) -> anyhow::Result<pb::StatusResponse> {
        let mut admin = liaisonctl::client::connect(&self.socket()).await?;
        Ok(admin.status(pb::StatusRequest {}).await?.into_inner())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `sig` to the running node (no waiting).
    pub fn signal(&self, sig: libc::c_int) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} is not running", self.node_id));
        signal(pid, sig);
    }

    /// Stops the node with SIGTERM and returns its exit status; panics if it
    /// does not exit within [`Launch::start_timeout`].
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// Stops the node with `sig` (SIGTERM, SIGINT) and returns its exit status.
    pub fn stop_with(&mut self, sig: libc::c_int) -> ExitStatus {
        self.signal(sig);
        self.wait_exit()
    }

    /// Waits for the node, already told to stop ([`TestNode::signal`]),
    /// to exit, and returns its exit status; kills it and panics if it does
    /// not exit within the launch's start timeout.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{} is not running", self.node_id));
        let deadline = Instant::now() + self.launch.start_timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within {:?} of being told to stop; its log:\n{}",
                    self.node_id,
                    self.launch.start_timeout,
                    self.log()
                );
            }
            std::thread::sleep(self.launch.poll);
        }
    }

    /// Kills the node abruptly (SIGKILL), as a crash or power cut would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the node cleanly (asserting exit code 0) and starts it again on
    /// the same config, data and port.
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            let status = self.stop();
            assert!(
                status.success(),
                "{} stopped with {status}; log:\n{}",
                self.node_id,
                self.log()
            );
        }
        self.start().await;
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The node's certificate and key, as its config names them.
    pub fn certs(&self) -> NodeCerts {
        NodeCerts {
            node_id: self.node_id.clone(),
            cert: self.config.cert.clone(),
            key: self.config.key.clone(),
            ca: self.config.ca.clone(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The node's SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.config.data_dir.join("liaison.db")
    }

    pub fn socket(&self) -> PathBuf {
        self.config.socket()
    }

    /// The address the federation service listens on.
    pub fn federation_addr(&self) -> SocketAddr {
        self.federation_addr
            .unwrap_or_else(|| panic!("{} has not started yet", self.node_id))
    }

    /// `https://127.0.0.1:PORT`, as peers use it.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.federation_addr())
    }

    /// Where the report-in page of the running node listens, as its log
    /// says at start (`[report_in]` with port 0 gets a new port each start).
    pub async fn report_in_addr(&self) -> SocketAddr {
        let what = format!("{} to log where its report-in page listens", self.node_id);
        self.wait_for(DEFAULT_WAIT, &what, async || {
            let log = self.log();
            let start = log.rfind("======== liaison-tests: start #").unwrap_or(0);
            log[start..]
                .lines()
                .filter(|line| line.contains("report-in page listening"))
                .find_map(|line| {
                    let at = line.find("addr=")? + "addr=".len();
                    line[at..].split_whitespace().next()?.parse().ok()
                })
        })
        .await
    }

    /// Everything the node wrote to stdout and stderr, over all its starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A client of the node's admin service (a fresh connection).
    pub async fn admin(&self) -> AdminClient<Channel> {
        timed(
            &format!("connect to the admin socket of {}", self.node_id),
            liaisonctl::client::connect(&self.socket()),
        )
        .await
        .unwrap_or_else(|e| panic!("admin socket of {}: {e:#}", self.node_id))
    }

    /// `Status` through the admin service.
    pub async fn status(&self) -> pb::StatusResponse {
        let mut admin = self.admin().await;
        timed("Status", admin.status(pb::StatusRequest {}))
            .await
            .unwrap_or_else(|s| panic!("Status of {}: {s}", self.node_id))
            .into_inner()
    }

    /// Runs the real `liaisonctl --socket <this node's socket> ARGS`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let socket = self.socket();
        let mut full: Vec<&str> = vec!["--socket", socket.to_str().expect("a UTF-8 path")];
        full.extend_from_slice(args);
        liaisonctl_within(&full, self.launch.cli_timeout)
    }

    /// [`TestNode::ctl`], asserting exit code 0; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let output = self.ctl(args);
        assert!(
            output.status.success(),
            "liaisonctl {} at {} failed:\n{}",
            args.join(" "),
            self.node_id,
            describe_output(&output)
        );
        String::from_utf8(output.stdout).expect("liaisonctl prints UTF-8")
    }

    /// `liaisonctl -o json ARGS`, asserting success; returns the `(type,
    /// data)` of every JSON Lines envelope.
    pub fn ctl_json(&self, args: &[&str]) -> Vec<(String, serde_json::Value)> {
        let mut full = vec!["-o", "json"];
        full.extend_from_slice(args);
        parse_json_lines(&self.ctl_ok(&full))
    }

    /// `liaisonctl -o json ARGS` for records of type `kind`.
    pub fn ctl_records<T: serde::de::DeserializeOwned>(&self, kind: &str, args: &[&str]) -> Vec<T> {
        self.ctl_json(args)
            .into_iter()
            .map(|(t, data)| {
                assert_eq!(
                    t,
                    kind,
                    "liaisonctl {} printed a `{t}` record",
                    args.join(" ")
                );
                serde_json::from_value(data.clone())
                    .unwrap_or_else(|e| panic!("a `{kind}` record {data}: {e}"))
            })
            .collect()
    }

    /// `liaisonctl peer list`.
    pub fn peers(&self) -> Vec<PeerView> {
        self.ctl_records("peer", &["peer", "list"])
    }

    /// One peer from `liaisonctl peer list`, if listed.
    pub fn peer_info(&self, node_id: &str) -> Option<PeerView> {
        self.peers().into_iter().find(|p| p.node_id == node_id)
    }

    /// `liaisonctl peer list --pending`.
    pub fn pending(&self) -> Vec<PendingView> {
        self.ctl_records("pending_peer", &["peer", "list", "--pending"])
    }

    /// `liaisonctl audit list` (the newest 1000 entries, oldest first).
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.ctl_records("audit_entry", &["audit", "list"])
    }

    /// `liaisonctl status`.
    pub fn status_json(&self) -> serde_json::Value {
        let mut records = self.ctl_json(&["status"]);
        assert_eq!(records.len(), 1, "status prints one record: {records:?}");
        let (kind, data) = records.remove(0);
        assert_eq!(kind, "status");
        data
    }

    /// `liaisonctl peer add OTHER --endpoint … --name …`.
    pub fn peer(&self, other: &TestNode) -> PeerView {
        self.peer_add(other, &other.endpoint(), None)
    }

    /// [`TestNode::peer`] with `--serves PLACE`.
    pub fn peer_serving(&self, other: &TestNode, place: &str) -> PeerView {
        self.peer_add(other, &other.endpoint(), Some(place))
    }

    /// `liaisonctl peer add OTHER --endpoint ENDPOINT --name … [--serves
    /// PLACE]`: `other` reached at `endpoint` (its own, or a proxy's).
    pub fn peer_add(&self, other: &TestNode, endpoint: &str, serves: Option<&str>) -> PeerView {
        let mut args = vec![
            "peer",
            "add",
            &other.node_id,
            "--endpoint",
            endpoint,
            "--name",
            &other.display_name,
        ];
        if let Some(place) = serves {
            args.extend(["--serves", place]);
        }
        let mut added: Vec<PeerView> = self.ctl_records("peer", &args);
        assert_eq!(added.len(), 1);
        added.remove(0)
    }

    /// `liaisonctl agreement propose --with PEER --number NUMBER`, from
    /// 2020 to 2099: this node, the outflow party, proposes a
    /// co-management agreement covering its members away to the places
    /// `peer` serves. Returns its id.
    pub fn propose_agreement(&self, peer: &str, number: &str) -> String {
        let proposed = self.ctl_json(&[
            "agreement",
            "propose",
            "--with",
            peer,
            "--number",
            number,
            "--from",
            "2020-01-01",
            "--until",
            "2099-12-31",
        ]);
        proposed
            .iter()
            .find(|(t, _)| t == "agreement")
            .and_then(|(_, d)| d["agreement_id"].as_str())
            .unwrap_or_else(|| panic!("agreement propose printed no agreement: {proposed:?}"))
            .to_owned()
    }

    /// Agreement `id` as `liaisonctl agreement show` prints it, or `None`
    /// if this node refuses to show it (it holds no such agreement).
    pub fn agreement(&self, id: &str) -> Option<serde_json::Value> {
        let output = self.ctl(&["-o", "json", "agreement", "show", id]);
        if !output.status.success() {
            return None;
        }
        parse_json_lines(&String::from_utf8_lossy(&output.stdout))
            .into_iter()
            .next()
            .map(|(_, data)| data)
    }

    /// The state of every node of the federation (for assertion messages).
    pub fn dump(&self) -> String {
        self.registry.dump()
    }

    /// Waits for the first audit entry (newest last) that `matches`, and
    /// returns it.
    pub async fn wait_audit(
        &self,
        what: &str,
        matches: impl Fn(&AuditEntry) -> bool,
    ) -> AuditEntry {
        let description = format!("audit entry at {}: {what}", self.node_id);
        self.wait_for(DEFAULT_WAIT, &description, async || {
            self.audit().into_iter().find(|e| matches(e))
        })
        .await
    }

    /// Waits until peer `node_id` in this node's peer list satisfies `check`.
    pub async fn wait_peer(
        &self,
        node_id: &str,
        what: &str,
        check: impl Fn(&PeerView) -> bool,
    ) -> PeerView {
        let description = format!("{}'s peer {node_id}: {what}", self.node_id);
        self.wait_for(DEFAULT_WAIT, &description, async || {
            self.peer_info(node_id).filter(|p| check(p))
        })
        .await
    }

    /// See [`wait_for`]; dumps every node of the federation on timeout.
    pub async fn wait_for<T>(
        &self,
        within: Duration,
        what: &str,
        probe: impl AsyncFnMut() -> Option<T>,
    ) -> T {
        wait_for(within, what, || self.registry.dump(), probe).await
    }

    /// See [`wait_until`]; dumps every node of the federation on timeout.
    pub async fn wait_until(
        &self,
        within: Duration,
        what: &str,
        condition: impl AsyncFnMut() -> bool,
    ) {
        wait_until(within, what, || self.registry.dump(), condition).await
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}
