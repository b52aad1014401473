//! The audit log: append-only and hash-chained.
//!
//! Each entry's hash covers the previous entry's hash and every field of the
//! entry, so changing, deleting or reordering a row breaks the chain from
//! that row on, and `verify` names the first broken entry. Triggers refuse
//! UPDATE and DELETE; the chain catches whoever drops them.

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::clock::Millis;
use crate::Error;

/// Who did it: an operator (OS user from the admin socket's peer
/// credentials), an authenticated peer, an unauthenticated remote address,
/// or the node itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Operator(String),
    Peer(String),
    Remote(String),
    Node,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Operator(user) => write!(f, "operator:{user}"),
            Actor::Peer(node) => write!(f, "peer:{node}"),
            Actor::Remote(addr) => write!(f, "remote:{addr}"),
            Actor::Node => f.write_str("node"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Refused,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        }
    }
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub actor: &'a Actor,
    pub action: &'a str,
    pub target: &'a str,
    pub outcome: Outcome,
    pub detail: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub seq: u64,
    pub at_ms: Millis,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        entries: u64,
    },
    Broken {
        entries: u64,
        first_broken_seq: u64,
        problem: String,
    },
}

const GENESIS: [u8; 32] = [0; 32];

fn entry_hash(prev_hash: &[u8], seq: u64, at_ms: Millis, fields: [&str; 5]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(seq.to_be_bytes());
    h.update(at_ms.to_be_bytes());
    for field in fields {
        // Length-prefixed, so no two different entries hash the same bytes.
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().into()
}

/// Appends one entry. Call it inside the transaction of the change it
/// records, so the change and its audit entry commit together.
pub fn append(conn: &Connection, at_ms: Millis, entry: &NewEntry<'_>) -> Result<u64, Error> {
    let last: Option<(u64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_vec()),
    };
    let actor = entry.actor.to_string();
    let hash = entry_hash(
        &prev_hash,
        seq,
        at_ms,
        [
            &actor,
            entry.action,
            entry.target,
            entry.outcome.as_str(),
            entry.detail,
        ],
    );
    conn.prepare_cached(
        "INSERT INTO audit (seq, at_ms, actor, action, target, outcome, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        seq,
        at_ms,
        actor,
        entry.action,
        entry.target,
        entry.outcome.as_str(),
        entry.detail,
        prev_hash,
        hash.to_vec()
    ])?;
    Ok(seq)
}

/// Entries at or after `since_ms`, oldest first, at most `limit` (the newest ones).
pub fn list(conn: &Connection, since_ms: Millis, limit: u32) -> Result<Vec<Entry>, Error> {
    let mut stmt = conn.prepare(
        "SELECT seq, at_ms, actor, action, target, outcome, detail, hash FROM audit
         WHERE at_ms >= ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let mut entries = stmt
        .query_map(params![since_ms, limit], |r| {
            Ok(Entry {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                outcome: r.get(5)?,
                detail: r.get(6)?,
                hash: hex::encode(r.get::<_, Vec<u8>>(7)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    entries.reverse();
    Ok(entries)
}

/// Walks the whole chain and names the first entry that does not fit.
pub fn verify(conn: &Connection) -> Result<Verdict, Error> {
    let mut stmt = conn.prepare(
        "SELECT seq, at_ms, actor, action, target, outcome, detail, prev_hash, hash
         FROM audit ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut expected_prev = GENESIS.to_vec();
    let mut expected_seq = 1u64;
    let mut entries = 0u64;
    while let Some(r) = rows.next()? {
        let seq: u64 = r.get(0)?;
        let at_ms: Millis = r.get(1)?;
        let fields: [String; 5] = [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?];
        let prev_hash: Vec<u8> = r.get(7)?;
        let hash: Vec<u8> = r.get(8)?;
        let broken = |problem: &str| Verdict::Broken {
            entries,
            first_broken_seq: seq,
            problem: problem.to_owned(),
        };
        if seq != expected_seq {
            return Ok(Verdict::Broken {
                entries,
                first_broken_seq: expected_seq,
                problem: format!("entry {expected_seq} is missing (next entry is {seq})"),
            });
        }
        if prev_hash != expected_prev {
            return Ok(broken("its link to the previous entry does not match"));
        }
        let fields_ref = [
            fields[0].as_str(),
            fields[1].as_str(),
            fields[2].as_str(),
            fields[3].as_str(),
            fields[4].as_str(),
        ];
        if entry_hash(&prev_hash, seq, at_ms, fields_ref).as_slice() != hash.as_slice() {
            return Ok(broken(
                "its contents do not match its hash (the entry was altered)",
            ));
        }
        expected_prev = hash;
        expected_seq += 1;
        entries += 1;
    }
    Ok(Verdict::Intact { entries })
}

/// The newest entry of the chain: how many entries it has, and the last
/// one's hash (all zeros for an empty chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub entries: u64,
    pub hash: Vec<u8>,
}

/// The chain's head as it stands.
pub fn head(conn: &Connection) -> Result<Head, Error> {
    let last: Option<(u64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match last {
        Some((entries, hash)) => Head { entries, hash },
        None => Head {
            entries: 0,
            hash: GENESIS.to_vec(),
        },
    })
}

/// A head someone recorded of this chain: the node's own record beside
/// the database, or a peer's witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// "record", or "peer:<node id>".
    pub source: String,
    pub head: Head,
    pub recorded_at_ms: Millis,
}

/// How the chain stands against an [`Anchor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorCheck {
    /// The chain holds the anchored entry with that hash.
    Holds,
    /// The chain ends before the anchored entry: its newest entries were
    /// deleted.
    Missing { entries: u64 },
    /// The anchored entry is there with another hash: rewritten.
    Differs,
}

impl AnchorCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            AnchorCheck::Holds => "holds",
            AnchorCheck::Missing { .. } => "missing",
            AnchorCheck::Differs => "differs",
        }
    }
}

/// Checks the chain against `anchor`.
pub fn check_anchor(conn: &Connection, anchor: &Head) -> Result<AnchorCheck, Error> {
    let current = head(conn)?;
    if anchor.entries > current.entries {
        return Ok(AnchorCheck::Missing {
            entries: anchor.entries - current.entries,
        });
    }
    if anchor.entries == 0 {
        return Ok(AnchorCheck::Holds);
    }
    let hash: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hash FROM audit WHERE seq = ?1")?
        .query_row([anchor.entries], |r| r.get(0))
        .optional()?;
    Ok(match hash {
        Some(hash) if hash == anchor.hash => AnchorCheck::Holds,
        Some(_) => AnchorCheck::Differs,
        // A gap: `verify` names it.
        None => AnchorCheck::Missing { entries: 1 },
    })
}

/// The action of the entry a start appends when the chain ends before the
/// head the node recorded beside its database: its newest entries were
/// deleted while it was stopped. Its target is the number missing.
pub const TRUNCATED: &str = "audit.truncated";

/// At a start, before anything is appended: checks the chain against the
/// head the node recorded beside the database at its last run, and if the
/// newest entries are missing (or were rewritten), appends an entry that
/// says so, which stays in the chain (`verify_anchored` reports it).
/// Returns the number of entries missing.
pub fn check_record_at_start(
    conn: &Connection,
    record: &Head,
    now_ms: Millis,
) -> Result<Option<u64>, Error> {
    let current = head(conn)?;
    let missing = match check_anchor(conn, record)? {
        AnchorCheck::Holds => return Ok(None),
        AnchorCheck::Missing { entries } => entries,
        // Rewritten from some entry on: at least the anchored one differs.
        AnchorCheck::Differs => record.entries.saturating_sub(current.entries).max(1),
    };
    append(
        conn,
        now_ms,
        &NewEntry {
            actor: &Actor::Node,
            action: TRUNCATED,
            target: &missing.to_string(),
            outcome: Outcome::Error,
            detail: &format!(
                "the audit log ends at entry {} but this node recorded {} entries (hash {}) at its last run: {missing} entries are missing from its end (deleted while the node was stopped)",
                current.entries,
                record.entries,
                hex::encode(&record.hash)
            ),
        },
    )?;
    Ok(Some(missing))
}

/// The truncations found at starts ([`check_record_at_start`]): each
/// entry's seq, the entries missing, and its detail.
pub fn truncations(conn: &Connection) -> Result<Vec<(u64, u64, String)>, Error> {
    let mut stmt = conn.prepare(
        "SELECT seq, target, detail FROM audit WHERE action = ?1 AND actor = 'node' ORDER BY seq",
    )?;
    let found = stmt
        .query_map([TRUNCATED], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, String>(1)?.parse().unwrap_or(1),
                r.get(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}

/// Keeps `head` as the latest audit head seen of `peer`'s log `log_id`,
/// unless a higher one was seen: a head below it means entries were
/// deleted there. Returns the highest head seen before, when `head` is
/// below it for the first time (the caller audits that).
pub fn witness(
    conn: &Connection,
    peer: &str,
    log_id: &str,
    head: &Head,
    now_ms: Millis,
) -> Result<Option<Head>, Error> {
    let seen = witnessed(conn, peer, log_id)?;
    match seen {
        Some((seen, backwards_to)) if seen.entries > head.entries => {
            if backwards_to == Some(head.entries) {
                return Ok(None);
            }
            conn.prepare_cached(
                "UPDATE audit_witnessed SET backwards_to = ?3 WHERE peer = ?1 AND log_id = ?2",
            )?
            .execute(params![peer, log_id, head.entries])?;
            Ok(Some(seen))
        }
        Some((seen, _)) if seen == *head => Ok(None),
        _ => {
            conn.prepare_cached(
                "INSERT INTO audit_witnessed (peer, log_id, entries, hash, seen_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (peer, log_id) DO UPDATE SET entries = excluded.entries,
                     hash = excluded.hash, seen_at_ms = excluded.seen_at_ms, backwards_to = NULL",
            )?
            .execute(params![peer, log_id, head.entries, head.hash, now_ms])?;
            Ok(None)
        }
    }
}

/// The highest audit head seen of `peer`'s log `log_id`, and the lower
/// head it was last seen going back to, if any.
pub fn witnessed(
    conn: &Connection,
    peer: &str,
    log_id: &str,
) -> Result<Option<(Head, Option<u64>)>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT entries, hash, backwards_to FROM audit_witnessed WHERE peer = ?1 AND log_id = ?2",
        )?
        .query_row(params![peer, log_id], |r| {
            Ok((
                Head {
                    entries: r.get(0)?,
                    hash: r.get(1)?,
                },
                r.get(2)?,
            ))
        })
        .optional()?)
}

/// Records the head of this node's chain (under its log id `log_id`) that
/// `peer` reports having witnessed.
pub fn record_anchor(
    conn: &Connection,
    peer: &str,
    log_id: &str,
    head: &Head,
    now_ms: Millis,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO audit_anchors (peer, log_id, entries, hash, reported_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (peer) DO UPDATE SET log_id = excluded.log_id, entries = excluded.entries,
             hash = excluded.hash, reported_at_ms = excluded.reported_at_ms",
    )?
    .execute(params![peer, log_id, head.entries, head.hash, now_ms])?;
    Ok(())
}

/// The heads peers reported having witnessed of this node's chain under
/// its log id `log_id` (a restore starts a new log, and a shorter chain).
pub fn peer_anchors(conn: &Connection, log_id: &str) -> Result<Vec<Anchor>, Error> {
    let mut stmt = conn.prepare(
        "SELECT peer, entries, hash, reported_at_ms FROM audit_anchors WHERE log_id = ?1 ORDER BY peer",
    )?;
    let anchors = stmt
        .query_map([log_id], |r| {
            Ok(Anchor {
                source: format!("peer:{}", r.get::<_, String>(0)?),
                head: Head {
                    entries: r.get(1)?,
                    hash: r.get(2)?,
                },
                recorded_at_ms: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(anchors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn anchors_name_missing_and_rewritten_entries() {
        let store = Store::open_in_memory(0).unwrap();
        store
            .with(|conn| {
                add(conn, 6);
                let at_six = head(conn)?;
                assert_eq!(at_six.entries, 6);
                assert_eq!(check_anchor(conn, &at_six)?, AnchorCheck::Holds);
                conn.execute_batch(
                    "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq > 4;",
                )?;
                // The chain itself still verifies: only the anchor tells.
                assert_eq!(verify(conn)?, Verdict::Intact { entries: 4 });
                assert_eq!(
                    check_anchor(conn, &at_six)?,
                    AnchorCheck::Missing { entries: 2 }
                );
                add(conn, 2);
                assert_eq!(check_anchor(conn, &at_six)?, AnchorCheck::Differs);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_witnessed_head_that_moves_back_is_reported_once() {
        let store = Store::open_in_memory(0).unwrap();
        store
            .with(|conn| {
                let h = |entries: u64| Head {
                    entries,
                    hash: vec![entries as u8; 32],
                };
                assert_eq!(witness(conn, "lanzhou", "log1", &h(5), 1)?, None);
                assert_eq!(witness(conn, "lanzhou", "log1", &h(7), 2)?, None);
                assert_eq!(witness(conn, "lanzhou", "log1", &h(3), 3)?, Some(h(7)));
                assert_eq!(witness(conn, "lanzhou", "log1", &h(3), 4)?, None);
                // The highest stays.
                assert_eq!(witnessed(conn, "lanzhou", "log1")?.unwrap().0, h(7));
                // Another log of the peer (a restore) starts afresh.
                assert_eq!(witness(conn, "lanzhou", "log2", &h(1), 5)?, None);
                Ok(())
            })
            .unwrap();
    }

    fn add(conn: &Connection, n: u32) {
        for i in 0..n {
            append(
                conn,
                i64::from(i),
                &NewEntry {
                    actor: &Actor::Operator("alice".into()),
                    action: "peer.add",
                    target: &format!("node-{i}"),
                    outcome: Outcome::Ok,
                    detail: "",
                },
            )
            .unwrap();
        }
    }

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let store = Store::open_in_memory(0).unwrap();
        store
            .with(|conn| {
                add(conn, 5);
                assert_eq!(verify(conn)?, Verdict::Intact { entries: 5 });
                let refused = conn.execute("UPDATE audit SET target = 'x' WHERE seq = 3", []);
                assert!(refused.is_err(), "the trigger must refuse updates");
                conn.execute_batch(
                    "DROP TRIGGER audit_no_update; UPDATE audit SET target = 'x' WHERE seq = 3;",
                )?;
                match verify(conn)? {
                    Verdict::Broken {
                        first_broken_seq, ..
                    } => assert_eq!(first_broken_seq, 3),
                    v => panic!("tampering not detected: {v:?}"),
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn deleted_entry_is_named() {
        let store = Store::open_in_memory(0).unwrap();
        store
            .with(|conn| {
                add(conn, 4);
                conn.execute_batch(
                    "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2;",
                )?;
                match verify(conn)? {
                    Verdict::Broken {
                        first_broken_seq, ..
                    } => assert_eq!(first_broken_seq, 2),
                    v => panic!("deletion not detected: {v:?}"),
                }
                Ok(())
            })
            .unwrap();
    }
}
