//! What a failed wait prints: the state of every node of a federation.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::binaries;
use super::process::signal;

/// Where a node's state can be read for a dump, even while it is borrowed.
#[derive(Debug, Clone)]
pub(crate) struct NodeSketch {
    pub(crate) node_id: String,
    pub(crate) dir: PathBuf,
    pub(crate) socket: PathBuf,
    pub(crate) log: PathBuf,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    nodes: Mutex<Vec<NodeSketch>>,
}

impl Registry {
    pub(crate) fn add(&self, node: NodeSketch) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if !nodes.iter().any(|n| n.dir == node.dir) {
            nodes.push(node);
        }
    }

    /// Everything that helps understand a failed wait: for every node its
    /// peers, pending callers, audit tail and log tail.
    pub(crate) fn dump(&self) -> String {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = String::new();
        for node in nodes {
            out.push_str(&format!(
                "======== node {} ({}) ========\n",
                node.node_id,
                node.dir.display()
            ));
            for args in [
                &["peer", "list"][..],
                &["peer", "list", "--pending"][..],
                &["audit", "list", "--limit", "25"][..],
            ] {
                out.push_str(&format!("---- liaisonctl {} ----\n", args.join(" ")));
                out.push_str(&quick_ctl(&node.socket, args));
            }
            out.push_str("---- log (tail) ----\n");
            out.push_str(&tail(&node.log, 60));
            out.push('\n');
        }
        out
    }
}

/// `liaisonctl` for a dump: short timeout, never panics.
fn quick_ctl(socket: &Path, args: &[&str]) -> String {
    if !socket.exists() {
        return "(no admin socket: node not running)\n".into();
    }
    let mut command = Command::new(&binaries().ctl);
    command
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let Ok(child) = command.spawn() else {
        return "(cannot run liaisonctl)\n".into();
    };
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(output)) => format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        _ => {
            signal(pid, libc::SIGKILL);
            "(liaisonctl did not answer)\n".into()
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
