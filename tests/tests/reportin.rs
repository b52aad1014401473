//! Report-in (一键报到, docs/reportin.md) end to end, with two real nodes:
//! a member lost at Pingliang reports in at a Lanzhou station, the Lanzhou
//! clerk confirms it with `liaisonctl`, and Pingliang shows the member
//! regained with the report-in as the contact; a claim from a region with
//! no agreement with Lanzhou never leaves Lanzhou.
//!
//! The claims here are made at the station's desk (`reportin add`, the
//! same checks and store as the page's); `reportin_page.rs` submits
//! through the page.

use std::time::Duration;

use liaison_tests::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const STATION: &str = "兰州市平凉籍流动党员服务站";
const PUBLIC_URL: &str = "https://baodao.lanzhou.example";

/// The one record `liaisonctl -o json ARGS` prints, of type `kind`.
fn one(node: &TestNode, kind: &str, args: &[&str]) -> Value {
    let mut records = node.ctl_json(args);
    assert_eq!(records.len(), 1, "{args:?} printed {records:?}");
    let (printed, data) = records.remove(0);
    assert_eq!(printed, kind, "{args:?}");
    data
}

/// Pingliang (home, serving 6208) and Lanzhou (host, serving 6201), linked,
/// with a branch each, a member of Pingliang's away to Lanzhou for 200 days
/// without contact (lost, 失联), an agreement between them, and a station
/// at Lanzhou. Returns the member's id.
async fn setup(fed: &Federation, pingliang: &TestNode, lanzhou: &TestNode) -> String {
    pingliang.peer_serving(lanzhou, "6201");
    lanzhou.peer_serving(pingliang, "6208");
    fed.wait_linked(pingliang, lanzhou).await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("lz1").await;
    let member_id = pingliang.member_add("张三", "620801199005170014").await;
    let departed = (chrono::Utc::now() - chrono::Duration::days(200))
        .date_naive()
        .to_string();
    pingliang
        .outflow_register(&member_id, "620102", &departed)
        .await;
    fed.agree(pingliang, lanzhou, "PL-LZ-2026-01").await;
    fed.wait_until(WAIT, "Lanzhou holds the member, lost", async || {
        lanzhou
            .show(&member_id)
            .await
            .is_some_and(|m| m.contact_status == "lost")
    })
    .await;
    let station = one(
        lanzhou,
        "station",
        &[
            "station",
            "add",
            "--name",
            STATION,
            "--org",
            "lz1",
            "--address",
            "兰州市城关区某路1号",
            "--hours",
            "周一至周五 9:00-17:00",
        ],
    );
    assert_eq!(station["code"].as_str().map(str::len), Some(8));
    member_id
}

/// A claim made at Lanzhou's station desk; returns it.
fn report_in(lanzhou: &TestNode, name: &str, phone: &str, home: &str, certificate: &str) -> Value {
    one(
        lanzhou,
        "reportin",
        &[
            "reportin",
            "add",
            "--station",
            STATION,
            "--name",
            name,
            "--phone",
            phone,
            "--home",
            home,
            "--certificate",
            certificate,
            "--employer",
            "兰州某建筑公司",
            "--consented",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_member_reports_in_at_a_host_station_and_is_regained_at_home() {
    let fed = Federation::new("reportin");
    let pingliang = fed.node("pingliang").await;
    let mut config = fed.config("lanzhou");
    config.extra = format!(
        "[report_in]\nenabled = true\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC_URL}\""
    );
    let lanzhou = fed.start(config).await;
    let member_id = setup(&fed, &pingliang, &lanzhou).await;

    // The station's QR code opens its page.
    let station = one(&lanzhou, "station", &["station", "show", STATION]);
    let code = station["code"].as_str().expect("a code");
    assert_eq!(station["url"], format!("{PUBLIC_URL}/s/{code}"));
    for file in ["station.svg", "station.png"] {
        let out = lanzhou.dir().join(file);
        let written = one(
            &lanzhou,
            "station_qr",
            &[
                "station",
                "qr",
                code,
                "--out",
                out.to_str().expect("a UTF-8 path"),
            ],
        );
        assert_eq!(written["url"], station["url"]);
        let bytes = std::fs::read(&out).expect("the QR code's file");
        let svg = bytes.starts_with(b"<?xml") || bytes.starts_with(b"<svg");
        let png = bytes.starts_with(b"\x89PNG\r\n\x1a\n");
        assert!(if file.ends_with("svg") { svg } else { png }, "{file}");
    }

    let claim = report_in(
        &lanzhou,
        "张三",
        "139 1234 5678",
        "平凉市崆峒区",
        "pl 2026 001",
    );
    let claim_id = claim["claim_id"].as_str().expect("a claim id").to_owned();
    assert_eq!(claim["home_node"], "pingliang");
    let shown = one(&lanzhou, "reportin", &["reportin", "show", &claim_id[..13]]);
    assert_eq!(shown["candidates"][0]["member_id"], member_id.as_str());
    let todo = lanzhou.ctl_json(&["todo"]);
    assert!(
        todo.iter().any(|(_, i)| i["kind"] == "reportin_confirm"),
        "{todo:?}"
    );

    let confirmed = one(&lanzhou, "reportin", &["reportin", "confirm", &claim_id]);
    assert_eq!(confirmed["state"], "confirmed");
    assert_eq!(confirmed["member_id"], member_id.as_str());
    assert_eq!(confirmed["name"], "", "the claim drops its personal data");

    let home = fed
        .wait_for(WAIT, "Pingliang shows the member regained", async || {
            pingliang
                .show(&member_id)
                .await
                .filter(|m| m.contact_status == "regained")
        })
        .await;
    assert_eq!(home.host_sections[0].station, STATION);
    assert_eq!(home.host_sections[0].employer, "兰州某建筑公司");
    assert!(!home.host_sections[0].reported_on.is_empty());
    let status = one(
        &pingliang,
        "contact_status",
        &["contact", "status", &member_id],
    );
    assert_eq!(status["status"], "regained");
    assert_eq!(status["recent"][0]["channel"], "report-in");
    assert_eq!(status["recent"][0]["by"], STATION);
    assert_eq!(status["recent"][0]["author"], "lanzhou");

    // Counted at both ends.
    let rows = |node: &TestNode, table: &str| -> Vec<Value> {
        node.ctl_json(&["report", "reportin"])
            .into_iter()
            .filter(|(kind, row)| kind == "report_row" && row["table"] == table)
            .map(|(_, row)| row)
            .collect()
    };
    let by_station = rows(&lanzhou, "by_station_month");
    assert_eq!(by_station.len(), 1, "{by_station:?}");
    assert_eq!(by_station[0]["station"], STATION);
    assert_eq!(by_station[0]["confirmed"], 1);
    assert_eq!(by_station[0]["regained"], 1);
    let regained = rows(&pingliang, "regained");
    assert_eq!(regained.len(), 1, "{regained:?}");
    assert_eq!(regained[0]["name"], "张三");
    liaison_tests::check_invariants(&ownership::dbs(&[&pingliang, &lanzhou]))
        .unwrap_or_else(|v| panic!("{v}"));
}

/// Every file of `node`'s database (with its write-ahead log) as bytes.
fn database_bytes(node: &TestNode) -> Vec<u8> {
    let db = node.db_path();
    let mut bytes = std::fs::read(&db).expect("the database file");
    let wal = format!("{}-wal", db.display());
    if let Ok(wal) = std::fs::read(wal) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_from_a_region_without_agreement_never_leaves_the_host() {
    let fed = Federation::new("reportin-uncovered");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    setup(&fed, &pingliang, &lanzhou).await;

    // From Xi'an: no node of Xi'an, no agreement with Lanzhou.
    let claim = report_in(&lanzhou, "钱七", "13712345678", "西安市雁塔区", "");
    let claim_id = claim["claim_id"].as_str().expect("a claim id").to_owned();
    assert_eq!(claim["home_node"], "");
    let listed = lanzhou.ctl_ok(&["reportin", "list"]);
    assert!(
        listed.contains("no agreement with 雁塔区 (610113)"),
        "{listed}"
    );
    let unknown = lanzhou.ctl(&["station", "show", "不存在的服务站"]);
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("station list"),
        "{unknown:?}"
    );
    let refused = lanzhou.ctl(&["reportin", "confirm", &claim_id]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no agreement with"),
        "{refused:?}"
    );
    let uncovered: Vec<Value> = lanzhou
        .ctl_json(&["report", "uncovered"])
        .into_iter()
        .filter(|(kind, row)| kind == "report_row" && row["table"] == "claims_without_agreement")
        .map(|(_, row)| row)
        .collect();
    assert_eq!(uncovered.len(), 1, "{uncovered:?}");
    assert_eq!(uncovered[0]["claims"], 1);

    // Pingliang pulled everything Lanzhou holds for it, and nothing of the
    // claim was among it: neither Lanzhou's log nor Pingliang's database
    // holds the claimant's name or phone.
    fed.wait_until(WAIT, "Pingliang pulled all of Lanzhou's log", async || {
        lanzhou.replication("pingliang").await.backlog_for_peer == 0
    })
    .await;
    let lanzhou_db = database_bytes(&lanzhou);
    assert!(
        contains(&lanzhou_db, "钱七"),
        "the claim is held at Lanzhou"
    );
    let events_hold_it = {
        let conn = rusqlite::Connection::open_with_flags(
            lanzhou.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open Lanzhou's database");
        let payloads: Vec<Vec<u8>> = conn
            .prepare("SELECT payload FROM events")
            .and_then(|mut s| {
                s.query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<Vec<u8>>, _>>()
            })
            .expect("read Lanzhou's events");
        payloads
            .iter()
            .any(|p| contains(p, "钱七") || contains(p, "13712345678"))
    };
    assert!(
        !events_hold_it,
        "no event of Lanzhou's log carries the claim"
    );
    let pingliang_db = database_bytes(&pingliang);
    assert!(
        !contains(&pingliang_db, "钱七"),
        "Pingliang never saw the claim"
    );
    assert!(!contains(&pingliang_db, "13712345678"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_claim_is_deleted_with_its_personal_data_after_the_days_kept() {
    let fed = Federation::new("reportin-rejected");
    let mut config = fed.config("lanzhou");
    config.extra = format!(
        "[testing]\nallow_clock_override = true\n\n[report_in]\nenabled = true\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC_URL}\"\nrejected_kept_days = 2"
    );
    let lanzhou = fed.start(config).await;
    lanzhou.org_add("lz1").await;
    lanzhou.ctl_ok(&["station", "add", "--name", STATION, "--org", "lz1"]);
    let claim = report_in(&lanzhou, "孙八", "13612345678", "平凉市崆峒区", "");
    let claim_id = claim["claim_id"].as_str().expect("a claim id").to_owned();
    let rejected = one(
        &lanzhou,
        "reportin",
        &["reportin", "reject", &claim_id, "--reason", "重复提交"],
    );
    assert_eq!(rejected["state"], "rejected");
    assert!(!rejected["deleted_after"].as_str().unwrap_or("").is_empty());
    let held = |node: &TestNode| node.ctl_json(&["reportin", "list", "--state", "all"]).len();

    assert!(
        contains(&database_bytes(&lanzhou), "孙八"),
        "the claim is in the database files while kept"
    );
    // Kept its days (the calendar runs when the clock moves)...
    lanzhou.ctl_ok(&["debug", "clock", "--offset", "1d"]);
    assert_eq!(held(&lanzhou), 1, "kept for 2 days");
    // ...then deleted, and gone from the database files too.
    lanzhou.ctl_ok(&["debug", "clock", "--offset", "3d"]);
    fed.wait_until(WAIT, "the rejected claim deleted", async || {
        held(&lanzhou) == 0
    })
    .await;
    fed.wait_until(
        WAIT,
        "the claim's personal data gone from the files",
        async || {
            let bytes = database_bytes(&lanzhou);
            !contains(&bytes, "孙八") && !contains(&bytes, "13612345678")
        },
    )
    .await;
}
