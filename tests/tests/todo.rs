//! `liaisonctl todo` (待办) through the real binaries: a scenario that
//! creates one thing of each kind an operator must handle, and the item
//! that names it, with a command that handles it.

use std::time::Duration;

use liaison_proto::v1 as pb;
use liaison_tests::proxy::Proxy;
use liaison_tests::*;
use prost::Message;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// The `todo` items of `node`, as JSON.
fn todo(node: &TestNode) -> Vec<Value> {
    node.ctl_json(&["todo"])
        .into_iter()
        .map(|(kind, data)| {
            assert_eq!(kind, "todo");
            data
        })
        .collect()
}

/// Waits until `node`'s to-do list has an item of `kind` whose subject
/// contains `about`; returns it.
async fn wait_item(node: &TestNode, kind: &str, about: &str) -> Value {
    node.wait_for(
        WAIT,
        &format!("a `{kind}` item about {about}"),
        async || {
            todo(node).into_iter().find(|i| {
                i["kind"] == kind && i["subject"].as_str().is_some_and(|s| s.contains(about))
            })
        },
    )
    .await
}

fn clockable(fed: &Federation, node_id: &str) -> NodeConfig {
    let mut config = fed.config(node_id);
    config.extra = "[testing]\nallow_clock_override = true".into();
    config
}

fn member(node: &TestNode, name: &str, departed_on: Option<&str>) {
    node.ctl_ok(&[
        "member",
        "add",
        "--name",
        name,
        "--gender",
        "女",
        "--birth-date",
        "1991-07-01",
        "--party-status",
        "正式",
        "--home-branch",
        "b1",
    ]);
    if let Some(departed_on) = departed_on {
        node.ctl_ok(&[
            "outflow",
            "register",
            name,
            "--to",
            "620102",
            "--departed-on",
            departed_on,
        ]);
    }
}

fn letter_of(node: &TestNode, args: &[&str]) -> String {
    let records = node.ctl_json(args);
    records[0].1["letter_no"]
        .as_str()
        .expect("a letter number")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todo_lists_one_item_of_each_kind_with_a_command() {
    let fed = Federation::new("todo");
    let mut pingliang = fed.start(clockable(&fed, "pingliang")).await;
    let mut lanzhou = fed.node("lanzhou").await;
    // Lanzhou pulls Pingliang's log through a proxy the test can cut.
    let to_lanzhou = Proxy::start(pingliang.federation_addr()).await;
    pingliang.ctl_ok(&[
        "peer",
        "add",
        "lanzhou",
        "--endpoint",
        &lanzhou.endpoint(),
        "--name",
        "兰州",
        "--serves",
        "6201",
    ]);
    lanzhou.ctl_ok(&[
        "peer",
        "add",
        "pingliang",
        "--endpoint",
        &to_lanzhou.endpoint(),
        "--name",
        "平凉",
    ]);
    fed.wait_linked(&pingliang, &lanzhou).await;
    for node in [&pingliang, &lanzhou] {
        node.ctl_ok(&[
            "org",
            "add",
            "b1",
            "--name",
            &format!("{}第一支部", node.display_name),
            "--level",
            "branch",
        ]);
    }

    // Members away long without contact, and no agreement covering them.
    let today = chrono::Utc::now().date_naive();
    let days_ago = |n: i64| (today - chrono::Duration::days(n)).to_string();
    member(&pingliang, "失联甲", Some(&days_ago(300)));
    member(&pingliang, "逾期乙", Some(&days_ago(120)));
    let lost = wait_item(&pingliang, "contact_lost", "lost").await;
    assert!(
        lost["command"].as_str().unwrap().contains("--status lost"),
        "{lost}"
    );
    wait_item(&pingliang, "contact_overdue", "overdue").await;
    let uncovered = wait_item(&pingliang, "uncovered", "no co-management agreement").await;
    assert_eq!(uncovered["command"], "liaisonctl report uncovered");

    // An agreement waiting for Lanzhou's signature, then a counter-proposal
    // waiting for Pingliang to publish it.
    let number = "平凉-兰州-2026-01";
    pingliang.ctl_ok(&[
        "agreement",
        "propose",
        "--with",
        "兰州",
        "--number",
        number,
        "--from",
        &days_ago(1),
        "--until",
        "2030-12-31",
    ]);
    let sign = wait_item(&lanzhou, "agreement_sign", number).await;
    assert!(
        sign["command"]
            .as_str()
            .unwrap()
            .contains(&format!("agreement accept {number}")),
        "{sign}"
    );
    lanzhou.ctl_ok(&["agreement", "counter", number, "--until", "2029-12-31"]);
    let publish = wait_item(&pingliang, "agreement_publish", number).await;
    assert!(
        publish["command"].as_str().unwrap().contains(number),
        "{publish}"
    );

    // A letter expiring in 3 days (Pingliang) is a transfer to decide (Lanzhou).
    member(&pingliang, "调出丙", None);
    let letter = letter_of(
        &pingliang,
        &[
            "transfer",
            "start",
            "调出丙",
            "--to",
            "兰州",
            "--valid-days",
            "3",
        ],
    );
    let expiring = wait_item(&pingliang, "letter_expiring", &letter).await;
    assert_eq!(expiring["days_left"], 3, "{expiring}");
    let decide = wait_item(&lanzhou, "transfer_decide", &letter).await;
    assert!(
        decide["command"]
            .as_str()
            .unwrap()
            .contains(&format!("transfer accept {letter}")),
        "{decide}"
    );

    // A receipt that does not come: Lanzhou accepts, Pingliang releases,
    // but the release never reaches Lanzhou; a month later it is overdue.
    to_lanzhou.partition();
    lanzhou
        .wait_peer("pingliang", "the link from Pingliang is down", |p| {
            !p.outbound_up
        })
        .await;
    lanzhou.ctl_ok(&["transfer", "accept", &letter, "--branch", "兰州第一支部"]);
    pingliang
        .wait_until(WAIT, "the transfer is released", async || {
            pingliang.ctl_json(&["transfer", "show", &letter])[0].1["state"] == "released"
        })
        .await;

    // A forged event from Lanzhou, quarantined at Pingliang.
    lanzhou.stop();
    let forged = pb::HomeSection {
        member_id: "01a00000-0000-7000-8000-00000000dead".into(),
        version: Some(pb::Version {
            generation: 7,
            counter: 7,
        }),
        owner: "lanzhou".into(),
        name: "伪造".into(),
        ..Default::default()
    };
    let db = rusqlite::Connection::open(lanzhou.db_path()).expect("open lanzhou's database");
    db.execute(
        "INSERT INTO events (audience, kind, entity, payload, created_at_ms) VALUES ('pingliang', ?1, ?2, ?3, 0)",
        rusqlite::params![pb::EventKind::HomeSection as i32, forged.member_id, forged.encode_to_vec()],
    )
    .expect("insert the forged event");
    drop(db);
    lanzhou.start().await;
    let held = wait_item(&pingliang, "quarantine", "lanzhou").await;
    assert_eq!(held["command"], "liaisonctl quarantine list");

    // A peer never reached, and a month passing on Pingliang's clock.
    pingliang.ctl_ok(&[
        "peer",
        "add",
        "xian",
        "--endpoint",
        "https://127.0.0.1:9",
        "--name",
        "西安",
    ]);
    pingliang.ctl_ok(&["debug", "clock", "--offset", "31d"]);
    let overdue = wait_item(&pingliang, "receipt_overdue", &letter).await;
    assert!(
        overdue["command"].as_str().unwrap().contains(&letter),
        "{overdue}"
    );
    let unreachable = wait_item(&pingliang, "peer_unreachable", "xian").await;
    assert_eq!(unreachable["command"], "liaisonctl peer show xian");

    // Restored from a backup while Xi'an is unreachable: reconciling.
    let backup = pingliang.dir().join("pingliang-backup.db");
    pingliang.ctl_ok(&["backup", "--out", backup.to_str().expect("UTF-8 path")]);
    pingliang.stop();
    let db = pingliang.db_path();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(&backup, &db).expect("restore the backup");
    pingliang.start().await;
    let reconcile = wait_item(&pingliang, "reconcile", "xian").await;
    assert!(
        reconcile["command"].as_str().unwrap().contains("reconcile"),
        "{reconcile}"
    );

    // The node's own troubles come first.
    let items = todo(&pingliang);
    assert_eq!(items[0]["kind"], "reconcile", "{items:?}");
    // Every command names the records as a clerk has them, never a raw id.
    for item in &items {
        let command = item["command"].as_str().unwrap();
        assert!(command.starts_with("liaisonctl "), "{item}");
    }
}
