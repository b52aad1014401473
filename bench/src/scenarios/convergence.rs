//! Scenario 3, live convergence: the owner commits single-member changes at 100/s
//! and 1,000/s; how long until the host has each.
//!
//! Method. The bench sends `MemberUpdate` (what `liaisonctl member update`
//! sends) to the owner at a fixed offered rate (open loop, at most 64 in
//! flight), each to another member, and notes the wall-clock time at which
//! the owner acknowledged the commit. The host stamps every copy it applies
//! with its own clock (`received_at_ms`, taken when it starts applying the
//! batch that carries it); after the run the bench reads every copy once
//! (`member list --hosted`), so nothing polls the host while it works. Both
//! nodes run on this machine and read the same clock. Latency is the host
//! stamp plus 0.5 ms minus the owner's acknowledgement: resolution 1 ms (the stamp is whole
//! milliseconds, the 0.5 ms takes its middle); the acknowledgement comes
//! a little after the commit (one reply over the admin socket), so a value
//! may be slightly negative; it stops at the host's apply start, so the host's own
//! commit (one fsync'd transaction: L_sqlite's one-row commit time) is
//! added for the target.
//!
//! Targets: p99 ≤ 10 ms at 100/s and ≤ 25 ms at 1,000/s; the saturation rate
//! is the first offered rate at which p99 passes 100 ms or the owner does
//! not sustain 90 % of the offered rate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use liaison_proto::v1 as pb;
use liaison_rpc::v1::admin_client::AdminClient;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

use liaison_tests::TestNode;

use super::{
    add_branches, import_roster, owned_member_ids, update_phone, wait_active, wait_caught_up,
};
use crate::fixture::{self, HOST_CITY, HOST_PLACE};
use crate::report::{fmt_num, median, quantile, Figure, Report, Target};
use crate::timing::{timed, wall_ms};
use crate::Bench;

const S: &str = "3 convergence";
const IN_FLIGHT_MAX: usize = 64;
const P99_SATURATED_MS: f64 = 100.0;

/// One acknowledged change.
struct Change {
    member_id: String,
    counter: u64,
    ack_ms: f64,
}

/// What one run at one offered rate gave.
struct RateRun {
    achieved_per_s: f64,
    latencies_ms: Vec<f64>,
    missing: usize,
}

pub async fn run(bench: &mut Bench, report: &mut Report) -> Result<()> {
    let limits = bench.limits(report).await?;
    let quick = bench.opts.quick;
    let members: u64 = if quick { 5_000 } else { 20_000 };
    let duration = Duration::from_secs(if quick { 3 } else { 10 });
    let fed = bench.federation("convergence")?;
    let owner = fed.node("pingliang").await;
    let host = fed.node("lanzhou").await;
    add_branches(&owner);
    fed.link_serving(&owner, &host, HOST_CITY).await;
    import_roster(&owner, fed.dir(), 0..members, |_| Some(HOST_PLACE))?;
    let id = fed.propose(&owner, &host, "BENCH-LIVE").await;
    host.ctl_ok(&["agreement", "accept", &id]);
    wait_active(&owner, &id, Duration::from_secs(600)).await?;
    wait_caught_up(
        &host,
        &owner,
        members,
        Duration::from_secs(600),
        Duration::from_millis(100),
    )
    .await?;
    let mut owner_admin = owner.admin().await;
    let ids = owned_member_ids(&mut owner_admin, true).await?;
    let mut next = 0usize;
    let commit_ms = limits.sqlite.commit_p50_ms();
    let floor_ms = limits.latency_floor_ms();

    // The two rates of the targets, then (not in a quick run) a ramp for
    // the saturation rate: above 1,000/s if that held, below it if not.
    let mut rates: Vec<(f64, Option<f64>)> = vec![(100.0, Some(10.0)), (1000.0, Some(25.0))];
    let mut saturation: Option<(f64, String)> = None;
    let mut highest_tested = 0.0;
    let mut idx = 0;
    while idx < rates.len() {
        let (rate, target_ms) = rates[idx];
        idx += 1;
        if target_ms.is_none() && saturation.as_ref().is_some_and(|(r, _)| *r <= rate) {
            break;
        }
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        let mut max = Vec::new();
        let mut achieved = Vec::new();
        let mut missing = 0;
        for rep in 0..bench.opts.reps {
            let run = drive(&owner, &host, &owner_admin, &ids, &mut next, rate, duration).await?;
            eprintln!(
                "liaison-bench: {rate}/s rep {rep}: achieved {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                run.achieved_per_s,
                quantile(&run.latencies_ms, 0.5),
                quantile(&run.latencies_ms, 0.99),
                quantile(&run.latencies_ms, 1.0)
            );
            p50.push(quantile(&run.latencies_ms, 0.5));
            p99.push(quantile(&run.latencies_ms, 0.99));
            max.push(quantile(&run.latencies_ms, 1.0));
            achieved.push(run.achieved_per_s);
            missing += run.missing;
        }
        highest_tested = rate;
        let label = format!("{}/s", fmt_num(rate));
        report.add(Figure::new(
            S,
            &format!("{label}: achieved rate"),
            "changes/s",
            achieved.clone(),
        ));
        report.add(Figure::new(
            S,
            &format!("{label}: p50 to host apply"),
            "ms",
            p50,
        ));
        report.add(Figure::new(
            S,
            &format!("{label}: p99 to host apply"),
            "ms",
            p99.clone(),
        ));
        report.add(Figure::new(
            S,
            &format!("{label}: max to host apply"),
            "ms",
            max,
        ));
        if let Some(bound) = target_ms {
            let estimated: Vec<f64> = p99.iter().map(|p| p + commit_ms).collect();
            let value = median(&estimated);
            report.add(
                Figure::new(S, &format!("{label}: p99 to host commit (est.)"), "ms", estimated)
                    .with_target(Target::at_most(value, bound, &format!("{bound} ms")))
                    .with_note(format!(
                        "p99 to apply + one-row commit {commit_ms:.2} ms; latency floor {floor_ms:.2} ms, p99 = {:.1} × floor",
                        value / floor_ms
                    )),
            );
        }
        if missing > 0 {
            report.note(
                S,
                format!("{label}: {missing} changes had not reached the host 30 s after the run"),
            );
        }
        let achieved_ratio = median(&achieved) / rate;
        let saturated = if median(&p99) > P99_SATURATED_MS {
            Some(format!(
                "p99 {:.0} ms > {P99_SATURATED_MS} ms",
                median(&p99)
            ))
        } else if achieved_ratio < 0.9 {
            Some(format!(
                "the owner committed only {:.0}/s of {rate}/s offered",
                median(&achieved)
            ))
        } else {
            None
        };
        if let Some(why) = saturated {
            if saturation.as_ref().is_none_or(|(r, _)| rate < *r) {
                saturation = Some((rate, why));
            }
        }
        if idx == 2 && !quick {
            let ramp: &[f64] = match &saturation {
                Some(_) => &[250.0, 500.0, 750.0],
                None => &[2000.0, 4000.0, 8000.0],
            };
            rates.extend(ramp.iter().map(|r| (*r, None)));
        }
    }
    match saturation {
        Some((rate, why)) => {
            report.add(
                Figure::new(S, "saturation rate (offered)", "changes/s", vec![rate]).with_note(why),
            );
        }
        None => report.note(
            S,
            format!("no saturation up to {highest_tested}/s offered (p99 ≤ {P99_SATURATED_MS} ms, rate sustained)"),
        ),
    }
    Ok(())
}

/// Offers `rate` changes/s for `duration`, then reads when the host applied
/// the last change of each member.
async fn drive(
    owner: &TestNode,
    host: &TestNode,
    owner_admin: &AdminClient<Channel>,
    ids: &[String],
    next: &mut usize,
    rate: f64,
    duration: Duration,
) -> Result<RateRun> {
    let total = (rate * duration.as_secs_f64()).round() as usize;
    let slots = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..total {
        interval.tick().await;
        let permit = slots.clone().acquire_owned().await?;
        let member_id = ids[*next % ids.len()].clone();
        let phone = fixture::phone(*next as u64, 7);
        *next += 1;
        let mut admin = owner_admin.clone();
        tasks.spawn(async move {
            let counter = update_phone(&mut admin, &member_id, phone).await;
            let ack_ms = wall_ms();
            drop(permit);
            counter.map(|counter| Change {
                member_id,
                counter,
                ack_ms,
            })
        });
    }
    let mut last: HashMap<String, Change> = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let change = joined.context("a MemberUpdate task failed")??;
        match last.get(&change.member_id) {
            Some(known) if known.counter > change.counter => {}
            _ => {
                last.insert(change.member_id.clone(), change);
            }
        }
    }
    let achieved_per_s = total as f64 / started.elapsed().as_secs_f64();

    wait_caught_up(
        host,
        owner,
        0,
        Duration::from_secs(600),
        Duration::from_millis(50),
    )
    .await?;
    let mut host_admin = host.admin().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let copies = hosted_copies(&mut host_admin).await?;
        let mut latencies_ms = Vec::with_capacity(last.len());
        let mut missing = 0;
        for change in last.values() {
            match copies.get(&change.member_id) {
                Some((counter, received_ms)) if *counter >= change.counter => {
                    // The stamp is truncated to the millisecond: take its middle.
                    latencies_ms.push(*received_ms as f64 + 0.5 - change.ack_ms);
                }
                _ => missing += 1,
            }
        }
        if missing == 0 || Instant::now() >= deadline {
            return Ok(RateRun {
                achieved_per_s,
                latencies_ms,
                missing,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every copy the host holds: member id → (counter, received_at_ms).
async fn hosted_copies(admin: &mut AdminClient<Channel>) -> Result<HashMap<String, (u64, i64)>> {
    let list = timed(
        Duration::from_secs(300),
        "MemberList",
        admin.member_list(pb::MemberListRequest {
            scope: "hosted".into(),
            limit: 100_000,
            ..Default::default()
        }),
    )
    .await??
    .into_inner();
    Ok(list
        .members
        .into_iter()
        .map(|m| (m.member_id, (m.counter, m.updated_at_ms)))
        .collect())
}
