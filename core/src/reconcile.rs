//! Backup, restore and reconcile (DESIGN §7).
//!
//! A restored node (a backup copied into place, or a new database under a
//! node id its peers already know) forgot what it did after the backup,
//! while its peers remember. It takes a new log id (a new *epoch*) and,
//! before it acts as an owner again, asks every peer what that peer holds
//! from it and adopts it. Plain synchronous code over a SQLite connection
//! and a [`Ctx`], like the rest of the core: the gRPC edge only moves the
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
//! 5. While [`is_reconciling`], owner actions are refused
//!    ([`refuse_owner_action`]) and the calendar makes no owner decisions.
//!
//! A simulator restores node R like this: take the backup with
//! `store::backup(&conn, path, now_ms)` (or copy the file and call
//! [`mark_backup`] on the copy), later open the copy with `Store::open` (it
//! migrates), call [`begin_restore_if_marked`], then for each peer P, on a
//! step where P is reachable: `let b = holdings_for(&p_conn, &p_ctx, &R)?;
//! adopt(&mut r_conn, &r_ctx, &P, &b)?;` and only then deliver P's log to R
//! (`read_batch` at P from R's cursor, `apply_batch` at R) and R's log to P,
//! if [`may_serve`]: from seq 0 under R's new log id, since a cursor is keyed
//! by (origin, log id). R's old-epoch events that P had not applied are
//! still in R's log and reach P under the new log id; those P had applied
//! are gone. `skip_peer` stands for `reconcile --without-peer`.
//!
//! Peer side (node P): [`holdings_for`]`(&conn, &ctx, R) -> Vec<HoldingsBatch>`
//! answers R's `Holdings` call; `apply_batch` records under which log id of
//! R each home-section copy arrived and applies R's `EpochComplete`
//! ([`apply_epoch_complete`]): the copies of R's members that arrived under
//! an older log id and were not sent again are deleted. Only home-section
//! copies are: every other record R authored was adopted back by R.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{log, members, transfers, Ctx};
use crate::store::audit::{self, Actor, NewEntry, Outcome};
use crate::store::{get_meta, set_meta};
use crate::{Error, Refusal};
use liaison_types::identity::NodeId;

/// Records per `HoldingsBatch` (an agreement counts one per version).
pub const HOLDINGS_BATCH_RECORDS: usize = 200;
/// Encoded bytes per `HoldingsBatch`: a quarter of the default federation
/// message limit (`limits.message_bytes_max`, 4 MiB), so a batch always fits.
pub const HOLDINGS_BATCH_BYTES: usize = 1024 * 1024;

/// The counter of letter numbers this node issued (`store::counter`).
pub const LETTER_COUNTER: &str = "letter";

/// Why and since when a node reconciles, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileStart {
    pub previous_log_id: String,
    pub log_id: String,
    /// When the backup was taken; 0 for a new database under a known id.
    pub backup_at_ms: i64,
    pub restored_at_ms: i64,
}

/// What adopting one peer's holdings did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptReport {
    pub host_sections: u64,
    pub contacts: u64,
    pub activities: u64,
    pub agreements: u64,
    pub transfers_released: u64,
    pub transfers_completed: u64,
    pub transfers_aborted: u64,
    /// Records the peer made as host of this node's members, applied
    /// again (the copies here may predate the backup).
    pub peer_records: u64,
    /// Home sections sent to the peer again under the new log id.
    pub re_sent: u64,
    /// Copies the peer holds of members this node no longer has: dropped
    /// by the peer at `EpochComplete`.
    pub forgotten: u64,
    /// Members the peer's completed transfer took that were edited here
    /// after the restore (the peer's record wins).
    pub conflicts: Vec<String>,
    /// Old-epoch events the peer had applied, deleted from the log.
    pub events_dropped: u64,
    /// Agreement and transfer reports not believed or not applicable, with
    /// the reason.
    pub refused: Vec<String>,
    /// True when this adoption ended reconciliation.
    pub finished: bool,
}

impl AdoptReport {
    pub fn summary(&self) -> String {
        let mut text = format!(
            "adopted {} host sections, {} contacts, {} activities, {} agreements; {} records the peer made as host applied again; transfers: {} released, {} completed, {} aborted; {} home sections sent again, {} copies of forgotten members to be dropped",
            self.host_sections,
            self.contacts,
            self.activities,
            self.agreements,
            self.peer_records,
            self.transfers_released,
            self.transfers_completed,
            self.transfers_aborted,
            self.re_sent,
            self.forgotten
        );
        if !self.refused.is_empty() {
            text.push_str(&format!("; not adopted: {}", self.refused.join("; ")));
        }
        if !self.conflicts.is_empty() {
            text.push_str(&format!(
                "; conflict: members edited here after the restore now owned by the peer: {}",
                self.conflicts.join(", ")
            ));
        }
        text
    }
}

/// The latest restore of this database (the `restore` table's one row).
#[derive(Debug, Clone)]
struct Restore {
    reconciling: bool,
    restored_at_ms: i64,
    /// 0: a new database under a known node id.
    backup_at_ms: i64,
    previous_log_id: String,
    /// The last sequence number this file had written when restored.
    seq_floor: u64,
    /// The last letter number this file had issued when restored.
    letter_floor: u64,
    /// 0 while reconciling.
    finished_at_ms: i64,
}

fn restore_row(conn: &Connection) -> Result<Option<Restore>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT reconciling, restored_at_ms, backup_at_ms, previous_log_id, seq_floor, letter_floor, finished_at_ms
             FROM restore WHERE id = 1",
        )?
        .query_row([], |r| {
            Ok(Restore {
                reconciling: r.get(0)?,
                restored_at_ms: r.get(1)?,
                backup_at_ms: r.get(2)?,
                previous_log_id: r.get(3)?,
                seq_floor: r.get(4)?,
                letter_floor: r.get(5)?,
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

/// The letter number this file had issued when it was restored (the
/// counter's value if it never was).
pub fn letter_floor(conn: &Connection) -> Result<u64, Error> {
    match restore_row(conn)? {
        Some(restore) => Ok(restore.letter_floor),
        None => crate::store::counter(conn, LETTER_COUNTER),
    }
}

/// Whether `log_id` is one this database wrote under (now or before).
fn is_own_log_id(conn: &Connection, log_id: &str) -> Result<bool, Error> {
    if get_meta(conn, "log_id")?.as_deref() == Some(log_id) {
        return Ok(true);
    }
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM past_log_ids WHERE log_id = ?1)")?
        .query_row([log_id], |r| r.get(0))?)
}

/// The operator actions refused while reconciling: every change to the
/// registry, agreements and transfers. Reads, peers, quarantine, backup and
/// reconcile itself stay allowed.
pub fn is_owner_action(action: &str) -> bool {
    [
        "member.",
        "outflow.",
        "contact.",
        "activity.",
        "agreement.",
        "transfer.",
    ]
    .iter()
    .any(|prefix| action.starts_with(prefix))
        && action != "member.export"
}

/// Refuses an owner action while the node reconciles, saying what to do.
pub fn refuse_owner_action(conn: &Connection, action: &str) -> Result<(), Error> {
    if !is_owner_action(action) || !is_reconciling(conn)? {
        return Ok(());
    }
    let waiting: Vec<String> = conn
        .prepare("SELECT peer FROM reconcile_peers WHERE state = 'waiting' ORDER BY peer")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Err(Error::Refused(Refusal::Reconciling { waiting }))
}

/// A database written by `liaisonctl backup` (`store::backup`) carries
/// this mark in `meta`.
use crate::store::BACKUP_MARK;

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
/// peer already knows (DESIGN §2): begin the restore.
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
    // The log ids whose sequence numbers are this file's: every one it had
    // (see `adopt`).
    tx.execute("UPDATE past_log_ids SET lineage = 1", [])?;
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
    let seq_floor: u64 = tx
        .query_row(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    set_meta(&tx, "log_id", &log_id)?;
    // The letters this database knows it issued; peers' reports of later
    // ones are believed (`transfers::adopt_reported`).
    let letter_floor = crate::store::counter(&tx, LETTER_COUNTER)?;
    tx.execute(
        "INSERT OR REPLACE INTO restore (id, reconciling, restored_at_ms, backup_at_ms, previous_log_id, seq_floor,
             letter_floor, finished_at_ms)
         VALUES (1, 1, ?1, ?2, ?3, ?4, ?5, 0)",
        params![ctx.now_ms.max(1), backup_at_ms, previous_log_id, seq_floor, letter_floor],
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
                lost_period(backup_at_ms, ctx.now_ms)
            ),
        },
    )?;
    tx.commit()?;
    finish(conn, ctx)?;
    Ok(start)
}

fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&super::china_time())
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// The period of local writes that may be lost, in words.
pub fn lost_period(backup_at_ms: i64, restored_at_ms: i64) -> String {
    if backup_at_ms == 0 {
        return format!(
            "a new database under a known node id: every local write before {} that no peer holds is lost",
            format_ms(restored_at_ms)
        );
    }
    format!(
        "local writes from the backup ({}) to the restore ({}) that no peer holds are lost",
        format_ms(backup_at_ms),
        format_ms(restored_at_ms)
    )
}

fn peer_state(conn: &Connection, peer: &NodeId) -> Result<Option<String>, Error> {
    peer_state_of(conn, peer.as_str())
}

fn peer_state_of(conn: &Connection, peer: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached("SELECT state FROM reconcile_peers WHERE peer = ?1")?
        .query_row([peer], |r| r.get(0))
        .optional()?)
}

/// Whether this node must still ask `peer` for its holdings (waiting, or
/// skipped by an operator and now back).
pub fn needs_holdings(conn: &Connection, peer: &NodeId) -> Result<bool, Error> {
    Ok(matches!(
        peer_state(conn, peer)?.as_deref(),
        Some("waiting" | "skipped")
    ))
}

/// Whether `peer` may pull our log: not until its holdings are adopted,
/// since until then the log still holds old-epoch events it applied.
pub fn may_serve(conn: &Connection, peer: &NodeId) -> Result<bool, Error> {
    needs_holdings(conn, peer).map(|needs| !needs)
}

// ------------------------------------------------------------- peer side

/// Room for one more record of `weight` records and `bytes` encoded bytes:
/// starts a new batch when the last one would pass either bound.
fn push_batch<'a>(
    batches: &'a mut Vec<pb::HoldingsBatch>,
    count: &mut (usize, usize),
    weight: usize,
    bytes: usize,
) -> &'a mut pb::HoldingsBatch {
    let full = count.0 + weight > HOLDINGS_BATCH_RECORDS || count.1 + bytes > HOLDINGS_BATCH_BYTES;
    if full && count.0 > 0 {
        batches.push(pb::HoldingsBatch::default());
        *count = (0, 0);
    }
    count.0 += weight;
    count.1 += bytes;
    batches.last_mut().expect("at least one batch")
}

/// What this node holds from `requester`, in bounded batches (at least
/// one; the last is marked): the cursors of its logs, copies of its home
/// sections, and every record it authored that this node holds in full.
pub fn holdings_for(
    conn: &Connection,
    ctx: &Ctx<'_>,
    requester: &NodeId,
) -> Result<Vec<pb::HoldingsBatch>, Error> {
    let who = requester.as_str();
    let mut batches = vec![pb::HoldingsBatch::default()];
    let mut count = (0usize, 0usize);
    batches[0].cursors = conn
        .prepare("SELECT log_id, seq FROM cursors WHERE peer = ?1 ORDER BY log_id")?
        .query_map([who], |r| {
            Ok(pb::LogCursor {
                log_id: r.get(0)?,
                seq: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let copy_ids: Vec<String> = conn
        .prepare("SELECT member_id FROM home_copies WHERE owner = ?1 ORDER BY member_id")?
        .query_map([who], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for id in copy_ids {
        if let Some(copy) = members::load_copy(conn, &id)? {
            let bytes = copy.section.encoded_len();
            push_batch(&mut batches, &mut count, 1, bytes)
                .home_copies
                .push(copy.section);
        }
    }
    let mut own = members::HostRecords::read(conn, "r.author = ?1", params![who])?;
    add_released_records(conn, who, &mut own)?;
    // What this node made as host of the requester's members under an
    // agreement between the two: the requester's copies of them.
    let made = members::HostRecords::read(
        conn,
        "r.author = ?2 AND r.basis IN (SELECT agreement_id FROM agreements WHERE outflow_node = ?1 AND inflow_node = ?2)",
        params![who, ctx.me.as_str()],
    )?;
    for section in own.sections {
        let bytes = section.encoded_len();
        push_batch(&mut batches, &mut count, 1, bytes)
            .host_sections
            .push(section);
    }
    for contact in own.contacts {
        let bytes = contact.encoded_len();
        push_batch(&mut batches, &mut count, 1, bytes)
            .contacts
            .push(contact);
    }
    for activity in own.activities {
        let bytes = activity.encoded_len();
        push_batch(&mut batches, &mut count, 1, bytes)
            .activities
            .push(activity);
    }
    for section in made.sections {
        let bytes = section.encoded_len();
        push_batch(&mut batches, &mut count, 1, bytes)
            .made_host_sections
            .push(section);
    }
    for contact in made.contacts {
        let bytes = contact.encoded_len();
        push_batch(&mut batches, &mut count, 1, bytes)
            .made_contacts
            .push(contact);
    }
    for activity in made.activities {
        let bytes = activity.encoded_len();
        push_batch(&mut batches, &mut count, 1, bytes)
            .made_activities
            .push(activity);
    }
    for agreement in held_agreements(conn, who)? {
        let bytes = agreement.encoded_len();
        push_batch(
            &mut batches,
            &mut count,
            1 + agreement.versions.len(),
            bytes,
        )
        .agreements
        .push(agreement);
    }
    let transfers = conn
        .prepare(
            "SELECT t.transfer_id, t.letter_no, t.sender, t.receiver, t.member_id, t.member_name, t.state,
                    t.issued_on, t.expires_on, t.valid_days, t.reason, t.branch,
                    COALESCE((SELECT generation FROM members m WHERE m.member_id = t.member_id), 0),
                    t.released_generation,
                    t.sender = ?2 AND t.state IN ('released', 'completed') AND NOT EXISTS (SELECT 1 FROM events e
                        WHERE e.audience = ?1 AND e.entity = t.transfer_id AND e.kind = ?3)
             FROM transfers t WHERE t.sender = ?1 OR t.receiver = ?1 ORDER BY t.transfer_id",
        )?
        .query_map(params![who, ctx.me.as_str(), EventKind::TransferRelease as i32], |r| {
            Ok(pb::HeldTransfer {
                transfer_id: r.get(0)?,
                letter_no: r.get(1)?,
                sender: r.get(2)?,
                receiver: r.get(3)?,
                member_id: r.get(4)?,
                member_name: r.get(5)?,
                state: r.get(6)?,
                issued_on: r.get(7)?,
                expires_on: r.get(8)?,
                valid_days: r.get(9)?,
                reason: r.get(10)?,
                branch: r.get(11)?,
                generation: r.get(12)?,
                released_generation: r.get(13)?,
                release_dropped: r.get(14)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for transfer in transfers {
        let bytes = transfer.encoded_len();
        push_batch(&mut batches, &mut count, 1, bytes)
            .transfers
            .push(transfer);
    }
    // What this node made as host of the requester's members, and under
    // which agreement: the requester shared them so.
    let hosted: Vec<pb::HostedUnder> = conn
        .prepare(
            "SELECT DISTINCT r.member_id, r.basis FROM (
                 SELECT member_id, basis, author FROM host_sections
                 UNION ALL SELECT member_id, basis, author FROM contacts
                 UNION ALL SELECT member_id, basis, author FROM activities) r
             JOIN agreements a ON a.agreement_id = r.basis
             WHERE r.author = ?2 AND a.outflow_node = ?1 AND a.inflow_node = ?2
             ORDER BY r.member_id, r.basis",
        )?
        .query_map(params![who, ctx.me.as_str()], |r| {
            Ok(pb::HostedUnder {
                member_id: r.get(0)?,
                basis: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for h in hosted {
        let bytes = h.encoded_len();
        push_batch(&mut batches, &mut count, 1, bytes)
            .hosted
            .push(h);
    }
    batches.last_mut().expect("one batch").last = true;
    Ok(batches)
}

/// Records `who` authored that left this node with a member it released:
/// the release events in its log carry them (transfer events are never
/// compacted), while the receiver may not have applied them yet, so no
/// node's tables may hold them when `who`, restored, asks. Added to `own`
/// where it holds nothing newer.
fn add_released_records(
    conn: &Connection,
    who: &str,
    own: &mut members::HostRecords,
) -> Result<(), Error> {
    let payloads: Vec<Vec<u8>> = conn
        .prepare("SELECT payload FROM events WHERE kind = ?1 ORDER BY seq")?
        .query_map([EventKind::TransferRelease as i32], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let version = |v: &Option<pb::Version>| v.map_or((0, 0), |v| (v.generation, v.counter));
    for payload in payloads {
        let Some(record) = pb::TransferRelease::decode(payload.as_slice())
            .ok()
            .and_then(|r| r.record)
        else {
            continue;
        };
        for section in record.host_sections.into_iter().filter(|r| r.author == who) {
            match own
                .sections
                .iter_mut()
                .find(|s| s.member_id == section.member_id && s.author == section.author)
            {
                Some(held) if version(&held.version) >= version(&section.version) => {}
                Some(held) => *held = section,
                None => own.sections.push(section),
            }
        }
        for contact in record.contacts.into_iter().filter(|r| r.author == who) {
            if !own
                .contacts
                .iter()
                .any(|c| c.contact_id == contact.contact_id)
            {
                own.contacts.push(contact);
            }
        }
        for activity in record.activities.into_iter().filter(|r| r.author == who) {
            if !own
                .activities
                .iter()
                .any(|a| a.activity_id == activity.activity_id)
            {
                own.activities.push(activity);
            }
        }
    }
    Ok(())
}

fn held_agreements(conn: &Connection, who: &str) -> Result<Vec<pb::HeldAgreement>, Error> {
    let mut list: Vec<pb::HeldAgreement> = conn
        .prepare(
            "SELECT agreement_id, number, outflow_node, inflow_node, state, version, active_version, ended_reason, ended_by
             FROM agreements WHERE outflow_node = ?1 OR inflow_node = ?1 ORDER BY agreement_id",
        )?
        .query_map([who], |r| {
            Ok(pb::HeldAgreement {
                agreement_id: r.get(0)?,
                number: r.get(1)?,
                outflow_node: r.get(2)?,
                inflow_node: r.get(3)?,
                state: r.get(4)?,
                version: r.get(5)?,
                active_version: r.get(6)?,
                ended_reason: r.get(7)?,
                ended_by: r.get(8)?,
                versions: Vec::new(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for agreement in &mut list {
        let versions: Vec<u64> = conn
            .prepare(
                "SELECT version FROM agreement_versions WHERE agreement_id = ?1 ORDER BY version",
            )?
            .query_map([&agreement.agreement_id], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        for version in versions {
            if let Some(v) =
                super::agreements::stored_version(conn, &agreement.agreement_id, version)?
            {
                agreement.versions.push(v);
            }
        }
    }
    Ok(list)
}

/// Inside `apply_batch`: the home section of `member_id` that `origin`
/// sent again in its log `log_id` left the copy here as it was (not newer):
/// the copy counts as sent in that log, so the owner's `EpochComplete` for
/// it keeps the copy.
pub fn note_copy_epoch(
    conn: &Connection,
    origin: &NodeId,
    member_id: &str,
    log_id: &str,
) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE home_copies SET arrived_log_id = ?3
         WHERE member_id = ?2 AND owner = ?1 AND arrived_log_id <> ?3",
    )?
    .execute(params![origin.as_str(), member_id, log_id])?;
    Ok(())
}

/// Inside `apply_batch`: `origin` finished re-emitting under `log_id`.
/// Deletes the copies of `origin`'s home sections that arrived under an
/// older log id and were not sent again. Returns how many.
pub fn apply_epoch_complete(
    conn: &Connection,
    origin: &NodeId,
    log_id: &str,
    event: &pb::Event,
) -> Result<usize, super::apply::Rejection> {
    use super::apply::Rejection;
    let complete = pb::EpochComplete::decode(event.payload.as_slice())
        .map_err(|e| Rejection::Invalid(format!("malformed epoch_complete payload: {e}")))?;
    if complete.log_id != log_id {
        return Err(Rejection::Invalid(format!(
            "epoch_complete names log id {} but arrived under log id {log_id}",
            complete.log_id
        )));
    }
    let stale: Vec<String> = conn
        .prepare("SELECT member_id FROM home_copies WHERE owner = ?1 AND arrived_log_id <> ?2")?
        .query_map(params![origin.as_str(), log_id], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for member_id in &stale {
        members::delete_copy(conn, member_id)?;
    }
    tracing::info!(peer = %origin, log_id, dropped = stale.len(), re_sent = complete.re_sent, "peer's epoch complete");
    Ok(stale.len())
}

// ------------------------------------------------------------- restored side

/// Adopts what `peer` holds from this node (DESIGN §7), in one transaction,
/// and ends the re-emission to it with `EpochComplete`. `batches` is the
/// whole answer, the last batch marked.
pub fn adopt(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
) -> Result<AdoptReport, Error> {
    if !batches.last().is_some_and(|b| b.last) {
        return Err(Error::invalid(format!(
            "the holdings of {peer} are incomplete (no last batch): ask again"
        )));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !needs_holdings(&tx, peer)? {
        return Err(Error::conflict(format!(
            "{peer} is not waiting to be reconciled: `reconcile status` shows the peers"
        )));
    }
    let me = ctx.me.as_str();
    let restored_at_ms = restore_row(&tx)?.map_or(0, |r| r.restored_at_ms);
    let mut report = AdoptReport::default();

    // 1. The old log: events the peer applied go; the sequence jumps past
    //    every cursor. Along one database file's lineage (a backup and the
    //    epochs restored from it) sequence numbers only rise, since every
    //    reconciliation jumps past the peers' cursors, so the peer applied
    //    an old event iff one of its cursors on a log of that lineage
    //    reaches its seq. A log of another branch (this node restored
    //    before from another backup, or a new database under a known id)
    //    numbered its own events, which may reuse this file's numbers: its
    //    cursors prove nothing about this file's events (dropping by them
    //    would drop an event the peer never got).
    let cursor_max = batches
        .iter()
        .flat_map(|b| &b.cursors)
        .map(|c| c.seq)
        .max()
        .unwrap_or(0);
    let known: std::collections::HashSet<String> = tx
        .prepare("SELECT log_id FROM past_log_ids WHERE lineage = 1")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let applied_max = batches
        .iter()
        .flat_map(|b| &b.cursors)
        .filter(|c| known.contains(&c.log_id))
        .map(|c| c.seq)
        .max()
        .unwrap_or(0);
    let seq_floor = restore_row(&tx)?.map_or(0, |r| r.seq_floor);
    report.events_dropped = tx.execute(
        "DELETE FROM events WHERE audience = ?1 AND seq <= ?2",
        params![peer.as_str(), applied_max.min(seq_floor)],
    )? as u64;
    jump_sequence(&tx, cursor_max)?;
    // The peer pulled a log of this node that this file's lineage never
    // had: this node was restored before, from another backup, and acted
    // on that branch (it may have issued letter numbers again).
    let current_log_id = get_meta(&tx, "log_id")?.unwrap_or_default();
    let other_branch = batches
        .iter()
        .flat_map(|b| &b.cursors)
        .any(|c| c.log_id != current_log_id && !known.contains(&c.log_id));
    for cursor in batches.iter().flat_map(|b| &b.cursors) {
        if cursor.log_id != current_log_id {
            tx.execute(
                "INSERT OR IGNORE INTO past_log_ids (log_id, lineage) VALUES (?1, 0)",
                [&cursor.log_id],
            )?;
        }
    }

    // 2. Agreements first: they decide what is shared.
    for held in batches.iter().flat_map(|b| &b.agreements) {
        if held.outflow_node != me && held.inflow_node != me {
            continue;
        }
        match adopt_agreement(&tx, ctx, held)? {
            AgreementAdoption::Changed => report.agreements += 1,
            AgreementAdoption::Unchanged => {}
            AgreementAdoption::Refused(why) => {
                tracing::warn!(%peer, agreement = %held.agreement_id, why = %why, "agreement report not adopted");
                report.refused.push(why);
            }
        }
    }

    //    Open agreements the peer coordinates and no longer holds: it
    //    forgot them in a restore of its own; remind it.
    let reported: std::collections::BTreeSet<&str> = batches
        .iter()
        .flat_map(|b| &b.agreements)
        .map(|a| a.agreement_id.as_str())
        .collect();
    super::agreements::remind_forgotten(&tx, ctx, peer, &reported)?;

    // 3. Members the peer hosted under an agreement with this node were
    //    shared with it under that agreement, even if this node forgot:
    //    the peer's records under that basis stay acceptable here
    //    (`agreements::host_record_allowed`), also once the transfer rule
    //    below releases the member.
    //    The member may be one this node released since (its records go
    //    to the new owner) or, received after the backup, one it does not
    //    know yet (its sender releases it again): only a member another
    //    node owns and this node never held is not this node's to say.
    for h in batches.iter().flat_map(|b| &b.hosted) {
        let owned = tx
            .prepare_cached(
                "SELECT NOT EXISTS (SELECT 1 FROM members WHERE member_id = ?1 AND owner <> ?2 AND moved_transfer_id = '')",
            )?
            .query_row([h.member_id.as_str(), me], |r| r.get::<_, bool>(0))?;
        if owned && coordinates(&tx, &h.basis, me, peer)? {
            note_disclosed(&tx, ctx, peer, &h.member_id, &h.basis, (0, 0))?;
        }
    }

    // 4. Transfers this node sent: at most one per member is finished.
    let sent: Vec<&pb::HeldTransfer> = batches
        .iter()
        .flat_map(|b| &b.transfers)
        .filter(|t| t.sender == me && t.receiver == peer.as_str())
        .collect();
    for held in &sent {
        let newest = !sent.iter().any(|other| {
            other.member_id == held.member_id
                && (transfers::letter_seq(&other.letter_no), &other.letter_no)
                    > (transfers::letter_seq(&held.letter_no), &held.letter_no)
        }) && !newer_local_transfer(&tx, held, restored_at_ms)?;
        match transfers::adopt_reported(&tx, ctx, held, newest, restored_at_ms, other_branch)? {
            transfers::Adopted::Released => report.transfers_released += 1,
            transfers::Adopted::Completed { edited } => {
                report.transfers_completed += 1;
                if edited {
                    report.conflicts.push(held.member_id.clone());
                }
            }
            transfers::Adopted::Aborted => report.transfers_aborted += 1,
            transfers::Adopted::Refused(why) => {
                tracing::warn!(%peer, transfer = %held.transfer_id, why = %why, "transfer report not adopted");
                report.refused.push(why);
            }
            transfers::Adopted::Kept | transfers::Adopted::Recorded => {}
        }
    }

    //    Offers the peer sent this node: those it received first, then
    //    the peer's decision on the others, where this node forgot it
    //    applied it. In that order: applying a cancel may answer a stale
    //    offer (`transfers::offer_is_stale`), and an offer is not stale if
    //    its re-issue brought the member.
    for held in batches.iter().flat_map(|b| &b.transfers) {
        if transfers::adopt_received(&tx, ctx, peer, held)? {
            report.transfers_completed += 1;
        }
    }
    for held in batches.iter().flat_map(|b| &b.transfers) {
        if transfers::adopt_sender_decision(&tx, ctx, peer, held)? {
            report.transfers_aborted += 1;
        }
    }

    // 4b. Records this node authored, held in full by the peer, that it
    //     may hold itself: about a member it owns (after the transfer rule,
    //     a member it released is a tombstone here and its records went with
    //     the release), or made as a host under an agreement in which it is
    //     the inflow party.
    for held in batches.iter().flat_map(|b| &b.host_sections) {
        if held.author != me {
            continue;
        }
        // Older than this node's release of the member (a tombstone here:
        // perhaps released just now, by the transfer rule): it went with
        // that release, which carried this node's sections at the versions
        // it held, and the receiver keeps the newer of the two. This node
        // holds none of them, as after any release.
        let released_since = members::load_home(&tx, &held.member_id)?.is_some_and(|home| {
            home.owner != me && held.version.unwrap_or_default().generation < home.generation
        });
        if released_since {
            continue;
        }
        let local = members::host_section(&tx, &held.member_id, me)?;
        // Relayed to the member's new owner, a section names the transfer
        // as its basis; this node made it under its own agreement, which
        // its section here still names, if it holds one. If it holds
        // none, it cannot hold the section under a basis that is not its
        // own, but no older version of it may come back either, and its
        // next write must pass that version.
        let basis = if may_hold_own_record(&tx, me, &held.member_id, &held.basis)? {
            held.basis.clone()
        } else {
            match &local {
                Some(l) if may_hold_own_record(&tx, me, &held.member_id, &l.basis)? => {
                    l.basis.clone()
                }
                _ => {
                    members::raise_host_section_floor(
                        &tx,
                        &held.member_id,
                        held.version.unwrap_or_default(),
                    )?;
                    continue;
                }
            }
        };
        let section = &pb::HostSection {
            basis,
            ..held.clone()
        };
        let incoming = section.version.unwrap_or_default();
        let incoming = (incoming.generation, incoming.counter);
        let floor = members::host_section_floor(&tx, &section.member_id)?;
        let newer = local
            .as_ref()
            .is_none_or(|c| incoming > (c.generation, c.counter))
            && floor.is_none_or(|f| incoming >= (f.generation, f.counter));
        // Written here since the restore (an operator's host-set while
        // this peer was skipped, or before it answered), at a version the
        // peer may hold other contents under: the latest write stands, at a
        // counter past the peer's, where it can still be sent; where it
        // cannot (the agreement ended since), the peer's stands. Either
        // way the two never differ at one version.
        let rewritten = local
            .as_ref()
            .is_some_and(|c| incoming >= (c.generation, c.counter))
            && tx.query_row(
                "SELECT updated_at_ms FROM host_sections WHERE member_id = ?1 AND author = ?2",
                params![section.member_id, me],
                |r| r.get::<_, i64>(0),
            )? > restored_at_ms;
        let ours = |tx: &Connection| -> Result<pb::HostSection, Error> {
            members::HostRecords::read(
                tx,
                "r.member_id = ?1 AND r.author = ?2",
                params![section.member_id, me],
            )?
            .sections
            .pop()
            .ok_or_else(|| Error::invalid("host section vanished".into()))
        };
        // The same version with other contents, not written since this
        // restore: an earlier restore lost the write the backup restored now
        // holds, and this node then wrote another at the same counter, which
        // the peer holds. What the peer holds is what was sent, and
        // stands.
        let forked = !newer
            && !rewritten
            && local
                .as_ref()
                .is_some_and(|c| incoming == (c.generation, c.counter))
            && floor.is_none_or(|f| incoming >= (f.generation, f.counter))
            && ours(&tx)? != *section;
        let section = if rewritten && hosting_open(&tx, ctx, peer, &section.basis)? {
            let mut ours = ours(&tx)?;
            let held = ours.version.unwrap_or_default();
            ours.version = Some(pb::Version {
                generation: held.generation.max(incoming.0),
                counter: incoming.1 + 1,
            });
            members::save_host_section(&tx, &ours, ctx.now_ms)?;
            ours
        } else if newer || rewritten || forked {
            // Adopted, not written: stamped with the restore's time.
            members::save_host_section(&tx, section, restored_at_ms)?;
            section.clone()
        } else {
            continue;
        };
        report.host_sections += 1;
        re_send_hosted(
            &tx,
            ctx,
            peer,
            EventKind::HostSection,
            &section.member_id,
            &section.basis,
            &section.encode_to_vec(),
        )?;
    }
    for contact in batches.iter().flat_map(|b| &b.contacts) {
        if contact.author == me
            && may_hold_own_record(&tx, me, &contact.member_id, &contact.basis)?
            && members::save_contact(&tx, contact, ctx.now_ms)?
        {
            report.contacts += 1;
            let payload = contact.encode_to_vec();
            re_send_hosted(
                &tx,
                ctx,
                peer,
                EventKind::Contact,
                &contact.member_id,
                &contact.basis,
                &payload,
            )?;
        }
    }
    for activity in batches.iter().flat_map(|b| &b.activities) {
        if activity.author == me
            && may_hold_own_record(&tx, me, &activity.member_id, &activity.basis)?
            && members::save_activity(&tx, activity, ctx.now_ms)?
        {
            report.activities += 1;
            let payload = activity.encode_to_vec();
            re_send_hosted(
                &tx,
                ctx,
                peer,
                EventKind::Activity,
                &activity.member_id,
                &activity.basis,
                &payload,
            )?;
        }
    }

    // 4c. Records the peer made as host of this node's members: the copies
    //     this node held of them may predate the backup. Applied as the
    //     peer's events are (the same authority checks; a record seen
    //     before changes nothing), so one the peer may not send is not
    //     taken either.
    let made = batches.iter().flat_map(|b| {
        let sections = b
            .made_host_sections
            .iter()
            .map(|r| (EventKind::HostSection, &r.member_id, r.encode_to_vec()));
        let contacts = b
            .made_contacts
            .iter()
            .map(|r| (EventKind::Contact, &r.member_id, r.encode_to_vec()));
        let activities = b
            .made_activities
            .iter()
            .map(|r| (EventKind::Activity, &r.member_id, r.encode_to_vec()));
        sections.chain(contacts).chain(activities)
    });
    for (kind, member_id, payload) in made {
        // A member that went to the peer itself is the peer's to hold.
        let to_peer =
            members::moved_of(&tx, member_id)?.is_some_and(|m| m.to_node == peer.as_str());
        if to_peer {
            continue;
        }
        let event = pb::Event {
            kind: kind as i32,
            entity: member_id.clone(),
            payload,
            ..pb::Event::default()
        };
        // Reported in the peer's holdings: seq 0, in no log.
        match super::apply::apply_event(&tx, ctx, peer, "", &event, Default::default()) {
            Ok(()) => report.peer_records += 1,
            Err(super::apply::Rejection::Invalid(why)) => {
                tracing::debug!(%peer, member = %member_id, kind = %log::kind_name(kind as i32), why = %why, "record the peer made as host not taken");
            }
            Err(super::apply::Rejection::Stop(why)) => {
                return Err(Error::conflict(format!(
                    "a record {peer} holds cannot be adopted now: {why}"
                )))
            }
            Err(super::apply::Rejection::Store(e)) => return Err(e),
        }
    }

    // 5. Version counters jump past the copies the peer holds, and the home
    //    sections go out again under the new log id.
    let mut re_emit: Vec<String> = tx
        .prepare("SELECT member_id FROM shares WHERE peer = ?1")?
        .query_map([peer.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for copy in batches.iter().flat_map(|b| &b.home_copies) {
        if copy.owner != me {
            continue;
        }
        let held = copy.version.unwrap_or_default();
        let home = members::load_home(&tx, &copy.member_id)?;
        let owned = home.as_ref().is_some_and(|h| h.owner == me);
        // The peer holds it, so it was disclosed: the host's records under
        // that basis stay acceptable (`agreements::host_record_allowed`),
        // also where this node forgot the member (received after the
        // backup, its sender may release it again) or released it since
        // (possibly just now, by the transfer rule: the records the host
        // made before it learnt of the release are relayed to the new
        // owner, as they would have been).
        if owned || coordinates(&tx, &copy.basis, me, peer)? {
            note_disclosed(
                &tx,
                ctx,
                peer,
                &copy.member_id,
                &copy.basis,
                (held.generation, held.counter),
            )?;
        }
        let forgotten = home.is_none();
        let Some(mut home) = home.filter(|_| owned) else {
            report.forgotten += u64::from(forgotten);
            continue;
        };
        if (held.generation, held.counter) >= (home.generation, home.counter) {
            home.generation = home.generation.max(held.generation);
            home.counter = held.counter + 1;
            home.updated_at_ms = ctx.now_ms;
            members::save_home_record(&tx, &home)?;
        }
        re_emit.push(copy.member_id.clone());
    }
    re_emit.sort();
    re_emit.dedup();
    for member_id in &re_emit {
        members::reshare_member(&tx, ctx, member_id)?;
    }
    // Members newly covered by an adopted agreement.
    members::reshare_all(&tx, ctx)?;
    report.re_sent = tx.query_row(
        "SELECT COUNT(DISTINCT entity) FROM events WHERE audience = ?1 AND kind = ?2 AND seq > ?3",
        params![peer.as_str(), EventKind::HomeSection as i32, seq_floor],
        |r| r.get(0),
    )?;

    // 5b. Offers this node holds of members it now knows it received and
    //     passed on since (the transfer rule above may have just said so):
    //     their restored senders forgot the release; answered as received.
    //     Only offers of this peer or of senders adopted already: one not
    //     adopted yet may hold a re-issue whose release brought the member,
    //     which makes the older letter void, not stale.
    super::transfers::answer_stale_offers(&tx, ctx, |sender| {
        Ok(sender == peer.as_str()
            || !matches!(
                peer_state_of(&tx, sender)?.as_deref(),
                Some("waiting" | "skipped")
            ))
    })?;

    // 6. The end of the re-emission to this peer.
    let log_id = get_meta(&tx, "log_id")?.unwrap_or_default();
    let complete = pb::EpochComplete {
        log_id: log_id.clone(),
        re_sent: report.re_sent,
    };
    log::append(
        &tx,
        peer,
        EventKind::EpochComplete,
        &log_id,
        &complete.encode_to_vec(),
        ctx.now_ms,
    )?;
    let summary = report.summary();
    tx.execute(
        "UPDATE reconcile_peers SET state = 'adopted', updated_at_ms = ?2, detail = ?3 WHERE peer = ?1",
        params![peer.as_str(), ctx.now_ms, summary],
    )?;
    audit::append(
        &tx,
        ctx.now_ms,
        &NewEntry {
            actor: &Actor::Node,
            action: "reconcile.adopt",
            target: peer.as_str(),
            outcome: if report.conflicts.is_empty() && report.refused.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Error
            },
            detail: &summary,
        },
    )?;
    tx.commit()?;
    tracing::info!(%peer, summary = %summary, "reconciled with peer");
    report.finished = finish(conn, ctx)?;
    Ok(report)
}

/// Whether this node holds a transfer of the same member with a higher
/// letter number than `held` (so `held` is not the newest). One it issued
/// since the restore (going on without the peer) does not count: it was
/// made without knowing what the peer reports, and a completed transfer
/// the peer reports ends it (DESIGN §7), even a re-issue of the very offer
/// the peer completed.
fn newer_local_transfer(
    conn: &Connection,
    held: &pb::HeldTransfer,
    restored_at_ms: i64,
) -> Result<bool, Error> {
    let letters: Vec<String> = conn
        .prepare(
            "SELECT letter_no FROM transfers WHERE member_id = ?1 AND direction = 'outgoing' AND transfer_id <> ?2
               AND created_at_ms <= ?3",
        )?
        .query_map(
            params![held.member_id, held.transfer_id, restored_at_ms],
            |r| r.get(0),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let seq = transfers::letter_seq(&held.letter_no);
    Ok(letters.iter().any(|l| transfers::letter_seq(l) > seq))
}

/// Makes the next event's seq exceed `seq`.
fn jump_sequence(conn: &Connection, seq: u64) -> Result<(), Error> {
    let updated = conn.execute(
        "UPDATE sqlite_sequence SET seq = MAX(seq, ?1) WHERE name = 'events'",
        [seq],
    )?;
    if updated == 0 && seq > 0 {
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?1)",
            [seq],
        )?;
    }
    Ok(())
}

fn state_rank(state: &str) -> u8 {
    match state {
        "proposed" => 0,
        "active" => 1,
        _ => 2,
    }
}

/// Whether `basis` is an agreement this node coordinates with `peer` as host.
fn coordinates(conn: &Connection, basis: &str, me: &str, peer: &NodeId) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM agreements WHERE agreement_id = ?1 AND outflow_node = ?2 AND inflow_node = ?3",
        )?
        .query_row([basis, me, peer.as_str()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Records that `member_id`'s home section was disclosed to `peer` under
/// `basis`, unless already recorded: what a restored node learns from the
/// peer's holdings about sharing it forgot.
fn note_disclosed(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    member_id: &str,
    basis: &str,
    (generation, counter): (u64, u64),
) -> Result<(), Error> {
    let known = conn
        .prepare_cached(
            "SELECT 1 FROM disclosures WHERE peer = ?1 AND record_id = ?2 AND basis = ?3 LIMIT 1",
        )?
        .query_row(params![peer.as_str(), member_id, basis], |_| Ok(()))
        .optional()?
        .is_some();
    if known {
        return Ok(());
    }
    log::disclose(
        conn,
        peer,
        "home_section",
        member_id,
        "home section (as the peer reported when this node was restored)",
        generation,
        counter,
        basis,
        ctx.now_ms,
    )
}

/// A record this node made as host and adopted back is in its own log
/// again, for the owner `peer` (which holds it: applying it twice changes
/// nothing there), so that an owner restored later from an older backup
/// gets it back by pulling. Only while the agreement it was made under is
/// active here and this node has not applied its end (DESIGN §4).
fn re_send_hosted(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    kind: EventKind,
    member_id: &str,
    basis: &str,
    payload: &[u8],
) -> Result<(), Error> {
    if hosting_open(conn, ctx, peer, basis)? {
        log::append(conn, peer, kind, member_id, payload, ctx.now_ms)?;
    }
    Ok(())
}

/// Whether this node, as host, still sends `peer` records under `basis`:
/// the agreement is active here and this node has not applied its end.
fn hosting_open(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    basis: &str,
) -> Result<bool, Error> {
    Ok(super::agreements::load(conn, basis)?.is_some_and(|a| {
        a.inflow_node == ctx.me.as_str()
            && a.outflow_node == peer.as_str()
            && a.state == super::agreements::AgreementState::Active
            && !a.host_end_applied
    }))
}

/// Whether this node may hold a record it authored about `member_id` with
/// `basis` (DESIGN §3): the member is its own, or the record was made as a
/// host under an agreement in which it is the inflow party.
fn may_hold_own_record(
    conn: &Connection,
    me: &str,
    member_id: &str,
    basis: &str,
) -> Result<bool, Error> {
    let owned = conn
        .prepare_cached("SELECT 1 FROM members WHERE member_id = ?1 AND owner = ?2")?
        .query_row([member_id, me], |_| Ok(()))
        .optional()?
        .is_some();
    if owned {
        return Ok(true);
    }
    Ok(!basis.is_empty()
        && conn
            .prepare_cached(
                "SELECT 1 FROM agreements WHERE agreement_id = ?1 AND inflow_node = ?2",
            )?
            .query_row([basis, me], |_| Ok(()))
            .optional()?
            .is_some())
}

/// What adopting one agreement did.
enum AgreementAdoption {
    Unchanged,
    Changed,
    Refused(String),
}

/// Adopts an agreement as the peer holds it, with every version and
/// signature, where the peer's is further along.
fn adopt_agreement(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldAgreement,
) -> Result<AgreementAdoption, Error> {
    // An agreement decides what this node shares: adopt one the peer says
    // is (or was) active only with this node's own signature on that
    // version, so a peer cannot make it share under terms it never signed.
    // One that ended shares nothing and can never be active again: it is
    // adopted as ended even without (a party that ended it before the
    // version reached it may never have stored its signature there).
    if held.active_version > 0 && ctx.notary.is_some() && state_rank(&held.state) != 2 {
        let mine = held
            .versions
            .iter()
            .filter(|v| v.version == held.active_version)
            .find_map(|v| {
                let terms = v.terms.as_ref()?;
                let signature = v.signatures.iter().find(|s| s.signer == ctx.me.as_str())?;
                Some(super::agreements::verify_reported(
                    ctx,
                    &held.agreement_id,
                    terms,
                    signature,
                ))
            });
        match mine {
            Some(Ok(())) => {}
            Some(Err(why)) => {
                return Ok(AgreementAdoption::Refused(format!(
                    "agreement {} version {}: this node's signature does not verify: {why}",
                    held.agreement_id, held.active_version
                )))
            }
            None => {
                return Ok(AgreementAdoption::Refused(format!(
                    "agreement {} version {} carries no signature of this node",
                    held.agreement_id, held.active_version
                )))
            }
        }
    }
    let local = super::agreements::load(conn, &held.agreement_id)?;
    let behind = local.as_ref().is_none_or(|a| {
        (state_rank(&held.state), held.version, held.active_version)
            > (state_rank(a.state.as_str()), a.version, a.active_version)
    });
    // TERMINATED and EXPIRED are final here.
    let is_final = local.as_ref().is_some_and(|a| a.state.is_final());
    let changed = behind && !is_final;
    if changed {
        // The row first: versions and signatures refer to it.
        conn.execute(
            "INSERT INTO agreements (agreement_id, number, outflow_node, inflow_node, state, version, active_version,
                 ended_reason, ended_by, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
             ON CONFLICT (agreement_id) DO UPDATE SET state = excluded.state, version = MAX(version, excluded.version),
                 active_version = MAX(active_version, excluded.active_version), ended_reason = excluded.ended_reason,
                 ended_by = excluded.ended_by, updated_at_ms = excluded.updated_at_ms",
            params![
                held.agreement_id,
                held.number,
                held.outflow_node,
                held.inflow_node,
                held.state,
                held.version,
                held.active_version,
                held.ended_reason,
                held.ended_by,
                ctx.now_ms
            ],
        )?;
    }
    if local.is_none() && !changed {
        return Ok(AgreementAdoption::Unchanged);
    }
    for version in &held.versions {
        let Some(terms) = &version.terms else {
            continue;
        };
        conn.execute(
            "INSERT OR IGNORE INTO agreement_versions (agreement_id, version, terms, terms_hash, published_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                held.agreement_id,
                version.version,
                terms.encode_to_vec(),
                super::agreements::terms_hash(terms),
                ctx.now_ms
            ],
        )?;
        for s in &version.signatures {
            conn.execute(
                "INSERT OR IGNORE INTO agreement_signatures (agreement_id, version, signer, terms_hash, signature, certificate, verified_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![held.agreement_id, s.version, s.signer, s.terms_hash, s.signature, s.certificate, ctx.now_ms],
            )?;
        }
    }
    // Ended here since the restore, the agreement keeps its end; a later
    // version, or a later activation (checked above: signed by this node),
    // that this node made before and forgot is part of its history as the
    // peer holds it. An activation is never undone, only ended.
    let forgot_version = is_final
        && local.as_ref().is_some_and(|a| held.version > a.version)
        && held
            .versions
            .iter()
            .any(|v| v.version == held.version && v.terms.is_some());
    let forgot_activation = is_final
        && local
            .as_ref()
            .is_some_and(|a| held.active_version > a.active_version);
    if forgot_version || forgot_activation {
        conn.execute(
            "UPDATE agreements SET version = MAX(version, ?2), active_version = MAX(active_version, ?3), updated_at_ms = ?4
             WHERE agreement_id = ?1",
            params![
                held.agreement_id,
                if forgot_version { held.version } else { 0 },
                held.active_version,
                ctx.now_ms
            ],
        )?;
    }
    if changed && state_rank(&held.state) == 2 {
        // It ended after the backup: act on the end as applying it does
        // (the host drops its copies, the coordinator stops sharing).
        if let Some(mut a) = super::agreements::load(conn, &held.agreement_id)? {
            super::agreements::act_on_end(conn, ctx, &mut a)?;
        }
    }
    Ok(if changed {
        AgreementAdoption::Changed
    } else {
        AgreementAdoption::Unchanged
    })
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

/// Progress of the reconciliation, per peer.
pub fn status(conn: &Connection) -> Result<pb::ReconcileStatus, Error> {
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
            lost_period(backup_at_ms, restored_at_ms)
        },
    })
}
