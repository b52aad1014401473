//! `liaison-bench`: Liaison measured against this machine's own limits
//! (issue 9).
//!
//! Every scenario starts real `liaison-node` processes (release build, real
//! SQLite files in a temporary directory, real mutual TLS on loopback) and
//! drives them as operators do, with `liaisonctl` or the admin gRPC service
//! it speaks. Each figure is the median of at least three repetitions with
//! its spread; each target is a ratio to a limit measured in the same run
//! ([`limits`]): absolute times on a shared machine are noise.
//!
//! # Layout
//! - [`limits`]: L_sqlite (raw batched upserts) and L_stream (raw mTLS gRPC
//!   streaming).
//! - [`scenarios`]: one module per scenario of the issue.
//! - Nodes, their CA and `liaisonctl` come from the test kit
//!   (`liaison_tests::kit`: [`Federation`], `TestNode`), with the bench's
//!   [`launch`] options; [`follower`]: the lightweight followers built from
//!   the node's own client code; [`tls_server`]: the bench's own mTLS gRPC
//!   servers; [`timing`]: polling and clocks of the measurements.
//! - [`fixture`]: synthetic members; [`procfs`]: memory, CPU, machine;
//!   [`report`]: figures, targets, the table and the JSON.
//!
//! `cargo run --release -p liaison-bench -- all` runs everything;
//! `-- initial-sync --quick` one scenario in under a minute.

mod fixture;
mod follower;
mod limits;
mod procfs;
mod report;
mod scenarios;
mod timing;
mod tls_server;

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use clap::{Parser, ValueEnum};
use liaison_tests::{Federation, Launch};

use crate::limits::Limits;
use crate::report::Report;

/// Benchmarks of Liaison against this machine's own limits (issue 9).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// What to run: `all`, or scenarios by name.
    #[arg(required = true, value_enum)]
    scenarios: Vec<Scenario>,
    /// A smoke run: small sizes, short phases (under a minute a scenario).
    #[arg(long)]
    quick: bool,
    /// Scale scenario with 100,000 vs 1,000,000 members (long); without it,
    /// 10,000 vs 100,000.
    #[arg(long)]
    scale: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Members in scope for initial-sync and catch-up, and in the roster of
    /// import-xlsx (default 100,000; 10,000 and 5,000 with --quick).
    #[arg(long, value_name = "N")]
    members: Option<u64>,
    /// Concurrent clients writing in write-cost (4 by default: an office's
    /// operators; 64 saturates the owner's writer).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    writers: u16,
    /// Repetitions per figure (at least 3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(3..))]
    reps: u16,
    /// Keep the temporary directory (configs, databases, node logs).
    #[arg(long)]
    keep: bool,
    /// Where to create the temporary directory (default: the system's).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Use the binaries in target/release as they are (do not run cargo build).
    #[arg(long)]
    no_build: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Everything below, in this order.
    All,
    /// L_sqlite and L_stream only.
    Limits,
    /// 1. A fresh host receives every member in scope.
    InitialSync,
    /// 2. A stopped host drains the backlog.
    CatchUp,
    /// 3. Owner commit to host commit at 100/s and 1,000/s.
    Convergence,
    /// 4. Local writes/s with 0, 1 and 8 followers.
    WriteCost,
    /// 5. Transfers between two nodes with auto-accept, burst and paced.
    Transfers,
    /// 6. Memory of a node with 100,000 members and hundreds of followers.
    FanOut,
    /// 7. List, report and restart at 10x the members.
    Scale,
    /// 8. Every report at 100,000 and 1,000,000 members (2,000 and 20,000
    ///    with --quick).
    Reports,
    /// 9. An office's roster imported from an .xlsx workbook.
    ImportXlsx,
}

const ORDER: [Scenario; 10] = [
    Scenario::Limits,
    Scenario::InitialSync,
    Scenario::CatchUp,
    Scenario::Convergence,
    Scenario::WriteCost,
    Scenario::Transfers,
    Scenario::FanOut,
    Scenario::Scale,
    Scenario::Reports,
    Scenario::ImportXlsx,
];

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::All => "all",
            Scenario::Limits => "limits",
            Scenario::InitialSync => "1 initial-sync",
            Scenario::CatchUp => "2 catch-up",
            Scenario::Convergence => "3 convergence",
            Scenario::WriteCost => "4 write-cost",
            Scenario::Transfers => "5 transfers",
            Scenario::FanOut => "6 fan-out",
            Scenario::Scale => "7 scale",
            Scenario::Reports => "8 reports",
            Scenario::ImportXlsx => "9 import-xlsx",
        }
    }
}

/// Options every scenario reads.
#[derive(Debug, Clone)]
pub struct Opts {
    pub quick: bool,
    pub scale: bool,
    pub reps: usize,
    /// `--members`: overrides the size of initial-sync and catch-up.
    pub members: Option<u64>,
    /// `--writers`: concurrent clients in write-cost.
    pub writers: usize,
}

/// The federation name of the bench's CAs.
const FEDERATION: &str = "bench";

/// How the bench runs its nodes: production limits, except that the
/// reconnect backoff is capped at 2 s so set-up does not wait, and that
/// every connection comes from 127.0.0.1 (the per-address cap on audited
/// refusals is raised); info logs unless `LIAISON_LOG` says otherwise
/// (debug logs with `--keep` show where a scenario's time goes); bounds
/// for databases of a million members (imports of a million rows
/// included); start and stop times measured to 5 ms.
fn launch() -> Launch {
    Launch {
        limits: BTreeMap::from([
            ("retry_delay_ms_max".to_owned(), 2000),
            ("refusals_logged_per_minute".to_owned(), 10_000),
        ]),
        log_filter: std::env::var("LIAISON_LOG").unwrap_or_else(|_| "info".to_owned()),
        start_timeout: Duration::from_secs(120),
        cli_timeout: Duration::from_secs(1800),
        poll: Duration::from_millis(5),
        wait: Duration::from_secs(60),
    }
}

/// What scenarios share: options, a scratch directory, a CA for the
/// bench's own peers, and the limits once measured.
pub struct Bench {
    pub opts: Opts,
    pub root: PathBuf,
    /// The CA of the bench's own peers (followers, the L_stream servers):
    /// a federation without nodes.
    pub peers: Federation,
    limits: Option<Limits>,
}

impl Bench {
    /// Members of a sized scenario: `--members`, else `quick` with
    /// `--quick`, else 100,000.
    pub fn members(&self, quick: u64) -> u64 {
        self.opts
            .members
            .unwrap_or(if self.opts.quick { quick } else { 100_000 })
    }

    /// A fresh directory `name` under the run's directory.
    pub fn scratch(&self, name: &str) -> Result<PathBuf> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(dir)
    }

    /// A federation (its own CA) in a fresh directory `name`.
    pub fn federation(&self, name: &str) -> Result<Federation> {
        Ok(Federation::in_dir(
            &self.scratch(name)?,
            FEDERATION,
            launch(),
        ))
    }

    /// The limits, measured on first use.
    pub async fn limits(&mut self, report: &mut Report) -> Result<Limits> {
        if let Some(limits) = &self.limits {
            return Ok(limits.clone());
        }
        let limits = limits::measure(self, report).await?;
        self.limits = Some(limits.clone());
        Ok(limits)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("liaison-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The test kit panics where it cannot go on (the panic is printed): in
    // the set-up, that ends the run as an error does.
    match std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(run(cli)))) {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => ExitCode::FAILURE,
        Ok(Err(error)) => {
            eprintln!("liaison-bench: {error:#}");
            ExitCode::from(2)
        }
        Err(_) => ExitCode::from(2),
    }
}

/// Awaits a scenario; a panic in it (the test kit panics where it cannot go
/// on) is its error, so that the run goes on with the next scenario.
async fn unless_panicked(scenario: impl Future<Output = Result<()>>) -> Result<()> {
    let mut scenario = std::pin::pin!(scenario);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| scenario.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic without a message");
                Poll::Ready(Err(anyhow!("panicked: {message}")))
            }
        }
    })
    .await
}

/// Runs the chosen scenarios; `Ok(false)` if one of them failed.
async fn run(cli: Cli) -> Result<bool> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let started_at = chrono::Local::now().to_rfc3339();
    let machine_before = procfs::machine();
    if cli.no_build {
        liaison_tests::prebuilt_binaries();
    } else {
        liaison_tests::binaries();
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix("liaison-bench-");
    let tempdir = match &cli.dir {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    }
    .context("create a temporary directory")?;
    let root = tempdir.path().to_owned();
    let peers = Federation::in_dir(&root.join("bench-peers"), FEDERATION, launch());
    let mut bench = Bench {
        opts: Opts {
            quick: cli.quick,
            scale: cli.scale,
            reps: usize::from(cli.reps),
            members: cli.members,
            writers: usize::from(cli.writers),
        },
        root: root.clone(),
        peers,
        limits: None,
    };
    eprintln!("liaison-bench: {}", procfs::machine_line(&machine_before));
    eprintln!("liaison-bench: working in {}", root.display());

    let selected: Vec<Scenario> = if cli.scenarios.contains(&Scenario::All) {
        ORDER.to_vec()
    } else {
        ORDER
            .iter()
            .copied()
            .filter(|s| cli.scenarios.contains(s))
            .collect()
    };
    let mut report = Report::default();
    let mut ok = true;
    for scenario in selected {
        let name = scenario.name();
        eprintln!("liaison-bench: ==== {name} ====");
        let started = Instant::now();
        let outcome = unless_panicked(async {
            match scenario {
                Scenario::All => Ok(()),
                Scenario::Limits => bench.limits(&mut report).await.map(|_| ()),
                Scenario::InitialSync => {
                    scenarios::initial_sync::run(&mut bench, &mut report).await
                }
                Scenario::CatchUp => scenarios::catch_up::run(&mut bench, &mut report).await,
                Scenario::Convergence => scenarios::convergence::run(&mut bench, &mut report).await,
                Scenario::WriteCost => scenarios::write_cost::run(&mut bench, &mut report).await,
                Scenario::Transfers => scenarios::transfers::run(&mut bench, &mut report).await,
                Scenario::FanOut => scenarios::fan_out::run(&mut bench, &mut report).await,
                Scenario::Scale => scenarios::scale::run(&mut bench, &mut report).await,
                Scenario::Reports => scenarios::reports::run(&mut bench, &mut report).await,
                Scenario::ImportXlsx => scenarios::import_xlsx::run(&mut bench, &mut report).await,
            }
        })
        .await;
        eprintln!(
            "liaison-bench: {name} took {:.1}s",
            started.elapsed().as_secs_f64()
        );
        if let Err(error) = outcome {
            eprintln!("liaison-bench: {name} FAILED: {error:#}");
            report.errors.push((name.to_owned(), format!("{error:#}")));
            ok = false;
        }
        // Big databases: free the disk unless asked to keep them.
        if !cli.keep {
            for entry in std::fs::read_dir(&root)?.flatten() {
                if entry.file_name() != "bench-peers" {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }

    let machine_after = procfs::machine();
    let machine = serde_json::json!({
        "cores": machine_before["cores"],
        "cpu_model": machine_before["cpu_model"],
        "memory_total_mib": machine_before["memory_total_mib"],
        "memory_available_mib": machine_before["memory_available_mib"],
        "kernel": machine_before["kernel"],
        "load_average_1m_before": machine_before["load_average_1m"],
        "load_average_1m_after": machine_after["load_average_1m"],
        "quick": cli.quick,
        "scale": cli.scale,
        "reps": cli.reps,
        "members": cli.members,
        "writers": cli.writers,
    });
    println!("liaison-bench: {command}");
    println!("machine: {}", procfs::machine_line(&machine_before));
    println!(
        "load average (1 min): {:.2} before, {:.2} after; figures: median of {} repetitions, spread min … max\n",
        machine_before["load_average_1m"].as_f64().unwrap_or(f64::NAN),
        machine_after["load_average_1m"].as_f64().unwrap_or(f64::NAN),
        cli.reps
    );
    print!("{}", report.table());
    if let Some(path) = &cli.json {
        let json = report.to_json(machine, &command, &started_at);
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("write {}", path.display()))?;
        eprintln!("liaison-bench: figures written to {}", path.display());
    }
    if cli.keep {
        let kept = tempdir.keep();
        eprintln!("liaison-bench: kept {}", kept.display());
    }
    Ok(ok)
}
