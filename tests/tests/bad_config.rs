//! Every bad configuration stops the real `liaison-node` binary before it
//! serves anything, with one line on stderr naming the problem and exit
//! code 2; never a panic or a backtrace.

use std::process::{Command, Output};
use std::time::Duration;

use liaison_tests::*;

/// A node that wrongly starts would run forever; this bounds the wait.
const EXIT_WITHIN: Duration = Duration::from_secs(30);

/// Asserts the refusal contract: exit code 2, exactly one line on stderr
/// that names every one of `names`, no panic, no backtrace. Returns the line.
fn assert_refused(output: &Output, names: &[&str]) -> String {
    let line = assert_refused_after_logs(output, names);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines = stderr.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(
        lines,
        1,
        "exactly one line on stderr:\n{}",
        describe_output(output)
    );
    line
}

/// Like [`assert_refused`], but lets informational log lines (tracing's
/// INFO/DEBUG) precede the error line.
fn assert_refused_after_logs(output: &Output, names: &[&str]) -> String {
    let context = describe_output(output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "exit code 2 for a bad configuration:\n{context}"
    );
    for forbidden in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(
            !stderr.contains(forbidden),
            "`{forbidden}` on stderr:\n{context}"
        );
    }
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let (line, before) = lines
        .split_last()
        .unwrap_or_else(|| panic!("nothing on stderr:\n{context}"));
    for log in before {
        let informational = log.starts_with(|c: char| c.is_ascii_digit())
            && (log.contains(" INFO ") || log.contains(" DEBUG "));
        assert!(
            informational,
            "only the error line and log lines on stderr:\n{context}"
        );
    }
    let line = *line;
    assert!(line.starts_with("liaison-node: "), "{line}");
    for name in names {
        assert!(line.contains(name), "`{name}` not named in: {line}");
    }
    assert!(output.stdout.is_empty(), "nothing on stdout:\n{context}");
    line.to_owned()
}

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[test]
fn missing_certificate_file_is_named_and_exits_2() {
    let fed = Federation::new("cfg-missing-cert");
    let mut config = fed.config("pingliang");
    config.cert = config.dir.join("certs/nowhere.crt");
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused(
        &output,
        &["cannot read", path_str(&config.cert), "No such file"],
    );
}

#[test]
fn key_that_does_not_match_the_certificate_is_named_and_exits_2() {
    let fed = Federation::new("cfg-key-mismatch");
    let mut config = fed.config("pingliang");
    config.key = fed.issue("lanzhou").key;
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused(
        &output,
        &[
            "does not belong to certificate",
            path_str(&config.key),
            path_str(&config.cert),
        ],
    );
}

#[test]
fn bad_node_id_is_named_and_exits_2() {
    let fed = Federation::new("cfg-bad-id");
    let mut config = fed.config("pingliang");
    config.node_id = "Ping_Liang".into();
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused(
        &output,
        &[
            "node_id",
            "invalid node id `Ping_Liang`",
            path_str(&config.path()),
        ],
    );
}

#[test]
fn address_in_use_is_named_and_exits_2() {
    let fed = Federation::new("cfg-addr-in-use");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().unwrap().to_string();
    let mut config = fed.config("pingliang");
    config.listen = addr.clone();
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused_after_logs(&output, &["cannot listen for peers on", &addr, "in use"]);
    drop(taken);
}

#[test]
fn address_in_use_prints_only_the_error_and_creates_nothing() {
    let fed = Federation::new("cfg-addr-in-use-strict");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().unwrap().to_string();
    let mut config = fed.config("pingliang");
    config.listen = addr.clone();
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused(&output, &["cannot listen for peers on", &addr, "in use"]);
    assert!(
        !config.data_dir.exists(),
        "a refused configuration changes nothing on disk"
    );
    drop(taken);
}

#[test]
fn unwritable_data_dir_is_named_and_exits_2() {
    // Tests run as root in CI, where modes do not stop writes: a path under
    // a regular file cannot be created by anyone.
    let fed = Federation::new("cfg-data-dir");
    let file = fed.dir().join("afile");
    std::fs::write(&file, b"not a directory").unwrap();
    let mut config = fed.config("pingliang");
    config.data_dir = file.join("data");
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused(&output, &["data directory", path_str(&config.data_dir)]);
}

#[test]
fn certificate_of_another_node_is_named_and_exits_2() {
    let fed = Federation::new("cfg-other-node");
    let other = fed.issue("lanzhou");
    let mut config = fed.config("pingliang");
    config.cert = other.cert;
    config.key = other.key;
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused(
        &output,
        &[
            "names node `lanzhou`",
            "`pingliang`",
            path_str(&config.cert),
        ],
    );
}

#[test]
fn certificate_from_another_ca_is_named_and_exits_2() {
    let fed = Federation::new("cfg-other-ca");
    let impostor = Federation::new("cfg-other-ca-impostor");
    let rogue = impostor.issue("pingliang");
    let mut config = fed.config("pingliang");
    config.cert = rogue.cert;
    config.key = rogue.key;
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused(
        &output,
        &[
            "not issued by the federation CA",
            path_str(&config.cert),
            path_str(&config.ca),
        ],
    );
}

#[test]
fn missing_config_file_is_named_and_exits_2() {
    let fed = Federation::new("cfg-missing");
    let path = fed.dir().join("absent.toml");
    let mut command = Command::new(&binaries().node);
    command
        .arg("--config")
        .arg(&path)
        .env_remove("LIAISON_CONFIG");
    let output = run_with_timeout(&mut command, EXIT_WITHIN);
    assert_refused(&output, &["cannot read config file", path_str(&path)]);
}

#[test]
fn unknown_config_key_and_bad_listen_address_are_named_and_exit_2() {
    let fed = Federation::new("cfg-syntax");
    let mut config = fed.config("pingliang");
    config.extra = "[bogus]\nsetting = 1".into();
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused(&output, &["bogus", path_str(&config.path())]);

    let mut config = fed.config("pingliang");
    config.listen = "nowhere".into();
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused(&output, &["federation.listen", "nowhere"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_node_on_the_same_data_dir_is_refused_and_exits_2() {
    let fed = Federation::new("cfg-twice");
    let a = fed.node("pingliang").await;
    let mut config = a.config().clone();
    config.listen = "127.0.0.1:0".into();
    config.dir = fed.dir().join("second");
    let output = fed.run_node_to_exit(&config, EXIT_WITHIN);
    assert_refused(
        &output,
        &["admin socket", path_str(&a.socket()), "already running"],
    );
    // The first node is unharmed.
    assert_eq!(a.status().await.node_id, "pingliang");
}

/// A counter that fell behind what the node issued would issue a letter
/// number again: refused at start as a damaged database, with the counter
/// and the letter named, never read as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_counter_behind_an_issued_letter_is_refused_at_start() {
    use liaison_proto::v1 as pb;
    let fed = Federation::new("cfg-letter-counter");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link(&pingliang, &lanzhou).await;
    let mut admin = pingliang.admin().await;
    admin
        .org_add(pb::Org {
            org_id: "b1".into(),
            name: "崆峒区第一支部".into(),
            level: "branch".into(),
            ..Default::default()
        })
        .await
        .expect("org add");
    let member = admin
        .member_add(pb::MemberFields {
            name: Some("张三".into()),
            gender: Some("男".into()),
            birth_date: Some("1990-05-17".into()),
            national_id: Some("620801199005170014".into()),
            party_status: Some("正式".into()),
            home_branch: Some("b1".into()),
            ..Default::default()
        })
        .await
        .expect("member add")
        .into_inner()
        .member_id;
    let letter = admin
        .transfer_start(pb::TransferStartRequest {
            member_id: member,
            to: "lanzhou".into(),
            valid_days: 30,
            reason: "定居".into(),
        })
        .await
        .expect("transfer start")
        .into_inner()
        .letter_no;
    drop(admin);
    pingliang.stop();

    let db = rusqlite::Connection::open(pingliang.db_path()).expect("open the database");
    let changed = db
        .execute(
            "UPDATE counters SET value = 0 WHERE name LIKE 'letter:%'",
            [],
        )
        .expect("set the counter back");
    assert_eq!(changed, 1, "one year's letter counter");
    drop(db);
    let output = fed.run_node_to_exit(pingliang.config(), EXIT_WITHIN);
    assert_refused_after_logs(
        &output,
        &["damaged", "letter counter", "`0`", &letter, "backup"],
    );
}
