//! What `/proc` says about the machine and about a process: cores, memory,
//! load, resident memory (VmRSS, VmHWM) and CPU time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .with_context(|| format!("no {field} in {path}"))
}

/// Resident memory of `pid` now, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS")
}

/// The peak resident memory of `pid` since it started, in KiB.
pub fn hwm_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM")
}

/// CPU time (user + system) of `pid` so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    // The command name is in parentheses and may contain spaces: split after it.
    let after = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3 of stat(5); utime is 14 and stime 15.
    let ticks = |idx: usize| -> Result<f64> {
        fields
            .get(idx - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .with_context(|| format!("field {idx} of {path}"))
    };
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(14)? + ticks(15)?) / hz)
}

/// Samples the resident memory of a process every 100 ms and keeps the
/// largest value, until dropped or stopped.
pub struct RssSampler {
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let peak_kib = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (peak, halt) = (peak_kib.clone(), stop.clone());
        tokio::spawn(async move {
            while !halt.load(Ordering::Relaxed) {
                match rss_kib(pid) {
                    Ok(kib) => {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    Err(_) => break, // the process ended
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssSampler { peak_kib, stop }
    }

    /// The largest resident memory seen so far, in KiB.
    pub fn peak_kib(&self) -> u64 {
        self.peak_kib.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn meminfo_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Cores, CPU model, memory, kernel: what the figures were measured on.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    json!({
        "cores": cores,
        "cpu_model": model,
        "memory_total_mib": meminfo_kib("MemTotal").map(|k| k / 1024),
        "memory_available_mib": meminfo_kib("MemAvailable").map(|k| k / 1024),
        "kernel": kernel,
        "load_average_1m": load_average(),
    })
}

/// One line about the machine for the table's header.
pub fn machine_line(machine: &Value) -> String {
    format!(
        "{} cores ({}), {} MiB memory ({} MiB available), Linux {}, load {:.2}",
        machine["cores"],
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["memory_total_mib"],
        machine["memory_available_mib"],
        machine["kernel"].as_str().unwrap_or("?"),
        machine["load_average_1m"].as_f64().unwrap_or(f64::NAN),
    )
}
