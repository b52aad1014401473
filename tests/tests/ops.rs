//! Issue 24: running a node for years. The metrics endpoint scraped and
//! parsed as Prometheus would; a certificate rotated with a reload (its
//! revocation: `certs.rs`); `liaison-node restore`; deleted personal data gone from the
//! files; the audit log's tail anchored; a newer schema refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use liaison_tests::{
    binaries, describe_output, metric, reconnects, run_with_timeout, scrape, Federation,
    NodeConfig, TestNode, DEFAULT_WAIT,
};

/// Today in China time, plus `days`.
fn day(days: i64) -> String {
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .date_naive();
    (today + chrono::Duration::days(days)).to_string()
}

/// A member of pingliang's branch b1 who went to Lanzhou (620102), with a
/// phone.
async fn member_away(home: &TestNode, name: &str, national_id: &str, phone: &str) -> String {
    let id = home.member_add(name, national_id).await;
    home.set_phone(&id, phone).await;
    home.outflow_register(&id, "620102", &day(-30)).await;
    id
}

/// A national ID number of someone born 1990-05-17, with sequence `n` and
/// its check digit (GB 11643).
fn national_id(n: u32) -> String {
    let body = format!("62080119900517{:03}", n % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).expect("a digit") * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_measure_lag_at_the_follower_after_a_restart_mid_backlog() {
    let fed = Federation::new("ops-metrics");
    let pingliang = fed.node("pingliang").await;
    // The follower pulls one event per batch: a backlog takes many batches.
    let mut lanzhou = fed
        .start(
            fed.config("lanzhou")
                .with_metrics()
                .limit("batch_events_max", 1),
        )
        .await;
    fed.link_serving(&pingliang, &lanzhou, "620102").await;
    pingliang.org_add("b1").await;
    fed.agree(&pingliang, &lanzhou, "PL-LZ-1").await;

    // The follower stops; its source keeps appending for it.
    lanzhou.stop();
    for i in 0..40 {
        member_away(
            &pingliang,
            &format!("成员{i}"),
            &national_id(i),
            "13900000000",
        )
        .await;
    }
    lanzhou.start().await;

    // Every scrape's cursor is the follower's durable one as it stands:
    // between what `peer status` read just before and just after.
    let mut seen_behind = false;
    lanzhou
        .wait_until(DEFAULT_WAIT * 3, "lanzhou caught up", async || {
            let before = lanzhou.replication("pingliang").await.my_cursor as f64;
            let s = scrape(&lanzhou).await;
            let after = lanzhou.replication("pingliang").await;
            let labels = [("peer", "pingliang")];
            let cursor = metric(&s, "liaison_peer_cursor", &labels).expect("peer_cursor");
            let head = metric(&s, "liaison_peer_head", &labels).expect("peer_head");
            let lag = metric(&s, "liaison_peer_lag_events", &labels).expect("peer_lag_events");
            assert!(
                before <= cursor && cursor <= after.my_cursor as f64,
                "{before} <= {cursor} <= {}",
                after.my_cursor
            );
            assert_eq!(lag, head - cursor);
            seen_behind |= lag > 0.0;
            // The source's head for this follower, from its database.
            let source_head: f64 = rusqlite::Connection::open_with_flags(
                pingliang.db_path(),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .and_then(|conn| {
                conn.query_row(
                    "SELECT COALESCE(MAX(seq), 0) FROM events WHERE audience = 'lanzhou'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .expect("read pingliang's head for lanzhou") as f64;
            if cursor == source_head {
                // Caught up: the figure is the source's head for this follower.
                assert_eq!(cursor, after.peer_head as f64);
            }
            cursor == source_head
        })
        .await;
    println!("a scrape saw the follower behind: {seen_behind}");

    let s = scrape(&lanzhou).await;
    let names: Vec<&str> = s.samples.iter().map(|x| x.metric.as_str()).collect();
    let applied = metric(
        &s,
        "liaison_peer_events_applied_total",
        &[("peer", "pingliang")],
    )
    .or_else(|| metric(&s, "liaison_peer_events_applied", &[("peer", "pingliang")]))
    .unwrap_or_else(|| panic!("events applied, among {names:?}"));
    assert!(applied >= 40.0, "applied {applied}");
    for (name, labels) in [
        (
            "liaison_peer_link_up",
            vec![("peer", "pingliang"), ("direction", "outbound")],
        ),
        ("liaison_reconciling", vec![]),
        ("liaison_receipts_overdue", vec![]),
    ] {
        assert!(metric(&s, name, &labels).is_some(), "{name} missing");
    }
    assert_eq!(metric(&s, "liaison_reconciling", &[]), Some(0.0));
    assert!(metric(&s, "liaison_database_bytes", &[]).is_some_and(|b| b > 0.0));
    let days = metric(&s, "liaison_certificate_expiry_days", &[]).expect("expiry");
    assert!(
        (28.0..=31.0).contains(&days),
        "the kit issues 30-day certificates: {days}"
    );
    assert!(
        s.samples
            .iter()
            .any(|x| x.metric.starts_with("liaison_peer_apply_seconds")),
        "the apply latency histogram"
    );
    // The source's `peer status` labels its figure as sent, not applied.
    let table = pingliang.ctl_ok(&["peer", "status"]);
    assert!(table.contains("SENT TO PEER"), "{table}");
    assert!(
        pingliang.status().await.metrics_addr.is_empty(),
        "the endpoint is off by default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotates_under_a_live_stream_with_a_reload() {
    let fed = Federation::new("ops-certs");
    let ca_dir = fed.ca_cert().parent().expect("the CA directory").to_owned();
    // An empty revocation list from the start.
    let crl = fed.dir().join("federation.crl");
    liaison_types::identity::ca_crl(&ca_dir, &crl, 30).expect("ca crl");
    let mut config = fed.config("pingliang").with_metrics();
    config.crl = Some(crl.clone());
    let pingliang = fed.start(config).await;
    let lanzhou = fed.start(fed.config("lanzhou").with_metrics()).await;
    fed.link_serving(&pingliang, &lanzhou, "620102").await;
    pingliang.org_add("b1").await;
    fed.agree(&pingliang, &lanzhou, "PL-LZ-2").await;
    let first = member_away(&pingliang, "甲", &national_id(1), "13900000001").await;
    lanzhou
        .wait_for(DEFAULT_WAIT, "the first member at lanzhou", async || {
            lanzhou.show(&first).await
        })
        .await;
    let before = reconnects(&scrape(&lanzhou).await, "pingliang");
    let before_back = reconnects(&scrape(&pingliang).await, "lanzhou");

    // A new certificate for pingliang, put in place and reloaded: the
    // follow streams both ways go on, and nothing is lost.
    let old = pingliang.status().await.certificate_not_after_ms;
    fed.issue("pingliang");
    let reloaded = pingliang.ctl_ok(&["reload"]);
    assert!(reloaded.contains("reloaded"), "{reloaded}");
    assert!(
        !reloaded.contains("closed"),
        "no connection closed: {reloaded}"
    );
    pingliang
        .wait_audit("reload audited", |e| {
            e.is("node.reload", "ok", "certificate")
        })
        .await;
    assert!(pingliang.status().await.certificate_not_after_ms >= old);
    let second = member_away(&pingliang, "乙", &national_id(2), "13900000002").await;
    lanzhou
        .wait_for(DEFAULT_WAIT, "the second member at lanzhou", async || {
            lanzhou.show(&second).await
        })
        .await;
    assert_eq!(
        reconnects(&scrape(&lanzhou).await, "pingliang"),
        before,
        "the stream was not dropped"
    );
    assert_eq!(
        reconnects(&scrape(&pingliang).await, "lanzhou"),
        before_back,
        "nor the one the other way"
    );
}

fn node_command(config: &Path) -> Command {
    let mut command = Command::new(&binaries().node);
    command
        .arg("--config")
        .arg(config)
        .env_remove("LIAISON_CONFIG")
        .env("NO_COLOR", "1");
    command
}

fn restore(config: &NodeConfig, from: &Path) -> Output {
    let mut command = node_command(&config.path());
    command.arg("restore").arg("--from").arg(from);
    run_with_timeout(&mut command, DEFAULT_WAIT)
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_checks_the_backup_and_refuses_another_nodes_or_a_damaged_one() {
    let fed = Federation::new("ops-restore");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    // A peer that never answers: the restored node waits for it.
    pingliang.ctl_ok(&["peer", "add", "xian", "--endpoint", "https://127.0.0.1:1"]);
    let backups = fed.dir().join("backups");
    std::fs::create_dir_all(&backups).expect("backups dir");
    let ours = backups.join("pingliang.db");
    let theirs = backups.join("lanzhou.db");
    pingliang.ctl_ok(&["backup", "--out", ours.to_str().expect("UTF-8")]);
    lanzhou.ctl_ok(&["backup", "--out", theirs.to_str().expect("UTF-8")]);
    // A letter after that backup, on the log the restore below leaves: a
    // later backup holds it.
    pingliang.org_add("b1").await;
    let member = pingliang.member_add("张三", "620801199005170014").await;
    pingliang
        .try_transfer_start(&member, "xian")
        .await
        .unwrap_or_else(|s| panic!("transfer start: {s}"));
    let later = backups.join("pingliang-later.db");
    pingliang.ctl_ok(&["backup", "--out", later.to_str().expect("UTF-8")]);
    let config = pingliang.config().clone();

    let running = restore(&config, &ours);
    assert_eq!(
        running.status.code(),
        Some(1),
        "{}",
        describe_output(&running)
    );
    assert!(String::from_utf8_lossy(&running.stderr).contains("the node is running"));

    pingliang.stop();
    let db = pingliang.db_path();
    let before = file_bytes(&db);
    let other = restore(&config, &theirs);
    assert_eq!(other.status.code(), Some(1), "{}", describe_output(&other));
    let said = String::from_utf8_lossy(&other.stderr);
    assert!(
        said.contains("is a backup of node `lanzhou`, not of `pingliang`"),
        "{said}"
    );
    let damaged = backups.join("damaged.db");
    let mut bytes = file_bytes(&ours);
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&damaged, &bytes).expect("write a damaged copy");
    let refused = restore(&config, &damaged);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        describe_output(&refused)
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is not a whole Liaison database"),
        "{}",
        describe_output(&refused)
    );
    assert_eq!(file_bytes(&db), before, "a refused restore changes nothing");

    let done = restore(&config, &ours);
    assert!(done.status.success(), "{}", describe_output(&done));
    assert!(!pingliang.data_dir().join("liaison.db-wal").exists());
    pingliang.start().await;
    assert!(pingliang.status().await.reconciling);
    // Health says NOT_SERVING while the node reconciles.
    use tonic_health::pb::health_check_response::ServingStatus;
    let tls = fed.client_tls(&fed.issue("xian"), "pingliang");
    let channel = liaison_tests::channel(&pingliang.endpoint(), tls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "health NOT_SERVING while reconciling",
            async || {
                health
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok_and(|r| r.into_inner().status == ServingStatus::NotServing as i32)
            },
        )
        .await;
    pingliang.ctl_ok(&["reconcile", "--without-peer", "xian"]);
    pingliang
        .wait_until(DEFAULT_WAIT, "health SERVING once reconciled", async || {
            health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "liaison.v1.Federation".into(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
        })
        .await;
    lanzhou.ctl_ok(&["status"]);

    // The later backup holds the branch the restore left: refused, with
    // the backups that would do; the first one, the branch point, is not.
    pingliang.stop();
    let before = file_bytes(&db);
    let left = restore(&config, &later);
    assert_eq!(left.status.code(), Some(1), "{}", describe_output(&left));
    let said = String::from_utf8_lossy(&left.stderr);
    assert!(
        said.contains("holds a branch of this node's history that the database in place left")
            && said.contains("restore a backup taken since that restore"),
        "{said}"
    );
    assert_eq!(file_bytes(&db), before, "a refused restore changes nothing");
    let again = restore(&config, &ours);
    assert!(again.status.success(), "{}", describe_output(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_schema_is_refused() {
    let fed = Federation::new("ops-newer");
    let mut pingliang = fed.node("pingliang").await;
    pingliang.stop();
    let conn = rusqlite::Connection::open(pingliang.db_path()).expect("open");
    conn.pragma_update(None, "user_version", 999)
        .expect("set the version");
    drop(conn);
    let out = fed.run_node_to_exit(pingliang.config(), DEFAULT_WAIT);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("schema version 999, newer than this liaison-node knows"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_audit_entries_deleted_are_detected_with_their_count() {
    let fed = Federation::new("ops-audit");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link(&pingliang, &lanzhou).await;
    pingliang.org_add("b1").await;
    for i in 2..12 {
        let org = format!("b{i}");
        pingliang.ctl_ok(&[
            "org",
            "add",
            &org,
            "--name",
            &format!("第{i}支部"),
            "--level",
            "branch",
        ]);
    }
    let intact = pingliang.ctl_ok(&["audit", "verify"]);
    assert!(intact.contains("intact"), "{intact}");
    // lanzhou has witnessed pingliang's head (its heartbeats carry it).
    let head = pingliang.audit().last().expect("entries").seq;
    let lanzhou_db = lanzhou.db_path();
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "lanzhou witnessed pingliang's head",
            async || {
                let conn = rusqlite::Connection::open_with_flags(
                    &lanzhou_db,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .expect("open lanzhou's database");
                conn.query_row(
                    "SELECT MAX(entries) FROM audit_witnessed WHERE peer = 'pingliang'",
                    [],
                    |r| r.get::<_, Option<u64>>(0),
                )
                .ok()
                .flatten()
                .is_some_and(|n| n >= head)
            },
        )
        .await;
    pingliang.stop();
    // Someone with the file deletes the newest ten entries.
    let conn = rusqlite::Connection::open(pingliang.db_path()).expect("open");
    conn.execute_batch(
        "DROP TRIGGER audit_no_delete;
         DELETE FROM audit WHERE seq > (SELECT MAX(seq) - 10 FROM audit);",
    )
    .expect("truncate the audit log");
    drop(conn);
    pingliang.start().await;
    let out = pingliang.ctl(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("10 entries missing"), "{said}");
    // The peer saw the head go back (by more than the start appended
    // since), and audited it.
    lanzhou
        .wait_audit("lanzhou saw pingliang's audit head go back", |e| {
            e.is("federation.audit_head", "error", "entries were deleted")
        })
        .await;
}

/// Where `needle` occurs in the files named `liaison.db*` in `dir`.
fn found_in(dir: &Path, needles: &[&str]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("read the data directory")
        .flatten()
    {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("liaison.db") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        for needle in needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push((path.clone(), (*needle).to_owned()));
            }
        }
    }
    found
}

/// The bound stated in docs/replication.md: a checkpoint within
/// `UPKEEP_EVERY` (2 s) of the commit that deleted; a reader holding an
/// older snapshot defers it to the next look.
const ERASURE_BOUND: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_personal_data_is_gone_from_the_hosts_files_and_backups() {
    let fed = Federation::new("ops-erase");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.start(fed.config("lanzhou").clockable()).await;
    fed.link_serving(&pingliang, &lanzhou, "620102").await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let id = fed.agree(&pingliang, &lanzhou, "PL-LZ-3").await;
    let shared_id = national_id(7);
    let shared = member_away(&pingliang, "王秀英", &shared_id, "13811112222").await;
    lanzhou
        .wait_for(DEFAULT_WAIT, "the copy at lanzhou", async || {
            lanzhou.show(&shared).await
        })
        .await;
    // An offer with an ID number, which the receiver purges when it expires.
    let offered_id = national_id(8);
    let offered = pingliang.member_add("赵志刚", &offered_id).await;
    let t = pingliang.transfer_start(&offered, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    let needles = ["王秀英", "13811112222", "赵志刚", offered_id.as_str()];
    assert!(
        !found_in(lanzhou.data_dir(), &needles).is_empty(),
        "the test must see the values before they are deleted"
    );

    // The agreement ends (the host drops the copy) and the receiver's
    // clock passes the letter's expiry plus grace (it purges the offer).
    pingliang.ctl_ok(&["agreement", "terminate", &id, "--reason", "测试结束"]);
    lanzhou.ctl_ok(&["debug", "clock", "--offset", "75d"]);
    lanzhou
        .wait_until(DEFAULT_WAIT, "copy dropped and offer purged", async || {
            lanzhou
                .show(&shared)
                .await
                .is_none_or(|m| m.name.is_empty())
                && lanzhou
                    .transfer(&t.transfer_id)
                    .await
                    .is_some_and(|v| v.state == "awaiting_sender")
        })
        .await;
    lanzhou
        .wait_until(
            ERASURE_BOUND,
            "nothing deleted left in liaison.db*",
            async || found_in(lanzhou.data_dir(), &needles).is_empty(),
        )
        .await;
    let backup = fed.dir().join("lanzhou-after.db");
    lanzhou.ctl_ok(&["backup", "--out", backup.to_str().expect("UTF-8")]);
    let bytes = file_bytes(&backup);
    for needle in needles {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} in the backup"
        );
    }
}
