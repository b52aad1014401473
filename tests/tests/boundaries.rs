//! The crate boundaries of ARCHITECTURE.md are facts of the dependency
//! graph, checked here with `cargo tree`: the protocol core and what it
//! builds on link no async runtime, RPC framework, HTTP or TLS library, and
//! `liaisonctl` links neither SQLite nor the node.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Every package `package` links (normal dependencies, transitively).
fn linked(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace");
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(workspace)
        .output()
        .expect("cannot run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Fails naming every package of `forbidden` that `package` links.
fn check(package: &str, forbidden: &[&str]) {
    let linked = linked(package);
    assert!(
        linked.contains(package),
        "cargo tree -p {package} did not list the package itself: {linked:?}"
    );
    let found: Vec<&&str> = forbidden
        .iter()
        .filter(|name| linked.contains(**name))
        .collect();
    assert!(
        found.is_empty(),
        "{package} links {found:?}, which ARCHITECTURE.md says it must not (see `cargo tree -p {package} -i <name>`)"
    );
}

const NO_NETWORK_EDGE: [&str; 8] = [
    "tokio",
    "tonic",
    "rustls",
    "tokio-rustls",
    "hyper",
    "h2",
    "tower",
    "liaison-rpc",
];

#[test]
fn the_core_links_no_runtime_rpc_http_or_tls() {
    check("liaison-core", &NO_NETWORK_EDGE);
}

#[test]
fn what_the_core_builds_on_links_no_runtime_rpc_http_tls_or_sqlite() {
    let mut forbidden = NO_NETWORK_EDGE.to_vec();
    forbidden.extend(["rusqlite", "libsqlite3-sys"]);
    check("liaison-proto", &forbidden);
    check("liaison-types", &forbidden);
}

#[test]
fn liaisonctl_links_neither_sqlite_nor_the_node() {
    check(
        "liaisonctl",
        &[
            "rusqlite",
            "libsqlite3-sys",
            "liaison-core",
            "liaison-node",
            "rustls",
        ],
    );
}
