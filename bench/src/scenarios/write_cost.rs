//! Scenario 4, write cost of replication: local writes/s with 0, 1 and 8 followers.
//!
//! The owner holds a roster of which a fifth is away to a place every
//! follower serves. Writes are `MemberUpdate`s of those members (each its
//! own transaction, as an operator's edit), from `--writers` concurrent
//! clients (4 by default) for a fixed time: writes/s is what the owner
//! commits. Followers are the
//! bench's lightweight followers (`follower`): each is a peer with its own
//! certificate, follows the owner's log, and signed a co-management
//! agreement covering those members, so every write appends one event per
//! follower and wakes every follow stream. They count what they receive and
//! apply nothing, so their own work does not compete with the owner for the
//! two cores as a host's would: the figure is the owner's cost of
//! replicating. After each phase every follower must hold every event the
//! owner has for it. A last phase drops the followers but keeps their
//! agreements: writes still append one event per follower, but no stream
//! is woken, which separates the cost of appending from that of streaming.
//!
//! Target: with 8 followers ≥ 0.7 × with none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use liaison_rpc::v1::admin_client::AdminClient;
use tonic::transport::Channel;

use liaison_tests::{Federation, TestNode};

use super::{
    add_branches, admit_follower, import_roster, owned_member_ids, pid_of, replication,
    update_phone, wait_active,
};
use crate::fixture::{self, HOST_PLACE};
use crate::follower::{Follower, FollowerOptions};
use crate::procfs;
use crate::report::{median, Figure, Report, Target};
use crate::timing::wait_for;
use crate::Bench;

const S: &str = "4 write-cost";

pub async fn run(bench: &mut Bench, report: &mut Report) -> Result<()> {
    let quick = bench.opts.quick;
    let members: u64 = if quick { 2_000 } else { 10_000 };
    let duration = Duration::from_secs(if quick { 2 } else { 6 });
    let fed = bench.federation("write-cost")?;
    let owner = fed.node("pingliang").await;
    add_branches(&owner);
    import_roster(&owner, fed.dir(), 0..members, |i| {
        (i % 5 == 0).then_some(HOST_PLACE)
    })?;
    let mut admin = owner.admin().await;
    let ids = owned_member_ids(&mut admin, true).await?;

    let mut followers: Vec<Follower> = Vec::new();
    let mut by_count: Vec<(usize, Vec<f64>)> = Vec::new();
    let mut round = 0u64;
    for target_count in [0usize, 1, 8] {
        while followers.len() < target_count {
            let follower = add_follower(&fed, &owner, followers.len() + 1).await?;
            // Wait until it holds every member in scope before measuring.
            wait_followers_caught_up(
                &owner,
                &followers_and(&followers, &follower),
                ids.len() as u64,
            )
            .await?;
            followers.push(follower);
        }
        let mut rates = Vec::new();
        let cpu_before = procfs::cpu_seconds(pid_of(&owner)?)?;
        let phase_started = Instant::now();
        for _ in 0..bench.opts.reps {
            round += 1;
            let rate = write_for(&admin, &ids, bench.opts.writers, duration, round).await?;
            rates.push(rate);
        }
        let cpu = (procfs::cpu_seconds(pid_of(&owner)?)? - cpu_before)
            / phase_started.elapsed().as_secs_f64();
        wait_followers_caught_up(&owner, &followers.iter().collect::<Vec<_>>(), 0).await?;
        eprintln!(
            "liaison-bench: {target_count} followers: {:.0} writes/s (owner CPU {:.0}%)",
            median(&rates),
            cpu * 100.0
        );
        report.add(
            Figure::new(
                S,
                &format!("writes with {target_count} followers"),
                "writes/s",
                rates.clone(),
            )
            .with_note(format!(
                "owner CPU {:.0}% of one core during the phase",
                cpu * 100.0
            )),
        );
        by_count.push((target_count, rates));
    }
    // Breakdown: the same 8 agreements (every write still appends 8
    // events), but no follow stream: the followers are gone.
    let n_followers = followers.len();
    drop(followers);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut unfollowed = Vec::new();
    for _ in 0..bench.opts.reps {
        round += 1;
        unfollowed.push(write_for(&admin, &ids, bench.opts.writers, duration, round).await?);
    }
    report.add(
        Figure::new(
            S,
            &format!("  {n_followers} agreements, no follow stream"),
            "writes/s",
            unfollowed,
        )
        .with_note("the events are appended, nobody is woken to send them: the append cost alone"),
    );
    let none = median(&by_count[0].1);
    let eight = median(&by_count[2].1);
    report.add(
        Figure::new(S, "8 followers / none", "ratio", vec![eight / none])
            .with_target(Target::at_least(eight, 0.7, "writes/s with none", none)),
    );
    report.add(Figure::new(
        S,
        "1 follower / none",
        "ratio",
        vec![median(&by_count[1].1) / none],
    ));
    drop(admin);
    Ok(())
}

fn followers_and<'a>(followers: &'a [Follower], new: &'a Follower) -> Vec<&'a Follower> {
    followers.iter().chain(std::iter::once(new)).collect()
}

/// Starts follower `f-K` serving the owner's host place, admits it at the
/// owner, and signs the owner's agreement proposal; returns once the owner
/// has activated it.
async fn add_follower(fed: &Federation, owner: &TestNode, k: usize) -> Result<Follower> {
    let node_id = format!("f-{k}");
    let follower = Follower::start(
        fed,
        &node_id,
        &owner.node_id,
        &owner.endpoint(),
        FollowerOptions::peer(true),
    )
    .await?;
    let id = admit_follower(owner, &follower, &format!("BENCH-F{k}"));
    wait_active(owner, &id, Duration::from_secs(600)).await?;
    Ok(follower)
}

/// Waits until every follower has every event the owner has for it (the
/// owner sent it all, and the follower received up to the last seq sent),
/// and at least `home_sections` home sections.
async fn wait_followers_caught_up(
    owner: &TestNode,
    followers: &[&Follower],
    home_sections: u64,
) -> Result<()> {
    let mut admin = owner.admin().await;
    let mut lagging = String::new();
    let outcome = wait_for(
        Duration::from_secs(600),
        Duration::from_millis(50),
        "every follower caught up",
        async || {
            for f in followers {
                let r = replication(&mut admin, owner, &f.node_id).await?;
                let last_seq = f.stats.last_seq.load(Ordering::Relaxed);
                let received = f.stats.home_sections.load(Ordering::Relaxed);
                if r.backlog_for_peer > 0 || last_seq < r.peer_cursor || received < home_sections {
                    lagging = format!(
                        "{} received up to seq {last_seq} ({received} home sections); the owner sent up to {} and holds {} more ({:?})",
                        f.node_id,
                        r.peer_cursor,
                        r.backlog_for_peer,
                        f.stats.last_error.lock().map(|e| e.clone()).unwrap_or_default()
                    );
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )
    .await;
    outcome.with_context(|| format!("lagging: {lagging}"))
}

/// `writers` clients update members round-robin for `duration`; returns
/// the owner's committed writes per second.
async fn write_for(
    admin: &AdminClient<Channel>,
    ids: &[String],
    writers: usize,
    duration: Duration,
    round: u64,
) -> Result<f64> {
    if ids.is_empty() {
        bail!("no member away to write to");
    }
    let next = Arc::new(AtomicU64::new(0));
    let ids = Arc::new(ids.to_vec());
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let mut admin = admin.clone();
        let next = next.clone();
        let ids = ids.clone();
        tasks.spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let member_id = &ids[(k % ids.len() as u64) as usize];
                update_phone(&mut admin, member_id, fixture::phone(k, round)).await?;
                done += 1;
            }
            anyhow::Ok(done)
        });
    }
    let mut writes = 0;
    while let Some(joined) = tasks.join_next().await {
        writes += joined.context("a writer task failed")??;
    }
    Ok(writes as f64 / started.elapsed().as_secs_f64())
}
