//! The node process itself: `liaisonctl status`, the admin socket, and
//! stopping on signals.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use liaison_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_node_id_uptime_version_database_and_peers() {
    let fed = Federation::new("status");
    let a = fed.node("pingliang").await;
    let b = fed.node("lanzhou").await;

    // The database file only grows; read its size before the node reports it.
    let db = std::fs::canonicalize(a.db_path()).expect("the database file exists");
    let on_disk = std::fs::metadata(&db).unwrap().len();
    let status = a.status_json();
    assert_eq!(status["node_id"], "pingliang");
    assert_eq!(status["display_name"], "平凉");
    assert_eq!(status["federation"], FEDERATION);
    assert_eq!(status["software_version"], liaison_node::SOFTWARE_VERSION);
    assert_eq!(status["protocol_version"], liaison_proto::PROTOCOL_VERSION);
    assert_eq!(status["federation_addr"], a.federation_addr().to_string());
    assert_eq!(status["database_path"], db.to_str().unwrap());
    let reported = status["database_bytes"].as_u64().expect("database_bytes");
    assert!(
        reported >= on_disk && on_disk > 0,
        "reported {reported}, file {on_disk}"
    );
    assert!(!status["log_id"].as_str().unwrap().is_empty());
    assert_eq!(
        (status["peers_up"].as_u64(), status["peers_total"].as_u64()),
        (Some(0), Some(0))
    );

    fed.link(&a, &b).await;
    a.ctl_ok(&[
        "peer",
        "add",
        "tianshui",
        "--endpoint",
        "https://127.0.0.1:1",
    ]);
    let status = a.status_json();
    assert_eq!(
        (status["peers_up"].as_u64(), status["peers_total"].as_u64()),
        (Some(1), Some(2)),
        "{status}"
    );

    // Uptime counts from the start.
    a.wait_until(DEFAULT_WAIT, "uptime of at least 1 s", async || {
        a.status_json()["uptime_seconds"].as_u64() >= Some(1)
    })
    .await;

    // The table names every field for a person.
    let table = a.ctl_ok(&["status"]);
    for expected in [
        "pingliang (平凉)".to_owned(),
        format!(
            "{} (protocol {})",
            liaison_node::SOFTWARE_VERSION,
            liaison_proto::PROTOCOL_VERSION
        ),
        "uptime".to_owned(),
        db.display().to_string(),
        "1 up of 2".to_owned(),
        a.federation_addr().to_string(),
    ] {
        assert!(
            table.contains(&expected),
            "`{expected}` missing from:\n{table}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_socket_is_mode_0600_in_a_data_dir_of_mode_0700() {
    let fed = Federation::new("socket-mode");
    let a = fed.node("pingliang").await;
    let socket = a.socket();
    assert_eq!(
        socket,
        a.data_dir().join("admin.sock"),
        "the default socket path"
    );
    let meta = std::fs::metadata(&socket).expect("the admin socket exists");
    assert!(
        meta.file_type().is_socket(),
        "{} is not a socket",
        socket.display()
    );
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "socket mode {:o}",
        meta.permissions().mode()
    );
    // SAFETY: getuid cannot fail.
    assert_eq!(
        meta.uid(),
        unsafe { libc::getuid() },
        "owned by the node's user"
    );
    let data = std::fs::metadata(a.data_dir()).unwrap();
    assert_eq!(
        data.permissions().mode() & 0o777,
        0o700,
        "data dir mode {:o}",
        data.permissions().mode()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_stop_the_node_cleanly_and_remove_its_socket() {
    let fed = Federation::new("signals");
    let mut a = fed.node("pingliang").await;
    for (name, signal) in [("SIGTERM", libc::SIGTERM), ("SIGINT", libc::SIGINT)] {
        let exit = a.stop_with(signal);
        assert_eq!(exit.code(), Some(0), "{name}: {exit}; log:\n{}", a.log());
        assert!(!a.socket().exists(), "{name}: the admin socket is removed");
        a.start().await;
    }
    let log = a.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_format_writes_one_json_object_per_line() {
    let fed = Federation::new("json-log");
    let mut config = fed.config("pingliang");
    config.extra = "[log]\nformat = \"json\"".into();
    let mut a = fed.start(config).await;
    a.ctl_ok(&[
        "peer",
        "add",
        "lanzhou",
        "--endpoint",
        "https://127.0.0.1:1",
    ]);
    a.wait_audit("the failed pull", |e| e.action == "federation.pull")
        .await;
    let exit = a.stop();
    assert!(exit.success(), "{exit}");

    let log = a.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("======== liaison-tests"))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.get("level").is_some(), "{line}");
        assert!(value.get("timestamp").is_some(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("node started")),
        "start-up is logged: {log}"
    );
}
