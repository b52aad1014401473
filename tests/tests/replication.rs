//! Issue 4: the member registry replicated between real nodes, exactly once.

use std::time::Duration;

use liaison_proto::v1 as pb;
use liaison_tests::proxy::Proxy;
use liaison_tests::{ownership, timed, Federation, TestNode, DEFAULT_WAIT};
use prost::Message;

const NATIONAL_ID: &str = "620801199005170014";

/// Waits for catch-up of large backlogs, on a slow debug build.
const BACKLOG_WAIT: Duration = Duration::from_secs(120);

async fn hosted_total(node: &TestNode) -> u64 {
    let mut admin = node.admin().await;
    timed(
        "member list",
        admin.member_list(pb::MemberListRequest {
            scope: "hosted".into(),
            limit: 1,
            ..Default::default()
        }),
    )
    .await
    .expect("member list")
    .into_inner()
    .total
}

/// Branch `b1` at `home` and its member 张三, away to Lanzhou (place
/// 620102); returns the member's id.
async fn member_away(home: &TestNode) -> String {
    home.org_add("b1").await;
    let id = home.member_add("张三", NATIONAL_ID).await;
    home.outflow_register(&id, "620102", "2026-10-01").await;
    id
}

/// Links `home` and `host`, `host` serving `place`, under an active
/// agreement.
async fn link_under_agreement(fed: &Federation, home: &TestNode, host: &TestNode, place: &str) {
    fed.link_serving(home, host, place).await;
    fed.agree(home, host, &format!("{}-{}", home.node_id, host.node_id))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_section_reaches_the_destination_host_and_never_a_third_node() {
    let fed = Federation::new("replication-three-nodes");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let xian = fed.node("xian").await;
    link_under_agreement(&fed, &pingliang, &lanzhou, "6201").await;
    link_under_agreement(&fed, &pingliang, &xian, "6101").await;
    let id = member_away(&pingliang).await;
    pingliang.set_phone(&id, "13900000000").await;

    let copy = lanzhou
        .wait_for(
            DEFAULT_WAIT,
            "the copy at lanzhou has the new phone",
            async || lanzhou.show(&id).await.filter(|m| m.phone == "13900000000"),
        )
        .await;
    assert!(!copy.owned);
    assert_eq!(copy.owner, "pingliang");
    assert_eq!(copy.name, "张三");
    assert_eq!(copy.birth_year, 1990);
    for (field, value) in [
        ("national_id", &copy.national_id),
        ("birth_date", &copy.birth_date),
        ("home_address", &copy.home_address),
        ("native_place", &copy.native_place),
    ] {
        assert!(
            value.is_empty(),
            "{field} must never reach a host, got {value}"
        );
    }
    // Xi'an is linked and caught up with everything Pingliang holds for it:
    // nothing about the member.
    let head_for_xian = pingliang.replication("xian").await;
    assert_eq!(head_for_xian.backlog_for_peer, 0);
    assert!(
        xian.show(&id).await.is_none(),
        "xian must not know the member"
    );
    assert_eq!(hosted_total(&xian).await, 0);
    // The disclosure log names lanzhou only, with the outflow as basis.
    let disclosures = pingliang.disclosures(&id).await;
    assert!(!disclosures.is_empty());
    assert!(
        !copy.basis.is_empty(),
        "the copy names its basis, the agreement"
    );
    for d in &disclosures {
        assert_eq!(d.peer, "lanzhou");
        assert_eq!(d.basis, copy.basis);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_records_appear_at_the_owner() {
    let fed = Federation::new("replication-host-records");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    link_under_agreement(&fed, &pingliang, &lanzhou, "6201").await;
    let id = member_away(&pingliang).await;
    lanzhou
        .wait_for(DEFAULT_WAIT, "the copy at lanzhou", async || {
            lanzhou.show(&id).await
        })
        .await;
    lanzhou.ctl_ok(&[
        "member",
        "host-set",
        &id,
        "--host-branch",
        "兰州建筑业流动党员支部",
        "--employer",
        "兰州建工",
        "--industry",
        "construction",
    ]);
    lanzhou.ctl_ok(&[
        "contact",
        "record",
        &id,
        "--channel",
        "org_life",
        "--at",
        "2026-11-20",
    ]);
    lanzhou.ctl_ok(&[
        "activity",
        "record",
        &id,
        "--kind",
        "主题党日",
        "--date",
        "2026-11-20",
        "--hours",
        "2",
    ]);

    let home = pingliang
        .wait_for(DEFAULT_WAIT, "the host section at pingliang", async || {
            pingliang.show(&id).await.filter(|m| {
                m.host_sections.iter().any(|h| h.employer == "兰州建工")
                    && !m.last_contact.is_empty()
            })
        })
        .await;
    assert!(home.owned);
    assert_eq!(home.host_sections[0].author, "lanzhou");
    // In contact: no "lost since" date beside it.
    assert_eq!(home.contact_status, "in_contact");
    assert_eq!(home.lost_since, "");
    // The activity may come in a later batch than the contact.
    pingliang
        .wait_until(DEFAULT_WAIT, "the activity at pingliang", async || {
            pingliang
                .ctl_json(&["activity", "list", &id])
                .iter()
                .any(|(_, a)| a["kind"] == "theme_day" && a["author"] == "lanzhou")
        })
        .await;
    liaison_tests::check_invariants(&ownership::dbs(&[&pingliang, &lanzhou]))
        .unwrap_or_else(|v| panic!("host records at the owner: {v}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_writing_the_home_section_is_quarantined_and_audited() {
    let fed = Federation::new("replication-quarantine");
    let pingliang = fed.node("pingliang").await;
    let mut lanzhou = fed.node("lanzhou").await;
    link_under_agreement(&fed, &pingliang, &lanzhou, "6201").await;
    let id = member_away(&pingliang).await;
    lanzhou
        .wait_for(DEFAULT_WAIT, "the copy at lanzhou", async || {
            lanzhou.show(&id).await
        })
        .await;

    // Lanzhou's log gets a forged home section for Pingliang's member, as a
    // buggy or hostile node would send it.
    lanzhou.stop();
    let forged = pb::HomeSection {
        member_id: id.clone(),
        version: Some(pb::Version {
            generation: 7,
            counter: 7,
        }),
        owner: "lanzhou".into(),
        name: "李四".into(),
        ..Default::default()
    };
    let conn = rusqlite::Connection::open(lanzhou.db_path()).expect("open lanzhou's database");
    conn.execute(
        "INSERT INTO events (audience, kind, entity, payload, created_at_ms) VALUES ('pingliang', ?1, ?2, ?3, 0)",
        rusqlite::params![pb::EventKind::HomeSection as i32, id, forged.encode_to_vec()],
    )
    .expect("insert the forged event");
    drop(conn);
    lanzhou.start().await;

    let entry = pingliang
        .wait_audit("the forged event is quarantined", |e| {
            e.action == "replication.quarantine" && e.actor == "peer:lanzhou"
        })
        .await;
    assert!(
        entry.detail.contains("may not write the home section"),
        "{}",
        entry.detail
    );
    let held = pingliang.ctl_json(&["quarantine", "list"]);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(pingliang.show(&id).await.expect("member").name, "张三");
    // The cursor moved past the bad event: later events still flow.
    lanzhou.ctl_ok(&["contact", "record", &id, "--channel", "phone"]);
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "the contact after the forged event arrives",
            async || {
                pingliang
                    .show(&id)
                    .await
                    .is_some_and(|m| !m.last_contact.is_empty())
            },
        )
        .await;
}

/// A roster of `n` members away to Lanzhou (620102), as CSV.
fn roster(n: usize) -> String {
    let mut csv = String::from(
        "name,gender,birth_date,party_status,home_branch,destination_place,departed_on\n",
    );
    for i in 0..n {
        csv.push_str(&format!(
            "成员{i},男,1990-01-01,正式,b1,620102,2026-10-01\n"
        ));
    }
    csv
}

async fn import(node: &TestNode, csv: String) -> pb::MemberImportResponse {
    tokio::time::timeout(BACKLOG_WAIT, node.import_csv(&csv))
        .await
        .expect("import within the deadline")
        .expect("member import")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_stopped_abruptly_mid_backlog_applies_every_event_exactly_once() {
    const N: usize = 10_000;
    let fed = Federation::new("replication-crash-mid-backlog");
    let pingliang = fed.node("pingliang").await;
    pingliang.org_add("b1").await;
    let imported = import(&pingliang, roster(N)).await;
    assert_eq!(imported.imported as usize, N, "{:?}", imported.problems);
    // Small batches, so the backlog takes many transactions to drain.
    let mut lanzhou = fed
        .start(fed.config("lanzhou").limit("batch_events_max", 25))
        .await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    // Activation shares all N members at once: that is the backlog.
    let agreement = pingliang.ctl_json(&[
        "agreement",
        "propose",
        "--with",
        "lanzhou",
        "--number",
        "PL-LZ",
        "--from",
        "2020-01-01",
        "--until",
        "2099-12-31",
    ]);
    let agreement_id = agreement[0].1["agreement_id"]
        .as_str()
        .expect("an agreement id")
        .to_owned();
    lanzhou
        .wait_until(DEFAULT_WAIT, "lanzhou received the proposal", async || {
            lanzhou
                .ctl(&["agreement", "show", &agreement_id])
                .status
                .success()
        })
        .await;
    lanzhou.ctl_ok(&["agreement", "accept", &agreement_id]);

    // What pingliang holds for lanzhou, read from its database file.
    let held_for_lanzhou = || -> (u64, u64) {
        rusqlite::Connection::open(pingliang.db_path())
            .expect("open pingliang's database")
            .query_row(
                "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events WHERE audience = 'lanzhou'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("count events")
    };
    pingliang
        .wait_until(
            BACKLOG_WAIT,
            "the agreement is active and shared all members",
            async || held_for_lanzhou().0 >= N as u64,
        )
        .await;
    let (held, head) = held_for_lanzhou();
    let cursor = lanzhou
        .wait_for(
            BACKLOG_WAIT,
            "lanzhou has applied part of the backlog",
            async || {
                let r = lanzhou.replication("pingliang").await;
                (r.my_cursor > 100).then_some(r.my_cursor)
            },
        )
        .await;
    lanzhou.kill();
    println!("lanzhou killed at cursor {cursor} of {head}");
    assert!(
        cursor < head,
        "the kill came after the backlog drained: make batches smaller"
    );
    lanzhou.start().await;
    lanzhou
        .wait_until(
            BACKLOG_WAIT,
            "lanzhou caught up with pingliang",
            async || lanzhou.replication("pingliang").await.my_cursor == head,
        )
        .await;
    let after = lanzhou.replication("pingliang").await;
    assert_eq!(after.quarantined, 0);
    assert_eq!(
        after.applied_total, held,
        "every event applied exactly once (killed at cursor {cursor} of {head})"
    );
    assert_eq!(hosted_total(&lanzhou).await, N as u64);
    // Contents: every copy equals the owner's version and name.
    let mut home = pingliang.admin().await;
    let mut host = lanzhou.admin().await;
    let owned = timed(
        "list",
        home.member_list(pb::MemberListRequest {
            scope: "owned".into(),
            limit: 100_000,
            ..Default::default()
        }),
    )
    .await
    .expect("list")
    .into_inner()
    .members;
    let copies = timed(
        "list",
        host.member_list(pb::MemberListRequest {
            scope: "hosted".into(),
            limit: 100_000,
            ..Default::default()
        }),
    )
    .await
    .expect("list")
    .into_inner()
    .members;
    let key = |m: &pb::Member| (m.member_id.clone(), m.name.clone(), m.generation, m.counter);
    let mut owned: Vec<_> = owned.iter().map(key).collect();
    let mut copies: Vec<_> = copies.iter().map(key).collect();
    owned.sort();
    copies.sort();
    assert_eq!(owned.len(), copies.len());
    assert!(
        owned == copies,
        "the copies at lanzhou differ from pingliang's records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_heals_without_an_operator_and_the_lag_returns_to_zero() {
    let fed = Federation::new("replication-partition");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let proxy = Proxy::start(pingliang.federation_addr()).await;
    pingliang.peer_serving(&lanzhou, "6201");
    lanzhou.peer_add(&pingliang, &proxy.endpoint(), None);
    fed.wait_linked(&pingliang, &lanzhou).await;
    fed.agree(&pingliang, &lanzhou, "PL-LZ").await;
    let id = member_away(&pingliang).await;
    lanzhou
        .wait_for(DEFAULT_WAIT, "the copy at lanzhou", async || {
            lanzhou.show(&id).await
        })
        .await;

    proxy.partition();
    lanzhou
        .wait_peer("pingliang", "the link is down", |p| !p.outbound_up)
        .await;
    for i in 0..5 {
        pingliang.set_phone(&id, &format!("1390000000{i}")).await;
    }
    assert_ne!(lanzhou.show(&id).await.expect("copy").phone, "13900000004");
    proxy.heal();

    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "the update made during the partition arrives",
            async || {
                lanzhou
                    .show(&id)
                    .await
                    .is_some_and(|m| m.phone == "13900000004")
            },
        )
        .await;
    lanzhou
        .wait_until(DEFAULT_WAIT, "the lag is zero", async || {
            let r = lanzhou.replication("pingliang").await;
            r.outbound_up && r.my_cursor == r.peer_head
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_resumes_from_its_cursor_when_the_owner_restarts() {
    let fed = Federation::new("replication-owner-restart");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    link_under_agreement(&fed, &pingliang, &lanzhou, "6201").await;
    let id = member_away(&pingliang).await;
    pingliang.set_phone(&id, "13900000001").await;
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "lanzhou applied the first changes",
            async || {
                lanzhou
                    .show(&id)
                    .await
                    .is_some_and(|m| m.phone == "13900000001")
            },
        )
        .await;
    let before = lanzhou.replication("pingliang").await;
    assert!(before.my_cursor > 0);

    pingliang.restart().await;
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "lanzhou pulls again, from its cursor",
            async || {
                let r = pingliang.replication("lanzhou").await;
                r.inbound_up && r.peer_cursor == before.my_cursor
            },
        )
        .await;
    pingliang.set_phone(&id, "13900000002").await;
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "the change after the restart arrives",
            async || {
                lanzhou
                    .show(&id)
                    .await
                    .is_some_and(|m| m.phone == "13900000002")
            },
        )
        .await;
    let after = lanzhou.replication("pingliang").await;
    assert_eq!(
        after.applied_total,
        before.applied_total + 1,
        "nothing applied twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_a_bad_row_imports_nothing_and_names_the_row() {
    let fed = Federation::new("replication-import");
    let pingliang = fed.node("pingliang").await;
    pingliang.org_add("b1").await;
    let file = fed.dir().join("roster.csv");
    std::fs::write(
        &file,
        "\u{feff}姓名,性别,出生日期,党员类别,所在支部\n李四,男,1985-01-02,正式,b1\n王五,女,1985-13-02,正式,b1\n赵六,女,1986-01-02,预备,b1\n",
    )
    .expect("write the roster");
    let output = pingliang.ctl(&["member", "import", file.to_str().expect("utf-8 path")]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        liaison_tests::describe_output(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("row 3, column 出生日期"), "{stderr}");
    assert!(stderr.contains("1985-13-02"), "{stderr}");
    let mut admin = pingliang.admin().await;
    let total = timed(
        "member list",
        admin.member_list(pb::MemberListRequest::default()),
    )
    .await
    .expect("member list")
    .into_inner()
    .total;
    assert_eq!(total, 0, "nothing imported from a file with a bad row");
    pingliang.ctl_ok(&[
        "member",
        "import",
        file.to_str().expect("utf-8 path"),
        "--skip-bad",
    ]);
    let total = timed(
        "member list",
        admin.member_list(pb::MemberListRequest::default()),
    )
    .await
    .expect("member list")
    .into_inner()
    .total;
    assert_eq!(total, 2);
}
