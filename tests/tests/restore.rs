//! Backup, restore and reconcile between real nodes (docs/restore.md).
//!
//! Pingliang takes a backup, goes on working with Lanzhou (edits, a host
//! update at Lanzhou, a transfer, a new member), is stopped, and restarted
//! on the backup. It must refuse owner actions until it has reconciled,
//! adopt what Lanzhou holds, make its re-emitted home sections win at the
//! host, leave no member with two owners, finish transfers on both sides,
//! and say which period of local writes was lost.

use liaison_proto::v1 as pb;
use liaison_tests::ownership;
use liaison_tests::{timed, Federation, TestNode, DEFAULT_WAIT};
use tonic::Code;

/// A member of branch `b1`, away to Lanzhou (place 620102).
async fn member_away(node: &TestNode, name: &str, national_id: &str) -> String {
    let member_id = node.member_add(name, national_id).await;
    node.outflow_register(&member_id, "620102", "2026-01-10")
        .await;
    member_id
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_node_reconciles_before_it_acts_as_an_owner_and_its_re_emission_wins() {
    let fed = Federation::new("restore");
    let mut pingliang = fed.node("pingliang").await;
    let mut lanzhou = fed.node("lanzhou").await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let edited = member_away(&pingliang, "张三", "620801199005170014").await;
    let moved = member_away(&pingliang, "李四", "620801199106180027").await;
    fed.agree(&pingliang, &lanzhou, "平凉-兰州-2026-01").await;
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "both members shared with Lanzhou",
            async || lanzhou.show(&edited).await.is_some() && lanzhou.show(&moved).await.is_some(),
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
    pingliang.set_phone(&edited, "13900000001").await;
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
    let t = pingliang.transfer_start(&moved, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    lanzhou.transfer_accept(&t.transfer_id).await;
    pingliang.wait_transfer(&t.transfer_id, "completed").await;
    let forgotten = member_away(&pingliang, "王五", "62080119920719003X").await;
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "the edit and the new member at Lanzhou",
            async || {
                lanzhou.show(&forgotten).await.is_some()
                    && lanzhou
                        .show(&edited)
                        .await
                        .is_some_and(|m| m.phone == "13900000001")
            },
        )
        .await;
    pingliang
        .wait_until(DEFAULT_WAIT, "the host section at Pingliang", async || {
            pingliang
                .show(&edited)
                .await
                .is_some_and(|m| m.host_sections.iter().any(|h| h.employer == "兰州建工"))
        })
        .await;
    let held = lanzhou.show(&edited).await.unwrap();

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
    let refused = pingliang
        .try_set_phone(&edited, "13700000000")
        .await
        .expect_err("owner edits are refused while reconciling");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("reconcil"),
        "{}",
        refused.message()
    );
    // An import is an owner action too, checked in the core: refused with
    // the same answer, and nothing imported.
    let roster = pingliang.dir().join("roster.csv");
    std::fs::write(
        &roster,
        "姓名,性别,出生日期,党员类别,所在支部\n孙新,男,1991-02-03,正式,b1\n",
    )
    .expect("write the roster");
    let before = pingliang.ctl_ok(&["member", "list"]);
    let import = pingliang.ctl(&["member", "import", roster.to_str().expect("a UTF-8 path")]);
    let said = String::from_utf8_lossy(&import.stderr);
    assert_eq!(import.status.code(), Some(1), "{said}");
    assert!(
        said.contains("reconcil") && said.contains("lanzhou"),
        "{said}"
    );
    assert_eq!(pingliang.ctl_ok(&["member", "list"]), before);
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
    let at_pingliang = pingliang.transfer(&t.transfer_id).await.unwrap();
    assert_eq!(at_pingliang.state, "completed");
    assert_eq!(
        lanzhou.transfer(&t.transfer_id).await.unwrap().state,
        "completed"
    );
    let tombstone = pingliang.show(&moved).await.unwrap();
    assert!(!tombstone.owned);
    assert_eq!(tombstone.moved.unwrap().to_node, "lanzhou");
    assert!(lanzhou.show(&moved).await.unwrap().owned);
    ownership::assert_single_owner(&ownership::dbs(&[&pingliang, &lanzhou]), "after reconcile");

    // The re-emitted home section wins at the host: the backup's phone at a
    // version past the one Lanzhou held.
    lanzhou
        .wait_until(DEFAULT_WAIT, "the re-emission at Lanzhou", async || {
            lanzhou.show(&edited).await.is_some_and(|m| {
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
                pingliang
                    .show(&edited)
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
            async || lanzhou.show(&forgotten).await.is_none(),
        )
        .await;
    // And Pingliang acts as an owner again.
    let member = pingliang.set_phone(&edited, "13700000000").await;
    assert_eq!(member.phone, "13700000000");
    lanzhou
        .wait_until(DEFAULT_WAIT, "the new edit at Lanzhou", async || {
            lanzhou
                .show(&edited)
                .await
                .is_some_and(|m| m.phone == "13700000000")
        })
        .await;
    ownership::assert_single_owner(&ownership::dbs(&[&pingliang, &lanzhou]), "at the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_without_an_unreachable_peer_goes_on_and_is_audited() {
    let fed = Federation::new("restore-without-peer");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let mut xian = fed.node("xian").await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    fed.link_serving(&pingliang, &xian, "6101").await;
    pingliang.org_add("b1").await;
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
    let refused = pingliang
        .try_set_phone(&member, "13700000000")
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
    pingliang.set_phone(&member, "13700000000").await;

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

/// Both sides of a transfer forget it: Pingliang is restored to a backup
/// from before it, Lanzhou, its disk lost, is reinstalled on a new
/// database. Later Lanzhou's operator finds its backup from after the
/// transfer and restores it (no restore of Lanzhou kept its old log to an
/// earlier point, so its peers do not refuse it). Pingliang, which adopted
/// Lanzhou's holdings when both forgot the transfer, takes them again
/// when Lanzhou shows its new log id, and yields the member to the later
/// generation Lanzhou holds it at (docs/restore.md, Taking a peer's
/// holdings again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_takes_again_the_holdings_of_a_peer_restored_after_it_adopted_it() {
    let fed = Federation::new("restore-retake");
    let mut pingliang = fed.node("pingliang").await;
    let mut lanzhou = fed.node("lanzhou").await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let member = member_away(&pingliang, "李四", "620801199106180027").await;
    let backup = |node: &TestNode, name: &str| {
        let path = fed.dir().join(name);
        node.ctl_ok(&["backup", "--out", path.to_str().unwrap()]);
        path
    };
    let pingliang_before = backup(&pingliang, "pingliang-before.db");
    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    lanzhou.transfer_accept(&t.transfer_id).await;
    pingliang.wait_transfer(&t.transfer_id, "completed").await;
    lanzhou
        .wait_until(DEFAULT_WAIT, "the member owned at Lanzhou", async || {
            lanzhou.show(&member).await.is_some_and(|m| m.owned)
        })
        .await;
    let lanzhou_after = backup(&lanzhou, "lanzhou-after.db");

    // Both forget the transfer, and reconcile with each other.
    pingliang.stop();
    lanzhou.stop();
    restore_backup(&pingliang, &pingliang_before);
    restore_backup_none(&lanzhou);
    pingliang.start().await;
    lanzhou.start().await;
    lanzhou.peer(&pingliang);
    for node in [&pingliang, &lanzhou] {
        node.wait_until(DEFAULT_WAIT, "reconciled", async || {
            !reconcile_status(node).await.reconciling
        })
        .await;
    }
    assert!(pingliang.show(&member).await.unwrap().owned);

    // Lanzhou is restored again, to its backup from after the transfer.
    lanzhou.stop();
    restore_backup(&lanzhou, &lanzhou_after);
    lanzhou.start().await;
    lanzhou
        .wait_until(DEFAULT_WAIT, "Lanzhou reconciled", async || {
            !reconcile_status(&lanzhou).await.reconciling
        })
        .await;
    pingliang
        .wait_until(DEFAULT_WAIT, "Pingliang yields the member", async || {
            pingliang.show(&member).await.is_some_and(|m| !m.owned)
        })
        .await;
    let tombstone = pingliang.show(&member).await.unwrap();
    assert_eq!(tombstone.moved.unwrap().to_node, "lanzhou");
    assert!(lanzhou.show(&member).await.unwrap().owned);
    assert!(pingliang
        .audit()
        .iter()
        .any(|e| e.action == "reconcile.retake" && e.target == "lanzhou"));
    ownership::assert_single_owner(&ownership::dbs(&[&pingliang, &lanzhou]), "after the retake");
    // Replication goes on under Lanzhou's new log.
    fed.wait_linked(&pingliang, &lanzhou).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_under_a_known_node_id_is_detected_at_hello_and_reconciles() {
    let fed = Federation::new("restore-new-database");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    pingliang.org_add("b1").await;
    let member = member_away(&pingliang, "张三", "620801199005170014").await;
    let agreement = fed.agree(&pingliang, &lanzhou, "平凉-兰州-2026-01").await;
    lanzhou
        .wait_until(DEFAULT_WAIT, "the member shared with Lanzhou", async || {
            lanzhou.show(&member).await.is_some()
        })
        .await;

    // Reinstalled without a backup: an empty database, the same node id.
    pingliang.stop();
    restore_backup_none(&pingliang);
    pingliang.start().await;
    assert!(!reconcile_status(&pingliang).await.reconciling);
    pingliang.peer_serving(&lanzhou, "6201");
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
            async || lanzhou.show(&member).await.is_none(),
        )
        .await;
    fed.wait_linked(&pingliang, &lanzhou).await;
}

/// Whether `node`'s database holds where a restore of `origin` left one
/// of its logs (what `EpochComplete` said).
fn knows_branch_point(node: &TestNode, origin: &str) -> bool {
    let conn = rusqlite::Connection::open_with_flags(
        node.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the database read-only");
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM peer_branch_points WHERE origin = ?1)",
        [origin],
        |r| r.get(0),
    )
    .unwrap_or(false)
}

/// Restored from its first backup, Pingliang reconciles and its
/// `EpochComplete` tells Lanzhou where that branch left the old log. Its
/// disk lost, it is restored from its second backup, taken later on that
/// log (a branch it left): with no database in place to compare, Lanzhou
/// refuses its holdings, Pingliang keeps waiting and says why, and,
/// restored again from the first backup as the message says, it
/// reconciles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_refuses_its_holdings_to_a_backup_of_a_branch_the_node_left() {
    let fed = Federation::new("restore-left-branch");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    pingliang.org_add("b1").await;
    // Shared under an agreement, so each member goes into the log.
    fed.agree(&pingliang, &lanzhou, "平凉-兰州-2026-01").await;
    member_away(&pingliang, "张三", "620801199005170014").await;
    let backup = |node: &TestNode, name: &str| {
        let path = fed.dir().join(name);
        node.ctl_ok(&["backup", "--out", path.to_str().unwrap()]);
        path
    };
    let first = backup(&pingliang, "pingliang-1.db");
    member_away(&pingliang, "李四", "620801199106180027").await;
    let second = backup(&pingliang, "pingliang-2.db");

    pingliang.stop();
    restore_backup(&pingliang, &first);
    pingliang.start().await;
    pingliang
        .wait_until(DEFAULT_WAIT, "Pingliang reconciled", async || {
            !reconcile_status(&pingliang).await.reconciling
        })
        .await;
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "Lanzhou knows where the restore left the log",
            async || knows_branch_point(&lanzhou, "pingliang"),
        )
        .await;

    // The disk is lost: the second backup onto a new one.
    pingliang.stop();
    restore_backup_none(&pingliang);
    restore_backup(&pingliang, &second);
    pingliang.start().await;
    pingliang
        .wait_until(DEFAULT_WAIT, "Lanzhou's refusal shown", async || {
            reconcile_status(&pingliang)
                .await
                .peers
                .iter()
                .any(|p| p.peer == "lanzhou" && p.detail.contains("refused its holdings"))
        })
        .await;
    let status = reconcile_status(&pingliang).await;
    assert!(status.reconciling, "a refused restore stays reconciling");
    let lanzhou_row = status.peers.iter().find(|p| p.peer == "lanzhou").unwrap();
    assert_eq!(lanzhou_row.state, "waiting");
    assert!(
        lanzhou_row.detail.contains("restore pingliang again"),
        "{}",
        lanzhou_row.detail
    );
    assert!(pingliang
        .audit()
        .iter()
        .any(|e| e.is("reconcile.refused", "refused", "branch")));
    assert!(lanzhou
        .audit()
        .iter()
        .any(|e| e.is("federation.holdings", "refused", "branch")));

    // Restored again from the backup the message names.
    pingliang.stop();
    restore_backup_none(&pingliang);
    restore_backup(&pingliang, &first);
    pingliang.start().await;
    pingliang
        .wait_until(DEFAULT_WAIT, "Pingliang reconciled again", async || {
            !reconcile_status(&pingliang).await.reconciling
        })
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
