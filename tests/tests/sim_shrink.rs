//! The simulator's shrinker (`liaison_tests::sim::shrink`): a failing
//! schedule written by hand, its few necessary steps buried in steps that
//! have nothing to do with the failure, shrinks to exactly the necessary
//! ones, still failing the same check; a run that does not fail, or a
//! budget already spent, leaves the run as it was.
//!
//! The failure comes from a broken variant of the core (a receiver that
//! owns a member as soon as its operator accepts the offer, caught by the
//! single-owner invariant), so the test does not depend on a bug of the
//! correct core that may be fixed.

use std::time::Duration;

use liaison_tests::sim::schedule::*;
use liaison_tests::sim::{replay, shrink, shrink_logged, SimConfig, Variant};

/// Far more than the shrink takes: the result does not depend on it.
const BUDGET: Duration = Duration::from_secs(600);

fn receiver_owns_on_accept() -> SimConfig {
    SimConfig {
        steps: 0,
        variant: Variant {
            receiver_owns_on_accept: true,
            ..Variant::default()
        },
        nodes: None,
    }
}

/// Xi'an offers a member to Pingliang, who accepts: four steps, at the
/// given ids, among ten rounds of Lanzhou's own work on another member,
/// clock advances, backups, ticks, a refused and a skipped action each.
fn buried_transfer() -> (Vec<Step>, Vec<usize>) {
    let mut steps = vec![member_add(L, "钱党员")];
    let other = MemberRef(0);
    let mut necessary = Vec::new();
    for round in 0..10 {
        steps.extend([
            contact(L, other, "visit", 1),
            activity(L, other, "study", 2),
            advance(1),
            backup(L),
            tick(P),
            deliver(L, X),
            // Refused: the member never went away.
            outflow_return(L, other),
            // Skipped: no such agreement.
            accept_agreement(X, AgreementRef(usize::MAX)),
            set_phone(L, other, "13800000000"),
        ]);
        let next = match round {
            2 => member_add(X, "赵党员"),
            4 => start(X, MemberRef(necessary[0]), P, 30),
            6 => deliver(X, P),
            8 => accept(P, TransferRef(necessary[1])),
            _ => continue,
        };
        necessary.push(steps.len());
        steps.push(next);
    }
    (steps, necessary)
}

#[test]
fn sim_shrink_finds_the_necessary_steps() {
    let config = receiver_owns_on_accept();
    let (steps, necessary) = buried_transfer();
    let failing = schedule_under(&config, 3, steps);
    assert_eq!(
        failing.failed_check(),
        Some("single-owner"),
        "the schedule fails under the variant: {}",
        failing.report()
    );
    let shrunk = shrink_logged(&failing, &config, BUDGET);
    let report = format!(
        "{} replays in {:.1?}:\n{}\n{}",
        shrunk.replays,
        shrunk.elapsed,
        shrunk.log.join("\n"),
        shrunk.run.report()
    );
    println!("{report}");
    assert_eq!(shrunk.run.failed_check(), Some("single-owner"), "{report}");
    let ids: Vec<usize> = shrunk.run.schedule.iter().map(|s| s.id).collect();
    assert_eq!(ids, necessary, "{report}");
    // The result is a replay of its own schedule, which fails again.
    let again = replay(0, &shrunk.run.setup, &config, &shrunk.run.schedule);
    assert_eq!(again.failed_check(), Some("single-owner"), "{report}");
    // The passes before the chunks take most of it at once (23 replays);
    // the chunked loop alone takes 46 here.
    assert!(shrunk.replays <= 30, "{report}");
}

#[test]
fn sim_shrink_leaves_a_passing_run_or_a_spent_budget_alone() {
    let config = receiver_owns_on_accept();
    let (steps, necessary) = buried_transfer();
    // Without the accept, nothing fails.
    let passing_steps: Vec<Step> = steps[..*necessary.last().expect("four steps")].to_vec();
    let passing = schedule_under(&config, 3, passing_steps);
    assert_eq!(passing.failed_check(), None, "{}", passing.report());
    let shrunk = shrink_logged(&passing, &config, BUDGET);
    assert_eq!(shrunk.replays, 0);
    assert_eq!(shrunk.run.schedule, passing.schedule);

    let failing = schedule_under(&config, 3, steps);
    let shrunk = shrink(&failing, &config, Duration::ZERO);
    assert_eq!(shrunk.failed_check(), Some("single-owner"));
    assert_eq!(shrunk.schedule, failing.schedule);
}
