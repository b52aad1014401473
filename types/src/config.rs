//! The node's configuration file, `node.toml`.
//!
//! Relative paths in the file are resolved against the directory that holds
//! the file, so a deployment directory can be moved as a whole.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::identity::NodeId;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The parsed and checked configuration of one node.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_id: NodeId,
    pub display_name: String,
    pub data_dir: PathBuf,
    pub federation_listen: SocketAddr,
    /// The endpoint peers should use to reach this node, told to nodes that
    /// are not yet peers so their operators can admit it. Optional.
    pub federation_advertise: Option<String>,
    /// `[tls]`: the files as named at start. A reload reads the section
    /// again (the node's credentials record the files in force).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub tls_ca: PathBuf,
    /// A certificate revocation list (PEM or DER) issued by the federation
    /// CA (`liaisonctl ca crl`): peers whose certificate it lists are
    /// refused. Read at start and at every reload; optional.
    pub tls_crl: Option<PathBuf>,
    pub admin_socket: PathBuf,
    /// An OS group allowed on the admin socket (mode 0660); none means 0600.
    pub admin_group: Option<String>,
    pub log_format: LogFormat,
    /// The zone people's times are shown in, and the node's calendar days
    /// counted in (`time_zone`, an IANA name; default Asia/Shanghai).
    pub time_zone: chrono_tz::Tz,
    pub limits: Limits,
    pub transfers: Transfers,
    pub testing: Testing,
    /// Where the Prometheus endpoint listens (plain HTTP, `GET /metrics`);
    /// `None`: no endpoint (the default).
    pub metrics_listen: Option<SocketAddr>,
    /// The report-in page (一键报到) members open from a station's QR code;
    /// `None`: no page (the default).
    pub report_in: Option<ReportIn>,
    /// The file this was read from ([`Config::load`]), which a reload reads
    /// again for its `[tls]` section; `None` when parsed from text.
    pub file: Option<PathBuf>,
}

/// Where `[report_in]` listens when enabled without an address.
pub const REPORT_IN_LISTEN_DEFAULT: &str = "127.0.0.1:8470";

/// The report-in page's listener and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportIn {
    pub listen: SocketAddr,
    /// The address members' phones open, without a trailing `/`; a
    /// station's QR code is `{public_url}/s/{station code}`.
    pub public_url: String,
    /// HTTPS with this certificate and key (PEM); `None`: plain HTTP, which
    /// is accepted only on a loopback address (behind a reverse proxy).
    pub tls: Option<ReportInTls>,
    /// Behind a reverse proxy: the client's address is the last entry of
    /// `X-Forwarded-For` (the proxy's own), not the connection's.
    pub behind_proxy: bool,
    /// Submissions accepted from one client address per hour.
    pub per_address_per_hour: u32,
    /// Submissions accepted for one phone number per day.
    pub per_phone_per_day: u32,
    /// Days a rejected claim is kept (with its personal data) before it is
    /// deleted.
    pub rejected_kept_days: u32,
}

/// Days a rejected report-in claim is kept when `[report_in]` names none.
pub const REJECTED_KEPT_DAYS_DEFAULT: u32 = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct ReportInTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where `[metrics]` listens when enabled without an address: localhost
/// only, since the endpoint has no authentication.
pub const METRICS_LISTEN_DEFAULT: &str = "127.0.0.1:9464";

/// Rules of the introduction letter (介绍信).
#[derive(Debug, Clone, PartialEq, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Transfers {
    /// Validity of a letter when the operator names none. Default 30 days.
    pub valid_days_default: u32,
    /// No letter is valid longer, extensions included. Default 90 days
    /// (3 months); some provinces allow 180 across provinces.
    pub valid_days_max: u32,
}

impl Default for Transfers {
    fn default() -> Self {
        Transfers {
            valid_days_default: 30,
            valid_days_max: 90,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Bounds on what the federation port accepts (docs/replication.md, Links,
/// heartbeats and limits). Each has a default that suits a province of a
/// few dozen nodes, and none may be zero.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// A TLS handshake not finished in this time is dropped, however
    /// slowly the client keeps sending. Default 5 s.
    pub handshake_timeout_ms: u64,
    /// Connections in their TLS handshake (no certificate verified yet),
    /// all sources together. When full, the oldest of them is dropped to
    /// admit a new one. Default 256.
    pub handshakes_max: usize,
    /// Connections in their TLS handshake from one source address (an
    /// IPv6 source counts by its /64). A new one beyond it drops that
    /// address's oldest. Default 8.
    pub handshakes_per_address_max: usize,
    /// Open federation connections whose certificate was verified, all
    /// peers together; connections in their handshake are not counted
    /// here. Default 512.
    pub connections_max: usize,
    /// Concurrent gRPC streams on one connection. Default 16.
    pub streams_per_connection_max: u32,
    /// Largest message accepted or sent, in bytes. Default 4 MiB.
    pub message_bytes_max: usize,
    /// Events per `Pull` batch. Default 1000.
    pub batch_events_max: u32,
    /// Audit entries for refused attempts per source address and minute,
    /// and ten times as many from all sources together; the rest are
    /// counted and summarized. Default 10.
    pub refusals_logged_per_minute: u32,
    /// Cap of the reconnect backoff. Default 60 s.
    pub retry_delay_ms_max: u64,
    /// How often a follow stream sends an empty batch while idle, so both
    /// sides notice a dead link. Default 15 s.
    pub heartbeat_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout_ms: 5_000,
            handshakes_max: 256,
            handshakes_per_address_max: 8,
            connections_max: 512,
            streams_per_connection_max: 16,
            message_bytes_max: 4 * 1024 * 1024,
            batch_events_max: 1000,
            refusals_logged_per_minute: 10,
            retry_delay_ms_max: 60_000,
            heartbeat_ms: 15_000,
        }
    }
}

impl Limits {
    /// The limits a node cannot run with: a zero (each bounds something
    /// that needs at least one), a per-address cap above the pool it caps.
    fn check(&self) -> Result<(), String> {
        let at_least_one = [
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("handshakes_max", self.handshakes_max as u64),
            (
                "handshakes_per_address_max",
                self.handshakes_per_address_max as u64,
            ),
            ("connections_max", self.connections_max as u64),
            (
                "streams_per_connection_max",
                u64::from(self.streams_per_connection_max),
            ),
            ("message_bytes_max", self.message_bytes_max as u64),
            ("batch_events_max", u64::from(self.batch_events_max)),
            (
                "refusals_logged_per_minute",
                u64::from(self.refusals_logged_per_minute),
            ),
            ("retry_delay_ms_max", self.retry_delay_ms_max),
            ("heartbeat_ms", self.heartbeat_ms),
        ];
        if let Some((name, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(format!("limits.{name} must be at least 1"));
        }
        if self.handshakes_per_address_max > self.handshakes_max {
            return Err(format!(
                "limits.handshakes_per_address_max ({}) must not exceed limits.handshakes_max ({})",
                self.handshakes_per_address_max, self.handshakes_max
            ));
        }
        Ok(())
    }
}

/// Switches for test deployments only.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Testing {
    /// Lets `liaisonctl debug clock` move this node's clock. Never in production.
    pub allow_clock_override: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    node_id: String,
    display_name: Option<String>,
    time_zone: Option<String>,
    data_dir: PathBuf,
    federation: RawFederation,
    tls: RawTls,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    transfers: Transfers,
    #[serde(default)]
    testing: Testing,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    report_in: RawReportIn,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawReportIn {
    enabled: bool,
    listen: Option<String>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    behind_proxy: bool,
    per_address_per_hour: u32,
    per_phone_per_day: u32,
    rejected_kept_days: u32,
}

impl Default for RawReportIn {
    fn default() -> Self {
        RawReportIn {
            enabled: false,
            listen: None,
            public_url: None,
            tls_cert: None,
            tls_key: None,
            behind_proxy: false,
            per_address_per_hour: 20,
            per_phone_per_day: 3,
            rejected_kept_days: REJECTED_KEPT_DAYS_DEFAULT,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default)]
    enabled: bool,
    listen: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFederation {
    listen: String,
    advertise: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    crl: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    socket: Option<PathBuf>,
    group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    format: LogFormat,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Absolute paths in logs and `status`, whatever the working directory.
        let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_owned());
        let mut config = Config::parse(&text, path, &base)?;
        config.file = Some(std::path::absolute(path).unwrap_or_else(|_| path.to_owned()));
        Ok(config)
    }

    /// The settings of `newer` (the same file read again) that differ from
    /// these, other than the `[tls]` section's, by their names in the file:
    /// a reload puts only `[tls]` in force, the rest needs a restart.
    pub fn restart_needed(&self, newer: &Config) -> Vec<&'static str> {
        // Every field named, so a new setting cannot be forgotten here.
        let Config {
            node_id,
            display_name,
            data_dir,
            federation_listen,
            federation_advertise,
            tls_cert: _,
            tls_key: _,
            tls_ca: _,
            tls_crl: _,
            admin_socket,
            admin_group,
            log_format,
            time_zone,
            limits,
            transfers,
            testing,
            metrics_listen,
            report_in,
            file: _,
        } = self;
        let mut changed = Vec::new();
        let mut check = |name, same: bool| {
            if !same {
                changed.push(name);
            }
        };
        check("node_id", *node_id == newer.node_id);
        check("display_name", *display_name == newer.display_name);
        check("data_dir", *data_dir == newer.data_dir);
        check(
            "federation.listen",
            *federation_listen == newer.federation_listen,
        );
        check(
            "federation.advertise",
            *federation_advertise == newer.federation_advertise,
        );
        check("admin.socket", *admin_socket == newer.admin_socket);
        check("admin.group", *admin_group == newer.admin_group);
        check("log.format", *log_format == newer.log_format);
        check("time_zone", *time_zone == newer.time_zone);
        check("[limits]", *limits == newer.limits);
        check("[transfers]", *transfers == newer.transfers);
        check("[testing]", *testing == newer.testing);
        check("[metrics]", *metrics_listen == newer.metrics_listen);
        check("[report_in]", *report_in == newer.report_in);
        changed
    }

    /// Parses `text` as if read from `path`; relative paths are taken from `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned() + &span_hint(text, e.span()),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let node_id = NodeId::parse(&raw.node_id).map_err(|e| invalid(format!("node_id: {e}")))?;
        let federation_listen: SocketAddr = raw.federation.listen.parse().map_err(|_| {
            invalid(format!(
                "federation.listen `{}` is not an address with a port, such as 0.0.0.0:7401",
                raw.federation.listen
            ))
        })?;
        let resolve = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let data_dir = resolve(&raw.data_dir);
        let admin_socket = raw
            .admin
            .socket
            .as_deref()
            .map(resolve)
            .unwrap_or_else(|| data_dir.join("admin.sock"));
        let limits = raw.limits;
        if raw.transfers.valid_days_default == 0
            || raw.transfers.valid_days_default > raw.transfers.valid_days_max
        {
            return Err(invalid(
                "transfers.valid_days_default must be at least 1 and at most transfers.valid_days_max".into(),
            ));
        }
        let time_zone = match raw.time_zone.as_deref().map(str::trim) {
            None | Some("") => crate::time::DEFAULT_ZONE,
            Some(name) => {
                crate::time::zone(name).map_err(|e| invalid(format!("time_zone: {e}")))?
            }
        };
        limits.check().map_err(invalid)?;
        let metrics_listen = if raw.metrics.enabled {
            let listen = raw
                .metrics
                .listen
                .as_deref()
                .unwrap_or(METRICS_LISTEN_DEFAULT);
            Some(listen.parse::<SocketAddr>().map_err(|_| {
                invalid(format!(
                    "metrics.listen `{listen}` is not an address with a port, such as {METRICS_LISTEN_DEFAULT}"
                ))
            })?)
        } else {
            None
        };
        let report_in = if raw.report_in.enabled {
            Some(report_in(raw.report_in, &resolve).map_err(invalid)?)
        } else {
            None
        };
        Ok(Config {
            display_name: raw
                .display_name
                .unwrap_or_else(|| node_id.as_str().to_owned()),
            node_id,
            data_dir,
            federation_listen,
            federation_advertise: raw.federation.advertise.filter(|a| !a.is_empty()),
            tls_cert: resolve(&raw.tls.cert),
            tls_key: resolve(&raw.tls.key),
            tls_ca: resolve(&raw.tls.ca),
            tls_crl: raw.tls.crl.as_deref().map(resolve),
            admin_socket,
            admin_group: raw.admin.group.filter(|g| !g.is_empty()),
            log_format: raw.log.format,
            time_zone,
            limits,
            transfers: raw.transfers,
            testing: raw.testing,
            metrics_listen,
            report_in,
            file: None,
        })
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("liaison.db")
    }
}

fn report_in(raw: RawReportIn, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<ReportIn, String> {
    let listen_text = raw.listen.as_deref().unwrap_or(REPORT_IN_LISTEN_DEFAULT);
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        format!(
            "report_in.listen `{listen_text}` is not an address with a port, such as {REPORT_IN_LISTEN_DEFAULT}"
        )
    })?;
    let public_url = raw
        .public_url
        .as_deref()
        .map(|u| u.trim().trim_end_matches('/'))
        .unwrap_or_default()
        .to_owned();
    if !(public_url.starts_with("https://") || public_url.starts_with("http://"))
        || public_url.len() <= "https://".len()
    {
        return Err(
            "report_in.public_url must be the address members' phones open, such as https://dangjian.lanzhou.example/baodao".into(),
        );
    }
    let tls = match (raw.tls_cert, raw.tls_key) {
        (Some(cert), Some(key)) => Some(ReportInTls {
            cert: resolve(&cert),
            key: resolve(&key),
        }),
        (None, None) => None,
        _ => {
            return Err(
                "report_in: set both tls_cert and tls_key for HTTPS, or neither for plain HTTP behind a reverse proxy".into(),
            )
        }
    };
    if tls.is_none() && !listen.ip().is_loopback() {
        return Err(format!(
            "report_in.listen `{listen}` is not a loopback address: plain HTTP is only served to a reverse proxy on this machine; set tls_cert and tls_key to serve HTTPS there"
        ));
    }
    if raw.per_address_per_hour == 0 || raw.per_phone_per_day == 0 {
        return Err(
            "report_in.per_address_per_hour and per_phone_per_day must be at least 1".into(),
        );
    }
    if raw.rejected_kept_days == 0 || raw.rejected_kept_days > 365 {
        return Err("report_in.rejected_kept_days must be between 1 and 365".into());
    }
    Ok(ReportIn {
        listen,
        public_url,
        tls,
        behind_proxy: raw.behind_proxy,
        per_address_per_hour: raw.per_address_per_hour,
        per_phone_per_day: raw.per_phone_per_day,
        rejected_kept_days: raw.rejected_kept_days,
    })
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

/// The commented example `liaisonctl init` writes.
pub fn example(node_id: &str, display_name: &str, listen: &str) -> String {
    format!(
        r#"# Liaison node configuration. Relative paths are relative to this file.

# This node's id: [a-z][a-z0-9-]{{1,62}}. It must be the id its certificate
# names (spiffe://<federation>/node/<node_id>), issued by `liaisonctl ca issue`.
node_id = "{node_id}"
# Shown to operators and to peers.
display_name = "{display_name}"
# The zone times are shown in and calendar days are counted in (an IANA
# name). Default Asia/Shanghai.
# time_zone = "Asia/Shanghai"
# The SQLite database, the admin socket and the node's state live here.
# Created with mode 0700 if missing.
data_dir = "data"

[federation]
# Where peers connect (mutual TLS, gRPC). Port 0 picks a free port.
listen = "{listen}"
# The address other regions use to reach this node, e.g. "https://liaison.pingliang.example:7401".
# advertise = ""

[tls]
cert = "certs/{node_id}.crt"
key = "certs/{node_id}.key"
# The federation's root CA certificate.
ca = "certs/ca.crt"
# The CA's revocation list (`liaisonctl ca crl`), if you use one: peers whose
# certificate it lists are refused, and cut at the reload that brings it.
# This [tls] section, and the certificate, key, CA and list it names, are
# read again on SIGHUP or `liaisonctl reload`, without a restart.
# crl = "certs/ca.crl"

[admin]
# The operators' socket, never on the federation port. Default: data_dir/admin.sock,
# mode 0600 (only the node's own user). Name an OS group to allow its members (0660).
# socket = "data/admin.sock"
# group = "liaison-operators"

[log]
# "human" or "json".
format = "human"

# [metrics]
# A Prometheus endpoint (plain HTTP, GET /metrics), off by default. It has no
# authentication: keep it on localhost unless a firewall guards the port.
# enabled = true
# listen = "127.0.0.1:9464"

# [report_in]
# The report-in page (一键报到) members open from a service station's QR code,
# off by default. HTTPS with tls_cert and tls_key; without them plain HTTP,
# on a loopback address only, behind the department's reverse proxy
# (deploy/README.md).
# enabled = true
# listen = "127.0.0.1:8470"
# public_url = "https://dangjian.lanzhou.example/baodao"   # what QR codes open
# tls_cert = "certs/baodao.crt"
# tls_key = "certs/baodao.key"
# behind_proxy = true              # client address from X-Forwarded-For
# per_address_per_hour = 20        # submissions from one address
# per_phone_per_day = 3            # submissions for one phone number
# rejected_kept_days = 30          # a rejected claim is deleted after this

# [limits]
# handshake_timeout_ms = 5000         # TLS handshakes not done by then are dropped
# handshakes_max = 256                # connections in their TLS handshake, all sources;
#                                     # when full, the oldest is dropped for a new one
# handshakes_per_address_max = 8      # the same from one address (IPv6: one /64)
# connections_max = 512               # connections with a verified certificate
# streams_per_connection_max = 16
# message_bytes_max = 4194304
# batch_events_max = 1000             # events per Pull batch
# refusals_logged_per_minute = 10     # audit entries per source (10x in all); the rest are counted
# retry_delay_ms_max = 60000          # reconnect backoff cap
# heartbeat_ms = 15000
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(
            text,
            Path::new("/etc/liaison/node.toml"),
            Path::new("/etc/liaison"),
        )
    }

    #[test]
    fn example_parses_and_resolves_paths() {
        let config = parse(&example("pingliang", "平凉", "0.0.0.0:7401")).unwrap();
        assert_eq!(config.node_id.as_str(), "pingliang");
        assert_eq!(config.display_name, "平凉");
        assert_eq!(config.data_dir, Path::new("/etc/liaison/data"));
        assert_eq!(
            config.admin_socket,
            Path::new("/etc/liaison/data/admin.sock")
        );
        assert_eq!(config.tls_ca, Path::new("/etc/liaison/certs/ca.crt"));
        assert_eq!(config.limits.batch_events_max, 1000);
    }

    #[test]
    fn bad_values_name_the_field() {
        let text = example("pingliang", "平凉", "0.0.0.0:7401");
        let err = parse(&text.replace("\"pingliang\"", "\"Ping Liang\"")).unwrap_err();
        assert!(err.to_string().contains("node_id"), "{err}");
        let err = parse(&text.replace("0.0.0.0:7401", "nowhere")).unwrap_err();
        assert!(err.to_string().contains("federation.listen"), "{err}");
        let err = parse(&format!("{text}\nbogus = 1\n")).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn a_reload_names_the_settings_outside_tls_that_changed() {
        let text = example("pingliang", "平凉", "0.0.0.0:7401");
        let running = parse(&text).unwrap();
        assert!(running.restart_needed(&running.clone()).is_empty());
        let tls_only = parse(&text.replace("# crl = ", "crl = ")).unwrap();
        assert!(tls_only.tls_crl.is_some());
        assert!(
            running.restart_needed(&tls_only).is_empty(),
            "[tls] is reloaded"
        );
        let changed = parse(
            &text
                .replace("\"平凉\"", "\"平凉市\"")
                .replace("0.0.0.0:7401", "0.0.0.0:7402"),
        )
        .unwrap();
        assert_eq!(
            running.restart_needed(&changed),
            ["display_name", "federation.listen"]
        );
    }

    #[test]
    fn report_in_is_off_by_default_and_checked_when_on() {
        let base = example("lanzhou", "兰州", "0.0.0.0:7401");
        assert!(parse(&base).unwrap().report_in.is_none());
        let on = |section: &str| parse(&format!("{base}\n[report_in]\nenabled = true\n{section}"));
        let page = on("public_url = \"https://dj.lanzhou.example/baodao/\"")
            .unwrap()
            .report_in
            .unwrap();
        assert_eq!(page.public_url, "https://dj.lanzhou.example/baodao");
        assert_eq!(page.listen.to_string(), REPORT_IN_LISTEN_DEFAULT);
        assert!(page.tls.is_none());
        assert_eq!(page.rejected_kept_days, 30);
        let err = on("").unwrap_err().to_string();
        assert!(err.contains("public_url"), "{err}");
        let err = on("public_url = \"https://x.example\"\nlisten = \"0.0.0.0:8470\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("loopback"), "{err}");
        let err = on("public_url = \"https://x.example\"\ntls_cert = \"a.crt\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls_key"), "{err}");
        let https = on("public_url = \"https://x.example\"\nlisten = \"0.0.0.0:8443\"\ntls_cert = \"c/a.crt\"\ntls_key = \"c/a.key\"")
            .unwrap()
            .report_in
            .unwrap();
        assert_eq!(https.tls.unwrap().key, Path::new("/etc/liaison/c/a.key"));
    }

    #[test]
    fn limits_default_and_are_checked() {
        let text = example("pingliang", "平凉", "0.0.0.0:7401");
        let limits = parse(&text).unwrap().limits;
        assert_eq!(limits.handshake_timeout_ms, 5_000);
        assert_eq!(
            (limits.handshakes_max, limits.handshakes_per_address_max),
            (256, 8)
        );
        let with = |table: &str| parse(&format!("{text}\n[limits]\n{table}\n"));
        let set = with("handshakes_max = 4\nhandshakes_per_address_max = 2").unwrap();
        assert_eq!(set.limits.handshakes_max, 4);
        assert_eq!(set.limits.handshakes_per_address_max, 2);
        for zero in [
            "handshake_timeout_ms",
            "handshakes_max",
            "handshakes_per_address_max",
            "connections_max",
            "streams_per_connection_max",
            "message_bytes_max",
            "batch_events_max",
            "refusals_logged_per_minute",
            "retry_delay_ms_max",
            "heartbeat_ms",
        ] {
            let err = with(&format!("{zero} = 0")).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("limits.{zero} must be at least 1")),
                "{err}"
            );
        }
        let err = with("handshakes_max = 4\nhandshakes_per_address_max = 5").unwrap_err();
        assert!(
            err.to_string()
                .contains("limits.handshakes_per_address_max (5) must not exceed"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod deploy_example {
    use super::*;

    #[test]
    fn deploy_example_config_parses() {
        let text = include_str!("../../deploy/node.example.toml");
        let config =
            Config::parse(text, Path::new("node.toml"), Path::new("/etc/liaison")).unwrap();
        assert_eq!(config.admin_group.as_deref(), Some("liaison-operators"));
        assert_eq!(config.log_format, LogFormat::Json);
    }
}
