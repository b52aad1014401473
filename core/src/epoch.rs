//! What a restore left in this database (docs/restore.md): whether it was ever
//! restored, whether it still reconciles, the log ids it wrote under and
//! the letter number it had issued when restored. Read by every part of
//! the protocol that acts differently on a restored node; written by
//! `reconcile`, which begins and ends a restore. Also where each peer's
//! restores left its earlier logs, which a later restore of that peer is
//! checked against.

use liaison_proto::v1 as pb;
use liaison_types::identity::NodeId;
use rusqlite::{Connection, OptionalExtension};

use crate::letters::LetterPlace;
use crate::store::get_meta;
use crate::{Error, Refusal};

/// The latest restore of this database (the `restore` table's one row).
#[derive(Debug, Clone)]
pub(crate) struct Restore {
    pub(crate) reconciling: bool,
    pub(crate) restored_at_ms: i64,
    /// 0: a new database under a known node id.
    pub(crate) backup_at_ms: i64,
    pub(crate) previous_log_id: String,
    /// The last sequence number this file had written when restored.
    pub(crate) seq_floor: u64,
    /// The last letter this file had numbered when restored.
    pub(crate) letter_floor: LetterPlace,
    /// 0 while reconciling.
    pub(crate) finished_at_ms: i64,
}

pub(crate) fn restore_row(conn: &Connection) -> Result<Option<Restore>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT reconciling, restored_at_ms, backup_at_ms, previous_log_id, seq_floor, letter_floor, finished_at_ms,
                    letter_floor_year
             FROM restore WHERE id = 1",
        )?
        .query_row([], |r| {
            Ok(Restore {
                reconciling: r.get(0)?,
                restored_at_ms: r.get(1)?,
                backup_at_ms: r.get(2)?,
                previous_log_id: r.get(3)?,
                seq_floor: r.get(4)?,
                letter_floor: LetterPlace {
                    year: r.get(7)?,
                    number: r.get(5)?,
                },
                finished_at_ms: r.get(6)?,
            })
        })
        .optional()?)
}

pub fn is_reconciling(conn: &Connection) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("SELECT reconciling FROM restore WHERE id = 1")?
        .query_row([], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// The check every owner action passes, first, in its own transaction
/// (docs/restore.md): every operator change to the registry, the
/// organizations, agreements and transfers, imports included. A node
/// restored from a backup acts as no owner until every peer's holdings
/// are adopted or an operator went on without it: what it decides before
/// could contradict what it forgot. Refused with the peers still awaited.
/// Reads, peers, quarantine, backup and reconciliation itself are not
/// owner actions.
pub fn act_as_owner(conn: &Connection) -> Result<(), Error> {
    if !is_reconciling(conn)? {
        return Ok(());
    }
    let waiting: Vec<String> = conn
        .prepare_cached("SELECT peer FROM reconcile_peers WHERE state = 'waiting' ORDER BY peer")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Err(Error::Refused(Refusal::Reconciling { waiting }))
}

/// Whether this node must adopt `peer`'s holdings before it applies the
/// peer's log: restored, and the peer is still awaited or was gone on
/// without (it is adopted when it returns). The peer's events after the
/// backup answer actions this node forgot; only adoption makes it know
/// them again.
pub fn awaits_adoption(conn: &Connection, peer: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM reconcile_peers WHERE peer = ?1 AND state IN ('waiting', 'skipped')",
        )?
        .query_row([peer], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether this node must take `peer`'s holdings again before it applies
/// the peer's log `log_id` (docs/restore.md, Taking a peer's holdings
/// again): this database was restored once and adopted the peer since, and
/// the peer now writes under a log id this node took no holdings under. The
/// peer was restored since, perhaps to a backup holding what this node
/// forgot and adopted its holdings without. A peer still awaited is adopted
/// instead.
pub fn awaits_retake(conn: &Connection, peer: &str, log_id: &str) -> Result<bool, Error> {
    if log_id.is_empty() || !was_restored(conn)? || awaits_adoption(conn, peer)? {
        return Ok(false);
    }
    Ok(!conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM peer_logs_taken WHERE peer = ?1 AND log_id = ?2)",
        )?
        .query_row([peer, log_id], |r| r.get::<_, bool>(0))?)
}

/// Notes that `peer`'s holdings under its log `log_id` were taken here.
pub(crate) fn note_log_taken(
    conn: &Connection,
    peer: &str,
    log_id: &str,
    now_ms: i64,
) -> Result<(), Error> {
    if !log_id.is_empty() {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO peer_logs_taken (peer, log_id, taken_at_ms) VALUES (?1, ?2, ?3)",
        )?
        .execute(rusqlite::params![peer, log_id, now_ms])?;
    }
    Ok(())
}

/// Whether this database was ever restored (a backup copied into place, or
/// a new database under a known node id): it may have forgotten what it
/// did after the backup, even once reconciled.
pub fn was_restored(conn: &Connection) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM past_log_ids)")?
        .query_row([], |r| r.get(0))?)
}

/// The last letter this file had numbered when it was restored (the last
/// numbered now if it never was).
pub fn letter_floor(conn: &Connection) -> Result<LetterPlace, Error> {
    match restore_row(conn)? {
        Some(restore) => Ok(restore.letter_floor),
        None => crate::letters::last_issued(conn),
    }
}

/// Whether `log_id` is one this database wrote under (now or before).
pub(crate) fn is_own_log_id(conn: &Connection, log_id: &str) -> Result<bool, Error> {
    if get_meta(conn, "log_id")?.as_deref() == Some(log_id) {
        return Ok(true);
    }
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM past_log_ids WHERE log_id = ?1)")?
        .query_row([log_id], |r| r.get(0))?)
}

/// This node's branch of its history: each earlier log it descends from,
/// with the last sequence number of it the branch kept (where known). Sent
/// with each `EpochComplete` and `HoldingsRequest`.
pub fn branch(conn: &Connection) -> Result<Vec<pb::LogCursor>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT log_id, last_seq FROM branch_logs WHERE last_seq IS NOT NULL ORDER BY log_id",
        )?
        .query_map([], |r| {
            Ok(pb::LogCursor {
                log_id: r.get(0)?,
                seq: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?)
}

/// A peer's restore said how far its branch kept each earlier log of the
/// peer (`EpochComplete`): the lowest point heard of each log is kept,
/// since a later restore to an earlier point of a log leaves what came
/// after it too.
pub fn note_peer_branch(
    conn: &Connection,
    origin: &NodeId,
    branch: &[pb::LogCursor],
) -> Result<(), Error> {
    // A sequence number past SQLite's integers is no log's: ignored.
    for point in branch.iter().filter(|p| i64::try_from(p.seq).is_ok()) {
        conn.prepare_cached(
            "INSERT INTO peer_branch_points (origin, log_id, kept_to) VALUES (?1, ?2, ?3)
             ON CONFLICT (origin, log_id) DO UPDATE SET kept_to = MIN(kept_to, excluded.kept_to)",
        )?
        .execute(rusqlite::params![origin.as_str(), point.log_id, point.seq])?;
    }
    Ok(())
}

/// Where a restored peer's holdings request claims more of one of its
/// earlier logs than a restore of it is known to have kept: the backup it
/// was restored from holds a branch of its history it had left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLeftBranch {
    pub log_id: String,
    /// The last sequence number of that log the request's branch holds.
    pub claimed: u64,
    /// The last one an earlier restore of the peer kept.
    pub kept_to: u64,
}

/// Whether `branch`, what `origin` says it descends from, goes past a
/// point where `origin`'s history is known here to have left a log.
pub fn peer_left_branch(
    conn: &Connection,
    origin: &NodeId,
    branch: &[pb::LogCursor],
) -> Result<Option<PeerLeftBranch>, Error> {
    for point in branch {
        let kept_to: Option<u64> = conn
            .prepare_cached(
                "SELECT kept_to FROM peer_branch_points WHERE origin = ?1 AND log_id = ?2",
            )?
            .query_row(rusqlite::params![origin.as_str(), point.log_id], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(kept_to) = kept_to.filter(|kept_to| point.seq > *kept_to) {
            return Ok(Some(PeerLeftBranch {
                log_id: point.log_id.clone(),
                claimed: point.seq,
                kept_to,
            }));
        }
    }
    Ok(None)
}
