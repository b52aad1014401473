//! Scenario 2, catch-up: the host is stopped while the owner writes N changes, then
//! restarted; how fast it drains the backlog, and how much memory both
//! nodes use meanwhile.
//!
//! Set-up: owner and host with an active agreement covering N members, in
//! sync. Each repetition stops the host (SIGTERM), changes every member's
//! phone at the owner by exporting the roster and importing it back
//! (`member export`, `member import`: N updates, N events for the host),
//! restarts the host and times from its spawn until its cursor reaches the
//! owner's head with all N applied (`peer status`, polled every 50 ms).
//! Memory: the host's VmHWM after the drain (its peak since it started),
//! the owner's VmRSS sampled every 100 ms during the drain, and the host's
//! peak during the drain minus its resident memory in steady state before
//! it was stopped, against the size of the backlog: a node that held the
//! backlog whole would grow by about its size.
//!
//! Targets: drain ≥ 0.5 × L_sqlite (replacing rows: the host replaces its
//! copies); the backlog never held in memory whole (growth < 0.5 × backlog).

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{
    add_branches, export, import, import_roster, mib, pid_of, progress, require, stop, wait_active,
    wait_caught_up,
};
use crate::fixture::{self, HOST_CITY, HOST_PLACE};
use crate::procfs::{self, RssSampler};
use crate::report::{median, Figure, Report, Target};
use crate::Bench;

const S: &str = "2 catch-up";

pub async fn run(bench: &mut Bench, report: &mut Report) -> Result<()> {
    let limits = bench.limits(report).await?;
    let n = bench.members(5_000);
    let fed = bench.federation("catch-up")?;
    let owner = fed.node("pingliang").await;
    let mut host = fed.node("lanzhou").await;
    add_branches(&owner);
    fed.link_serving(&owner, &host, HOST_CITY).await;
    import_roster(&owner, fed.dir(), 0..n, |_| Some(HOST_PLACE))?;
    let id = fed.propose(&owner, &host, "BENCH-CATCHUP").await;
    host.ctl_ok(&["agreement", "accept", &id]);
    wait_active(&owner, &id, Duration::from_secs(1800)).await?;
    wait_caught_up(
        &host,
        &owner,
        n,
        Duration::from_secs(1800),
        Duration::from_millis(100),
    )
    .await?;

    let mut owner_admin = owner.admin().await;
    let event_bytes = limits.stream.event_bytes as f64;
    let mut write_rates = Vec::new();
    let mut drain_rates = Vec::new();
    let mut drain_s = Vec::new();
    let mut host_start_s = Vec::new();
    let mut host_peak_mib = Vec::new();
    let mut host_growth_ratio = Vec::new();
    let mut owner_peak_mib = Vec::new();
    for rep in 0..bench.opts.reps {
        let base = {
            let mut host_admin = host.admin().await;
            progress(&host, &mut host_admin, &owner.node_id)
                .await?
                .applied_total
        };
        // What the host needed in steady state, after applying the initial
        // sync (or the previous drain): the reference for its growth.
        let host_rss_before = procfs::rss_kib(pid_of(&host)?)?;
        stop(&mut host)?;

        let roster = export(&mut owner_admin).await?;
        let (csv, rows) = fixture::bump_phones(&roster, rep as u64 + 1)?;
        require("members exported", rows, n)?;
        let written = Instant::now();
        import(&owner, &csv, fed.dir(), true)?;
        write_rates.push(n as f64 / written.elapsed().as_secs_f64());

        let owner_rss = RssSampler::start(pid_of(&owner)?);
        let spawned = Instant::now();
        host_start_s.push(host.start().await.as_secs_f64());
        let host_pid = pid_of(&host)?;
        let done = wait_caught_up(
            &host,
            &owner,
            base + n,
            Duration::from_secs(1800),
            Duration::from_millis(50),
        )
        .await?;
        let elapsed = done.duration_since(spawned).as_secs_f64();
        drain_s.push(elapsed);
        drain_rates.push(n as f64 / elapsed);
        let host_hwm = procfs::hwm_kib(host_pid)?;
        host_peak_mib.push(mib(host_hwm));
        let growth_bytes = host_hwm.saturating_sub(host_rss_before) as f64 * 1024.0;
        host_growth_ratio.push(growth_bytes / (n as f64 * event_bytes));
        owner_peak_mib.push(mib(owner_rss.peak_kib()));
        eprintln!(
            "liaison-bench: rep {rep}: drained {n} in {elapsed:.2}s ({:.0}/s), host peak {:.1} MiB",
            n as f64 / elapsed,
            mib(host_hwm)
        );
    }

    report.add(
        Figure::new(
            S,
            &format!("drain of {n} changes"),
            "events/s",
            drain_rates.clone(),
        )
        .with_target(Target::at_least(
            median(&drain_rates),
            0.5,
            "L_sqlite (replace)",
            limits.l_sqlite_replace(),
        ))
        .with_note("from the host's spawn to its cursor at the owner's head"),
    );
    report.add(Figure::new(S, "  drain time", "s", drain_s));
    report.add(Figure::new(
        S,
        "  host start (spawn to admin answering)",
        "s",
        host_start_s,
    ));
    report.add(
        Figure::new(
            S,
            "owner: writes while the host was down",
            "changes/s",
            write_rates,
        )
        .with_note("export + import of the roster: one transaction, one event per member"),
    );
    report.add(Figure::new(
        S,
        "host peak RSS during the drain (VmHWM)",
        "MiB",
        host_peak_mib,
    ));
    report.add(
        Figure::new(S, "host RSS growth / backlog size", "ratio", host_growth_ratio.clone())
            .with_target(Target::at_most(median(&host_growth_ratio), 0.5, "0.5 (not held whole)"))
            .with_note(format!(
                "backlog = {n} events × {event_bytes:.0} bytes; growth = VmHWM during the drain − VmRSS before the stop (steady state)"
            )),
    );
    report.add(Figure::new(
        S,
        "owner peak RSS during the drain",
        "MiB",
        owner_peak_mib,
    ));
    Ok(())
}
