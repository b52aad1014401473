//! A node's configuration: the `node.toml` a test writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The contents of a `node.toml`, editable before the node starts.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub node_id: String,
    pub display_name: String,
    /// The node's own directory: `node.toml`, `node.log`.
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub listen: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    /// `tls.crl`, if any.
    pub crl: Option<PathBuf>,
    /// `admin.socket`; `None` leaves the default (`data_dir/admin.sock`).
    pub admin_socket: Option<PathBuf>,
    /// The `[limits]` table.
    pub limits: BTreeMap<String, u64>,
    /// Raw TOML appended at the end of the file.
    pub extra: String,
}

impl NodeConfig {
    /// Limits for tests: links notice a loss within 1.5 s and retry at
    /// least every 2 s. Every node's connection comes from 127.0.0.1, so
    /// the per-address cap on audited refusals is raised; a test of that
    /// cap sets its own.
    pub fn test_limits() -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("heartbeat_ms".to_owned(), 500),
            ("retry_delay_ms_max".to_owned(), 2000),
            ("refusals_logged_per_minute".to_owned(), 10_000),
        ])
    }

    /// A node whose clock the test may move (`[testing]
    /// allow_clock_override`, then `liaisonctl debug clock`).
    pub fn clockable(mut self) -> NodeConfig {
        self.extra = "[testing]\nallow_clock_override = true".into();
        self
    }

    /// A node with the metrics endpoint on a free port of localhost.
    pub fn with_metrics(mut self) -> NodeConfig {
        self.extra
            .push_str("\n[metrics]\nenabled = true\nlisten = \"127.0.0.1:0\"\n");
        self
    }

    /// A node with the report-in page on a free port of localhost (plain
    /// HTTP), and `settings`: more lines of `[report_in]`.
    pub fn with_report_in(mut self, settings: &str) -> NodeConfig {
        self.extra.push_str(&format!(
            "\n[report_in]\nenabled = true\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\n{settings}\n"
        ));
        self
    }

    /// Sets one `[limits]` entry.
    pub fn limit(mut self, key: &str, value: u64) -> NodeConfig {
        self.limits.insert(key.to_owned(), value);
        self
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("node.toml")
    }

    /// The admin socket the node will listen on.
    pub fn socket(&self) -> PathBuf {
        self.admin_socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("admin.sock"))
    }

    pub fn to_toml(&self) -> String {
        let s = |text: &str| toml_string(text);
        let p = |path: &Path| toml_string(&path.to_string_lossy());
        let mut out = format!(
            "node_id = {}\ndisplay_name = {}\ndata_dir = {}\n\n[federation]\nlisten = {}\n\n[tls]\ncert = {}\nkey = {}\nca = {}\n",
            s(&self.node_id),
            s(&self.display_name),
            p(&self.data_dir),
            s(&self.listen),
            p(&self.cert),
            p(&self.key),
            p(&self.ca),
        );
        if let Some(crl) = &self.crl {
            out.push_str(&format!("crl = {}\n", p(crl)));
        }
        if let Some(socket) = &self.admin_socket {
            out.push_str(&format!("\n[admin]\nsocket = {}\n", p(socket)));
        }
        if !self.limits.is_empty() {
            out.push_str("\n[limits]\n");
            for (key, value) in &self.limits {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
        if !self.extra.is_empty() {
            out.push('\n');
            out.push_str(&self.extra);
            out.push('\n');
        }
        out
    }

    /// Writes `node.toml` into the node's directory and returns its path.
    pub fn write(&self) -> PathBuf {
        std::fs::create_dir_all(&self.dir).expect("create the node directory");
        let path = self.path();
        std::fs::write(&path, self.to_toml()).expect("write node.toml");
        path
    }
}

/// A TOML basic string. JSON string escapes are valid TOML escapes.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}
