//! Scenario 1, initial sync: N members in scope become visible at a fresh host.
//!
//! The owner holds N members, all away to a place the host serves. Each
//! repetition starts a fresh host, links it, and has the owner propose a
//! co-management agreement (`liaisonctl agreement propose`). The clock
//! starts when `liaisonctl agreement accept` returns at the host (its vote
//! is committed); the owner pulls the vote, activates the agreement and
//! shares every member in scope (one event each) in the same transaction;
//! the clock stops when the host's cursor reaches the owner's head with all
//! N applied (`peer status`, polled every 20 ms). Between repetitions the
//! agreement is terminated and the host removed, so each activation starts
//! from the same state.
//!
//! Target: records/s ≥ 0.5 × min(L_sqlite, L_stream).

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{
    add_branches, hosted_total, import_roster, pid_of, progress, require, stop, wait_active,
    wait_caught_up,
};
use crate::fixture::{HOST_CITY, HOST_PLACE};
use crate::procfs;
use crate::report::{Figure, Report, Target};
use crate::Bench;

const S: &str = "1 initial-sync";

pub async fn run(bench: &mut Bench, report: &mut Report) -> Result<()> {
    let limits = bench.limits(report).await?;
    let n = bench.members(10_000);
    let fed = bench.federation("initial-sync")?;
    let owner = fed.node("pingliang").await;
    add_branches(&owner);

    let mut rates = Vec::new();
    let mut activation_s = Vec::new();
    let mut transfer_s = Vec::new();
    let mut transfer_rates = Vec::new();
    let mut host_hwm_mib = Vec::new();
    let mut owner_hwm_mib = Vec::new();
    for rep in 0..bench.opts.reps {
        let mut host = fed.node(&format!("lanzhou-{rep}")).await;
        fed.link_serving(&owner, &host, HOST_CITY).await;
        if rep == 0 {
            eprintln!("liaison-bench: importing {n} members at the owner");
            let rate = import_roster(&owner, fed.dir(), 0..n, |_| Some(HOST_PLACE))?;
            report.note(S, format!("owner imported {n} members at {rate:.0} rows/s (liaisonctl member import, 100,000 per transaction)"));
        }
        let id = fed
            .propose(&owner, &host, &format!("BENCH-SYNC-{rep}"))
            .await;
        let mut host_admin = host.admin().await;
        let base = progress(&host, &mut host_admin, &owner.node_id)
            .await?
            .applied_total;

        host.ctl_ok(&["agreement", "accept", &id]);
        let accepted = Instant::now();
        let active = wait_active(&owner, &id, Duration::from_secs(1800)).await?;
        let done = wait_caught_up(
            &host,
            &owner,
            base + n,
            Duration::from_secs(1800),
            super::POLL_PRECISE,
        )
        .await?;
        let total = done.duration_since(accepted).as_secs_f64();
        let transfer = done.duration_since(active).as_secs_f64();
        rates.push(n as f64 / total);
        activation_s.push(active.duration_since(accepted).as_secs_f64());
        transfer_s.push(transfer);
        transfer_rates.push(n as f64 / transfer);
        host_hwm_mib.push(super::mib(procfs::hwm_kib(pid_of(&host)?)?));
        owner_hwm_mib.push(super::mib(procfs::hwm_kib(pid_of(&owner)?)?));
        require(
            "members visible at the host",
            hosted_total(&mut host_admin).await?,
            n,
        )?;
        eprintln!(
            "liaison-bench: rep {rep}: {n} records in {total:.2}s ({:.0}/s); activation {:.2}s, transfer {transfer:.2}s",
            n as f64 / total,
            active.duration_since(accepted).as_secs_f64()
        );

        // Back to a single active agreement for the next repetition.
        owner.ctl_ok(&[
            "agreement",
            "terminate",
            &id,
            "--reason",
            "benchmark repetition done",
        ]);
        stop(&mut host)?;
        owner.ctl_ok(&["peer", "remove", &host.node_id]);
    }

    let limit = limits.l_sqlite().min(limits.l_stream());
    let limit_name = if limits.l_sqlite() <= limits.l_stream() {
        "L_sqlite"
    } else {
        "L_stream"
    };
    report.add(
        Figure::new(
            S,
            &format!("{n} members to a fresh host"),
            "records/s",
            rates.clone(),
        )
        .with_target(Target {
            limit_name: limit_name.to_owned(),
            ..Target::at_least(
                crate::report::median(&rates),
                0.5,
                "min(L_sqlite, L_stream)",
                limit,
            )
        })
        .with_note("from `agreement accept` at the host to the host's cursor at the owner's head"),
    );
    report.add(
        Figure::new(
            S,
            "  owner: accept to agreement active",
            "s",
            activation_s,
        )
        .with_note(
            "the activation's transaction shares the first 2,000 members; the rest follow in chunks of 2,000 while the host pulls",
        ),
    );
    report.add(Figure::new(
        S,
        "  active to host caught up (owner's chunks, transfer, apply)",
        "s",
        transfer_s,
    ));
    report.add(Figure::new(
        S,
        "  records/s after activation",
        "records/s",
        transfer_rates,
    ));
    report.add(Figure::new(S, "host peak RSS (VmHWM)", "MiB", host_hwm_mib));
    report.add(Figure::new(
        S,
        "owner peak RSS since start (VmHWM)",
        "MiB",
        owner_hwm_mib,
    ));
    Ok(())
}
