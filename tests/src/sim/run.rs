//! Running a seed: set-up, the scheduled steps with every invariant checked
//! after each, the end phase (heal, restart, quiesce, converge; then every
//! clock past every end plus grace, quiesce, converge again), replays of a
//! recorded schedule, and many seeds on all cores (shrinking is in
//! [`super::shrink`]).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use liaison_core::agreements::GRACE_DAYS;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::gen;
use super::step::{Action, Scheduled, Step};
use super::world::{Failure, Outcome, Stats, Variant, World, DAY_MS, TICK_MS};

/// What a run is made of.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Scheduled steps (the end phase comes on top).
    pub steps: usize,
    pub variant: Variant,
    /// Fixed node count; `None`: 3 to 5, from the seed.
    pub nodes: Option<usize>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            steps: 200,
            variant: Variant::default(),
            nodes: None,
        }
    }
}

/// The seed's set-up: how many nodes, their initial clock skews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    pub nodes: usize,
    pub skews: Vec<i64>,
}

/// One line of a run's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    pub step: String,
    pub outcome_kind: &'static str,
    pub outcome: String,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub seed: u64,
    pub setup: Setup,
    pub names: Vec<String>,
    /// The scheduled steps (what a replay or a shrink feeds back).
    pub schedule: Vec<Scheduled>,
    /// Every step executed, the end phase included.
    pub trace: Vec<TraceEntry>,
    pub stats: Stats,
    /// The failed check, and the index in `trace` of the step after which it failed.
    pub failure: Option<(usize, Failure)>,
    pub elapsed: Duration,
}

impl Run {
    pub fn failed_check(&self) -> Option<&str> {
        self.failure.as_ref().map(|(_, f)| f.check.as_str())
    }

    /// One line: the seed and its counts.
    pub fn summary(&self) -> String {
        format!(
            "seed {}: {} nodes, {} scheduled + {} end-phase steps, {}{} [{:.0?}]",
            self.seed,
            self.setup.nodes,
            self.schedule.len(),
            self.trace.len().saturating_sub(self.schedule.len()),
            self.stats,
            match &self.failure {
                Some((at, f)) => format!(" — FAILED `{}` after step {at}: {}", f.check, f.detail),
                None => String::new(),
            },
            self.elapsed
        )
    }

    /// The failure, the seed to replay it with, and the whole trace.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.summary());
        if let Some((at, failure)) = &self.failure {
            let _ = writeln!(
                out,
                "after step {at}: invariant `{}` violated: {}",
                failure.check, failure.detail
            );
        }
        let _ = writeln!(
            out,
            "nodes: {}; clocks ahead at the start (ms, for `schedule_skewed`): {:?}; replay: LIAISON_SIM_SEED={} cargo test -p liaison-tests --test sim sim_",
            self.names.join(", "),
            self.setup
                .skews
                .iter()
                .map(|ticks| ticks * TICK_MS)
                .collect::<Vec<_>>(),
            self.seed
        );
        let _ = writeln!(out, "schedule:");
        for (i, e) in self.trace.iter().enumerate() {
            let marker = if i == self.schedule.len() {
                "--- end phase ---\n"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{marker}{i:4} {}  → {} {}",
                e.step, e.outcome_kind, e.outcome
            );
        }
        out
    }
}

/// Ids of the end phase's steps (after any scheduled one).
const END_PHASE: usize = 1_000_000_000;

/// Executes one step, records it, checks every invariant.
fn step(world: &mut World, trace: &mut Vec<TraceEntry>, step: &Step) -> Result<(), Failure> {
    scheduled(
        world,
        trace,
        &Scheduled {
            id: END_PHASE + trace.len(),
            step: step.clone(),
        },
    )
}

fn scheduled(
    world: &mut World,
    trace: &mut Vec<TraceEntry>,
    next: &Scheduled,
) -> Result<(), Failure> {
    let step = &next.step;
    let description = world.describe(step);
    let started = Instant::now();
    let result = world.execute(next.id, step);
    world.stats.time_steps += started.elapsed();
    let (kind, text) = match &result {
        Ok(o @ (Outcome::Done(t) | Outcome::Refused(t) | Outcome::Skipped(t))) => {
            (o.kind(), t.clone())
        }
        Err(f) => ("failed", f.check.clone()),
    };
    trace.push(TraceEntry {
        step: description,
        outcome_kind: kind,
        outcome: text,
    });
    result?;
    let started = Instant::now();
    let checked = world.check();
    world.stats.time_checks += started.elapsed();
    checked
}

/// Delivers everything and runs every calendar until nothing moves.
fn quiesce(world: &mut World, trace: &mut Vec<TraceEntry>) -> Result<(), Failure> {
    let n = world.nodes.len();
    for _round in 0..50 {
        for at in 0..n {
            step(
                world,
                trace,
                &Step::Act {
                    at,
                    action: Action::Tick,
                    crash: false,
                },
            )?;
        }
        let mut moved = false;
        for _ in 0..200 {
            let mut any = false;
            for from in 0..n {
                for to in 0..n {
                    if from != to && world.backlog(from, to) {
                        any = true;
                        step(
                            world,
                            trace,
                            &Step::Deliver {
                                from,
                                to,
                                limit: 64,
                                prefix: None,
                                crash: false,
                            },
                        )?;
                    }
                }
            }
            if !any {
                break;
            }
            moved = true;
        }
        if !moved {
            return Ok(());
        }
    }
    Err(Failure {
        check: "quiescence".into(),
        detail: "messages still flow after 50 rounds of delivering everything and ticking every calendar".into(),
    })
}

/// The end phase: heal every partition, restart every node, re-add every
/// removed peer, quiesce and
/// check convergence; then move every clock past every agreement's end plus
/// the grace period, quiesce, and check that everything ended everywhere.
fn finish(world: &mut World, trace: &mut Vec<TraceEntry>) -> Result<(), Failure> {
    for (a, b) in world.partitions.clone() {
        step(world, trace, &Step::Heal { a, b })?;
    }
    for node in 0..world.nodes.len() {
        step(world, trace, &Step::Restart { node })?;
    }
    for (at, peer) in world.removed.clone() {
        step(
            world,
            trace,
            &Step::Act {
                at,
                action: Action::PeerReAdd { peer },
                crash: false,
            },
        )?;
    }
    quiesce(world, trace)?;
    world.check_converged(false)?;
    world.record_coverage(false);
    let target = world.latest_end_ms() + (GRACE_DAYS + 2) * DAY_MS;
    let deltas_ms = world
        .nodes
        .iter()
        .map(|n| ((target - n.now_ms).max(0) + TICK_MS - 1) / TICK_MS * TICK_MS)
        .collect();
    step(world, trace, &Step::Advance { deltas_ms })?;
    quiesce(world, trace)?;
    world.check_converged(true)?;
    world.record_coverage(true);
    Ok(())
}

fn setup_of(seed: u64, config: &SimConfig, rng: &mut StdRng) -> Setup {
    let nodes = config.nodes.unwrap_or_else(|| rng.random_range(3..=5));
    let skews = (0..nodes)
        .map(|_| rng.random_range(0..=6 * 3_600_000 / TICK_MS))
        .collect();
    let _ = seed;
    Setup { nodes, skews }
}

/// With `LIAISON_SIM_LOG` set (a filter such as `info` or
/// `liaison_core=debug`), the nodes' log lines go to stderr, each inside
/// the span of the step that made it (`step{n=…}`): for reading a replayed
/// schedule. Off by default: a soak runs millions of steps.
fn log_if_asked() {
    if let Ok(filter) = std::env::var("LIAISON_SIM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_target(false)
            .try_init();
    }
}

/// Runs `steps` (generated from `rng` when it is given, else replayed from
/// `schedule`), then the end phase.
fn execute(
    seed: u64,
    setup: Setup,
    config: &SimConfig,
    mut rng: Option<StdRng>,
    schedule: &[Scheduled],
) -> Run {
    log_if_asked();
    let started = Instant::now();
    let mut world = World::new(setup.nodes, &setup.skews, config.variant);
    let mut trace = Vec::new();
    let mut done: Vec<Scheduled> = Vec::new();
    let count = if rng.is_some() {
        config.steps
    } else {
        schedule.len()
    };
    let mut failure = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut replayed = schedule.iter();
        for id in 0..count {
            let next = match (rng.as_mut(), replayed.next()) {
                (Some(rng), _) => Scheduled {
                    id,
                    step: gen::next_step(rng, &world),
                },
                (None, Some(recorded)) => recorded.clone(),
                (None, None) => break,
            };
            done.push(next.clone());
            let _step = tracing::info_span!("step", n = trace.len()).entered();
            scheduled(&mut world, &mut trace, &next)?;
        }
        let _end = tracing::info_span!("end_phase").entered();
        finish(&mut world, &mut trace)
    }));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(f)) => failure = Some((trace.len().saturating_sub(1), f)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".into());
            failure = Some((
                trace.len().saturating_sub(1),
                Failure {
                    check: "panic".into(),
                    detail: message,
                },
            ));
        }
    }
    if let Some((_, f)) = failure.as_mut() {
        f.detail = world.alias_ids(&f.detail);
    }
    Run {
        seed,
        names: world.names.clone(),
        setup,
        schedule: done,
        trace,
        stats: world.stats.clone(),
        failure,
        elapsed: started.elapsed(),
    }
}

/// Runs one seed: the only randomness is `StdRng::seed_from_u64(seed)`.
pub fn run_seed(seed: u64, config: &SimConfig) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let setup = setup_of(seed, config, &mut rng);
    execute(seed, setup, config, Some(rng), &[])
}

/// Replays a recorded schedule (no generator).
pub fn replay(seed: u64, setup: &Setup, config: &SimConfig, schedule: &[Scheduled]) -> Run {
    execute(seed, setup.clone(), config, None, schedule)
}

/// What many seeds came to.
#[derive(Debug, Default)]
pub struct Summary {
    pub runs: u64,
    pub stats: Stats,
    /// Failed runs, by seed.
    pub failures: Vec<Run>,
    pub elapsed: Duration,
}

/// Runs `seeds` on all cores, each seed handed out in order. `on_run` sees
/// every run as it completes (to print its line); once it returns `true`,
/// no further seed is started (those running finish, so every seed below
/// the one that stopped it has run).
pub fn run_seeds(
    seeds: std::ops::Range<u64>,
    config: &SimConfig,
    on_run: &(dyn Fn(&Run) -> bool + Sync),
) -> Summary {
    let started = Instant::now();
    let next = AtomicU64::new(seeds.start);
    let stop = AtomicBool::new(false);
    let summary = Mutex::new(Summary::default());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    break;
                }
                let run = run_seed(seed, config);
                if on_run(&run) {
                    stop.store(true, Ordering::Relaxed);
                }
                let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
                s.runs += 1;
                s.stats.add(&run.stats);
                if run.failure.is_some() {
                    s.failures.push(run);
                }
            });
        }
    });
    let mut summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    summary.failures.sort_by_key(|r| r.seed);
    summary.elapsed = started.elapsed();
    summary
}
