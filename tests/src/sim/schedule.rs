//! Schedules written by hand, for regression tests: one-line builders of
//! [`Step`]s, and runs of such a schedule, or of seeds, with no known bug
//! tolerated.
//!
//! A schedule names members, agreements and transfers by the index of the
//! step that created them ([`MemberRef`], [`AgreementRef`],
//! [`TransferRef`]): each builder makes exactly one step, so a schedule's
//! step ids are the indices of its builder calls.

use super::run::{replay, run_seed, Run, Setup, SimConfig};
use super::step::Scheduled;
pub use super::step::{Action, AgreementRef, MemberRef, Step, TransferRef};
use super::world::{Variant, TICK_MS};

/// An hour and a day, in ms.
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;
/// The nodes of a three-node schedule: Pingliang, Lanzhou, Xi'an.
pub const P: usize = 0;
pub const L: usize = 1;
pub const X: usize = 2;
/// The steps of a seeded run in CI, unless `LIAISON_SIM_STEPS` says otherwise.
pub const CI_STEPS: usize = 200;

/// The number in environment variable `name`, if set; panics if it is not
/// a number.
pub fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

/// Steps of a seeded run: `LIAISON_SIM_STEPS`, or [`CI_STEPS`].
pub fn steps() -> usize {
    env_u64("LIAISON_SIM_STEPS").map_or(CI_STEPS, |s| s as usize)
}

/// The correct core, [`steps`] per seeded run, nothing tolerated.
pub fn strict() -> SimConfig {
    SimConfig {
        steps: steps(),
        variant: Variant::default(),
        nodes: None,
    }
}

/// Runs seeds under [`strict`].
pub fn seeds(seeds: &[u64]) -> Vec<Run> {
    seeds
        .iter()
        .map(|&seed| run_seed(seed, &strict()))
        .collect()
}

/// Runs seeds of `steps` steps each (the length of the soak that found
/// them) under [`strict`].
pub fn soak_seeds(steps: usize, seeds: &[u64]) -> Vec<Run> {
    let config = SimConfig { steps, ..strict() };
    seeds.iter().map(|&seed| run_seed(seed, &config)).collect()
}

/// Every run passes; else a panic with the report of each that failed.
pub fn all_pass(runs: Vec<Run>) {
    let failed: Vec<String> = runs
        .iter()
        .filter(|run| run.failure.is_some())
        .map(|run| run.report())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} runs failed:\n{}",
        failed.len(),
        runs.len(),
        failed.join("\n")
    );
}

/// Replays a hand-written schedule on three nodes with equal clocks.
pub fn schedule(steps: Vec<Step>) -> Run {
    schedule_on(3, steps)
}

/// Replays a hand-written schedule on `nodes` nodes with equal clocks.
pub fn schedule_on(nodes: usize, steps: Vec<Step>) -> Run {
    schedule_under(&strict(), nodes, steps)
}

/// Replays a hand-written schedule on as many nodes as `skews_ms` has
/// entries, each node's clock that far ahead at the start (a seed's
/// set-up, as a failure report prints it).
pub fn schedule_skewed(skews_ms: &[i64], steps: Vec<Step>) -> Run {
    let setup = Setup {
        nodes: skews_ms.len(),
        skews: skews_ms.iter().map(|ms| ms / TICK_MS).collect(),
    };
    replay(0, &setup, &strict(), &numbered(steps))
}

fn numbered(steps: Vec<Step>) -> Vec<Scheduled> {
    steps
        .into_iter()
        .enumerate()
        .map(|(id, step)| Scheduled { id, step })
        .collect()
}

/// Replays a hand-written schedule on `nodes` nodes with equal clocks
/// under `config` (a broken variant, say).
pub fn schedule_under(config: &SimConfig, nodes: usize, steps: Vec<Step>) -> Run {
    let setup = Setup {
        nodes,
        skews: vec![0; nodes],
    };
    replay(0, &setup, config, &numbered(steps))
}

// ---------------------------------------------------------------------------
// Steps other than actions
// ---------------------------------------------------------------------------

/// `to` pulls the next batch from `from` (at most 64 events).
pub fn deliver(from: usize, to: usize) -> Step {
    deliver_at_most(from, to, 64)
}

/// `to` pulls the next batch from `from`, at most `limit` events.
pub fn deliver_at_most(from: usize, to: usize, limit: u32) -> Step {
    Step::Deliver {
        from,
        to,
        limit,
        prefix: None,
        crash: false,
    }
}

/// `to` pulls the next batch from `from`, at most `limit` events, but the
/// stream breaks after the first `prefix` of them are applied.
pub fn deliver_prefix(from: usize, to: usize, limit: u32, prefix: usize) -> Step {
    Step::Deliver {
        from,
        to,
        limit,
        prefix: Some(prefix),
        crash: false,
    }
}

/// `from` sends its next batch (up to 64 events) on the stream to `to`,
/// not applied yet.
pub fn send_ahead(from: usize, to: usize) -> Step {
    send_ahead_at_most(from, to, 64)
}

/// `from` sends its next batch, at most `limit` events, on the stream to
/// `to`, not applied yet.
pub fn send_ahead_at_most(from: usize, to: usize, limit: u32) -> Step {
    Step::Send { from, to, limit }
}

/// Every clock of a three-node schedule moves forward by `days`.
pub fn advance(days: i64) -> Step {
    advance_on(3, days)
}

/// Every clock of a schedule on `nodes` nodes moves forward by `days`.
pub fn advance_on(nodes: usize, days: i64) -> Step {
    Step::Advance {
        deltas_ms: vec![days * DAY; nodes],
    }
}

/// `a` and `b` reach each other again.
pub fn heal(a: usize, b: usize) -> Step {
    Step::Heal { a, b }
}

/// `step`, an operator action, crashes the node at its first log write.
pub fn crashing(step: Step) -> Step {
    match step {
        Step::Act { at, action, .. } => Step::Act {
            at,
            action,
            crash: true,
        },
        other => other,
    }
}

/// A backup of `node`'s database as it is now.
pub fn backup(node: usize) -> Step {
    Step::Backup { node }
}

/// `node` restarts on its `pick`-th backup, restored over its database
/// in place (a backup of a branch it left is refused).
pub fn restore(node: usize, pick: usize) -> Step {
    Step::Restore {
        node,
        pick,
        in_place: true,
    }
}

/// `node` restarts on its `pick`-th backup, its disk lost: no database in
/// place to refuse a backup of a branch it left.
pub fn restore_onto_new_disk(node: usize, pick: usize) -> Step {
    Step::Restore {
        node,
        pick,
        in_place: false,
    }
}

/// `from` sends `to` an Unshare of `member` it may not send (at generation
/// 1), skipped as no forgery where `from` owns the member.
pub fn forge_unshare(from: usize, to: usize, member: MemberRef) -> Step {
    Step::Forge {
        from,
        to,
        forgery: super::step::Forgery::Unshare { member },
    }
}

// ---------------------------------------------------------------------------
// Actions at a node
// ---------------------------------------------------------------------------

/// `action` at node `at`, which does not crash.
pub fn act(at: usize, action: Action) -> Step {
    Step::Act {
        at,
        action,
        crash: false,
    }
}

/// The calendar at `at`.
pub fn tick(at: usize) -> Step {
    act(at, Action::Tick)
}

pub fn member_add(at: usize, name: &str) -> Step {
    act(at, Action::MemberAdd { name: name.into() })
}

/// `at` imports a one-row roster holding a new member named `name`.
pub fn member_import(at: usize, name: &str) -> Step {
    act(
        at,
        Action::MemberImport {
            name: name.into(),
            id_of: None,
        },
    )
}

/// The member's phone changed (nothing else).
pub fn set_phone(at: usize, member: MemberRef, phone: &str) -> Step {
    act(
        at,
        Action::MemberUpdate {
            member,
            name: None,
            phone: Some(phone.into()),
        },
    )
}

/// The member goes away to a place node `dest` serves.
pub fn outflow(at: usize, member: MemberRef, dest: usize, departed_days_ago: i64) -> Step {
    act(
        at,
        Action::OutflowRegister {
            member,
            dest: Some(dest),
            departed_days_ago,
        },
    )
}

pub fn outflow_update(at: usize, member: MemberRef, dest: usize) -> Step {
    act(
        at,
        Action::OutflowUpdate {
            member,
            dest: Some(dest),
        },
    )
}

pub fn outflow_return(at: usize, member: MemberRef) -> Step {
    act(at, Action::OutflowReturn { member })
}

pub fn host_set(at: usize, member: MemberRef, employer: u32) -> Step {
    act(at, Action::HostSet { member, employer })
}

pub fn contact(at: usize, member: MemberRef, channel: &'static str, days_ago: i64) -> Step {
    act(
        at,
        Action::Contact {
            member,
            channel,
            days_ago,
        },
    )
}

pub fn activity(at: usize, member: MemberRef, kind: &'static str, days_ago: i64) -> Step {
    act(
        at,
        Action::Activity {
            member,
            kind,
            days_ago,
        },
    )
}

/// `at` proposes an agreement over a destination scope to `peer`.
pub fn propose(at: usize, peer: usize, as_outflow: bool, from_days: i64, length_days: i64) -> Step {
    propose_members(at, peer, as_outflow, from_days, length_days, Vec::new())
}

/// `at` proposes an agreement over `members` to `peer`.
pub fn propose_members(
    at: usize,
    peer: usize,
    as_outflow: bool,
    from_days: i64,
    length_days: i64,
    members: Vec<MemberRef>,
) -> Step {
    act(
        at,
        Action::Propose {
            peer,
            as_outflow,
            from_days,
            length_days,
            members,
        },
    )
}

pub fn counter(at: usize, agreement: AgreementRef, from_days: i64, length_days: i64) -> Step {
    act(
        at,
        Action::Counter {
            agreement,
            from_days,
            length_days,
        },
    )
}

pub fn accept_agreement(at: usize, agreement: AgreementRef) -> Step {
    act(at, Action::Accept { agreement })
}

/// `at` rejects the transfer with the reason code `code`.
pub fn reject(at: usize, transfer: TransferRef, code: &'static str) -> Step {
    act(at, Action::TransferReject { transfer, code })
}

pub fn reject_agreement(at: usize, agreement: AgreementRef) -> Step {
    act(at, Action::Reject { agreement })
}

pub fn terminate(at: usize, agreement: AgreementRef) -> Step {
    act(at, Action::Terminate { agreement })
}

/// The owner `at` offers the member to `to`, the offer valid `valid_days`.
pub fn start(at: usize, member: MemberRef, to: usize, valid_days: u32) -> Step {
    act(
        at,
        Action::TransferStart {
            member,
            to,
            valid_days,
        },
    )
}

/// The receiver `at` accepts the offer.
pub fn accept(at: usize, transfer: TransferRef) -> Step {
    act(at, Action::TransferAccept { transfer })
}

/// The sender `at` cancels its offer.
pub fn cancel(at: usize, transfer: TransferRef) -> Step {
    act(at, Action::TransferCancel { transfer })
}

/// The sender `at` re-issues its offer under a new letter.
pub fn reissue(at: usize, transfer: TransferRef) -> Step {
    act(at, Action::TransferReissue { transfer })
}

/// The member leaves `at` on paper, for a place no node serves.
pub fn on_paper(at: usize, member: MemberRef) -> Step {
    act(at, Action::TransferOnPaper { member })
}

/// `reconcile --without-peer` at the restored node `at`.
pub fn reconcile_without(at: usize, peer: usize) -> Step {
    act(at, Action::ReconcileWithoutPeer { peer })
}

pub fn peer_remove(at: usize, peer: usize, force: bool) -> Step {
    act(at, Action::PeerRemove { peer, force })
}

/// `at` adds `peer`, removed before, again.
pub fn peer_add_again(at: usize, peer: usize) -> Step {
    act(at, Action::PeerReAdd { peer })
}
