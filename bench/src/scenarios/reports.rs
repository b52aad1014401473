//! Scenario 8, reports: every `liaisonctl report` at 100,000 and at
//! 1,000,000 members (2,000 and 20,000 with `--quick`).
//!
//! One owner grows from the small size to the large one by importing
//! rosters; a tenth of its members are away, a third of those to the
//! place a real host node serves under an active agreement (so the host
//! holds their copies and its `report inflow` counts them), the others to
//! six more places. At each size every report is timed with the real
//! `liaisonctl` (`-o json`, output read in full), the outflow report also
//! at an earlier date (`--as-of`) and written as a workbook (`--xlsx`);
//! the host's inflow report at the host. The growth of each is the
//! exponent e in time ∝ members^e, net of liaisonctl's fixed cost (its
//! fastest `status`).
//!
//! Targets: e ≤ 1.1 (linear, allowing for noise), and at the large size
//! a report takes no longer than raw SQLite takes to write as many rows
//! (members / L_sqlite, measured in the same run): a report reads with
//! SQL aggregation over indexes, never loading the members.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use liaison_tests::TestNode;

use super::{add_branches, import_roster};
use crate::fixture::{HOST_CITY, HOST_PLACE};
use crate::report::{median, quantile, Figure, Report, Target};
use crate::Bench;

const S: &str = "8 reports";
const EXPONENT_MAX: f64 = 1.1;

/// Places of the members away who are not under the agreement.
const OTHER_PLACES: [&str; 6] = ["610113", "640104", "650106", "110105", "620402", "440305"];

/// Where member `i` is: a tenth away, a third of those to the host's place.
fn destination(i: u64) -> Option<&'static str> {
    match i % 30 {
        0 => Some(HOST_PLACE),
        10 | 20 => Some(OTHER_PLACES[((i / 30) % OTHER_PLACES.len() as u64) as usize]),
        _ => None,
    }
}

/// The commands timed at each size: a name, the arguments, and whether
/// the host runs it.
fn commands(workbook: &str) -> Vec<(&'static str, Vec<String>, bool)> {
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        ("outflow", args(&["report", "outflow"]), false),
        (
            "outflow --as-of (a year before)",
            args(&["report", "outflow", "--as-of", "2025-06-30"]),
            false,
        ),
        (
            "outflow --xlsx",
            args(&["report", "outflow", "--xlsx", workbook]),
            false,
        ),
        ("contact", args(&["report", "contact"]), false),
        ("transfers", args(&["report", "transfers"]), false),
        ("transfer-due", args(&["report", "transfer-due"]), false),
        ("activity", args(&["report", "activity"]), false),
        ("trend", args(&["report", "trend"]), false),
        ("uncovered", args(&["report", "uncovered"]), false),
        ("agreements", args(&["report", "agreements"]), false),
        ("inflow (at the host)", args(&["report", "inflow"]), true),
    ]
}

pub async fn run(bench: &mut Bench, report: &mut Report) -> Result<()> {
    let limits = bench.limits(report).await?;
    let (small, large): (u64, u64) = if bench.opts.quick {
        (2_000, 20_000)
    } else {
        (100_000, 1_000_000)
    };
    let fed = bench.federation("reports")?;
    let owner = fed.node("pingliang").await;
    let host = fed.node("lanzhou").await;
    add_branches(&owner);
    fed.link_serving(&owner, &host, HOST_CITY).await;
    fed.agree(&owner, &host, "BENCH-REPORTS").await;
    let workbook = fed.dir().join("outflow.xlsx");
    let commands = commands(workbook.to_str().context("a UTF-8 path")?);

    let mut imported = 0;
    // Per size: liaisonctl's fixed cost, and each command's times.
    let mut fixed: Vec<Vec<f64>> = Vec::new();
    let mut times: Vec<Vec<Vec<f64>>> = Vec::new();
    for size in [small, large] {
        eprintln!("liaison-bench: growing the owner to {size} members");
        let rate = import_roster(&owner, fed.dir(), imported..size, destination)?;
        report.note(
            S,
            format!("owner grew to {size} members at {rate:.0} rows/s (member import)"),
        );
        imported = size;
        let hosted = (0..size).filter(|i| i % 30 == 0).count() as i64;
        wait_hosted(&host, hosted).await?;
        let mut cli = Vec::new();
        let mut per_command = vec![Vec::new(); commands.len()];
        for _ in 0..bench.opts.reps {
            let started = Instant::now();
            owner.ctl_ok(&["-o", "json", "status"]);
            cli.push(started.elapsed().as_secs_f64());
            for (idx, (_, args, at_host)) in commands.iter().enumerate() {
                let node = if *at_host { &host } else { &owner };
                let mut full: Vec<&str> = vec!["-o", "json"];
                full.extend(args.iter().map(String::as_str));
                let started = Instant::now();
                node.ctl_ok(&full);
                per_command[idx].push(started.elapsed().as_secs_f64());
            }
        }
        fixed.push(cli);
        times.push(per_command);
    }
    let ratio = large as f64 / small as f64;
    // Raw SQLite's time to write as many rows as the node has members.
    let write_s = large as f64 / limits.l_sqlite();
    report.add(
        Figure::new(
            S,
            &format!("liaisonctl status at {large}"),
            "s",
            fixed[1].clone(),
        )
        .with_note(
            "the fixed cost of a liaisonctl run: its fastest run is subtracted from the exponents",
        ),
    );
    for (idx, (name, _, _)) in commands.iter().enumerate() {
        let (t_small, t_large) = (&times[0][idx], &times[1][idx]);
        report.add(Figure::new(
            S,
            &format!("{name} at {small}"),
            "s",
            t_small.clone(),
        ));
        report.add(
            Figure::new(S, &format!("{name} at {large}"), "s", t_large.clone()).with_target(
                Target::at_most(
                    median(t_large),
                    write_s,
                    &format!("{large} / L_sqlite = {write_s:.2} s"),
                ),
            ),
        );
        let net = |t: &Vec<f64>, cli: &Vec<f64>| (median(t) - quantile(cli, 0.0)).max(1e-4);
        let exponent = (net(t_large, &fixed[1]) / net(t_small, &fixed[0])).ln() / ratio.ln();
        report.add(
            Figure::new(S, &format!("{name}: growth exponent"), "e", vec![exponent])
                .with_target(Target::at_most(exponent, EXPONENT_MAX, "1.1 (linear)"))
                .with_note(format!(
                    "time ∝ members^e between {small} and {large}, net of the liaisonctl fixed cost"
                )),
        );
    }
    Ok(())
}

/// Waits until the host's inflow report counts `n` members (the copies of
/// the members away to its place arrived).
async fn wait_hosted(host: &TestNode, n: i64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let out = host.ctl_ok(&["-o", "json", "report", "inflow"]);
        let hosted = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["type"] == "report_row" && v["data"]["table"] == "summary")
            .and_then(|v| v["data"]["hosted"].as_i64());
        if hosted == Some(n) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the host holds {hosted:?} members, not {n}, after 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
