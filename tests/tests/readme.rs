//! The README's commands run as written, and so do deploy/README.md's (a
//! region joining a federation): each file's `sh` blocks, in order, in one
//! bash session in a temporary directory, with this build's `liaison-node`
//! and `liaisonctl` on `PATH`; the first command that fails fails the test.
//! A block preceded by a `<!-- readme-test: skip (why) -->` line is not run
//! (building, the interactive demo, the soaks).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use liaison_tests::{binaries, describe_output, run_with_timeout};

const SKIP: &str = "<!-- readme-test: skip";

/// The `sh` blocks of `markdown` that are to run, in order.
fn runnable_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut previous = "";
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```sh" {
            let skip = previous.trim_start().starts_with(SKIP);
            let mut block = String::new();
            for inner in lines.by_ref() {
                if inner.trim() == "```" {
                    break;
                }
                block.push_str(inner);
                block.push('\n');
            }
            if !skip {
                blocks.push(block);
            }
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    blocks
}

#[test]
fn the_blocks_are_found_and_skips_honoured() {
    let markdown = "text\n\n<!-- readme-test: skip (x) -->\n```sh\nnot run\n```\n\n```sh\necho a\n```\n```rust\nno\n```\n```sh\necho b\n```\n";
    assert_eq!(runnable_blocks(markdown), ["echo a\n", "echo b\n"]);
}

#[test]
fn the_readme_runs() {
    run_markdown("README.md", &["pingliang", "lanzhou"]);
}

#[test]
fn the_deploy_readme_runs() {
    run_markdown("deploy/README.md", &["tianshui", "pingliang"]);
}

/// Runs the runnable blocks of `file` (relative to the workspace); on a
/// failure, prints the logs of `nodes` (`<node>/node.log`).
fn run_markdown(file: &str, nodes: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace");
    let readme = std::fs::read_to_string(root.join(file)).expect("read the markdown file");
    let blocks = runnable_blocks(&readme);
    assert!(!blocks.is_empty(), "{file} has no runnable sh block");

    let bin = binaries()
        .node
        .parent()
        .expect("the binaries' directory")
        .to_owned();
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Background jobs (the nodes) are stopped when the script ends, however it ends.
    let mut script = String::from(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT\nset -x\n",
    );
    for block in &blocks {
        script.push_str(block);
    }
    let output = run_with_timeout(
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env_remove("LIAISON_CONFIG")
            .env_remove("LIAISON_SOCKET"),
        Duration::from_secs(300),
    );
    if !output.status.success() {
        let logs: String = nodes
            .iter()
            .map(|node| {
                let log = dir.path().join(node).join("node.log");
                format!(
                    "\n--- {}:\n{}",
                    log.display(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .collect();
        panic!(
            "a command of {file} failed (the trace on stderr ends with it):\n{}{logs}",
            describe_output(&output)
        );
    }
}
