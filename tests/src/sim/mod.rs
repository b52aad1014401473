//! A deterministic simulator of a federation (issue 7, docs/replication.md): three to
//! five nodes in one process, each with its own SQLite file (so a crash
//! keeps what was committed), its own clock and its own certificate, driven
//! by one seeded scheduler through the production protocol core
//! (`liaison_core`). Only the network and the faults are simulated.
//!
//! # What a step can be
//!
//! [`step::Step`]: an operator action at a node (member add/update, outflow
//! register/return, host section, contact, activity, contact status,
//! agreement propose/counter/accept/reject/terminate, transfer
//! start/accept/reject/cancel/extend/reissue and out on paper, peer remove
//! (with or without `--force`) and re-add, the calendar tick);
//! a delivery on a pull stream (possibly only a prefix, after which the
//! stream breaks); a batch sent ahead; a duplicated old batch; a lost
//! stream; a crash (between steps, in the middle of an action's
//! transaction, or in `apply_batch` at the moment the cursor advances); a
//! restart; clock advances (together with jitter, or one node alone); a
//! partition and its healing; a forged event a node slips into its log; a
//! backup (`store::backup`) and a restore from one of the node's earlier
//! backups (docs/restore.md: the file replaced, a new log id; the node adopts
//! each peer's holdings when it next opens a stream from it, as the pull
//! client does, and serves a peer only once it adopted it; operators may go
//! on `--without-peer`).
//! Operator actions may be refused (wrong state): they are counted.
//!
//! # The network
//!
//! A receiver pulls as the node does (`federation::client`): a stream opens
//! at the receiver's cursor for the origin's log id; the origin reads
//! batches with `log::read_batch` from its own position on that stream; the
//! receiver applies them in order with `apply::apply_batch`, whose guard
//! skips what is at or below its cursor. Anything that breaks a stream
//! (loss, a partial delivery, a crash, a partition) drops what was in
//! flight; the next pull starts again from the cursor.
//!
//! # The checks
//!
//! After every step, [`invariants`] (shared with the end-to-end tests):
//! single owner, copies only under an agreement the host holds active,
//! exactly-once per (origin, log id, receiver), every record's author its
//! authority (tombstones only for released transfers and without personal
//! data; records carried or relayed with a transferred member), quarantine
//! holding only forged events; after a restore, a reconciling node owns
//! nothing and acts as no owner (every owner action is refused, or the run
//! fails). At the end of a run: all partitions healed,
//! all nodes restarted, every removed peer added again, everything
//! delivered and every calendar run until nothing moves, then convergence
//! (agreements the same on both sides, copies current and covered, host
//! records the same at host and owner); then every clock past the latest
//! agreement end plus grace and the latest letter plus the receiver's
//! grace, quiescence again, everything ended everywhere with no copy left,
//! and every member ever offered converged as `crate::ownership::converged`
//! (the end-to-end tests' check) states it: one owner holding what was
//! released, tombstones elsewhere, every transfer final on both sides, no
//! offered record left at a receiver.
//!
//! # Determinism
//!
//! The only randomness is `StdRng::seed_from_u64(seed)`. Record ids come
//! from `Ctx::new_id` (UUIDv7 with random low bits, not seeded), so ids
//! differ between runs, but their order does not: every node's clock stays
//! on its own residue modulo [`world::TICK_MS`] and moves forward by at least
//! that much before each action, so no two ids share a millisecond. Log ids
//! differ too (they are only compared for equality). Dates are relative to
//! 09:00 China time on the day after the test process started, so a seed
//! replays the same within a day and the same up to calendar quirks
//! (month lengths) across days.
//!
//! # Broken variants
//!
//! [`world::Variant`] switches on the core's test-only faults
//! (`core::apply::Faults`): skipping the authority checks at one node,
//! advancing the cursor in a transaction of its own, and a receiver that
//! owns a member as soon as it accepts the offer. `tests/tests/sim.rs`
//! asserts that each is caught within the CI seed budget.

pub mod gen;
pub mod invariants;
pub mod run;
pub mod schedule;
pub mod shrink;
pub mod step;
pub mod world;

pub use run::{replay, run_seed, run_seeds, Run, Setup, SimConfig, Summary};
pub use shrink::{shrink, shrink_logged, Shrunk};
pub use world::Variant;
