//! Backup, restore and reconcile between real nodes (DESIGN §7).
//!
//! Pingliang takes a backup, goes on working with Lanzhou (edits, a host
//! update at Lanzhou, a transfer, a new member), is stopped, and restarted
//! on the backup. It must refuse owner actions until it has reconciled,
//! adopt what Lanzhou holds, make its re-emitted home sections win at the
//! host, leave no member with two owners, finish transfers on both sides,
//! and say which period of local writes was lost.

use liaison_proto::v1 as pb;
use liaison_tests::ownership::{self, NodeDb};
use liaison_tests::{timed, Federation, TestNode, DEFAULT_WAIT};
use tonic::{Code, Status};

async fn org_add(node: &TestNode, org_id: &str) {
    let mut admin = node.admin().await;
    timed(
        "org add",
        admin.org_add(pb::Org {
            org_id: org_id.into(),
            name: format!("{}第一支部", node.display_name),
            level: "branch".into(),
            ..Default::default()
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("org add at {}: {s}", node.node_id));
}

/// A member of branch `b1`, away to Lanzhou (place 620102).
async fn member_away(node: &TestNode, name: &str, national_id: &str) -> String {
    let mut admin = node.admin().await;
    let member_id = timed(
        "member add",
        admin.member_add(pb::MemberFields {
            name: Some(name.into()),
            gender: Some("男".into()),
            birth_date: Some(format!(
                "{}-{}-{}",
                &national_id[6..10],
                &national_id[10..12],
                &national_id[12..14]
            )),
            national_id: Some(national_id.into()),
            party_status: Some("正式".into()),
            home_branch: Some("b1".into()),
            phone: Some("13800000000".into()),
            ..Default::default()
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("member add at {}: {s}", node.node_id))
    .into_inner()
    .member_id;
    timed(
        "outflow register",
        admin.outflow_register(pb::OutflowRequest {
            member_id: member_id.clone(),
            destination_place: "620102".into(),
            departed_on: "2026-01-10".into(),
            ..Default::default()
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("outflow register at {}: {s}", node.node_id));
    member_id
}

async fn set_phone(node: &TestNode, member_id: &str, phone: &str) -> Result<pb::Member, Status> {
    let mut admin = node.admin().await;
    timed(
        "member update",
        admin.member_update(pb::MemberUpdateRequest {
            member_id: member_id.into(),
            fields: Some(pb::MemberFields {
                phone: Some(phone.into()),
                ..Default::default()
            }),
        }),
    )
    .await
    .map(tonic::Response::into_inner)
}

async fn show(node: &TestNode, member_id: &str) -> Option<pb::Member> {
    let mut admin = node.admin().await;
    match timed(
        "member show",
        admin.member_show(pb::MemberRef {
            member_id: member_id.into(),
        }),
    )
    .await
    {
        Ok(member) => Some(member.into_inner()),
        Err(s) if s.code() == Code::NotFound => None,
        Err(s) => panic!("member show at {}: {s}", node.node_id),
    }
}

async fn transfer(node: &TestNode, transfer_id: &str) -> Option<pb::TransferView> {
    let mut admin = node.admin().await;
    match timed(
        "transfer show",
        admin.transfer_show(pb::TransferRef {
            transfer_id: transfer_id.into(),
        }),
    )
    .await
    {
        Ok(view) => Some(view.into_inner()),
        Err(s) if s.code() == Code::NotFound => None,
        Err(s) => panic!("transfer show at {}: {s}", node.node_id),
    }
}

async fn wait_transfer(node: &TestNode, transfer_id: &str, state: &str) {
    node.wait_until(
        DEFAULT_WAIT,
        &format!("transfer {transfer_id} {state} at {}", node.node_id),
        async || {
            transfer(node, transfer_id)
                .await
                .is_some_and(|t| t.state == state)
        },
    )
    .await;
}

async fn reconcile_status(node: &TestNode) -> pb::ReconcileStatus {
    let mut admin = node.admin().await;
    timed(
        "reconcile status",
        admin.reconcile_status(pb::ReconcileStatusRequest {}),
    )
    .await
    .unwrap_or_else(|s| panic!("reconcile status at {}: {s}", node.node_id))
    .into_inner()
}

fn add_peer(node: &TestNode, other: &TestNode, serves: Option<&str>) {
    let endpoint = other.endpoint();
    let mut args = vec![
        "peer",
        "add",
        other.node_id.as_str(),
        "--endpoint",
        endpoint.as_str(),
        "--name",
        other.display_name.as_str(),
    ];
    if let Some(place) = serves {
        args.extend(["--serves", place]);
    }
    node.ctl_ok(&args);
}

/// Replaces `node`'s database (stopped) with the backup at `backup`, the
/// way an operator restores: the write-ahead log files of the old database
/// go too.
fn restore_backup(node: &TestNode, backup: &std::path::Path) {
    let db = node.db_path();
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    std::fs::copy(backup, &db).expect("copy the backup into place");
}

fn owners(nodes: &[&TestNode]) -> Vec<NodeDb> {
    nodes
        .iter()
        .map(|n| NodeDb::new(&n.node_id, n.db_path()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_node_reconciles_before_it_acts_as_an_owner_and_its_re_emission_wins() {
    let fed = Federation::new("restore");
    let mut pingliang = fed.node("pingliang").await;
    let mut lanzhou = fed.node("lanzhou").await;
    add_peer(&pingliang, &lanzhou, Some("6201"));
    add_peer(&lanzhou, &pingliang, None);
    fed.wait_linked(&pingliang, &lanzhou).await;
    org_add(&pingliang, "b1").await;
    org_add(&lanzhou, "b1").await;
    let edited = member_away(&pingliang, "张三", "620801199005170014").await;
    let moved = member_away(&pingliang, "李四", "620801199106180027").await;
    fed.agree(&pingliang, &lanzhou, "平凉-兰州-2026-01").await;
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "both members shared with Lanzhou",
            async || {
                show(&lanzhou, &edited).await.is_some() && show(&lanzhou, &moved).await.is_some()
            },
        )
        .await;

    // The backup, through the admin service, audited.
    let backup = fed.dir().join("pingliang-backup.db");
    let printed = pingliang.ctl_ok(&["backup", "--out", backup.to_str().unwrap()]);
    assert!(printed.contains("backup written"), "{printed}");
    assert!(pingliang
        .audit()
        .iter()
        .any(|e| e.is("backup", "ok", "bytes")));
    let again = pingliang.ctl(&["backup", "--out", backup.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "an existing file is refused");

    // After the backup: an edit, a host update, a transfer, a new member.
    set_phone(&pingliang, &edited, "13900000001").await.unwrap();
    let mut admin = lanzhou.admin().await;
    timed(
        "host section set",
        admin.host_section_set(pb::HostSectionRequest {
            member_id: edited.clone(),
            employer: Some("兰州建工".into()),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let mut admin = pingliang.admin().await;
    let t = timed(
        "transfer start",
        admin.transfer_start(pb::TransferStartRequest {
            member_id: moved.clone(),
            to: "lanzhou".into(),
            valid_days: 30,
            reason: "定居兰州".into(),
        }),
    )
    .await
    .unwrap()
    .into_inner();
    wait_transfer(&lanzhou, &t.transfer_id, "pending").await;
    let mut admin = lanzhou.admin().await;
    timed(
        "transfer accept",
        admin.transfer_accept(pb::TransferAcceptRequest {
            transfer_id: t.transfer_id.clone(),
            branch: "b1".into(),
        }),
    )
    .await
    .unwrap();
    wait_transfer(&pingliang, &t.transfer_id, "completed").await;
    let forgotten = member_away(&pingliang, "王五", "62080119920719003X").await;
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "the edit and the new member at Lanzhou",
            async || {
                show(&lanzhou, &forgotten).await.is_some()
                    && show(&lanzhou, &edited)
                        .await
                        .is_some_and(|m| m.phone == "13900000001")
            },
        )
        .await;
    pingliang
        .wait_until(DEFAULT_WAIT, "the host section at Pingliang", async || {
            show(&pingliang, &edited)
                .await
                .is_some_and(|m| m.host_sections.iter().any(|h| h.employer == "兰州建工"))
        })
        .await;
    let held = show(&lanzhou, &edited).await.unwrap();

    // Disaster: Pingliang restarts on the backup while Lanzhou is down.
    pingliang.stop();
    lanzhou.stop();
    restore_backup(&pingliang, &backup);
    pingliang.start().await;
    let status = reconcile_status(&pingliang).await;
    assert!(status.reconciling, "{status:?}");
    assert!(status.backup_at_ms > 0);
    assert!(
        status.lost_period.contains("from the backup"),
        "{}",
        status.lost_period
    );
    assert_eq!(status.peers.len(), 1);
    assert_eq!(status.peers[0].state, "waiting");
    let refused = set_phone(&pingliang, &edited, "13700000000")
        .await
        .expect_err("owner edits are refused while reconciling");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("reconcil"),
        "{}",
        refused.message()
    );
    assert!(pingliang.status().await.reconciling);
    let shown = pingliang.ctl_ok(&["status"]);
    assert!(shown.contains("reconciling after a restore"), "{shown}");
    let shown = pingliang.ctl_ok(&["reconcile", "status"]);
    assert!(
        shown.contains("lanzhou") && shown.contains("waiting"),
        "{shown}"
    );

    // Lanzhou comes back: Pingliang adopts what it holds.
    lanzhou.start().await;
    pingliang
        .wait_until(DEFAULT_WAIT, "Pingliang reconciled", async || {
            !reconcile_status(&pingliang).await.reconciling
        })
        .await;
    let status = reconcile_status(&pingliang).await;
    assert_eq!(status.peers[0].state, "adopted", "{status:?}");
    assert!(
        status.peers[0].detail.contains("1 completed")
            && status.peers[0]
                .detail
                .contains("1 copies of forgotten members"),
        "{}",
        status.peers[0].detail
    );
    assert!(status.finished_at_ms > 0);
    assert!(pingliang
        .audit()
        .iter()
        .any(|e| e.is("reconcile.finish", "ok", "lost")));

    // The transfer is final on both sides; the member has one owner.
    let at_pingliang = transfer(&pingliang, &t.transfer_id).await.unwrap();
    assert_eq!(at_pingliang.state, "completed");
    assert_eq!(
        transfer(&lanzhou, &t.transfer_id).await.unwrap().state,
        "completed"
    );
    let tombstone = show(&pingliang, &moved).await.unwrap();
    assert!(!tombstone.owned);
    assert_eq!(tombstone.moved.unwrap().to_node, "lanzhou");
    assert!(show(&lanzhou, &moved).await.unwrap().owned);
    ownership::assert_single_owner(&owners(&[&pingliang, &lanzhou]), "after reconcile");

    // The re-emitted home section wins at the host: the backup's phone at a
    // version past the one Lanzhou held.
    lanzhou
        .wait_until(DEFAULT_WAIT, "the re-emission at Lanzhou", async || {
            show(&lanzhou, &edited).await.is_some_and(|m| {
                m.phone == "13800000000"
                    && (m.generation, m.counter) > (held.generation, held.counter)
            })
        })
        .await;
    // The host's records came home again.
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "the host section at Pingliang again",
            async || {
                show(&pingliang, &edited)
                    .await
                    .is_some_and(|m| m.host_sections.iter().any(|h| h.employer == "兰州建工"))
            },
        )
        .await;
    // The member Pingliang forgot is dropped at the host at EpochComplete.
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "the forgotten member's copy dropped",
            async || show(&lanzhou, &forgotten).await.is_none(),
        )
        .await;
    // And Pingliang acts as an owner again.
    let member = set_phone(&pingliang, &edited, "13700000000").await.unwrap();
    assert_eq!(member.phone, "13700000000");
    lanzhou
        .wait_until(DEFAULT_WAIT, "the new edit at Lanzhou", async || {
            show(&lanzhou, &edited)
                .await
                .is_some_and(|m| m.phone == "13700000000")
        })
        .await;
    ownership::assert_single_owner(&owners(&[&pingliang, &lanzhou]), "at the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_without_an_unreachable_peer_goes_on_and_is_audited() {
    let fed = Federation::new("restore-without-peer");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let mut xian = fed.node("xian").await;
    add_peer(&pingliang, &lanzhou, Some("6201"));
    add_peer(&lanzhou, &pingliang, None);
    add_peer(&pingliang, &xian, Some("6101"));
    add_peer(&xian, &pingliang, None);
    fed.wait_linked(&pingliang, &lanzhou).await;
    fed.wait_linked(&pingliang, &xian).await;
    org_add(&pingliang, "b1").await;
    let member = member_away(&pingliang, "张三", "620801199005170014").await;
    let backup = fed.dir().join("pingliang-backup.db");
    pingliang.ctl_ok(&["backup", "--out", backup.to_str().unwrap()]);

    pingliang.stop();
    xian.stop();
    restore_backup(&pingliang, &backup);
    pingliang.start().await;
    pingliang
        .wait_until(DEFAULT_WAIT, "Lanzhou adopted, Xi'an waiting", async || {
            let status = reconcile_status(&pingliang).await;
            status.reconciling
                && status
                    .peers
                    .iter()
                    .any(|p| p.peer == "lanzhou" && p.state == "adopted")
                && status
                    .peers
                    .iter()
                    .any(|p| p.peer == "xian" && p.state == "waiting")
        })
        .await;
    let refused = set_phone(&pingliang, &member, "13700000000")
        .await
        .expect_err("refused while Xi'an is awaited");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("xian"), "{}", refused.message());

    // Bad input changes nothing and says what to do.
    let unknown = pingliang.ctl(&["reconcile", "--without-peer", "wuhan"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(reconcile_status(&pingliang).await.reconciling);

    let printed = pingliang.ctl_ok(&["reconcile", "--without-peer", "xian"]);
    assert!(printed.contains("reconciled"), "{printed}");
    let status = reconcile_status(&pingliang).await;
    assert!(!status.reconciling);
    assert!(status
        .peers
        .iter()
        .any(|p| p.peer == "xian" && p.state == "skipped"));
    assert!(pingliang
        .audit()
        .iter()
        .any(|e| e.is("reconcile.without_peer", "ok", "two owners")));
    set_phone(&pingliang, &member, "13700000000").await.unwrap();

    // Xi'an returns: it is adopted late, and then served.
    xian.start().await;
    pingliang
        .wait_until(DEFAULT_WAIT, "Xi'an adopted after its return", async || {
            reconcile_status(&pingliang)
                .await
                .peers
                .iter()
                .any(|p| p.peer == "xian" && p.state == "adopted")
        })
        .await;
    fed.wait_linked(&pingliang, &xian).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_under_a_known_node_id_is_detected_at_hello_and_reconciles() {
    let fed = Federation::new("restore-new-database");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    add_peer(&pingliang, &lanzhou, Some("6201"));
    add_peer(&lanzhou, &pingliang, None);
    fed.wait_linked(&pingliang, &lanzhou).await;
    org_add(&pingliang, "b1").await;
    let member = member_away(&pingliang, "张三", "620801199005170014").await;
    let agreement = fed.agree(&pingliang, &lanzhou, "平凉-兰州-2026-01").await;
    lanzhou
        .wait_until(DEFAULT_WAIT, "the member shared with Lanzhou", async || {
            show(&lanzhou, &member).await.is_some()
        })
        .await;

    // Reinstalled without a backup: an empty database, the same node id.
    pingliang.stop();
    restore_backup_none(&pingliang);
    pingliang.start().await;
    assert!(!reconcile_status(&pingliang).await.reconciling);
    add_peer(&pingliang, &lanzhou, Some("6201"));
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "Pingliang reconciled with Lanzhou",
            async || {
                let status = reconcile_status(&pingliang).await;
                status.restored_at_ms > 0 && !status.reconciling
            },
        )
        .await;
    let status = reconcile_status(&pingliang).await;
    assert_eq!(status.backup_at_ms, 0, "no backup: a new database");
    assert!(
        status.lost_period.contains("new database"),
        "{}",
        status.lost_period
    );
    assert!(pingliang
        .audit()
        .iter()
        .any(|e| e.is("reconcile.begin", "ok", "new database")));
    // The agreement came back from Lanzhou; the member this database never
    // had is dropped at the host at EpochComplete.
    let shown = pingliang.ctl(&["agreement", "show", &agreement]);
    assert!(shown.status.success(), "the agreement was adopted back");
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "the forgotten member's copy dropped",
            async || show(&lanzhou, &member).await.is_none(),
        )
        .await;
    fed.wait_linked(&pingliang, &lanzhou).await;
}

/// Deletes `node`'s database (stopped): a reinstall without a backup.
fn restore_backup_none(node: &TestNode) {
    let db = node.db_path();
    for suffix in ["", "-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
}
