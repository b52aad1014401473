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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

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
