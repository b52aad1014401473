//! deploy/: the systemd unit as shipped passes `systemd-analyze verify`
//! and keeps its promises (a dedicated user, the operators' group, a state
//! directory the group can only traverse, the sandbox, restart on
//! failure); the Dockerfile is multi-stage, non-root, with the data
//! directory a volume. Docker builds it only when asked
//! (`LIAISON_DOCKER_BUILD=1` and a usable docker): a release build inside
//! a container costs more than CI's budget.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use liaison_tests::{binaries, describe_output, run_with_timeout};

fn deploy(file: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .join("deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

/// The value of `key=` in the unit (the last one, as systemd reads it).
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn the_unit_keeps_its_promises_and_verifies() {
    let (_, unit) = deploy("liaison-node.service");
    for (key, value) in [
        ("User", "liaison"),
        ("SupplementaryGroups", "liaison-operators"),
        ("StateDirectory", "liaison"),
        ("StateDirectoryMode", "0711"),
        ("UMask", "0077"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "true"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "2"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ] {
        assert_eq!(unit_value(&unit, key), Some(value), "{key}= in the unit");
    }
    // The group in the unit is the one the example configuration names.
    let (_, example) = deploy("node.example.toml");
    assert!(example.contains("group = \"liaison-operators\""));

    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        println!("systemd-analyze is not installed here: the unit is checked by the assertions above only");
        return;
    };
    assert!(version.status.success());
    // Verified with this build's binary in place of /usr/local/bin's.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let copy = dir.path().join("liaison-node.service");
    let node = binaries().node.display().to_string();
    std::fs::write(&copy, unit.replace("/usr/local/bin/liaison-node", &node)).expect("write");
    let out = run_with_timeout(
        Command::new("systemd-analyze").arg("verify").arg(&copy),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", describe_output(&out));
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(
        !complaints.contains("liaison-node.service:"),
        "systemd-analyze complains about the unit: {complaints}"
    );
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_with_a_data_volume() {
    let (path, dockerfile) = deploy("Dockerfile");
    let instructions: Vec<(String, String)> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("&&"))
        .filter_map(|l| {
            let (word, rest) = l.split_once(' ')?;
            Some((word.to_ascii_uppercase(), rest.trim().to_owned()))
        })
        .filter(|(word, _)| word.chars().all(|c| c.is_ascii_uppercase()))
        .collect();
    let of = |word: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(w, _)| w == word)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };
    let froms = of("FROM");
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    let stage = froms[0]
        .split_whitespace()
        .last()
        .expect("a named build stage");
    assert!(
        froms[0].contains(" AS "),
        "the first stage is named: {froms:?}"
    );
    assert!(
        of("COPY")
            .iter()
            .any(|c| c.starts_with(&format!("--from={stage} "))),
        "the final stage copies from the build stage"
    );
    let user = *of("USER").last().expect("a USER");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        !["root", "0", ""].contains(&uid),
        "runs as a non-root user, not `{user}`"
    );
    assert!(
        of("VOLUME").iter().any(|v| v.contains("/var/lib/liaison")),
        "the data directory is a volume"
    );
    let entrypoint = *of("ENTRYPOINT").last().expect("an ENTRYPOINT");
    assert!(entrypoint.contains("liaison-node"), "{entrypoint}");
    assert!(
        of("ADD").is_empty(),
        "COPY, not ADD (no remote fetches at build time)"
    );

    if std::env::var("LIAISON_DOCKER_BUILD").as_deref() != Ok("1") {
        println!("the Dockerfile was linted; set LIAISON_DOCKER_BUILD=1 to build it with docker");
        return;
    }
    let usable = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        usable,
        "LIAISON_DOCKER_BUILD=1 but docker is not usable here"
    );
    let root = path.parent().and_then(Path::parent).expect("the workspace");
    let out = run_with_timeout(
        Command::new("docker")
            .args(["build", "-f"])
            .arg(&path)
            .args(["-t", "liaison-node:test"])
            .arg(root),
        Duration::from_secs(3600),
    );
    assert!(out.status.success(), "{}", describe_output(&out));
}
