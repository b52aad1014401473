//! A restore's course: beginning it (a backup opened for the first time,
//! or a new database under a known node id), each peer's progress, going
//! on without a peer, and the end.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use liaison_types::time::Tz;
use rusqlite::TransactionBehavior;
use rusqlite::{params, Connection, OptionalExtension};

use crate::epoch::{is_own_log_id, is_reconciling, restore_row, was_restored};
use crate::store::audit::{self, Actor, NewEntry, Outcome};
use crate::store::BACKUP_MARK;
use crate::store::{get_meta, set_meta};
use crate::{Ctx, Error};

/// Why and since when a node reconciles, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileStart {
    pub previous_log_id: String,
    pub log_id: String,
    /// When the backup was taken; 0 for a new database under a known id.
    pub backup_at_ms: i64,
    pub restored_at_ms: i64,
}

/// Marks a copy of a database as a backup taken at `taken_at_ms` (what
/// `store::backup` does; for the simulator, which copies files itself).
pub fn mark_backup(conn: &Connection, taken_at_ms: i64) -> Result<(), Error> {
    set_meta(conn, BACKUP_MARK, &taken_at_ms.to_string())
}

/// On every open: begins the restore if this database is a backup copy
/// opened for the first time.
pub fn begin_restore_if_marked(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
) -> Result<Option<ReconcileStart>, Error> {
    if get_meta(conn, BACKUP_MARK)?.is_none() {
        return Ok(None);
    }
    begin_restore(conn, ctx).map(Some)
}

/// A peer said at `Hello` under which log ids of ours it holds cursors. One
/// this database never had means we are a new database under a node id the
/// peer already knows (docs/authority.md): begin the restore.
pub fn note_log_ids_held(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    log_ids: &[String],
) -> Result<Option<ReconcileStart>, Error> {
    let mut unknown = None;
    for log_id in log_ids {
        if !is_own_log_id(conn, log_id)? {
            unknown = Some(log_id);
            break;
        }
    }
    let Some(unknown) = unknown else {
        return Ok(None);
    };
    // A node restored once learns the rest of its old log ids when it
    // adopts; a skipped peer that reports one later starts nothing.
    if restore_row(conn)?.is_some() {
        return Ok(None);
    }
    tracing::warn!(%peer, log_id = %unknown, "peer holds a log of this node id that this database never had: reconciling");
    begin_restore(conn, ctx).map(Some)
}

/// What opening a restored copy does: a new log id, every peer `waiting`,
/// the node reconciling. Audited.
pub fn begin_restore(conn: &mut Connection, ctx: &Ctx<'_>) -> Result<ReconcileStart, Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let previous_log_id = get_meta(&tx, "log_id")?.unwrap_or_default();
    // The log ids whose sequence numbers are this file's (see `adopt`): the
    // one it was restored from joins those it descends from. A log of
    // another branch, learned from a peer's cursors, stays one: a backup
    // taken since does not make its numbers this file's.
    if !previous_log_id.is_empty() {
        tx.execute(
            "INSERT INTO past_log_ids (log_id, lineage) VALUES (?1, 1)
             ON CONFLICT (log_id) DO UPDATE SET lineage = 1",
            [&previous_log_id],
        )?;
    }
    // On the injected clock, like every id the core makes.
    let log_id = ctx.new_id();
    let backup_at_ms = crate::store::backup_taken_at_ms(&tx)?.unwrap_or(0);
    let (_, seq_floor) = log_place(&tx)?;
    set_meta(&tx, "log_id", &log_id)?;
    // This file keeps the log it was restored from up to `seq_floor`: a
    // backup of that log taken later is of a branch this file left.
    if !previous_log_id.is_empty() {
        tx.execute(
            "INSERT INTO branch_logs (log_id, last_seq) VALUES (?1, ?2)
             ON CONFLICT (log_id) DO UPDATE SET last_seq = excluded.last_seq",
            params![previous_log_id, seq_floor],
        )?;
    }
    // The letters this database knows it issued; peers' reports of later
    // ones are believed (`transfers::adopt_reported`).
    let letter_floor = crate::letters::last_issued(&tx)?;
    tx.execute(
        "INSERT OR REPLACE INTO restore (id, reconciling, restored_at_ms, backup_at_ms, previous_log_id, seq_floor,
             letter_floor, letter_floor_year, finished_at_ms)
         VALUES (1, 1, ?1, ?2, ?3, ?4, ?5, ?6, 0)",
        params![
            ctx.now_ms.max(1),
            backup_at_ms,
            previous_log_id,
            seq_floor,
            letter_floor.number,
            letter_floor.year
        ],
    )?;
    tx.execute("DELETE FROM meta WHERE key = ?1", [BACKUP_MARK])?;
    // An earlier epoch's ends, still queued, name a log id that is no
    // longer this one's: the re-emission ends each peer's anew.
    tx.execute(
        "DELETE FROM events WHERE kind = ?1",
        [EventKind::EpochComplete as i32],
    )?;
    tx.execute("DELETE FROM reconcile_peers", [])?;
    tx.execute(
        "INSERT INTO reconcile_peers (peer, state, updated_at_ms) SELECT node_id, 'waiting', ?1 FROM peers",
        [ctx.now_ms],
    )?;
    let start = ReconcileStart {
        previous_log_id,
        log_id,
        backup_at_ms,
        restored_at_ms: ctx.now_ms,
    };
    audit::append(
        &tx,
        ctx.now_ms,
        &NewEntry {
            actor: &Actor::Node,
            action: "reconcile.begin",
            target: &start.log_id,
            outcome: Outcome::Ok,
            detail: &format!(
                "restored: log id {} replaces {}; {}",
                start.log_id,
                start.previous_log_id,
                lost_period(ctx.zone, backup_at_ms, ctx.now_ms)
            ),
        },
    )?;
    tx.commit()?;
    finish(conn, ctx)?;
    Ok(start)
}

/// A backup that holds a branch of this node's history the database in
/// place has left (docs/restore.md, A backup of a branch the node left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftBranch {
    /// The backup's log id and the last sequence number it wrote.
    pub log_id: String,
    pub seq: u64,
    /// The last sequence number of that log on the branch in place, if
    /// known; `None`: the log is not on that branch at all.
    pub kept_to: Option<u64>,
    /// The latest restore of the database in place (ms): when it was
    /// restored, and when the backup it was restored from was taken.
    pub restored_at_ms: i64,
    pub restored_backup_at_ms: i64,
}

/// The log id of a database and the last sequence number it wrote.
fn log_place(conn: &Connection) -> Result<(String, u64), Error> {
    let log_id = get_meta(conn, "log_id")?.unwrap_or_default();
    let seq: u64 = conn
        .query_row(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    Ok((log_id, seq))
}

/// The branch a database restored from `backup` would name
/// ([`epoch::branch`](crate::epoch::branch) after [`begin_restore`]): the
/// backup's own branch, and its log up to the last change it wrote.
pub fn branch_after_restore(backup: &Connection) -> Result<Vec<pb::LogCursor>, Error> {
    let mut branch = crate::epoch::branch(backup)?;
    let (log_id, seq) = log_place(backup)?;
    if !log_id.is_empty() {
        branch.retain(|point| point.log_id != log_id);
        branch.push(pb::LogCursor { log_id, seq });
    }
    Ok(branch)
}

/// Whether putting `backup` in place of `current` (both this node's
/// databases) would bring back a branch of the node's history that
/// `current` left when it was restored from an earlier backup: its
/// peers have moved on from that branch (they adopted the restore and
/// what the node did since), so what the backup holds past the branch
/// point would stand beside what replaced it. A backup on the branch in
/// place (taken under the log in place, or under an earlier log of the
/// branch at or before the point where the branch left it) is fine, and
/// so is any backup when `current` was never restored or does not know
/// where it left a log (a restore before this was recorded, or a new
/// database under a known node id still learning its earlier logs).
pub fn left_branch(current: &Connection, backup: &Connection) -> Result<Option<LeftBranch>, Error> {
    let Some(restore) = restore_row(current)? else {
        return Ok(None);
    };
    let (current_log_id, _) = log_place(current)?;
    let (log_id, seq) = log_place(backup)?;
    if log_id.is_empty() || log_id == current_log_id {
        return Ok(None);
    }
    let kept: Option<Option<u64>> = current
        .query_row(
            "SELECT last_seq FROM branch_logs WHERE log_id = ?1",
            [&log_id],
            |r| r.get(0),
        )
        .optional()?;
    let kept_to = match kept {
        Some(None) => return Ok(None),
        Some(Some(last)) if seq <= last => return Ok(None),
        Some(Some(last)) => Some(last),
        // A new database under a known node id learns its earlier logs
        // from its peers when it adopts them, where they join its branch.
        None if restore.backup_at_ms == 0 => return Ok(None),
        None => None,
    };
    Ok(Some(LeftBranch {
        log_id,
        seq,
        kept_to,
        restored_at_ms: restore.restored_at_ms,
        restored_backup_at_ms: restore.backup_at_ms,
    }))
}

fn format_ms(zone: Tz, ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// The period of local writes that may be lost, in words.
/// Times are shown in `zone`, the node's.
pub fn lost_period(zone: Tz, backup_at_ms: i64, restored_at_ms: i64) -> String {
    if backup_at_ms == 0 {
        return format!(
            "a new database under a known node id: every local write before {} that no peer holds is lost",
            format_ms(zone, restored_at_ms)
        );
    }
    format!(
        "local writes from the backup ({}) to the restore ({}) that no peer holds are lost",
        format_ms(zone, backup_at_ms),
        format_ms(zone, restored_at_ms)
    )
}

fn peer_state(conn: &Connection, peer: &NodeId) -> Result<Option<String>, Error> {
    peer_state_of(conn, peer.as_str())
}

pub(super) fn peer_state_of(conn: &Connection, peer: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached("SELECT state FROM reconcile_peers WHERE peer = ?1")?
        .query_row([peer], |r| r.get(0))
        .optional()?)
}

/// Whether this node must still ask `peer` for its holdings (waiting, or
/// skipped by an operator and now back).
pub fn needs_holdings(conn: &Connection, peer: &NodeId) -> Result<bool, Error> {
    crate::epoch::awaits_adoption(conn, peer.as_str())
}

/// Whether `peer` may pull our log: not until its holdings are adopted,
/// since until then the log still holds old-epoch events it applied.
pub fn may_serve(conn: &Connection, peer: &NodeId) -> Result<bool, Error> {
    needs_holdings(conn, peer).map(|needs| !needs)
}

/// A peer added (or added again) to a node that was restored from a backup
/// may hold what this node forgot, e.g. a peer removed when the backup was
/// taken: it is reconciled with like the others, and until it answered the
/// node acts as no owner. A node never restored has nothing to learn.
pub fn peer_added(conn: &Connection, peer: &NodeId, now_ms: i64) -> Result<(), Error> {
    if !was_restored(conn)? || peer_state(conn, peer)?.is_some() {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO reconcile_peers (peer, state, updated_at_ms, detail) VALUES (?1, 'waiting', ?2, 'added after the restore')",
        params![peer.as_str(), now_ms],
    )?;
    conn.execute("UPDATE restore SET reconciling = 1 WHERE id = 1", [])?;
    Ok(())
}

/// Goes on without `peer` (an operator's `reconcile --without-peer`): it no
/// longer blocks, and is still adopted when it comes back. Audited.
pub fn skip_peer(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    actor: &Actor,
) -> Result<bool, Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    match peer_state(&tx, peer)?.as_deref() {
        Some("waiting") => {}
        Some(state) => {
            return Err(Error::conflict(format!(
                "{peer} is already {state}: `reconcile status` shows the peers"
            )))
        }
        None => {
            return Err(Error::not_found(format!(
                "{peer} is not a peer this node reconciles with: `reconcile status` shows them"
            )))
        }
    }
    let detail = format!(
        "an operator went on without {peer}: a member {peer} received by a transfer this node forgot has two owners until {peer} returns; then {peer}'s completed transfer makes it a tombstone here"
    );
    tx.execute(
        "UPDATE reconcile_peers SET state = 'skipped', updated_at_ms = ?2, detail = ?3 WHERE peer = ?1",
        params![peer.as_str(), ctx.now_ms, detail],
    )?;
    audit::append(
        &tx,
        ctx.now_ms,
        &NewEntry {
            actor,
            action: "reconcile.without_peer",
            target: peer.as_str(),
            outcome: Outcome::Ok,
            detail: &detail,
        },
    )?;
    tx.commit()?;
    finish(conn, ctx)
}

/// A waiting peer refused its holdings (`refusal`, its words): this
/// node was restored from a backup of a branch of its history that the
/// peer knows it left. The peer stays waiting, the refusal shows in
/// `reconcile status`, and the audit log records it once per distinct
/// refusal. Nothing else changes: the operator restores again.
pub fn note_holdings_refused(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    refusal: &str,
) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let detail = format!("refused its holdings: {refusal}");
    let changed = tx.execute(
        "UPDATE reconcile_peers SET updated_at_ms = ?2, detail = ?3
         WHERE peer = ?1 AND state = 'waiting' AND detail IS NOT ?3",
        params![peer.as_str(), ctx.now_ms, detail],
    )?;
    if changed > 0 {
        audit::append(
            &tx,
            ctx.now_ms,
            &NewEntry {
                actor: &Actor::Peer(peer.to_string()),
                action: "reconcile.refused",
                target: peer.as_str(),
                outcome: Outcome::Refused,
                detail: &detail,
            },
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Ends reconciliation once no peer is waiting. Returns whether the node
/// reconciles no more.
pub fn finish(conn: &mut Connection, ctx: &Ctx<'_>) -> Result<bool, Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !is_reconciling(&tx)? {
        return Ok(true);
    }
    let waiting: u64 = tx.query_row(
        "SELECT COUNT(*) FROM reconcile_peers WHERE state = 'waiting'",
        [],
        |r| r.get(0),
    )?;
    if waiting > 0 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE restore SET reconciling = 0, finished_at_ms = ?1 WHERE id = 1",
        [ctx.now_ms.max(1)],
    )?;
    let restore = restore_row(&tx)?;
    let lost = lost_period(
        ctx.zone,
        restore.as_ref().map_or(0, |r| r.backup_at_ms),
        restore.as_ref().map_or(0, |r| r.restored_at_ms),
    );
    audit::append(
        &tx,
        ctx.now_ms,
        &NewEntry {
            actor: &Actor::Node,
            action: "reconcile.finish",
            target: ctx.me.as_str(),
            outcome: Outcome::Ok,
            detail: &format!("reconciled with every peer; {lost}"),
        },
    )?;
    tx.commit()?;
    tracing::info!(lost = %lost, "reconciliation finished: acting as an owner again");
    Ok(true)
}

/// Progress of the reconciliation, per peer; times in words in `zone`.
pub fn status(conn: &Connection, zone: Tz) -> Result<pb::ReconcileStatus, Error> {
    let peers = conn
        .prepare("SELECT peer, state, updated_at_ms, detail FROM reconcile_peers ORDER BY peer")?
        .query_map([], |r| {
            Ok(pb::ReconcilePeer {
                peer: r.get(0)?,
                state: r.get(1)?,
                updated_at_ms: r.get(2)?,
                detail: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let restore = restore_row(conn)?;
    let restored_at_ms = restore.as_ref().map_or(0, |r| r.restored_at_ms);
    let backup_at_ms = restore.as_ref().map_or(0, |r| r.backup_at_ms);
    Ok(pb::ReconcileStatus {
        reconciling: restore.as_ref().is_some_and(|r| r.reconciling),
        log_id: get_meta(conn, "log_id")?.unwrap_or_default(),
        previous_log_id: restore
            .as_ref()
            .map(|r| r.previous_log_id.clone())
            .unwrap_or_default(),
        backup_at_ms,
        restored_at_ms,
        peers,
        finished_at_ms: restore.as_ref().map_or(0, |r| r.finished_at_ms),
        lost_period: if restored_at_ms == 0 {
            String::new()
        } else {
            lost_period(zone, backup_at_ms, restored_at_ms)
        },
    })
}
