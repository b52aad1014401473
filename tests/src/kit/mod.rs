//! The test kit: real `liaison-node` processes on loopback, real SQLite
//! files, real mutual TLS with certificates generated through the same
//! code `liaisonctl ca` runs.
//!
//! # Shape of a test
//!
//! ```no_run
//! # async fn example() {
//! use liaison_tests::{Federation, DEFAULT_WAIT};
//! let fed = Federation::new("handshake");
//! let a = fed.node("pingliang").await;
//! let b = fed.node("lanzhou").await;
//! fed.link(&a, &b).await; // peer add both ways, wait until both links are up
//! let peer = a.peer_info("lanzhou").unwrap();
//! assert_eq!(peer.remote_display_name, b.display_name);
//! fed.wait_until(DEFAULT_WAIT, "something observable", async || true).await;
//! # }
//! ```
//!
//! - [`Federation`] owns a temporary directory (kept when a test fails or
//!   when `LIAISON_TEST_KEEP=1`, and its path printed), a federation CA, and
//!   the list of nodes started in it, so a failed wait can dump the state of
//!   every node (peer lists, audit log, log tail).
//! - [`TestNode`] is one `liaison-node` process with its own directory,
//!   config, data directory, admin socket and log file. Observations go
//!   through the real `liaisonctl` binary (`-o json`), changes through either
//!   `liaisonctl` or the admin gRPC service ([`TestNode::admin`]).
//! - Nothing waits with a fixed sleep: [`wait_for`] and the `wait_until`
//!   methods poll a condition until a deadline, and on timeout dump the state
//!   and panic with the description of what was awaited.
//! - The binaries are built once per process ([`binaries`]), in the profile
//!   of the executable that runs the kit.
//! - [`Launch`] is how a federation runs its nodes: their limits, log
//!   level, and the kit's bounds. The tests take [`Launch::tests`];
//!   `liaison-bench` runs release binaries with production limits and info
//!   logs, in a directory it owns ([`Federation::in_dir`]).
//! - Every network await is bounded ([`timed`], [`RPC_TIMEOUT`]), and so is
//!   every process the tests run ([`run_with_timeout`]).
//!
//! # Running
//!
//! `cargo test -p liaison-tests` (or `cargo test --workspace`). Each test
//! starts one to three nodes; the default of one test thread per core is
//! fine. `LIAISON_TEST_KEEP=1` keeps every test's directory (configs,
//! databases, node logs) and prints where; a failing test keeps its own.
//! Node logs are at `LIAISON_LOG=info,liaison_node=debug`.
//!
//! Every node's and client's connection in a test comes from 127.0.0.1,
//! so the node's limit of audited refusals per source address is raised in
//! test configs ([`NodeConfig::test_limits`]); a test of that limit sets
//! its own. A [`Flood`] binds other loopback addresses (127.0.0.2 on), so
//! its connections count apart from the nodes'.

mod binaries;
mod client;
mod config;
mod dump;
mod federation;
mod flood;
mod metrics;
mod node;
mod page;
mod process;
mod records;
mod views;
mod wait;

use std::collections::BTreeMap;
use std::time::Duration;

pub use binaries::{binaries, prebuilt_binaries, Binaries};
pub use client::{
    call_hello, call_pull, call_raw, channel, failed_below_grpc, hello_request, tls_refusal,
    CallError,
};
pub use config::NodeConfig;
pub use federation::{Federation, NodeCerts};
pub use flood::{loopback_sources, Flood, FloodPlan, FloodStats, Sending};
pub use liaison_proto::v1 as pb;
pub use metrics::{metric, reconnects, scrape};
pub use node::TestNode;
pub use page::{PageClient, PageResponse};
pub use process::{describe_output, liaisonctl, run_with_timeout};
pub use views::{parse_json_lines, AuditEntry, PeerView, PendingView};
pub use wait::{timed, wait_for, wait_until};

/// A valid national ID number for a test's member: the 17 digits (area,
/// birth date, sequence) and their check character.
pub fn national_id(first17: &str) -> String {
    let check = liaison_types::validate::national_id_check_char(first17)
        .unwrap_or_else(|| panic!("`{first17}` is not 17 digits"));
    format!("{first17}{check}")
}

/// The federation name of the CA [`Federation::new`] creates.
pub const FEDERATION: &str = "gansu";
/// How long tests wait for something that should happen within a second or
/// two: generous, because a loaded 2-core CI machine is slow, and a passing
/// test never waits it out.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(20);
/// Bound on every single network call a test makes.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one run of `liaisonctl`.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a node's start-up and on its exit after SIGTERM.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How a [`Federation`] runs its nodes: the end-to-end tests take
/// [`Launch::tests`]; a program that measures nodes (`liaison-bench`) sets
/// its own.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `[limits]` every node's configuration starts with; a test may
    /// set more ([`NodeConfig::limit`]). An absent limit has the node's
    /// default.
    pub limits: BTreeMap<String, u64>,
    /// The nodes' `LIAISON_LOG`. Debug logs help read a failed test and
    /// cost CPU time a measurement would count.
    pub log_filter: String,
    /// Bound on a node's start-up and on its exit after a signal.
    pub start_timeout: Duration,
    /// Bound on one run of `liaisonctl` at a node ([`TestNode::ctl`]).
    pub cli_timeout: Duration,
    /// How often a start or a stop looks whether the node is up, or gone:
    /// the precision of the start-up time [`TestNode::start`] returns.
    pub poll: Duration,
    /// Bound on the kit's own waits ([`Federation::link`],
    /// [`Federation::agree`], ...).
    pub wait: Duration,
}

impl Launch {
    /// For the end-to-end tests: [`NodeConfig::test_limits`], debug logs,
    /// the bounds above.
    pub fn tests() -> Launch {
        Launch {
            limits: NodeConfig::test_limits(),
            log_filter: "info,liaison_node=debug".to_owned(),
            start_timeout: START_TIMEOUT,
            cli_timeout: CLI_TIMEOUT,
            poll: POLL_INTERVAL,
            wait: DEFAULT_WAIT,
        }
    }
}

/// The name of the OS user running the tests, as the node records operators.
pub fn current_user() -> String {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value to be overwritten.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer points to a live buffer of the given size.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return format!("uid {uid}");
    }
    // SAFETY: pw_name points to a NUL-terminated string inside `buf`.
    unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned()
}

/// Milliseconds since the Unix epoch, as the node's audit and peer times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64
}
