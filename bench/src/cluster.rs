//! Real `liaison-node` processes for the scenarios: a federation CA made on
//! the fly, one directory per node (config, data, log), and the operators'
//! tools (`liaisonctl`, or the admin gRPC service it speaks) to drive them.
//!
//! The same shape as the end-to-end harness in `tests/`, with errors
//! returned instead of panics, release binaries, and production limits
//! (only the reconnect backoff is capped lower, so set-up does not wait).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use liaison_proto::v1 as pb;
use liaison_rpc::v1::admin_client::AdminClient;
use liaison_types::identity::{self, NodeId, TlsMaterial};
use tonic::transport::Channel;

/// The federation name of the bench's CA.
pub const FEDERATION: &str = "bench";
/// Bound on a node's start and on its exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on one `liaisonctl` run (imports of a million rows included).
const CLI_TIMEOUT: Duration = Duration::from_secs(1800);

// ---------------------------------------------------------------- binaries

/// `liaison-node` and `liaisonctl`, release build.
#[derive(Debug, Clone)]
pub struct Bins {
    pub node: PathBuf,
    pub ctl: PathBuf,
}

/// Builds (unless `no_build`) and locates the release binaries next to
/// this program (`<target>/release/`).
pub fn binaries(no_build: bool) -> Result<Bins> {
    let exe = std::env::current_exe().context("the path of liaison-bench")?;
    let dir = exe
        .parent()
        .context("liaison-bench has no parent directory")?
        .to_owned();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ lives in the workspace")?
        .to_owned();
    if !no_build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "liaison-node",
                "-p",
                "liaisonctl",
                "--bins",
            ])
            .current_dir(&workspace)
            .stdin(Stdio::null());
        if let Some(target) = dir.parent() {
            build.env("CARGO_TARGET_DIR", target);
        }
        // `cargo run` gives us our package's environment; build scripts that
        // watch such variables would rebuild needlessly.
        for (name, _) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_BIN_")
                || matches!(
                    name,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                )
            {
                build.env_remove(name);
            }
        }
        let started = Instant::now();
        let status = build.status().context(
            "cannot run cargo to build liaison-node and liaisonctl (or pass --no-build)",
        )?;
        if !status.success() {
            bail!("building liaison-node and liaisonctl failed ({status})");
        }
        eprintln!(
            "liaison-bench: binaries ready ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
    }
    let bins = Bins {
        node: dir.join("liaison-node"),
        ctl: dir.join("liaisonctl"),
    };
    for path in [&bins.node, &bins.ctl] {
        if !path.is_file() {
            bail!(
                "{} is missing: run `cargo build --release -p liaison-node -p liaisonctl`",
                path.display()
            );
        }
    }
    Ok(bins)
}

// ---------------------------------------------------------------- waiting

/// Polls `probe` every `every` until it returns `Some`, for at most `within`.
pub async fn wait_for<T>(
    within: Duration,
    every: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Awaits `future` for at most `within`.
pub async fn timed<F: std::future::Future>(
    within: Duration,
    what: &str,
    future: F,
) -> Result<F::Output> {
    tokio::time::timeout(within, future)
        .await
        .map_err(|_| anyhow!("{what}: no answer within {within:?}"))
}

/// Milliseconds since the Unix epoch, with sub-millisecond precision.
pub fn wall_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------- the CA

/// The bench's federation CA and the certificates it issues.
#[derive(Debug, Clone)]
pub struct Ca {
    dir: PathBuf,
    certs: PathBuf,
}

impl Ca {
    pub fn new(root: &Path) -> Result<Ca> {
        let dir = root.join("ca");
        identity::ca_init(FEDERATION, &dir, 30, false).context("ca init")?;
        Ok(Ca {
            certs: root.join("certs"),
            dir,
        })
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join(identity::CA_CERT_FILE)
    }

    /// Issues a certificate for `node_id` (DNS localhost, IP 127.0.0.1):
    /// returns the certificate and key paths.
    pub fn issue(&self, node_id: &str) -> Result<(PathBuf, PathBuf)> {
        let id = NodeId::parse(node_id).map_err(|e| anyhow!("node id {node_id}: {e}"))?;
        let files = identity::ca_issue(
            &self.dir,
            &id,
            &["localhost".to_owned()],
            &["127.0.0.1".parse()?],
            30,
            &self.certs,
            true,
        )
        .with_context(|| format!("ca issue {node_id}"))?;
        Ok((files.cert_path, files.key_path))
    }

    /// A fresh certificate for `node_id`, loaded as a node loads its own.
    pub fn material(&self, node_id: &str) -> Result<TlsMaterial> {
        let (cert, key) = self.issue(node_id)?;
        let id = NodeId::parse(node_id).map_err(|e| anyhow!("node id {node_id}: {e}"))?;
        identity::load_tls(&cert, &key, &self.cert(), &id)
            .with_context(|| format!("load the certificate of {node_id}"))
    }
}

// ---------------------------------------------------------------- a node

/// One `liaison-node` process with its own directory. Dropping it kills
/// the process.
#[derive(Debug)]
pub struct NodeProc {
    pub node_id: String,
    dir: PathBuf,
    data_dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    listen: String,
    limits: BTreeMap<String, u64>,
    bins: Arc<Bins>,
    child: Option<Child>,
    federation_addr: Option<SocketAddr>,
}

impl NodeProc {
    fn config_path(&self) -> PathBuf {
        self.dir.join("node.toml")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    pub fn socket(&self) -> PathBuf {
        self.data_dir.join("admin.sock")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn write_config(&self) -> Result<()> {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let p = |p: &Path| q(&p.to_string_lossy());
        let mut toml = format!(
            "node_id = {}\ndisplay_name = {}\ndata_dir = {}\n\n[federation]\nlisten = {}\n\n[tls]\ncert = {}\nkey = {}\nca = {}\n\n[limits]\n",
            q(&self.node_id),
            q(&format!("{} (bench)", self.node_id)),
            p(&self.data_dir),
            q(&self.listen),
            p(&self.cert),
            p(&self.key),
            p(&self.ca),
        );
        for (key, value) in &self.limits {
            toml.push_str(&format!("{key} = {value}\n"));
        }
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.config_path(), toml).context("write node.toml")?;
        Ok(())
    }

    /// Starts the process and waits until its admin service answers
    /// `Status`; returns how long that took. A restart keeps the port.
    pub async fn start(&mut self) -> Result<Duration> {
        if self.child.is_some() {
            bail!("{} is already running", self.node_id);
        }
        self.write_config()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("open the node log")?;
        let started = Instant::now();
        let mut command = Command::new(&self.bins.node);
        // SAFETY: prctl(2) only, between fork and exec: the node is killed if
        // the bench dies (Ctrl-C, a crash), so no node outlives a run.
        unsafe {
            use std::os::unix::process::CommandExt as _;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .arg("--config")
            .arg(self.config_path())
            .env_remove("LIAISON_CONFIG")
            .env("LIAISON_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.bins.node.display()))?;
        self.child = Some(child);
        let status = loop {
            if let Some(exit) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "{} exited during start-up ({exit}); see {}",
                    self.node_id,
                    self.log_path().display()
                );
            }
            if self.socket().exists() {
                if let Ok(Ok(status)) =
                    tokio::time::timeout(Duration::from_secs(2), self.try_status()).await
                {
                    break status;
                }
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "{} did not answer on its admin socket within {START_TIMEOUT:?}; see {}",
                    self.node_id,
                    self.log_path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let elapsed = started.elapsed();
        let addr: SocketAddr = status
            .federation_addr
            .parse()
            .with_context(|| format!("Status.federation_addr `{}`", status.federation_addr))?;
        self.federation_addr = Some(addr);
        self.listen = addr.to_string();
        Ok(elapsed)
    }

    async fn try_status(&self) -> Result<pb::StatusResponse> {
        let mut admin = liaisonctl::client::connect(&self.socket()).await?;
        Ok(admin.status(pb::StatusRequest {}).await?.into_inner())
    }

    /// Stops the node with SIGTERM; returns how long it took to exit.
    pub fn stop(&mut self) -> Result<Duration> {
        let Some(mut child) = self.child.take() else {
            bail!("{} is not running", self.node_id);
        };
        let started = Instant::now();
        signal(child.id(), libc::SIGTERM);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!(
                        "{} stopped with {status}; see {}",
                        self.node_id,
                        self.log_path().display()
                    );
                }
                return Ok(started.elapsed());
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} did not stop within {START_TIMEOUT:?} of SIGTERM",
                    self.node_id
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn pid(&self) -> Result<u32> {
        self.child
            .as_ref()
            .map(Child::id)
            .with_context(|| format!("{} is not running", self.node_id))
    }

    /// `https://127.0.0.1:PORT`, as peers reach it.
    pub fn endpoint(&self) -> Result<String> {
        let addr = self
            .federation_addr
            .with_context(|| format!("{} has not started yet", self.node_id))?;
        Ok(format!("https://{addr}"))
    }

    /// A client of the node's admin service (a fresh connection).
    pub async fn admin(&self) -> Result<AdminClient<Channel>> {
        timed(
            Duration::from_secs(10),
            "connect to the admin socket",
            liaisonctl::client::connect(&self.socket()),
        )
        .await?
        .with_context(|| format!("admin socket of {}", self.node_id))
    }

    /// Runs the real `liaisonctl --socket <socket> ARGS`; returns stdout, or
    /// an error with stderr if it failed.
    pub async fn ctl(&self, args: &[&str]) -> Result<String> {
        let output = timed(
            CLI_TIMEOUT,
            &format!("liaisonctl {}", args.join(" ")),
            tokio::process::Command::new(&self.bins.ctl)
                .arg("--socket")
                .arg(self.socket())
                .args(args)
                .env_remove("LIAISON_SOCKET")
                .env_remove("LIAISON_CONFIG")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await??;
        if !output.status.success() {
            bail!(
                "liaisonctl {} at {} failed ({}): {}",
                args.join(" "),
                self.node_id,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `liaisonctl -o json ARGS`: the `data` of every record.
    pub async fn ctl_json(&self, args: &[&str]) -> Result<Vec<serde_json::Value>> {
        let mut full = vec!["-o", "json"];
        full.extend_from_slice(args);
        let stdout = self.ctl(&full).await?;
        stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let mut value: serde_json::Value =
                    serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
                Ok(value["data"].take())
            })
            .collect()
    }

    /// This node's replication state for `peer` (`peer status`).
    pub async fn replication(
        &self,
        admin: &mut AdminClient<Channel>,
        peer: &str,
    ) -> Result<pb::PeerReplication> {
        let response = timed(
            Duration::from_secs(60),
            "PeerStatus",
            admin.peer_status(pb::PeerStatusRequest {
                node_id: peer.to_owned(),
            }),
        )
        .await??
        .into_inner();
        response
            .peers
            .into_iter()
            .next()
            .with_context(|| format!("{} has no peer {peer}", self.node_id))
    }

    /// Imports a roster CSV with `liaisonctl member import` (from a file).
    pub async fn import(&self, csv: &str, dir: &Path) -> Result<()> {
        let path = dir.join(format!("import-{}.csv", uuid::Uuid::now_v7()));
        std::fs::write(&path, csv)?;
        let result = self
            .ctl(&["member", "import", path.to_str().context("a UTF-8 path")?])
            .await;
        let _ = std::fs::remove_file(&path);
        result.map(|_| ())
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) on a child we spawned; no memory is involved.
    unsafe {
        libc::kill(pid, sig);
    }
}

// ---------------------------------------------------------------- a federation

/// A directory with a CA and the nodes started in it.
pub struct Cluster {
    pub root: PathBuf,
    pub ca: Ca,
    bins: Arc<Bins>,
}

impl Cluster {
    pub fn new(root: PathBuf, bins: Arc<Bins>) -> Result<Cluster> {
        std::fs::create_dir_all(&root)?;
        let ca = Ca::new(&root)?;
        Ok(Cluster { root, ca, bins })
    }

    /// Starts a node `node_id` with a fresh certificate and production
    /// limits (reconnect backoff capped at 2 s).
    pub async fn node(&self, node_id: &str) -> Result<NodeProc> {
        let (cert, key) = self.ca.issue(node_id)?;
        let dir = self.root.join(node_id);
        let mut node = NodeProc {
            node_id: node_id.to_owned(),
            data_dir: dir.join("data"),
            dir,
            cert,
            key,
            ca: self.ca.cert(),
            listen: "127.0.0.1:0".to_owned(),
            limits: BTreeMap::from([
                ("retry_delay_ms_max".to_owned(), 2000),
                // Every connection comes from 127.0.0.1.
                ("refusals_logged_per_minute".to_owned(), 10_000),
            ]),
            bins: self.bins.clone(),
            child: None,
            federation_addr: None,
        };
        node.start().await?;
        Ok(node)
    }

    /// `a` admits `b` (serving `b_serves`) and `b` admits `a`; waits until
    /// each follows the other.
    pub async fn link(&self, a: &NodeProc, b: &NodeProc, b_serves: &[&str]) -> Result<()> {
        let b_endpoint = b.endpoint()?;
        let mut args = vec!["peer", "add", &b.node_id, "--endpoint", &b_endpoint];
        for place in b_serves {
            args.extend(["--serves", place]);
        }
        a.ctl(&args).await?;
        let a_endpoint = a.endpoint()?;
        b.ctl(&["peer", "add", &a.node_id, "--endpoint", &a_endpoint])
            .await?;
        let (mut admin_a, mut admin_b) = (a.admin().await?, b.admin().await?);
        wait_for(
            Duration::from_secs(60),
            Duration::from_millis(50),
            &format!("{} and {} linked both ways", a.node_id, b.node_id),
            async || {
                let ab = a.replication(&mut admin_a, &b.node_id).await?;
                let ba = b.replication(&mut admin_b, &a.node_id).await?;
                Ok(
                    (ab.outbound_up && ab.inbound_up && ba.outbound_up && ba.inbound_up)
                        .then_some(()),
                )
            },
        )
        .await
    }

    /// `home` proposes a co-management agreement to `host` with
    /// `liaisonctl agreement propose`, and waits until `host` holds it.
    /// Returns its id; `liaisonctl agreement accept ID` at the host signs it.
    pub async fn propose(&self, home: &NodeProc, host: &NodeProc, number: &str) -> Result<String> {
        let proposed = home
            .ctl_json(&[
                "agreement",
                "propose",
                "--with",
                &host.node_id,
                "--number",
                number,
                "--from",
                "2020-01-01",
                "--until",
                "2099-12-31",
            ])
            .await?;
        let id = proposed
            .iter()
            .find_map(|d| d["agreement_id"].as_str())
            .context("agreement propose printed no agreement id")?
            .to_owned();
        wait_for(
            Duration::from_secs(60),
            Duration::from_millis(20),
            &format!("{} received agreement {number}", host.node_id),
            async || {
                Ok(host
                    .ctl_json(&["agreement", "show", &id])
                    .await
                    .ok()
                    .map(|_| ()))
            },
        )
        .await?;
        Ok(id)
    }

    /// The state of agreement `id` at `node` (`proposed`, `active`, …).
    pub async fn agreement_state(
        node: &NodeProc,
        admin: &mut AdminClient<Channel>,
        id: &str,
    ) -> Result<String> {
        let view = timed(
            Duration::from_secs(300),
            "AgreementShow",
            admin.agreement_show(pb::AgreementRef {
                agreement_id: id.to_owned(),
            }),
        )
        .await?
        .with_context(|| format!("agreement {id} at {}", node.node_id))?
        .into_inner();
        Ok(view.state)
    }
}

/// Ids of the members `node` owns (away ones only with `away`), in id order.
pub async fn owned_member_ids(admin: &mut AdminClient<Channel>, away: bool) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    loop {
        let page = timed(
            Duration::from_secs(300),
            "MemberList",
            admin.member_list(pb::MemberListRequest {
                scope: "owned".into(),
                away,
                limit: 100_000,
                offset: ids.len() as u32,
                ..Default::default()
            }),
        )
        .await??
        .into_inner();
        let n = page.members.len();
        ids.extend(page.members.into_iter().map(|m| m.member_id));
        if n == 0 || ids.len() as u64 >= page.total {
            return Ok(ids);
        }
    }
}
