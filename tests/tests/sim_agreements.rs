//! The simulator's regression tests on co-management agreements: how
//! the two parties end one, what its shares cover when several agreements
//! cover a member, what a host does past the end and grace, and a peer
//! added again under an agreement.
//!
//! Each test replays schedules written by hand with the one-line builders
//! of `liaison_tests::sim::schedule` (a step's index in its schedule names
//! the member, agreement or transfer it creates), then the seeds that found
//! the bug, with no known bug tolerated: a change to the scheduler changes
//! what a seed does, while a hand-written schedule does not depend on it.
//! A test that names a bug number or a soak seed names the run that found
//! it.

use liaison_tests::sim::schedule::*;

/// BUG 1. Once a party ended an agreement it ignores every later event
/// of the other, so crossing messages leave the two sides disagreeing
/// on how the agreement ended and on what it was when it ended:
/// (a) the inflow party accepts and then rejects; the coordinator
/// applies the acceptance first and activates (and shares members) —
/// it holds "terminated, active version 1", the inflow party
/// "terminated, active version 0" (it ignores the activation);
/// (b) the coordinator expires it on its clock while the inflow party
/// terminates it: "expired" on one side, "terminated" on the other;
/// (c) the coordinator publishes a version 2 that crosses the inflow
/// party's termination: version 2 on one side, 1 on the other.
#[test]
fn sim_bug_ended_agreements_diverge() {
    let mut runs = Vec::new();
    // (a), seed 8 shrunk.
    runs.push(schedule(vec![
        propose(L, P, true, -1, 186),
        deliver(L, P),
        accept_agreement(P, AgreementRef(0)),
        reject_agreement(P, AgreementRef(0)),
    ]));
    // (b), as seed 170: lanzhou proposes as inflow party, xian
    // coordinates and activates at once; past the end, lanzhou
    // terminates while xian's calendar expires it.
    runs.push(schedule(vec![
        propose(L, X, false, -1, 10),
        deliver(L, X),
        accept_agreement(X, AgreementRef(0)),
        deliver(X, L),
        advance(12),
        terminate(L, AgreementRef(0)),
        tick(X),
    ]));
    // (c)
    runs.push(schedule(vec![
        propose(P, L, true, -1, 100),
        deliver(P, L),
        accept_agreement(L, AgreementRef(0)),
        deliver(L, P),
        deliver(P, L),
        counter(P, AgreementRef(0), -1, 200),
        terminate(L, AgreementRef(0)),
    ]));
    runs.extend(seeds(&[8, 170]));
    all_pass(runs);
}

/// BUG 2. Two active agreements between the same pair both cover a
/// member; the owner keeps one `shares` row per (member, host), under
/// the agreement it shared under last. When that agreement ends, the
/// owner deletes the row (and drops the home sections still queued for
/// the host) but does not share again under the other agreement, which
/// still covers the member. Either the host holds nothing although an
/// active agreement covers the member (the host terminates
/// the agreement it holds the copy under; seed 152: the owner's
/// calendar expires it), or — when the host still
/// holds the copy under the other agreement — it keeps a copy the owner
/// no longer knows of: never updated, and never withdrawn when the
/// member returns home (seed 219: a home section left at the host of a
/// member who is back home).
#[test]
fn sim_bug_end_of_one_agreement_forgets_the_copy_under_another() {
    let mut runs = Vec::new();
    // Seed 251 under an earlier scheduler: pingliang shares m0 with lanzhou under a1 (the
    // later of two active agreements); lanzhou terminates a1.
    runs.push(schedule(vec![
        propose(P, L, true, -2, 34),
        propose(P, L, true, -1, 199),
        deliver(P, L),
        accept_agreement(L, AgreementRef(0)),
        accept_agreement(L, AgreementRef(1)),
        deliver(L, P),
        member_add(P, "李党员"),
        outflow(P, MemberRef(6), L, 95),
        deliver(P, L),
        terminate(L, AgreementRef(1)),
    ]));
    // As seed 219: lanzhou holds m0 under a0; pingliang activates a1
    // (its share under a1 still queued), terminates a1 (dropping the
    // queued share and its `shares` row), and the member returns home:
    // no Unshare is sent, lanzhou keeps the home section.
    runs.push(schedule(vec![
        member_add(P, "李党员"),
        outflow(P, MemberRef(0), L, 101),
        propose(P, L, true, -17, 187),
        propose(L, P, false, -12, 16),
        deliver(P, L),
        accept_agreement(L, AgreementRef(2)),
        deliver(L, P),
        deliver(P, L),
        accept_agreement(P, AgreementRef(3)),
        terminate(P, AgreementRef(3)),
        outflow_return(P, MemberRef(0)),
    ]));
    runs.extend(seeds(&[152, 219]));
    all_pass(runs);
}

/// BUG 3. When a second agreement with the same host starts covering a
/// member, the owner's re-evaluation (`reshare_all`, not re-sending)
/// shares the member again under it at the same version, and moves its
/// `shares` row to it; the host ignores a home section that is not
/// newer than its copy, so it keeps the copy under the first
/// agreement. Owner and host now disagree on the basis: when the host
/// terminates the first agreement it deletes the copy, while the owner,
/// whose row names the second (still active), believes the host holds
/// it and never sends it again (seeds 74, 124).
#[test]
fn sim_bug_same_version_reshare_under_another_agreement_is_ignored() {
    let mut runs = Vec::new();
    // Seed 142 under an earlier scheduler, shrunk.
    runs.push(schedule(vec![
        member_add(P, "马党员"),
        propose(P, L, true, -16, 137),
        deliver(P, L),
        accept_agreement(L, AgreementRef(1)),
        outflow(P, MemberRef(0), L, 94),
        deliver(L, P),
        propose(P, L, true, -4, 81),
        deliver(P, L),
        accept_agreement(L, AgreementRef(6)),
        deliver(L, P),
        deliver(P, L),
        terminate(L, AgreementRef(1)),
    ]));
    runs.extend(seeds(&[74, 124]));
    all_pass(runs);
}

/// BUG 30 (soak seed 1,055,220, no restore). Lanzhou, host of m0 under
/// an agreement, its clock ahead, counter-proposed a renewal; Pingliang
/// updated m0 and then published and activated the renewal. The update
/// reached Lanzhou in the batch before the renewal, when Lanzhou's
/// clock was past the first version's end plus the grace period: it
/// was not stored, but the copy from before stayed, and nothing told
/// Pingliang to share again. Fixed in `core::apply` and
/// `agreements::host_past_grace`: refusing such an update drops the
/// copies under that agreement and sends `CopiesDropped` at once, as
/// the calendar would; the owner shares again under the renewal.
#[test]
fn sim_bug_a_host_past_grace_drops_its_copies_with_the_refused_update() {
    let m = MemberRef(2);
    let run = schedule(vec![
        propose(P, L, true, -15, 24),
        deliver(P, L),
        member_add(P, "李党员"),
        accept_agreement(L, AgreementRef(0)),
        deliver(L, P),
        outflow(P, m, L, 12),
        Step::Advance {
            deltas_ms: vec![0, 10 * DAY, 0],
        },
        deliver(P, L),
        counter(L, AgreementRef(0), 2, 55),
        deliver(L, P),
        set_phone(P, m, "13990912454"),
        advance(12),
        accept_agreement(P, AgreementRef(0)),
        advance(18),
        deliver(P, L),
    ]);
    eprintln!("{}", run.report());
    all_pass(vec![run]);
    all_pass(seeds(&[1_055_220]));
}

/// BUG 31 (soak seed 1,064,438, no restore). Pingliang, host under
/// an agreement with Lanzhou, its clock far ahead, got the activation,
/// a share and a newer version only proposed, in one batch. It judged
/// the share by the end of the proposed version (not active, it
/// extends nothing) yet had already passed the active one's end plus
/// grace on its calendar, which had dropped nothing and so told
/// nothing: Lanzhou believed Pingliang held the member. Fixed in
/// `core::agreements`: a host keeps copies until the end of the active
/// version (`host_version`), and refusing a share past it tells the
/// owner (`CopiesDropped`, with the active version) even if nothing was
/// held.
#[test]
fn sim_bug_a_host_judges_shares_by_the_active_version_and_says_so() {
    let run = schedule(vec![
        member_add(L, "王党员"),
        propose_members(L, P, true, 3, 26, vec![MemberRef(0)]),
        deliver(L, P),
        accept_agreement(P, AgreementRef(1)),
        deliver(P, L),
        advance(13),
        Step::Advance {
            deltas_ms: vec![35 * DAY, 0, 0],
        },
        tick(L),
        advance(8),
        advance(5),
        counter(L, AgreementRef(1), 3, 42),
    ]);
    eprintln!("{}", run.report());
    all_pass(vec![run]);
    all_pass(seeds(&[1_064_438]));
}

/// BUG 6 (seed 979). A peer removed with `--force` and added again
/// never got the members an agreement with it activated meanwhile came
/// to cover: activation could not share with a non-peer, and `peer add`
/// shared only members away to a place no node served. Fixed in
/// `core::peering::add`, which the admin service and the simulator call.
#[test]
fn sim_bug_readded_peer_gets_what_an_agreement_covers() {
    all_pass(seeds(&[979]));
}

/// Soak seed 1,300,126 (`quiescence`). Pingliang shares m under either of
/// two agreements with Lanzhou. Lanzhou's clock, far ahead, passes both
/// ends plus grace while Pingliang's does not: Lanzhou drops the copy and
/// says so (`CopiesDropped`) for one agreement; Pingliang, for which the
/// other is still active, shares under the other; Lanzhou refuses that
/// and says so; Pingliang, remembering only the last, shares under the
/// first again, without end. Fixed in `core::agreements`: the coordinator
/// keeps the end date of the version whose copies the host dropped
/// (`copies_dropped_for`) and shares nothing under that version again.
#[test]
fn sim_bug_coordinator_remembers_every_agreement_the_host_dropped_copies_under() {
    let m = MemberRef(2);
    let run = schedule(vec![
        propose(P, L, true, -15, 24),
        propose(P, L, true, -15, 26),
        member_add(P, "李党员"),
        deliver(P, L),
        accept_agreement(L, AgreementRef(0)),
        accept_agreement(L, AgreementRef(1)),
        deliver(L, P),
        outflow(P, m, L, 12),
        deliver(P, L),
        Step::Advance {
            deltas_ms: vec![0, 45 * DAY, 0],
        },
        tick(L),
        deliver(L, P),
        deliver(P, L),
        deliver(L, P),
        deliver(P, L),
    ]);
    eprintln!("{}", run.report());
    all_pass(vec![run]);
    all_pass(soak_seeds(600, &[1_300_126]));
}

/// Soak seed 1,400,000 at 2,000 steps (`agreements-agree`). Xi'an
/// coordinates a0 with Lanzhou; Xi'an's clock expires it while Lanzhou
/// terminates it (`peer remove --force`), and Lanzhou applies Xi'an's end:
/// the coordinator's end stands. Lanzhou is then restored to a backup from
/// before it applied that end, and Xi'an to one from before it expired the
/// agreement (it adopts "expired" from Lanzhou's holdings). Lanzhou, adopting
/// Xi'an's holdings, kept its own termination, since an end is final: the two
/// sides held different ends for good. Fixed in `core::reconcile`
/// (`adopt_agreement`): where both ended it differently, the coordinator's
/// end stands, as when the two ends cross in the logs.
#[test]
fn sim_bug_a_restored_host_takes_the_coordinators_end_it_forgot() {
    let a = AgreementRef(2);
    let run = schedule(vec![
        Step::Advance {
            deltas_ms: vec![0, 0, 39 * DAY],
        },
        backup(L),
        propose(L, X, false, -3, 42),
        backup(X),
        deliver(L, X),
        accept_agreement(X, a),
        backup(L),
        Step::Advance {
            deltas_ms: vec![17 * HOUR, 17 * HOUR, 17 * HOUR],
        },
        deliver(X, L),
        tick(X),
        peer_remove(L, X, true),
        act(L, Action::PeerReAdd { peer: X }),
        backup(L),
        deliver(X, L),
        restore_onto_new_disk(X, 0),
        deliver(L, X),
        restore_onto_new_disk(L, 2),
    ]);
    eprintln!("{}", run.report());
    all_pass(vec![run]);
    all_pass(soak_seeds(2000, &[1_400_000]));
}

/// Soak seed 1,500,185 at 2,000 steps (`agreements-agree`). Lanzhou
/// coordinates a0 with Pingliang and rejects it; Pingliang applies the
/// end and backs up. Lanzhou is restored to before its rejection and
/// Pingliang to before it heard of a0; Pingliang accepts, Lanzhou
/// activates and then expires a0 on its clock. Lanzhou is restored again
/// and adopts "expired" from Pingliang, and Pingliang is restored to its
/// backup holding "terminated", an end of Lanzhou's lost log. Pingliang,
/// adopting Lanzhou's holdings, kept that end, since both ends were the
/// coordinator's: the two sides held different ends for good. Fixed in
/// `core::reconcile` (`adopt_agreement`): where both ended it
/// differently, the end the coordinator holds stands.
#[test]
fn sim_a_restored_party_takes_the_end_the_coordinator_holds_over_one_of_its_lost_log() {
    let a = AgreementRef(1);
    let run = schedule(vec![
        backup(P),
        propose(L, P, true, -1, 36),
        backup(L),
        reject_agreement(L, a),
        advance(20),
        deliver(L, P),
        backup(P),
        restore_onto_new_disk(P, 0),
        restore_onto_new_disk(L, 0),
        deliver(X, P),
        deliver(X, L),
        deliver(P, L),
        deliver(L, P),
        accept_agreement(P, a),
        deliver(P, L),
        tick(L),
        advance(16),
        tick(L),
        deliver(L, P),
        restore_onto_new_disk(L, 0),
        deliver(X, L),
        deliver(P, L),
        restore_onto_new_disk(P, 1),
    ]);
    eprintln!("{}", run.report());
    all_pass(vec![run]);
    all_pass(soak_seeds(2000, &[1_500_185]));
}

/// Soak seed 1,500,183 at 2,000 steps (`quarantine-only-invalid`).
/// Pingliang coordinates a0 with Xi'an and publishes a second version,
/// which Xi'an accepts. Both are restored to backups from before it, and
/// Xi'an's counter-proposal becomes another version 2. Xi'an is then
/// restored to its backup holding the first version 2 and its acceptance,
/// still in its log: Pingliang quarantined that acceptance as a forged
/// signature (it is Xi'an's own, over terms Pingliang published on the
/// branch it forgot), and Xi'an, adopting Pingliang's holdings, kept its
/// own terms under version 2 while Pingliang held others. Fixed in
/// `core::agreements` (`apply_vote`): an acceptance that is the voter's own
/// signature over other terms under the version number is ignored, the
/// coordinator's version standing; and in `core::reconcile`
/// (`adopt_agreement`): the inflow party takes the coordinator's terms
/// under a version number it holds with other terms.
#[test]
fn sim_bug_a_version_number_the_coordinator_forgot_and_reused() {
    let a = AgreementRef(0);
    let run = schedule(vec![
        propose(P, X, true, -15, 195),
        deliver(P, X),
        accept_agreement(X, a),
        deliver(X, P),
        deliver(P, X),
        backup(P),
        backup(X),
        counter(P, a, -9, 63),
        deliver(P, X),
        accept_agreement(X, a),
        deliver(X, P),
        backup(X),
        restore_onto_new_disk(X, 0),
        restore_onto_new_disk(P, 0),
        deliver(L, X),
        deliver(L, P),
        deliver(X, P),
        deliver(P, X),
        deliver(X, P),
        counter(X, a, -2, 34),
        deliver(X, P),
        accept_agreement(P, a),
        deliver(P, X),
        restore_onto_new_disk(X, 1),
        deliver(L, X),
        deliver(P, X),
        deliver(X, P),
    ]);
    assert_eq!(
        run.trace[21].outcome_kind,
        "done",
        "Pingliang publishes Xi'an's counter as version 2: {}",
        run.report()
    );
    eprintln!("{}", run.report());
    all_pass(vec![run]);
    all_pass(soak_seeds(2000, &[1_500_183]));
}

/// Seed 1,700,724 (`copies-converged`, 13 steps, no restore). Yinchuan
/// shares m with Pingliang under a0 (its destination); a1, an outflow
/// agreement naming m, becomes active and m's next section moves the copy
/// to a1; then m's destination changes, leaving a0's scope. a1 expired
/// before that section reached Pingliang: the end dropped it unsent, and
/// Pingliang kept its copy under a0, which Yinchuan no longer recorded.
/// Where an end drops sections still queued for the host and nothing
/// shares the member with it again, the host is told to delete its copy.
#[test]
fn sim_seed_1700724_an_end_that_drops_a_queued_section_unshares_the_member() {
    const Y: usize = 3;
    let m = MemberRef(0);
    let run = schedule_on(
        4,
        vec![
            member_import(Y, "孙党员"),
            outflow(Y, m, P, 114),
            propose(P, Y, false, -16, 192),
            deliver_at_most(P, Y, 8),
            accept_agreement(Y, AgreementRef(2)),
            deliver_at_most(Y, P, 8),
            propose_members(Y, P, true, -18, 41, vec![m]),
            deliver_at_most(Y, P, 2),
            accept_agreement(P, AgreementRef(6)),
            outflow_update(Y, m, L),
            deliver_at_most(P, Y, 3),
            advance_on(4, 7),
            advance_on(4, 19),
        ],
    );
    eprintln!("{}", run.report());
    all_pass(vec![run]);
    all_pass(soak_seeds(2_000, &[1_700_724]));
}

/// Soak seed 1700857 (`copies-converged: stale copy`, 43 steps shrunk):
/// Pingliang owns m (received from Xi'an) and shares it with Tianshui
/// under a0 (naming m), which ends before a1 (a destination scope); a1
/// covers m once Pingliang registers its outflow there. Tianshui, restored
/// to before both, refuses a0's section past a0's end and grace, and m
/// moves to a1. Pingliang is then restored to before the outflow: it
/// adopts Tianshui's copy (under a1) and shares m again under a0, which
/// Tianshui refuses. Pingliang drops its a0 share and a1 does not cover
/// m there, so nothing shares m with Tianshui, yet Tianshui kept its a1
/// copy. A section refused past its basis's end also drops an earlier
/// copy of the same owner under another basis: the owner no longer shares
/// the member there.
#[test]
fn sim_seed_1700857_a_section_refused_past_its_end_drops_the_copy_it_supersedes() {
    const X: usize = 2;
    const Y: usize = 3;
    const T: usize = 4;
    let m = MemberRef(0);
    // The seed's clocks: Tianshui is past a0's end and grace when a0's
    // activation reaches it, Pingliang not yet when it is restored.
    let skews = [17_947_552, 1_313_904, 13_425_280, 20_383_936, 12_978_160];
    let run = schedule_skewed(
        &skews,
        vec![
            member_add(X, "李党员11"),
            backup(T),
            start(X, m, P, 1),
            reissue(X, TransferRef(2)),
            deliver_at_most(X, P, 5),
            Step::Advance {
                deltas_ms: vec![5580000, 4800000, 4860000, 6120000, 5460000],
            },
            accept(P, TransferRef(3)),
            deliver_at_most(P, X, 3),
            deliver_at_most(X, P, 3),
            Step::Advance {
                deltas_ms: vec![1470480000, 1469340000, 1469820000, 1470420000, 1470360000],
            },
            propose_members(P, T, true, -1, 78, vec![m]),
            deliver(P, T),
            Step::Advance {
                deltas_ms: vec![84240000, 83700000, 84600000, 82980000, 83940000],
            },
            Step::Advance {
                deltas_ms: vec![779400000, 778500000, 778080000, 778500000, 777840000],
            },
            accept_agreement(T, AgreementRef(10)),
            Step::Advance {
                deltas_ms: vec![346320000, 346380000, 347100000, 345960000, 347400000],
            },
            Step::Advance {
                deltas_ms: vec![1470240000, 1469040000, 1470300000, 1468800000, 1470240000],
            },
            Step::Advance {
                deltas_ms: vec![15480000, 15420000, 16140000, 15240000, 14400000],
            },
            propose(P, T, true, 0, 197),
            deliver_prefix(P, T, 64, 1),
            accept_agreement(T, AgreementRef(18)),
            Step::Advance {
                deltas_ms: vec![1560000, 1920000, 1200000, 1920000, 1440000],
            },
            Step::Advance {
                deltas_ms: vec![605580000, 605640000, 605580000, 605160000, 606600000],
            },
            deliver_at_most(X, Y, 8),
            Step::Advance {
                deltas_ms: vec![1383540000, 1383720000, 1382880000, 1382940000, 1384020000],
            },
            send_ahead_at_most(Y, L, 2),
            Step::Advance {
                deltas_ms: vec![8160000, 7320000, 8460000, 7860000, 7020000],
            },
            Step::Advance {
                deltas_ms: vec![6480000, 7860000, 7500000, 7320000, 7920000],
            },
            deliver(X, T),
            deliver_at_most(T, Y, 5),
            backup(P),
            deliver(L, X),
            outflow(P, m, T, 117),
            Step::Advance {
                deltas_ms: vec![51900000, 52140000, 51600000, 51960000, 51180000],
            },
            deliver_at_most(Y, X, 1),
            send_ahead_at_most(Y, X, 1),
            Step::Advance {
                deltas_ms: vec![8340000, 6600000, 7440000, 8280000, 7140000],
            },
            deliver(T, P),
            deliver(T, P),
            Step::Advance {
                deltas_ms: vec![605700000, 606060000, 604800000, 605820000, 605520000],
            },
            Step::Advance {
                deltas_ms: vec![1383300000, 1383540000, 1382400000, 1384140000, 1383780000],
            },
            Step::Advance {
                deltas_ms: vec![21900000, 22680000, 22560000, 22380000, 22020000],
            },
            restore(T, 0),
            deliver_at_most(L, T, 2),
            Step::Advance {
                deltas_ms: vec![62100000, 61500000, 62760000, 61860000, 61320000],
            },
            Step::Advance {
                deltas_ms: vec![27000000, 27000000, 26460000, 26280000, 25920000],
            },
            send_ahead_at_most(T, Y, 1),
            Step::Advance {
                deltas_ms: vec![951000000, 951840000, 950640000, 951060000, 951240000],
            },
            deliver_at_most(L, T, 2),
            backup(T),
            Step::Advance {
                deltas_ms: vec![1470300000, 1468980000, 1469280000, 1469820000, 1470060000],
            },
            deliver_prefix(T, X, 2, 1),
            deliver_at_most(P, T, 5),
            backup(X),
            deliver_at_most(T, P, 3),
            deliver_at_most(X, Y, 2),
            deliver_prefix(P, T, 64, 21),
            deliver_at_most(L, T, 1),
            restore(P, 2),
        ],
    );
    all_pass(vec![run]);
    all_pass(soak_seeds(2_000, &[1_700_857]));
}

/// Soak seed 3000561 (`agreements-agree: different terms`, 17 steps
/// shrunk, at 600 steps). Xi'an coordinates a0, proposed by Yinchuan, and
/// publishes version 1; restored to a backup taken while Yinchuan was not
/// its peer, it goes on without Yinchuan and counters a0, numbering other
/// terms version 1 again. Yinchuan keeps the first version 1. Adopting
/// Yinchuan's agreement, the coordinator publishes its own terms again
/// past every number the peer holds.
#[test]
fn sim_seed_3000561_a_coordinator_publishes_again_a_version_number_it_used_twice() {
    const X: usize = 2;
    const Y: usize = 3;
    let a = AgreementRef(0);
    let run = schedule_on(
        4,
        vec![
            propose(Y, X, false, 2, 137),
            deliver(Y, X),
            peer_remove(X, Y, false),
            backup(X),
            peer_add_again(X, Y),
            accept_agreement(X, a),
            deliver(X, Y),
            restore(X, 0),
            deliver(P, X),
            deliver(L, X),
            advance_on(4, 5),
            counter(X, a, -9, 77),
        ],
    );
    all_pass(vec![run]);
    all_pass(soak_seeds(600, &[3_000_561]));
}
