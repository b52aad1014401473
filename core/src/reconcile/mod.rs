//! Backup, restore and reconcile (docs/restore.md).
//!
//! A restored node (a backup copied into place, or a new database under a
//! node id its peers already know) forgot what it did after the backup,
//! while its peers remember. It takes a new log id (a new *epoch*) and,
//! before it acts as an owner again, asks every peer what that peer holds
//! from it and adopts it. Plain synchronous code over a SQLite connection
//! and a [`Ctx`](crate::Ctx), like the rest of the core: the gRPC edge only moves the
//! messages, and the simulator drives the same functions.
//!
//! # API and order of calls
//!
//! Restored side (node R):
//! 1. [`begin_restore_if_marked`]`(&mut conn, &ctx) -> Option<ReconcileStart>`
//!    on every open: a database written by `liaisonctl backup` carries the
//!    `backup_taken_at_ms` mark in `meta`; its first open calls
//!    [`begin_restore`]`(&mut conn, &ctx)`, which gives it a new log id, puts
//!    every peer in `waiting` and the node in the reconciling state. A new
//!    database under a known node id is found at `Hello`: the peer answers
//!    the log ids of R it holds cursors for, and
//!    [`note_log_ids_held`]`(&mut conn, &ctx, peer, &ids) -> Option<ReconcileStart>`
//!    begins the restore when one of them is a log id R never had.
//! 2. For each peer P with [`needs_holdings`]`(&conn, P)`: get P's answer
//!    (P runs [`holdings_for`]), then
//!    [`adopt`]`(&mut conn, &ctx, P, &batches) -> AdoptReport`, one
//!    transaction: cursor-based clean-up of the old log, sequence numbers,
//!    letter numbers and version counters jump past what P holds, records
//!    R authored are adopted back, the transfer rule, the re-emission of the
//!    home sections and `EpochComplete` for P. **Adopt a peer before
//!    applying its log** (`apply_batch` of P's events): P's events after the
//!    backup answer R's forgotten actions (an accept of a transfer R no
//!    longer knows), and only adoption makes R know them again.
//! 3. Serve P's `Pull` only once [`may_serve`]`(&conn, P)`: until P is
//!    adopted, R's log still holds old-epoch events P already applied.
//! 4. [`skip_peer`]`(&mut conn, &ctx, P, actor)` goes on without an
//!    unreachable P (`reconcile --without-peer`); P is still adopted when it
//!    comes back. [`finish`]`(&mut conn, &ctx)` ends reconciliation once no
//!    peer is `waiting`; `adopt` and `skip_peer` call it themselves.
//! 5. While [`is_reconciling`](crate::epoch::is_reconciling), every owner
//!    action refuses itself ([`act_as_owner`](crate::epoch::act_as_owner),
//!    the first thing each does) and the calendar makes no owner decisions;
//!    [`apply_batch`](crate::apply::apply_batch) refuses P's log until P is
//!    adopted.
//!
//! A simulator restores node R like this: take the backup with
//! `store::backup(&conn, path, now_ms)` (or copy the file and call
//! [`mark_backup`] on the copy), later open the copy with `Store::open` (it
//! migrates), call [`begin_restore_if_marked`], then for each peer P, on a
//! step where P is reachable: `let b = holdings_for(&p_conn, &p_ctx, &R, &epoch::branch(&r_conn)?)?;
//! adopt(&mut r_conn, &r_ctx, &P, &b)?;` and only then deliver P's log to R
//! (`read_batch` at P from R's cursor, `apply_batch` at R) and R's log to P,
//! if [`may_serve`]: from seq 0 under R's new log id, since a cursor is keyed
//! by (origin, log id). R's old-epoch events that P had not applied are
//! still in R's log and reach P under the new log id; those P had applied
//! are gone. `skip_peer` stands for `reconcile --without-peer`.
//!
//! Taking holdings again (node P, restored once, adopted R since): when R
//! writes under a log id P took no holdings under (R was restored since,
//! perhaps to a backup holding what P forgot and adopted R without),
//! [`awaits_retake`]`(&conn, R, log_id)` holds and `apply_batch` refuses
//! R's log. Once R [`may_serve`] P (R adopted P), P gets R's answer
//! ([`holdings_for`], asked with `retake` set) and calls
//! [`retake`]`(&mut conn, &ctx, R, &batches)`: the comparisons of an
//! adoption, without touching P's log or stopping P acting as an owner.
//!
//! Peer side (node P): [`holdings_for`]`(&conn, &ctx, R, branch) -> Vec<HoldingsBatch>`
//! answers R's `Holdings` call, which names R's branch
//! ([`epoch::branch`](crate::epoch::branch): each earlier log R descends
//! from and how far R kept it); refused where an earlier restore of R left
//! one of those logs at an earlier point (R was restored from a backup of
//! a branch it left; [`refuse_left_branch`]); `apply_batch` records under which log id of
//! R each home-section copy arrived and applies R's `EpochComplete`
//! ([`apply_epoch_complete`](crate::hosting::apply_epoch_complete)): the
//! copies of R's members that arrived under an older log id and were not
//! sent again are deleted. Only home-section
//! copies are: every other record R authored was adopted back by R.
//!
//! Layout, bottom to top (each file uses only those before it): `restore`
//! (a restore's course), `report`, `agreement` (adopting one agreement),
//! `own_records` (step 4b), `adopt` (the steps in order), `peer_side`.

mod adopt;
mod agreement;
mod own_records;
mod peer_side;
mod report;
mod restore;

pub use crate::epoch::awaits_retake;
pub use adopt::{adopt, retake};
pub use peer_side::{
    holdings_for, refuse_left_branch, send_holdings, HOLDINGS_BATCH_BYTES, HOLDINGS_BATCH_RECORDS,
};
pub use report::AdoptReport;
pub use restore::{
    begin_restore, begin_restore_if_marked, branch_after_restore, finish, left_branch, lost_period,
    mark_backup, may_serve, needs_holdings, note_holdings_refused, note_log_ids_held, peer_added,
    skip_peer, status, LeftBranch, ReconcileStart,
};
