//! The audit log: every operator action with the operator's OS user, a hash
//! chain that names the first tampered entry, and bounded logging of
//! refused connections.

use liaison_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_are_audited_with_the_os_user_in_an_intact_chain() {
    let fed = Federation::new("audit-actions");
    let a = fed.node("pingliang").await;
    let user = format!("operator:{}", current_user());

    a.ctl_ok(&[
        "peer",
        "add",
        "lanzhou",
        "--endpoint",
        "https://127.0.0.1:1",
        "--name",
        "兰州",
    ]);
    a.ctl_ok(&["peer", "pause", "lanzhou"]);
    a.ctl_ok(&["peer", "resume", "lanzhou"]);
    a.ctl_ok(&["peer", "remove", "lanzhou"]);
    let output = a.ctl(&["peer", "pause", "lanzhou"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    let verdict = a.ctl_ok(&["audit", "verify"]);
    assert!(verdict.contains("audit chain intact"), "{verdict}");

    let entries = a.audit();
    let operator: Vec<(&str, &str, &str)> = entries
        .iter()
        .filter(|e| e.actor.starts_with("operator:"))
        .map(|e| (e.action.as_str(), e.target.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        operator,
        [
            ("peer.add", "lanzhou", "ok"),
            ("peer.pause", "lanzhou", "ok"),
            ("peer.resume", "lanzhou", "ok"),
            ("peer.remove", "lanzhou", "ok"),
            ("peer.pause", "lanzhou", "refused"),
            ("audit.verify", "", "ok"),
        ],
        "{entries:#?}"
    );
    for e in entries.iter().filter(|e| e.actor.starts_with("operator:")) {
        assert_eq!(
            e.actor, user,
            "the OS user from the socket's credentials: {e:?}"
        );
    }
    let add = entries.iter().find(|e| e.action == "peer.add").unwrap();
    assert!(add.detail.contains("https://127.0.0.1:1"), "{add:?}");
    let refused = entries.iter().find(|e| e.outcome == "refused").unwrap();
    assert!(
        refused
            .detail
            .contains("no peer of this node has the id or name `lanzhou`"),
        "{refused:?}"
    );
    let verify = entries.iter().find(|e| e.action == "audit.verify").unwrap();
    assert!(verify.detail.contains("intact"), "{verify:?}");

    // Numbered without gaps, oldest first, each with its own hash.
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=entries.len() as u64).collect::<Vec<_>>());
    assert!(entries.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    let mut hashes: Vec<&str> = entries.iter().map(|e| e.hash.as_str()).collect();
    assert!(hashes.iter().all(|h| h.len() == 64), "{hashes:?}");
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), entries.len());

    // --since filters by time.
    let output = a.ctl(&["-o", "json", "audit", "list", "--since", "2999-01-01"]);
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(output.stdout.is_empty(), "{}", describe_output(&output));
    let all_since = a.ctl_json(&["audit", "list", "--since", "2000-01-01T00:00:00+08:00"]);
    assert!(all_since.len() >= entries.len());
    let output = a.ctl(&["audit", "list", "--since", "yesterday"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        describe_output(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_exits_3_and_names_the_first_tampered_entry() {
    let fed = Federation::new("audit-tamper");
    let mut a = fed.node("pingliang").await;
    a.ctl_ok(&[
        "peer",
        "add",
        "lanzhou",
        "--endpoint",
        "https://127.0.0.1:1",
    ]);
    a.ctl_ok(&["peer", "pause", "lanzhou"]);
    a.ctl_ok(&["audit", "verify"]);
    let original = a.audit();
    assert!(original.len() >= 3);
    let exit = a.stop();
    assert!(exit.success(), "{exit}");

    {
        let db = rusqlite::Connection::open(a.db_path()).expect("open the node's database");
        let blocked = db.execute("UPDATE audit SET detail = 'x' WHERE seq = 2", []);
        assert!(
            blocked.is_err(),
            "the schema refuses updates of the audit log"
        );
        let blocked = db.execute("DELETE FROM audit WHERE seq = 2", []);
        assert!(
            blocked.is_err(),
            "the schema refuses deletes from the audit log"
        );
        db.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET detail = 'x' WHERE seq = 2;",
        )
        .expect("tamper with entry 2");
    }

    a.start().await;
    let output = a.ctl(&["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        describe_output(&output)
    );
    assert!(stdout.contains("BROKEN at entry 2"), "{stdout}");
    assert!(stdout.contains("altered"), "says what is wrong: {stdout}");
    let output = a.ctl(&["-o", "json", "audit", "verify"]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        describe_output(&output)
    );
    let verdict = parse_json_lines(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(verdict.len(), 1, "{verdict:?}");
    let (kind, verdict) = &verdict[0];
    assert_eq!(kind, "audit_verdict");
    assert_eq!(verdict["ok"], false, "{verdict}");
    assert_eq!(verdict["first_broken_seq"], 2, "{verdict}");
    assert_eq!(verdict["entries"], 1, "entries before the break: {verdict}");

    // The check itself is audited, after the break it reports; entries
    // appended after the tampering do not hide it.
    let entries = a.audit();
    assert_eq!(entries[1].detail, "x");
    let check = entries
        .iter()
        .rev()
        .find(|e| e.action == "audit.verify")
        .expect("the failed check is audited");
    assert_eq!(check.outcome, "error", "{check:?}");
    assert!(check.detail.contains("entry 2"), "{check:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_from_one_address_are_audited_at_most_n_per_minute() {
    const PER_MINUTE: u64 = 3;
    const ATTEMPTS: usize = 7;
    let fed = Federation::new("audit-flood");
    let a = fed
        .start(
            fed.config("pingliang")
                .limit("refusals_logged_per_minute", PER_MINUTE),
        )
        .await;
    for _ in 0..ATTEMPTS {
        let seen = tls_refusal(&a.endpoint(), fed.anonymous_tls()).await;
        assert!(seen.contains("CertificateRequired"), "{seen}");
    }
    // Every refusal is logged by the process; only the first few reach the audit log.
    a.wait_until(DEFAULT_WAIT, "every refusal handled", async || {
        a.log().matches("federation connection refused").count() >= ATTEMPTS
    })
    .await;
    // The audit entries are written after the log line: wait for them.
    let count = || {
        a.audit()
            .into_iter()
            .filter(|e| e.action == "federation.connect")
            .count() as u64
    };
    a.wait_until(DEFAULT_WAIT, "the first refusals audited", async || {
        count() >= PER_MINUTE
    })
    .await;
    assert_eq!(count(), PER_MINUTE, "{:#?}", a.audit());
}
