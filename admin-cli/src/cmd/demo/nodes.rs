//! The demo's `liaison-node` processes: certificates, configuration files,
//! start, and a clean stop (SIGTERM, then wait).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use liaison_proto::v1 as pb;
use liaison_types::identity::{self, NodeId};

use crate::cmd::Admin;

/// How long a node may take to answer on its admin socket, or to exit
/// after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// `sun_path` holds 108 bytes with the terminating NUL.
const SOCKET_PATH_MAX: usize = 107;

/// The federation name of the demo's CA.
pub const FEDERATION: &str = "gansu";

/// One region of the demo.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    pub node_id: &'static str,
    pub display_name: &'static str,
    pub name: &'static str,
    /// The place codes it serves, as its peers record them.
    pub serves: &'static [&'static str],
}

pub const PINGLIANG: Region = Region {
    node_id: "pingliang",
    display_name: "平凉",
    name: "Pingliang",
    serves: &["6208"],
};

pub const LANZHOU: Region = Region {
    node_id: "lanzhou",
    display_name: "兰州",
    name: "Lanzhou",
    serves: &["6201"],
};

pub const XIAN: Region = Region {
    node_id: "xian",
    display_name: "西安",
    name: "Xi'an",
    serves: &["6101"],
};

pub const REGIONS: [Region; 3] = [PINGLIANG, LANZHOU, XIAN];

/// `liaison-node`, next to the running `liaisonctl`.
pub fn node_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find the path of liaisonctl itself")?;
    let dir = me
        .parent()
        .context("liaisonctl's own path has no directory")?;
    let node = dir.join("liaison-node");
    if !node.is_file() {
        bail!(
            "the demo runs liaison-node, which is not next to liaisonctl ({} is missing): build both with `cargo build --release` (or `cargo build` for a debug build), then run target/release/liaisonctl demo",
            node.display()
        );
    }
    Ok(node)
}

/// The files of one node in the demo's state directory:
/// `<dir>/<node_id>/{node.toml, certs/, data/, node.log}`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Layout {
    pub fn of(state_dir: &Path, region: &Region) -> Layout {
        let dir = state_dir.join(region.node_id);
        Layout {
            config: dir.join("node.toml"),
            socket: dir.join("data").join("admin.sock"),
            log: dir.join("node.log"),
            dir,
        }
    }

    /// Refuses a state directory whose admin socket paths are too long for
    /// a Unix socket.
    pub fn check_socket_path(&self) -> anyhow::Result<()> {
        let len = self.socket.as_os_str().len();
        if len > SOCKET_PATH_MAX {
            bail!(
                "the admin socket {} would be {len} bytes long, more than a Unix socket path may be ({SOCKET_PATH_MAX}): choose a shorter --keep DIR",
                self.socket.display()
            );
        }
        Ok(())
    }
}

/// Creates the federation CA in `<dir>/ca`.
pub fn make_ca(state_dir: &Path) -> anyhow::Result<PathBuf> {
    let ca_dir = state_dir.join("ca");
    identity::ca_init(FEDERATION, &ca_dir, 365, false)
        .with_context(|| format!("cannot create the federation CA in {}", ca_dir.display()))?;
    Ok(ca_dir)
}

/// Issues the node's certificate (for 127.0.0.1 and localhost), copies the
/// CA certificate next to it, and writes `node.toml` as `liaisonctl init`
/// does, listening on 127.0.0.1 port 0, with quick link retries.
pub fn prepare(ca_dir: &Path, layout: &Layout, region: &Region) -> anyhow::Result<()> {
    let node_id = NodeId::parse(region.node_id)?;
    let certs = layout.dir.join("certs");
    identity::ca_issue(
        ca_dir,
        &node_id,
        &["localhost".to_owned()],
        &["127.0.0.1".parse().context("127.0.0.1 is an address")?],
        365,
        &certs,
        false,
    )
    .with_context(|| format!("cannot issue the certificate of {}", region.node_id))?;
    fs::copy(
        ca_dir.join(identity::CA_CERT_FILE),
        certs.join(identity::CA_CERT_FILE),
    )
    .with_context(|| format!("cannot copy ca.crt into {}", certs.display()))?;
    let mut config =
        liaison_types::config::example(region.node_id, region.display_name, "127.0.0.1:0");
    config.push_str(
        "\n# The demo's nodes start within a second of each other: retry links quickly.\n[limits]\nretry_delay_ms_max = 2000\nheartbeat_ms = 5000\n",
    );
    fs::write(&layout.config, config)
        .with_context(|| format!("cannot write {}", layout.config.display()))?;
    Ok(())
}

/// A running `liaison-node`. Dropping it stops the process (SIGTERM, wait).
#[derive(Debug)]
pub struct Node {
    pub region: Region,
    pub layout: Layout,
    /// The federation address it is bound to, `127.0.0.1:PORT`.
    pub addr: String,
    pub admin: Admin,
    process: Process,
}

impl Node {
    /// Starts the node on its `node.toml` (in its own process group, so a
    /// Ctrl-C in the terminal reaches only the demo, which stops the nodes
    /// itself), waits until its admin service answers, and rewrites the
    /// config to listen on the port it got, so a restart keeps its endpoint.
    pub async fn start(binary: &Path, region: Region, layout: Layout) -> anyhow::Result<Node> {
        use std::os::unix::process::CommandExt;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&layout.log)
            .with_context(|| format!("cannot open {}", layout.log.display()))?;
        let stderr = log.try_clone()?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&layout.config)
            .env_remove("LIAISON_CONFIG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut process = Process {
            node_id: region.node_id,
            log: layout.log.clone(),
            child: Some(child),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let (admin, status) = loop {
            if let Some(exit) = process.exited() {
                bail!(
                    "liaison-node {} exited during start-up ({exit}); the end of its log {}:\n{}",
                    region.node_id,
                    layout.log.display(),
                    tail(&layout.log, 20)
                );
            }
            if layout.socket.exists() {
                if let Ok(Ok(answer)) = tokio::time::timeout(Duration::from_secs(2), async {
                    let mut admin = liaisonctl::client::connect(&layout.socket).await?;
                    let status = admin.status(pb::StatusRequest {}).await?.into_inner();
                    anyhow::Ok((admin, status))
                })
                .await
                {
                    break answer;
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "liaison-node {} did not answer on its admin socket {} within {START_TIMEOUT:?}; see its log {}",
                    region.node_id,
                    layout.socket.display(),
                    layout.log.display()
                );
            }
            tokio::time::sleep(POLL).await;
        };
        if status.node_id != region.node_id {
            bail!(
                "the node on {} says it is {}, not {}",
                layout.socket.display(),
                status.node_id,
                region.node_id
            );
        }
        let config = fs::read_to_string(&layout.config)?;
        let pinned = config.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{}\"", status.federation_addr),
        );
        if pinned != config {
            fs::write(&layout.config, pinned)
                .with_context(|| format!("cannot write {}", layout.config.display()))?;
        }
        Ok(Node {
            region,
            layout,
            addr: status.federation_addr,
            admin,
            process,
        })
    }

    /// `https://127.0.0.1:PORT`, as peers reach it.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops the node: SIGTERM, then wait for it to exit (SIGKILL after
    /// [`STOP_TIMEOUT`]). Returns its exit status; `None` if not running.
    pub fn stop(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.process.stop()
    }
}

#[derive(Debug)]
struct Process {
    node_id: &'static str,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    fn stop(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        terminate(child.id());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "liaison-node {} did not stop within {STOP_TIMEOUT:?} of SIGTERM and was killed; see its log {}",
                    self.node_id,
                    self.log.display()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("liaisonctl: {error:#}");
        }
    }
}

/// Sends SIGTERM through kill(1): liaisonctl has no binding to kill(2).
fn terminate(pid: u32) {
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !sent {
        eprintln!("liaisonctl: could not send SIGTERM to process {pid} (is kill(1) on the PATH?); it will be killed after {STOP_TIMEOUT:?}");
    }
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether a node still answers on `socket` (a previous demo still running).
pub async fn answers(socket: &Path) -> bool {
    if !socket.exists() {
        return false;
    }
    tokio::time::timeout(Duration::from_secs(2), async {
        let mut admin = liaisonctl::client::connect(socket).await.ok()?;
        admin.status(pb::StatusRequest {}).await.ok()
    })
    .await
    .ok()
    .flatten()
    .is_some()
}
