//! The quarantine: events from peers that can never be valid, kept with
//! their reason and audited (docs/replication.md), listed for operators and checked
//! again on request.

use liaison_proto::v1 as pb;
use liaison_types::identity::NodeId;
use rusqlite::{params, Connection};

use crate::log;
use crate::outcome::Rejection;
use crate::store::audit::{self, Actor, NewEntry, Outcome};
use crate::{Ctx, Error};

/// Keeps `event` from `origin`'s log `log_id` with the reason it can never
/// be valid, and audits it.
pub(crate) fn hold(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    event: &pb::Event,
    reason: &str,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO quarantine (origin, log_id, seq, kind, entity, payload, reason, state, received_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'held', ?8)",
    )?
    .execute(params![
        origin.as_str(),
        log_id,
        event.seq,
        event.kind,
        event.entity,
        event.payload,
        reason,
        ctx.now_ms
    ])?;
    let id = conn.last_insert_rowid();
    tracing::warn!(peer = %origin, seq = event.seq, kind = %log::kind_name(event.kind), entity = %event.entity, reason, "event quarantined");
    audit::append(
        conn,
        ctx.now_ms,
        &NewEntry {
            actor: &Actor::Peer(origin.to_string()),
            action: "replication.quarantine",
            target: &event.entity,
            outcome: Outcome::Refused,
            detail: &format!(
                "quarantine {id}: {} event seq {}: {reason}",
                log::kind_name(event.kind),
                event.seq
            ),
        },
    )?;
    Ok(())
}

fn read_quarantine(r: &rusqlite::Row<'_>) -> rusqlite::Result<pb::QuarantineEntry> {
    Ok(pb::QuarantineEntry {
        id: r.get(0)?,
        origin: r.get(1)?,
        seq: r.get(2)?,
        kind: log::kind_name(r.get(3)?),
        entity: r.get(4)?,
        reason: r.get(5)?,
        received_at_ms: r.get(6)?,
        state: r.get(7)?,
    })
}

const QUARANTINE_COLUMNS: &str = "id, origin, seq, kind, entity, reason, received_at_ms, state";

pub fn list(conn: &Connection, include_resolved: bool) -> Result<Vec<pb::QuarantineEntry>, Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE ?1 OR state = 'held' ORDER BY id"
    ))?;
    let list = stmt
        .query_map([include_resolved], read_quarantine)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

/// Checks quarantined event `id` again with `apply` (after an operator
/// fixed what it lacked, after an upgrade, or once the member it is about
/// arrived). Applied: it leaves the quarantine; still invalid: it stays,
/// with the new reason. The cursor is not touched.
pub(crate) fn retry(
    conn: &Connection,
    ctx: &Ctx<'_>,
    id: u64,
    apply: impl FnOnce(&Connection, &Ctx<'_>, &NodeId, &str, &pb::Event) -> Result<(), Rejection>,
) -> Result<pb::QuarantineEntry, Error> {
    // (origin, the origin's log it came in, state, the event).
    let row: Option<(String, String, String, pb::Event)> =
        rusqlite::OptionalExtension::optional(conn.query_row(
            "SELECT origin, log_id, state, seq, kind, entity, payload FROM quarantine WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    pb::Event {
                        seq: r.get(3)?,
                        kind: r.get(4)?,
                        entity: r.get(5)?,
                        payload: r.get(6)?,
                        created_at_ms: 0,
                    },
                ))
            },
        ))?;
    let Some((origin, log_id, state, event)) = row else {
        return Err(Error::not_found(format!(
            "no quarantined event {id}: `quarantine list` shows them"
        )));
    };
    if state != "held" {
        return Err(Error::conflict(format!(
            "quarantined event {id} is already {state}"
        )));
    }
    let origin = NodeId::parse(&origin).map_err(|e| Error::invalid(e.to_string()))?;
    match apply(conn, ctx, &origin, &log_id, &event) {
        Ok(()) => {
            conn.execute(
                "UPDATE quarantine SET state = 'applied', retried_at_ms = ?2 WHERE id = ?1",
                params![id, ctx.now_ms],
            )?;
        }
        Err(rejection @ (Rejection::Invalid(_) | Rejection::Unknown(_))) => {
            let reason = reason(conn, rejection)?;
            conn.execute(
                "UPDATE quarantine SET reason = ?2, retried_at_ms = ?3 WHERE id = ?1",
                params![id, reason, ctx.now_ms],
            )?;
        }
        Err(Rejection::Stop(reason)) => {
            return Err(Error::conflict(format!(
                "quarantined event {id} cannot be applied now: {reason}"
            )))
        }
        Err(Rejection::Store(e)) => return Err(e),
    }
    Ok(conn.query_row(
        &format!("SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE id = ?1"),
        [id],
        read_quarantine,
    )?)
}

/// The reason a quarantine entry keeps for an event rejected as invalid or
/// as naming something unknown here. At a node restored from a backup the
/// latter says it may be about what the node forgot
/// ([`FORGOTTEN_AT_RESTORE`](crate::outcome::FORGOTTEN_AT_RESTORE)).
pub(crate) fn reason(conn: &Connection, rejection: Rejection) -> Result<String, Error> {
    Ok(match rejection {
        Rejection::Unknown(reason) if crate::epoch::was_restored(conn)? => {
            format!("{reason}; {}", crate::outcome::FORGOTTEN_AT_RESTORE)
        }
        Rejection::Invalid(reason) | Rejection::Unknown(reason) | Rejection::Stop(reason) => reason,
        Rejection::Store(error) => return Err(error),
    })
}
