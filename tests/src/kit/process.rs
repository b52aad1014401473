//! Processes with deadlines: every process a test runs is bounded.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::{binaries, CLI_TIMEOUT};

/// Runs `command` to completion, capturing its output; kills it and panics
/// if it takes longer than `within`.
pub fn run_with_timeout(command: &mut Command, within: Duration) -> Output {
    let description = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {description}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(output) => output.unwrap_or_else(|e| panic!("waiting for {description}: {e}")),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("{description} did not finish within {within:?}");
        }
    }
}

pub(crate) fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) with a pid of a child we spawned; no memory is involved.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Runs the real `liaisonctl` with `args` (no `--socket` added).
pub fn liaisonctl(args: &[&str]) -> Output {
    liaisonctl_within(args, CLI_TIMEOUT)
}

/// [`liaisonctl`], killed after `within`.
pub(crate) fn liaisonctl_within(args: &[&str], within: Duration) -> Output {
    let mut command = Command::new(&binaries().ctl);
    command
        .args(args)
        .env_remove("LIAISON_SOCKET")
        .env_remove("LIAISON_CONFIG");
    run_with_timeout(&mut command, within)
}

/// Output of a process for an assertion message.
pub fn describe_output(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
