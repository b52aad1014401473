//! Issue 5: co-management agreements between real nodes gate what is shared.

use liaison_proto::v1 as pb;
use liaison_tests::{ownership, Federation, TestNode, DEFAULT_WAIT};
use prost::Message;

/// Today in China time, plus `days`.
fn day(days: i64) -> String {
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .date_naive();
    (today + chrono::Duration::days(days)).to_string()
}

async fn setup_member(home: &TestNode) -> String {
    home.ctl_ok(&[
        "org",
        "add",
        "b1",
        "--name",
        "崆峒区第一支部",
        "--level",
        "branch",
    ]);
    let added = home.ctl_json(&[
        "member",
        "add",
        "--name",
        "张三",
        "--gender",
        "男",
        "--birth-date",
        "1990-05-17",
        "--party-status",
        "正式",
        "--home-branch",
        "b1",
        "--national-id",
        "620801199005170014",
    ]);
    let id = added[0].1["member_id"]
        .as_str()
        .expect("a member id")
        .to_owned();
    home.ctl_ok(&[
        "outflow",
        "register",
        &id,
        "--to",
        "620102",
        "--departed-on",
        &day(-30),
    ]);
    id
}

async fn link_three(fed: &Federation, pingliang: &TestNode, lanzhou: &TestNode, xian: &TestNode) {
    pingliang.peer_serving(lanzhou, "6201");
    pingliang.peer_serving(xian, "6101");
    lanzhou.peer(pingliang);
    xian.peer(pingliang);
    lanzhou.peer(xian);
    xian.peer(lanzhou);
    fed.wait_linked(pingliang, lanzhou).await;
    fed.wait_linked(pingliang, xian).await;
    fed.wait_linked(lanzhou, xian).await;
}

fn state_of(node: &TestNode, id: &str) -> Option<String> {
    node.agreement(id)
        .and_then(|a| a["state"].as_str().map(str::to_owned))
}

async fn wait_state(node: &TestNode, id: &str, state: &str) -> serde_json::Value {
    node.wait_for(
        DEFAULT_WAIT,
        &format!("agreement {id} {state} at {}", node.node_id),
        async || node.agreement(id).filter(|a| a["state"] == state),
    )
    .await
}

/// Waits until `home` has nothing left to send `host` that `host` has not pulled.
async fn drained(home: &TestNode, host: &str) {
    home.wait_until(
        DEFAULT_WAIT,
        &format!("{} drained its log for {host}", home.node_id),
        async || {
            let out = home.ctl_json(&["peer", "status", host]);
            out.first()
                .is_some_and(|(_, r)| r["backlog_for_peer"] == 0 && r["inbound_up"] == true)
        },
    )
    .await;
}

fn propose(home: &TestNode, host: &str, number: &str, until: &str) -> String {
    let out = home.ctl_json(&[
        "agreement",
        "propose",
        "--with",
        host,
        "--number",
        number,
        "--from",
        &day(-1),
        "--until",
        until,
        "--dues-collector",
        "inflow",
        "--contact-report",
        "monthly",
        "--outflow-liaison",
        "王书记:09338000000",
        "--inflow-liaison",
        "李主任:09318000000",
    ]);
    out[0].1["agreement_id"]
        .as_str()
        .expect("an agreement id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_negotiation_with_a_counter_proposal_and_a_third_node_sees_nothing() {
    let fed = Federation::new("agreement-negotiation");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let xian = fed.node("xian").await;
    link_three(&fed, &pingliang, &lanzhou, &xian).await;

    let id = propose(&pingliang, "lanzhou", "平凉-兰州-2026-01", &day(365));
    let received = wait_state(&lanzhou, &id, "proposed").await;
    assert_eq!(received["version"], 1);
    assert_eq!(received["role"], "inflow");
    lanzhou.ctl_ok(&[
        "agreement",
        "counter",
        &id,
        "--notes",
        "兰州负责组织生活和党费收缴",
    ]);
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "pingliang sees the counter-proposal",
            async || {
                pingliang
                    .agreement(&id)
                    .is_some_and(|a| !a["pending_counter"].is_null())
            },
        )
        .await;
    pingliang.ctl_ok(&["agreement", "accept", &id]);
    let home = wait_state(&pingliang, &id, "active").await;
    let host = wait_state(&lanzhou, &id, "active").await;
    for view in [&home, &host] {
        assert_eq!(view["version"], 2, "{view}");
        assert_eq!(view["active_version"], 2);
        assert_eq!(view["terms"]["notes"], "兰州负责组织生活和党费收缴");
        let history = view["history"].as_array().expect("history");
        let signatures = history.last().expect("a version")["signatures"]
            .as_array()
            .expect("signatures")
            .clone();
        let signers: Vec<&str> = signatures
            .iter()
            .filter_map(|s| s["signer"].as_str())
            .collect();
        assert_eq!(signers, vec!["lanzhou", "pingliang"], "{view}");
        assert!(signatures.iter().all(|s| s["status"] == "valid"), "{view}");
    }
    // Xi'an, a peer of both, never learns the agreement exists.
    drained(&pingliang, "xian").await;
    drained(&lanzhou, "xian").await;
    assert!(xian.agreement(&id).is_none());
    assert!(xian.ctl_json(&["agreement", "list"]).is_empty());
    for node in [&pingliang, &lanzhou] {
        let leaked: i64 = rusqlite::Connection::open(node.db_path())
            .expect("open the database")
            .query_row(
                "SELECT COUNT(*) FROM events WHERE audience = 'xian' AND kind >= 10",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(
            leaked, 0,
            "{} queued agreement events for xian",
            node.node_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_data_flows_only_after_activation_and_stops_after_termination() {
    let fed = Federation::new("agreement-gate");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let xian = fed.node("xian").await;
    link_three(&fed, &pingliang, &lanzhou, &xian).await;
    let member = setup_member(&pingliang).await;
    drained(&pingliang, "lanzhou").await;
    assert!(
        lanzhou.show(&member).await.is_none(),
        "no agreement, no flow"
    );
    let uncovered = pingliang.ctl_json(&["report", "uncovered"]);
    assert!(
        uncovered.iter().any(|(t, d)| t == "report_row"
            && d["table"] == "by_destination"
            && d["code"] == "620102"
            && d["place"] == "城关区"
            && d["members"] == 1),
        "{uncovered:?}"
    );

    let id = propose(&pingliang, "lanzhou", "PL-LZ", &day(365));
    wait_state(&lanzhou, &id, "proposed").await;
    drained(&pingliang, "lanzhou").await;
    assert!(
        lanzhou.show(&member).await.is_none(),
        "proposed is not active"
    );
    lanzhou.ctl_ok(&["agreement", "accept", &id]);
    wait_state(&pingliang, &id, "active").await;
    let copy = lanzhou
        .wait_for(DEFAULT_WAIT, "the copy at lanzhou", async || {
            lanzhou.show(&member).await
        })
        .await;
    assert_eq!(copy.basis, id);
    assert!(copy.national_id.is_empty());
    assert!(pingliang
        .ctl_json(&["report", "uncovered"])
        .iter()
        .all(|(t, d)| t != "report_row" || d["table"] != "by_destination"));
    lanzhou.ctl_ok(&["member", "host-set", &member, "--employer", "兰州建工"]);
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "the host section reaches pingliang",
            async || {
                pingliang
                    .show(&member)
                    .await
                    .is_some_and(|m| !m.host_sections.is_empty())
            },
        )
        .await;

    // The host terminates: both sides act on the end.
    let refused = lanzhou.ctl(&["agreement", "terminate", &id]);
    assert_eq!(refused.status.code(), Some(2), "a reason is required");
    lanzhou.ctl_ok(&[
        "agreement",
        "terminate",
        &id,
        "--reason",
        "流入地党组织调整",
    ]);
    let ended = wait_state(&pingliang, &id, "terminated").await;
    assert_eq!(ended["ended_by"], "lanzhou");
    let leftover = lanzhou
        .show(&member)
        .await
        .expect("the host's own section stays");
    assert_eq!(leftover.basis, "no longer co-managed");
    assert!(
        leftover.name.is_empty(),
        "the home section is gone from the host"
    );
    assert_eq!(leftover.host_sections[0].employer, "兰州建工");
    pingliang.ctl_ok(&["member", "update", &member, "--phone", "13912345678"]);
    drained(&pingliang, "lanzhou").await;
    assert!(
        lanzhou
            .show(&member)
            .await
            .is_some_and(|m| m.phone.is_empty()),
        "nothing flows after the end"
    );
    liaison_tests::check_invariants(&ownership::dbs(&[&pingliang, &lanzhou, &xian]))
        .unwrap_or_else(|v| panic!("after the end: {v}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_by_date_on_a_test_controlled_clock() {
    let fed = Federation::new("agreement-expiry");
    let pingliang = fed.start(fed.config("pingliang").clockable()).await;
    let lanzhou = fed.start(fed.config("lanzhou").clockable()).await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    let member = setup_member(&pingliang).await;
    let id = propose(&pingliang, "lanzhou", "PL-LZ-short", &day(10));
    wait_state(&lanzhou, &id, "proposed").await;
    lanzhou.ctl_ok(&["agreement", "accept", &id]);
    wait_state(&lanzhou, &id, "active").await;
    lanzhou
        .wait_for(DEFAULT_WAIT, "the copy at lanzhou", async || {
            lanzhou.show(&member).await
        })
        .await;
    // A node's clock is not movable unless its config says so.
    let plain = fed.node("xian").await;
    assert_eq!(
        plain
            .ctl(&["debug", "clock", "--offset", "11d"])
            .status
            .code(),
        Some(1)
    );

    pingliang.ctl_ok(&["debug", "clock", "--offset", "12d"]);
    let expired = wait_state(&pingliang, &id, "expired").await;
    assert_eq!(expired["ended_by"], "pingliang");
    wait_state(&lanzhou, &id, "expired").await;
    lanzhou
        .wait_until(DEFAULT_WAIT, "the host's copy is gone", async || {
            lanzhou.show(&member).await.is_none()
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_shows_the_end_date_passed_then_drops_copies_on_its_own_clock_after_grace() {
    let fed = Federation::new("agreement-grace");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.start(fed.config("lanzhou").clockable()).await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    let member = setup_member(&pingliang).await;
    let id = propose(&pingliang, "lanzhou", "PL-LZ-grace", &day(10));
    wait_state(&lanzhou, &id, "proposed").await;
    lanzhou.ctl_ok(&["agreement", "accept", &id]);
    lanzhou
        .wait_for(DEFAULT_WAIT, "the copy at lanzhou", async || {
            lanzhou.show(&member).await
        })
        .await;
    // Lanzhou's clock passes the end date, Pingliang's (the coordinator's)
    // does not: Lanzhou shows it ended by date, awaiting Pingliang, and acts
    // as before.
    lanzhou.ctl_ok(&["debug", "clock", "--offset", "12d"]);
    let shown = lanzhou.agreement(&id).expect("the agreement at lanzhou");
    assert_eq!(shown["state"], "active", "{shown}");
    assert_eq!(shown["ended_by_date"], true, "{shown}");
    assert_eq!(shown["active_until"], day(10).as_str(), "{shown}");
    let words = format!(
        "active — ended by date {} (到期待确认), awaiting the coordinator pingliang (平凉) to confirm",
        day(10)
    );
    assert_eq!(shown["shown_state"], words.as_str(), "{shown}");
    let listed = lanzhou.ctl_ok(&["agreement", "list"]);
    assert!(listed.contains(&words), "{listed}");
    let detail = lanzhou.ctl_ok(&["agreement", "show", &id]);
    assert!(
        detail
            .lines()
            .any(|l| l.trim_start().starts_with("state") && l.ends_with(&words)),
        "{detail}"
    );
    let todo = lanzhou.ctl_json(&["todo"]);
    assert!(
        todo.iter()
            .any(|(_, i)| i["kind"] == "agreement_ended_by_date"
                && i["subject"]
                    .as_str()
                    .is_some_and(|s| s.contains("PL-LZ-grace"))),
        "{todo:?}"
    );
    assert!(lanzhou.show(&member).await.is_some(), "the copy stays");
    let at_home = pingliang
        .agreement(&id)
        .expect("the agreement at pingliang");
    assert_eq!(
        (&at_home["state"], &at_home["ended_by_date"]),
        (&serde_json::json!("active"), &serde_json::json!(false))
    );

    // Past the end plus grace, Lanzhou drops its copies on its own clock.
    lanzhou.ctl_ok(&["debug", "clock", "--offset", "45d"]);
    lanzhou
        .wait_until(DEFAULT_WAIT, "lanzhou dropped its copy", async || {
            lanzhou.show(&member).await.is_none()
        })
        .await;
    assert_eq!(state_of(&pingliang, &id).as_deref(), Some("active"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_signature_is_refused_and_the_agreement_does_not_activate() {
    let fed = Federation::new("agreement-tampered");
    let pingliang = fed.node("pingliang").await;
    let mut lanzhou = fed.node("lanzhou").await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    let member = setup_member(&pingliang).await;
    let id = propose(&pingliang, "lanzhou", "PL-LZ", &day(365));
    wait_state(&lanzhou, &id, "proposed").await;

    // Lanzhou's log gets an acceptance whose signature does not verify.
    lanzhou.stop();
    let conn = rusqlite::Connection::open(lanzhou.db_path()).expect("open lanzhou's database");
    let terms_hash: Vec<u8> = conn
        .query_row(
            "SELECT terms_hash FROM agreement_versions WHERE agreement_id = ?1 AND version = 1",
            [&id],
            |r| r.get(0),
        )
        .expect("the proposal's hash");
    let certificate = liaison_types::identity::read_certs(&lanzhou.certs().cert)
        .expect("lanzhou's certificate")[0]
        .to_vec();
    let vote = pb::AgreementVote {
        agreement_id: id.clone(),
        vote: "accept".into(),
        answers_version: 1,
        terms: None,
        signature: Some(pb::AgreementSignature {
            signer: "lanzhou".into(),
            version: 1,
            terms_hash,
            signature: vec![0x30; 70],
            certificate,
        }),
        answered: None,
    };
    conn.execute(
        "INSERT INTO events (audience, kind, entity, payload, created_at_ms) VALUES ('pingliang', ?1, ?2, ?3, 0)",
        rusqlite::params![pb::EventKind::AgreementVote as i32, id, vote.encode_to_vec()],
    )
    .expect("insert the forged vote");
    drop(conn);
    lanzhou.start().await;

    let entry = pingliang
        .wait_audit("the forged acceptance is quarantined", |e| {
            e.action == "replication.quarantine" && e.actor == "peer:lanzhou"
        })
        .await;
    assert!(
        entry.detail.contains("forged or mismatched signature"),
        "{}",
        entry.detail
    );
    assert_eq!(state_of(&pingliang, &id).as_deref(), Some("proposed"));
    drained(&pingliang, "lanzhou").await;
    assert!(
        lanzhou.show(&member).await.is_none(),
        "nothing shared without a valid signature"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_returning_home_is_unshared() {
    let fed = Federation::new("agreement-return");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    let member = setup_member(&pingliang).await;
    fed.agree(&pingliang, &lanzhou, "PL-LZ").await;
    lanzhou
        .wait_for(DEFAULT_WAIT, "the copy at lanzhou", async || {
            lanzhou.show(&member).await
        })
        .await;
    pingliang.ctl_ok(&["outflow", "return", &member]);
    lanzhou
        .wait_until(DEFAULT_WAIT, "the copy is unshared", async || {
            lanzhou.show(&member).await.is_none()
        })
        .await;
}
