//! One test's federation: a temporary directory, a CA, its nodes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use liaison_types::identity::{self, NodeId, TlsMaterial};

use super::dump::Registry;
use super::{
    binaries, run_with_timeout, wait_for, wait_until, Launch, NodeConfig, TestNode, FEDERATION,
};

/// The certificate and key of one node, and the CA that issued them.
#[derive(Debug, Clone)]
pub struct NodeCerts {
    pub node_id: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl NodeCerts {
    /// The certificate's fingerprint, `sha256:<hex>`, as `liaisonctl ca
    /// issue` prints it and `peer add --fingerprint` takes it.
    pub fn fingerprint(&self) -> String {
        let certs = identity::read_certs(&self.cert)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.cert.display()));
        identity::fingerprint(&certs[0])
    }

    /// The certificate, key and CA loaded as a node loads its own, for a
    /// client or server built in this process.
    pub fn tls_material(&self) -> TlsMaterial {
        let id = NodeId::parse(&self.node_id).expect("a valid node id");
        identity::load_tls(&self.cert, &self.key, &self.ca, &id)
            .unwrap_or_else(|e| panic!("load the certificate of {}: {e}", self.node_id))
    }
}

/// One test's federation: a temporary directory, a CA made by
/// `liaison_types::identity::ca_init` (what `liaisonctl ca init` runs), and
/// the nodes started in it, as its [`Launch`] says.
///
/// The directory is deleted at the end of the test unless the test failed
/// or `LIAISON_TEST_KEEP=1`; then its path is printed. A federation made
/// [`Federation::in_dir`] leaves its directory to the caller.
#[derive(Debug)]
pub struct Federation {
    test: String,
    federation: String,
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    ca_dir: PathBuf,
    launch: Arc<Launch>,
    registry: Arc<Registry>,
}

impl Federation {
    /// A federation named [`FEDERATION`] for the test `test`.
    pub fn new(test: &str) -> Federation {
        Federation::named(test, FEDERATION)
    }

    /// A federation with another name, or another CA of the same name (an
    /// impostor CA) when `federation` is [`FEDERATION`].
    pub fn named(test: &str, federation: &str) -> Federation {
        let dir = tempfile::Builder::new()
            .prefix(&format!("liaison-{test}-"))
            .tempdir()
            .expect("cannot create a temporary directory");
        let path = dir.path().to_owned();
        if keep_requested() {
            eprintln!(
                "liaison-tests: {test}: federation `{federation}` in {}",
                path.display()
            );
        }
        let mut fed = Federation::in_dir(&path, federation, Launch::tests());
        fed.test = test.to_owned();
        fed.dir = Some(dir);
        fed
    }

    /// A federation `federation` in `dir` (created if missing), whose nodes
    /// run as `launch` says; the caller owns the directory: it is neither
    /// deleted nor kept here.
    pub fn in_dir(dir: &Path, federation: &str, launch: Launch) -> Federation {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let ca_dir = dir.join("ca");
        identity::ca_init(federation, &ca_dir, 30, false).expect("ca init");
        Federation {
            test: dir.display().to_string(),
            federation: federation.to_owned(),
            dir: None,
            path: dir.to_owned(),
            ca_dir,
            launch: Arc::new(launch),
            registry: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.path
    }

    pub fn federation_name(&self) -> &str {
        &self.federation
    }

    /// The CA certificate (`ca.crt`).
    pub fn ca_cert(&self) -> PathBuf {
        self.ca_dir.join(identity::CA_CERT_FILE)
    }

    /// Issues a certificate for `node_id` with `liaison_types::identity::ca_issue`
    /// (what `liaisonctl ca issue` runs), for DNS `localhost` and IP
    /// 127.0.0.1, into `<dir>/certs/` (a second issue replaces the first).
    pub fn issue(&self, node_id: &str) -> NodeCerts {
        let id = NodeId::parse(node_id).expect("a valid node id");
        let out = self.path.join("certs");
        let files = identity::ca_issue(
            &self.ca_dir,
            &id,
            &["localhost".to_owned()],
            &["127.0.0.1".parse().expect("an IP")],
            30,
            &out,
            true,
        )
        .unwrap_or_else(|e| panic!("ca issue {node_id}: {e}"));
        NodeCerts {
            node_id: node_id.to_owned(),
            cert: files.cert_path,
            key: files.key_path,
            ca: self.ca_cert(),
        }
    }

    /// A configuration for `node_id`, with a freshly issued certificate:
    /// directory `<dir>/<node_id>`, data in `data/`, federation port 0 on
    /// 127.0.0.1, and the limits of the federation's [`Launch`] (for tests,
    /// short heartbeat and backoff so links recover quickly).
    pub fn config(&self, node_id: &str) -> NodeConfig {
        let certs = self.issue(node_id);
        let dir = self.path.join(node_id);
        std::fs::create_dir_all(&dir).expect("create the node directory");
        NodeConfig {
            node_id: node_id.to_owned(),
            display_name: display_name_of(node_id),
            data_dir: dir.join("data"),
            dir,
            listen: "127.0.0.1:0".to_owned(),
            cert: certs.cert,
            key: certs.key,
            ca: certs.ca,
            crl: None,
            admin_socket: None,
            limits: self.launch.limits.clone(),
            extra: String::new(),
        }
    }

    /// Starts a node from `config` and waits until its admin service answers.
    pub async fn start(&self, config: NodeConfig) -> TestNode {
        let mut node = TestNode::new(config, self.launch.clone(), self.registry.clone());
        node.start().await;
        node
    }

    /// [`Federation::config`] then [`Federation::start`].
    pub async fn node(&self, node_id: &str) -> TestNode {
        self.start(self.config(node_id)).await
    }

    /// Makes `a` and `b` peers of each other (`liaisonctl peer add` on both
    /// sides) and waits until each pulls from the other.
    pub async fn link(&self, a: &TestNode, b: &TestNode) {
        a.peer(b);
        b.peer(a);
        self.wait_linked(a, b).await;
    }

    /// [`Federation::link`], `home` recording `host` as serving `place`
    /// (`peer add --serves`), so that agreements can cover members away
    /// there.
    pub async fn link_serving(&self, home: &TestNode, host: &TestNode, place: &str) {
        home.peer_serving(host, place);
        host.peer(home);
        self.wait_linked(home, host).await;
    }

    /// `home` (the outflow party) proposes a co-management agreement to
    /// `host` covering its members away to the places `host` serves, from
    /// 2020 to 2099; waits until `host` holds the proposal. Returns its id.
    pub async fn propose(&self, home: &TestNode, host: &TestNode, number: &str) -> String {
        let id = home.propose_agreement(&host.node_id, number);
        self.wait_until(
            self.launch.wait,
            &format!("{} received agreement {number}", host.node_id),
            async || host.agreement(&id).is_some(),
        )
        .await;
        id
    }

    /// [`Federation::propose`], then `host` accepts; waits until the
    /// agreement is active on both sides. Returns its id.
    pub async fn agree(&self, home: &TestNode, host: &TestNode, number: &str) -> String {
        let id = self.propose(home, host, number).await;
        host.ctl_ok(&["agreement", "accept", &id]);
        let active = |node: &TestNode| {
            node.agreement(&id)
                .is_some_and(|a| a["state"].as_str() == Some("active"))
        };
        self.wait_until(
            self.launch.wait,
            &format!("agreement {number} active on both sides"),
            async || active(home) && active(host),
        )
        .await;
        id
    }

    /// Waits until `a` and `b` each hold a follow stream on the other, as
    /// both sides' peer lists report it.
    pub async fn wait_linked(&self, a: &TestNode, b: &TestNode) {
        let what = format!("{} and {} linked both ways", a.node_id, b.node_id);
        self.wait_until(self.launch.wait, &what, async || {
            let up = |from: &TestNode, to: &TestNode| {
                from.peer_info(&to.node_id)
                    .is_some_and(|p| p.outbound_up && p.inbound_up)
            };
            up(a, b) && up(b, a)
        })
        .await;
    }

    /// A client TLS configuration that presents `who`'s certificate (from
    /// whichever CA issued it), trusts this federation's CA, and expects
    /// the server to be `server` (the node id its certificate must name).
    pub fn client_tls(&self, who: &NodeCerts, server: &str) -> Arc<rustls::ClientConfig> {
        let mut material = who.tls_material();
        material.ca_certs = identity::read_certs(&self.ca_cert()).expect("read ca.crt");
        material.federation = self.federation.clone();
        let server = NodeId::parse(server).expect("a valid server node id");
        liaison_node::tls::client_config(&material, &server, None).expect("client TLS config")
    }

    /// A client TLS configuration that trusts this federation's CA but
    /// presents no certificate.
    pub fn anonymous_tls(&self) -> Arc<rustls::ClientConfig> {
        let ca = identity::read_certs(&self.ca_cert()).expect("read ca.crt");
        liaison_node::tls::client_config_without_cert(&ca).expect("client TLS config")
    }

    /// Runs `liaison-node` on `config` (written to `<node dir>/node.toml`)
    /// and waits for it to exit; kills it and panics if it is still running
    /// after `within`. For configurations that must be refused.
    pub fn run_node_to_exit(&self, config: &NodeConfig, within: Duration) -> Output {
        let path = config.write();
        let mut command = Command::new(&binaries().node);
        command
            .arg("--config")
            .arg(&path)
            .env_remove("LIAISON_CONFIG")
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .env("LIAISON_LOG", "info");
        run_with_timeout(&mut command, within)
    }

    /// The state of every node, as a failed wait prints it.
    pub fn dump(&self) -> String {
        self.registry.dump()
    }

    /// See [`wait_for`]; dumps every node of this federation on timeout.
    pub async fn wait_for<T>(
        &self,
        within: Duration,
        what: &str,
        probe: impl AsyncFnMut() -> Option<T>,
    ) -> T {
        wait_for(within, what, || self.registry.dump(), probe).await
    }

    /// See [`wait_until`]; dumps every node of this federation on timeout.
    pub async fn wait_until(
        &self,
        within: Duration,
        what: &str,
        condition: impl AsyncFnMut() -> bool,
    ) {
        wait_until(within, what, || self.registry.dump(), condition).await
    }
}

impl Drop for Federation {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if let Some(dir) = self.dir.take() {
            if failed || keep_requested() {
                let path = dir.keep();
                eprintln!(
                    "liaison-tests: {}: kept {} ({})",
                    self.test,
                    path.display(),
                    if failed {
                        "the test failed"
                    } else {
                        "LIAISON_TEST_KEEP=1"
                    }
                );
            }
        }
    }
}

fn keep_requested() -> bool {
    std::env::var("LIAISON_TEST_KEEP").is_ok_and(|v| v == "1")
}

fn display_name_of(node_id: &str) -> String {
    match node_id {
        "pingliang" => "平凉".into(),
        "lanzhou" => "兰州".into(),
        "tianshui" => "天水".into(),
        "xian" => "西安".into(),
        "jiuquan" => "酒泉".into(),
        other => format!("{other} node"),
    }
}
