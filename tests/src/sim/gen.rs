//! The seeded scheduler: picks the next [`Step`] from the world's state.
//! The only randomness of a run is the `StdRng` passed in; what it looks at
//! in the databases is read in a fixed order.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::step::{
    Action, Forgery, RecordKind, Step, ACTIVITY_KINDS, CHANNELS, MANUAL_STATUSES, REJECT_CODES,
};
use super::world::{World, DAY_MS, TICK_MS};

/// Picks one value by weight (weights of 0 are never picked).
fn weighted<T: Copy>(rng: &mut StdRng, choices: &[(u32, T)]) -> T {
    let total: u32 = choices.iter().map(|(w, _)| w).sum();
    assert!(total > 0, "nothing to choose from");
    let mut at = rng.random_range(0..total);
    for (w, v) in choices {
        if at < *w {
            return *v;
        }
        at -= w;
    }
    unreachable!()
}

#[derive(Clone, Copy)]
enum Kind {
    Act,
    Deliver,
    Send,
    Duplicate,
    Lose,
    Crash,
    Restart,
    Advance,
    Partition,
    Heal,
    Forge,
    Backup,
    Restore,
}

/// An agreement as a node holds it.
struct Held {
    alias: usize,
    state: String,
    /// Whether an `accept` here would do something: the inflow party has a
    /// published version it has not signed, or the coordinator has a
    /// counter-proposal answering its current version.
    can_accept: bool,
}

fn held_agreements(world: &World, at: usize) -> Vec<Held> {
    let node = &world.nodes[at];
    let mut stmt = node
        .reader()
        .prepare_cached(
            "SELECT a.agreement_id, a.state,
                CASE WHEN a.outflow_node = ?1
                     THEN a.pending_terms IS NOT NULL AND a.pending_answers = a.version
                     ELSE a.version > 0 AND NOT EXISTS (SELECT 1 FROM agreement_signatures s
                          WHERE s.agreement_id = a.agreement_id AND s.version = a.version AND s.signer = ?1)
                END
             FROM agreements a ORDER BY a.created_at_ms, a.agreement_id",
        )
        .expect("read agreements");
    let rows: Vec<(String, String, bool)> = stmt
        .query_map([node.id.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("read agreements")
        .collect::<Result<_, _>>()
        .expect("read agreements");
    rows.into_iter()
        .filter_map(|(id, state, can_accept)| {
            Some(Held {
                alias: world.agreement_index(&id)?,
                can_accept: can_accept && matches!(state.as_str(), "proposed" | "active"),
                state,
            })
        })
        .collect()
}

fn copies(world: &World, at: usize) -> Vec<(usize, Option<usize>)> {
    let mut stmt = world.nodes[at]
        .reader()
        .prepare_cached("SELECT member_id FROM home_copies ORDER BY member_id")
        .expect("read copies");
    let ids: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("read copies")
        .collect::<Result<_, _>>()
        .expect("read copies");
    ids.iter()
        .filter_map(|id| world.member_index(id))
        .map(|m| (m, world.members[m].owner))
        .collect()
}

/// The nodes `at` coordinates a proposed or active agreement with.
fn partners(world: &World, at: usize) -> Vec<usize> {
    let node = &world.nodes[at];
    let mut stmt = node
        .reader()
        .prepare_cached(
            "SELECT DISTINCT inflow_node FROM agreements
             WHERE outflow_node = ?1 AND state IN ('proposed', 'active') ORDER BY inflow_node",
        )
        .expect("read agreements");
    let names: Vec<String> = stmt
        .query_map([node.id.as_str()], |r| r.get(0))
        .expect("read agreements")
        .collect::<Result<_, _>>()
        .expect("read agreements");
    names
        .iter()
        .filter_map(|name| world.names.iter().position(|n| n == name))
        .collect()
}

/// Transfers as `at` holds them: (alias, direction, state).
fn held_transfers(world: &World, at: usize) -> Vec<(usize, String, String)> {
    let mut stmt = world.nodes[at]
        .reader()
        .prepare_cached(
            "SELECT transfer_id, direction, state FROM transfers ORDER BY created_at_ms, transfer_id",
        )
        .expect("read transfers");
    let rows: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("read transfers")
        .collect::<Result<_, _>>()
        .expect("read transfers");
    rows.into_iter()
        .filter_map(|(id, direction, state)| Some((world.transfer_index(&id)?, direction, state)))
        .collect()
}

fn owned(world: &World, at: usize) -> Vec<usize> {
    (0..world.members.len())
        .filter(|m| world.members[*m].owner == Some(at))
        .collect()
}

fn up_nodes(world: &World) -> Vec<usize> {
    (0..world.nodes.len())
        .filter(|i| world.nodes[*i].up)
        .collect()
}

fn pairs(world: &World) -> Vec<(usize, usize)> {
    let n = world.nodes.len();
    (0..n)
        .flat_map(|a| (0..n).map(move |b| (a, b)))
        .filter(|(a, b)| world.linked(*a, *b))
        .collect()
}

fn other_than(rng: &mut StdRng, n: usize, not: &[usize]) -> Option<usize> {
    let candidates: Vec<usize> = (0..n).filter(|i| !not.contains(i)).collect();
    candidates.choose(rng).copied()
}

/// The next step.
pub fn next_step(rng: &mut StdRng, world: &World) -> Step {
    let up = up_nodes(world);
    let any_down = up.len() < world.nodes.len();
    let linked = pairs(world);
    let with_backlog: Vec<(usize, usize)> = linked
        .iter()
        .copied()
        .filter(|(a, b)| world.backlog(*a, *b))
        .collect();
    let with_history: Vec<(usize, usize)> = linked
        .iter()
        .copied()
        .filter(|(a, b)| world.history_len(*a, *b) > 0)
        .collect();
    let with_stream: Vec<(usize, usize)> = linked
        .iter()
        .copied()
        .filter(|(a, b)| world.stream_open(*a, *b))
        .collect();
    let backed_up: Vec<usize> = (0..world.nodes.len())
        .filter(|i| world.backups_of(*i) > 0)
        .collect();
    let kind = weighted(
        rng,
        &[
            (if up.is_empty() { 0 } else { 44 }, Kind::Act),
            (if with_backlog.is_empty() { 0 } else { 38 }, Kind::Deliver),
            (if with_backlog.is_empty() { 0 } else { 3 }, Kind::Send),
            (if with_history.is_empty() { 0 } else { 3 }, Kind::Duplicate),
            (if with_stream.is_empty() { 0 } else { 2 }, Kind::Lose),
            (if up.is_empty() { 0 } else { 1 }, Kind::Crash),
            (if any_down { 12 } else { 0 }, Kind::Restart),
            (4, Kind::Advance),
            (1, Kind::Partition),
            (if world.partitions.is_empty() { 0 } else { 4 }, Kind::Heal),
            (2, Kind::Forge),
            (if up.is_empty() { 0 } else { 1 }, Kind::Backup),
            (if backed_up.is_empty() { 0 } else { 1 }, Kind::Restore),
        ],
    );
    const LIMITS: [u32; 6] = [1, 2, 3, 5, 8, 64];
    match kind {
        Kind::Act => {
            let at = *up.choose(rng).expect("a node up");
            Step::Act {
                at,
                action: action(rng, world, at),
                crash: rng.random_bool(0.02),
            }
        }
        Kind::Deliver => {
            let (from, to) = *with_backlog.choose(rng).expect("a link with a backlog");
            let limit = *LIMITS.choose(rng).expect("a limit");
            let prefix = rng
                .random_bool(0.08)
                .then(|| rng.random_range(0..limit as usize));
            Step::Deliver {
                from,
                to,
                limit,
                prefix,
                crash: rng.random_bool(0.03),
            }
        }
        Kind::Send => {
            let (from, to) = *with_backlog.choose(rng).expect("a link with a backlog");
            Step::Send {
                from,
                to,
                limit: *LIMITS.choose(rng).expect("a limit"),
            }
        }
        Kind::Duplicate => {
            let (from, to) = *with_history.choose(rng).expect("a link with history");
            Step::Duplicate {
                from,
                to,
                pick: rng.random_range(0..8),
            }
        }
        Kind::Lose => {
            let (from, to) = *with_stream.choose(rng).expect("an open stream");
            Step::Lose { from, to }
        }
        Kind::Crash => Step::Crash {
            node: *up.choose(rng).expect("a node up"),
        },
        Kind::Restart => {
            let down: Vec<usize> = (0..world.nodes.len())
                .filter(|i| !world.nodes[*i].up)
                .collect();
            Step::Restart {
                node: *down.choose(rng).expect("a node down"),
            }
        }
        Kind::Advance => Step::Advance {
            deltas_ms: advance(rng, world.nodes.len()),
        },
        Kind::Partition => {
            let n = world.nodes.len();
            let a = rng.random_range(0..n);
            let b = other_than(rng, n, &[a]).expect("two nodes");
            Step::Partition { a, b }
        }
        Kind::Heal => {
            let partitions: Vec<(usize, usize)> = world.partitions.iter().copied().collect();
            let (a, b) = *partitions.choose(rng).expect("a partition");
            Step::Heal { a, b }
        }
        Kind::Forge => forge(rng, world),
        Kind::Backup => Step::Backup {
            node: *up.choose(rng).expect("a node up"),
        },
        Kind::Restore => {
            let node = *backed_up.choose(rng).expect("a node with a backup");
            // One draw: the backup, and one restore in eight onto a new
            // disk (the database in place lost).
            let draw: usize = rng.random_range(0..32);
            Step::Restore {
                node,
                pick: draw >> 3,
                in_place: draw & 7 != 7,
            }
        }
    }
}

fn round(ms: i64) -> i64 {
    ms / TICK_MS * TICK_MS
}

/// Clock deltas: usually every node by about the same (minutes, hours or
/// days, each with its own jitter), sometimes one node alone by days.
fn advance(rng: &mut StdRng, n: usize) -> Vec<i64> {
    const MINUTE: i64 = 60_000;
    if rng.random_bool(0.1) {
        // One clock alone, by days; now and then past the hosts' grace.
        let lone = rng.random_range(0..n);
        let delta = if rng.random_bool(0.2) {
            rng.random_range(25..=45)
        } else {
            rng.random_range(1..=10)
        } * DAY_MS;
        return (0..n)
            .map(|i| if i == lone { round(delta) } else { 0 })
            .collect();
    }
    let base = match rng.random_range(0..100) {
        0..40 => rng.random_range(1..=120) * MINUTE,
        40..75 => rng.random_range(1..=24) * 60 * MINUTE,
        _ => rng.random_range(1..=20) * DAY_MS,
    };
    (0..n)
        .map(|_| round(base + rng.random_range(0..=30) * MINUTE))
        .collect()
}

/// Where a member of `at` goes away to: mostly a region `at` has an
/// agreement with, sometimes any other node's, now and then a place no
/// node serves (`None`).
fn destination(rng: &mut StdRng, world: &World, at: usize) -> Option<usize> {
    let partners = partners(world, at);
    match rng.random_range(0..10) {
        0 => None,
        1..7 if !partners.is_empty() => partners.choose(rng).copied(),
        _ => other_than(rng, world.nodes.len(), &[at]),
    }
}

fn action(rng: &mut StdRng, world: &World, at: usize) -> Action {
    let n = world.nodes.len();
    let owned = owned(world, at);
    let copies = copies(world, at);
    let held = held_agreements(world, at);
    let open: Vec<&Held> = held
        .iter()
        .filter(|a| matches!(a.state.as_str(), "proposed" | "active"))
        .collect();
    let proposed: Vec<&Held> = open
        .iter()
        .copied()
        .filter(|a| a.state == "proposed")
        .collect();
    let active: Vec<&Held> = open
        .iter()
        .copied()
        .filter(|a| a.state == "active")
        .collect();
    let acceptable: Vec<&Held> = open.iter().copied().filter(|a| a.can_accept).collect();
    let transfers = held_transfers(world, at);
    let with = |direction: &str, states: &[&str]| -> Vec<usize> {
        transfers
            .iter()
            .filter(|(_, d, s)| d == direction && states.contains(&s.as_str()))
            .map(|(t, _, _)| *t)
            .collect()
    };
    let pending = with("incoming", &["pending"]);
    let offered = with("outgoing", &["offered"]);
    let reissuable = with("outgoing", &["offered", "expired"]);
    let removed: Vec<usize> = (0..n)
        .filter(|p| world.removed.contains(&(at, *p)))
        .collect();
    let waiting: Vec<usize> = {
        let mut stmt = world.nodes[at]
            .reader()
            .prepare_cached(
                "SELECT peer FROM reconcile_peers WHERE state = 'waiting' ORDER BY peer",
            )
            .expect("read reconcile peers");
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("read reconcile peers")
            .collect::<Result<_, _>>()
            .expect("read reconcile peers");
        names
            .iter()
            .filter_map(|name| world.names.iter().position(|x| x == name))
            .collect()
    };
    let about: Vec<usize> = owned
        .iter()
        .copied()
        .chain(copies.iter().map(|(m, _)| *m))
        .collect();
    // Sometimes an operator names the wrong member or agreement.
    let stray = rng.random_bool(0.05);
    let any_member = |rng: &mut StdRng| rng.random_range(0..world.members.len().max(1));
    let any_agreement = |rng: &mut StdRng| rng.random_range(0..world.agreements.len().max(1));
    let pick_member = |rng: &mut StdRng, from: &[usize]| match from.choose(rng) {
        Some(m) if !stray => *m,
        _ => any_member(rng),
    };
    let pick_agreement = |rng: &mut StdRng, from: &[&Held]| match from.choose(rng) {
        Some(a) if !stray => a.alias,
        _ => any_agreement(rng),
    };
    let pick_transfer = |rng: &mut StdRng, from: &[usize]| match from.choose(rng) {
        Some(t) if !stray => *t,
        _ => rng.random_range(0..world.transfers.len().max(1)),
    };
    #[derive(Clone, Copy)]
    enum A {
        Add,
        Import,
        OrgAdd,
        Update,
        Register,
        OutflowUpdate,
        Return,
        HostSet,
        Contact,
        Activity,
        Status,
        Propose,
        Counter,
        Accept,
        Reject,
        Terminate,
        TransferStart,
        TransferAccept,
        TransferReject,
        TransferCancel,
        TransferExtend,
        TransferReissue,
        TransferOnPaper,
        PeerRemove,
        PeerReAdd,
        WithoutPeer,
        Tick,
    }
    let has = |v: bool, w: u32| if v { w } else { 0 };
    let kind = weighted(
        rng,
        &[
            (
                match owned.len() {
                    0..2 => 12,
                    2..5 => 3,
                    _ => 1,
                },
                A::Add,
            ),
            (
                match owned.len() {
                    0..5 => 2,
                    _ => 0,
                },
                A::Import,
            ),
            (1, A::OrgAdd),
            (has(!owned.is_empty(), 5), A::Update),
            (has(!owned.is_empty(), 8), A::Register),
            (has(!owned.is_empty(), 3), A::OutflowUpdate),
            (has(!owned.is_empty(), 2), A::Return),
            (has(!copies.is_empty(), 6), A::HostSet),
            (has(!about.is_empty(), 6), A::Contact),
            (has(!about.is_empty(), 4), A::Activity),
            (has(!owned.is_empty(), 1), A::Status),
            (3, A::Propose),
            (has(!open.is_empty(), 1), A::Counter),
            (has(!acceptable.is_empty(), 14), A::Accept),
            (has(!open.is_empty(), 1), A::Accept),
            (has(!proposed.is_empty(), 1), A::Reject),
            (has(!active.is_empty(), 1), A::Terminate),
            (has(!owned.is_empty(), 4), A::TransferStart),
            (has(!pending.is_empty(), 10), A::TransferAccept),
            (has(!pending.is_empty(), 2), A::TransferReject),
            (has(!offered.is_empty(), 1), A::TransferCancel),
            (has(!offered.is_empty(), 1), A::TransferExtend),
            (has(!reissuable.is_empty(), 1), A::TransferReissue),
            (has(!owned.is_empty() && stray, 1), A::TransferOnPaper),
            (1, A::PeerRemove),
            (has(!removed.is_empty(), 12), A::PeerReAdd),
            (has(!waiting.is_empty(), 3), A::WithoutPeer),
            (5, A::Tick),
        ],
    );
    let serial = world.members.len();
    match kind {
        A::Add => Action::MemberAdd {
            name: format!("{}党员{serial}", ["张", "李", "王", "赵", "马"][serial % 5]),
        },
        A::Update => {
            let index = pick_member(rng, &owned);
            let member = world.member_ref(index);
            if rng.random_bool(0.5) {
                Action::MemberUpdate {
                    member,
                    name: Some(format!("更名{}-{}", index, rng.random_range(0..100))),
                    phone: None,
                }
            } else {
                Action::MemberUpdate {
                    member,
                    name: None,
                    phone: Some(format!("139{:08}", rng.random_range(0..100_000_000))),
                }
            }
        }
        A::Register => Action::OutflowRegister {
            member: world.member_ref(pick_member(rng, &owned)),
            dest: destination(rng, world, at),
            departed_days_ago: rng.random_range(0..=200),
        },
        A::Import => Action::MemberImport {
            name: format!("{}党员{serial}", ["孙", "周", "吴", "郑", "冯"][serial % 5]),
            id_of: match rng.random_range(0..4) {
                0 if !world.members.is_empty() => Some(world.member_ref(any_member(rng))),
                1 if !owned.is_empty() => Some(world.member_ref(pick_member(rng, &owned))),
                _ => None,
            },
        },
        A::OrgAdd => Action::OrgAdd {
            serial: rng.random_range(2..20),
        },
        A::OutflowUpdate => Action::OutflowUpdate {
            member: world.member_ref(pick_member(rng, &owned)),
            dest: destination(rng, world, at),
        },
        A::Return => Action::OutflowReturn {
            member: world.member_ref(pick_member(rng, &owned)),
        },
        A::HostSet => {
            let hosted: Vec<usize> = copies.iter().map(|(m, _)| *m).collect();
            Action::HostSet {
                member: world.member_ref(pick_member(rng, &hosted)),
                employer: rng.random_range(0..1000),
            }
        }
        A::Contact => Action::Contact {
            member: world.member_ref(pick_member(rng, &about)),
            channel: CHANNELS.choose(rng).expect("a channel"),
            days_ago: rng.random_range(0..=120),
        },
        A::Activity => Action::Activity {
            member: world.member_ref(pick_member(rng, &about)),
            kind: ACTIVITY_KINDS.choose(rng).expect("a kind"),
            days_ago: rng.random_range(0..=120),
        },
        A::Status => Action::ContactStatus {
            member: world.member_ref(pick_member(rng, &owned)),
            set: MANUAL_STATUSES.choose(rng).expect("a status"),
        },
        A::Propose => {
            let peer = other_than(rng, n, &[at]).expect("a peer");
            let as_outflow = rng.random_bool(0.75);
            let coordinator = if as_outflow { at } else { peer };
            let theirs = self::owned(world, coordinator);
            let members = if !theirs.is_empty() && rng.random_bool(0.2) {
                let k = rng.random_range(1..=theirs.len().min(2));
                let mut chosen: Vec<usize> = theirs.choose_multiple(rng, k).copied().collect();
                chosen.sort_unstable();
                chosen.into_iter().map(|m| world.member_ref(m)).collect()
            } else {
                Vec::new()
            };
            Action::Propose {
                peer,
                as_outflow,
                from_days: rng.random_range(-20..=3),
                length_days: rng.random_range(10..=200),
                members,
            }
        }
        A::Counter => Action::Counter {
            agreement: world.agreement_ref(pick_agreement(rng, &open)),
            from_days: rng.random_range(-10..=5),
            length_days: rng.random_range(10..=200),
        },
        A::Accept => Action::Accept {
            agreement: world.agreement_ref(pick_agreement(
                rng,
                if acceptable.is_empty() {
                    &open
                } else {
                    &acceptable
                },
            )),
        },
        A::Reject => Action::Reject {
            agreement: world.agreement_ref(pick_agreement(rng, &proposed)),
        },
        A::Terminate => Action::Terminate {
            agreement: world.agreement_ref(pick_agreement(rng, &active)),
        },
        A::TransferStart => Action::TransferStart {
            member: world.member_ref(pick_member(rng, &owned)),
            to: other_than(rng, n, &[at]).expect("a peer"),
            valid_days: *[1, 3, 10, 30, 90, 120].choose(rng).expect("a validity"),
        },
        A::TransferAccept => Action::TransferAccept {
            transfer: world.transfer_ref(pick_transfer(rng, &pending)),
        },
        A::TransferReject => Action::TransferReject {
            transfer: world.transfer_ref(pick_transfer(rng, &pending)),
            code: REJECT_CODES.choose(rng).expect("a code"),
        },
        A::TransferCancel => Action::TransferCancel {
            transfer: world.transfer_ref(pick_transfer(rng, &offered)),
        },
        A::TransferExtend => Action::TransferExtend {
            transfer: world.transfer_ref(pick_transfer(rng, &offered)),
            days: *[1, 10, 60].choose(rng).expect("days"),
        },
        A::TransferReissue => Action::TransferReissue {
            transfer: world.transfer_ref(pick_transfer(rng, &reissuable)),
        },
        A::TransferOnPaper => Action::TransferOnPaper {
            member: world.member_ref(pick_member(rng, &owned)),
        },
        A::PeerRemove => Action::PeerRemove {
            peer: other_than(rng, n, &[at]).expect("a peer"),
            force: rng.random_bool(0.5),
        },
        A::PeerReAdd => Action::PeerReAdd {
            peer: *removed.choose(rng).expect("a removed peer"),
        },
        A::WithoutPeer => Action::ReconcileWithoutPeer {
            peer: *waiting
                .choose(rng)
                .expect("a peer reconciliation waits for"),
        },
        A::Tick => Action::Tick,
    }
}

fn forge(rng: &mut StdRng, world: &World) -> Step {
    let n = world.nodes.len();
    let from = rng.random_range(0..n);
    let to = other_than(rng, n, &[from]).expect("two nodes");
    let owned_by_to = owned(world, to);
    // Never a member of the forger itself: what its owner sends about it
    // may well be valid.
    let not_forgers: Vec<usize> = (0..world.members.len())
        .filter(|m| world.members[*m].owner != Some(from))
        .collect();
    let fallback = |rng: &mut StdRng| not_forgers.choose(rng).copied();
    let no_member = Forgery::AgreementEnd { agreement: None };
    let forgery = match rng.random_range(0..4) {
        0 => match owned_by_to.choose(rng).copied().or_else(|| fallback(rng)) {
            Some(member) => Forgery::OwnersHomeSection {
                member: world.member_ref(member),
            },
            None => no_member,
        },
        1 => match (
            other_than(rng, n, &[from, to]),
            owned_by_to.choose(rng).copied().or_else(|| fallback(rng)),
        ) {
            (Some(author), Some(member)) => Forgery::RecordByAnother {
                member: world.member_ref(member),
                kind: *[
                    RecordKind::HostSection,
                    RecordKind::Contact,
                    RecordKind::Activity,
                ]
                .choose(rng)
                .expect("a kind"),
                author,
            },
            _ => no_member,
        },
        2 => {
            let held: Vec<usize> = copies(world, to)
                .into_iter()
                .filter(|(_, owner)| *owner != Some(from))
                .map(|(m, _)| m)
                .collect();
            match held.choose(rng).copied().or_else(|| fallback(rng)) {
                Some(member) => Forgery::Unshare {
                    member: world.member_ref(member),
                },
                None => no_member,
            }
        }
        _ => {
            let name = world.nodes[from].id.as_str();
            let theirs: Vec<usize> = {
                let mut stmt = world.nodes[to]
                    .reader()
                    .prepare_cached(
                        "SELECT agreement_id FROM agreements WHERE outflow_node <> ?1 AND inflow_node <> ?1
                         ORDER BY created_at_ms, agreement_id",
                    )
                    .expect("read agreements");
                let ids: Vec<String> = stmt
                    .query_map([name], |r| r.get(0))
                    .expect("read agreements")
                    .collect::<Result<_, _>>()
                    .expect("read agreements");
                ids.iter()
                    .filter_map(|id| world.agreement_index(id))
                    .collect()
            };
            Forgery::AgreementEnd {
                agreement: theirs.choose(rng).map(|a| world.agreement_ref(*a)),
            }
        }
    };
    Step::Forge { from, to, forgery }
}
