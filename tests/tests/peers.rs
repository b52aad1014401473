//! Peer management through the admin service: add, pause, resume, remove,
//! with open streams cut at once; peers survive restarts; `liaisonctl`'s
//! exit codes for refused and failed requests.

use liaison_tests::*;

fn add_request(other: &TestNode) -> pb::PeerAddRequest {
    pb::PeerAddRequest {
        node_id: other.node_id.clone(),
        endpoint: other.endpoint(),
        display_name: other.display_name.clone(),
        ..Default::default()
    }
}

fn peer_ref(node_id: &str) -> pb::PeerRef {
    pb::PeerRef {
        node_id: node_id.to_owned(),
    }
}

/// Two nodes peered through the admin service (not `liaisonctl`), both links up.
async fn linked_through_admin(fed: &Federation, a: &TestNode, b: &TestNode) {
    for (node, other) in [(a, b), (b, a)] {
        let mut admin = node.admin().await;
        let added = timed("PeerAdd", admin.peer_add(add_request(other)))
            .await
            .unwrap_or_else(|s| panic!("PeerAdd {} at {}: {s}", other.node_id, node.node_id))
            .into_inner();
        assert_eq!(added.node_id, other.node_id);
        assert_eq!(added.state, "active");
        assert_eq!(added.endpoint, other.endpoint());
    }
    fed.wait_linked(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_a_peer_cuts_its_open_stream_at_once_and_refuses_it_until_resumed() {
    let fed = Federation::new("pause-cuts");
    let a = fed.node("pingliang").await;
    let b = fed.node("lanzhou").await;
    linked_through_admin(&fed, &a, &b).await;
    let b_audited = b.audit().len() as u64;

    let mut admin = a.admin().await;
    let paused = timed("PeerPause", admin.peer_pause(peer_ref("lanzhou")))
        .await
        .unwrap_or_else(|s| panic!("PeerPause: {s}"))
        .into_inner();
    assert_eq!(paused.state, "paused");
    assert!(
        !paused.outbound_up && !paused.inbound_up,
        "pingliang's own links end with the pause: {paused:?}"
    );

    // lanzhou's stream from pingliang is cut, not left to time out.
    b.wait_peer("pingliang", "both links down after the pause", |p| {
        !p.outbound_up && !p.inbound_up
    })
    .await;
    let first = b
        .wait_audit("the first failure after the pause", |e| {
            e.seq > b_audited && e.action == "federation.pull"
        })
        .await;
    assert!(
        first.detail.contains("stream from pingliang ended"),
        "the open stream was cut: {first:?}"
    );
    assert!(
        !first.detail.contains("no word from"),
        "cut, not timed out: {first:?}"
    );

    // lanzhou keeps trying and is refused, with the reason and the way out.
    let seen = b
        .wait_peer("pingliang", "reconnects refused as paused", |p| {
            p.last_error.contains("PermissionDenied")
                && p.last_error.contains("paused at pingliang")
        })
        .await;
    assert!(seen.last_error.contains("peer resume lanzhou"), "{seen:?}");
    a.wait_audit("refused call of the paused peer", |e| {
        e.actor == "peer:lanzhou" && e.is("federation.call", "refused", "paused")
    })
    .await;
    let at_a = a.peer_info("lanzhou").expect("a paused peer stays a peer");
    assert_eq!(at_a.state, "paused");
    assert!(!at_a.outbound_up && !at_a.inbound_up, "{at_a:?}");
    assert_eq!(a.status().await.peers_up, 0);
    let user = current_user();
    a.wait_audit("the pause itself", |e| {
        e.action == "peer.pause"
            && e.target == "lanzhou"
            && e.outcome == "ok"
            && e.actor == format!("operator:{user}")
    })
    .await;

    let resumed = timed("PeerResume", admin.peer_resume(peer_ref("lanzhou")))
        .await
        .unwrap_or_else(|s| panic!("PeerResume: {s}"))
        .into_inner();
    assert_eq!(resumed.state, "active");
    fed.wait_linked(&a, &b).await;
    let status = a.status().await;
    assert_eq!((status.peers_up, status.peers_total), (1, 1), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_peer_cuts_its_open_stream_and_refuses_it_as_a_stranger() {
    let fed = Federation::new("remove-cuts");
    let a = fed.node("pingliang").await;
    let b = fed.node("lanzhou").await;
    linked_through_admin(&fed, &a, &b).await;
    let b_audited = b.audit().len() as u64;

    let mut admin = a.admin().await;
    let removed = timed(
        "PeerRemove",
        admin.peer_remove(pb::PeerRemoveRequest {
            node_id: "lanzhou".into(),
            force: false,
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("PeerRemove: {s}"))
    .into_inner();
    assert_eq!(removed.node_id, "lanzhou");
    assert!(
        a.peer_info("lanzhou").is_none(),
        "removed peer still listed: {:?}",
        a.peers()
    );

    b.wait_peer("pingliang", "both links down after the removal", |p| {
        !p.outbound_up && !p.inbound_up
    })
    .await;
    let first = b
        .wait_audit("the first failure after the removal", |e| {
            e.seq > b_audited && e.action == "federation.pull"
        })
        .await;
    assert!(
        first.detail.contains("stream from pingliang ended"),
        "the open stream was cut: {first:?}"
    );
    assert!(
        !first.detail.contains("no word from"),
        "cut, not timed out: {first:?}"
    );
    b.wait_peer("pingliang", "reconnects refused as not a peer", |p| {
        p.last_error.contains("PermissionDenied")
            && p.last_error.contains("not a peer of pingliang")
    })
    .await;
    a.wait_audit("refused call of the removed peer", |e| {
        e.actor == "peer:lanzhou" && e.is("federation.call", "refused", "not a peer")
    })
    .await;
    let pending = a
        .wait_for(DEFAULT_WAIT, "lanzhou pending again", async || {
            a.pending().into_iter().find(|p| p.node_id == "lanzhou")
        })
        .await;
    assert_eq!(pending.endpoint, b.endpoint());
    a.wait_audit("the removal itself", |e| {
        e.action == "peer.remove" && e.target == "lanzhou" && e.outcome == "ok"
    })
    .await;
    assert_eq!(a.status().await.peers_total, 0);

    // Admitted again, it links again.
    let mut admin = a.admin().await;
    timed("PeerAdd", admin.peer_add(add_request(&b)))
        .await
        .unwrap_or_else(|s| panic!("PeerAdd again: {s}"));
    fed.wait_linked(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_peer_shows_its_last_error_and_next_attempt_and_can_be_retried() {
    let fed = Federation::new("backoff");
    let a = fed.node("pingliang").await;
    // Nothing listens on port 1.
    a.ctl_ok(&[
        "peer",
        "add",
        "lanzhou",
        "--endpoint",
        "https://127.0.0.1:1",
        "--name",
        "兰州",
    ]);
    let seen = a
        .wait_peer("lanzhou", "backing off after a refused connection", |p| {
            p.last_error.contains("Connection refused") && p.next_attempt_ms > 0
        })
        .await;
    assert!(!seen.outbound_up && !seen.inbound_up, "{seen:?}");
    assert_eq!(seen.last_contact_ms, 0, "never reached: {seen:?}");
    let retry_delay_ms_max = NodeConfig::test_limits()["retry_delay_ms_max"] as i64;
    assert!(
        seen.next_attempt_ms <= now_ms() + retry_delay_ms_max,
        "the backoff is capped by limits.retry_delay_ms_max: {seen:?}"
    );
    a.wait_audit("the failed pull", |e| {
        e.actor == "node"
            && e.target == "lanzhou"
            && e.is("federation.pull", "error", "Connection refused")
    })
    .await;

    let table = a.ctl_ok(&["peer", "list"]);
    for expected in [
        "NEXT TRY",
        "LAST ERROR",
        "lanzhou",
        "兰州",
        "out down / in down",
        "Connection refused",
    ] {
        assert!(
            table.contains(expected),
            "`{expected}` missing from:\n{table}"
        );
    }
    let detail = a.ctl_ok(&["peer", "show", "lanzhou"]);
    for expected in [
        "https://127.0.0.1:1",
        "active",
        "Connection refused",
        "next attempt",
    ] {
        assert!(
            detail.contains(expected),
            "`{expected}` missing from:\n{detail}"
        );
    }

    let retried: Vec<PeerView> = a.ctl_records("peer", &["peer", "retry", "lanzhou"]);
    assert_eq!(retried[0].node_id, "lanzhou");
    a.wait_audit("the retry", |e| {
        e.action == "peer.retry" && e.target == "lanzhou" && e.outcome == "ok"
    })
    .await;
}

/// The peers without what describes their links: what an operator set,
/// which must survive any restart.
fn settled(peers: &[PeerView]) -> Vec<PeerView> {
    peers
        .iter()
        .map(|p| PeerView {
            outbound_up: false,
            inbound_up: false,
            last_contact_ms: 0,
            last_error: String::new(),
            next_attempt_ms: 0,
            remote_display_name: String::new(),
            remote_protocol_version: 0,
            remote_software_version: String::new(),
            ..p.clone()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_survive_a_clean_stop_and_a_crash_and_links_come_back() {
    let fed = Federation::new("restart");
    let mut a = fed.node("pingliang").await;
    let b = fed.node("lanzhou").await;
    fed.link(&a, &b).await;
    let fingerprint = fed.issue("tianshui").fingerprint();
    a.ctl_ok(&[
        "peer",
        "add",
        "tianshui",
        "--endpoint",
        "https://127.0.0.1:1",
        "--name",
        "天水",
        "--serves",
        "6205",
        "--fingerprint",
        &fingerprint,
    ]);
    a.ctl_ok(&["peer", "pause", "tianshui"]);
    let before = settled(&a.peers());
    assert_eq!(before.len(), 2);
    let endpoint = a.endpoint();
    let log_id = a.status().await.log_id;

    let exit = a.stop();
    assert!(exit.success(), "SIGTERM stops the node cleanly: {exit}");
    assert!(
        !a.socket().exists(),
        "a clean stop removes the admin socket"
    );
    b.wait_peer("pingliang", "link down while pingliang is stopped", |p| {
        !p.outbound_up && !p.inbound_up
    })
    .await;

    a.start().await;
    assert_eq!(a.endpoint(), endpoint, "same port after restart");
    assert_eq!(settled(&a.peers()), before, "peers after a clean restart");
    assert_eq!(a.status().await.log_id, log_id, "same database");
    fed.wait_linked(&a, &b).await;

    a.kill();
    b.wait_peer("pingliang", "link down after pingliang crashed", |p| {
        !p.outbound_up && !p.inbound_up
    })
    .await;
    a.start().await;
    assert_eq!(settled(&a.peers()), before, "peers after a crash");
    fed.wait_linked(&a, &b).await;
    let paused = a.peer_info("tianshui").unwrap();
    assert_eq!(paused.state, "paused");
    assert_eq!(paused.fingerprint, fingerprint);
    assert_eq!(paused.serves, ["6205"]);

    let starts = a
        .audit()
        .iter()
        .filter(|e| e.action == "node.start")
        .count();
    assert_eq!(starts, 3, "one node.start entry per start");
    let verdict = a.ctl_ok(&["audit", "verify"]);
    assert!(verdict.contains("intact"), "{verdict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liaisonctl_exits_1_when_the_node_refuses_and_2_when_it_cannot_reach_it() {
    let fed = Federation::new("exit-codes");
    let a = fed.node("pingliang").await;
    a.ctl_ok(&[
        "peer",
        "add",
        "lanzhou",
        "--endpoint",
        "https://127.0.0.1:1",
    ]);

    let refused: &[(&[&str], &str)] = &[
        (
            &["peer", "add", "tianshui", "--endpoint", "127.0.0.1:7402"],
            "https://HOST:PORT",
        ),
        (
            &[
                "peer",
                "add",
                "lanzhou",
                "--endpoint",
                "https://127.0.0.1:2",
            ],
            "already exists",
        ),
        (
            &[
                "peer",
                "add",
                "pingliang",
                "--endpoint",
                "https://127.0.0.1:2",
            ],
            "this node itself",
        ),
        (
            &[
                "peer",
                "add",
                "Tian_Shui",
                "--endpoint",
                "https://127.0.0.1:2",
            ],
            "invalid node id",
        ),
        (
            &[
                "peer",
                "add",
                "tianshui",
                "--endpoint",
                "https://127.0.0.1:2",
                "--fingerprint",
                "sha256:beef",
            ],
            "invalid fingerprint",
        ),
        (
            &["peer", "show", "nobody"],
            "no peer of this node has the id or name `nobody`",
        ),
        (
            &["peer", "pause", "nobody"],
            "no peer of this node has the id or name `nobody`",
        ),
        (
            &["peer", "remove", "nobody"],
            "no peer of this node has the id or name `nobody`",
        ),
        (&["peer", "ignore", "nobody"], "no pending node nobody"),
    ];
    for (args, message) in refused {
        let output = a.ctl(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "liaisonctl {}:\n{}",
            args.join(" "),
            describe_output(&output)
        );
        assert!(stderr.starts_with("liaisonctl: "), "{stderr}");
        assert!(
            stderr.contains(message),
            "liaisonctl {}: {stderr}",
            args.join(" ")
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
    // A refused change is audited as refused, and changed nothing.
    let audit = a.audit();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "peer.add" && e.target == "tianshui" && e.outcome == "refused"),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "peer.pause" && e.target == "nobody" && e.outcome == "refused"),
        "{audit:?}"
    );
    assert_eq!(a.peers().len(), 1);

    a.ctl_ok(&["peer", "pause", "lanzhou"]);
    let output = a.ctl(&["peer", "retry", "lanzhou"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("peer resume lanzhou"));

    let missing = fed.dir().join("no-such.sock");
    let output = liaisonctl(&["--socket", missing.to_str().unwrap(), "status"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        describe_output(&output)
    );
    assert!(
        stderr.contains("cannot reach the node's admin socket"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no-such.sock"),
        "names the socket: {stderr}"
    );

    let output = a.ctl(&["peer", "frobnicate"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "usage error: {}",
        describe_output(&output)
    );
}
