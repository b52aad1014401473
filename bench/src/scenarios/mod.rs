//! The scenarios of issue 9, one module each, and the set-up they share:
//! an owner with a roster, a host linked to it, an agreement between them,
//! and waiting until the host holds everything the owner has for it.

pub mod catch_up;
pub mod convergence;
pub mod fan_out;
pub mod import_xlsx;
pub mod initial_sync;
pub mod reports;
pub mod scale;
pub mod transfers;
pub mod write_cost;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use liaison_proto::v1 as pb;
use liaison_rpc::v1::admin_client::AdminClient;
use liaison_tests::TestNode;
use tonic::transport::Channel;

use crate::fixture;
use crate::follower::Follower;
use crate::timing::{timed, wait_for};

/// Rows per `member import` (one transaction each), as an operator would
/// split a big roster.
const IMPORT_CHUNK: u64 = 100_000;

/// Creates the owner's home branches (`org add`).
pub fn add_branches(node: &TestNode) {
    for (idx, id) in fixture::BRANCHES.iter().enumerate() {
        node.ctl_ok(&[
            "org",
            "add",
            id,
            "--name",
            &format!("平凉市崆峒区流动党员第{}党支部", idx + 1),
            "--level",
            "branch",
            "--contact-person",
            "王建国",
            "--phone",
            "0933-8211234",
        ]);
    }
}

/// Imports members `range` (`liaisonctl member import`, in chunks);
/// returns the rows per second.
pub fn import_roster(
    node: &TestNode,
    dir: &Path,
    range: std::ops::Range<u64>,
    destination: impl Fn(u64) -> Option<&'static str> + Copy,
) -> Result<f64> {
    let started = Instant::now();
    let mut start = range.start;
    while start < range.end {
        let end = (start + IMPORT_CHUNK).min(range.end);
        let csv = fixture::roster_csv(start..end, destination);
        import(node, &csv, dir, false).with_context(|| format!("import members {start}..{end}"))?;
        start = end;
    }
    Ok((range.end - range.start) as f64 / started.elapsed().as_secs_f64())
}

/// Imports a roster CSV with `liaisonctl member import` (with `--update`
/// if `update`: a re-imported export changes its members), from a file in
/// `dir`.
pub fn import(node: &TestNode, csv: &str, dir: &Path, update: bool) -> Result<()> {
    let path = dir.join(format!("import-{}.csv", uuid::Uuid::now_v7()));
    std::fs::write(&path, csv)?;
    let path_text = path.to_str().context("a UTF-8 path")?;
    let args: &[&str] = if update {
        &["member", "import", "--update", path_text]
    } else {
        &["member", "import", path_text]
    };
    let output = node.ctl(args);
    let _ = std::fs::remove_file(&path);
    if !output.status.success() {
        bail!(
            "liaisonctl member import at {} failed ({}): {}",
            node.node_id,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Admits `follower` at `owner` as a peer serving the host city, and
/// proposes it an agreement numbered `number` (the follower signs it
/// itself when it accepts agreements); returns the agreement's id.
pub fn admit_follower(owner: &TestNode, follower: &Follower, number: &str) -> String {
    owner.ctl_ok(&[
        "peer",
        "add",
        &follower.node_id,
        "--endpoint",
        &follower.endpoint,
        "--serves",
        fixture::HOST_CITY,
    ]);
    owner.propose_agreement(&follower.node_id, number)
}

/// Stops `node` with SIGTERM; returns how long it took to exit.
pub fn stop(node: &mut TestNode) -> Result<Duration> {
    let started = Instant::now();
    let status = node.stop();
    let took = started.elapsed();
    if !status.success() {
        bail!(
            "{} stopped with {status}; see {}",
            node.node_id,
            node.dir().join("node.log").display()
        );
    }
    Ok(took)
}

/// The process id of `node`, which must be running.
pub fn pid_of(node: &TestNode) -> Result<u32> {
    node.pid()
        .with_context(|| format!("{} is not running", node.node_id))
}

/// `node`'s replication state for `peer` (`peer status`), through `admin`.
pub async fn replication(
    admin: &mut AdminClient<Channel>,
    node: &TestNode,
    peer: &str,
) -> Result<pb::PeerReplication> {
    let response = timed(
        Duration::from_secs(60),
        "PeerStatus",
        admin.peer_status(pb::PeerStatusRequest {
            node_id: peer.to_owned(),
        }),
    )
    .await??
    .into_inner();
    response
        .peers
        .into_iter()
        .next()
        .with_context(|| format!("{} has no peer {peer}", node.node_id))
}

/// Ids of the members a node owns (away ones only with `away`), in id order.
pub async fn owned_member_ids(admin: &mut AdminClient<Channel>, away: bool) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    loop {
        let page = timed(
            Duration::from_secs(300),
            "MemberList",
            admin.member_list(pb::MemberListRequest {
                scope: "owned".into(),
                away,
                limit: 100_000,
                offset: ids.len() as u32,
                ..Default::default()
            }),
        )
        .await??
        .into_inner();
        let n = page.members.len();
        ids.extend(page.members.into_iter().map(|m| m.member_id));
        if n == 0 || ids.len() as u64 >= page.total {
            return Ok(ids);
        }
    }
}

/// Where the host stands with the owner's log.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub cursor: u64,
    pub head: u64,
    pub applied_total: u64,
}

pub async fn progress(
    host: &TestNode,
    admin: &mut AdminClient<Channel>,
    owner: &str,
) -> Result<Progress> {
    let r = replication(admin, host, owner).await?;
    Ok(Progress {
        cursor: r.my_cursor,
        head: r.peer_head,
        applied_total: r.applied_total,
    })
}

/// The interval of the polls that time a transfer's start and end: its
/// precision. Each poll is an admin read answered from a snapshot.
pub const POLL_PRECISE: Duration = Duration::from_millis(2);

/// Polls (every `every`) until the host applied at least `applied_target`
/// events of the owner in total, its cursor is at the head the owner last
/// told it, and the owner has sent it everything; returns when that was
/// first seen.
pub async fn wait_caught_up(
    host: &TestNode,
    owner: &TestNode,
    applied_target: u64,
    within: Duration,
    every: Duration,
) -> Result<Instant> {
    let mut host_admin = host.admin().await;
    let mut owner_admin = owner.admin().await;
    wait_for(
        within,
        every,
        &format!(
            "{} to apply {applied_target} events of {}",
            host.node_id, owner.node_id
        ),
        async || {
            let p = progress(host, &mut host_admin, &owner.node_id).await?;
            if p.applied_total < applied_target || p.cursor < p.head {
                return Ok(None);
            }
            let seen = Instant::now();
            let backlog = replication(&mut owner_admin, owner, &host.node_id)
                .await?
                .backlog_for_peer;
            Ok((backlog == 0).then_some(seen))
        },
    )
    .await
}

/// Waits until agreement `id` is active at `node`; returns when seen.
///
/// Asks for the node's active agreements rather than showing `id`: the
/// view of a proposal counts, at the coordinator, every member it would
/// cover (a walk of all members away to the region, 0.6 s at 100,000), so
/// a poll that shows it would see the activation that much late and the
/// figure would time the view, not the activation. Polled every 2 ms: an
/// admin read answers from the last committed snapshot at once, without
/// waiting for a commit in progress, so the interval between polls is the
/// precision of the time measured.
pub async fn wait_active(node: &TestNode, id: &str, within: Duration) -> Result<Instant> {
    let mut admin = node.admin().await;
    wait_for(
        within,
        POLL_PRECISE,
        &format!("agreement {id} active at {}", node.node_id),
        async || {
            let active = timed(
                Duration::from_secs(300),
                "AgreementList",
                admin.agreement_list(pb::AgreementListRequest {
                    state: "active".into(),
                    ..Default::default()
                }),
            )
            .await?
            .with_context(|| format!("active agreements at {}", node.node_id))?
            .into_inner();
            let seen = active.agreements.iter().any(|a| a.agreement_id == id);
            Ok(seen.then(Instant::now))
        },
    )
    .await
}

/// How many copies of other nodes' members `host` holds.
pub async fn hosted_total(admin: &mut AdminClient<Channel>) -> Result<u64> {
    Ok(timed(
        Duration::from_secs(300),
        "MemberList",
        admin.member_list(pb::MemberListRequest {
            scope: "hosted".into(),
            limit: 1,
            ..Default::default()
        }),
    )
    .await??
    .into_inner()
    .total)
}

/// The owner's roster as `member export --headers en` writes it (CSV,
/// the columns' English names, codes).
pub async fn export(admin: &mut AdminClient<Channel>) -> Result<Vec<u8>> {
    let export = timed(
        Duration::from_secs(600),
        "MemberExport",
        admin.member_export(pb::MemberExportRequest {}),
    )
    .await??
    .into_inner();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&export.columns)?;
    for row in &export.rows {
        writer.write_record(&row.cells)?;
    }
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write the roster: {e}"))
}

/// One member's phone changed with `MemberUpdate` (what `member update
/// ID --phone …` sends); returns the new version's counter.
pub async fn update_phone(
    admin: &mut AdminClient<Channel>,
    member_id: &str,
    phone: String,
) -> Result<u64> {
    let member = admin
        .member_update(pb::MemberUpdateRequest {
            member_id: member_id.to_owned(),
            fields: Some(pb::MemberFields {
                phone: Some(phone),
                ..Default::default()
            }),
        })
        .await
        .with_context(|| format!("member update {member_id}"))?
        .into_inner();
    Ok(member.counter)
}

/// `value` must be at least `min`, or the scenario cannot say anything.
pub fn require(what: &str, value: u64, min: u64) -> Result<()> {
    if value < min {
        bail!("{what}: {value}, expected at least {min}");
    }
    Ok(())
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
