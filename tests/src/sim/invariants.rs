//! The promises of docs/authority.md, docs/replication.md and
//! docs/agreements.md, stated once as checks over nodes' databases, so the
//! simulator ([`super`]) and the end-to-end tests (which may open a stopped
//! or running node's database file read-only, see [`open_read_only`]) check
//! the same thing.
//!
//! Every check reads committed state only, through its own connection, the
//! way an outside auditor would; none of them writes. Each returns the first
//! [`Violation`] it finds.
//!
//! Checks that need knowledge no database holds take it as an argument:
//! what the simulator handed over to a receiver ([`exactly_once`]), which
//! events it forged on purpose ([`quarantine_holds_only_invalid`]), what the
//! owner's operators wrote ([`authors_are_authorities`]).
//!
//! Transfers: tombstones (`members.owner` naming another node) are not
//! claims; the end state of every transferred member is
//! `crate::ownership::converged`, the same check the end-to-end transfer
//! tests run. [`exactly_once`] is keyed by the origin's log id, so a
//! restored origin's new epoch (docs/restore.md) gets a fresh ledger.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use liaison_core::{agreements, Ctx};
use liaison_types::identity::NodeId;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

/// A broken promise: which one, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// A short stable name of the invariant (used to compare failures when
    /// shrinking a schedule).
    pub invariant: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invariant `{}` violated: {}",
            self.invariant, self.detail
        )
    }
}

pub type Checked = Result<(), Violation>;

fn violation(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

/// A SQL error while checking is a failure of the check itself.
fn sql(invariant: &'static str) -> impl Fn(rusqlite::Error) -> Violation {
    move |e| violation(invariant, format!("cannot read the database: {e}"))
}

/// One node's database as the checks see it.
#[derive(Clone, Copy)]
pub struct NodeDb<'a> {
    pub id: &'a NodeId,
    pub conn: &'a Connection,
    /// The node's own clock (for checks that depend on its calendar).
    pub now_ms: i64,
}

impl NodeDb<'_> {
    fn ctx(&self) -> Ctx<'_> {
        Ctx::new(self.id, self.now_ms)
    }

    pub(crate) fn me(&self) -> &str {
        self.id.as_str()
    }
}

/// Opens a node's database file for the checks: read-only, so it cannot
/// disturb the node, which may keep running (WAL mode allows readers).
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

// ------------------------------------------------------------ ownership

/// (1) At most one node considers itself the owner of a member.
///
/// Only rows with `owner` = the node itself count: a tombstone names the
/// node the member went to. After a restore (docs/restore.md):
///
/// - a node that reconciles owns nothing (it refuses to act as an owner
///   until every peer answered), so its rows, restored from the backup, are
///   no claims yet;
/// - once it went on without a peer P (`reconcile --without-peer P`), a
///   member held by both it and P is tolerated until P returns and is
///   adopted: the one exception to a single owner. A peer its backup did
///   not list (removed when the backup was taken) counts the same until an
///   operator adds it again. The exception follows the member: where P
///   received it from the node on the branch the node forgot, and the node
///   released it again since to another, P and that other hold it until P
///   returns (then the later release stands, docs/transfers.md);
/// - a sender that released a member twice at one generation (on two
///   branches of its backups) tells the earlier letter's receiver by a
///   `moved` naming the later one's (docs/transfers.md): the two own it
///   until that `moved` is applied.
///
/// Returns the members two nodes own so, with the two.
pub fn single_owner(nodes: &[NodeDb<'_>]) -> Result<Vec<(String, Vec<String>)>, Violation> {
    const NAME: &str = "single-owner";
    let mut owners: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    // (node, peer): node went on without peer, which it has not adopted since.
    let mut skipped: BTreeSet<(&str, String)> = BTreeSet::new();
    for node in nodes {
        let reconciling = liaison_core::epoch::is_reconciling(node.conn)
            .map_err(|e| violation(NAME, e.to_string()))?;
        // A node reconciling (again: restored since it went on without a
        // peer, or a peer added back after its restore) has not adopted its
        // waiting peers yet: what going on without them allowed stands
        // until it does (docs/restore.md, Going on without a peer). It
        // owns nothing meanwhile.
        let mut stmt = node
            .conn
            .prepare_cached(
                "SELECT peer FROM reconcile_peers WHERE state = 'skipped' OR (?1 AND state = 'waiting')",
            )
            .map_err(sql(NAME))?;
        for peer in stmt
            .query_map([reconciling], |r| r.get::<_, String>(0))
            .map_err(sql(NAME))?
        {
            skipped.insert((node.me(), peer.map_err(sql(NAME))?));
        }
        if reconciling {
            continue;
        }
        // A restored node reconciles with the peers its backup lists; one
        // removed then (and added back since) it does not know until an
        // operator adds it again: like a skipped peer meanwhile.
        let restored = liaison_core::epoch::was_restored(node.conn)
            .map_err(|e| violation(NAME, e.to_string()))?;
        if restored {
            for other in nodes.iter().filter(|o| o.me() != node.me()) {
                let known = node
                    .conn
                    .prepare_cached("SELECT 1 FROM peers WHERE node_id = ?1")
                    .map_err(sql(NAME))?
                    .query_row([other.me()], |_| Ok(()))
                    .optional()
                    .map_err(sql(NAME))?
                    .is_some();
                if !known {
                    skipped.insert((node.me(), other.me().to_owned()));
                }
            }
        }
        let mut stmt = node
            .conn
            .prepare_cached("SELECT member_id FROM members WHERE owner = ?1")
            .map_err(sql(NAME))?;
        let ids = stmt
            .query_map([node.me()], |r| r.get::<_, String>(0))
            .map_err(sql(NAME))?;
        for id in ids {
            owners
                .entry(id.map_err(sql(NAME))?)
                .or_default()
                .push(node.me());
        }
    }
    // A skipped peer that received the member from the node that went on
    // without it may have passed it on since: the two owners are then that
    // node and the member's holder now, until the skipped peer returns.
    //
    // Whether node `at` completed a transfer from `sender` whose `column`
    // (`member_id` or `transfer_id`) is `key`.
    let completed_from = |at: &str, sender: &str, column: &str, key: &str| {
        nodes.iter().filter(|n| n.me() == at).any(|n| {
            n.conn
                .prepare_cached(&format!(
                    "SELECT 1 FROM transfers WHERE {column} = ?1 AND sender = ?2 AND direction = 'incoming' AND state = 'completed'"
                ))
                .and_then(|mut stmt| stmt.exists([key, sender]))
                .unwrap_or(false)
        })
    };
    let received_from =
        |peer: &str, sender: &str, member: &str| completed_from(peer, sender, "member_id", member);
    // Two restores on a transfer chain (docs/restore.md names no such case; see
    // `transfers::offer_is_stale`): a sender restored to before its
    // release still holds the member, under an offer it made (still open,
    // expired or cancelled) to a receiver that already received the member
    // at a later generation and passed it on. The receiver's answer makes
    // the sender release it again; until then both the sender and the
    // member's holder now claim it; and so they do while that receiver,
    // restored too, has not yet learnt from the holder's holdings that it
    // passed the member on (the receiver is then not one of the two), or
    // went on without the holder (`reconcile --without-peer`: two owners
    // until the holder returns, docs/restore.md; soak seed 1192236). Or
    // the receiver still holds the member, having completed that very
    // transfer: the two claim it until its receipt, sent again in its new
    // log, makes the sender release again (soak seed 1075102).
    let stale_offer = |sender: &str, member: &str, claims: &[&str]| {
        let Some(s) = nodes.iter().find(|n| n.me() == sender) else {
            return false;
        };
        let restored = liaison_core::epoch::was_restored(s.conn).unwrap_or(false);
        let Ok(Some(generation)) = s
            .conn
            .query_row(
                "SELECT generation FROM members WHERE member_id = ?1",
                [member],
                |r| r.get::<_, u64>(0),
            )
            .optional()
        else {
            return false;
        };
        let unreleased: Vec<(String, String)> = s
            .conn
            .prepare(
                "SELECT transfer_id, receiver FROM transfers WHERE member_id = ?1 AND direction = 'outgoing'
                   AND state IN ('offered', 'expired', 'cancelled')",
            )
            .and_then(|mut stmt| {
                stmt.query_map([member], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default();
        let completed_there = |receiver: &str, transfer: &str| {
            completed_from(receiver, sender, "transfer_id", transfer)
        };
        restored
            && unreleased.iter().any(|(transfer, receiver)| {
                (claims.contains(&receiver.as_str()) && completed_there(receiver, transfer))
                    || !claims.contains(&receiver.as_str())
                    && nodes.iter().filter(|n| n.me() == receiver).any(|n| {
                    liaison_core::epoch::is_reconciling(n.conn).unwrap_or(false)
                        || claims
                            .iter()
                            .any(|holder| skipped.contains(&(receiver.as_str(), (*holder).to_owned())))
                        || n.conn
                        .query_row(
                            "SELECT 1 FROM members WHERE member_id = ?1 AND owner <> ?2 AND generation > ?3",
                            rusqlite::params![member, receiver, generation + 1],
                            |_| Ok(()),
                        )
                        .optional()
                        .ok()
                        .flatten()
                        .is_some()
                })
            })
    };
    // A node restored once compares with a peer restored since only when
    // it takes that peer's holdings again (docs/restore.md, Taking a
    // peer's holdings again): until then the peer, restored to a backup
    // from after a release this node forgot, and this node both own the
    // member released between them.
    let awaits_retake = |at: &str, peer: &str| {
        let Some(peer_log) = nodes.iter().find(|n| n.me() == peer).and_then(|n| {
            liaison_core::store::get_meta(n.conn, "log_id")
                .ok()
                .flatten()
        }) else {
            return false;
        };
        nodes
            .iter()
            .filter(|n| n.me() == at)
            .any(|n| liaison_core::epoch::awaits_retake(n.conn, peer, &peer_log).unwrap_or(false))
    };
    // Two releases of one generation (docs/transfers.md): the sender
    // that released the member twice told the earlier letter's receiver
    // by a `moved` naming the later letter's, still on its way. The later
    // letter's receiver is the other owner, or (the member came back to
    // the sender since) the `moved` is at the generation the earlier
    // receiver owns the member at.
    let moved_in_flight = |member: &str, earlier: &str, later: &str| {
        let Some(receiver) = nodes.iter().find(|n| n.me() == earlier) else {
            return false;
        };
        let owned_at: Option<u64> = receiver
            .conn
            .query_row(
                "SELECT generation FROM members WHERE member_id = ?1 AND owner = ?2",
                [member, earlier],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten();
        nodes.iter().any(|s| {
            let Ok(Some(log_id)) = liaison_core::store::get_meta(s.conn, "log_id") else {
                return false;
            };
            let Ok(sender) = NodeId::parse(s.me()) else {
                return false;
            };
            let cursor = liaison_core::log::cursor(receiver.conn, &sender, &log_id).unwrap_or(0);
            s.conn
                .prepare(
                    "SELECT payload FROM events WHERE audience = ?1 AND kind = ?2 AND entity = ?3 AND seq > ?4",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(
                        params![earlier, liaison_proto::v1::EventKind::Moved as i32, member, cursor],
                        |r| r.get::<_, Vec<u8>>(0),
                    )?
                    .collect::<Result<Vec<_>, _>>()
                })
                .unwrap_or_default()
                .iter()
                .filter_map(|p| <liaison_proto::v1::Moved as prost::Message>::decode(p.as_slice()).ok())
                .any(|m| {
                    !m.letter_no.is_empty()
                        && (m.new_owner == later || owned_at == Some(m.generation))
                })
        })
    };
    let tolerated = |member: &str, claims: &[&str]| {
        claims.len() == 2
            && (claims.iter().any(|c| stale_offer(c, member, claims))
                || moved_in_flight(member, claims[0], claims[1])
                || moved_in_flight(member, claims[1], claims[0])
                || awaits_retake(claims[0], claims[1])
                || awaits_retake(claims[1], claims[0])
                || skipped.contains(&(claims[0], claims[1].to_owned()))
                || skipped.contains(&(claims[1], claims[0].to_owned()))
                || skipped
                    .iter()
                    .any(|(node, peer)| claims.contains(node) && received_from(peer, node, member))
                // The skipped peer passed the member on, then forgot it
                // had it (restored too): the member's holder now received
                // it from that peer, and the exception goes with it.
                || skipped.iter().any(|(node, peer)| {
                    claims.contains(node)
                        && claims
                            .iter()
                            .any(|c| c != node && received_from(c, peer, member))
                })
                || skipped.iter().any(|(node, peer)| {
                    claims.contains(&peer.as_str())
                        && received_from(peer, node, member)
                        && claims
                            .iter()
                            .any(|c| *c != peer.as_str() && received_from(c, node, member))
                }))
    };
    match owners
        .iter()
        .find(|(member, claims)| claims.len() > 1 && !tolerated(member, claims))
    {
        Some((member, claims)) => Err(violation(
            NAME,
            format!("member {member} is owned by {}", claims.join(" and ")),
        )),
        None => Ok(owners
            .iter()
            .filter(|(_, claims)| claims.len() > 1)
            .map(|(member, claims)| {
                (
                    member.clone(),
                    claims.iter().map(|c| (*c).to_owned()).collect(),
                )
            })
            .collect()),
    }
}

// --------------------------------------------------------------- sharing

/// (2) A host holds a member's home section only under a basis it has
/// itself applied as active and not ended: an agreement between the copy's
/// owner (outflow party) and this node (inflow party), in state `active`.
pub fn copies_under_active_basis(node: &NodeDb<'_>) -> Checked {
    const NAME: &str = "copy-under-active-basis";
    let mut stmt = node
        .conn
        .prepare_cached(
            "SELECT h.member_id, h.owner, h.basis, a.agreement_id, a.outflow_node, a.inflow_node, a.state, a.active_version
             FROM home_copies h LEFT JOIN agreements a ON a.agreement_id = h.basis ORDER BY h.member_id",
        )
        .map_err(sql(NAME))?;
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<u64>,
    )> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .map_err(sql(NAME))?
        .collect::<Result<_, _>>()
        .map_err(sql(NAME))?;
    for (member, owner, basis, found, outflow, inflow, state, active_version) in rows {
        let bad = |why: String| {
            Err(violation(
                NAME,
                format!("{} holds member {member}'s home section from {owner} under basis `{basis}`: {why}", node.me()),
            ))
        };
        if found.is_none() {
            return bad("no such agreement here".into());
        }
        if outflow.as_deref() != Some(owner.as_str()) || inflow.as_deref() != Some(node.me()) {
            return bad(format!(
                "the agreement is between {} (outflow) and {} (inflow)",
                outflow.unwrap_or_default(),
                inflow.unwrap_or_default()
            ));
        }
        let state = state.unwrap_or_default();
        if state != "active" || active_version.unwrap_or(0) == 0 {
            return bad(format!("the agreement is {state} here"));
        }
    }
    Ok(())
}

// ------------------------------------------------------------ exactly once

/// What a receiver was handed from one origin's log (one log id), as the
/// simulator saw it: the seqs each successful `apply_batch` took (applied
/// or quarantined), by replaying apply's guard on the batch it handed over
/// (an event is taken iff its seq is above the cursor, which then moves to
/// it). A batch whose apply failed (a crash) is assumed to have taken
/// nothing: the apply and the cursor are one transaction.
///
/// Built on the receiver's side of the wire, never from the origin's log, so
/// compaction at the origin (superseded snapshots deleted before anyone
/// pulled them) does not matter: a seq the receiver never saw is simply not
/// in the ledger, and the cursor may jump over it.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub taken: BTreeSet<u64>,
    /// The cursor the last check saw: it must never move back.
    pub last_cursor: u64,
}

/// (3) Exactly once, per (origin, log id) at a receiver:
///
/// - the cursor never moves back, and it is exactly the highest seq taken
///   (nothing above it was applied, and it jumped over nothing it was given);
/// - the receiver's own count, `cursors.applied_total` (committed with the
///   applied events), plus its quarantined events from that log, equals the
///   number of distinct seqs taken: no event applied twice, none lost;
/// - every event the origin still holds for the receiver at or below the
///   cursor was taken: nothing skipped.
///
/// Updates `ledger.last_cursor`.
pub fn exactly_once(
    receiver: &NodeDb<'_>,
    origin: &NodeDb<'_>,
    origin_log_id: &str,
    ledger: &mut Ledger,
) -> Checked {
    const NAME: &str = "exactly-once";
    let pair = format!("{}→{}", origin.me(), receiver.me());
    let (cursor, applied_total): (u64, u64) = receiver
        .conn
        .prepare_cached("SELECT seq, applied_total FROM cursors WHERE peer = ?1 AND log_id = ?2")
        .map_err(sql(NAME))?
        .query_row(params![origin.me(), origin_log_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(sql(NAME))?
        .unwrap_or((0, 0));
    let quarantined: u64 = receiver
        .conn
        .prepare_cached("SELECT COUNT(*) FROM quarantine WHERE origin = ?1 AND log_id = ?2")
        .map_err(sql(NAME))?
        .query_row(params![origin.me(), origin_log_id], |r| r.get(0))
        .map_err(sql(NAME))?;
    if cursor < ledger.last_cursor {
        return Err(violation(
            NAME,
            format!(
                "{pair}: the cursor moved back from {} to {cursor}",
                ledger.last_cursor
            ),
        ));
    }
    ledger.last_cursor = cursor;
    let highest = ledger.taken.last().copied().unwrap_or(0);
    if cursor != highest {
        return Err(violation(
            NAME,
            format!(
                "{pair}: the cursor is {cursor} but the highest seq the receiver took is {highest} \
                 (events above the cursor were applied, or the cursor skipped events)"
            ),
        ));
    }
    let taken = ledger.taken.len() as u64;
    if applied_total + quarantined != taken {
        return Err(violation(
            NAME,
            format!(
                "{pair}: {applied_total} events applied and {quarantined} quarantined, but {taken} distinct events \
                 were taken (up to seq {cursor}): {}",
                if applied_total + quarantined > taken {
                    "some were applied twice (or applied without the cursor moving)"
                } else {
                    "some were lost"
                }
            ),
        ));
    }
    let mut stmt = origin
        .conn
        .prepare_cached("SELECT seq FROM events WHERE audience = ?1 AND seq <= ?2 ORDER BY seq")
        .map_err(sql(NAME))?;
    let held = stmt
        .query_map(params![receiver.me(), cursor], |r| r.get::<_, u64>(0))
        .map_err(sql(NAME))?;
    for seq in held {
        let seq = seq.map_err(sql(NAME))?;
        if !ledger.taken.contains(&seq) {
            return Err(violation(
                NAME,
                format!(
                    "{pair}: event {seq} is at or below the cursor {cursor} but was never applied"
                ),
            ));
        }
    }
    Ok(())
}

// --------------------------------------------------------------- authority

/// The agreement `basis` as a node holds it: (outflow, inflow, active_version).
fn agreement_parties(
    conn: &Connection,
    basis: &str,
) -> rusqlite::Result<Option<(String, String, u64)>> {
    conn.prepare_cached(
        "SELECT outflow_node, inflow_node, active_version FROM agreements WHERE agreement_id = ?1",
    )?
    .query_row([basis], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .optional()
}

/// Whether `conn`'s node owns `member_id`.
fn owns(node: &NodeDb<'_>, member_id: &str) -> rusqlite::Result<bool> {
    Ok(node
        .conn
        .prepare_cached("SELECT 1 FROM members WHERE member_id = ?1 AND owner = ?2")?
        .query_row([member_id, node.me()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether `node` became the owner of `member_id` by a transfer: then it
/// holds the records the release carried, each with its original author and
/// basis (an agreement between the sender and that author, which this node
/// may never have seen), and records the sender relayed with the transfer as
/// their basis (docs/transfers.md).
fn received_by_transfer(node: &NodeDb<'_>, member_id: &str) -> rusqlite::Result<bool> {
    Ok(node
        .conn
        .prepare_cached(
            "SELECT 1 FROM transfers WHERE member_id = ?1 AND direction = 'incoming' AND state = 'completed' LIMIT 1",
        )?
        .query_row([member_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Why a record about `member_id` authored by `author` may not be held at
/// `node`, if it may not. A node holds its own records (about its own
/// members, or about members it hosts under an agreement in which it is the
/// inflow party), and the owner holds records of a host made under an
/// agreement it coordinates with that host and that was active here, or
/// that came with the member in a transfer.
fn record_authority(
    node: &NodeDb<'_>,
    member_id: &str,
    author: &str,
    basis: &str,
) -> rusqlite::Result<Option<String>> {
    let owned = owns(node, member_id)?;
    if author == node.me() {
        if owned {
            return Ok(None);
        }
        return Ok(match agreement_parties(node.conn, basis)? {
            Some((_, inflow, _)) if inflow == node.me() => None,
            Some((outflow, inflow, _)) => Some(format!(
                "its own record about a member it does not own, under agreement {basis} between {outflow} and {inflow}"
            )),
            None => Some(format!(
                "its own record about a member it does not own, under basis `{basis}`, no agreement here"
            )),
        });
    }
    if !owned {
        return Ok(Some(format!(
            "a record by {author} about a member this node does not own"
        )));
    }
    Ok(match agreement_parties(node.conn, basis)? {
        Some((outflow, inflow, active)) if outflow == node.me() && inflow == author && active > 0 => None,
        _ if received_by_transfer(node, member_id)? => None,
        Some((outflow, inflow, active)) => Some(format!(
            "basis {basis} is between {outflow} and {inflow} (active version {active}), so {author} is not a host of it"
        )),
        None => Some(format!("basis `{basis}` is no agreement here")),
    })
}

/// (4) Every stored record's author is its authority (docs/authority.md):
///
/// - `members`: the node's own, with the name its operators last wrote
///   (`written_name`, if the caller knows it): nobody else wrote into the
///   owned home section; or a tombstone of a member it released: no
///   personal data, the forward pointer naming a transfer this node sent
///   and that was released (or recorded on paper), the owner column naming
///   where it went; or, at a restored node, a tombstone with no transfer
///   (the member moved on by a release the restore forgot, learned from a
///   peer's later generation: docs/restore.md) that the node audited as a
///   conflict when it yielded (its holder may since have been restored to
///   before it got the member, as a receiver may after any release: the
///   end checks judge who owns it);
/// - `home_copies`: owned by another node that owns the member there, at a
///   version no newer than the owner's, or that released it since at a
///   higher generation (the `Moved` is on its way), unless the copy came
///   under an older log id of a restored owner (its `EpochComplete` settles
///   it);
/// - `host_sections`, `contacts`, `activities`: see [`record_authority`].
pub fn authors_are_authorities(
    nodes: &[NodeDb<'_>],
    index: usize,
    written_name: &dyn Fn(&str) -> Option<String>,
) -> Checked {
    const NAME: &str = "author-is-authority";
    let node = &nodes[index];
    let me = node.me();
    let bad = |detail: String| Err(violation(NAME, format!("at {me}: {detail}")));

    let mut stmt = node
        .conn
        .prepare_cached(
            "SELECT m.member_id, m.owner, m.name, m.national_id, m.phone,
                    m.moved_to_node || m.moved_to_place, t.state, m.moved_transfer_id, m.generation
             FROM members m LEFT JOIN transfers t
               ON t.transfer_id = m.moved_transfer_id AND t.direction = 'outgoing' AND t.member_id = m.member_id
             ORDER BY m.member_id",
        )
        .map_err(sql(NAME))?;
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        String,
        u64,
    )> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .map_err(sql(NAME))?
        .collect::<Result<_, _>>()
        .map_err(sql(NAME))?;
    let restored =
        liaison_core::epoch::was_restored(node.conn).map_err(|e| violation(NAME, e.to_string()))?;
    for (member, owner, name, national_id, phone, moved_to, transfer, transfer_id, generation) in
        rows
    {
        if owner != me {
            let released = matches!(transfer.as_deref(), Some("released" | "completed"));
            // The generation rule of a restore, or a `moved` naming a
            // later letter of the sender that released the member here
            // (docs/transfers.md, Two releases of one generation), which
            // a node never restored applies too.
            let yielded = transfer_id.is_empty()
                && moved_to == owner
                && audited_yield(node, &member, generation, restored).map_err(sql(NAME))?;
            if moved_to != owner || !(released || yielded) {
                return bad(format!(
                    "member {member} is held with owner {owner}, but not as a tombstone of a released transfer                      (forward pointer `{moved_to}`, transfer {transfer:?})"
                ));
            }
            if !(name.is_empty() && national_id.is_empty() && phone.is_empty()) {
                return bad(format!(
                    "the tombstone of member {member} (moved to {owner}) keeps personal data"
                ));
            }
            continue;
        }
        if let Some(expected) = written_name(&member) {
            if expected != name {
                return bad(format!(
                    "member {member}'s home section says name `{name}`, but this node's operators wrote `{expected}`"
                ));
            }
        }
    }

    let mut stmt = node
        .conn
        .prepare_cached(
            "SELECT member_id, owner, generation, counter FROM home_copies ORDER BY member_id",
        )
        .map_err(sql(NAME))?;
    let rows: Vec<(String, String, u64, u64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(sql(NAME))?
        .collect::<Result<_, _>>()
        .map_err(sql(NAME))?;
    for (member, owner, generation, counter) in rows {
        let Some(owner_db) = nodes.iter().find(|n| n.me() == owner) else {
            return bad(format!(
                "a copy of member {member} names owner {owner}, which is no node"
            ));
        };
        if owner == me {
            return bad(format!(
                "a copy of member {member} names this node as its owner"
            ));
        }
        // A copy of an older epoch of a restored owner (docs/restore.md): the
        // owner forgot what it sent after its backup, and its re-emission
        // ending with `EpochComplete` replaces or drops the copy.
        let epoch: Option<String> = node
            .conn
            .prepare_cached(
                "SELECT arrived_log_id FROM home_copies WHERE owner = ?1 AND member_id = ?2
                   AND arrived_log_id <> ''",
            )
            .map_err(sql(NAME))?
            .query_row([owner.as_str(), member.as_str()], |r| r.get(0))
            .optional()
            .map_err(sql(NAME))?;
        let owner_log = liaison_core::store::get_meta(owner_db.conn, "log_id")
            .map_err(|e| violation(NAME, e.to_string()))?;
        if epoch.is_some() && epoch != owner_log {
            continue;
        }
        let version: Option<(u64, u64)> = owner_db
            .conn
            .prepare_cached(
                "SELECT generation, counter FROM members WHERE member_id = ?1 AND owner = ?2",
            )
            .map_err(sql(NAME))?
            .query_row([member.as_str(), owner.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(sql(NAME))?;
        let released_since: bool = owner_db
            .conn
            .prepare_cached(
                "SELECT 1 FROM members WHERE member_id = ?1 AND owner <> ?2
                   AND (moved_to_node <> '' OR moved_to_place <> '') AND generation > ?3",
            )
            .map_err(sql(NAME))?
            .query_row(params![member, owner, generation], |_| Ok(()))
            .optional()
            .map_err(sql(NAME))?
            .is_some();
        match version {
            None if released_since => {}
            None => return bad(format!("a copy of member {member} names owner {owner}, which does not own it")),
            Some(v) if v < (generation, counter) => {
                return bad(format!(
                    "the copy of member {member} is at version {generation}.{counter}, newer than its owner {owner}'s {}.{}",
                    v.0, v.1
                ))
            }
            Some(_) => {}
        }
    }

    for (table, id_column) in [
        ("host_sections", "member_id || '/' || author"),
        ("contacts", "contact_id"),
        ("activities", "activity_id"),
    ] {
        let mut stmt = node
            .conn
            .prepare_cached(&format!(
                "SELECT {id_column}, member_id, author, basis FROM {table} ORDER BY 1"
            ))
            .map_err(sql(NAME))?;
        let rows: Vec<(String, String, String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(sql(NAME))?
            .collect::<Result<_, _>>()
            .map_err(sql(NAME))?;
        for (id, member, author, basis) in rows {
            if let Some(why) =
                record_authority(node, &member, &author, &basis).map_err(sql(NAME))?
            {
                return bad(format!(
                    "{table} {id} (member {member}, author {author}): {why}"
                ));
            }
        }
    }
    Ok(())
}

// -------------------------------------------------------------- quarantine

/// (5) Quarantine holds only events that can never be valid. Honest nodes
/// never send such events, so every quarantined event must be one the test
/// forged on purpose, or one a restored receiver marked as about something
/// it may have forgotten, or one refused between two owners of a member
/// the single-owner check tolerated when it arrived
/// (`forged(origin, log_id, seq, reason)`).
/// `rows`: the node's quarantine ([`quarantined`]).
pub fn quarantine_holds_only_invalid(
    node: &NodeDb<'_>,
    rows: &[Quarantined],
    forged: &dyn Fn(&str, &str, u64, &str) -> bool,
) -> Checked {
    const NAME: &str = "quarantine-only-invalid";
    for q in rows {
        let (origin, seq, reason) = (&q.origin, q.seq, &q.reason);
        if !forged(origin, &q.log_id, seq, reason) {
            return Err(violation(
                NAME,
                format!(
                    "at {}: honest event {seq} from {origin} was quarantined: {reason}",
                    node.me()
                ),
            ));
        }
    }
    Ok(())
}

/// One row of a node's quarantine.
pub struct Quarantined {
    pub origin: String,
    pub log_id: String,
    pub seq: u64,
    pub entity: String,
    pub reason: String,
}

/// A node's quarantine, in order.
pub fn quarantined(node: &NodeDb<'_>) -> rusqlite::Result<Vec<Quarantined>> {
    node.conn
        .prepare_cached("SELECT origin, log_id, seq, entity, reason FROM quarantine ORDER BY id")?
        .query_map([], |r| {
            Ok(Quarantined {
                origin: r.get(0)?,
                log_id: r.get(1)?,
                seq: r.get(2)?,
                entity: r.get(3)?,
                reason: r.get(4)?,
            })
        })?
        .collect()
}

/// Whether a quarantine `reason` refuses an owner's home section or Unshare
/// because this node owns the member too, or holds it until this node
/// yields to the later of two releases of the member's generation.
pub fn refused_as_owned_here(reason: &str, me: &str) -> bool {
    reason.contains(&format!("which is owned by {me}"))
        || reason.contains("but this node owns it at generation")
        || reason.contains(liaison_core::hosting::HELD_UNTIL_RELEASED)
}

// ------------------------------------------------------------- convergence

/// Whether `node` audited yielding `member` to a peer's `generation`
/// (`transfers::yield_to_later_generation`): at a restored node, by either
/// rule; at one never restored, only to a later letter of the sender
/// that released the member to it.
fn audited_yield(
    node: &NodeDb<'_>,
    member: &str,
    generation: u64,
    restored: bool,
) -> rusqlite::Result<bool> {
    Ok(node
        .conn
        .prepare_cached(
            "SELECT 1 FROM audit WHERE action = 'reconcile.conflict' AND target = ?1
             AND detail LIKE '%at generation ' || ?2 || ':%'
             AND (?3 OR detail LIKE '%a later letter of the sender%')",
        )?
        .query_row(rusqlite::params![member, generation, restored], |_| Ok(()))
        .optional()?
        .is_some())
}

/// What the owner believes the host holds: the basis of its `shares` row.
fn owner_share(owner: &NodeDb<'_>, member: &str, host: &str) -> rusqlite::Result<String> {
    Ok(owner
        .conn
        .prepare_cached("SELECT basis FROM shares WHERE member_id = ?1 AND peer = ?2")?
        .query_row([member, host], |r| r.get::<_, String>(0))
        .optional()?
        .map_or("the owner records no share".into(), |b| {
            format!("the owner records it shared under {b}")
        }))
}

/// The agreements a node holds: id → (outflow, inflow, state, version, active_version).
type AgreementRows = BTreeMap<String, (String, String, String, u64, u64)>;

fn agreements_of(node: &NodeDb<'_>) -> rusqlite::Result<AgreementRows> {
    let mut stmt = node.conn.prepare_cached(
        "SELECT agreement_id, outflow_node, inflow_node, state, version, active_version FROM agreements",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
        ))
    })?;
    rows.collect()
}

/// After quiescence: both parties of every agreement hold it in the same
/// state, at the same version and active version, and the same terms under
/// every version number both hold. With `all_final`, every
/// agreement that was ever active must also have ended (expired,
/// terminated); one never activated may stay `proposed` (nothing closes a
/// proposal whose period passed: it can no longer activate).
pub fn agreements_agree(nodes: &[NodeDb<'_>], all_final: bool) -> Checked {
    const NAME: &str = "agreements-agree";
    let all: Vec<AgreementRows> = nodes
        .iter()
        .map(agreements_of)
        .collect::<Result<_, _>>()
        .map_err(sql(NAME))?;
    for (i, node) in nodes.iter().enumerate() {
        for (id, (outflow, inflow, state, version, active)) in &all[i] {
            let ended = matches!(state.as_str(), "expired" | "terminated");
            if all_final && !ended && !(state == "proposed" && *active == 0) {
                return Err(violation(
                    "agreements-agree: not ended",
                    format!(
                        "agreement {id} is still {state} at {} after every clock passed its end",
                        node.me()
                    ),
                ));
            }
            let other = if outflow == node.me() {
                inflow
            } else {
                outflow
            };
            let Some(j) = nodes.iter().position(|n| n.me() == other) else {
                return Err(violation(
                    NAME,
                    format!("agreement {id} names {other}, which is no node"),
                ));
            };
            match all[j].get(id) {
                None => {
                    return Err(violation(
                        "agreements-agree: unknown to a party",
                        format!(
                            "agreement {id} is {state} at {} but unknown at {other}",
                            node.me()
                        ),
                    ))
                }
                Some((_, _, s, v, a)) if (s, v, a) != (state, version, active) => {
                    let both_ended = ended && matches!(s.as_str(), "expired" | "terminated");
                    return Err(violation(
                        if s != state {
                            "agreements-agree: different states"
                        } else if both_ended {
                            "agreements-agree: different history of an ended agreement"
                        } else {
                            "agreements-agree: different versions"
                        },
                        format!(
                            "agreement {id}: {} holds it {state} (version {version}, active {active}), {other} holds it {s} (version {v}, active {a})",
                            node.me()
                        ),
                    ));
                }
                Some(_) => {
                    if let Some(version) =
                        different_terms(node, &nodes[j], id).map_err(sql(NAME))?
                    {
                        return Err(violation(
                            "agreements-agree: different terms",
                            format!(
                                "agreement {id}: {} and {other} hold other terms as version {version}",
                                node.me()
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The first version of agreement `id` that both nodes hold with other
/// terms (a version number names one set of terms: the coordinator's).
fn different_terms(a: &NodeDb<'_>, b: &NodeDb<'_>, id: &str) -> rusqlite::Result<Option<u64>> {
    let versions = |node: &NodeDb<'_>| -> rusqlite::Result<BTreeMap<u64, Vec<u8>>> {
        node.conn
            .prepare_cached(
                "SELECT version, terms_hash FROM agreement_versions WHERE agreement_id = ?1",
            )?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    };
    let theirs = versions(b)?;
    Ok(versions(a)?
        .into_iter()
        .find(|(v, hash)| theirs.get(v).is_some_and(|h| h != hash))
        .map(|(v, _)| v))
}

/// After quiescence, home sections: every copy at a host is at its owner's
/// current version and held under an agreement the owner holds active and
/// covering the member for that host; and every member an active agreement
/// covers at its owner is held by that host, unless the host no longer may
/// hold it on its own clock (past the end plus grace, docs/agreements.md).
pub fn copies_converged(nodes: &[NodeDb<'_>]) -> Checked {
    const NAME: &str = "copies-converged";
    for host in nodes {
        let mut stmt = host
            .conn
            .prepare_cached("SELECT member_id, owner, generation, counter, name, basis FROM home_copies ORDER BY member_id")
            .map_err(sql(NAME))?;
        let copies: Vec<(String, String, u64, u64, String, String)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(sql(NAME))?
            .collect::<Result<_, _>>()
            .map_err(sql(NAME))?;
        for (member, owner, generation, counter, name, basis) in copies {
            let Some(owner_db) = nodes.iter().find(|n| n.me() == owner) else {
                return Err(violation(
                    NAME,
                    format!("{} holds member {member} of unknown {owner}", host.me()),
                ));
            };
            let home: Option<(u64, u64, String)> = owner_db
                .conn
                .prepare_cached("SELECT generation, counter, name FROM members WHERE member_id = ?1 AND owner = ?2")
                .map_err(sql(NAME))?
                .query_row([member.as_str(), owner.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(sql(NAME))?;
            let Some(home) = home else {
                return Err(violation(
                    NAME,
                    format!(
                        "{} holds member {member}, which {owner} does not own",
                        host.me()
                    ),
                ));
            };
            if (home.0, home.1, &home.2) != (generation, counter, &name) {
                return Err(violation(
                    "copies-converged: stale copy",
                    format!(
                                                "{} holds member {member} at version {generation}.{counter} (`{name}`) under {basis}, its owner {owner} is at {}.{} (`{}`); {}",
                        host.me(),
                        home.0,
                        home.1,
                        home.2,
                        owner_share(owner_db, &member, host.me()).map_err(sql(NAME))?
                    ),
                ));
            }
            let covering = agreements::covering(owner_db.conn, &owner_db.ctx(), &member)
                .map_err(|e| violation(NAME, e.to_string()))?;
            if !covering.iter().any(|(a, h)| *a == basis && h == host.me()) {
                return Err(violation(
                    "copies-converged: copy not covered at the owner",
                    format!(
                                                "{} holds member {member} under {basis}, but at its owner {owner} that agreement is not active and covering it for {} (covering: {covering:?}); {}",
                        host.me(),
                        host.me(),
                        owner_share(owner_db, &member, host.me()).map_err(sql(NAME))?
                    ),
                ));
            }
        }
    }
    for owner in nodes {
        let mut stmt = owner
            .conn
            .prepare_cached("SELECT member_id FROM members WHERE owner = ?1 ORDER BY member_id")
            .map_err(sql(NAME))?;
        let members: Vec<String> = stmt
            .query_map([owner.me()], |r| r.get(0))
            .map_err(sql(NAME))?
            .collect::<Result<_, _>>()
            .map_err(sql(NAME))?;
        for member in members {
            let covering = agreements::covering(owner.conn, &owner.ctx(), &member)
                .map_err(|e| violation(NAME, e.to_string()))?;
            for (agreement, host_id) in covering {
                let Some(host) = nodes.iter().find(|n| n.me() == host_id) else {
                    continue;
                };
                let owner_id = owner.id.clone();
                let may_hold =
                    agreements::host_may_hold(host.conn, &host.ctx(), &owner_id, &agreement)
                        .map_err(|e| violation(NAME, e.to_string()))?;
                if may_hold != Some(true) {
                    continue;
                }
                let held: bool = host
                    .conn
                    .prepare_cached("SELECT 1 FROM home_copies WHERE member_id = ?1 AND owner = ?2")
                    .map_err(sql(NAME))?
                    .query_row([member.as_str(), owner.me()], |_| Ok(()))
                    .optional()
                    .map_err(sql(NAME))?
                    .is_some();
                // The owner shares under another agreement, which the host's
                // clock (skewed ahead) already took past its end plus grace:
                // the host may not store it, and the owner moves to this one
                // when its own clock reaches that end (docs/replication.md: each date
                // is decided by one side on its own clock).
                let share_basis: Option<String> = owner
                    .conn
                    .prepare_cached("SELECT basis FROM shares WHERE member_id = ?1 AND peer = ?2")
                    .map_err(sql(NAME))?
                    .query_row([member.as_str(), host_id.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(sql(NAME))?;
                let past_at_host = match share_basis.as_deref() {
                    Some(b) if b != agreement => {
                        agreements::host_may_hold(host.conn, &host.ctx(), &owner_id, b)
                            .map_err(|e| violation(NAME, e.to_string()))?
                            == Some(false)
                    }
                    _ => false,
                };
                if !held && !past_at_host {
                    return Err(violation(
                        "copies-converged: covered member not held",
                        format!(
                                                        "agreement {agreement} is active at {} and covers member {member} for {host_id}, which holds it active too, but {host_id} holds no copy; {}",
                            owner.me(),
                            owner_share(owner, &member, &host_id).map_err(sql(NAME))?
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Records a node holds: key → (member, author, content, basis).
type RecordRows = BTreeMap<String, (String, String, String, String)>;

fn records(
    node: &NodeDb<'_>,
    table: &str,
    key: &str,
    content: &str,
) -> rusqlite::Result<RecordRows> {
    let mut stmt = node.conn.prepare_cached(&format!(
        "SELECT {key}, member_id, author, {content}, basis FROM {table} ORDER BY 1"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
        ))
    })?;
    rows.collect()
}

/// The outflow and inflow parties of agreement `basis`, as `node` holds it.
fn parties_of(node: &NodeDb<'_>, basis: &str) -> rusqlite::Result<Option<(String, String)>> {
    node.conn
        .prepare_cached("SELECT outflow_node, inflow_node FROM agreements WHERE agreement_id = ?1")?
        .query_row([basis], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Whether `owner` is the outflow party of agreement `basis`, as `node`
/// holds it.
fn outflow_party_is(node: &NodeDb<'_>, basis: &str, owner: &str) -> rusqlite::Result<bool> {
    Ok(parties_of(node, basis)?.is_some_and(|(outflow, _)| outflow == owner))
}

/// Whether `node` released `member_id` and keeps only its tombstone (its own
/// records about the member went with the release).
fn released(node: &NodeDb<'_>, member_id: &str) -> rusqlite::Result<bool> {
    Ok(node
        .conn
        .prepare_cached(
            "SELECT 1 FROM members WHERE member_id = ?1 AND owner <> ?2
               AND (moved_to_node <> '' OR moved_to_place <> '')",
        )?
        .query_row([member_id, node.me()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// After quiescence: host sections, contact events and activities a host
/// made about another node's member are held by that member's owner, the
/// same; and everything an owner holds from a host, the host holds (unless
/// the host released the member since: its records went with it). A member
/// that came by transfer keeps its records' content, but their basis may be
/// the transfer (relayed by the sender, docs/transfers.md) rather than the host's
/// agreement with the sender; a host section the host sent a new owner
/// directly has the basis of their agreement at the owner and keeps its
/// own at the host (docs/replication.md).
///
/// `lost`: members a restore made some node forget, or took back to an
/// earlier generation at a node that owned them (it forgot receiving them
/// since). A record a host made
/// under an agreement of a node that forgot the member, which another node
/// owns now (its ownership went back with a restore on both sides of a
/// transfer), has no owner that may take it (docs/restore.md accepts the loss).
pub fn host_records_converged(nodes: &[NodeDb<'_>], lost: &BTreeSet<String>) -> Checked {
    const NAME: &str = "host-records-converged";
    let tables: [(&str, &str, &str); 3] = [
        (
            "host_sections",
            "member_id || '/' || author",
            "generation || '.' || counter || ' ' || employer || ' ' || host_branch",
        ),
        ("contacts", "contact_id", "at || ' ' || channel"),
        ("activities", "activity_id", "kind || ' ' || date"),
    ];
    // Who owns each member.
    let mut owner_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let mut stmt = node
            .conn
            .prepare_cached("SELECT member_id FROM members WHERE owner = ?1")
            .map_err(sql(NAME))?;
        for id in stmt
            .query_map([node.me()], |r| r.get::<_, String>(0))
            .map_err(sql(NAME))?
        {
            owner_of.insert(id.map_err(sql(NAME))?, i);
        }
    }
    let same = |owner: &NodeDb<'_>,
                held: &(String, String, String, String),
                made: &(String, String, String, String)|
     -> rusqlite::Result<bool> {
        if held == made {
            return Ok(true);
        }
        // The same record under another basis: it came by a transfer
        // (relayed by the sender), or the host sent it to this owner
        // directly under their agreement (a new owner, at a later
        // generation), keeping its own basis.
        Ok((&held.0, &held.1, &held.2) == (&made.0, &made.1, &made.2)
            && (received_by_transfer(owner, &held.0)?
                || parties_of(owner, &held.3)?
                    .is_some_and(|(outflow, inflow)| outflow == owner.me() && inflow == held.1)))
    };
    for (table, key, content) in tables {
        let all: Vec<RecordRows> = nodes
            .iter()
            .map(|n| records(n, table, key, content))
            .collect::<Result<_, _>>()
            .map_err(sql(NAME))?;
        for (h, host) in nodes.iter().enumerate() {
            for (id, made) in &all[h] {
                if made.1 != host.me() {
                    continue;
                }
                let Some(&o) = owner_of.get(&made.0) else {
                    continue;
                };
                if o == h {
                    continue;
                }
                let held = all[o].get(id);
                let ok = match held {
                    Some(held) => {
                        same(&nodes[o], held, made).map_err(sql(NAME))?
                            || (table == "host_sections"
                                && written_for_a_forgotten_receiver(&nodes[o], host, made, lost)
                                    .map_err(sql(NAME))?)
                    }
                    None => {
                        lost.contains(&made.0)
                            && !outflow_party_is(host, &made.3, nodes[o].me()).map_err(sql(NAME))?
                    }
                };
                if !ok {
                    return Err(violation(
                        NAME,
                        format!(
                            "{table} {id} made by {} is {made:?} there, but its owner {} holds {held:?}",
                            host.me(),
                            nodes[o].me(),
                        ),
                    ));
                }
            }
        }
        for (o, owner) in nodes.iter().enumerate() {
            for (id, held) in &all[o] {
                let author = &held.1;
                if author == owner.me() {
                    continue;
                }
                let Some(h) = nodes.iter().position(|n| n.me() == author) else {
                    return Err(violation(
                        NAME,
                        format!(
                            "{table} {id} at {} names unknown author {author}",
                            owner.me()
                        ),
                    ));
                };
                let made = all[h].get(id);
                let ok = match made {
                    Some(made) => {
                        same(owner, held, made).map_err(sql(NAME))?
                            || (table == "host_sections"
                                && written_for_a_forgotten_receiver(owner, &nodes[h], made, lost)
                                    .map_err(sql(NAME))?)
                    }
                    // The author released the member (or, restored from a
                    // backup, forgot it and adopted its release).
                    None => {
                        released(&nodes[h], &held.0).map_err(sql(NAME))?
                            || received_by_transfer(owner, &held.0).map_err(sql(NAME))?
                    }
                };
                if !ok {
                    return Err(violation(
                        NAME,
                        format!(
                            "{table} {id} by {author} is {held:?} at {}, but {author} holds {made:?}",
                            owner.me()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether a host's section `made` is one written for a receiver that
/// forgot the member (docs/restore.md, What is lost): both sides of the
/// transfer were restored to before it, the section is at a later
/// generation than the owner owns the member at, under another node's
/// agreement, and the owner shares the member with the host no more (the
/// host holds no copy of it from the owner; one would have sent the
/// section to the owner), so the section stays at the host only.
fn written_for_a_forgotten_receiver(
    owner: &NodeDb<'_>,
    host: &NodeDb<'_>,
    made: &(String, String, String, String),
    lost: &BTreeSet<String>,
) -> rusqlite::Result<bool> {
    let (member_id, author, _, basis) = made;
    if !lost.contains(member_id) || outflow_party_is(host, basis, owner.me())? {
        return Ok(false);
    }
    let generation: i64 = host
        .conn
        .prepare_cached(
            "SELECT generation FROM host_sections WHERE member_id = ?1 AND author = ?2",
        )?
        .query_row([member_id, author], |r| r.get(0))?;
    let owned_at: Option<i64> = owner
        .conn
        .prepare_cached("SELECT generation FROM members WHERE member_id = ?1 AND owner = ?2")?
        .query_row([member_id.as_str(), owner.me()], |r| r.get(0))
        .optional()?;
    if owned_at.is_none_or(|g| g >= generation) {
        return Ok(false);
    }
    let shared: bool = host
        .conn
        .prepare_cached("SELECT 1 FROM home_copies WHERE member_id = ?1 AND owner = ?2")?
        .query_row([member_id.as_str(), owner.me()], |_| Ok(()))
        .optional()?
        .is_some();
    Ok(!shared)
}

/// After every clock passed every agreement's end plus grace and messages
/// got through: no host holds any home section any more.
pub fn no_copies_left(nodes: &[NodeDb<'_>]) -> Checked {
    const NAME: &str = "no-copies-after-every-end";
    for node in nodes {
        let held: Option<(String, String)> = node
            .conn
            .prepare_cached("SELECT member_id, basis FROM home_copies LIMIT 1")
            .map_err(sql(NAME))?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql(NAME))?;
        if let Some((member, basis)) = held {
            return Err(violation(
                NAME,
                format!("{} still holds member {member} under {basis}", node.me()),
            ));
        }
    }
    Ok(())
}
