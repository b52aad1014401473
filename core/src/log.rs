//! The change log (docs/replication.md): appending events for an audience in the same
//! transaction as the change, compacting superseded snapshots, reading
//! batches for a puller, and the cursors that make apply exactly-once.

use liaison_proto::v1::{Event, EventKind, HostSection};
use prost::Message as _;
use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::Error;
use liaison_types::identity::NodeId;

/// Appends one event for `audience`. Must run inside the transaction of the
/// change it carries. Snapshots of `entity` already queued for `audience`
/// that this one supersedes are deleted (a puller never needs them).
pub fn append(
    conn: &Connection,
    audience: &NodeId,
    kind: EventKind,
    entity: &str,
    payload: &[u8],
    now_ms: Millis,
) -> Result<u64, Error> {
    match kind {
        EventKind::HomeSection | EventKind::Unshare => {
            drop_queued_owner_snapshots(conn, audience, entity)?;
        }
        EventKind::HostSection => {
            // A member's sections of several hosts go to its owner side by
            // side (a former owner relays the others'): one supersedes only
            // the same host's.
            let author = |bytes: &[u8]| {
                HostSection::decode(bytes).map(|s| s.author).map_err(|e| {
                    Error::corrupt(
                        format!("a host section about {entity}"),
                        e.to_string(),
                        "a host section",
                    )
                })
            };
            let mine = author(payload)?;
            let queued: Vec<(i64, Vec<u8>)> = conn
                .prepare_cached(
                    "SELECT seq, payload FROM events WHERE audience = ?1 AND entity = ?2 AND kind = ?3",
                )?
                .query_map(
                    params![audience.as_str(), entity, EventKind::HostSection as i32],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .collect::<Result<_, _>>()?;
            for (seq, bytes) in queued {
                if author(&bytes)? == mine {
                    conn.prepare_cached("DELETE FROM events WHERE seq = ?1")?
                        .execute([seq])?;
                }
            }
        }
        _ => {}
    }
    append_unqueued(conn, audience, kind, entity, payload, now_ms)
}

/// [`append`] for a caller that knows no event of `entity` that this one
/// would supersede is queued for `audience` (see [`queued_entities`]).
pub fn append_unqueued(
    conn: &Connection,
    audience: &NodeId,
    kind: EventKind,
    entity: &str,
    payload: &[u8],
    now_ms: Millis,
) -> Result<u64, Error> {
    conn.prepare_cached(
        "INSERT INTO events (audience, kind, entity, payload, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![audience.as_str(), kind as i32, entity, payload, now_ms])?;
    Ok(conn.last_insert_rowid() as u64)
}

/// The entities after `after` (and up to `upto`, inclusive, if given) with
/// a home section or an Unshare queued for `audience`: the ones an
/// appended home section or Unshare would supersede.
pub fn queued_entities(
    conn: &Connection,
    audience: &NodeId,
    after: &str,
    upto: Option<&str>,
) -> Result<std::collections::HashSet<String>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT entity FROM events
         WHERE audience = ?1 AND entity > ?2 AND (?3 IS NULL OR entity <= ?3)
           AND kind IN (?4, ?5)",
    )?;
    let entities = stmt
        .query_map(
            params![
                audience.as_str(),
                after,
                upto,
                EventKind::HomeSection as i32,
                EventKind::Unshare as i32
            ],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?;
    Ok(entities)
}

/// Deletes the home sections and Unshares of `entity` still queued for
/// `audience`: what its owner last said of its copy there, superseded by
/// a later one, or said by a node that learns it did not own `entity`.
pub fn drop_queued_owner_snapshots(
    conn: &Connection,
    audience: &NodeId,
    entity: &str,
) -> Result<usize, Error> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM events WHERE audience = ?1 AND entity = ?2 AND kind IN (?3, ?4)",
        )?
        .execute(params![
            audience.as_str(),
            entity,
            EventKind::HomeSection as i32,
            EventKind::Unshare as i32
        ])?)
}

/// Deletes the home-section snapshots of `entity` still queued for
/// `audience` (on Unshare and at the end of a basis).
pub fn drop_queued_home_sections(
    conn: &Connection,
    audience: &NodeId,
    entity: &str,
) -> Result<usize, Error> {
    Ok(conn
        .prepare_cached("DELETE FROM events WHERE audience = ?1 AND entity = ?2 AND kind = ?3")?
        .execute(params![
            audience.as_str(),
            entity,
            EventKind::HomeSection as i32
        ])?)
}

/// Up to `limit` events for `audience` after `since`, in order.
pub fn read_batch(
    conn: &Connection,
    audience: &NodeId,
    since: u64,
    limit: u32,
) -> Result<Vec<Event>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, kind, entity, payload, created_at_ms FROM events
         WHERE audience = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let events = stmt
        .query_map(params![audience.as_str(), since, limit], |r| {
            Ok(Event {
                seq: r.get(0)?,
                kind: r.get(1)?,
                entity: r.get(2)?,
                payload: r.get(3)?,
                created_at_ms: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(events)
}

/// The highest seq held for `audience` (0 if none).
pub fn head_seq(conn: &Connection, audience: &NodeId) -> Result<u64, Error> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE audience = ?1")?
        .query_row([audience.as_str()], |r| r.get(0))?)
}

/// The highest seq in the log, for any audience (0 if none).
pub fn max_seq(conn: &Connection) -> Result<u64, Error> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events")?
        .query_row([], |r| r.get(0))?)
}

/// The audiences with events after `after`, each with its highest seq: what
/// the commits since `after` appended (seq only grows, so a range of it).
pub fn heads_after(conn: &Connection, after: u64) -> Result<Vec<(String, u64)>, Error> {
    // A range of the primary key, grouped here: a GROUP BY could make
    // SQLite walk the whole (audience, seq) index instead.
    let mut stmt = conn.prepare_cached("SELECT audience, seq FROM events WHERE seq > ?1")?;
    let mut rows = stmt.query([after])?;
    let mut heads: Vec<(String, u64)> = Vec::new();
    while let Some(row) = rows.next()? {
        let seq: u64 = row.get(1)?;
        let audience = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        match heads.iter_mut().find(|(a, _)| a == audience) {
            Some(head) => head.1 = head.1.max(seq),
            None => heads.push((audience.to_owned(), seq)),
        }
    }
    Ok(heads)
}

/// How many events are held for `audience` after `since`.
pub fn backlog(conn: &Connection, audience: &NodeId, since: u64) -> Result<u64, Error> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM events WHERE audience = ?1 AND seq > ?2")?
        .query_row(params![audience.as_str(), since], |r| r.get(0))?)
}

/// How far this node applied `peer`'s log `log_id` (0 if never).
pub fn cursor(conn: &Connection, peer: &NodeId, log_id: &str) -> Result<u64, Error> {
    Ok(conn
        .prepare_cached("SELECT seq FROM cursors WHERE peer = ?1 AND log_id = ?2")?
        .query_row(params![peer.as_str(), log_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Moves the cursor forward, never back.
pub fn advance_cursor(
    conn: &Connection,
    peer: &NodeId,
    log_id: &str,
    seq: u64,
    applied: u64,
    now_ms: Millis,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO cursors (peer, log_id, seq, applied_total, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (peer, log_id) DO UPDATE SET seq = MAX(seq, excluded.seq),
             applied_total = applied_total + excluded.applied_total, updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![peer.as_str(), log_id, seq, applied, now_ms])?;
    Ok(())
}

/// The peer's latest log id we hold a cursor for, with the cursor.
pub fn latest_cursor(
    conn: &Connection,
    peer: &NodeId,
) -> Result<Option<(String, u64, u64, Millis)>, Error> {
    Ok(conn
        .query_row(
            "SELECT log_id, seq, applied_total, updated_at_ms FROM cursors WHERE peer = ?1
             ORDER BY updated_at_ms DESC LIMIT 1",
            [peer.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?)
}

/// Records what `peer` asked for in its latest Pull.
pub fn record_peer_progress(
    conn: &Connection,
    peer: &NodeId,
    since: u64,
    now_ms: Millis,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO peer_progress (peer, since, updated_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (peer) DO UPDATE SET since = excluded.since, updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![peer.as_str(), since, now_ms])?;
    Ok(())
}

pub fn peer_progress(conn: &Connection, peer: &NodeId) -> Result<u64, Error> {
    Ok(conn
        .query_row(
            "SELECT since FROM peer_progress WHERE peer = ?1",
            [peer.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Records a disclosure: what went to `peer`, on which basis; no values.
#[allow(clippy::too_many_arguments)]
pub fn disclose(
    conn: &Connection,
    peer: &NodeId,
    record_kind: &str,
    record_id: &str,
    fields: &str,
    generation: u64,
    counter: u64,
    basis: &str,
    now_ms: Millis,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO disclosures (peer, record_kind, record_id, fields, generation, counter, basis, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![peer.as_str(), record_kind, record_id, fields, generation, counter, basis, now_ms])?;
    Ok(())
}

pub fn kind_name(kind: i32) -> String {
    EventKind::try_from(kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("EVENT_KIND_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| format!("unknown({kind})"))
}
