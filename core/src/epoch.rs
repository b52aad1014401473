//! What a restore left in this database (docs/restore.md): whether it was ever
//! restored, whether it still reconciles, the log ids it wrote under and
//! the letter number it had issued when restored. Read by every part of
//! the protocol that acts differently on a restored node; written by
//! `reconcile`, which begins and ends a restore.

use rusqlite::{Connection, OptionalExtension};

use crate::letters::LetterPlace;
use crate::store::get_meta;
use crate::Error;

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
