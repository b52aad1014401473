//! Stopping a node: SIGTERM while a peer follows a busy log, a member
//! import runs and other admin calls are open. The node finishes the calls
//! in flight and commits every change it took, answers what comes later as
//! unavailable (never as a refusal), logs nothing after "stopped", and
//! leaves its database checkpointed (an empty or absent `-wal` file).

use liaison_tests::{pb, timed, Federation, TestNode, DEFAULT_WAIT};
use tonic::Code;

type Admin = liaison_rpc::v1::admin_client::AdminClient<tonic::transport::Channel>;

/// Codes `liaisonctl` reports as "the node refused the request".
const REFUSALS: [Code; 6] = [
    Code::InvalidArgument,
    Code::NotFound,
    Code::AlreadyExists,
    Code::FailedPrecondition,
    Code::PermissionDenied,
    Code::OutOfRange,
];

async fn add_branch(node: &TestNode) {
    let mut admin = node.admin().await;
    timed(
        "org add",
        admin.org_add(pb::Org {
            org_id: "b1".into(),
            name: "崆峒区第一支部".into(),
            level: "branch".into(),
            ..Default::default()
        }),
    )
    .await
    .expect("org add");
}

/// A roster of `n` members named `{prefix}{i}`, away to Lanzhou (620102).
fn roster(prefix: &str, n: usize) -> String {
    let mut csv = String::from(
        "name,gender,birth_date,party_status,home_branch,destination_place,departed_on\n",
    );
    for i in 0..n {
        csv.push_str(&format!(
            "{prefix}{i},男,1990-01-01,正式,b1,620102,2026-10-01\n"
        ));
    }
    csv
}

async fn import(node: &TestNode, csv: String) -> Result<pb::MemberImportResponse, tonic::Status> {
    tokio::time::timeout(DEFAULT_WAIT * 3, node.import_csv(&csv))
        .await
        .expect("the import is answered")
}

/// The ids (the first 100) and the number of the members `node` lists in
/// `scope` ("owned", "hosted") whose name contains `name`.
async fn members(node: &TestNode, scope: &str, name: &str) -> (Vec<String>, u64) {
    let mut admin = node.admin().await;
    let list = timed(
        "member list",
        admin.member_list(pb::MemberListRequest {
            name: name.into(),
            scope: scope.into(),
            limit: 100,
            ..Default::default()
        }),
    )
    .await
    .expect("member list")
    .into_inner();
    (
        list.members.into_iter().map(|m| m.member_id).collect(),
        list.total,
    )
}

async fn phone(node: &TestNode, member_id: &str) -> Option<String> {
    let mut admin = node.admin().await;
    timed(
        "member show",
        admin.member_show(pb::MemberRef {
            member_id: member_id.into(),
        }),
    )
    .await
    .ok()
    .map(|m| m.into_inner().phone)
}

/// The cursor of `node` in `peer`'s log.
async fn cursor(node: &TestNode, peer: &str) -> u64 {
    let mut admin = node.admin().await;
    timed(
        "peer status",
        admin.peer_status(pb::PeerStatusRequest {
            node_id: peer.into(),
        }),
    )
    .await
    .expect("peer status")
    .into_inner()
    .peers
    .remove(0)
    .my_cursor
}

/// What one updater saw: the last phone number the node confirmed, the one
/// it was setting when its calls stopped being answered, and how they
/// stopped.
struct Updates {
    member_id: String,
    confirmed: u32,
    last_confirmed: Option<String>,
    last_tried: String,
    end: tonic::Status,
}

/// Sets the phone number of `member_id` again and again through one admin
/// connection, until a call fails.
async fn update_until_refused(mut admin: Admin, member_id: String, updater: u32) -> Updates {
    let mut updates = Updates {
        member_id,
        confirmed: 0,
        last_confirmed: None,
        last_tried: String::new(),
        end: tonic::Status::ok(""),
    };
    for n in 0u32.. {
        let number = format!("139{updater:02}{n:06}");
        updates.last_tried = number.clone();
        let call = admin.member_update(pb::MemberUpdateRequest {
            member_id: updates.member_id.clone(),
            fields: Some(pb::MemberFields {
                phone: Some(number.clone()),
                ..Default::default()
            }),
        });
        match timed("member update", call).await {
            Ok(_) => {
                updates.confirmed += 1;
                updates.last_confirmed = Some(number);
            }
            Err(status) => {
                updates.end = status;
                break;
            }
        }
    }
    updates
}

/// The node's log since its last start.
fn last_run_log(node: &TestNode) -> String {
    let log = node.log();
    let start = log
        .rfind("======== liaison-tests: start #")
        .expect("the harness marks every start");
    log[start..].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_calls_in_flight_and_leaves_a_checkpointed_database() {
    const UPDATERS: u32 = 2;
    const IMPORTED: usize = 3_000;
    let fed = Federation::new("shutdown-drain");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    pingliang.ctl_ok(&[
        "peer",
        "add",
        "lanzhou",
        "--endpoint",
        &lanzhou.endpoint(),
        "--serves",
        "6201",
    ]);
    lanzhou.peer(&pingliang);
    fed.wait_linked(&pingliang, &lanzhou).await;
    fed.agree(&pingliang, &lanzhou, "PL-LZ").await;
    add_branch(&pingliang).await;
    let seeded = import(&pingliang, roster("种子", UPDATERS as usize))
        .await
        .expect("the seed import");
    assert_eq!(
        seeded.imported,
        u64::from(UPDATERS),
        "{:?}",
        seeded.problems
    );
    let (seeds, _) = members(&pingliang, "owned", "种子").await;
    lanzhou
        .wait_until(DEFAULT_WAIT, "lanzhou holds the seeds", async || {
            members(&lanzhou, "hosted", "种子").await.1 == u64::from(UPDATERS)
        })
        .await;

    // A busy follow: every update shares the member's home section with
    // Lanzhou, which pulls it at once.
    let cursor_before = cursor(&lanzhou, "pingliang").await;
    let mut updaters = tokio::task::JoinSet::new();
    for (updater, member_id) in (0..).zip(seeds.iter().cloned()) {
        let admin = pingliang.admin().await;
        updaters.spawn(update_until_refused(admin, member_id, updater));
    }
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "lanzhou follows pingliang's updates",
            async || cursor(&lanzhou, "pingliang").await >= cursor_before + 50,
        )
        .await;

    // An import in flight: the node has taken the call and runs it.
    let chunks = liaisonctl::sheet::send::csv_chunks(
        roster("导入", IMPORTED).as_bytes(),
        Default::default(),
    )
    .expect("the roster reads");
    let running = "member import running";
    let mut admin = pingliang.admin().await;
    let importing = tokio::spawn(async move {
        admin
            .member_import(tokio_stream::iter(chunks))
            .await
            .map(tonic::Response::into_inner)
    });
    pingliang
        .wait_until(DEFAULT_WAIT, "pingliang runs the import", async || {
            last_run_log(&pingliang).contains(running)
        })
        .await;
    pingliang.signal(libc::SIGTERM);

    let imported = tokio::time::timeout(DEFAULT_WAIT * 3, importing)
        .await
        .expect("the import is answered")
        .expect("the import task");
    let mut ended = Vec::new();
    while let Some(updates) = tokio::time::timeout(DEFAULT_WAIT * 3, updaters.join_next())
        .await
        .expect("every updater's call is answered")
    {
        ended.push(updates.expect("the updater task"));
    }
    let exit = pingliang.wait_exit();
    let log = last_run_log(&pingliang);
    assert_eq!(exit.code(), Some(0), "{exit}; log:\n{log}");

    // The import either committed whole or was not made, as unavailable;
    // or the connection went with the node before the answer was read
    // (`liaisonctl` says so as unavailable, exit 2), and then the database
    // tells which, below. Never a refusal.
    let expected_imported: &[u64] = match &imported {
        Ok(answer) => {
            assert_eq!(answer.imported as usize, IMPORTED, "{:?}", answer.problems);
            &[IMPORTED as u64]
        }
        Err(status) if liaisonctl::client::lost_connection(status) => &[0, IMPORTED as u64],
        Err(status) => {
            assert_eq!(
                status.code(),
                Code::Unavailable,
                "the import ended {status:?}"
            );
            &[0]
        }
    };
    for updates in &ended {
        println!(
            "updater of {}: {} updates confirmed, then {:?}: {}",
            updates.member_id,
            updates.confirmed,
            updates.end.code(),
            updates.end.message()
        );
        assert!(
            updates.confirmed > 0,
            "updater of {} ran",
            updates.member_id
        );
        assert!(
            !REFUSALS.contains(&updates.end.code()),
            "a call cut by the stop is never a refusal: {:?}",
            updates.end
        );
    }

    // Nothing logs after "stopped", which is logged once.
    let stopped: Vec<usize> = log
        .lines()
        .enumerate()
        .filter(|(_, line)| line.contains("liaison_node::node: stopped"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(stopped.len(), 1, "one \"stopped\" line; log:\n{log}");
    assert_eq!(
        stopped[0] + 1,
        log.lines().count(),
        "\"stopped\" is the last line; log:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    // The write-ahead log was checkpointed into the database.
    let mut wal = pingliang.db_path().into_os_string();
    wal.push("-wal");
    match std::fs::metadata(&wal) {
        Ok(meta) => assert_eq!(
            meta.len(),
            0,
            "{} after a clean stop",
            wal.to_string_lossy()
        ),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}"),
    }

    // After a restart: the import is there whole or not at all, and every
    // confirmed update stayed (or the one being made when the node stopped,
    // if it committed before its answer was lost).
    pingliang.start().await;
    let (_, total) = members(&pingliang, "owned", "导入").await;
    assert!(
        expected_imported.contains(&total),
        "members imported, after the restart: {total}, expected one of {expected_imported:?}"
    );
    for updates in &ended {
        let now = phone(&pingliang, &updates.member_id).await;
        assert!(
            now == updates.last_confirmed || now.as_deref() == Some(updates.last_tried.as_str()),
            "{}: phone {now:?}, last confirmed {:?}, last tried {}",
            updates.member_id,
            updates.last_confirmed,
            updates.last_tried
        );
        // And it reaches the peer that was following.
        let at_home = now.clone();
        lanzhou
            .wait_until(DEFAULT_WAIT, "lanzhou has the last update", async || {
                phone(&lanzhou, &updates.member_id).await == at_home
            })
            .await;
    }
}
