//! `liaisonctl` as a shell user meets it: completion scripts, manual pages,
//! and a closed stdout (`liaisonctl ... | head -1`) that ends the program
//! quietly with exit 0, never a panic.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use liaison_proto::v1 as pb;
use liaison_tests::*;

/// Runs `liaisonctl args`, reads the first line of its stdout and closes
/// the pipe, as `| head -1` does; returns the line, the exit code and stderr.
fn first_line_then_close(args: &[&str]) -> (String, Option<i32>, String) {
    let mut child = Command::new(&binaries().ctl)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start liaisonctl");
    let mut line = String::new();
    {
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut line).expect("read the first line");
        // Dropped here: the pipe closes with the rest unread.
    }
    let output = child.wait_with_output().expect("wait for liaisonctl");
    (
        line,
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_quiet_exit(args: &[&str], expect_in_first_line: &str) {
    let (line, code, stderr) = first_line_then_close(args);
    assert!(
        line.contains(expect_in_first_line),
        "liaisonctl {args:?}: first line {line:?}"
    );
    assert_eq!(
        code,
        Some(0),
        "liaisonctl {args:?} | head -1 exits 0; stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "liaisonctl {args:?} | head -1 ends quietly; stderr:\n{stderr}"
    );
}

#[test]
fn completion_scripts_name_the_verbs() {
    for shell in ["bash", "zsh", "fish"] {
        let output = run_with_timeout(
            Command::new(&binaries().ctl).args(["completion", shell]),
            Duration::from_secs(30),
        );
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{}", describe_output(&output));
        assert!(
            script.contains("liaisonctl") && script.contains("agreement"),
            "{shell}: {}",
            &script[..script.len().min(300)]
        );
    }
}

#[test]
fn man_pages_are_written_for_every_verb() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("man1");
    let output = run_with_timeout(
        Command::new(&binaries().ctl).args(["man", "--out", out.to_str().expect("UTF-8 path")]),
        Duration::from_secs(30),
    );
    assert!(output.status.success(), "{}", describe_output(&output));
    for page in [
        "liaisonctl.1",
        "liaisonctl-member-add.1",
        "liaisonctl-transfer-start.1",
    ] {
        let text =
            std::fs::read_to_string(out.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is a manual page");
    }
}

#[test]
fn a_closed_stdout_ends_local_verbs_quietly() {
    // Each writes far more than a pipe holds, so the writes after the
    // reader closed fail.
    assert_quiet_exit(&["completion", "bash"], "liaisonctl");
    assert_quiet_exit(&["demo", "roster", "--count", "2000"], "name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_a_listing_quietly() {
    let fed = Federation::new("cli-closed-stdout");
    let node = fed.node("pingliang").await;
    let mut admin = node.admin().await;
    admin
        .org_add(pb::Org {
            org_id: "b1".into(),
            name: "崆峒区第一支部".into(),
            level: "branch".into(),
            ..Default::default()
        })
        .await
        .expect("org add");
    // More than a pipe holds (64 KiB) as JSON Lines.
    for i in 0..600 {
        admin
            .member_add(pb::MemberFields {
                name: Some(format!("成员{i:03}")),
                gender: Some("男".into()),
                birth_date: Some("1990-05-17".into()),
                party_status: Some("正式".into()),
                home_branch: Some("b1".into()),
                phone: Some(format!("138{i:08}")),
                ..Default::default()
            })
            .await
            .expect("member add");
    }
    let socket = node.socket();
    let socket = socket.to_str().expect("UTF-8 path");
    assert_quiet_exit(
        &["--socket", socket, "member", "list", "--output", "json"],
        "\"type\"",
    );
    assert_quiet_exit(&["--socket", socket, "member", "list"], "NAME");
}

/// A node's log written to a file (systemd's `StandardError=file:`, or a
/// redirect) is plain text: no colour codes, without `NO_COLOR` set.
#[test]
fn a_node_logging_to_a_file_writes_no_colour_codes() {
    let fed = Federation::new("cli-log-colour");
    let config = fed.config("pingliang");
    let path = config.write();
    let log_path = config.dir.join("plain.log");
    let log = std::fs::File::create(&log_path).expect("create the log file");
    let mut child = Command::new(&binaries().node)
        .arg("--config")
        .arg(&path)
        .env_remove("NO_COLOR")
        .env("LIAISON_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start liaison-node");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("node started") {
            break text;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("liaison-node exited ({status}):\n{text}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `node started` within 30 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(25));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file:\n{text:?}"
    );
}

/// Every time a table shows is in the node's zone and marked with its
/// offset, whatever zone the machine running `liaisonctl` is in; JSON
/// carries RFC 3339 times with the offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_time_shown_is_in_the_nodes_zone_and_marked() {
    let fed = Federation::new("cli-one-clock");
    let node = fed.node("pingliang").await;
    node.ctl_ok(&[
        "org",
        "add",
        "b1",
        "--name",
        "崆峒区第一支部",
        "--level",
        "branch",
    ]);
    node.ctl_ok(&[
        "member",
        "add",
        "--name",
        "王宇",
        "--gender",
        "男",
        "--birth-date",
        "1990-05-17",
        "--party-status",
        "正式",
        "--home-branch",
        "b1",
    ]);
    node.ctl_ok(&[
        "outflow",
        "register",
        "王宇",
        "--to",
        "兰州",
        "--departed-on",
        "2026-03-01",
    ]);
    node.ctl_ok(&["contact", "record", "王宇", "--channel", "phone"]);
    let socket = node.socket();
    let socket = socket.to_str().expect("UTF-8 path");
    for args in [
        &["audit", "list"][..],
        &["contact", "status", "王宇"],
        &["member", "show", "王宇"],
        &["peer", "list"],
        &["status"],
    ] {
        let mut full = vec!["--socket", socket];
        full.extend_from_slice(args);
        // The machine's own zone must not matter.
        let output = run_with_timeout(
            Command::new(&binaries().ctl)
                .args(&full)
                .env("TZ", "America/New_York"),
            Duration::from_secs(30),
        );
        assert!(output.status.success(), "{}", describe_output(&output));
        let text = String::from_utf8_lossy(&output.stdout);
        for found in times_in(&text) {
            assert!(
                found.ends_with("+08:00"),
                "liaisonctl {args:?}: `{found}` in:\n{text}"
            );
        }
    }
    let audit = node.ctl_json(&["audit", "list"]);
    let at = audit[0].1["at"]
        .as_str()
        .expect("an RFC 3339 time beside at_ms");
    assert!(at.ends_with("+08:00") && at.contains('T'), "{at}");
}

/// The date-and-time strings of `text` (`2026-12-06 11:53:08`), each with
/// what follows it up to the end of an offset if one follows.
fn times_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    for start in 0..bytes.len() {
        let shape = [4, 2, 2, 2, 2, 2];
        let mut i = start;
        let mut ok = true;
        for (part, len) in shape.iter().enumerate() {
            for _ in 0..*len {
                ok &= digit(i);
                i += 1;
            }
            let sep = [b'-', b'-', b' ', b':', b':', 0][part];
            if sep != 0 {
                ok &= bytes.get(i) == Some(&sep) || (part == 2 && bytes.get(i) == Some(&b'T'));
                i += 1;
            }
            if !ok {
                break;
            }
        }
        if ok && (start == 0 || !digit(start - 1)) {
            let mut end = (i + 7).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            found.push(text[start..end].to_owned());
        }
    }
    found
}
