//! The deterministic simulation (issue 7): seeded fault schedules over the
//! production protocol core, every invariant checked after every step, and
//! convergence at the end of each run. See `liaison_tests::sim` for what a
//! step can be and what is checked.
//!
//! - `cargo test -p liaison-tests --test sim` runs the CI budget (1,000
//!   seeds of 200 steps each on all cores, seeds 0..1000), a replay check,
//!   and the broken variants, each of which must be caught within the CI
//!   seed budget.
//! - `LIAISON_SIM_SEED=<n> cargo test -p liaison-tests --test sim sim_`
//!   replays exactly that seed and prints its whole schedule;
//!   `LIAISON_SIM_VARIANT=skip_authority|cursor_in_separate_tx|receiver_owns_on_accept` replays it
//!   under a broken variant; `LIAISON_SIM_STEPS` changes the step count.
//! - The soak: `scripts/soak --seeds 10000 --steps 600` (see
//!   `sim_soak_seeds` and docs/RELIABILITY.md).
//! - The regression tests of what the simulator found, each a schedule
//!   written by hand and the seeds that found it, nothing tolerated, are
//!   in `sim_agreements.rs`, `sim_transfers.rs` and `sim_restore.rs`.
//!
//! A failing run prints its seed, its schedule (each step with what it came
//! to) and a shrunk schedule that still fails the same check, shrunk for at
//! most `LIAISON_SIM_SHRINK_SECS` seconds (default 120; see
//! `liaison_tests::sim::shrink` for how).
//!
//! Broken variants, behind test-only switches of the core
//! (`core::apply::Faults`): skipping the authority checks, caught by the
//! authority invariant; applying a batch and advancing the cursor in two
//! transactions, caught by the exactly-once invariant when a crash falls
//! between them.
//!
//! The third, the receiver of a transfer enrolling the member when its
//! operator accepts, before the sender's `release` arrives, is caught by
//! the single-owner invariant.

use std::time::Duration;

use liaison_tests::sim::schedule::{env_u64, steps};
use liaison_tests::sim::{run_seed, run_seeds, shrink, shrink_logged, Run, SimConfig, Variant};

/// The CI budget: this many seeds of `schedule::CI_STEPS` steps each.
const CI_SEEDS: u64 = 1_000;

/// `LIAISON_SIM_SEED`: replay one seed only.
fn single_seed() -> Option<u64> {
    env_u64("LIAISON_SIM_SEED")
}

/// A run of [`steps`] steps per schedule under `variant`; every check
/// runs, nothing is tolerated but what a written rule allows.
fn config(variant: Variant) -> SimConfig {
    SimConfig {
        steps: steps(),
        variant,
        nodes: None,
    }
}

fn skip_authority() -> Variant {
    Variant {
        skip_authority_at: Some(0),
        ..Variant::default()
    }
}

fn cursor_in_separate_tx() -> Variant {
    Variant {
        cursor_in_separate_tx: true,
        ..Variant::default()
    }
}

fn receiver_owns_on_accept() -> Variant {
    Variant {
        receiver_owns_on_accept: true,
        ..Variant::default()
    }
}

fn variant_from_env() -> Variant {
    match std::env::var("LIAISON_SIM_VARIANT").as_deref() {
        Err(_) | Ok("") | Ok("correct") => Variant::default(),
        Ok("skip_authority") => skip_authority(),
        Ok("cursor_in_separate_tx") => cursor_in_separate_tx(),
        Ok("receiver_owns_on_accept") => receiver_owns_on_accept(),
        Ok(other) => panic!(
            "LIAISON_SIM_VARIANT={other}: expected skip_authority, cursor_in_separate_tx or receiver_owns_on_accept"
        ),
    }
}

/// The failing run, its replay hint, and a shrunk schedule (shrunk for at
/// most `LIAISON_SIM_SHRINK_SECS` seconds, default 120).
fn explain(run: &Run, config: &SimConfig) -> String {
    let budget = Duration::from_secs(env_u64("LIAISON_SIM_SHRINK_SECS").unwrap_or(120));
    let shrunk = shrink_logged(run, config, budget);
    format!(
        "{}\nshrunk to {} scheduled steps (from {}, in {:.0?}, {} replays{}; still failing `{}`):\n{}\n{}",
        run.report(),
        shrunk.run.schedule.len(),
        run.schedule.len(),
        shrunk.elapsed,
        shrunk.replays,
        if shrunk.out_of_time {
            ", stopped by the budget"
        } else {
            ""
        },
        shrunk.run.failed_check().unwrap_or("?"),
        shrunk.log.join("\n"),
        shrunk.run.report()
    )
}

#[test]
fn sim_ci_seeds() {
    if let Some(seed) = single_seed() {
        let config = config(variant_from_env());
        let run = run_seed(seed, &config);
        println!("{}", run.report());
        assert!(run.failure.is_none(), "{}", explain(&run, &config));
        return;
    }
    let config = config(Variant::default());
    let summary = run_seeds(0..CI_SEEDS, &config, &|run| {
        println!("{}", run.summary());
        false
    });
    println!(
        "{} schedules in {:.1?}: {}",
        summary.runs, summary.elapsed, summary.stats
    );
    assert_eq!(summary.runs, CI_SEEDS);
    if let Some(first) = summary.failures.first() {
        let seeds: Vec<u64> = summary.failures.iter().map(|r| r.seed).collect();
        panic!(
            "{} of {} seeds failed: {seeds:?}\nthe first:\n{}",
            seeds.len(),
            summary.runs,
            explain(first, &config)
        );
    }
}

#[test]
fn sim_replay_of_a_seed_is_exact() {
    if single_seed().is_some() {
        return;
    }
    let config = config(Variant::default());
    let first = run_seed(7, &config);
    let second = run_seed(7, &config);
    assert!(first.failure.is_none(), "{}", first.report());
    let steps = |r: &Run| -> Vec<(String, &'static str, String)> {
        r.trace
            .iter()
            .map(|e| (e.step.clone(), e.outcome_kind, e.outcome.clone()))
            .collect()
    };
    assert_eq!(
        steps(&first),
        steps(&second),
        "the same seed ran differently"
    );
    assert_eq!(first.stats.by_kind, second.stats.by_kind);
    assert_eq!(
        (first.stats.events_applied, first.stats.events_skipped),
        (second.stats.events_applied, second.stats.events_skipped)
    );
    // A recorded schedule replays the same way without the generator.
    let replayed = liaison_tests::sim::replay(first.seed, &first.setup, &config, &first.schedule);
    assert_eq!(steps(&first), steps(&replayed));
}

/// Runs the CI seeds under a broken variant until one fails with `check`;
/// panics if none does within the budget.
fn catch(variant: Variant, check: &str) {
    if single_seed().is_some() {
        return;
    }
    let config = config(variant);
    let summary = run_seeds(0..CI_SEEDS, &config, &|run| {
        run.failed_check() == Some(check)
    });
    let caught = summary
        .failures
        .iter()
        .find(|r| r.failed_check() == Some(check));
    let Some(caught) = caught else {
        panic!(
            "the broken variant {variant:?} was not caught by `{check}` in {} seeds ({} failed otherwise)",
            summary.runs,
            summary.failures.len()
        );
    };
    let others: Vec<(u64, &str)> = summary
        .failures
        .iter()
        .filter(|r| r.seed < caught.seed)
        .map(|r| (r.seed, r.failed_check().unwrap_or("?")))
        .collect();
    let shrunk = shrink(caught, &config, Duration::from_secs(60));
    println!(
        "{variant:?} caught by `{check}` at seed {} ({} seeds run; earlier failures of other checks: {others:?})\n{}\nshrunk:\n{}",
        caught.seed,
        caught.seed + 1,
        caught.report(),
        shrunk.report()
    );
}

#[test]
fn sim_catches_skipped_authority_checks() {
    catch(skip_authority(), "author-is-authority");
}

#[test]
fn sim_catches_cursor_advanced_in_a_separate_transaction() {
    catch(cursor_in_separate_tx(), "exactly-once");
}

#[test]
fn sim_catches_a_receiver_that_owns_the_member_on_accept() {
    catch(receiver_owns_on_accept(), "single-owner");
}

/// The soak (`scripts/soak` runs it): `LIAISON_SIM_SEEDS` seeds (default
/// 100,000) from `LIAISON_SIM_FIRST_SEED` (default 1,000,000) of
/// `LIAISON_SIM_STEPS` steps, on all cores, with a progress line every
/// `LIAISON_SIM_PROGRESS` seeds (default 100). Every failure is shrunk (at
/// most `LIAISON_SIM_SHRINK_SECS` seconds each, default 120) and written
/// with its whole and shrunk schedules to `LIAISON_SIM_FAILURES` (default
/// `target/soak-failures.txt`); the run goes on past failures and fails at
/// the end if there were any.
#[test]
#[ignore = "soak: LIAISON_SIM_SEEDS seeds (default 100000), best with --release; see scripts/soak"]
fn sim_soak_seeds() {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    let count = env_u64("LIAISON_SIM_SEEDS").unwrap_or(100_000);
    let first = env_u64("LIAISON_SIM_FIRST_SEED").unwrap_or(1_000_000);
    let every = env_u64("LIAISON_SIM_PROGRESS").unwrap_or(100).max(1);
    let shrink_budget = Duration::from_secs(env_u64("LIAISON_SIM_SHRINK_SECS").unwrap_or(120));
    let failures_path = std::env::var("LIAISON_SIM_FAILURES").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/soak-failures.txt").into()
    });
    let config = config(variant_from_env());
    println!(
        "soak: seeds {first}..{} of {} steps; failures to {failures_path}",
        first + count,
        config.steps
    );
    let started = std::time::Instant::now();
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let summary = run_seeds(first..first + count, &config, &|run| {
        if run.failure.is_some() {
            failed.fetch_add(1, Ordering::Relaxed);
            println!("FAILED {}", run.summary());
        }
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(every) || n == count {
            let elapsed = started.elapsed().as_secs_f64();
            let left = elapsed / n as f64 * (count - n) as f64;
            println!(
                "{n}/{count} seeds, {} failed, {elapsed:.0} s, about {left:.0} s left",
                failed.load(Ordering::Relaxed)
            );
        }
        false
    });
    println!(
        "{} schedules of {} steps in {:.1?}: {} failed\n{}",
        summary.runs,
        config.steps,
        summary.elapsed,
        summary.failures.len(),
        summary.stats
    );
    let mut file = std::fs::File::create(&failures_path)
        .unwrap_or_else(|e| panic!("cannot write {failures_path}: {e}"));
    let _ = writeln!(
        file,
        "soak: seeds {first}..{} of {} steps: {} runs, {} failed, {:.1?}",
        first + count,
        config.steps,
        summary.runs,
        summary.failures.len(),
        summary.elapsed
    );
    for failure in &summary.failures {
        let shrunk = shrink(failure, &config, shrink_budget);
        let _ = writeln!(
            file,
            "\n==== seed {} (`{}`)\n{}\nshrunk to {} scheduled steps:\n{}",
            failure.seed,
            failure.failed_check().unwrap_or("?"),
            failure.report(),
            shrunk.schedule.len(),
            shrunk.report()
        );
        println!(
            "seed {} shrunk to {} steps (written to {failures_path})",
            failure.seed,
            shrunk.schedule.len()
        );
    }
    if !summary.failures.is_empty() {
        let seeds: Vec<u64> = summary.failures.iter().map(|r| r.seed).collect();
        panic!(
            "{} of {} seeds failed: {seeds:?}; schedules in {failures_path}",
            seeds.len(),
            summary.runs
        );
    }
}
