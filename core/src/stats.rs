//! Figures for monitoring, read in one pass over the database: what the
//! node's metrics endpoint shows beside the link state it keeps in memory.
//! No figure carries personal data: counts by state only.

use rusqlite::Connection;

use crate::Error;

/// The database's share of the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Open transfers by (direction, state): offers not decided, releases
    /// without a receipt, offers held awaiting their sender.
    pub transfers_open: Vec<(String, String, u64)>,
    /// Releases without a receipt for [`crate::transfers::RECEIPT_DUE_DAYS`]
    /// days or more.
    pub receipts_overdue: u64,
    /// Members this node owns, by official contact status.
    pub members_by_contact_status: Vec<(String, u64)>,
    /// Events held in quarantine, by the peer that sent them.
    pub quarantine_held: Vec<(String, u64)>,
    /// Restored and reconciling with its peers.
    pub reconciling: bool,
    /// Per peer: how far this node applied the peer's latest log.
    pub cursors: Vec<(String, u64)>,
}

/// Reads every figure of [`Stats`], at `now_ms`.
pub fn read(conn: &Connection, me: &str, now_ms: i64) -> Result<Stats, Error> {
    let transfers_open = conn
        .prepare_cached(
            "SELECT direction, state, COUNT(*) FROM transfers
             WHERE state IN ('offered', 'pending', 'accepted', 'awaiting_sender')
                OR (state = 'released' AND receipt_at_ms IS NULL)
             GROUP BY direction, state ORDER BY direction, state",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let due_ms = now_ms - crate::transfers::RECEIPT_DUE_DAYS * 86_400_000;
    let receipts_overdue = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM transfers
             WHERE direction = 'outgoing' AND state = 'released' AND receipt_at_ms IS NULL
               AND released_at_ms IS NOT NULL AND released_at_ms <= ?1",
        )?
        .query_row([due_ms], |r| r.get(0))?;
    let members_by_contact_status = conn
        .prepare_cached(
            "SELECT contact_status, COUNT(*) FROM members WHERE owner = ?1
             GROUP BY contact_status ORDER BY contact_status",
        )?
        .query_map([me], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let quarantine_held = conn
        .prepare_cached(
            "SELECT origin, COUNT(*) FROM quarantine WHERE state = 'held'
             GROUP BY origin ORDER BY origin",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    // The cursor of each peer's most recently advanced log: the one it
    // serves now (a restored peer starts a new log).
    let cursors = conn
        .prepare_cached(
            "SELECT c.peer, c.seq FROM cursors c
             WHERE c.updated_at_ms = (SELECT MAX(updated_at_ms) FROM cursors d WHERE d.peer = c.peer)
             GROUP BY c.peer ORDER BY c.peer",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(Stats {
        transfers_open,
        receipts_overdue,
        members_by_contact_status,
        quarantine_held,
        reconciling: crate::epoch::is_reconciling(conn)?,
        cursors,
    })
}
