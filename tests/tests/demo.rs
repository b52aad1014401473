//! `liaisonctl demo` end to end: the real binary runs the whole script with
//! `--exit-after --keep DIR`; then the three nodes are started again from
//! DIR (their configs are there) and fresh `liaisonctl` processes check the
//! outcome at each node's admin socket. And `liaisonctl demo roster`: the
//! same seed gives the same bytes, and a node's `member import --dry-run`
//! finds nothing wrong with it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use liaison_tests::{binaries, describe_output, liaisonctl, parse_json_lines, run_with_timeout};
use serde_json::Value;

/// Bound on the whole demo run (about 10 s in a debug build for 2,000
/// members; generous for a loaded CI machine).
const DEMO_TIMEOUT: Duration = Duration::from_secs(240);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const NODES: [&str; 3] = ["pingliang", "lanzhou", "xian"];

/// A `liaison-node` started on a config the demo wrote; stopped with
/// SIGTERM when dropped.
struct DemoNode {
    node_id: &'static str,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl DemoNode {
    fn start(dir: &Path, node_id: &'static str) -> DemoNode {
        let node_dir = dir.join(node_id);
        let log_path = node_dir.join("node.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the node's log");
        let stderr = log.try_clone().expect("clone the log handle");
        let child = Command::new(&binaries().node)
            .arg("--config")
            .arg(node_dir.join("node.toml"))
            .env_remove("LIAISON_CONFIG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .expect("start liaison-node");
        let mut node = DemoNode {
            node_id,
            socket: node_dir.join("data").join("admin.sock"),
            log: log_path,
            child: Some(child),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = node
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                node.child = None;
                panic!(
                    "{node_id} exited on restart ({status}):\n{}",
                    std::fs::read_to_string(&node.log).unwrap_or_default()
                );
            }
            if node.socket.exists() && node.ctl(&["status"]).status.success() {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "{node_id} did not answer within {START_TIMEOUT:?} of its restart:\n{}",
                std::fs::read_to_string(&node.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A fresh `liaisonctl --socket <this node's socket> ARGS`.
    fn ctl(&self, args: &[&str]) -> Output {
        let socket = self.socket.to_str().expect("a UTF-8 path");
        let mut full = vec!["--socket", socket];
        full.extend_from_slice(args);
        liaisonctl(&full)
    }

    /// `liaisonctl -o json ARGS`, asserting success: the data of every
    /// envelope of type `kind`.
    fn records(&self, kind: &str, args: &[&str]) -> Vec<Value> {
        let mut full = vec!["-o", "json"];
        full.extend_from_slice(args);
        let output = self.ctl(&full);
        assert!(
            output.status.success(),
            "liaisonctl {} at {}:\n{}",
            full.join(" "),
            self.node_id,
            describe_output(&output)
        );
        parse_json_lines(&String::from_utf8_lossy(&output.stdout))
            .into_iter()
            .filter(|(t, _)| t == kind)
            .map(|(_, data)| data)
            .collect()
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = libc::pid_t::try_from(child.id()).expect("a pid");
        // SAFETY: kill(2) on a child we spawned; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success() || std::thread::panicking(),
                    "{} stopped with {status}",
                    self.node_id
                );
                return;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop within {START_TIMEOUT:?}", self.node_id);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DemoNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The end of every node log in `dir`, for a failure message.
fn logs(dir: &Path) -> String {
    NODES
        .iter()
        .map(|id| {
            let text = std::fs::read_to_string(dir.join(id).join("node.log")).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            format!(
                "---- {id}/node.log (tail) ----\n{}\n",
                lines[lines.len().saturating_sub(30)..].join("\n")
            )
        })
        .collect()
}

#[test]
fn demo_runs_the_script_and_its_outcome_is_there_after_a_restart() {
    let tmp = tempfile::Builder::new()
        .prefix("liaison-demo-e2e-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp.path().join("state");
    let started = Instant::now();
    let mut demo = Command::new(&binaries().ctl);
    demo.args(["demo", "--exit-after", "--keep"])
        .arg(&dir)
        .args(["--count", "2000"])
        .env_remove("LIAISON_SOCKET")
        .env_remove("LIAISON_CONFIG");
    let output = run_with_timeout(&mut demo, DEMO_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "liaisonctl demo failed:\n{}\n{}",
        describe_output(&output),
        logs(&dir)
    );
    eprintln!(
        "liaisonctl demo --exit-after --count 2000: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for heading in ["[1/10]", "[7/10]", "[10/10]", "Completed on both sides"] {
        assert!(stdout.contains(heading), "no `{heading}` in:\n{stdout}");
    }
    assert!(dir.join(".liaison-demo").is_file());
    // The roster the demo imported, as it wrote it.
    let roster = std::fs::read_to_string(dir.join("roster.csv")).expect("roster.csv");
    let header: Vec<&str> = roster.lines().next().unwrap_or("").split(',').collect();
    let place = header
        .iter()
        .position(|h| *h == "destination_place")
        .expect("a destination_place column");
    let to_lanzhou = roster
        .lines()
        .skip(1)
        .filter(|l| {
            l.split(',')
                .nth(place)
                .is_some_and(|p| p.starts_with("6201"))
        })
        .count();
    assert_eq!(roster.lines().count(), 2001);

    // The nodes again, from the configs the demo left (their ports pinned).
    let p = DemoNode::start(&dir, "pingliang");
    let l = DemoNode::start(&dir, "lanzhou");
    let x = DemoNode::start(&dir, "xian");

    // The members arrived: Lanzhou hosts every Pingliang member away to a
    // place it serves.
    let away = p.records(
        "member",
        &["member", "list", "--owned", "--away", "--limit", "100000"],
    );
    let away_to_lanzhou: Vec<&Value> = away
        .iter()
        .filter(|m| m["outflow"]["destination_node"] == "lanzhou")
        .collect();
    assert!(away_to_lanzhou
        .iter()
        .all(|m| m["outflow"]["destination_place"]
            .as_str()
            .is_some_and(|p| p.starts_with("6201"))));
    let by_place = p.records(
        "member",
        &[
            "member",
            "list",
            "--owned",
            "--away",
            "--destination",
            "6201",
            "--limit",
            "100000",
        ],
    );
    assert_eq!(by_place.len(), away_to_lanzhou.len());
    // One of them has been transferred to Lanzhou since.
    assert_eq!(away_to_lanzhou.len(), to_lanzhou - 1);
    assert_eq!(away.len(), 2000 - 1);
    let hosted = l.records(
        "member",
        &["member", "list", "--hosted", "--limit", "100000"],
    );
    assert!(!hosted.is_empty());
    assert_eq!(
        hosted.len(),
        away_to_lanzhou.len(),
        "Lanzhou hosts {} members, Pingliang has {} away to Lanzhou",
        hosted.len(),
        away_to_lanzhou.len()
    );
    for m in &hosted {
        assert_eq!(m["owner"], "pingliang");
        assert_eq!(m["national_id"], "", "the ID number is never shared");
    }
    assert!(x
        .records("member", &["member", "list", "--hosted", "--limit", "10"])
        .is_empty());

    // The configs kept the ports the nodes got, so the links come back.
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let peers = p.records("peer", &["peer", "list"]);
        let up = |id: &str| {
            peers
                .iter()
                .any(|q| q["node_id"] == id && q["outbound_up"] == true && q["inbound_up"] == true)
        };
        if up("lanzhou") && up("xian") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Pingliang's links did not come back after the restart: {peers:?}\n{}",
            logs(&dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The agreement is active on both sides.
    let at_p = p.records("agreement", &["agreement", "list"]);
    let at_l = l.records("agreement", &["agreement", "list"]);
    assert_eq!(at_p.len(), 1, "{at_p:?}");
    assert_eq!(at_l.len(), 1, "{at_l:?}");
    assert_eq!(at_p[0]["agreement_id"], at_l[0]["agreement_id"]);
    for (a, role) in [(&at_p[0], "outflow"), (&at_l[0], "inflow")] {
        assert_eq!(a["state"], "active", "{a}");
        assert_eq!(a["role"], role);
        assert_eq!(a["outflow_node"], "pingliang");
        assert_eq!(a["inflow_node"], "lanzhou");
    }

    // The transfer completed: outgoing at Pingliang, incoming at Lanzhou.
    let out = p.records(
        "transfer",
        &["transfer", "list", "--outgoing", "--state", "completed"],
    );
    let inc = l.records(
        "transfer",
        &["transfer", "list", "--incoming", "--state", "completed"],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(out[0]["transfer_id"], inc[0]["transfer_id"]);
    assert_eq!(out[0]["receiver"], "lanzhou");
    let member_id = out[0]["member_id"]
        .as_str()
        .expect("a member id")
        .to_owned();
    let tombstone = p.records("member", &["member", "show", &member_id]);
    assert_eq!(tombstone[0]["moved"]["to_node"], "lanzhou", "{tombstone:?}");
    let owned = l.records("member", &["member", "show", &member_id]);
    assert_eq!(owned[0]["owned"], true, "{owned:?}");
    assert_eq!(owned[0]["owner"], "lanzhou");
    assert_eq!(owned[0]["home_branch"], "lz-construction");
    // The activity Lanzhou recorded stays with the member, now Lanzhou's.
    let activities = l.records("activity", &["activity", "list", &member_id]);
    assert!(
        activities.iter().any(|a| a["author"] == "lanzhou"),
        "{activities:?}"
    );

    drop((p, l, x));
    // A second demo may replace the first's state, and only that.
    std::fs::write(tmp.path().join("other"), "not a demo").expect("write a file");
    let refused = liaisonctl(&[
        "demo",
        "--exit-after",
        "--keep",
        tmp.path().to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        describe_output(&refused)
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not empty"),
        "{}",
        describe_output(&refused)
    );
}

/// The org ids and names the roster's home_branch column uses, as the help
/// of `demo roster` lists them.
fn home_branches() -> Vec<(String, String)> {
    let help = liaisonctl(&["demo", "roster", "--help"]);
    assert!(help.status.success(), "{}", describe_output(&help));
    let branches: Vec<(String, String)> = String::from_utf8_lossy(&help.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let id = words.next()?;
            let name = words.next()?;
            (id.starts_with("pl-") && words.next().is_none())
                .then(|| (id.to_owned(), name.to_owned()))
        })
        .collect();
    assert_eq!(branches.len(), 7, "home branches in the help: {branches:?}");
    branches
}

#[tokio::test]
async fn roster_is_the_same_for_the_same_seed_and_imports_cleanly() {
    let roster = |seed: &str| -> Vec<u8> {
        let output = liaisonctl(&["demo", "roster", "--seed", seed, "--count", "300"]);
        assert!(output.status.success(), "{}", describe_output(&output));
        output.stdout
    };
    let first = roster("7");
    let second = roster("7");
    assert_eq!(first, second, "seed 7 gave two different files");
    assert_ne!(first, roster("8"), "seeds 7 and 8 gave the same file");
    let text = String::from_utf8(first.clone()).expect("UTF-8");
    assert_eq!(text.lines().count(), 301);

    let fed = liaison_tests::Federation::new("demo-roster");
    let node = fed.node("pingliang").await;
    for (id, name) in home_branches() {
        node.ctl_ok(&["org", "add", &id, "--name", &name, "--level", "branch"]);
    }
    let file = fed.dir().join("roster.csv");
    std::fs::write(&file, &first).expect("write the roster");
    let file = file.to_str().expect("a UTF-8 path");
    let outcome = node.ctl_json(&["member", "import", file, "--dry-run"]);
    let problems: Vec<&Value> = outcome
        .iter()
        .filter(|(t, _)| t == "import_problem")
        .map(|(_, d)| d)
        .collect();
    assert!(problems.is_empty(), "problems: {problems:?}");
    let result = outcome
        .iter()
        .find(|(t, _)| t == "import_result")
        .map(|(_, d)| d)
        .expect("an import_result");
    // A dry run checks every row and imports nothing.
    assert_eq!(result["imported"], 0, "{result}");
    assert_eq!(result["skipped"], 0, "{result}");
    let members = node.ctl_json(&["member", "list", "--limit", "10"]);
    assert!(members.is_empty(), "{members:?}");
    // The real import takes every row, with its departure.
    let outcome = node.ctl_json(&["member", "import", file]);
    assert!(
        outcome
            .iter()
            .any(|(t, d)| t == "import_result" && d["imported"] == 300),
        "{outcome:?}"
    );
    let away = node.ctl_json(&["member", "list", "--away", "--limit", "1000"]);
    assert_eq!(away.len(), 300);
}
