//! Shrinking a failing run: drops steps from its schedule, keeping every
//! removal after which a replay still fails the same check, until nothing
//! more can be dropped or the time budget is spent.
//!
//! A replay of a long schedule takes seconds, so the passes run cheapest and
//! most effective first, and the whole sequence repeats while it removes
//! anything:
//!
//! 1. every step that was refused or skipped in the failing run, all at
//!    once, then in halves down to eighths;
//! 2. every step of one kind (each [`Step::kind`], each [`Action`]);
//! 3. every step naming one node, then every step acting at one node;
//! 4. every step about one member, one transfer, one agreement (its creating
//!    step and every step naming it), some at a time, halving down to one;
//! 5. chunks of consecutive steps, halving the chunk size down to one step.
//!
//! Steps name members, agreements and transfers by the id of the step that
//! created them; passes 1–4 drop, with a creating step, every step naming
//! what it created (replayed, they would only be skipped as naming an
//! unknown alias). Every candidate is replayed in full; the result is the
//! replay that last failed the same check, whose schedule ends with the
//! step after which it failed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use super::run::{replay, Run, SimConfig};
use super::step::{Action, Forgery, Scheduled, Step};

/// A shrink's result and how it went.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The shortest run found that fails the check the input failed (the
    /// input itself if it did not fail or nothing could be dropped).
    pub run: Run,
    /// Replays made.
    pub replays: usize,
    pub elapsed: Duration,
    /// Whether the budget ended the shrink before no pass dropped anything.
    pub out_of_time: bool,
    /// One line per pass that dropped something: the pass, the schedule's
    /// length before and after, the time since the start.
    pub log: Vec<String>,
}

/// Shrinks a failing run's schedule (see the module doc). The result fails
/// the same check as `run`; a run that did not fail comes back as it is.
/// Bounded by `budget`: at its end, the best run found so far.
pub fn shrink(run: &Run, config: &SimConfig, budget: Duration) -> Run {
    shrink_logged(run, config, budget).run
}

/// [`shrink`], with the count of replays and a line per pass that dropped
/// steps.
pub fn shrink_logged(run: &Run, config: &SimConfig, budget: Duration) -> Shrunk {
    let started = Instant::now();
    let Some(check) = run.failed_check().map(str::to_owned) else {
        return Shrunk {
            run: run.clone(),
            replays: 0,
            elapsed: started.elapsed(),
            out_of_time: false,
            log: Vec::new(),
        };
    };
    let mut shrinker = Shrinker {
        config,
        check,
        started,
        budget,
        best: run.clone(),
        tried: HashSet::new(),
        replays: 0,
        log: Vec::new(),
    };
    shrinker.run_passes();
    Shrunk {
        out_of_time: shrinker.out_of_time(),
        run: shrinker.best,
        replays: shrinker.replays,
        elapsed: started.elapsed(),
        log: shrinker.log,
    }
}

struct Shrinker<'a> {
    config: &'a SimConfig,
    check: String,
    started: Instant,
    budget: Duration,
    /// The shortest failing run so far.
    best: Run,
    /// Candidates (their step ids) replayed without the failure.
    tried: HashSet<Vec<usize>>,
    replays: usize,
    log: Vec<String>,
}

/// Something a step creates and later steps name: by the creating step's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Entity {
    Member(usize),
    Agreement(usize),
    Transfer(usize),
}

impl Shrinker<'_> {
    fn out_of_time(&self) -> bool {
        self.started.elapsed() >= self.budget
    }

    fn len(&self) -> usize {
        self.best.schedule.len()
    }

    fn run_passes(&mut self) {
        loop {
            let before = self.len();
            self.logged("refused or skipped steps", Self::drop_refused);
            self.logged("steps of one kind", Self::drop_kinds);
            self.logged("steps about one node", Self::drop_nodes);
            self.logged(
                "steps about one member, transfer or agreement",
                Self::drop_entities,
            );
            self.logged("chunks of steps", Self::drop_chunks);
            if self.len() == before || self.out_of_time() {
                return;
            }
        }
    }

    /// Runs a pass and logs it if it dropped anything.
    fn logged(&mut self, pass: &str, run: impl FnOnce(&mut Self)) {
        let (before, replays) = (self.len(), self.replays);
        run(self);
        if self.len() < before {
            self.log.push(format!(
                "{pass}: {before} → {} steps ({} replays, {:.1?} in)",
                self.len(),
                self.replays - replays,
                self.started.elapsed()
            ));
        }
    }

    /// Replays the schedule without the steps `ids` name and without every
    /// step naming what they create; keeps the replay if it fails the same
    /// check. Whether it did.
    fn try_drop(&mut self, ids: &BTreeSet<usize>) -> bool {
        let dropped = with_dependants(&self.best.schedule, ids);
        let candidate: Vec<Scheduled> = self
            .best
            .schedule
            .iter()
            .filter(|s| !dropped.contains(&s.id))
            .cloned()
            .collect();
        self.try_candidate(candidate)
    }

    fn try_candidate(&mut self, candidate: Vec<Scheduled>) -> bool {
        if candidate.len() == self.len() || self.out_of_time() {
            return false;
        }
        let key: Vec<usize> = candidate.iter().map(|s| s.id).collect();
        if self.tried.contains(&key) {
            return false;
        }
        self.replays += 1;
        let attempt = replay(self.best.seed, &self.best.setup, self.config, &candidate);
        if attempt.failed_check() == Some(self.check.as_str()) {
            self.best = attempt;
            true
        } else {
            self.tried.insert(key);
            false
        }
    }

    /// Drops groups of steps, `per_try` groups at a time (their union),
    /// halving `per_try` while it is at least `per_try_min`.
    fn drop_groups(
        &mut self,
        mut groups: Vec<BTreeSet<usize>>,
        per_try: usize,
        per_try_min: usize,
    ) {
        groups.retain(|g| !g.is_empty());
        let mut per_try = per_try.clamp(1, groups.len().max(1));
        let per_try_min = per_try_min.max(1);
        loop {
            let mut i = 0;
            while i < groups.len() {
                if self.out_of_time() {
                    return;
                }
                let end = (i + per_try).min(groups.len());
                let union: BTreeSet<usize> = groups[i..end].iter().flatten().copied().collect();
                if self.try_drop(&union) {
                    groups.drain(i..end);
                } else {
                    i = end;
                }
            }
            if per_try <= per_try_min || groups.is_empty() {
                return;
            }
            per_try = per_try.div_ceil(2).max(per_try_min);
        }
    }

    /// Pass 1: the steps the failing run refused or skipped.
    fn drop_refused(&mut self) {
        let refused: Vec<BTreeSet<usize>> = self
            .best
            .schedule
            .iter()
            .zip(&self.best.trace)
            .filter(|(_, e)| matches!(e.outcome_kind, "refused" | "skipped"))
            .map(|(s, _)| BTreeSet::from([s.id]))
            .collect();
        let n = refused.len();
        self.drop_groups(refused, n, n.div_ceil(8));
    }

    /// Pass 2: each kind of step at once, the most frequent first.
    fn drop_kinds(&mut self) {
        let mut kinds: BTreeMap<&'static str, BTreeSet<usize>> = BTreeMap::new();
        for s in &self.best.schedule {
            kinds.entry(s.step.kind()).or_default().insert(s.id);
            if let Step::Act { action, .. } = &s.step {
                kinds.entry(action_kind(action)).or_default().insert(s.id);
            }
        }
        let mut groups: Vec<BTreeSet<usize>> = kinds.into_values().collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
        groups.dedup();
        self.drop_groups(groups, 1, 1);
    }

    /// Pass 3: every step naming one node; then every step acting at one.
    fn drop_nodes(&mut self) {
        for at_only in [false, true] {
            let groups = (0..self.best.setup.nodes)
                .map(|node| {
                    self.best
                        .schedule
                        .iter()
                        .filter(|s| {
                            if at_only {
                                acting_node(&s.step) == Some(node)
                            } else {
                                nodes_named(&s.step).contains(&node)
                            }
                        })
                        .map(|s| s.id)
                        .collect()
                })
                .collect();
            self.drop_groups(groups, 1, 1);
        }
    }

    /// Pass 4: members, then transfers, then agreements, each with every
    /// step naming it: half of them at once, halving down to one.
    fn drop_entities(&mut self) {
        let kinds: [fn(&Entity) -> bool; 3] = [
            |e| matches!(e, Entity::Member(_)),
            |e| matches!(e, Entity::Transfer(_)),
            |e| matches!(e, Entity::Agreement(_)),
        ];
        for of_kind in kinds {
            let mut groups: BTreeMap<Entity, BTreeSet<usize>> = BTreeMap::new();
            for s in &self.best.schedule {
                if let Some(e) = creates(s).filter(of_kind) {
                    groups.entry(e).or_default().insert(s.id);
                }
                for e in names(&s.step) {
                    if let Some(g) = groups.get_mut(&e) {
                        g.insert(s.id);
                    }
                }
            }
            let groups: Vec<BTreeSet<usize>> = groups.into_values().collect();
            let half = groups.len().div_ceil(2);
            self.drop_groups(groups, half, 1);
        }
    }

    /// Pass 5: chunks of consecutive steps, from half the schedule down to
    /// single steps.
    fn drop_chunks(&mut self) {
        let mut chunk = self.len().div_ceil(2).max(1);
        loop {
            let mut i = 0;
            while i < self.len() {
                if self.out_of_time() {
                    return;
                }
                let mut candidate = self.best.schedule.clone();
                candidate.drain(i..(i + chunk).min(candidate.len()));
                if !self.try_candidate(candidate) {
                    i += chunk;
                }
            }
            if chunk == 1 {
                return;
            }
            chunk = chunk.div_ceil(2);
        }
    }
}

/// `ids` and every step of `schedule` naming something a step among them
/// creates, transitively.
fn with_dependants(schedule: &[Scheduled], ids: &BTreeSet<usize>) -> BTreeSet<usize> {
    let mut dropped = ids.clone();
    let mut gone: BTreeSet<Entity> = schedule
        .iter()
        .filter(|s| dropped.contains(&s.id))
        .filter_map(creates)
        .collect();
    // Steps only name what an earlier step creates: one pass in order.
    for s in schedule {
        if dropped.contains(&s.id) || !names(&s.step).iter().any(|e| gone.contains(e)) {
            continue;
        }
        dropped.insert(s.id);
        gone.extend(creates(s));
    }
    dropped
}

/// What the step creates, named after it by later steps.
fn creates(s: &Scheduled) -> Option<Entity> {
    let Step::Act { action, .. } = &s.step else {
        return None;
    };
    match action {
        // An import naming a member no longer created adds a member.
        Action::MemberAdd { .. } | Action::MemberImport { .. } => Some(Entity::Member(s.id)),
        Action::Propose { .. } => Some(Entity::Agreement(s.id)),
        Action::TransferStart { .. } | Action::TransferReissue { .. } => {
            Some(Entity::Transfer(s.id))
        }
        _ => None,
    }
}

/// The members, agreements and transfers a step names.
fn names(step: &Step) -> Vec<Entity> {
    let member = |m: &super::step::MemberRef| Entity::Member(m.0);
    match step {
        Step::Act { action, .. } => match action {
            Action::MemberImport { id_of, .. } => id_of.iter().map(member).collect(),
            Action::MemberUpdate { member: m, .. }
            | Action::OutflowRegister { member: m, .. }
            | Action::OutflowReturn { member: m }
            | Action::OutflowUpdate { member: m, .. }
            | Action::HostSet { member: m, .. }
            | Action::Contact { member: m, .. }
            | Action::Activity { member: m, .. }
            | Action::ContactStatus { member: m, .. }
            | Action::TransferStart { member: m, .. }
            | Action::TransferOnPaper { member: m } => vec![member(m)],
            Action::Propose { members, .. } => members.iter().map(member).collect(),
            Action::Counter { agreement, .. }
            | Action::Accept { agreement }
            | Action::Reject { agreement }
            | Action::Terminate { agreement } => vec![Entity::Agreement(agreement.0)],
            Action::TransferAccept { transfer }
            | Action::TransferReject { transfer, .. }
            | Action::TransferCancel { transfer }
            | Action::TransferExtend { transfer, .. }
            | Action::TransferReissue { transfer } => vec![Entity::Transfer(transfer.0)],
            Action::MemberAdd { .. }
            | Action::OrgAdd { .. }
            | Action::PeerRemove { .. }
            | Action::PeerReAdd { .. }
            | Action::ReconcileWithoutPeer { .. }
            | Action::Tick => Vec::new(),
        },
        Step::Forge { forgery, .. } => match forgery {
            Forgery::OwnersHomeSection { member: m }
            | Forgery::RecordByAnother { member: m, .. }
            | Forgery::Unshare { member: m } => vec![member(m)],
            Forgery::AgreementEnd { agreement } => {
                agreement.iter().map(|a| Entity::Agreement(a.0)).collect()
            }
        },
        Step::Deliver { .. }
        | Step::Send { .. }
        | Step::Duplicate { .. }
        | Step::Lose { .. }
        | Step::Crash { .. }
        | Step::Restart { .. }
        | Step::Advance { .. }
        | Step::Partition { .. }
        | Step::Heal { .. }
        | Step::Backup { .. }
        | Step::Restore { .. } => Vec::new(),
    }
}

/// The node a step acts at: an action's node, a delivery's receiver, the
/// node crashed, restarted, backed up or restored. `None` for a step of
/// the network or the clocks.
fn acting_node(step: &Step) -> Option<usize> {
    match step {
        Step::Act { at, .. } => Some(*at),
        Step::Deliver { to, .. } => Some(*to),
        Step::Crash { node }
        | Step::Restart { node }
        | Step::Backup { node }
        | Step::Restore { node, .. } => Some(*node),
        Step::Forge { from, .. } => Some(*from),
        Step::Send { .. }
        | Step::Duplicate { .. }
        | Step::Lose { .. }
        | Step::Advance { .. }
        | Step::Partition { .. }
        | Step::Heal { .. } => None,
    }
}

/// Every node a step names (a clock advance names none: it moves all).
fn nodes_named(step: &Step) -> Vec<usize> {
    match step {
        Step::Act { at, action, .. } => {
            let other = match action {
                Action::OutflowRegister { dest, .. } | Action::OutflowUpdate { dest, .. } => *dest,
                Action::Propose { peer, .. }
                | Action::PeerRemove { peer, .. }
                | Action::PeerReAdd { peer }
                | Action::ReconcileWithoutPeer { peer } => Some(*peer),
                Action::TransferStart { to, .. } => Some(*to),
                _ => None,
            };
            std::iter::once(*at).chain(other).collect()
        }
        Step::Deliver { from, to, .. }
        | Step::Send { from, to, .. }
        | Step::Duplicate { from, to, .. }
        | Step::Lose { from, to } => vec![*from, *to],
        Step::Forge { from, to, forgery } => match forgery {
            Forgery::RecordByAnother { author, .. } => vec![*from, *to, *author],
            _ => vec![*from, *to],
        },
        Step::Partition { a, b } | Step::Heal { a, b } => vec![*a, *b],
        Step::Crash { node }
        | Step::Restart { node }
        | Step::Backup { node }
        | Step::Restore { node, .. } => vec![*node],
        Step::Advance { .. } => Vec::new(),
    }
}

/// An action's kind, as the CLI names it.
fn action_kind(action: &Action) -> &'static str {
    match action {
        Action::MemberAdd { .. } => "member_add",
        Action::MemberImport { .. } => "member_import",
        Action::OrgAdd { .. } => "org_add",
        Action::MemberUpdate { .. } => "member_update",
        Action::OutflowRegister { .. } => "outflow_register",
        Action::OutflowReturn { .. } => "outflow_return",
        Action::OutflowUpdate { .. } => "outflow_update",
        Action::HostSet { .. } => "host_set",
        Action::Contact { .. } => "contact",
        Action::Activity { .. } => "activity",
        Action::ContactStatus { .. } => "contact_status",
        Action::Propose { .. } => "agreement_propose",
        Action::Counter { .. } => "agreement_counter",
        Action::Accept { .. } => "agreement_accept",
        Action::Reject { .. } => "agreement_reject",
        Action::Terminate { .. } => "agreement_terminate",
        Action::TransferStart { .. } => "transfer_start",
        Action::TransferAccept { .. } => "transfer_accept",
        Action::TransferReject { .. } => "transfer_reject",
        Action::TransferCancel { .. } => "transfer_cancel",
        Action::TransferExtend { .. } => "transfer_extend",
        Action::TransferReissue { .. } => "transfer_reissue",
        Action::TransferOnPaper { .. } => "transfer_on_paper",
        Action::PeerRemove { .. } => "peer_remove",
        Action::PeerReAdd { .. } => "peer_readd",
        Action::ReconcileWithoutPeer { .. } => "reconcile_without_peer",
        Action::Tick => "tick",
    }
}
