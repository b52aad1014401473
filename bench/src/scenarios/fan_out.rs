//! Scenario 6, fan-out and memory: a node with N members, followed by K peers.
//!
//! Memory is VmRSS from /proc. First a fresh, empty node; then the same
//! node after importing N members and restarting (so the figure is what a
//! node holding N members needs, not what the import left in the
//! allocator), after a few operator reads. Then K lightweight followers
//! (`follower`: each a peer with its own certificate, admitted with
//! `PeerAdd`, following the owner's log, and running the small server the
//! owner pulls from) join in three equal steps; after each step settles
//! the added RSS divided by the followers added is one sample of the
//! memory per idle follower. Under load the owner proposes agreements to
//! the followers in turn at 100/s (each proposal is one event addressed to
//! one follower, whose follow stream alone should wake); each
//! follower must receive exactly the proposals addressed to it, and the
//! delay from the owner's commit to the follower's receipt is measured
//! (millisecond stamps, same clock).
//!
//! Targets: idle RSS with N members ≤ 40 MiB; ≤ 64 KiB per idle follower;
//! every follower sees every event addressed to it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use liaison_proto::v1 as pb;
use liaison_rpc::v1::admin_client::AdminClient;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

use liaison_tests::{Federation, TestNode};

use super::{add_branches, import_roster, mib, pid_of, stop};
use crate::fixture::HOST_PLACE;
use crate::follower::{Follower, FollowerOptions};
use crate::procfs::{self, RssSampler};
use crate::report::{median, quantile, Figure, Report, Target};
use crate::timing::{timed, wait_for};
use crate::Bench;

const S: &str = "6 fan-out";
const WRITE_RATE: f64 = 100.0;

pub async fn run(bench: &mut Bench, report: &mut Report) -> Result<()> {
    let quick = bench.opts.quick;
    let n: u64 = if quick { 10_000 } else { 100_000 };
    let k_total: usize = if quick { 60 } else { 300 };
    let window = Duration::from_secs(if quick { 4 } else { 10 });
    let fed = bench.federation("fan-out")?;
    let mut owner = fed.node("pingliang").await;

    let empty = idle_rss_mib(&owner, 3).await?;
    report.add(Figure::new(S, "idle RSS, empty node", "MiB", empty.clone()).with_note("reference"));

    add_branches(&owner);
    import_roster(&owner, fed.dir(), 0..n, |i| {
        (i % 10 == 0).then_some(HOST_PLACE)
    })?;
    let after_import = idle_rss_mib(&owner, 3).await?;
    stop(&mut owner)?;
    owner.start().await;
    let with_members = idle_rss_mib(&owner, bench.opts.reps).await?;
    report.add(
        Figure::new(
            S,
            &format!("idle RSS, {n} members (restarted)"),
            "MiB",
            with_members.clone(),
        )
        .with_target(Target::at_most(median(&with_members), 40.0, "40 MiB"))
        .with_note(format!(
            "empty node {:.1} MiB; right after the import, before restart: {:.1} MiB",
            median(&empty),
            median(&after_import)
        )),
    );

    // Followers join in steps; each step is one sample per follower.
    let steps = bench.opts.reps;
    let per_step = k_total.div_ceil(steps);
    let mut admin = owner.admin().await;
    let mut followers: Vec<Follower> = Vec::new();
    let mut per_follower_kib = Vec::new();
    let mut rss_before = median(&with_members);
    for step in 0..steps {
        let target = ((step + 1) * per_step).min(k_total);
        let joined = Instant::now();
        add_followers(
            &fed,
            &owner,
            &mut admin,
            &mut followers,
            target,
            FollowerOptions::peer(false),
        )
        .await?;
        wait_all_linked(&mut admin, &followers, true).await?;
        let added = per_step.min(followers.len() - step * per_step);
        let rss = median(&idle_rss_mib(&owner, 3).await?);
        per_follower_kib.push((rss - rss_before) * 1024.0 / added as f64);
        eprintln!(
            "liaison-bench: {} followers linked in {:.1}s, owner RSS {rss:.1} MiB",
            followers.len(),
            joined.elapsed().as_secs_f64()
        );
        rss_before = rss;
    }
    let k = followers.len();
    report.add(
        Figure::new(S, "RSS added per idle follower", "KiB", per_follower_kib.clone())
            .with_target(Target::at_most(median(&per_follower_kib), 64.0, "64 KiB"))
            .with_note(format!(
                "{k} followers in {steps} steps; each: an inbound follow stream and the owner's own pull from it"
            )),
    );
    report.add(Figure::new(
        S,
        &format!("idle RSS with {k} followers"),
        "MiB",
        vec![rss_before],
    ));
    // The steps scatter (glibc's arenas grow in jumps): the growth over all
    // of them, per follower, is the steadier figure.
    report.add(
        Figure::new(
            S,
            "  RSS added per idle follower, all steps together",
            "KiB",
            vec![(rss_before - median(&with_members)) * 1024.0 / k.max(1) as f64],
        )
        .with_note("(idle RSS with all followers - idle RSS before any) / followers"),
    );

    // Under load: proposals to the followers in turn, 100/s.
    let mut cpu_share = Vec::new();
    let mut peak_mib = Vec::new();
    let mut delay_p50 = Vec::new();
    let mut delay_p99 = Vec::new();
    let mut propose_p99 = Vec::new();
    let mut missing_total = 0usize;
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    let mut next = 0usize;
    for rep in 0..bench.opts.reps {
        for f in &followers {
            f.stats
                .agreement_delays_ms
                .lock()
                .map(|mut d| d.clear())
                .ok();
        }
        let pid = pid_of(&owner)?;
        let sampler = RssSampler::start(pid);
        let cpu_before = procfs::cpu_seconds(pid)?;
        let started = Instant::now();
        let latencies =
            propose_round_robin(&admin, &followers, &mut next, window, &mut expected).await?;
        let elapsed = started.elapsed().as_secs_f64();
        cpu_share.push((procfs::cpu_seconds(pid)? - cpu_before) / elapsed * 100.0);
        let missing = wait_delivered(&followers, &expected).await;
        missing_total += missing;
        peak_mib.push(mib(sampler.peak_kib()));
        propose_p99.push(quantile(&latencies, 0.99));
        let delays: Vec<f64> = followers
            .iter()
            .flat_map(|f| {
                f.stats
                    .agreement_delays_ms
                    .lock()
                    .map(|d| d.clone())
                    .unwrap_or_default()
            })
            .collect();
        delay_p50.push(quantile(&delays, 0.5));
        delay_p99.push(quantile(&delays, 0.99));
        eprintln!(
            "liaison-bench: load rep {rep}: owner CPU {:.0}%, delivery p99 {:.1} ms, {missing} followers missing events",
            cpu_share.last().copied().unwrap_or(0.0),
            quantile(&delays, 0.99)
        );
    }
    report.add(
        Figure::new(
            S,
            "followers missing an event addressed to them",
            "followers",
            vec![missing_total as f64],
        )
        .with_target(Target::at_most(missing_total as f64, 0.0, "0"))
        .with_note(format!(
            "{} proposals in all, each to one of {k} followers",
            expected.values().map(Vec::len).sum::<usize>()
        )),
    );
    report.add(Figure::new(
        S,
        "under 100 writes/s: owner CPU",
        "% of a core",
        cpu_share,
    ));
    report.add(Figure::new(
        S,
        "under 100 writes/s: owner peak RSS",
        "MiB",
        peak_mib,
    ));
    report.add(
        Figure::new(S, "under 100 writes/s: delivery p50", "ms", delay_p50)
            .with_note("owner's commit stamp to the follower's receipt (1 ms resolution)"),
    );
    report.add(Figure::new(
        S,
        "under 100 writes/s: delivery p99",
        "ms",
        delay_p99,
    ));
    report.add(Figure::new(
        S,
        "under 100 writes/s: propose RPC p99",
        "ms",
        propose_p99,
    ));

    // Breakdown: followers that only pull (the owner cannot reach a server
    // of theirs, so it holds no outbound stream to them).
    let rss_before = median(&idle_rss_mib(&owner, 3).await?);
    let target = followers.len() + per_step;
    let options = FollowerOptions {
        serve: false,
        ..FollowerOptions::peer(false)
    };
    add_followers(&fed, &owner, &mut admin, &mut followers, target, options).await?;
    wait_all_linked(&mut admin, &followers, false).await?;
    let rss = median(&idle_rss_mib(&owner, 3).await?);
    report.add(
        Figure::new(S, "  of which the inbound follow stream", "KiB", vec![(rss - rss_before) * 1024.0 / per_step as f64])
            .with_note(format!(
                "{per_step} more followers that only pull (no server for the owner to pull from); the rest is the owner's own pull"
            )),
    );
    Ok(())
}

/// Starts followers `f-N` until there are `target`, each admitted with
/// `PeerAdd` at the owner.
async fn add_followers(
    fed: &Federation,
    owner: &TestNode,
    admin: &mut AdminClient<Channel>,
    followers: &mut Vec<Follower>,
    target: usize,
    options: FollowerOptions,
) -> Result<()> {
    while followers.len() < target {
        let node_id = format!("f-{}", followers.len() + 1);
        let follower =
            Follower::start(fed, &node_id, &owner.node_id, &owner.endpoint(), options).await?;
        timed(
            Duration::from_secs(30),
            "PeerAdd",
            admin.peer_add(pb::PeerAddRequest {
                node_id: node_id.clone(),
                endpoint: follower.endpoint.clone(),
                ..Default::default()
            }),
        )
        .await??;
        followers.push(follower);
    }
    Ok(())
}

/// VmRSS of `node` after it has settled: a few operator reads, 2 s, then
/// `samples` readings 1 s apart, in MiB.
async fn idle_rss_mib(node: &TestNode, samples: usize) -> Result<Vec<f64>> {
    node.ctl_ok(&["status"]);
    node.ctl_ok(&["member", "list", "--limit", "100"]);
    node.ctl_ok(&["peer", "list"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = pid_of(node)?;
    let mut out = Vec::new();
    for idx in 0..samples {
        if idx > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        out.push(mib(procfs::rss_kib(pid)?));
    }
    Ok(out)
}

/// Waits until every follower follows the owner and (with `both_ways`) the
/// owner follows it.
async fn wait_all_linked(
    admin: &mut AdminClient<Channel>,
    followers: &[Follower],
    both_ways: bool,
) -> Result<()> {
    let expected = followers.len();
    wait_for(
        Duration::from_secs(300),
        Duration::from_millis(200),
        &format!("{expected} followers linked both ways"),
        async || {
            let status = timed(
                Duration::from_secs(60),
                "PeerStatus",
                admin.peer_status(pb::PeerStatusRequest::default()),
            )
            .await??
            .into_inner();
            let up = status
                .peers
                .iter()
                .filter(|p| p.inbound_up && (p.outbound_up || !both_ways))
                .count();
            let connected = followers
                .iter()
                .filter(|f| f.stats.connected.load(std::sync::atomic::Ordering::Relaxed))
                .count();
            Ok((up >= expected && connected == expected).then_some(()))
        },
    )
    .await
}

/// Proposes agreements to the followers in turn at `WRITE_RATE` for
/// `window` (open loop, at most 32 in flight); records each id under its
/// follower; returns the RPC latencies in ms.
async fn propose_round_robin(
    admin: &AdminClient<Channel>,
    followers: &[Follower],
    next: &mut usize,
    window: Duration,
    expected: &mut HashMap<String, Vec<String>>,
) -> Result<Vec<f64>> {
    let total = (WRITE_RATE * window.as_secs_f64()) as usize;
    let slots = Arc::new(Semaphore::new(32));
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / WRITE_RATE));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..total {
        interval.tick().await;
        let permit = slots.clone().acquire_owned().await?;
        let follower = followers[*next % followers.len()].node_id.clone();
        let number = format!("BENCH-FANOUT-{next}");
        *next += 1;
        let mut admin = admin.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let view = admin
                .agreement_propose(pb::AgreementProposeRequest {
                    peer: follower.clone(),
                    role: "outflow".into(),
                    terms: Some(pb::AgreementTerms {
                        number,
                        effective_from: "2020-01-01".into(),
                        effective_until: "2099-12-31".into(),
                        ..Default::default()
                    }),
                })
                .await
                .with_context(|| format!("agreement propose --with {follower}"))?
                .into_inner();
            drop(permit);
            anyhow::Ok((
                follower,
                view.agreement_id,
                started.elapsed().as_secs_f64() * 1000.0,
            ))
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (follower, id, ms) = joined.context("a proposal task failed")??;
        expected.entry(follower).or_default().push(id);
        latencies.push(ms);
    }
    if latencies.is_empty() {
        bail!("no proposal was made");
    }
    Ok(latencies)
}

/// Waits (up to 60 s) until every follower received every proposal made to
/// it; returns how many followers still miss one.
async fn wait_delivered(followers: &[Follower], expected: &HashMap<String, Vec<String>>) -> usize {
    let missing = || {
        followers
            .iter()
            .filter(|f| {
                let got = f
                    .stats
                    .agreement_versions
                    .lock()
                    .map(|v| v.clone())
                    .unwrap_or_default();
                expected
                    .get(&f.node_id)
                    .is_some_and(|ids| !ids.iter().all(|id| got.contains(id)))
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = missing();
        if n == 0 || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
